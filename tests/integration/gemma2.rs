//! Gemma 2 through Pareto's forward pass: RMSNorm by 1 + w, norms after attention and after the
//! MLP, GeGLU, the embedding scaled by √hidden, `query_pre_attn_scalar` and soft-capped attention
//! and output logits — checked against candle-transformers' Gemma 2 on the same weights, with caps
//! small enough that the tanh bends the scores.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::gemma2;
use pareto_core::job::JobContext;
use pareto_core::{Error, Model, Recipe};
use pareto_eval::llama::LlamaModel;
use pareto_eval::{ModelFamily, detect_family};
use pareto_runs::{CalibrationSpec, calibrate_with};

use crate::common::{f32s, read_all, repo_root, write_f32_model};
use crate::export_formats::llama_fixture;

/// The LLaMA fixture as a Gemma 2 checkpoint: two more norms a layer, norms stored as w for a
/// scale of 1 + w (small ramps here, so the 1 matters), the head tied to the embedding.
pub(crate) fn gemma2_fixture(dir: &Path) {
    llama_fixture(dir);
    let st = dir.join("model.safetensors");
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = read_all(&st)
        .into_iter()
        .filter(|(name, _)| name != "lm_head.weight")
        .map(|(name, (_, shape, bytes))| {
            let values = if name.ends_with("norm.weight") {
                (0..shape[0]).map(|i| (i % 7) as f32 * 0.05 - 0.1).collect()
            } else {
                f32s(&bytes)
            };
            (name, shape, values)
        })
        .collect();
    for l in 0..2 {
        for (n, k) in [("pre_feedforward_layernorm", 3), ("post_feedforward_layernorm", 5)] {
            let values = (0..256).map(|i| ((i * k) % 11) as f32 * 0.03 - 0.12).collect();
            tensors.push((format!("model.layers.{l}.{n}.weight"), vec![256], values));
        }
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let refs: Vec<(&str, Vec<usize>, Vec<f32>)> =
        tensors.iter().map(|(n, s, v)| (n.as_str(), s.clone(), v.clone())).collect();
    write_f32_model(&st, &refs);
    let path = dir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for (k, v) in [
        ("architectures", serde_json::json!(["Gemma2ForCausalLM"])),
        ("model_type", serde_json::json!("gemma2")),
        ("head_dim", serde_json::json!(64)),
        ("hidden_activation", serde_json::json!("gelu_pytorch_tanh")),
        ("hidden_act", serde_json::json!("gelu_pytorch_tanh")),
        // candle's Gemma 2 scales by the head dim; Gemma 2 2B's checkpoint has them equal too.
        ("query_pre_attn_scalar", serde_json::json!(64)),
        ("attn_logit_softcapping", serde_json::json!(0.5)),
        ("final_logit_softcapping", serde_json::json!(3.0)),
        ("sliding_window", serde_json::json!(4096)),
        ("attention_bias", serde_json::json!(false)),
    ] {
        cfg[k] = v;
    }
    // Google's configs leave the key out: the head is tied by default (transformers' Gemma 2).
    cfg.as_object_mut().unwrap().remove("tie_word_embeddings");
    std::fs::write(&path, cfg.to_string()).unwrap();
}

#[test]
fn gemma2_matches_candle_transformers() {
    let dev = Device::Cpu;
    let ids = [1u32, 17, 300, 42, 7, 99, 250, 3, 128, 64, 5, 411];
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("gemma2");
    gemma2_fixture(&src);
    assert_eq!(detect_family(&src).unwrap(), ModelFamily::Llama);
    let ours = LlamaModel::load(&src, &dev).unwrap();
    let logits = ours.forward(&Tensor::new(&ids[..], &dev).unwrap().unsqueeze(0).unwrap(), None, None).unwrap();
    let cfg: gemma2::Config = serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
    let weights = candle_core::safetensors::load(src.join("model.safetensors"), &dev).unwrap();
    let vb = candle_nn::VarBuilder::from_tensors(weights, DType::F32, &dev);
    let mut bent = 0;
    for len in [1, 5, ids.len()] {
        let prefix = Tensor::new(&ids[..len], &dev).unwrap().unsqueeze(0).unwrap();
        let theirs = gemma2::Model::new(false, &cfg, vb.clone()).unwrap().forward(&prefix, 0).unwrap();
        let a: Vec<f32> = logits.get(0).unwrap().get(len - 1).unwrap().to_vec1().unwrap();
        let b: Vec<f32> = theirs.flatten_all().unwrap().to_vec1().unwrap();
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-4 * 3.0, "position {}: differs by {worst}", len - 1);
        bent += b.iter().filter(|v| v.abs() > 1.5).count();
    }
    assert!(bent > 0, "the logit cap bends some logits (|logit| > cap / 2)");

    // query_pre_attn_scalar, not the head dim, scales the scores: with it at 100 (head dim 64) the
    // model computes what candle's (which scales by the head dim) does with q_proj times 8/10.
    let path = src.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    c["query_pre_attn_scalar"] = serde_json::json!(100);
    std::fs::write(&path, c.to_string()).unwrap();
    let ours = LlamaModel::load(&src, &dev).unwrap();
    let input = Tensor::new(&ids[..], &dev).unwrap().unsqueeze(0).unwrap();
    let a: Vec<f32> =
        ours.forward(&input, None, None).unwrap().get(0).unwrap().get(ids.len() - 1).unwrap().to_vec1().unwrap();
    let mut weights = candle_core::safetensors::load(src.join("model.safetensors"), &dev).unwrap();
    for (name, t) in weights.iter_mut() {
        if name.ends_with("q_proj.weight") {
            *t = (&*t * 0.8).unwrap();
        }
    }
    let vb = candle_nn::VarBuilder::from_tensors(weights, DType::F32, &dev);
    let theirs = gemma2::Model::new(false, &cfg, vb).unwrap().forward(&input, 0).unwrap();
    let b: Vec<f32> = theirs.flatten_all().unwrap().to_vec1().unwrap();
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(worst <= 3e-4, "query_pre_attn_scalar: differs by {worst}");

    // Calibration runs on it (GPTQ); AWQ, whose scale folding assumes norms that scale by w, is
    // refused by name.
    let model = Model::open(&src).unwrap();
    let config = model.require_config().unwrap();
    assert_eq!((config.architecture.name(), config.tie_word_embeddings), ("gemma2", true));
    let spec = CalibrationSpec {
        windows: 2,
        window: 64,
        ..CalibrationSpec::new(repo_root().join("assets/samples/tinystories/tinystories-valid-excerpt.txt"))
    };
    let cache = pareto_core::cache::CacheFolder::Off;
    let gptq = Recipe::load("gptq-w4-g32").unwrap().resolve(&model).unwrap();
    let (_, report) = calibrate_with(&src, &gptq, &spec, &cache, &JobContext::silent()).unwrap();
    assert_eq!(report.tensors.len(), 14, "7 linears of 2 layers");
    let awq = Recipe::load("awq-w4-g32").unwrap().resolve(&model).unwrap();
    let e = calibrate_with(&src, &awq, &spec, &cache, &JobContext::silent()).unwrap_err().to_string();
    assert!(e.contains("awq on Gemma 2 is not built"), "{e}");
    // A structured cut and a GGUF are refused by name.
    let cut = Recipe::load("ffn-slim-25").unwrap().resolve(&model).unwrap_err();
    assert!(matches!(cut, Error::StructuredUnsupported { .. }), "{cut}");
}
