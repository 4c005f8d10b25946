//! Packed exports end to end: GGUF (re-read by Pareto's reader, by llama.cpp's `gguf` Python
//! package, and run by candle's quantized LLaMA), compressed-tensors and GPTQ (read back and
//! compared with the reference codecs), determinism, and the bad-input corpus of the export step.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use pareto_core::export::ExportFormat;
use pareto_core::export::gguf::{GgufFile, MetaValue};
use pareto_core::export::st_read::{self, ReadTensor};
use pareto_core::job::{CancelToken, JobContext};
use pareto_core::{CompressOptions, CompressReport, Error, Model, Recipe, compress};

use crate::common::*;

/// The greedy ids of PROVENANCE.md (BOS + 60 steps).
const GREEDY: [u32; 61] = [
    1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408,
    419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338,
    391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415,
];

fn original_gguf() -> PathBuf {
    repo_root().join("models/gguf/stories260K.gguf")
}

pub(crate) fn export(
    model: &Model,
    recipe: &Recipe,
    format: ExportFormat,
    out: &Path,
) -> Result<CompressReport, Error> {
    let plan = recipe.resolve(model)?;
    compress(model, &plan, &CompressOptions::new(out).with_format(format), &JobContext::silent())
}

pub(crate) fn preset(name: &str) -> Recipe {
    Recipe::load(name).unwrap()
}

fn recipe(toml: &str) -> Recipe {
    Recipe::from_toml(toml, "test").unwrap()
}

/// Keeps every tensor as it is (an F32 GGUF from an F32 model).
fn keep_all() -> Recipe {
    recipe("name = \"keep\"\nignore = []\n")
}

fn no_leftovers(dir: &Path) {
    let names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.contains("pareto-tmp") && n != "out"), "left behind: {names:?}");
}

/// A small LLaMA-shaped model whose rows divide every block size (256): hidden 256, 4 heads of 64,
/// 2 KV heads, FFN 512, 2 layers, stories260K's 512-token tokenizer. Deterministic pseudo-normal
/// weights.
pub(crate) fn llama_fixture(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let (h, ffn, layers, vocab, kv) = (256usize, 512usize, 2usize, 512usize, 128usize);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = |n: usize, scale: f32| -> Vec<f32> {
        (0..n)
            .map(|_| {
                let mut s = 0.0f32;
                for _ in 0..4 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    s += (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                }
                s * scale
            })
            .collect()
    };
    let mut t: Vec<(String, Vec<usize>, Vec<f32>)> = vec![
        ("model.embed_tokens.weight".into(), vec![vocab, h], rnd(vocab * h, 1.0)),
        ("model.norm.weight".into(), vec![h], vec![1.0; h]),
        ("lm_head.weight".into(), vec![vocab, h], rnd(vocab * h, 0.1)),
    ];
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        t.push((format!("{p}.input_layernorm.weight"), vec![h], vec![1.0; h]));
        t.push((format!("{p}.post_attention_layernorm.weight"), vec![h], vec![1.0; h]));
        t.push((format!("{p}.self_attn.q_proj.weight"), vec![h, h], rnd(h * h, 0.1)));
        t.push((format!("{p}.self_attn.k_proj.weight"), vec![kv, h], rnd(kv * h, 0.1)));
        t.push((format!("{p}.self_attn.v_proj.weight"), vec![kv, h], rnd(kv * h, 0.1)));
        t.push((format!("{p}.self_attn.o_proj.weight"), vec![h, h], rnd(h * h, 0.1)));
        t.push((format!("{p}.mlp.gate_proj.weight"), vec![ffn, h], rnd(ffn * h, 0.1)));
        t.push((format!("{p}.mlp.up_proj.weight"), vec![ffn, h], rnd(ffn * h, 0.1)));
        t.push((format!("{p}.mlp.down_proj.weight"), vec![h, ffn], rnd(h * ffn, 0.1)));
    }
    let refs: Vec<(&str, Vec<usize>, Vec<f32>)> =
        t.iter().map(|(n, s, v)| (n.as_str(), s.clone(), v.clone())).collect();
    write_f32_model(&dir.join("model.safetensors"), &refs);
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": vocab, "hidden_size": h,
        "intermediate_size": ffn, "num_hidden_layers": layers, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"
    });
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(stories().join(f), dir.join(f)).unwrap();
    }
}

/// Source tensor as f32, by HF name.
fn source_f32(model: &Model, name: &str) -> Vec<f32> {
    model.read_f32(model.tensor(name).unwrap()).unwrap()
}

/// HF → GGUF row order for q/k (llama.cpp's permute), for comparisons.
fn permute(w: &[f32], rows: usize, cols: usize, n_head: usize) -> Vec<f32> {
    let d = rows / n_head;
    let mut out = Vec::with_capacity(w.len());
    for h in 0..n_head {
        for p in 0..d / 2 {
            for e in 0..2 {
                let r = h * d + e * (d / 2) + p;
                out.extend_from_slice(&w[r * cols..(r + 1) * cols]);
            }
        }
    }
    out
}

// ---- GGUF -----------------------------------------------------------------------------------

