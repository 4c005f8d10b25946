//! The model description the projection needs: architecture dimensions (from an HF
//! `config.json`) and the per-tensor weight list of a plan (original or compressed).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ProjectionError, Result};

/// Architecture family; decides whether there is a decode phase and a KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Decoder,
    Encoder,
    Unknown,
}

/// The dimensions of a transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelShape {
    pub family: Family,
    pub n_layers: u64,
    pub hidden: u64,
    pub n_heads: u64,
    /// Key/value heads (GQA); equals `n_heads` for multi-head attention.
    pub n_kv_heads: u64,
    pub head_dim: u64,
    pub intermediate: u64,
    pub vocab: u64,
    pub max_context: Option<u64>,
}

const LAYERS: &[&str] = &["num_hidden_layers", "n_layer", "n_layers", "num_layers"];
const HIDDEN: &[&str] = &["hidden_size", "n_embd", "d_model", "dim"];
const HEADS: &[&str] = &["num_attention_heads", "n_head", "n_heads"];
const KV_HEADS: &[&str] = &["num_key_value_heads", "n_kv_heads", "num_kv_heads"];
const INTER: &[&str] = &["intermediate_size", "n_inner", "hidden_dim", "ffn_dim"];
const VOCAB: &[&str] = &["vocab_size", "n_vocab"];
const CONTEXT: &[&str] = &["max_position_embeddings", "n_positions", "max_seq_len", "seq_length"];

fn get_u64(cfg: &Value, keys: &'static [&'static str], name: &'static str) -> Result<Option<u64>> {
    for k in keys {
        if let Some(v) = cfg.get(*k) {
            if v.is_null() {
                continue;
            }
            return match v.as_u64() {
                Some(0) => Err(ProjectionError::InvalidDim { key: name, reason: format!("`{k}` is 0") }),
                Some(x) => Ok(Some(x)),
                None => Err(ProjectionError::InvalidDim {
                    key: name,
                    reason: format!("`{k}` = {v} is not a positive integer"),
                }),
            };
        }
    }
    Ok(None)
}

fn need(cfg: &Value, keys: &'static [&'static str], name: &'static str) -> Result<u64> {
    get_u64(cfg, keys, name)?.ok_or_else(|| ProjectionError::MissingDim { key: name, tried: keys.to_vec() })
}

impl ModelShape {
    /// Reads an HF `config.json` (LLaMA, Mistral, Qwen2, Gemma, GPT-2-style and BERT-style keys).
    /// `num_key_value_heads` defaults to `num_attention_heads` (multi-head attention) and
    /// `head_dim` to `hidden_size / num_attention_heads`, as in the HF reference implementations.
    pub fn from_hf_config(cfg: &Value) -> Result<Self> {
        if !cfg.is_object() {
            return Err(ProjectionError::InvalidDim {
                key: "config",
                reason: "config.json is not a JSON object".to_owned(),
            });
        }
        let family = detect_family(cfg);
        let n_layers = need(cfg, LAYERS, "num_hidden_layers")?;
        let hidden = need(cfg, HIDDEN, "hidden_size")?;
        let n_heads = need(cfg, HEADS, "num_attention_heads")?;
        let n_kv_heads = get_u64(cfg, KV_HEADS, "num_key_value_heads")?.unwrap_or(n_heads);
        if n_kv_heads > n_heads || n_heads % n_kv_heads != 0 {
            return Err(ProjectionError::InvalidDim {
                key: "num_key_value_heads",
                reason: format!("{n_kv_heads} does not divide num_attention_heads {n_heads}"),
            });
        }
        let head_dim = match get_u64(cfg, &["head_dim"], "head_dim")? {
            Some(d) => d,
            None => {
                if hidden % n_heads != 0 {
                    return Err(ProjectionError::InvalidDim {
                        key: "head_dim",
                        reason: format!("no `head_dim` and hidden_size {hidden} is not a multiple of {n_heads} heads"),
                    });
                }
                hidden / n_heads
            }
        };
        let intermediate = match get_u64(cfg, INTER, "intermediate_size")? {
            Some(x) => x,
            // GPT-2 leaves n_inner null meaning 4 × hidden.
            None if cfg.get("n_inner").is_some() => 4 * hidden,
            None => return Err(ProjectionError::MissingDim { key: "intermediate_size", tried: INTER.to_vec() }),
        };
        let vocab = need(cfg, VOCAB, "vocab_size")?;
        let max_context = get_u64(cfg, CONTEXT, "max_position_embeddings")?;
        Ok(Self { family, n_layers, hidden, n_heads, n_kv_heads, head_dim, intermediate, vocab, max_context })
    }

