//! Phi-3 checkpoints, whose q/k/v and gate/up projections are fused into one tensor each: the
//! forward pass against candle-transformers' Phi-3, and the trained stories260K re-stacked as a
//! Phi-3 (the same model: Phi-3's RoPE, norms and gated MLP are LLaMA's) through evaluation,
//! calibration and every export, where it must give what the LLaMA layout gives.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::phi3;
use pareto_core::job::JobContext;
use pareto_core::{CompressOptions, Error, ExportFormat, Model, Recipe, compress};
use pareto_eval::llama::LlamaModel;
use pareto_eval::perplexity::PerplexityProtocol;
use pareto_eval::{Compressed, EvalOptions, ModelFamily, detect_family};
use pareto_runs::{CalibrationSpec, calibrate_with};

use crate::common::{f32s, read_all, repo_root, stories, write_f32_model};
use crate::export_formats::llama_fixture;

/// Re-stacks the LLaMA checkpoint in `dir` as a Phi-3 one: q/k/v rows into `qkv_proj`, gate and up
/// into `gate_up_proj` (gate first), `model_type = "phi3"`.
pub(crate) fn fuse_into_phi3(dir: &Path) {
    let path = dir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let layers = cfg["num_hidden_layers"].as_u64().unwrap();
    let st = dir.join("model.safetensors");
    let mut map = read_all(&st);
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        let groups: [(&str, &[&str]); 2] = [
            ("self_attn.qkv_proj", &["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]),
            ("mlp.gate_up_proj", &["mlp.gate_proj", "mlp.up_proj"]),
        ];
        for (fused, parts) in groups {
            let (mut rows, mut cols, mut values) = (0, 0, Vec::new());
            for part in parts {
                let (_, shape, bytes) = map.remove(&format!("{p}.{part}.weight")).unwrap();
                (rows, cols) = (rows + shape[0], shape[1]);
                values.extend(f32s(&bytes));
            }
            tensors.push((format!("{p}.{fused}.weight"), vec![rows, cols], values));
        }
    }
    tensors.extend(map.into_iter().map(|(name, (_, shape, bytes))| (name, shape, f32s(&bytes))));
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let refs: Vec<(&str, Vec<usize>, Vec<f32>)> =
        tensors.iter().map(|(n, s, v)| (n.as_str(), s.clone(), v.clone())).collect();
    write_f32_model(&st, &refs);
    cfg["architectures"] = serde_json::json!(["Phi3ForCausalLM"]);
    cfg["model_type"] = serde_json::json!("phi3");
    cfg["hidden_act"] = serde_json::json!("silu");
    std::fs::write(&path, cfg.to_string()).unwrap();
}

fn stories_as_phi3(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(stories().join(f), dir.join(f)).unwrap();
    }
    fuse_into_phi3(dir);
}

#[test]
fn phi3_matches_candle_transformers_with_its_projections_fused() {
    let dev = Device::Cpu;
    let ids = [1u32, 17, 300, 42, 7, 99, 250, 3, 128, 64, 5, 411];
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("phi3");
    llama_fixture(&src);
    fuse_into_phi3(&src);
    assert_eq!(detect_family(&src).unwrap(), ModelFamily::Llama);
    let ours = LlamaModel::load(&src, &dev).unwrap();
    let groups = ours.linear_groups(1);
    assert_eq!(groups[0], ["model.layers.1.self_attn.qkv_proj"], "fused tensors stay one linear");
    assert_eq!(groups[2], ["model.layers.1.mlp.gate_up_proj"]);
    let logits = ours.forward(&Tensor::new(&ids[..], &dev).unwrap().unsqueeze(0).unwrap(), None, None).unwrap();
    let cfg: phi3::Config = serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
    let weights = candle_core::safetensors::load(src.join("model.safetensors"), &dev).unwrap();
    let vb = candle_nn::VarBuilder::from_tensors(weights, DType::F32, &dev);
    // candle's Phi-3 returns the last position's logits; a prefix of the ids gives each earlier one.
    for len in [1, 5, ids.len()] {
        let prefix = Tensor::new(&ids[..len], &dev).unwrap().unsqueeze(0).unwrap();
        let theirs = phi3::Model::new(&cfg, vb.clone()).unwrap().forward(&prefix, 0).unwrap();
        let a: Vec<f32> = logits.get(0).unwrap().get(len - 1).unwrap().to_vec1().unwrap();
        let b: Vec<f32> = theirs.flatten_all().unwrap().to_vec1().unwrap();
        let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-4 * scale, "position {}: differs by {worst} (scale {scale})", len - 1);
    }
    // RoPE on part of each head (Phi-3.5 / Phi-4-mini) is refused by name, not computed wrongly.
    let path = src.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    c["partial_rotary_factor"] = serde_json::json!(0.75);
    std::fs::write(&path, c.to_string()).unwrap();
    let err = LlamaModel::load(&src, &dev).unwrap_err().to_string();
    assert!(err.contains("partial_rotary_factor 0.75"), "{err}");
}

