//! BERT encoders to GGUF for llama.cpp's embedding serving, on the real all-MiniLM-L6-v2.
//!
//! The expected values are what llama.cpp 11434's own tools write for this model: its
//! convert_hf_to_gguf.py (F32: every tensor and every metadata value but the pre-tokenizer name
//! identical to Pareto's export) and llama-quantize (every GGUF preset's type from that F32 file: every
//! tensor byte-identical to Pareto's presets, pinned in tests/data/minilm-llama-quantize.json). Those side-by-side runs need llama.cpp and torch and
//! are in BENCHMARKS.md (scripts/bench-bert-gguf.sh); here the same facts are pinned on Pareto's side.

use pareto_core::Model;
use pareto_core::export::ExportFormat;
use pareto_core::export::gguf::{GgufFile, MetaValue};

use crate::common::*;
use crate::export_formats::{check_with_python, export, preset};

fn u(f: &GgufFile, key: &str) -> u64 {
    f.get(key).and_then(MetaValue::as_u64).unwrap_or_else(|| panic!("{key} missing or not an integer"))
}

fn flag(f: &GgufFile, key: &str) -> bool {
    match f.get(key) {
        Some(MetaValue::Bool(b)) => *b,
        other => panic!("{key}: {other:?}"),
    }
}

fn strings(f: &GgufFile, key: &str) -> Vec<String> {
    f.get(key).and_then(MetaValue::as_array).unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[test]
fn minilm_is_written_as_llama_cpps_converter_writes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let model = Model::open(minilm()).unwrap();
    let out = tmp.path().join("f32");
    let keep = pareto_core::Recipe::from_toml("name = \"keep\"\nignore = []\n", "test").unwrap();
    let report = export(&model, &keep, ExportFormat::Gguf, &out).unwrap();
    let g = GgufFile::open(&out.join("model.gguf")).unwrap();

    // Every tensor of llama.cpp's bert graph, bit for bit the source's values; the position ids,
    // the pooler and nothing else left out, each said.
    assert_eq!(g.tensors.len(), 101);
    for t in model.tensors() {
        let Some(name) = pareto_core::export::gguf::names::to_gguf(&t.name) else {
            assert!(["embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"].contains(&t.name.as_str()));
            let said = report.tensors.iter().flat_map(|r| &r.notes).any(|n| n.starts_with(&t.name));
            assert!(said, "{} left out without a note", t.name);
            continue;
        };
        let gt = g.tensor(&name).unwrap_or_else(|| panic!("{name} missing"));
        let dims: Vec<u64> = t.shape.iter().rev().map(|&d| d as u64).collect();
        assert_eq!(gt.dims, dims, "{name}");
        assert_eq!(g.dequantize(gt).unwrap(), model.read_f32(t).unwrap(), "{name}");
    }
    assert!(g.tensor("blk.5.layer_output_norm.bias").is_some() && g.tensor("token_types.weight").is_some());

    // Hyper-parameters as the converter's BertModel states them.
    assert_eq!(g.get("general.architecture").and_then(MetaValue::as_str), Some("bert"));
    for (key, want) in [
        ("bert.block_count", 6),
        ("bert.context_length", 512),
        ("bert.embedding_length", 384),
        ("bert.feed_forward_length", 1536),
        ("bert.attention.head_count", 12),
        ("bert.pooling_type", 1), // mean, from 1_Pooling/config.json
        ("tokenizer.ggml.token_type_count", 2),
        ("general.file_type", 0),
    ] {
        assert_eq!(u(&g, key), want, "{key}");
    }
    assert_eq!(g.get("bert.attention.layer_norm_epsilon"), Some(&MetaValue::F32(1e-12)));
    assert!(!flag(&g, "bert.attention.causal"));
    assert!(g.get("bert.rope.freq_base").is_none() && g.get("bert.vocab_size").is_none());

    // The WordPiece vocabulary in llama.cpp's "phantom space" form.
    let hf = tokenizers::Tokenizer::from_file(minilm().join("tokenizer.json")).unwrap();
    let tokens = strings(&g, "tokenizer.ggml.tokens");
    assert_eq!(tokens.len(), 30522);
    let id = |piece: &str| hf.token_to_id(piece).unwrap() as usize;
    assert_eq!(tokens[id("the")], "\u{2581}the");
    assert_eq!(tokens[id("##s")], "s");
    assert_eq!(tokens[id("[CLS]")], "[CLS]");
    assert_eq!(tokens[1], "\u{2581}[unused0]");
    let types = g.get("tokenizer.ggml.token_type").and_then(MetaValue::as_array).unwrap();
    let control: Vec<usize> = (0..types.len()).filter(|&i| types[i] == MetaValue::I32(3)).collect();
    assert_eq!(control, vec![0, 100, 101, 102, 103], "[PAD] [UNK] [CLS] [SEP] [MASK] are CONTROL, the rest NORMAL");
    assert!(g.get("tokenizer.ggml.scores").is_none());
    assert_eq!(g.get("tokenizer.ggml.model").and_then(MetaValue::as_str), Some("bert"));
    for (key, want) in [("bos", 101), ("eos", 102), ("unknown", 100), ("seperator", 102), ("padding", 0), ("mask", 103)]
    {
        assert_eq!(u(&g, &format!("tokenizer.ggml.{key}_token_id")), want, "{key}");
    }
    // `[CLS] $A [SEP]`: both ends added, no separate separator.
    assert!(flag(&g, "tokenizer.ggml.add_bos_token") && flag(&g, "tokenizer.ggml.add_eos_token"));
    assert!(!flag(&g, "tokenizer.ggml.add_sep_token"));
    assert!(flag(&g, "tokenizer.ggml.normalizer.lowercase"));
    check_with_python(&out.join("model.gguf"), &tmp.path().join("py"));
}

