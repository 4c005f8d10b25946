//! The crate's single error type.

use thiserror::Error;

/// Everything that can go wrong when looking up a format or running a codec.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FormatError {
    #[error("unknown quant format `{id}` (valid: {valid})")]
    UnknownFormat { id: String, valid: String },

    #[error("format `{format}` needs cols divisible by {block}, got {cols}")]
    ShapeNotDivisible { format: &'static str, cols: usize, block: usize },

    #[error("shape [{rows}, {cols}] overflows the address space")]
    ShapeOverflow { rows: usize, cols: usize },

    #[error("expected {expected} weights for the given shape, got {actual}")]
    LengthMismatch { expected: usize, actual: usize },

    #[error("format `{format}`: weight {index} is not finite ({value})")]
    NonFinite { format: &'static str, index: usize, value: f32 },

    /// A finite input whose stored representation (the value itself, or its scale)
    /// would overflow the storage type, e.g. |w| > 65504 for `f16`.
    #[error("format `{format}`: value {value} at weight {index} overflows the stored type")]
    Overflow { format: &'static str, index: usize, value: f32 },

    #[error("ggml type {ggml_type} cannot be decoded: {reason}")]
    GgmlUndecodable { ggml_type: u32, reason: String },

    #[error("format `{format}` cannot decode this tensor: {reason}")]
    TensorMismatch { format: &'static str, reason: String },
}