    /// The shape of Meta-Llama-3-8B (used by tests and the benchmark).
    pub fn llama3_8b() -> Self {
        Self {
            family: Family::Decoder,
            n_layers: 32,
            hidden: 4096,
            n_heads: 32,
            n_kv_heads: 8,
            head_dim: 128,
            intermediate: 14336,
            vocab: 128_256,
            max_context: Some(8192),
        }
    }

    /// KV elements per token over all layers: 2 (K and V) × layers × kv_heads × head_dim.
    pub fn kv_elems_per_token(&self) -> f64 {
        2.0 * self.n_layers as f64 * self.n_kv_heads as f64 * self.head_dim as f64
    }
}

fn detect_family(cfg: &Value) -> Family {
    const ENCODERS: &[&str] =
        &["bert", "roberta", "xlm-roberta", "distilbert", "electra", "deberta", "deberta-v2", "mpnet", "nomic_bert"];
    if let Some(t) = cfg.get("model_type").and_then(Value::as_str)
        && ENCODERS.contains(&t)
    {
        return Family::Encoder;
    }
    if cfg.get("is_decoder").and_then(Value::as_bool) == Some(true) {
        return Family::Decoder;
    }
    let archs: Vec<&str> = cfg
        .get("architectures")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if archs.iter().any(|a| a.ends_with("ForCausalLM") || a.ends_with("LMHeadModel")) {
        return Family::Decoder;
    }
    if archs.iter().any(|a| a.starts_with("Bert") || a.ends_with("ForMaskedLM") || a.ends_with("Model")) {
        return Family::Encoder;
    }
    match cfg.get("model_type").and_then(Value::as_str) {
        Some(
            "llama" | "mistral" | "qwen2" | "qwen3" | "gemma" | "gemma2" | "phi3" | "gpt2" | "gpt_neox" | "gptj"
            | "mixtral",
        ) => Family::Decoder,
        _ => Family::Unknown,
    }
}

/// The precision the matmul of a tensor runs at, which selects the device peak used for its FLOPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComputePrecision {
    /// FP16/BF16 matmul; includes weight-only int4/int8 formats, which are dequantised to FP16.
    Fp16,
    /// W8A8 integer matmul.
    Int8,
    /// W8A8 FP8 matmul.
    Fp8,
}

/// One tensor of a plan. `stored_bytes` is the exact size in its storage format (scales included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightEntry {
    pub name: String,
    pub params: u64,
    pub stored_bytes: u64,
    pub format: String,
    pub compute: ComputePrecision,
}

/// Whether a tensor is an input-embedding lookup table (a gather: one row read per token, no matmul).
pub fn is_embedding_lookup(name: &str) -> bool {
    const KEYS: &[&str] = &[
        "embed_tokens",
        "word_embeddings",
        "token_embd",
        "tok_embeddings",
        "position_embeddings",
        "token_type_embeddings",
        "wte",
        "wpe",
    ];
    KEYS.iter().any(|k| name.contains(k))
}

fn is_output_head(name: &str) -> bool {
    name.contains("lm_head")
        || name == "output.weight"
        || name.ends_with(".output.weight") && !name.contains("attention")
}