#[test]
fn gguf_f32_export_reproduces_the_original_stories_gguf() {
    // The HF folder was derived from stories260K.gguf (q/k rows un-permuted, names mapped), so an
    // F32 export must give back every original tensor bit for bit, and the same tokenizer.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("f32");
    let model = Model::open(stories()).unwrap();
    export(&model, &keep_all(), ExportFormat::Gguf, &out).unwrap();
    let ours = GgufFile::open(&out.join("model.gguf")).unwrap();
    let orig = GgufFile::open(&original_gguf()).unwrap();
    assert_eq!(orig.tensors.len(), 48);
    assert_eq!(ours.tensors.len(), 48);
    for t in &orig.tensors {
        let o = ours.tensor(&t.name).unwrap_or_else(|| panic!("{} missing", t.name));
        assert_eq!((o.ggml_type, &o.dims), (t.ggml_type, &t.dims), "{}", t.name);
        assert_eq!(ours.read_raw(o).unwrap(), orig.read_raw(t).unwrap(), "{} data", t.name);
        assert_eq!(o.offset % 32, 0);
    }
    for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"] {
        let (a, b) = (ours.get(key).unwrap(), orig.get(key).unwrap());
        assert_eq!(a.as_array().unwrap().len(), 512, "{key}");
        assert_eq!(a, b, "{key} differs from the original GGUF");
    }
    for key in [
        "tokenizer.ggml.model",
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id",
        "general.architecture",
        "llama.embedding_length",
        "llama.feed_forward_length",
        "llama.attention.head_count",
        "llama.attention.head_count_kv",
        "llama.block_count",
        "llama.rope.dimension_count",
        "llama.attention.layer_norm_rms_epsilon",
    ] {
        assert_eq!(ours.get(key), orig.get(key), "{key}");
    }
    assert_eq!(ours.get("general.file_type"), Some(&MetaValue::U32(0)));
    assert_eq!(ours.get("general.quantization_version"), Some(&MetaValue::U32(2)));
    assert_eq!(ours.get("general.alignment"), Some(&MetaValue::U32(32)));
    // Tokenizer and other files are copied beside the GGUF, with a manifest.
    for f in ["tokenizer.json", "tokenizer_config.json", "config.json", "pareto-manifest.json"] {
        assert!(out.join(f).is_file(), "{f}");
    }
}

#[test]
fn gguf_reader_opens_the_original_stories_gguf() {
    let g = GgufFile::open(&original_gguf()).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.metadata.len(), 19);
    assert_eq!(g.data_start, 14176);
    assert_eq!(g.get("tokenizer.ggml.seperator_token_id"), Some(&MetaValue::U32(u32::MAX)));
    let emb = g.tensor("token_embd.weight").unwrap();
    assert_eq!(emb.dims, vec![64, 512]);
    let out = g.tensor("output.weight").unwrap();
    assert_eq!(g.dequantize(emb).unwrap(), g.dequantize(out).unwrap());
    let params: u64 = g.tensors.iter().map(|t| t.dims.iter().product::<u64>()).sum();
    assert_eq!(params, 292_800);
}

#[test]
fn gguf_quantized_exports_match_the_reference_codecs() {
    // dequantize(read(write(q))) == Format::dequantize(q): every tensor's stored blocks equal the
    // registry codec applied to the (permuted) source, for each llama.cpp preset.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("llama");
    llama_fixture(&src);
    for (dir, m) in [("stories", Model::open(stories()).unwrap()), ("fixture", Model::open(&src).unwrap())] {
        let cfg = m.config().unwrap().clone();
        for name in ["gguf-q8_0", "gguf-q4_0", "gguf-q4_k_m", "gguf-q5_k_m", "gguf-q3_k_m"] {
            let out = tmp.path().join(format!("{dir}-{name}"));
            let plan = preset(name).resolve(&m).unwrap();
            export(&m, &preset(name), ExportFormat::Gguf, &out).unwrap();
            let g = GgufFile::open(&out.join("model.gguf")).unwrap();
            let mut types = BTreeMap::new();
            for pt in &plan.tensors {
                let gname = pareto_core::export::gguf::names::to_gguf(&pt.name).unwrap();
                let t = g.tensor(&gname).unwrap();
                let (rows, cols) = if pt.shape.len() == 2 { (pt.shape[0], pt.shape[1]) } else { (1, pt.shape[0]) };
                let mut w = source_f32(&m, &pt.source_name);
                if pt.name.ends_with("q_proj.weight") {
                    w = permute(&w, rows, cols, cfg.num_heads);
                } else if pt.name.ends_with("k_proj.weight") {
                    w = permute(&w, rows, cols, cfg.num_kv_heads);
                }
                let read = g.qtensor(t).unwrap();
                match pt.action.format {
                    Some(id) => {
                        let f = pareto_formats::lookup(id).unwrap();
                        let q = f.quantize(&w, rows, cols).unwrap();
                        assert_eq!(read, q, "{name} {gname}");
                        assert_eq!(g.dequantize(t).unwrap(), f.dequantize(&q).unwrap());
                        *types.entry(id).or_insert(0) += 1;
                    }
                    None => assert_eq!(g.dequantize(t).unwrap(), w, "{name} {gname} kept"),
                }
            }
            let file_type = match name {
                "gguf-q8_0" => 7,
                "gguf-q4_0" => 2,
                "gguf-q5_k_m" => 17,
                "gguf-q3_k_m" => 12,
                _ => 15,
            };
            assert_eq!(g.get("general.file_type"), Some(&MetaValue::U32(file_type)), "{dir} {name}");
            eprintln!("{dir} {name}: {types:?}");
        }
    }
}

