//! GGUF for Llama-3-style and Qwen2/Qwen3 models: byte-level BPE tokenizers (real BPEs trained here
//! on the bundled TinyStories excerpt with each family's pre-tokenizer), llama3 RoPE scaling and the
//! qwen2/qwen3 architectures, exported and re-read with llama.cpp's `gguf` Python package.

use std::path::Path;

use pareto_core::export::ExportFormat;
use pareto_core::{Error, Model};
use serde_json::{Value, json};
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::common::*;
use crate::export_formats::{check_with_python, export, llama_fixture, preset};

/// Llama 3's tokenizer.json splitting regex.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's: digits one at a time.
const QWEN2_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const BOS: &str = "<|begin_of_text|>";
const EOS: &str = "<|end_of_text|>";

/// Trains a `vocab`-token byte-level BPE with the `split` regex and Llama 3's post-processor on the
/// TinyStories excerpt and saves it as `dir`/tokenizer.json (+ tokenizer_config.json).
fn train_byte_level(dir: &Path, vocab: usize, split: &str) -> Tokenizer {
    let split = Split::new(SplitPattern::Regex(split.into()), SplitDelimiterBehavior::Isolated, false).unwrap();
    let mut tok = Tokenizer::new(BPE::default());
    tok.with_pre_tokenizer(Some(Sequence::new(vec![split.into(), ByteLevel::new(false, true, false).into()])));
    tok.with_decoder(Some(ByteLevel::default()));
    let specials = [BOS, EOS].map(|t| AddedToken::from(t, true));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab)
        .show_progress(false)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .special_tokens(specials.to_vec())
        .build()
        .into();
    let text = repo_root().join("assets/samples/tinystories/tinystories-valid-excerpt.txt");
    tok.train_from_files(&mut trainer, vec![text.to_string_lossy().into_owned()]).unwrap();
    let bos_id = tok.token_to_id(BOS).unwrap();
    let post = TemplateProcessing::builder()
        .try_single(format!("{BOS} $A"))
        .unwrap()
        .special_tokens(vec![(BOS, bos_id)])
        .build()
        .unwrap();
    tok.with_post_processor(Some(post));
    assert!(matches!(tok.get_model(), ModelWrapper::BPE(_)));
    tok.save(dir.join("tokenizer.json"), true).unwrap();
    let config = json!({"bos_token": BOS, "eos_token": EOS, "add_bos_token": true,
        "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"});
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    tok
}

/// Sets Llama 3.1's RoPE scaling in the fixture's config.json.
pub(crate) fn set_llama3_rope_scaling(dir: &Path) {
    let path = dir.join("config.json");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg["rope_theta"] = json!(500000.0);
    cfg["rope_scaling"] = json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
    std::fs::write(&path, cfg.to_string()).unwrap();
}

/// Exports `model` as a Q8_0 GGUF into `out` and returns what gguf-py sees (tests/gguf_check.py,
/// which also dumps the dequantized tensors into `py`).
fn export_q8_0_and_dump(model: &Model, out: &Path, py: &Path) -> Value {
    export(model, &preset("gguf-q8_0"), ExportFormat::Gguf, out).unwrap();
    check_with_python(&out.join("model.gguf"), py);
    serde_json::from_slice(&std::fs::read(py.join("index.json")).unwrap()).unwrap()
}