/// The aggregate numbers of a plan that the latency and memory model need; computed once per plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    pub label: String,
    pub n_tensors: usize,
    pub total_params: f64,
    /// Exact sum of `stored_bytes` (what must sit in memory).
    pub stored_bytes: f64,
    /// Bytes read from memory per forward step: every tensor except input-embedding lookup tables
    /// (only one row each is read), but including the embedding when it doubles as the output
    /// head (tied embeddings, no separate head tensor).
    pub bytes_per_step: f64,
    /// Matmul parameters per precision [fp16, int8, fp8]; FLOPs per token = 2 × these.
    pub matmul_params: [f64; 3],
    pub tied_embeddings: bool,
    /// Formats present with their share of stored bytes, for display.
    pub formats: Vec<(String, f64)>,
}

impl PlanSummary {
    /// Sums a weight list. `decoder` selects tied-embedding handling (a decoder with no head tensor
    /// uses its embedding table as the head, so it is read and multiplied every token).
    pub fn from_weights(label: &str, weights: &[WeightEntry], decoder: bool) -> Result<Self> {
        if weights.is_empty() {
            return Err(ProjectionError::EmptyPlan { plan: label.to_owned() });
        }
        let has_head = weights.iter().any(|w| is_output_head(&w.name));
        let tied = decoder && !has_head;
        let mut s = Self {
            label: label.to_owned(),
            n_tensors: weights.len(),
            total_params: 0.0,
            stored_bytes: 0.0,
            bytes_per_step: 0.0,
            matmul_params: [0.0; 3],
            tied_embeddings: tied,
            formats: Vec::new(),
        };
        for w in weights {
            if w.params == 0 {
                return Err(ProjectionError::InvalidWeight {
                    name: w.name.clone(),
                    reason: "has 0 parameters".to_owned(),
                });
            }
            let (p, b) = (w.params as f64, w.stored_bytes as f64);
            s.total_params += p;
            s.stored_bytes += b;
            let lookup = is_embedding_lookup(&w.name);
            let token_table = lookup
                && (w.name.contains("embed_tokens")
                    || w.name.contains("token_embd")
                    || w.name.contains("wte")
                    || w.name.contains("tok_embeddings")
                    || w.name.contains("word_embeddings"));
            if !lookup || (tied && token_table) {
                s.bytes_per_step += b;
                let i = match w.compute {
                    ComputePrecision::Fp16 => 0,
                    ComputePrecision::Int8 => 1,
                    ComputePrecision::Fp8 => 2,
                };
                s.matmul_params[i] += p;
            }
            match s.formats.iter_mut().find(|(f, _)| *f == w.format) {
                Some((_, bytes)) => *bytes += b,
                None => s.formats.push((w.format.clone(), b)),
            }
        }
        Ok(s)
    }

    /// Mean stored bytes per matmul parameter (the `b` of the crossover formula).
    pub fn bytes_per_param(&self) -> f64 {
        let p: f64 = self.matmul_params.iter().sum();
        if p > 0.0 { self.bytes_per_step / p } else { self.stored_bytes / self.total_params }
    }

    /// Matmul parameters in total.
    pub fn matmul_total(&self) -> f64 {
        self.matmul_params.iter().sum()
    }
}