/// Mean NLL of `dir` (or of its compressed `out`) on eval's reference protocol, 8 windows.
fn nll(dir: &Path, compressed: Option<&Path>) -> f64 {
    let opts = EvalOptions {
        compressed: compressed.map(|c| Compressed::Folder(c.to_path_buf())),
        protocol: PerplexityProtocol { max_windows: Some(8), ..PerplexityProtocol::default() },
        greedy_steps: 0,
        ..EvalOptions::default()
    };
    let r = pareto_eval::evaluate(dir, &opts, &JobContext::silent()).unwrap().decoder.unwrap();
    r.compressed.map_or(r.original.mean_nll, |c| c.mean_nll)
}

#[test]
fn a_fused_checkpoint_evaluates_calibrates_and_exports_as_the_llama_it_restacks() {
    let tmp = tempfile::tempdir().unwrap();
    let phi = tmp.path().join("phi3");
    stories_as_phi3(&phi);
    let (llama_model, phi_model) = (Model::open(stories()).unwrap(), Model::open(&phi).unwrap());
    assert_eq!(phi_model.require_config().unwrap().architecture.name(), "phi3");
    // The same model: the same perplexity, bit for bit up to summation order.
    let (a, b) = (nll(&stories(), None), nll(&phi, None));
    assert!((a - b).abs() < 1e-6 * a, "stories260K {a} vs as Phi-3 {b}");

    // GPTQ solves each output row on the input's Hessian: the fused tensors' codes are the
    // separate ones stacked, so the compressed models compute the same.
    let recipe = Recipe::load("gptq-w4-g32").unwrap();
    let spec = CalibrationSpec {
        windows: 8,
        window: 128,
        skip_chars: 65_536,
        ..CalibrationSpec::new(repo_root().join("assets/samples/tinystories/tinystories-valid-excerpt.txt"))
    };
    let cache = pareto_core::cache::CacheFolder::Off;
    let mut out = Vec::new();
    for (dir, model) in [(stories(), &llama_model), (phi.clone(), &phi_model)] {
        let plan = recipe.resolve(model).unwrap();
        let (codes, report) = calibrate_with(&dir, &plan, &spec, &cache, &JobContext::silent()).unwrap();
        // Dense (the evaluation reads it) and compressed-tensors (what vLLM loads, fused or not).
        let target = tmp.path().join(format!("gptq-{}", out.len()));
        for (fmt, dir) in
            [(ExportFormat::Safetensors, target.clone()), (ExportFormat::CompressedTensors, target.join("ct"))]
        {
            let mut opts = CompressOptions::new(&dir).with_format(fmt);
            opts.solver = Some(codes.clone());
            compress(model, &plan, &opts, &JobContext::silent()).unwrap();
        }
        out.push((target, report.tensors.len()));
    }
    // stories260K's down_proj (172 inputs) is not a multiple of 32 in either layout.
    assert_eq!((out[0].1, out[1].1), (30, 15), "q/k/v/o/gate/up of 5 layers; qkv/o/gate_up of 5");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out[1].0.join("ct/config.json")).unwrap()).unwrap();
    assert_eq!(config["model_type"], "phi3");
    assert_eq!(config["quantization_config"]["format"], "pack-quantized");
    let packed = read_all(&out[1].0.join("ct/model.safetensors"));
    assert!(packed.contains_key("model.layers.0.self_attn.qkv_proj.weight_packed"), "{:?}", packed.keys());
    let (ga, gb) = (nll(&stories(), Some(&out[0].0)), nll(&phi, Some(&out[1].0)));
    assert!((ga - gb).abs() < 1e-5 * ga, "GPTQ as llama {ga} vs as Phi-3 {gb}");
    assert!(ga > a, "compression costs something: {ga} vs {a}");

    // GGUF for llama.cpp's phi3 graph: fused tensors under its names, rows as stacked.
    let gguf_dir = tmp.path().join("gguf");
    let plan = Recipe::load("gguf-q8_0").unwrap().resolve(&phi_model).unwrap();
    compress(
        &phi_model,
        &plan,
        &CompressOptions::new(&gguf_dir).with_format(ExportFormat::Gguf),
        &JobContext::silent(),
    )
    .unwrap();
    let g = pareto_core::export::gguf::GgufFile::open(&gguf_dir.join("model.gguf")).unwrap();
    let qkv = g.tensor("blk.2.attn_qkv.weight").unwrap();
    assert_eq!(qkv.dims, [64, 64 + 2 * 32], "in 64, out q 64 + k 32 + v 32");
    assert_eq!(g.tensor("blk.2.ffn_up.weight").unwrap().dims, [64, 2 * 172]);
    assert!(g.tensor("blk.2.attn_q.weight").is_none() && g.tensor("blk.2.ffn_gate.weight").is_none());
    let t = phi_model.tensor("model.layers.2.self_attn.qkv_proj.weight").unwrap();
    let want = pareto_formats::lookup("q8_0").unwrap().quantize(&phi_model.read_f32(t).unwrap(), 128, 64).unwrap();
    let pareto_formats::QTensor::Blocks { bytes, .. } = want else { panic!("q8_0 is a block format") };
    assert_eq!(g.read_raw(qkv).unwrap(), bytes, "no Q/K permutation: NEOX RoPE reads HF rows as they are");
    use pareto_core::export::gguf::MetaValue;
    assert_eq!(g.get("general.architecture"), Some(&MetaValue::String("phi3".into())));
    assert_eq!(g.get("phi3.block_count"), Some(&MetaValue::U32(5)));
    assert_eq!(g.get("phi3.rope.dimension_count"), Some(&MetaValue::U32(8)));
    assert_eq!(g.get("phi3.attention.sliding_window"), Some(&MetaValue::U32(0)), "no window in the config");
    assert!(g.get("phi3.vocab_size").is_none(), "the converter's Phi-3 states none");

    // Read back (as a user brings a Phi-3 GGUF): the fused tensors under their HF names, a Phi-3
    // config, and a folder that evaluates as the GGUF's values do.
    let f32_gguf = tmp.path().join("gguf-f32");
    let f32_recipe =
        Recipe::from_toml("name = \"f32\"\nignore = [\"role:norm\"]\n[default.quantize]\nformat = \"f32\"\n", "f32")
            .unwrap()
            .resolve(&phi_model)
            .unwrap();
    compress(
        &phi_model,
        &f32_recipe,
        &CompressOptions::new(&f32_gguf).with_format(ExportFormat::Gguf),
        &JobContext::silent(),
    )
    .unwrap();
    let hf = tmp.path().join("hf");
    let exact = pareto_core::import::TensorDtype::Exact;
    pareto_core::import::convert(&f32_gguf.join("model.gguf"), &hf, exact, false, &JobContext::silent()).unwrap();
    let back: serde_json::Value = serde_json::from_slice(&std::fs::read(hf.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        (back["model_type"].as_str(), back["architectures"][0].as_str()),
        (Some("phi3"), Some("Phi3ForCausalLM"))
    );
    let (src, got) = (read_all(&phi.join("model.safetensors")), read_all(&hf.join("model.safetensors")));
    for name in ["model.layers.3.self_attn.qkv_proj.weight", "model.layers.3.mlp.gate_up_proj.weight"] {
        assert_eq!(f32s(&got[name].2), f32s(&src[name].2), "{name} read back as written");
    }
    let c = nll(&hf, None);
    assert!((c - a).abs() < 1e-6 * a, "read back {c} vs {a}");

    // A structured cut would have to split rows inside the fused tensors: refused by name.
    let cut = Recipe::load("ffn-slim-25").unwrap().resolve(&phi_model).unwrap_err();
    assert!(matches!(cut, Error::StructuredUnsupported { .. }), "{cut}");
}
