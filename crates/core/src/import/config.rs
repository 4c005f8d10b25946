//! GGUF hyper-parameters (`{arch}.*`, gguf-py constants.py `Keys.LLM` / `Keys.Attention` /
//! `Keys.Rope`) → a Hugging Face config.json for the LLaMA-layout families and BERT encoders.

use serde_json::{Value, json};

use super::Meta;
use crate::error::Result;
use crate::export::gguf::GgufFile;

pub struct Hyper {
    pub layers: usize,
    pub hidden: usize,
    pub ffn: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: Option<usize>,
    pub vocab_size: usize,
    pub context: Option<u64>,
    pub rms_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Value>,
    pub tied: bool,
    /// Phi-3: rotated dimensions per head, the original context, the attention window.
    pub rope_dims: Option<usize>,
    pub original_context: Option<u64>,
    pub sliding_window: Option<u64>,
    /// BERT: LayerNorm epsilon, token types, llama.cpp's pooling type.
    pub layer_norm_eps: Option<f64>,
    pub token_types: Option<u64>,
    pub pooling: Option<u64>,
}

/// Llama 3.1+'s `rope_scaling`, recovered from the `rope_freqs.weight` divisors llama.cpp's converter
/// computed from it (the file keeps only the divisors): the factor is their plateau, and the other
/// three parameters are the ones among the values Llama 3.x checkpoints use whose divisors, computed
/// again as the exporter computes them, equal the stored ones (to 1e-6) — so exporting the folder
/// writes the same tensor back. Anything else is refused by name rather than guessed.
fn llama3_scaling(meta: &Meta<'_>, stored: &[f32], dim: usize, theta: f64) -> Result<Value> {
    use crate::export::gguf::rope::llama3_freqs;
    let factor = stored.iter().copied().fold(1f32, f32::max);
    if stored.len() != dim / 2 || stored.iter().any(|v| !v.is_finite() || *v < 1.0) {
        return Err(meta.unsupported(format!(
            "rope_freqs.weight holds {} values for {dim}-wide heads (expected {} divisors ≥ 1)",
            stored.len(),
            dim / 2
        )));
    }
    for orig in [8192.0, 4096.0, 16384.0, 32768.0, 2048.0, 65536.0, 131072.0] {
        for (low, high) in [(1.0, 4.0), (1.0, 2.0), (2.0, 4.0), (1.0, 8.0), (2.0, 8.0), (4.0, 8.0)] {
            let f = f64::from(factor);
            let ours = llama3_freqs(dim, theta, f, low, high, orig);
            // Within a few ulps: the converter's torch `pow` may round the ramp's frequencies apart
            // from Rust's `powf` in the last bit.
            if ours.iter().zip(stored).all(|(a, b)| (a - b).abs() <= 1e-6 * b.abs()) {
                return Ok(json!({"rope_type": "llama3", "factor": f, "low_freq_factor": low,
                    "high_freq_factor": high, "original_max_position_embeddings": orig as u64}));
            }
        }
    }
    Err(meta.unsupported(format!(
        "rope_freqs.weight (divisors 1…{factor}) is not Llama 3's RoPE scaling for any usual original context \
         (2K–128K) and low/high frequency factors, so no config.json can say what it does"
    )))
}