/// Runs tests/gguf_check.py on `gguf` and compares what the `gguf` package sees with Pareto's reader.
pub(crate) fn check_with_python(gguf: &Path, scratch: &Path) -> usize {
    let script = repo_root().join("tests/gguf_check.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(gguf)
        .arg(scratch)
        .output()
        .expect("python3 runs (scripts/test.sh installs the gguf package)");
    assert!(out.status.success(), "gguf_check.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(scratch.join("index.json")).unwrap()).unwrap();
    let ours = GgufFile::open(gguf).unwrap();
    let tensors = index["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), ours.tensors.len());
    for (py, t) in tensors.iter().zip(&ours.tensors) {
        assert_eq!(py["name"], t.name.as_str());
        assert_eq!(py["type"].as_u64().unwrap(), u64::from(t.ggml_type), "{}", t.name);
        let dims: Vec<u64> = py["dims"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
        assert_eq!(dims, t.dims, "{}", t.name);
        assert_eq!(py["offset"].as_u64().unwrap(), ours.data_start + t.offset, "{}", t.name);
        let theirs = f32s(&std::fs::read(scratch.join(py["file"].as_str().unwrap())).unwrap());
        let mine = ours.dequantize(t).unwrap();
        assert_eq!(theirs.len(), mine.len(), "{}", t.name);
        let scale = mine.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-30);
        let worst = theirs.iter().zip(&mine).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= scale * 1e-6, "{}: gguf-py and Pareto dequantize differently (max diff {worst})", t.name);
    }
    let arch = ours.get("general.architecture").and_then(MetaValue::as_str).unwrap();
    assert_eq!(index["metadata"]["general.architecture"], arch);
    assert_eq!(index["alignment"], 32);
    tensors.len()
}

#[test]
fn gguf_exports_are_read_identically_by_llama_cpps_python_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("llama");
    llama_fixture(&src);
    let fixture = Model::open(&src).unwrap();
    let stories_model = Model::open(stories()).unwrap();
    let mut checked = 0;
    for (i, (m, r)) in [
        (&stories_model, keep_all()),
        (&stories_model, preset("gguf-q8_0")),
        (&stories_model, preset("gguf-q4_k_m")),
        (&fixture, preset("gguf-q8_0")),
        (&fixture, preset("gguf-q4_0")),
        (&fixture, preset("gguf-q4_k_m")),
        (&fixture, recipe("name = \"f16\"\nignore = [\"role:norm\"]\n[default.quantize]\nformat = \"f16\"\n")),
    ]
    .into_iter()
    .enumerate()
    {
        let out = tmp.path().join(format!("out{i}"));
        export(m, &r, ExportFormat::Gguf, &out).unwrap();
        checked += check_with_python(&out.join("model.gguf"), &tmp.path().join(format!("py{i}")));
    }
    assert!(checked > 7 * 20);
    // The original file too: Pareto's reader agrees with gguf-py on a GGUF it did not write.
    check_with_python(&original_gguf(), &tmp.path().join("py-orig"));
}

#[test]
fn gguf_q8_0_stories_greedy_generation_matches_the_reference() {
    use candle_core::quantized::gguf_file;
    use candle_core::{Device, Tensor};
    use candle_transformers::models::quantized_llama::ModelWeights;

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("q8");
    let model = Model::open(stories()).unwrap();
    export(&model, &preset("gguf-q8_0"), ExportFormat::Gguf, &out).unwrap();
    let path = out.join("model.gguf");
    let mut f = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    let dev = Device::Cpu;
    let mut llama = ModelWeights::from_gguf(content, &mut f, &dev).unwrap();
    let mut ids = vec![1u32];
    for pos in 0..60 {
        let last = *ids.last().unwrap();
        let input = Tensor::new(&[last], &dev).unwrap().unsqueeze(0).unwrap();
        let logits = llama.forward(&input, pos).unwrap().squeeze(0).unwrap();
        ids.push(logits.argmax(0).unwrap().to_scalar::<u32>().unwrap());
    }
    let agree = ids.iter().zip(GREEDY.iter()).take_while(|(a, b)| a == b).count();
    assert_eq!(ids, GREEDY.to_vec(), "Q8_0 greedy agrees with the reference for {agree} of 61 ids");
}

#[test]
fn gguf_exports_are_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let model = Model::open(stories()).unwrap();
    let a = export(&model, &preset("gguf-q4_k_m"), ExportFormat::Gguf, &tmp.path().join("a")).unwrap();
    let b = export(&model, &preset("gguf-q4_k_m"), ExportFormat::Gguf, &tmp.path().join("b")).unwrap();
    assert_eq!(a.content_hash, b.content_hash);
    assert_eq!(
        std::fs::read(tmp.path().join("a/model.gguf")).unwrap(),
        std::fs::read(tmp.path().join("b/model.gguf")).unwrap()
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("a/pareto-manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "gguf");
    assert_eq!(manifest["content_hash"], a.content_hash.as_str());
    assert!(manifest["tensors"].as_array().unwrap().iter().any(|t| t["dtype"] == "Q5_0"), "q4_k fell back to q5_0");
}

// ---- compressed-tensors and GPTQ ---------------------------------------------------------------

/// Every quantized tensor read back equals the registry codec's output on the source, exactly.
fn assert_round_trip(model: &Model, recipe: &Recipe, read: &[ReadTensor]) -> usize {
    let plan = recipe.resolve(model).unwrap();
    let by = st_read::by_name(read.to_vec());
    let mut n = 0;
    for pt in &plan.tensors {
        let r = by.get(&pt.name).unwrap_or_else(|| panic!("{} not read back", pt.name));
        let w = source_f32(model, &pt.source_name);
        match (pt.action.format, r) {
            (Some(id), ReadTensor::Quantized { format, q, .. }) => {
                assert_eq!(*format, id, "{}", pt.name);
                let f = pareto_formats::lookup(id).unwrap();
                let expect = f.quantize(&w, pt.shape[0], pt.shape[1]).unwrap();
                assert_eq!(q, &expect, "{} ({id})", pt.name);
                assert_eq!(r.dequantize().unwrap(), f.dequantize(&expect).unwrap());
                n += 1;
            }
            (None, ReadTensor::Dense { values, .. }) => assert_eq!(values, &w, "{}", pt.name),
            (f, other) => panic!("{}: planned {f:?}, read {other:?}", pt.name),
        }
    }
    n
}

#[test]
fn compressed_tensors_exports_round_trip_through_the_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("llama");
    llama_fixture(&src);
    let model = Model::open(&src).unwrap();
    let cases: Vec<(&str, Recipe, &str)> = vec![
        ("w4-g128", preset("w4-g128"), "pack-quantized"),
        ("w4-g128-asym", preset("w4-g128-asym"), "pack-quantized"),
        ("w4-g32", preset("w4-g32"), "pack-quantized"),
        ("g64", recipe("[default.quantize]\nformat = \"int4_g64_asym\"\n"), "pack-quantized"),
        ("w8", preset("w8"), "pack-quantized"),
        ("fp8", preset("fp8"), "float-quantized"),
        ("fp8-tensor", recipe("[default.quantize]\nformat = \"fp8_e4m3_tensor\"\n"), "float-quantized"),
    ];
    for (name, r, format) in cases {
        let out = tmp.path().join(name);
        export(&model, &r, ExportFormat::CompressedTensors, &out).unwrap();
        let read = st_read::read_compressed_tensors(&out).unwrap();
        assert_eq!(assert_round_trip(&model, &r, &read), 14, "{name}: 7 linears x 2 layers quantized");
        let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
        let qc = &cfg["quantization_config"];
        assert_eq!(qc["quant_method"], "compressed-tensors");
        assert_eq!(qc["format"], format, "{name}");
        assert_eq!(qc["quantization_status"], "compressed");
        assert_eq!(qc["ignore"], serde_json::json!(["lm_head"]), "{name}");
        // Names, dtypes and shapes as compressed-tensors writes them, read by the safetensors crate.
        let st = read_all(&out.join("model.safetensors"));
        let q = "model.layers.0.self_attn.q_proj";
        if format == "pack-quantized" {
            let bits = if name == "w8" { 8 } else { 4 };
            let (dt, shape, _) = &st[&format!("{q}.weight_packed")];
            assert_eq!((*dt, shape.clone()), (safetensors::Dtype::I32, vec![256, 256 * bits / 32]), "{name}");
            let (dt, shape, bytes) = &st[&format!("{q}.weight_shape")];
            assert_eq!((*dt, shape.clone()), (safetensors::Dtype::I64, vec![2]));
            assert_eq!(bytes[..8], 256i64.to_le_bytes());
            assert_eq!(st[&format!("{q}.weight_scale")].0, safetensors::Dtype::F16);
            let asym = name.contains("asym") || name == "g64";
            assert_eq!(st.contains_key(&format!("{q}.weight_zero_point")), asym, "{name}");
            assert_eq!(qc["config_groups"]["group_0"]["weights"]["symmetric"], !asym);
            assert!(!st.contains_key(&format!("{q}.weight")));
        } else {
            assert_eq!(st[&format!("{q}.weight")].0, safetensors::Dtype::F8_E4M3);
            let (dt, shape, _) = &st[&format!("{q}.weight_scale")];
            let expect = if name == "fp8" { vec![256, 1] } else { vec![1] };
            assert_eq!((*dt, shape.clone()), (safetensors::Dtype::F32, expect));
            assert_eq!(qc["config_groups"]["group_0"]["input_activations"]["dynamic"], true);
        }
        assert!(out.join("tokenizer.json").is_file());
    }
}

#[test]
fn gptq_exports_round_trip_through_the_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("llama");
    llama_fixture(&src);
    let model = Model::open(&src).unwrap();
    for (name, bits, group, sym) in [("w4-g128", 4, 128, true), ("w4-g128-asym", 4, 128, false), ("w8", 8, -1, true)] {
        let out = tmp.path().join(name);
        export(&model, &preset(name), ExportFormat::Gptq, &out).unwrap();
        let read = st_read::read_gptq(&out).unwrap();
        assert_eq!(assert_round_trip(&model, &preset(name), &read), 14, "{name}");
        let qc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("quantize_config.json")).unwrap()).unwrap();
        assert_eq!(
            (qc["bits"].as_i64(), qc["group_size"].as_i64(), qc["sym"].as_bool()),
            (Some(bits), Some(group), Some(sym))
        );
        assert_eq!(qc["checkpoint_format"], "gptq");
        let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
        assert_eq!(cfg["quantization_config"], qc);
        let st = read_all(&out.join("model.safetensors"));
        let m = "model.layers.1.mlp.down_proj"; // [256 out, 512 in]
        let pf = 32 / bits as usize;
        let groups = if group < 0 { 1 } else { 512 / group as usize };
        assert_eq!(st[&format!("{m}.qweight")].1, vec![512 / pf, 256]);
        assert_eq!(st[&format!("{m}.qzeros")].1, vec![groups, 256 / pf]);
        assert_eq!(st[&format!("{m}.scales")].1, vec![groups, 256]);
        let (_, shape, g_idx) = &st[&format!("{m}.g_idx")];
        assert_eq!(shape, &vec![512]);
        let group_len = if group < 0 { 512 } else { group as usize };
        assert_eq!(g_idx[4 * 200..4 * 201], ((200 / group_len) as i32).to_le_bytes());
        if sym {
            // Zero point 2^(b-1), stored minus one: 0x77777777 (4-bit) or 0x7f7f7f7f (8-bit).
            let word = if bits == 4 { 0x7777_7777u32 } else { 0x7f7f_7f7f };
            assert!(st[&format!("{m}.qzeros")].2.chunks_exact(4).all(|c| c == word.to_le_bytes()), "{name}");
        }
    }
}