#[test]
fn llama3_style_models_are_written_as_llama_cpp_reads_them() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("llama3ish");
    llama_fixture(&src);
    set_llama3_rope_scaling(&src);
    // Two ids fewer than the embedding rows: the converter pads them as gguf-py does.
    let tok = train_byte_level(&src, 510, LLAMA3_SPLIT);
    let model = Model::open(&src).unwrap();
    let out = tmp.path().join("out");
    let index = export_q8_0_and_dump(&model, &out, &tmp.path().join("py"));
    let (meta, arrays) = (&index["metadata"], &index["arrays"]);
    assert_eq!(meta["tokenizer.ggml.model"], "gpt2");
    assert_eq!(meta["tokenizer.ggml.pre"], "llama-bpe");
    assert_eq!(meta["tokenizer.ggml.add_bos_token"], true);
    assert_eq!(meta["tokenizer.chat_template"], "{% for m in messages %}{{ m['content'] }}{% endfor %}");
    assert_eq!(meta["tokenizer.ggml.bos_token_id"], u64::from(tok.token_to_id(BOS).unwrap()));
    assert_eq!(meta["tokenizer.ggml.eos_token_id"], u64::from(tok.token_to_id(EOS).unwrap()));
    assert!(arrays.get("tokenizer.ggml.scores").is_none(), "byte-level BPE carries no scores");
    assert_eq!(meta["llama.rope.freq_base"], 500000.0);

    // llama3 RoPE scaling: a generated F32 tensor of head_dim / 2 divisors, first in the file.
    let rope = &index["tensors"][0];
    assert_eq!(rope["name"], "rope_freqs.weight");
    assert_eq!(rope["type"], 0);
    assert_eq!(rope["dims"], json!([32]));
    let divisors = f32s(&std::fs::read(tmp.path().join("py").join(rope["file"].as_str().unwrap())).unwrap());
    // head_dim 64, θ = 500000: wavelength 2π·θ^(i/32) passes 2048 at i ≈ 14.1 and 8192 at i ≈ 17.5.
    assert!(divisors[..15].iter().all(|&x| x == 1.0), "{divisors:?}");
    assert!(divisors[18..].iter().all(|&x| x == 8.0), "{divisors:?}");
    assert!(divisors[15..18].windows(2).all(|w| 1.0 < w[0] && w[0] < w[1] && w[1] < 8.0), "{divisors:?}");

    let tokens: Vec<&str> =
        arrays["tokenizer.ggml.tokens"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let types: Vec<i64> =
        arrays["tokenizer.ggml.token_type"].as_array().unwrap().iter().map(|t| t.as_i64().unwrap()).collect();
    assert_eq!(tokens.len(), 512, "padded to config.json's vocab_size");
    let size = tok.get_vocab_size(true);
    for id in 0..512u32 {
        let (t, ty) = (tokens[id as usize], types[id as usize]);
        match tok.id_to_token(id) {
            Some(piece) if usize::try_from(id).unwrap() < size => {
                assert_eq!(t, piece, "token {id}");
                let want = if piece == BOS || piece == EOS { 3 } else { 1 };
                assert_eq!(ty, want, "type of {piece:?}");
            }
            _ => assert_eq!((t, ty), (format!("[PAD{id}]").as_str(), 4), "padding {id}"),
        }
    }
    // Merges in rank order, exactly as the trained tokenizer.json stores them.
    let tj: Value = serde_json::from_slice(&std::fs::read(src.join("tokenizer.json")).unwrap()).unwrap();
    let want: Vec<String> = tj["model"]["merges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| match m {
            Value::Array(p) => format!("{} {}", p[0].as_str().unwrap(), p[1].as_str().unwrap()),
            other => other.as_str().unwrap().to_string(),
        })
        .collect();
    assert!(want.len() > 200, "a real merge table: {}", want.len());
    let merges: Vec<&str> =
        arrays["tokenizer.ggml.merges"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert_eq!(merges, want);
}

#[test]
fn byte_level_bpe_with_an_unknown_pre_tokenizer_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("odd");
    llama_fixture(&src);
    train_byte_level(&src, 510, LLAMA3_SPLIT);
    let path = src.join("tokenizer.json");
    let mut tj: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    tj["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = json!(r"\p{N}+|\s+|[^\s\p{N}]+");
    std::fs::write(&path, tj.to_string()).unwrap();
    let before = std::fs::read(&path).unwrap();
    let model = Model::open(&src).unwrap();
    let err = export(&model, &preset("gguf-q8_0"), ExportFormat::Gguf, &tmp.path().join("out")).unwrap_err();
    match &err {
        Error::TokenizerUnsupported { problem, .. } => assert!(problem.contains("llama-bpe"), "{problem}"),
        other => panic!("expected TokenizerUnsupported, got {other}"),
    }
    assert!(!tmp.path().join("out").exists());
    assert_eq!(std::fs::read(&path).unwrap(), before, "source untouched");
}

