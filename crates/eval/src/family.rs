//! Which model family a folder holds, from its config.json: the families evaluated end to end here
//! (LLaMA-style decoders: LLaMA, Mistral, Qwen2, Qwen3, Phi-3, Gemma 2; BERT-style encoders) and everything
//! else.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::weights::read_config;

/// A model family as far as evaluation is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "family", content = "architecture")]
pub enum ModelFamily {
    /// LLaMA-style decoder (`LlamaForCausalLM`, `MistralForCausalLM`, `Qwen2ForCausalLM`,
    /// `Qwen3ForCausalLM`, `Phi3ForCausalLM`, `Gemma2ForCausalLM`): perplexity, KL, top-1.
    Llama,
    /// BERT-style encoder (`BertModel`, `model_type = "bert"`): embeddings, STS.
    Bert,
    /// Anything else: no end-to-end metrics; the string is the declared architecture.
    Other(String),
}

/// Reads `config.json` and classifies the model.
pub fn detect_family(dir: &Path) -> Result<ModelFamily> {
    let (_, config) = read_config(dir)?;
    let model_type = config.get("model_type").and_then(|v| v.as_str()).unwrap_or_default().to_ascii_lowercase();
    let arch = config
        .get("architectures")
        .and_then(|v| v.as_array())
        .and_then(|a| a.first())
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    Ok(match (model_type.as_str(), arch.as_str()) {
        ("llama" | "mistral" | "qwen2" | "qwen3" | "phi3" | "gemma2", _)
        | (
            _,
            "LlamaForCausalLM" | "MistralForCausalLM" | "Qwen2ForCausalLM" | "Qwen3ForCausalLM" | "Phi3ForCausalLM"
            | "Gemma2ForCausalLM",
        ) => ModelFamily::Llama,
        ("bert", _) | (_, "BertModel") => ModelFamily::Bert,
        _ if arch.is_empty() => {
            ModelFamily::Other(if model_type.is_empty() { "unknown".to_string() } else { model_type })
        }
        _ => ModelFamily::Other(arch),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_models_are_recognised() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        assert_eq!(detect_family(&root.join("stories260K")).unwrap(), ModelFamily::Llama);
        assert_eq!(detect_family(&root.join("all-MiniLM-L6-v2")).unwrap(), ModelFamily::Bert);
    }

    #[test]
    fn other_architectures_are_named() {
        let dir = std::env::temp_dir().join(format!("pareto-eval-family-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), r#"{"architectures":["GPT2LMHeadModel"],"model_type":"gpt2"}"#)
            .unwrap();
        assert_eq!(detect_family(&dir).unwrap(), ModelFamily::Other("GPT2LMHeadModel".into()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