#[test]
fn gptq_mixed_formats_are_declared_with_dynamic_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("llama");
    llama_fixture(&src);
    let model = Model::open(&src).unwrap();
    // int4 g128 everywhere; layer 0's q/k/v (one fused layer in vLLM) and every down_proj in 8-bit;
    // layer 1's o_proj dense; lm_head quantized in the base format.
    let mixed = recipe(
        r#"name = "mixed"
ignore = ["role:norm", "role:embedding", "model.layers.1.self_attn.o_proj.weight"]
[default.quantize]
format = "int4_g128_sym"
[[rules]]
targets = ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight", "*.mlp.down_proj.weight"]
quantize = { format = "int8_channel" }
"#,
    );
    let out = tmp.path().join("out");
    export(&model, &mixed, ExportFormat::Gptq, &out).unwrap();
    let qc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("quantize_config.json")).unwrap()).unwrap();
    assert_eq!(
        (qc["bits"].as_i64(), qc["group_size"].as_i64(), qc["lm_head"].as_bool()),
        (Some(4), Some(128), Some(true))
    );
    let dynamic = qc["dynamic"].as_object().unwrap();
    let eight = serde_json::json!({"bits": 8, "group_size": -1, "sym": true, "desc_act": false});
    assert_eq!(dynamic[r"+:^model\.layers\.0\.self_attn\.(?:q_proj|k_proj|v_proj|qkv_proj)$"], eight);
    assert_eq!(dynamic[r"+:^model\.layers\.1\.mlp\.down_proj$"], eight);
    assert_eq!(dynamic[r"-:^model\.layers\.1\.self_attn\.o_proj$"], serde_json::json!({}));
    assert_eq!(dynamic.len(), 4, "{dynamic:?}");
    // Read back with the rules applied: each module in its own format, equal to the reference codecs.
    let read = st_read::read_gptq(&out).unwrap();
    assert_eq!(assert_round_trip(&model, &mixed, &read), 14);
    let formats: BTreeMap<&str, &str> = read
        .iter()
        .filter_map(|t| match t {
            ReadTensor::Quantized { name, format, .. } => Some((name.as_str(), *format)),
            _ => None,
        })
        .collect();
    assert_eq!(formats["model.layers.0.self_attn.k_proj.weight"], "int8_channel");
    assert_eq!(formats["model.layers.1.self_attn.k_proj.weight"], "int4_g128_sym");
    assert_eq!(formats["lm_head.weight"], "int4_g128_sym");
    assert!(!formats.contains_key("model.layers.1.self_attn.o_proj.weight"));
    // Fused members in different formats cannot be loaded by vLLM: refused by name.
    let split = recipe(
        "name = \"split\"\nignore = [\"role:norm\", \"role:embedding\", \"role:head\"]\n[default.quantize]\nformat = \"int4_g128_sym\"\n\
         [[rules]]\ntargets = [\"model.layers.0.self_attn.k_proj.weight\"]\nquantize = { format = \"int8_channel\" }\n",
    );
    match export(&model, &split, ExportFormat::Gptq, &tmp.path().join("split")).unwrap_err() {
        Error::ExportFormatUnsupported { tensor, format, .. } => {
            assert!(tensor.contains("layers.0.self_attn") && format.contains("fuses"), "{tensor}: {format}");
        }
        other => panic!("expected ExportFormatUnsupported, got {other}"),
    }
    assert!(!tmp.path().join("split").exists());
}

