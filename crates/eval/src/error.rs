//! The one error type of pareto-eval. Variants carry the evidence (path, line, column, expected/got)
//! so a message alone tells the user what to fix.

use std::path::PathBuf;

/// Everything that can go wrong while loading samples or models, or while evaluating.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A malformed sample file. `line` is 1-based; `column` is the 1-based field number (0 when the
    /// problem concerns the whole line).
    #[error("{path}:{line}: column {column}: {message}")]
    Sample { path: PathBuf, line: usize, column: usize, message: String },

    /// A sample file that is larger than the configured limits.
    #[error("{path}: {what} is {got}, over the limit of {limit}{}", raise_hint(what))]
    SampleLimit { path: PathBuf, what: &'static str, got: u64, limit: u64 },

    /// A sample file whose layout (format, columns) could not be determined or is not usable for the
    /// requested evaluation.
    #[error("{path}: {message}")]
    SampleFormat { path: PathBuf, message: String },

    #[error("device `{requested}`: {reason}")]
    Device { requested: String, reason: String },

    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },

    #[error("model config {path}: {message}")]
    Config { path: PathBuf, message: String },

    /// A model folder whose architecture has no end-to-end evaluation here.
    #[error("{path}: unsupported model family `{family}` for end-to-end evaluation")]
    UnsupportedFamily { path: PathBuf, family: String },

    #[error(
        "{path}: tensor `{tensor}` holds a non-finite value ({value}) at element {index}; the model cannot be evaluated"
    )]
    NonFiniteWeight { path: PathBuf, tensor: String, index: usize, value: f32 },

    #[error(
        "the evaluation needs about {:.1} GiB of memory (the models as F32), {:.1} GiB is available; use a GPU (--device cuda:N), a smaller model or a machine with more memory",
        *needs as f64 / GIB, *available as f64 / GIB
    )]
    WouldNotFit { needs: u64, available: u64 },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    #[error("{context}: {source}")]
    Candle {
        context: String,
        #[source]
        source: candle_core::Error,
    },

    /// A bounded read, or another engine error (boxed: the engine's error is large).
    #[error(transparent)]
    Core(Box<pareto_core::Error>),

    #[error("cancelled")]
    Cancelled,
}

const GIB: f64 = (1u64 << 30) as f64;

/// `Result` with [`EvalError`].
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

/// Attaches a context string to candle errors (`.ctx("loading q_proj")?`).
pub(crate) trait CandleContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> CandleContext<T> for candle_core::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| EvalError::Candle { context: context(), source })
    }
}

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

impl From<pareto_core::Error> for EvalError {
    fn from(e: pareto_core::Error) -> Self {
        Self::Core(Box::new(e))
    }
}

impl From<candle_core::Error> for EvalError {
    fn from(source: candle_core::Error) -> Self {
        Self::Candle { context: "tensor operation".to_string(), source }
    }
}

/// How a user raises the one sample limit a real set may exceed.
fn raise_hint(what: &str) -> &'static str {
    if what == "file size in bytes" { " (pareto eval --max-sample-mib raises it)" } else { "" }
}