/// The fixture turned into a Qwen2 (Q/K/V biases) or a Qwen3 (per-head Q/K RMSNorm weights), with
/// tied embeddings (no lm_head) and Qwen's byte-level tokenizer.
pub(crate) fn qwen_fixture(dir: &Path, family: &str) {
    llama_fixture(dir);
    let st = dir.join("model.safetensors");
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = read_all(&st)
        .into_iter()
        .filter(|(name, _)| name != "lm_head.weight")
        .map(|(name, (_, shape, bytes))| (name, shape, f32s(&bytes)))
        .collect();
    let ramp = |n: usize, scale: f32| (0..n).map(|i| (i as f32 - n as f32 / 2.0) * scale).collect::<Vec<f32>>();
    for l in 0..2 {
        let extra: Vec<(&str, usize)> = if family == "qwen2" {
            vec![("q_proj.bias", 256), ("k_proj.bias", 128), ("v_proj.bias", 128)]
        } else {
            vec![("q_norm.weight", 64), ("k_norm.weight", 64)]
        };
        for (p, n) in extra {
            let scale = if p.ends_with("bias") { 1e-3 } else { 1e-2 };
            tensors.push((format!("model.layers.{l}.self_attn.{p}"), vec![n], ramp(n, scale)));
        }
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let refs: Vec<(&str, Vec<usize>, Vec<f32>)> =
        tensors.iter().map(|(n, s, v)| (n.as_str(), s.clone(), v.clone())).collect();
    write_f32_model(&st, &refs);
    let path = dir.join("config.json");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let class = if family == "qwen2" { "Qwen2ForCausalLM" } else { "Qwen3ForCausalLM" };
    cfg["architectures"] = json!([class]);
    cfg["model_type"] = json!(family);
    cfg["head_dim"] = json!(64);
    cfg["tie_word_embeddings"] = json!(true);
    cfg["rope_theta"] = json!(1000000.0);
    // The rest of a real Qwen config (candle's dense reference models require them).
    cfg["use_sliding_window"] = json!(false);
    cfg["sliding_window"] = json!(4096);
    cfg["max_window_layers"] = json!(2);
    cfg["attention_bias"] = json!(false);
    cfg["hidden_act"] = json!("silu");
    std::fs::write(&path, cfg.to_string()).unwrap();
    train_byte_level(dir, 512, QWEN2_SPLIT);
}

/// The GGUF tensor holds Q8_0 of the source rows exactly as stored (no row permutation).
fn assert_holds_q8_0_of_source(gguf: &pareto_core::export::gguf::GgufFile, model: &Model, name: &str, hf: &str) {
    let t = model.tensor(hf).unwrap();
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let want = pareto_formats::lookup("q8_0").unwrap().quantize(&model.read_f32(t).unwrap(), rows, cols).unwrap();
    let pareto_formats::QTensor::Blocks { bytes, .. } = want else { panic!("q8_0 is a block format") };
    assert_eq!(gguf.read_raw(gguf.tensor(name).unwrap()).unwrap(), bytes, "{name}");
}

#[test]
fn qwen2_models_are_written_for_llama_cpps_qwen2_graph() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("qwen2ish");
    qwen_fixture(&src, "qwen2");
    let model = Model::open(&src).unwrap();
    let out = tmp.path().join("out");
    let index = export_q8_0_and_dump(&model, &out, &tmp.path().join("py"));
    let meta = &index["metadata"];
    assert_eq!(meta["general.architecture"], "qwen2");
    assert_eq!(meta["qwen2.block_count"], 2);
    assert_eq!(meta["qwen2.attention.head_count_kv"], 2);
    assert_eq!(meta["qwen2.rope.freq_base"], 1000000.0);
    assert!(meta.get("llama.block_count").is_none());
    assert_eq!(meta["tokenizer.ggml.pre"], "qwen2");
    let names: Vec<&str> = index["tensors"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"blk.1.attn_k.bias") && !names.contains(&"output.weight"), "{names:?}");
    // NEOX RoPE: Q/K rows stay in HF order (no permutation).
    let gguf = pareto_core::export::gguf::GgufFile::open(&out.join("model.gguf")).unwrap();
    assert_holds_q8_0_of_source(&gguf, &model, "blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight");
    // Biases stay F32 and exact.
    let b = gguf.tensor("blk.1.attn_v.bias").unwrap();
    assert_eq!(b.ggml_type, 0);
    let bias = model.read_f32(model.tensor("model.layers.1.self_attn.v_proj.bias").unwrap()).unwrap();
    assert_eq!(gguf.dequantize(b).unwrap(), bias);
}

