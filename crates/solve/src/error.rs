use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum SolveError {
    #[error("the Hessian is {got} wide but the tensor has {cols} input columns")]
    ShapeMismatch { cols: usize, got: usize },
    #[error("{format} is not an integer-grid format; GPTQ chooses integer codes (int4_*, int8_channel)")]
    NotAGrid { format: &'static str },
    #[error("the Hessian is not positive definite even with {damp_percent}% damping")]
    NotPositiveDefinite { damp_percent: f64 },
    #[error("a group scale overflows f16 at row {row}, column {col}")]
    ScaleOverflow { row: usize, col: usize },
    #[error("the Hessian holds a NaN or Inf (non-finite calibration activations)")]
    NonFinite,
    #[error("{0}")]
    Unsupported(String),
    /// The matrix arithmetic of an objective failed (candle, a device).
    #[error("output-error evaluation failed: {0}")]
    Backend(String),
    #[error("{0}")]
    Format(#[from] pareto_formats::FormatError),
}
