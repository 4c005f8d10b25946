//! GGUF v3 for LLaMA-family decoders and BERT encoders (llama.cpp, Ollama, LM Studio): writer, general reader,
//! metadata, tokenizer conversion and HF→GGUF tensor names.
//!
//! File layout followed: ggml docs/gguf.md (header, typed KV pairs, tensor infos with `dims[0]`
//! the contiguous row length, data aligned to `general.alignment`, default 32). Tensor-type
//! policy: llama.cpp src/llama-quant.cpp (done by the recipe presets and the registry fallbacks).

pub mod imatrix;
pub mod metadata;
pub mod names;
pub mod pooling;
pub mod reader;
pub mod rope;
pub mod tokenizer;
pub mod types;
pub mod writer;

pub use metadata::{MetaValue, ValueType};
pub use reader::{GgufFile, GgufTensor};
pub use writer::write;

/// GGUF format version written.
pub const VERSION: u32 = 3;
/// Data alignment written (`general.alignment`).
pub const ALIGNMENT: u64 = 32;
/// `GGML_QNT_VERSION` (ggml/include/ggml.h): the block-layout version of quantized types.
pub const QUANTIZATION_VERSION: u32 = 2;
pub const MAGIC: &[u8; 4] = b"GGUF";