// ---- bad input ------------------------------------------------------------------------------

#[test]
fn formats_a_target_cannot_express_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("llama");
    llama_fixture(&src);
    let model = Model::open(&src).unwrap();
    let out = tmp.path().join("out");
    let err = export(&model, &preset("gguf-q4_k_m"), ExportFormat::CompressedTensors, &out).unwrap_err();
    match &err {
        Error::ExportFormatUnsupported { target, tensor, format, supported } => {
            assert_eq!((*target, tensor.as_str(), format.as_str()), ("compressed-tensors", "lm_head.weight", "q6_k"));
            assert!(supported.contains("int4_g32") && supported.contains("fp8_e4m3"), "{supported}");
        }
        other => panic!("expected ExportFormatUnsupported, got {other}"),
    }
    let err = export(&model, &preset("w4-g128"), ExportFormat::Gguf, &out).unwrap_err();
    assert!(
        matches!(&err, Error::ExportFormatUnsupported { target: "GGUF", format, .. } if format == "int4_g128_sym"),
        "{err}"
    );
    assert!(err.to_string().contains("q8_0, q4_0"), "{err}");
    let err = export(&model, &preset("gguf-q8_0"), ExportFormat::Gptq, &out).unwrap_err();
    assert!(matches!(&err, Error::ExportFormatUnsupported { target: "GPTQ", .. }), "{err}");
    let err = export(&model, &preset("nf4"), ExportFormat::CompressedTensors, &out).unwrap_err();
    assert!(matches!(&err, Error::ExportFormatUnsupported { format, .. } if format == "nf4"), "{err}");
    no_leftovers(tmp.path().join("llama").parent().unwrap());
}