#[test]
fn minilm_quantized_by_the_gguf_presets_is_byte_identical_to_llama_quantize() {
    // tests/data/minilm-llama-quantize.json: llama-quantize's type and bytes (sha256 prefix) for
    // every tensor of every llama.cpp type Pareto has a preset for. 384-wide rows send the k-quants
    // to their fallbacks (Q3_K→Q4_0, Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0) and only the six 1536-wide
    // ffn_down linears keep them; the word embedding takes the output type (no output.weight).
    use sha2::Digest;
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/data/minilm-llama-quantize.json")).unwrap(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let model = Model::open(minilm()).unwrap();
    let presets = want["presets"].as_object().unwrap();
    assert_eq!(presets.len(), 13);
    for (preset_name, expected) in presets {
        let out = tmp.path().join(preset_name);
        export(&model, &preset(preset_name), ExportFormat::Gguf, &out).unwrap();
        let g = GgufFile::open(&out.join("model.gguf")).unwrap();
        assert_eq!(u(&g, "general.file_type"), expected["file_type"].as_u64().unwrap(), "{preset_name}");
        assert_eq!(g.tensors.len(), 101, "{preset_name}");
        for t in &g.tensors {
            let ty = pareto_core::export::gguf::types::name(t.ggml_type).unwrap();
            let digest = sha2::Sha256::digest(g.read_raw(t).unwrap());
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            let theirs = match ty {
                "F32" => {
                    format!("F32 {}", want["f32"][&t.name].as_str().unwrap_or("(not F32 in llama-quantize's file)"))
                }
                _ => expected["tensors"][&t.name].as_str().unwrap_or("(not quantized by llama-quantize)").to_string(),
            };
            assert_eq!(format!("{ty} {hex}"), theirs, "{preset_name} {}", t.name);
        }
        if preset_name == "gguf-q3_k_m" {
            check_with_python(&out.join("model.gguf"), &tmp.path().join("py"));
        }
    }
    // Every preset Pareto ships for GGUF is pinned here.
    let shipped = pareto_core::recipe::PRESETS.iter().filter(|p| p.name.starts_with("gguf-")).count();
    assert_eq!(shipped, presets.len());
}

