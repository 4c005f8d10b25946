//! The engine on real models: every preset on stories260K, MiniLM, sharded inputs, structured
//! pruning, determinism.

use std::collections::HashSet;

use pareto_core::job::JobContext;
use pareto_core::store::DType;
use pareto_core::{CompressOptions, Model, Recipe, compress};
use safetensors::tensor::Dtype;

use crate::common::*;

fn run(model_dir: &std::path::Path, recipe: &Recipe, out: &std::path::Path) -> pareto_core::CompressReport {
    let model = Model::open(model_dir).expect("open");
    let plan = recipe.resolve(&model).expect("resolve");
    compress(&model, &plan, &CompressOptions::new(out), &JobContext::silent()).expect("compress")
}

#[test]
fn every_preset_compresses_stories260k_into_a_loadable_model() {
    let tmp = tempfile::tempdir().unwrap();
    let src = read_all(&stories().join("model.safetensors"));
    for p in pareto_core::recipe::PRESETS {
        let recipe = Recipe::load(p.name).unwrap();
        if recipe.needs_calibration() {
            continue; // calibrated.rs runs these with a calibration set
        }
        let out = tmp.path().join(p.name);
        let report = run(&stories(), &recipe, &out);
        let written = read_all(&out.join("model.safetensors"));
        let structured = recipe.structured.is_some();
        if !structured {
            assert_eq!(written.len(), src.len(), "{}: same tensors", p.name);
        }
        for t in &report.tensors {
            let (dtype, shape, _) = &written[&t.name];
            assert_eq!(*dtype, Dtype::F32, "{}: {} keeps F32", p.name, t.name);
            assert_eq!(shape, &t.shape);
            if t.action == "keep" && !structured {
                assert_eq!(written[&t.name].2, src[&t.source_name].2, "{}: kept {} is byte-identical", p.name, t.name);
                assert!(t.metrics.is_none());
            }
            if let (Some(fmt), Some(m)) = (t.format, t.metrics) {
                let tol = pareto_formats::lookup(fmt).unwrap().tolerance as f64;
                // Trained weights are heavier-tailed than the N(0,1) data tolerances are set on.
                assert!(
                    m.rel_error <= 2.5 * tol,
                    "{}: {} {} rel error {} > {}",
                    p.name,
                    t.name,
                    fmt,
                    m.rel_error,
                    2.5 * tol
                );
                assert!(m.cosine > 0.9, "{}: {} cosine {}", p.name, t.name, m.cosine);
            }
        }
        // The copy of the folder's other files and a manifest whose hash covers them.
        for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "pareto-manifest.json"] {
            assert!(out.join(f).exists(), "{}: {f} written", p.name);
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("pareto-manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["content_hash"], report.content_hash);
        assert_eq!(
            manifest["source_files"][0]["sha256"],
            "ad6b792a9b1555ec3d4a9bcdc2fac23a401b4fc2ab761b61d0856b5f0a5e4cb5"
        );
        // And Pareto's own reader accepts its output, config shape checks included.
        Model::open(&out).expect("reopen output");
    }
}

/// Distinct values per block are bounded by the format's code count: the output really lies on
/// the quantization grid, it was not merely perturbed.
#[test]
fn fake_quantized_values_lie_on_the_grid() {
    let tmp = tempfile::tempdir().unwrap();
    for (preset, block, codes) in
        [("w8", 0usize, 255usize), ("w4-g32", 32, 16), ("gguf-q8_0", 32, 255), ("nf4", 64, 16)]
    {
        let out = tmp.path().join(preset);
        let report = run(&stories(), &Recipe::load(preset).unwrap(), &out);
        let written = read_all(&out.join("model.safetensors"));
        let mut checked = 0;
        for t in report.tensors.iter().filter(|t| t.format.is_some_and(|f| !f.starts_with('f'))) {
            let w = f32s(&written[&t.name].2);
            let cols = *t.shape.last().unwrap();
            let block = if block == 0 { cols } else { block };
            for chunk in w.chunks(block) {
                let distinct: HashSet<u32> = chunk.iter().map(|x| x.to_bits()).collect();
                assert!(
                    distinct.len() <= codes,
                    "{preset}: {} has {} distinct values in a block",
                    t.name,
                    distinct.len()
                );
            }
            checked += 1;
        }
        assert!(checked > 0, "{preset}: quantized something");
    }
}

#[test]
fn two_of_four_and_global_magnitude_sparsity_are_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("24");
    let report = run(&stories(), &Recipe::load("sparse-2of4").unwrap(), &out);
    let written = read_all(&out.join("model.safetensors"));
    let pruned: Vec<_> = report.tensors.iter().filter(|t| t.action == "2:4").collect();
    assert!(!pruned.is_empty());
    for t in &pruned {
        for g in f32s(&written[&t.name].2).chunks(4) {
            assert!(g.iter().filter(|x| **x == 0.0).count() >= 2, "{}", t.name);
        }
    }

    let out = tmp.path().join("50");
    let report = run(&stories(), &Recipe::load("sparse-50").unwrap(), &out);
    let written = read_all(&out.join("model.safetensors"));
    let targeted: Vec<_> = report.tensors.iter().filter(|t| t.action.starts_with("prune")).collect();
    let total: usize = targeted.iter().map(|t| t.shape.iter().product::<usize>()).sum();
    let zeros: usize = targeted.iter().map(|t| f32s(&written[&t.name].2).iter().filter(|x| **x == 0.0).count()).sum();
    assert_eq!(zeros, total / 2, "global 50% zeroes exactly half of the targeted weights");
    // Global ranking: tensors end up with different sparsities.
    let sparsities: HashSet<u64> = targeted.iter().map(|t| (t.metrics.unwrap().sparsity * 1000.0) as u64).collect();
    assert!(sparsities.len() > 1);
}