#[test]
fn gguf_refuses_non_llama_architectures_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("phi");
    std::fs::create_dir(&src).unwrap();
    write_f32_model(&src.join("model.safetensors"), &[("model.layers.0.mlp.fc1.weight", vec![4, 32], vec![0.5; 128])]);
    std::fs::write(
        src.join("config.json"),
        r#"{"model_type": "phi", "architectures": ["PhiForCausalLM"], "hidden_size": 32, "num_hidden_layers": 1,
            "num_attention_heads": 4, "intermediate_size": 4, "vocab_size": 10}"#,
    )
    .unwrap();
    let model = Model::open(&src).unwrap();
    let err = export(&model, &preset("gguf-q8_0"), ExportFormat::Gguf, &tmp.path().join("out")).unwrap_err();
    match &err {
        Error::GgufUnsupportedArchitecture { architecture, supported } => {
            assert_eq!(architecture, "phi");
            assert!(supported.contains("llama") && supported.contains("mistral") && supported.contains("qwen2"));
        }
        other => panic!("expected GgufUnsupportedArchitecture, got {other}"),
    }
    no_leftovers(tmp.path());
}

#[test]
fn shapes_gptq_cannot_pack_are_a_clear_error() {
    // stories260K's FFN width 172 is not a multiple of 32: w4-g32 leaves down_proj (172 inputs)
    // unquantized, which a `dynamic` rule can declare, but gate_proj's 172 outputs cannot fill the
    // 4-bit qzeros words: refused by name before anything is written.
    let tmp = tempfile::tempdir().unwrap();
    let model = Model::open(stories()).unwrap();
    let err = export(&model, &preset("w4-g32"), ExportFormat::Gptq, &tmp.path().join("out")).unwrap_err();
    match &err {
        Error::ExportTensor { target: "GPTQ", tensor, problem } => {
            assert_eq!(tensor, "model.layers.0.mlp.gate_proj.weight");
            assert!(problem.contains("172 output features is not a multiple of 8"), "{problem}");
        }
        other => panic!("expected ExportTensor, got {other}"),
    }
    // The same plan is fine for compressed-tensors (the kept layer goes to `ignore`).
    export(&model, &preset("w4-g32"), ExportFormat::CompressedTensors, &tmp.path().join("ct")).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("ct/config.json")).unwrap()).unwrap();
    let ignore = cfg["quantization_config"]["ignore"].as_array().unwrap();
    assert!(ignore.iter().any(|v| v == "model.layers.0.mlp.down_proj"), "{ignore:?}");
    assert!(!tmp.path().join("out").exists());
    // Compressing that artifact again would quantize its scales: refused by name, for any recipe.
    let ct = Model::open(tmp.path().join("ct")).unwrap();
    let err = preset("w8").resolve(&ct).unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyCompressed { evidence, .. } if evidence.contains("compressed-tensors")),
        "{err}"
    );
    // Without its config.json the packed tensors still tell.
    std::fs::remove_file(tmp.path().join("ct/config.json")).unwrap();
    let err = preset("w8").resolve(&Model::open(tmp.path().join("ct")).unwrap()).unwrap_err();
    assert!(matches!(&err, Error::AlreadyCompressed { evidence, .. } if evidence.contains("weight_packed")), "{err}");
}

