//! The decoder families beyond LLaMA-1/2 through Pareto's own forward pass (the one perplexity, KL
//! and top-1 use): Qwen2, Qwen3 and Llama 3.1's RoPE scaling, each checked against
//! candle-transformers' implementation on the same weights (Phi-3: `phi3.rs`).

use candle_core::{D, DType, Device, Tensor};
use candle_transformers::models::{qwen2, qwen3};
use pareto_eval::llama::LlamaModel;
use pareto_eval::{ModelFamily, detect_family};

use crate::gguf_llama3::qwen_fixture;

#[test]
fn qwen_decoders_match_candle_transformers() {
    let dev = Device::Cpu;
    let ids = [1u32, 17, 300, 42, 7, 99, 250, 3, 128, 64, 5, 411];
    for family in ["qwen2", "qwen3"] {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join(family);
        qwen_fixture(&src, family);
        assert_eq!(detect_family(&src).unwrap(), ModelFamily::Llama, "{family}");
        let ours = LlamaModel::load(&src, &dev).unwrap();
        let input = Tensor::new(&ids[..], &dev).unwrap().unsqueeze(0).unwrap();
        let logits = ours.forward(&input, None, None).unwrap();
        assert_eq!(logits.dims(), [1, ids.len(), 512]);

        let cfg = std::fs::read(src.join("config.json")).unwrap();
        let weights = candle_core::safetensors::load(src.join("model.safetensors"), &dev).unwrap();
        let vb = candle_nn::VarBuilder::from_tensors(weights, DType::F32, &dev);
        // candle's models return the last position's logits; a prefix of the ids gives each earlier one.
        for len in [1, 5, ids.len()] {
            let prefix = Tensor::new(&ids[..len], &dev).unwrap().unsqueeze(0).unwrap();
            let theirs = if family == "qwen2" {
                let c: qwen2::Config = serde_json::from_slice(&cfg).unwrap();
                qwen2::ModelForCausalLM::new(&c, vb.clone()).unwrap().forward(&prefix, 0).unwrap()
            } else {
                let c: qwen3::Config = serde_json::from_slice(&cfg).unwrap();
                qwen3::ModelForCausalLM::new(&c, vb.clone()).unwrap().forward(&prefix, 0).unwrap()
            };
            let a: Vec<f32> = logits.get(0).unwrap().get(len - 1).unwrap().to_vec1().unwrap();
            let b: Vec<f32> = theirs.flatten_all().unwrap().to_vec1().unwrap();
            let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
            let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(worst <= 1e-4 * scale, "{family} position {}: differs by {worst} (scale {scale})", len - 1);
            let top = |t: &Tensor| t.flatten_all().unwrap().argmax(D::Minus1).unwrap().to_scalar::<u32>().unwrap();
            assert_eq!(top(&logits.get(0).unwrap().get(len - 1).unwrap()), top(&theirs), "{family}");
        }
    }
}