#[test]
fn qwen3_models_are_written_for_llama_cpps_qwen3_graph() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("qwen3ish");
    qwen_fixture(&src, "qwen3");
    let model = Model::open(&src).unwrap();
    let out = tmp.path().join("out");
    let index = export_q8_0_and_dump(&model, &out, &tmp.path().join("py"));
    let meta = &index["metadata"];
    assert_eq!(meta["general.architecture"], "qwen3");
    assert_eq!(meta["qwen3.attention.head_count"], 4);
    assert_eq!(meta["qwen3.rope.dimension_count"], 64);
    // Qwen3 uses the Qwen2 splitting regex, which llama.cpp names "qwen2" for both.
    assert_eq!(meta["tokenizer.ggml.pre"], "qwen2");
    let gguf = pareto_core::export::gguf::GgufFile::open(&out.join("model.gguf")).unwrap();
    for l in 0..2 {
        for (hf, g) in [("q_norm", "attn_q_norm"), ("k_norm", "attn_k_norm")] {
            let t = gguf.tensor(&format!("blk.{l}.{g}.weight")).unwrap();
            assert_eq!((t.ggml_type, t.dims.clone()), (0, vec![64]), "{g}: F32 [head_dim]");
            let want =
                model.read_f32(model.tensor(&format!("model.layers.{l}.self_attn.{hf}.weight")).unwrap()).unwrap();
            assert_eq!(gguf.dequantize(t).unwrap(), want);
        }
    }
    // NEOX RoPE here too: K rows in HF order.
    assert_holds_q8_0_of_source(&gguf, &model, "blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight");
}

/// The F32 GGUF export run by candle's GGUF Qwen models (which follow llama.cpp's names and NEOX
/// RoPE) gives the logits candle's dense Qwen models give on the source safetensors: names,
/// layouts, biases, norms and the absent Q/K permutation all check out end to end.
#[test]
fn qwen_gguf_exports_run_like_their_source_in_candle() {
    use candle_core::quantized::gguf_file;
    use candle_core::{DType, Device, Tensor};
    use candle_transformers::models::{quantized_qwen2, quantized_qwen3, qwen2, qwen3};

    let dev = Device::Cpu;
    let keep = pareto_core::Recipe::from_toml("name = \"keep\"\nignore = []\n", "test").unwrap();
    for family in ["qwen2", "qwen3"] {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join(family);
        qwen_fixture(&src, family);
        let out = tmp.path().join("out");
        export(&Model::open(&src).unwrap(), &keep, ExportFormat::Gguf, &out).unwrap();
        let cfg = std::fs::read(src.join("config.json")).unwrap();
        let weights = candle_core::safetensors::load(src.join("model.safetensors"), &dev).unwrap();
        let vb = candle_nn::VarBuilder::from_tensors(weights, DType::F32, &dev);
        let mut f = std::fs::File::open(out.join("model.gguf")).unwrap();
        let content = gguf_file::Content::read(&mut f).unwrap();
        let ids = Tensor::new(&[[1u32, 17, 300, 42, 7, 99, 250, 3, 128, 64]], &dev).unwrap();
        let (dense, gguf) = if family == "qwen2" {
            let c: qwen2::Config = serde_json::from_slice(&cfg).unwrap();
            let dense = qwen2::ModelForCausalLM::new(&c, vb).unwrap().forward(&ids, 0).unwrap();
            let gguf =
                quantized_qwen2::ModelWeights::from_gguf(content, &mut f, &dev).unwrap().forward(&ids, 0).unwrap();
            (dense, gguf)
        } else {
            let c: qwen3::Config = serde_json::from_slice(&cfg).unwrap();
            let dense = qwen3::ModelForCausalLM::new(&c, vb).unwrap().forward(&ids, 0).unwrap();
            let gguf =
                quantized_qwen3::ModelWeights::from_gguf(content, &mut f, &dev).unwrap().forward(&ids, 0).unwrap();
            (dense, gguf)
        };
        let a: Vec<f32> = dense.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = gguf.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a.len(), 512, "{family}: logits of the last position");
        let scale = a.iter().fold(0f32, |m, x| m.max(x.abs()));
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-4 * scale, "{family}: GGUF and source logits differ by {worst} (scale {scale})");
        let argmax = |v: &[f32]| v.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)).map(|(i, _)| i);
        assert_eq!(argmax(&a), argmax(&b), "{family}");
    }
}