#[test]
fn existing_targets_are_replaced_only_when_forced_and_ours() {
    let tmp = tempfile::tempdir().unwrap();
    let model = Model::open(stories()).unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), b"mine").unwrap();
    let plan = preset("gguf-q8_0").resolve(&model).unwrap();
    let opts = CompressOptions::new(&out).with_format(ExportFormat::Gguf);
    let err = compress(&model, &plan, &opts, &JobContext::silent()).unwrap_err();
    assert!(matches!(&err, Error::OutputNotOurs { path, .. } if path == &out), "{err}");
    assert_eq!(std::fs::read(out.join("keep.txt")).unwrap(), b"mine");
    // Forcing replaces an earlier output of Pareto's only, never a folder of the user's.
    let mut forced = CompressOptions::new(&out).with_format(ExportFormat::Gguf);
    forced.force = true;
    let err = compress(&model, &plan, &forced, &JobContext::silent()).unwrap_err();
    assert!(matches!(&err, Error::OutputNotOurs { .. }), "{err}");
    assert_eq!(std::fs::read(out.join("keep.txt")).unwrap(), b"mine");
    std::fs::remove_dir_all(&out).unwrap();
    compress(&model, &plan, &opts, &JobContext::silent()).unwrap();
    let err = compress(&model, &plan, &opts, &JobContext::silent()).unwrap_err();
    assert!(matches!(&err, Error::OutputExists { path } if path == &out), "{err}");
    compress(&model, &plan, &forced, &JobContext::silent()).unwrap();
    assert!(out.join("model.gguf").is_file());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "nothing else left beside it");
}

#[test]
fn disk_full_during_any_export_leaves_nothing_under_the_final_name() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("llama");
    llama_fixture(&src);
    let model = Model::open(&src).unwrap();
    for (format, r) in [
        (ExportFormat::Gguf, "gguf-q4_k_m"),
        (ExportFormat::CompressedTensors, "w4-g128"),
        (ExportFormat::Gptq, "w4-g128"),
    ] {
        let plan = preset(r).resolve(&model).unwrap();
        let mut opts = CompressOptions::new(tmp.path().join("out")).with_format(format);
        opts.opener = full_disk_opener(200_000);
        let err = compress(&model, &plan, &opts, &JobContext::silent()).unwrap_err();
        match &err {
            Error::Write { source, .. } => assert_eq!(source.kind(), io::ErrorKind::StorageFull, "{format}"),
            other => panic!("{format}: expected Write, got {other}"),
        }
        assert!(err.to_string().contains("disk full"), "{err}");
        no_leftovers(tmp.path());
    }
}

#[test]
fn cancel_mid_export_stops_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let model = Model::open(stories()).unwrap();
    for (format, r) in [(ExportFormat::Gguf, "gguf-q8_0"), (ExportFormat::CompressedTensors, "w8")] {
        let plan = preset(r).resolve(&model).unwrap();
        let token = CancelToken::new();
        let progress = Arc::new(CancelAfter { after: 7, done: AtomicU64::new(0), token: token.clone() });
        let ctx = JobContext::new(progress.clone(), token);
        let opts = CompressOptions::new(tmp.path().join("out")).with_format(format);
        let err = compress(&model, &plan, &opts, &ctx).unwrap_err();
        assert!(matches!(err, Error::Cancelled), "{format}: {err}");
        assert_eq!(progress.done.load(Ordering::SeqCst), 7, "{format}: stopped right after the cancel");
        no_leftovers(tmp.path());
    }
}

#[test]
fn gguf_reader_rejects_malformed_files_with_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read(original_gguf()).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("magic", [b"GGUX".as_slice(), &good[4..]].concat(), "is not \"GGUF\""),
        ("truncated", good[..14000].to_vec(), "runs past the end"),
        ("short-data", good[..good.len() - 100].to_vec(), "runs past the end"),
        ("huge-count", [&good[..8], &u64::MAX.to_le_bytes()[..], &good[16..]].concat(), "cannot fit"),
        ("version", [&good[..4], &9u32.to_le_bytes()[..], &good[8..]].concat(), "version 9"),
    ];
    for (name, bytes, needle) in cases {
        let p = tmp.path().join(format!("{name}.gguf"));
        std::fs::write(&p, bytes).unwrap();
        let err = GgufFile::open(&p).unwrap_err();
        assert!(matches!(err, Error::GgufInvalid { .. } | Error::GgufTensorInvalid { .. }), "{name}: {err}");
        assert!(err.to_string().contains(needle), "{name}: {err}");
    }
    // An unknown ggml type in a tensor info is named.
    let mut bad = good.clone();
    let name = b"token_embd.weight";
    let at = bad.windows(name.len()).position(|w| w == name).unwrap() + name.len();
    // n_dims (4) + 2 dims (16), then the type.
    bad[at + 20..at + 24].copy_from_slice(&77u32.to_le_bytes());
    let p = tmp.path().join("type.gguf");
    std::fs::write(&p, bad).unwrap();
    let err = GgufFile::open(&p).unwrap_err();
    assert!(err.to_string().contains("type 77 (unknown)"), "{err}");
}

/// A packed export measures the same per-tensor error as the dense path (both compare the
/// original with exactly the dequantized codes), though it never holds a second full-size copy.
#[test]
fn packed_metrics_equal_dense_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let model = Model::open(stories()).unwrap();
    for (format, r) in [(ExportFormat::Gguf, "gguf-q4_0"), (ExportFormat::CompressedTensors, "w4-g32")] {
        let plan = preset(r).resolve(&model).unwrap();
        let dense = compress(
            &model,
            &plan,
            &CompressOptions::new(tmp.path().join(format!("{r}-dense"))),
            &JobContext::silent(),
        )
        .unwrap();
        let packed = compress(
            &model,
            &plan,
            &CompressOptions::new(tmp.path().join(format!("{r}-packed"))).with_format(format),
            &JobContext::silent(),
        )
        .unwrap();
        let mut compared = 0;
        for d in dense.tensors.iter().filter(|t| t.format.is_some()) {
            let p = packed.tensors.iter().find(|p| p.source_name == d.source_name).unwrap();
            let (dm, pm) = (d.metrics.unwrap(), p.metrics.unwrap());
            assert!((dm.rel_error - pm.rel_error).abs() <= 1e-9 * dm.rel_error.max(1e-12), "{r} {}", d.name);
            assert_eq!(dm.max_abs_error, pm.max_abs_error, "{r} {}", d.name);
            compared += 1;
        }
        assert!(compared > 20, "{r}: {compared}");
    }
}