#[test]
fn structured_pruning_shrinks_shapes_and_config_consistently() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = Recipe::from_toml(
        "name = \"slim\"\n[structured]\nffn_channels = 0.25\nkv_heads = 0.5\ndrop_layers = [3]\n",
        "test",
    )
    .unwrap();
    let out = tmp.path().join("slim");
    run(&stories(), &recipe, &out);
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["intermediate_size"], 129); // 172 − round(43)
    assert_eq!(cfg["num_key_value_heads"], 2);
    assert_eq!(cfg["num_attention_heads"], 4);
    assert_eq!(cfg["head_dim"], 8);
    assert_eq!(cfg["num_hidden_layers"], 4);
    let written = read_all(&out.join("model.safetensors"));
    assert_eq!(written["model.layers.0.mlp.gate_proj.weight"].1, vec![129, 64]);
    assert_eq!(written["model.layers.0.mlp.down_proj.weight"].1, vec![64, 129]);
    assert_eq!(written["model.layers.0.self_attn.q_proj.weight"].1, vec![32, 64]);
    assert_eq!(written["model.layers.0.self_attn.k_proj.weight"].1, vec![16, 64]);
    assert_eq!(written["model.layers.0.self_attn.o_proj.weight"].1, vec![64, 32]);
    assert!(written.contains_key("model.layers.3.mlp.up_proj.weight"), "old layer 4 renumbered to 3");
    assert!(!written.contains_key("model.layers.4.mlp.up_proj.weight"));
    // The kept rows are the original rows, unchanged (no quantization in this recipe).
    let src = read_all(&stories().join("model.safetensors"));
    let orig = f32s(&src["model.layers.4.mlp.up_proj.weight"].2);
    let kept = f32s(&written["model.layers.3.mlp.up_proj.weight"].2);
    for row in kept.chunks(64) {
        assert!(orig.chunks(64).any(|o| o == row), "every kept row is an original row");
    }
    // Pareto's reader validates the new config against the new shapes.
    let m = Model::open(&out).unwrap();
    assert_eq!(m.require_config().unwrap().intermediate_size, 129);
}

#[test]
fn output_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = Recipe::load("gguf-q4_k_m").unwrap();
    let a = run(&stories(), &recipe, &tmp.path().join("a"));
    let b = run(&stories(), &recipe, &tmp.path().join("b"));
    assert_eq!(a.content_hash, b.content_hash);
    assert_eq!(
        std::fs::read(tmp.path().join("a/pareto-manifest.json")).unwrap(),
        std::fs::read(tmp.path().join("b/pareto-manifest.json")).unwrap()
    );
}

#[test]
fn sharded_input_gives_the_same_tensors_as_the_single_file() {
    let tmp = tempfile::tempdir().unwrap();
    let sharded = tmp.path().join("sharded");
    std::fs::create_dir(&sharded).unwrap();
    sharded_stories(&sharded);
    let m = Model::open(&sharded).unwrap();
    assert_eq!(m.shards().len(), 2);
    let recipe = Recipe::load("w4-g32").unwrap();
    run(&sharded, &recipe, &tmp.path().join("out-sharded"));
    run(&stories(), &recipe, &tmp.path().join("out-single"));
    let single = read_all(&tmp.path().join("out-single/model.safetensors"));
    let mut seen = 0;
    for shard in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] {
        for (name, t) in read_all(&tmp.path().join("out-sharded").join(shard)) {
            assert_eq!(t.2, single[&name].2, "{name}");
            seen += 1;
        }
    }
    assert_eq!(seen, single.len());
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("out-sharded/model.safetensors.index.json")).unwrap())
            .unwrap();
    assert_eq!(index["weight_map"].as_object().unwrap().len(), single.len());
    Model::open(tmp.path().join("out-sharded")).expect("sharded output reopens");
}

#[test]
fn minilm_int8_keeps_integer_tensors_and_roles() {
    let tmp = tempfile::tempdir().unwrap();
    let model = Model::open(minilm()).unwrap();
    let recipe = Recipe::load("w8").unwrap();
    let plan = recipe.resolve(&model).unwrap();
    assert!(plan.totals.quantized >= 36, "6 layers × 6 linear weights");
    assert!(plan.totals.planned_bytes < plan.totals.source_bytes);
    let out = tmp.path().join("minilm-w8");
    let report = compress(&model, &plan, &CompressOptions::new(&out), &JobContext::silent()).unwrap();
    let src = read_all(&minilm().join("model.safetensors"));
    let written = read_all(&out.join("model.safetensors"));
    for (name, (dtype, _, bytes)) in &src {
        if !matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            assert_eq!(&written[name].2, bytes, "{name} ({dtype:?}) carried through untouched");
        }
    }
    for t in report.tensors.iter().filter(|t| t.format == Some("int8_channel")) {
        // Measured 33.5–42.6 dB; the FFN output projections carry the outliers.
        assert!(t.metrics.unwrap().snr_db.unwrap() > 30.0, "{} SNR", t.name);
    }
    assert!(out.join("tokenizer.json").exists() && out.join("vocab.txt").exists());
    let _ = DType::F32;
}
