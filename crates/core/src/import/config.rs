//! GGUF hyper-parameters (`{arch}.*`, gguf-py constants.py `Keys.LLM` / `Keys.Attention` /
//! `Keys.Rope`) → a Hugging Face config.json for the LLaMA-layout families.

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
}

impl Hyper {
    pub fn read(meta: &Meta<'_>, file: &GgufFile) -> Result<Hyper> {
        let arch = meta.architecture();
        if !matches!(arch, "llama" | "qwen2" | "qwen3") {
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
            rope_theta: meta.arch_f64("rope.freq_base").unwrap_or(10_000.0),
            rope_scaling,
            tied: file.tensor("output.weight").is_none(),
        })
    }

    pub fn to_config(&self, meta: &Meta<'_>) -> Value {
        let (model_type, class) = match meta.architecture() {
            "qwen2" => ("qwen2", "Qwen2ForCausalLM"),
            "qwen3" => ("qwen3", "Qwen3ForCausalLM"),
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
        if let Some(name) = meta.str("general.name") {
            o.insert("_name_or_path".into(), json!(name));
        }
        c
    }
}