#[test]
fn gguf_row_chunked_quantization_of_large_tensors_writes_the_same_bytes() {
    // With a 0-byte threshold every tensor counts as large: those that allow it (no Q/K
    // permutation, no pruning) are quantized one row at a time.
    let model = Model::open(stories()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for r in [preset("gguf-q8_0"), preset("gguf-q4_k_m"), keep_all()] {
        let plan = r.resolve(&model).unwrap();
        let whole = tmp.path().join(format!("{}-whole", r.name));
        let rows = tmp.path().join(format!("{}-rows", r.name));
        let a = compress(
            &model,
            &plan,
            &CompressOptions::new(&whole).with_format(ExportFormat::Gguf),
            &JobContext::silent(),
        )
        .unwrap();
        let mut opts = CompressOptions::new(&rows).with_format(ExportFormat::Gguf);
        opts.large_tensor_bytes = 0;
        let b = compress(&model, &plan, &opts, &JobContext::silent()).unwrap();
        assert_eq!(a.content_hash, b.content_hash, "{}", r.name);
        for (x, y) in a.tensors.iter().zip(&b.tensors) {
            match (x.metrics, y.metrics) {
                (Some(mx), Some(my)) => {
                    let tol = 1e-9 * mx.rel_error.abs().max(1.0);
                    assert!((mx.rel_error - my.rel_error).abs() <= tol, "{}: {mx:?} vs {my:?}", x.name);
                }
                (mx, my) => assert_eq!(mx.is_some(), my.is_some(), "{}", x.name),
            }
        }
    }
}

/// A GGUF llama.cpp cannot load is not written: no tokenizer.json (unless a tensors-only file is
/// asked for), or a tokenizer whose ids run past the model's embedding rows.
#[test]
fn gguf_without_a_usable_vocabulary_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = stories_copy(tmp.path(), &["model.safetensors", "config.json"]);
    let model = Model::open(&src).unwrap();
    let plan = preset("gguf-q8_0").resolve(&model).unwrap();
    let out = tmp.path().join("out");
    let opts = CompressOptions::new(&out).with_format(ExportFormat::Gguf);
    let err = compress(&model, &plan, &opts, &JobContext::silent()).unwrap_err();
    assert!(
        matches!(&err, Error::ExportConfig { target: "GGUF", problem } if problem.contains("no tokenizer.json")),
        "{err}"
    );
    assert!(!out.exists());
    let mut weights_only = CompressOptions::new(&out).with_format(ExportFormat::Gguf);
    weights_only.gguf_weights_only = true;
    let report = compress(&model, &plan, &weights_only, &JobContext::silent()).unwrap();
    assert!(report.tensors[0].notes.iter().any(|n| n.contains("weights only")), "{:?}", report.tensors[0].notes);

    // Another model's tokenizer: an added token at id 600 of a 512-row embedding.
    let mut tok: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stories().join("tokenizer.json")).unwrap()).unwrap();
    tok["added_tokens"].as_array_mut().unwrap().push(serde_json::json!({
        "id": 600, "content": "<extra>", "single_word": false, "lstrip": false, "rstrip": false,
        "normalized": false, "special": true
    }));
    std::fs::write(src.join("tokenizer.json"), tok.to_string()).unwrap();
    let model = Model::open(&src).unwrap();
    let err = compress(
        &model,
        &plan,
        &CompressOptions::new(tmp.path().join("o2")).with_format(ExportFormat::Gguf),
        &JobContext::silent(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("token id 600 is past the model's 512 embedding rows"), "{err}");
    assert!(!tmp.path().join("o2").exists());
}

/// A compressed-tensors or GPTQ checkpoint without config.json is one vLLM and GPTQModel cannot
/// load (they read the architecture and `quantization_config` from it): not written.
#[test]
fn engine_formats_without_a_config_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = stories_copy(tmp.path(), &["model.safetensors", "tokenizer.json"]);
    let model = Model::open(&src).unwrap();
    let plan = preset("w4-g128").resolve(&model).unwrap();
    for format in [ExportFormat::CompressedTensors, ExportFormat::Gptq] {
        let out = tmp.path().join(format.as_str());
        let opts = CompressOptions::new(&out).with_format(format);
        let err = compress(&model, &plan, &opts, &JobContext::silent()).unwrap_err();
        assert!(matches!(&err, Error::ExportNeedsConfig { format: f, .. } if *f == format.as_str()), "{err}");
        assert!(err.to_string().contains("config.json"), "{err}");
        assert!(!out.exists());
    }
    // The dense format is a plain tensors file and stays allowed.
    let out = tmp.path().join("dense");
    compress(&model, &plan, &CompressOptions::new(&out), &JobContext::silent()).unwrap();
    assert!(out.join("model.safetensors").is_file());
}