/// GGUF in, the inverse of GGUF out: each family exported to an F32 GGUF and converted back gives
/// the source folder's tensors bit for bit (Q/K rows un-permuted for LLaMA, left alone for the
/// NEOX-RoPE Qwens), its shape hyper-parameters and a tokenizer that encodes text identically.
#[test]
fn f32_gguf_exports_convert_back_to_their_source() {
    use pareto_core::import::{TensorDtype, convert};
    let f32_recipe =
        pareto_core::Recipe::from_toml("ignore = []\n[default.quantize]\nformat = \"f32\"\n", "f32").unwrap();
    for family in ["qwen2", "qwen3", "llama"] {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join(family);
        if family == "llama" {
            llama_fixture(&src);
            train_byte_level(&src, 510, LLAMA3_SPLIT);
        } else {
            qwen_fixture(&src, family);
        }
        let model = Model::open(&src).unwrap();
        let out = tmp.path().join("gguf");
        export(&model, &f32_recipe, ExportFormat::Gguf, &out).unwrap();
        let back = tmp.path().join("back");
        convert(&out.join("model.gguf"), &back, TensorDtype::Exact, false, &pareto_core::job::JobContext::silent())
            .unwrap();
        let again = Model::open(&back).unwrap();
        for t in model.tensors() {
            let mine = again.tensor(&t.name).unwrap_or_else(|_| panic!("{family}: {} missing", t.name));
            assert_eq!(mine.shape, t.shape, "{family} {}", t.name);
            let (a, b) = (model.read_f32(t).unwrap(), again.read_f32(mine).unwrap());
            assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{family} {}", t.name);
        }
        let (c0, c1) = (model.require_config().unwrap(), again.require_config().unwrap());
        assert_eq!(c1.architecture, c0.architecture, "{family}");
        assert_eq!(
            (c1.num_layers, c1.hidden_size, c1.num_heads, c1.num_kv_heads, c1.head_dim, c1.vocab_size),
            (c0.num_layers, c0.hidden_size, c0.num_heads, c0.num_kv_heads, c0.head_dim, c0.vocab_size),
            "{family}"
        );
        assert_eq!(c1.tie_word_embeddings, c0.tie_word_embeddings, "{family}");
        let tok = |d: &Path| Tokenizer::from_file(d.join("tokenizer.json")).unwrap();
        let text = "Hello world, 12345 tokens! naïve café";
        let ids = |t: &Tokenizer| t.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(ids(&tok(&back)), ids(&tok(&src)), "{family}");
    }
}

/// A Llama 3.1-style GGUF keeps only `rope_freqs.weight`; converting it back recovers config.json's
/// `rope_scaling` (the divisors recomputed from it equal the stored ones bit for bit), so the folder
/// exports the same tensor again. Divisors no Llama 3 scaling produces are refused by name.
#[test]
fn llama3_rope_freqs_convert_back_to_rope_scaling() {
    use pareto_core::export::gguf::GgufFile;
    use pareto_core::import::{TensorDtype, convert};
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("llama31");
    llama_fixture(&src);
    set_llama3_rope_scaling(&src);
    train_byte_level(&src, 510, LLAMA3_SPLIT);
    let model = Model::open(&src).unwrap();
    let out = tmp.path().join("gguf");
    export(&model, &preset("gguf-q8_0"), ExportFormat::Gguf, &out).unwrap();
    let gguf = out.join("model.gguf");
    let ctx = pareto_core::job::JobContext::silent();
    let back = tmp.path().join("back");
    convert(&gguf, &back, TensorDtype::Exact, false, &ctx).unwrap();
    let cfg: Value = serde_json::from_slice(&std::fs::read(back.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        cfg["rope_scaling"],
        json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192})
    );
    let again = tmp.path().join("again");
    export(&Model::open(&back).unwrap(), &preset("gguf-q8_0"), ExportFormat::Gguf, &again).unwrap();
    let (a, b) = (GgufFile::open(&gguf).unwrap(), GgufFile::open(&again.join("model.gguf")).unwrap());
    let rope = |f: &GgufFile| f.read_raw(f.tensor("rope_freqs.weight").unwrap()).unwrap();
    assert_eq!(rope(&a), rope(&b));

    // One divisor changed: not a Llama 3 scaling; named, nothing written.
    let mut bytes = std::fs::read(&gguf).unwrap();
    let t = a.tensor("rope_freqs.weight").unwrap();
    let at = usize::try_from(a.data_start + t.offset).unwrap();
    bytes[at..at + 4].copy_from_slice(&1.5f32.to_le_bytes());
    let bad = tmp.path().join("bad.gguf");
    std::fs::write(&bad, bytes).unwrap();
    let err = convert(&bad, &tmp.path().join("bad"), TensorDtype::Exact, false, &ctx).unwrap_err();
    assert!(matches!(err, Error::GgufUnsupported { .. }) && err.to_string().contains("rope_freqs"), "{err}");
    assert!(!tmp.path().join("bad").exists());
}
