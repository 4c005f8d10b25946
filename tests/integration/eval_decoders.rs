//! The decoder families beyond LLaMA-1/2 through Pareto's own forward pass (the one perplexity, KL
//! and top-1 use): Qwen2, Qwen3 and Llama 3.1's RoPE scaling, each checked against
//! candle-transformers' implementation on the same weights.

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
