//! What part of the network a tensor belongs to, from its name. Recipes target roles (e.g. "skip
//! norms and embeddings"), so the rules favour the naming of the families we validate: LLaMA-style
//! decoders (q/k/v/o_proj, gate/up/down_proj, embed_tokens, *norm, lm_head) and BERT encoders
//! (attention.self.query/key/value, attention.output.dense, intermediate.dense, output.dense,
//! embeddings.*, LayerNorm, pooler), with common GPT-style names as a fallback.

use serde::{Deserialize, Serialize};

use super::config::Architecture;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Attention,
    Mlp,
    Embedding,
    Norm,
    Head,
    Other,
}

impl Role {
    pub const ALL: [Role; 6] = [Role::Attention, Role::Mlp, Role::Embedding, Role::Norm, Role::Head, Role::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Attention => "attention",
            Role::Mlp => "mlp",
            Role::Embedding => "embedding",
            Role::Norm => "norm",
            Role::Head => "head",
            Role::Other => "other",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const HEAD: &[&str] = &["lm_head", "pooler", "cls", "classifier", "score", "qa_outputs"];
const EMBEDDING: &[&str] =
    &["embed_tokens", "embeddings", "word_embeddings", "tok_embeddings", "wte", "wpe", "embed_positions"];
const ATTENTION: &[&str] = &[
    "self_attn",
    "attention",
    "attn",
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "query",
    "key",
    "value",
    "c_attn",
    "wq",
    "wk",
    "wv",
    "wo",
];
const MLP: &[&str] = &[
    "mlp",
    "intermediate",
    "feed_forward",
    "ffn",
    "gate_proj",
    "up_proj",
    "down_proj",
    "w1",
    "w2",
    "w3",
    "fc1",
    "fc2",
];

/// Classifies a tensor by its dotted name. `architecture` refines names that are ambiguous on
/// their own (BERT's per-layer `output.dense` is the MLP's down projection).
pub fn classify(name: &str, architecture: Option<&Architecture>) -> Role {
    let lower = name.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('.').collect();
    let has = |set: &[&str]| parts.iter().any(|p| set.contains(p));

    // Norms first: they sit inside attention/MLP blocks (attention.output.LayerNorm) and in
    // embeddings (embeddings.LayerNorm) but are never quantized like the matrices around them.
    if parts.iter().any(|p| p.contains("norm") || *p == "ln_f" || *p == "ln_1" || *p == "ln_2") {
        return Role::Norm;
    }
    // Buffers such as BERT's position_ids are integer indices, not weights.
    if parts.last().is_some_and(|p| p.ends_with("_ids")) {
        return Role::Other;
    }
    // GGUF-style LLaMA names the head just `output.weight`.
    if has(HEAD) || lower == "output.weight" {
        return Role::Head;
    }
    if has(EMBEDDING) {
        return Role::Embedding;
    }
    if has(ATTENTION) {
        return Role::Attention;
    }
    if has(MLP) || is_bert_layer_output(&parts, architecture) {
        return Role::Mlp;
    }
    Role::Other
}

/// `encoder.layer.N.output.dense.*`: BERT's second MLP matrix (the attention's own output
/// projection is `attention.output.dense`, caught earlier as attention).
fn is_bert_layer_output(parts: &[&str], architecture: Option<&Architecture>) -> bool {
    let bert_like = matches!(architecture, None | Some(Architecture::Bert) | Some(Architecture::Unknown(_)));
    bert_like
        && parts
            .windows(3)
            .any(|w| matches!(w, [layer, index, "output"] if *layer == "layer" && index.parse::<usize>().is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_names() {
        let a = Some(&Architecture::Llama);
        for (name, role) in [
            ("model.layers.0.self_attn.q_proj.weight", Role::Attention),
            ("model.layers.3.self_attn.o_proj.weight", Role::Attention),
            ("model.layers.0.self_attn.k_proj.bias", Role::Attention),
            ("model.layers.0.mlp.gate_proj.weight", Role::Mlp),
            ("model.layers.0.mlp.down_proj.weight", Role::Mlp),
            ("model.embed_tokens.weight", Role::Embedding),
            ("model.layers.0.input_layernorm.weight", Role::Norm),
            ("model.layers.0.post_attention_layernorm.weight", Role::Norm),
            ("model.norm.weight", Role::Norm),
            ("lm_head.weight", Role::Head),
            ("model.rotary_emb.inv_freq", Role::Other),
        ] {
            assert_eq!(classify(name, a), role, "{name}");
        }
    }

    #[test]
    fn bert_names() {
        let a = Some(&Architecture::Bert);
        for (name, role) in [
            ("encoder.layer.0.attention.self.query.weight", Role::Attention),
            ("encoder.layer.0.attention.self.value.bias", Role::Attention),
            ("encoder.layer.0.attention.output.dense.weight", Role::Attention),
            ("encoder.layer.0.attention.output.LayerNorm.weight", Role::Norm),
            ("encoder.layer.0.intermediate.dense.weight", Role::Mlp),
            ("encoder.layer.5.output.dense.weight", Role::Mlp),
            ("encoder.layer.5.output.LayerNorm.bias", Role::Norm),
            ("embeddings.word_embeddings.weight", Role::Embedding),
            ("embeddings.position_embeddings.weight", Role::Embedding),
            ("embeddings.LayerNorm.weight", Role::Norm),
            ("embeddings.position_ids", Role::Other),
            ("pooler.dense.weight", Role::Head),
            ("bert.encoder.layer.1.output.dense.bias", Role::Mlp),
        ] {
            assert_eq!(classify(name, a), role, "{name}");
        }
    }

    #[test]
    fn serde_is_lowercase() {
        assert_eq!(serde_json::to_string(&Role::Mlp).unwrap_or_default(), "\"mlp\"");
        for r in Role::ALL {
            assert_eq!(serde_json::to_string(&r).unwrap_or_default(), format!("\"{r}\""));
        }
    }
}