#[test]
fn a_bert_gguf_opens_as_the_model_it_was_written_from() {
    // MiniLM → F32 GGUF → Hugging Face folder (`pareto convert`) → GGUF again. (The same conversion
    // of the F32 GGUF llama.cpp's converter writes scores STS-B exactly as the original: BENCHMARKS.md.)
    let tmp = tempfile::tempdir().unwrap();
    let model = Model::open(minilm()).unwrap();
    let keep = pareto_core::Recipe::from_toml("name = \"keep\"\nignore = []\n", "test").unwrap();
    let first = tmp.path().join("gguf");
    export(&model, &keep, ExportFormat::Gguf, &first).unwrap();
    let ctx = pareto_core::job::JobContext::silent();
    let exact = pareto_core::import::TensorDtype::Exact;
    let hf =
        pareto_core::import::convert(&first.join("model.gguf"), &tmp.path().join("hf"), exact, false, &ctx).unwrap();
    let back = Model::open(&hf.output).unwrap();

    // Every tensor the GGUF holds, bit for bit under its Hugging Face name.
    assert_eq!(back.tensors().len(), 101);
    for t in back.tensors() {
        let orig = model.tensors().iter().find(|o| o.name == t.name).unwrap_or_else(|| panic!("{} is new", t.name));
        assert_eq!((&t.shape, t.dtype), (&orig.shape, orig.dtype), "{}", t.name);
        assert_eq!(back.read_f32(t).unwrap(), model.read_f32(orig).unwrap(), "{}", t.name);
    }
    let cfg = back.config().unwrap();
    assert_eq!((cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.intermediate_size), (6, 384, 12, 1536));
    assert_eq!((cfg.max_position_embeddings, cfg.layer_norm_eps), (Some(512), Some(1e-12_f32 as f64)));
    assert_eq!(pareto_core::export::gguf::pooling::of(back.root()).unwrap(), Some(1), "mean pooling kept");

    // The rebuilt WordPiece tokenizer encodes every STS-B dev sentence as the original does.
    let load = |dir: &std::path::Path| {
        let mut t = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
        t.with_padding(None).with_truncation(None).unwrap();
        t
    };
    let (orig_tok, back_tok) = (load(&minilm()), load(back.root()));
    let text = std::fs::read_to_string(repo_root().join("assets/samples/stsb/sts-dev.csv")).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        for s in &f[5..7] {
            let (a, b) = (orig_tok.encode(*s, true).unwrap(), back_tok.encode(*s, true).unwrap());
            assert_eq!(a.get_ids(), b.get_ids(), "{s:?}");
            n += 1;
        }
    }
    assert_eq!(n, 3000);
    let pair = back_tok.encode(("a man", "a dog"), true).unwrap();
    assert_eq!(pair.get_ids(), orig_tok.encode(("a man", "a dog"), true).unwrap().get_ids());
    assert_eq!(pair.get_type_ids(), orig_tok.encode(("a man", "a dog"), true).unwrap().get_type_ids());

    // Written out again: the same tensors and the same metadata.
    let second = tmp.path().join("again");
    export(&back, &keep, ExportFormat::Gguf, &second).unwrap();
    let (a, b) =
        (GgufFile::open(&first.join("model.gguf")).unwrap(), GgufFile::open(&second.join("model.gguf")).unwrap());
    assert_eq!(a.metadata, b.metadata);
    assert_eq!(a.tensors.len(), b.tensors.len());
    for (x, y) in a.tensors.iter().zip(&b.tensors) {
        assert_eq!((&x.name, x.ggml_type, &x.dims), (&y.name, y.ggml_type, &y.dims));
        assert_eq!(a.read_raw(x).unwrap(), b.read_raw(y).unwrap(), "{}", x.name);
    }
}