#[test]
fn sliding_window_beyond_its_length_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("qwen2");
    qwen_fixture(&src, "qwen2");
    let path = src.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg["use_sliding_window"] = serde_json::json!(true);
    cfg["sliding_window"] = serde_json::json!(4);
    std::fs::write(&path, cfg.to_string()).unwrap();
    let model = LlamaModel::load(&src, &Device::Cpu).unwrap();
    let short = Tensor::new(&[1u32, 2, 3, 4], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    assert!(model.forward(&short, None, None).is_ok(), "within the window full attention is exact");
    let long = Tensor::new(&[1u32, 2, 3, 4, 5], &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let err = model.forward(&long, None, None).unwrap_err().to_string();
    assert!(err.contains("sliding attention window 4"), "{err}");
}

/// Llama 3.1's RoPE scaling (llama3 frequency divisors) in the decoder forward equals
/// candle-transformers' Llama on the same weights; without the scaling the logits differ.
#[test]
fn llama3_rope_scaling_matches_candle_transformers() {
    use candle_transformers::models::llama;

    let dev = Device::Cpu;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("llama31");
    crate::export_formats::llama_fixture(&src);
    crate::gguf_llama3::set_llama3_rope_scaling(&src);
    let ids = [1u32, 17, 300, 42, 7, 99, 250, 3, 128, 64, 5, 411, 12, 19];
    let ours = LlamaModel::load(&src, &dev).unwrap();
    let input = Tensor::new(&ids[..], &dev).unwrap().unsqueeze(0).unwrap();
    let logits = ours.forward(&input, None, None).unwrap();

    let cfg: llama::LlamaConfig = serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
    let cfg = cfg.into_config(false);
    assert!(cfg.rope_scaling.is_some());
    let weights = candle_core::safetensors::load(src.join("model.safetensors"), &dev).unwrap();
    let theirs_model =
        llama::Llama::load(candle_nn::VarBuilder::from_tensors(weights, DType::F32, &dev), &cfg).unwrap();
    let mut worst_rel = 0f32;
    for len in [3, 8, ids.len()] {
        let mut cache = llama::Cache::new(false, DType::F32, &cfg, &dev).unwrap();
        let prefix = Tensor::new(&ids[..len], &dev).unwrap().unsqueeze(0).unwrap();
        let theirs: Vec<f32> =
            theirs_model.forward(&prefix, 0, &mut cache).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let mine: Vec<f32> = logits.get(0).unwrap().get(len - 1).unwrap().to_vec1().unwrap();
        let scale = theirs.iter().fold(0f32, |m, x| m.max(x.abs()));
        let worst = mine.iter().zip(&theirs).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        worst_rel = worst_rel.max(worst / scale);
    }
    assert!(worst_rel <= 1e-4, "llama3-scaled RoPE differs from candle-transformers by {worst_rel} relative");

    // The scaling matters at these positions: the same weights without it give other logits.
    let path = src.join("config.json");
    let mut raw: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    raw["rope_scaling"] = serde_json::Value::Null;
    std::fs::write(&path, raw.to_string()).unwrap();
    let unscaled = LlamaModel::load(&src, &dev).unwrap().forward(&input, None, None).unwrap();
    let diff = (unscaled - &logits).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(diff > 1e-3, "rope scaling had no effect ({diff})");
}

/// Evaluations that would print a number without measuring anything are refused: an original
/// holding a NaN weight, a limit of zero windows, a batch of zero.
#[test]
fn evaluations_that_would_measure_nothing_are_refused() {
    use pareto_core::job::JobContext;
    use pareto_eval::{EvalError, EvalOptions, evaluate};

    use crate::common::*;
    let tmp = tempfile::tempdir().unwrap();
    let src = stories_copy(tmp.path(), &["config.json", "tokenizer.json"]);
    let tensors = read_all(&stories().join("model.safetensors"));
    let mut owned: Vec<(String, Vec<usize>, Vec<f32>)> =
        tensors.into_iter().map(|(n, (_, shape, bytes))| (n, shape, f32s(&bytes))).collect();
    owned.sort_by(|a, b| a.0.cmp(&b.0));
    let bad = owned.iter_mut().find(|t| t.0 == "model.layers.2.mlp.up_proj.weight").unwrap();
    bad.2[77] = f32::NAN;
    let refs: Vec<(&str, Vec<usize>, Vec<f32>)> =
        owned.iter().map(|(n, s, v)| (n.as_str(), s.clone(), v.clone())).collect();
    write_f32_model(&src.join("model.safetensors"), &refs);
    let ctx = JobContext::silent();
    let err = evaluate(&src, &EvalOptions::default(), &ctx).unwrap_err();
    assert!(
        matches!(&err, EvalError::NonFiniteWeight { tensor, index: 77, .. } if tensor == "model.layers.2.mlp.up_proj.weight"),
        "{err}"
    );

    let mut zero_windows = EvalOptions::default();
    zero_windows.protocol.max_windows = Some(0);
    let err = evaluate(&stories(), &zero_windows, &ctx).unwrap_err();
    assert!(err.to_string().contains("limit (windows) = 0"), "{err}");
    let mut zero_batch = EvalOptions::default();
    zero_batch.protocol.batch = 0;
    assert!(evaluate(&stories(), &zero_batch, &ctx).unwrap_err().to_string().contains("batch"));
}

/// A model that cannot fit in memory is refused before anything is loaded, with both sizes. The
/// 128 GiB weight file is sparse: it takes no disk space.
#[cfg(target_os = "linux")]
#[test]
fn an_evaluation_that_cannot_fit_in_memory_is_refused_up_front() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let rows: u64 = 1 << 20;
    let cols: u64 = 1 << 16;
    let bytes = rows * cols * 2;
    let header = serde_json::json!({ "w": { "dtype": "F16", "shape": [rows, cols], "data_offsets": [0, bytes] } });
    let mut h = serde_json::to_vec(&header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let path = tmp.path().join("model.safetensors");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&(h.len() as u64).to_le_bytes()).unwrap();
    f.write_all(&h).unwrap();
    f.set_len(8 + h.len() as u64 + bytes).unwrap();
    drop(f);
    let err = pareto_eval::evaluate(
        tmp.path(),
        &pareto_eval::EvalOptions::default(),
        &pareto_core::job::JobContext::silent(),
    )
    .unwrap_err();
    assert!(matches!(err, pareto_eval::EvalError::WouldNotFit { needs, .. } if needs > 256 << 30), "{err}");
    assert!(err.to_string().contains("GiB is available"), "{err}");
}