/// A synthetic Llama-3-8B-shaped weight list (291 tensors) with every linear layer stored at
/// `linear_bits_per_weight` and computed at `compute`; embeddings, norms and head stay BF16.
/// Used by tests and the benchmark; real plans come from the recipe resolver.
pub fn llama3_8b_weights(
    linear_format: &str,
    linear_bits_per_weight: f64,
    compute: ComputePrecision,
) -> Vec<WeightEntry> {
    let s = ModelShape::llama3_8b();
    let (h, kv, i, v) = (s.hidden, s.n_kv_heads * s.head_dim, s.intermediate, s.vocab);
    let dense = |name: String, params: u64| WeightEntry {
        name,
        params,
        stored_bytes: params * 2,
        format: "bf16".to_owned(),
        compute: ComputePrecision::Fp16,
    };
    let lin = |name: String, params: u64| WeightEntry {
        name,
        params,
        stored_bytes: (params as f64 * linear_bits_per_weight / 8.0).ceil() as u64,
        format: linear_format.to_owned(),
        compute,
    };
    let mut w = vec![dense("model.embed_tokens.weight".to_owned(), v * h)];
    for l in 0..s.n_layers {
        let p = format!("model.layers.{l}");
        w.push(dense(format!("{p}.input_layernorm.weight"), h));
        w.push(lin(format!("{p}.self_attn.q_proj.weight"), h * h));
        w.push(lin(format!("{p}.self_attn.k_proj.weight"), kv * h));
        w.push(lin(format!("{p}.self_attn.v_proj.weight"), kv * h));
        w.push(lin(format!("{p}.self_attn.o_proj.weight"), h * h));
        w.push(dense(format!("{p}.post_attention_layernorm.weight"), h));
        w.push(lin(format!("{p}.mlp.gate_proj.weight"), i * h));
        w.push(lin(format!("{p}.mlp.up_proj.weight"), i * h));
        w.push(lin(format!("{p}.mlp.down_proj.weight"), h * i));
    }
    w.push(dense("model.norm.weight".to_owned(), h));
    w.push(dense("lm_head.weight".to_owned(), v * h));
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn llama3_config_reads_gqa() -> Result<()> {
        let cfg = json!({"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":4096,"intermediate_size":14336,
            "num_attention_heads":32,"num_hidden_layers":32,"num_key_value_heads":8,"vocab_size":128256,"max_position_embeddings":131072});
        let s = ModelShape::from_hf_config(&cfg)?;
        assert_eq!(s.family, Family::Decoder);
        assert_eq!((s.n_kv_heads, s.head_dim), (8, 128));
        assert_eq!(s.max_context, Some(131_072));
        assert_eq!(s.kv_elems_per_token(), 65536.0);
        Ok(())
    }

    #[test]
    fn bert_config_is_encoder_with_mha() -> Result<()> {
        let cfg = json!({"architectures":["BertModel"],"model_type":"bert","hidden_size":384,"intermediate_size":1536,
            "num_attention_heads":12,"num_hidden_layers":6,"vocab_size":30522,"max_position_embeddings":512});
        let s = ModelShape::from_hf_config(&cfg)?;
        assert_eq!(s.family, Family::Encoder);
        assert_eq!((s.n_kv_heads, s.head_dim), (12, 32));
        Ok(())
    }

    #[test]
    fn missing_and_bad_dims_are_named() {
        let e = ModelShape::from_hf_config(&json!({"hidden_size":64})).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with("model config lacks `num_hidden_layers`"), "{e}");
        let e = ModelShape::from_hf_config(&json!({"num_hidden_layers":2,"hidden_size":64,"num_attention_heads":4,"num_key_value_heads":3,"intermediate_size":1,"vocab_size":1}))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("does not divide"), "{e}");
        assert!(ModelShape::from_hf_config(&json!({"num_hidden_layers":-2})).is_err());
        assert!(ModelShape::from_hf_config(&json!([1, 2])).is_err());
    }

    #[test]
    fn llama3_plan_has_291_tensors_and_8b_params() -> Result<()> {
        let w = llama3_8b_weights("bf16", 16.0, ComputePrecision::Fp16);
        assert_eq!(w.len(), 291);
        let s = PlanSummary::from_weights("orig", &w, true)?;
        assert!((s.total_params - 8.03e9).abs() < 0.01e9, "{}", s.total_params);
        assert!(!s.tied_embeddings);
        // The embedding lookup is not read per token: 8.03e9 − 0.525e9 params × 2 B.
        assert!((s.bytes_per_step - (s.total_params - 525_336_576.0) * 2.0).abs() < 1.0);
        assert!((s.bytes_per_param() - 2.0).abs() < 1e-9);
        Ok(())
    }

    #[test]
    fn tied_embeddings_count_as_head() -> Result<()> {
        let mut w = llama3_8b_weights("bf16", 16.0, ComputePrecision::Fp16);
        w.retain(|e| e.name != "lm_head.weight");
        let s = PlanSummary::from_weights("tied", &w, true)?;
        assert!(s.tied_embeddings);
        assert!((s.bytes_per_step - s.stored_bytes).abs() < 1e5, "norms are tiny; the table is read as the head");
        assert!(PlanSummary::from_weights("empty", &[], true).is_err());
        Ok(())
    }
}
