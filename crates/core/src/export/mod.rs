//! Export writers. Every writer builds its files in a temporary sibling folder and renames it
//! into place at the end, so a failure or a cancel never leaves a half-written artifact under the
//! final name; bytes are deterministic for the same input and recipe.
//!
//! Targets ([`ExportFormat`]): dense safetensors (the default, loads anywhere), compressed-tensors
//! (vLLM/SGLang/transformers), GGUF (llama.cpp/Ollama/LM Studio) and GPTQ v1 checkpoints. Each
//! packed target has a reader next to its writer that dequantizes what was written.

pub mod atomic;
pub mod compressed_tensors;
pub mod gguf;
pub mod gptq;
pub mod manifest;
pub(crate) mod pack;
pub(crate) mod packed;
pub mod protect;
pub mod safetensors;
pub mod st_read;

pub use atomic::{FileSink, Opener, OutputDir, default_opener, remove_live_temp_folders, write_small_file};
pub use manifest::{FileRecord, Manifest};
pub use protect::SourcePaths;

use serde::{Deserialize, Serialize};

/// The artifact `compress` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExportFormat {
    /// Dense safetensors: fake-quantized and/or pruned values in the source float dtype.
    #[default]
    Safetensors,
    /// compressed-tensors `pack-quantized` / `float-quantized` safetensors for vLLM.
    CompressedTensors,
    /// A single GGUF v3 file for llama.cpp.
    Gguf,
    /// An AutoGPTQ/GPTQModel v1 checkpoint (qweight/qzeros/scales/g_idx).
    Gptq,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 4] =
        [ExportFormat::Safetensors, ExportFormat::CompressedTensors, ExportFormat::Gguf, ExportFormat::Gptq];

    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Safetensors => "safetensors",
            ExportFormat::CompressedTensors => "compressed-tensors",
            ExportFormat::Gguf => "gguf",
            ExportFormat::Gptq => "gptq",
        }
    }

    pub fn parse(s: &str) -> Option<ExportFormat> {
        ExportFormat::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl std::fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