impl Hyper {
    pub fn read(meta: &Meta<'_>, file: &GgufFile) -> Result<Hyper> {
        let arch = meta.architecture();
        if !matches!(arch, "llama" | "qwen2" | "qwen3" | "phi3" | "bert") {
            return Err(meta
                .unsupported(format!("architecture {arch:?} is not one Pareto converts ({})", super::ARCHITECTURES)));
        }
        let need = |key: &str| -> Result<usize> {
            meta.arch_u64(key)
                .and_then(|v| usize::try_from(v).ok())
                .filter(|&v| v > 0)
                .ok_or_else(|| meta.unsupported(format!("{arch}.{key} is missing or zero")))
        };
        let heads = need("attention.head_count")?;
        let kv_heads =
            meta.arch_u64("attention.head_count_kv").map_or(Ok(heads), |_| need("attention.head_count_kv"))?;
        let hidden = need("embedding_length")?;
        let embd =
            file.tensor("token_embd.weight").ok_or_else(|| meta.unsupported("no token_embd.weight tensor".into()))?;
        let vocab_size = embd.dims.get(1).copied().unwrap_or(0) as usize;
        if embd.dims.first().copied() != Some(hidden as u64) {
            return Err(meta.unsupported(format!(
                "token_embd.weight has dims {:?}, expected rows of {hidden} (embedding_length)",
                embd.dims
            )));
        }
        let rope_scaling = match meta.arch_str("rope.scaling.type") {
            None | Some("none") => None,
            Some("linear") => {
                let factor = meta
                    .arch_f64("rope.scaling.factor")
                    .ok_or_else(|| meta.unsupported("linear RoPE scaling without a factor".into()))?;
                Some(json!({"type": "linear", "factor": factor}))
            }
            Some(other) => {
                return Err(meta.unsupported(format!("RoPE scaling {other:?} is not converted (none or linear)")));
            }
        };
        let key_length = meta.arch_u64("attention.key_length").map(|v| v as usize);
        // Phi-3's 128K variants keep LongRoPE's factors as tensors; its forward pass is not built.
        if file.tensor("rope_factors_long.weight").is_some() {
            return Err(
                meta.unsupported("LongRoPE scaling (rope_factors_long/short, Phi-3 128K) is not converted".into())
            );
        }
        let rope_theta = meta.arch_f64("rope.freq_base").unwrap_or(10_000.0);
        let rope_scaling = match (rope_scaling, file.tensor("rope_freqs.weight")) {
            (scaling, None) => scaling,
            (None, Some(t)) => {
                let dim =
                    meta.arch_u64("rope.dimension_count").map_or(key_length.unwrap_or(hidden / heads), |d| d as usize);
                // Checked before reading: a lying header must not size an allocation.
                if t.dims.iter().product::<u64>() != (dim / 2) as u64 {
                    return Err(meta.unsupported(format!(
                        "rope_freqs.weight has dims {:?}, expected {} divisors for {dim}-wide heads",
                        t.dims,
                        dim / 2
                    )));
                }
                Some(llama3_scaling(meta, &file.dequantize(t)?, dim, rope_theta)?)
            }
            (Some(_), Some(_)) => {
                return Err(meta.unsupported("both rope.scaling keys and a rope_freqs.weight tensor".into()));
            }
        };
        Ok(Hyper {
            layers: need("block_count")?,
            hidden,
            ffn: need("feed_forward_length")?,
            heads,
            kv_heads,
            // Only written when it differs from hidden / heads (Qwen3 and some LLaMA variants).
            head_dim: key_length.filter(|&k| k != hidden / heads),
            vocab_size,
            context: meta.arch_u64("context_length"),
            rms_eps: meta.arch_f64("attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
            rope_theta,
            rope_scaling,
            tied: arch != "bert" && file.tensor("output.weight").is_none(),
            rope_dims: meta.arch_u64("rope.dimension_count").map(|v| v as usize),
            original_context: meta.arch_u64("rope.scaling.original_context_length"),
            sliding_window: meta.arch_u64("attention.sliding_window").filter(|&w| w > 0),
            layer_norm_eps: meta.arch_f64("attention.layer_norm_epsilon"),
            token_types: meta.u64("tokenizer.ggml.token_type_count"),
            pooling: meta.arch_u64("pooling_type"),
        })
    }

    pub fn to_config(&self, meta: &Meta<'_>) -> Value {
        if meta.architecture() == "bert" {
            return self.bert_config(meta);
        }
        let (model_type, class) = match meta.architecture() {
            "qwen2" => ("qwen2", "Qwen2ForCausalLM"),
            "qwen3" => ("qwen3", "Qwen3ForCausalLM"),
            "phi3" => ("phi3", "Phi3ForCausalLM"),
            _ => ("llama", "LlamaForCausalLM"),
        };
        let id = |key: &str| meta.u64(&format!("tokenizer.ggml.{key}_token_id")).map_or(Value::Null, |v| json!(v));
        let mut c = json!({
            "architectures": [class],
            "model_type": model_type,
            "hidden_size": self.hidden,
            "intermediate_size": self.ffn,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "vocab_size": self.vocab_size,
            "rms_norm_eps": self.rms_eps,
            "rope_theta": self.rope_theta,
            "hidden_act": "silu",
            "tie_word_embeddings": self.tied,
            "bos_token_id": id("bos"),
            "eos_token_id": id("eos"),
            "torch_dtype": "float32",
        });
        let Some(o) = c.as_object_mut() else { return c };
        if let Some(n) = self.context {
            o.insert("max_position_embeddings".into(), json!(n));
        }
        if let Some(d) = self.head_dim {
            o.insert("head_dim".into(), json!(d));
        }
        if let Some(r) = &self.rope_scaling {
            o.insert("rope_scaling".into(), r.clone());
        }
        if model_type == "qwen2" {
            o.insert("attention_bias".into(), json!(true));
        }
        if model_type == "phi3" {
            let full = self.hidden / self.heads.max(1);
            if let Some(d) = self.rope_dims.filter(|&d| d != full) {
                o.insert("partial_rotary_factor".into(), json!(d as f64 / full as f64));
            }
            if let Some(n) = self.original_context {
                o.insert("original_max_position_embeddings".into(), json!(n));
            }
            o.insert("sliding_window".into(), self.sliding_window.map_or(Value::Null, |w| json!(w)));
        }
        if let Some(name) = meta.str("general.name") {
            o.insert("_name_or_path".into(), json!(name));
        }
        c
    }

    /// A BertModel's config.json (transformers' BertConfig names; GELU, absolute positions).
    fn bert_config(&self, meta: &Meta<'_>) -> Value {
        let mut c = json!({
            "architectures": ["BertModel"],
            "model_type": "bert",
            "hidden_size": self.hidden,
            "intermediate_size": self.ffn,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "vocab_size": self.vocab_size,
            "max_position_embeddings": self.context.unwrap_or(512),
            "type_vocab_size": self.token_types.unwrap_or(2),
            "layer_norm_eps": self.layer_norm_eps.unwrap_or(1e-12),
            "hidden_act": "gelu",
            "position_embedding_type": "absolute",
            // Training-time settings BertConfig readers require (transformers' defaults).
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02,
            "use_cache": true,
            "pad_token_id": meta.u64("tokenizer.ggml.padding_token_id").unwrap_or(0),
            "torch_dtype": "float32",
        });
        if let (Some(name), Some(o)) = (meta.str("general.name"), c.as_object_mut()) {
            o.insert("_name_or_path".into(), json!(name));
        }
        c
    }

    /// sentence-transformers' modules.json and Pooling config for the GGUF's pooling type, so the
    /// folder pools as the GGUF does and exports it again; `None` when the file states none.
    pub fn pooling_files(&self) -> Option<[(&'static str, Value); 2]> {
        crate::export::gguf::pooling::module_files(u32::try_from(self.pooling?).ok()?, self.hidden)
    }
}
