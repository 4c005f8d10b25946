//! The one error type of pareto-traffic. Every variant names what to fix: the file and line of a
//! bad record, the argument and its allowed range.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A malformed log record; `line` is 1-based.
    #[error("{path}:{line}: {message}")]
    Record { path: PathBuf, line: usize, message: String },

    /// A log whose layout cannot be used (no query column, an unknown extension, no queries at all).
    #[error("{path}: {message}")]
    Layout { path: PathBuf, message: String },

    /// Timestamps must not go backwards: the replay is in time order and a cache cannot serve a
    /// query from an answer it will only see later.
    #[error(
        "{path}:{line}: timestamp {got} is earlier than the previous record's ({previous}); sort the log by time first"
    )]
    OutOfOrder { path: PathBuf, line: usize, got: String, previous: String },

    #[error("invalid argument {name}: {message}")]
    Argument { name: &'static str, message: String },

    /// The folder is not a sentence encoder this estimator can embed with.
    #[error("{path}: not a BERT-style sentence encoder ({message}); give --encoder a folder like all-MiniLM-L6-v2")]
    NotAnEncoder { path: PathBuf, message: String },

    #[error(transparent)]
    Eval(#[from] pareto_eval::EvalError),

    #[error("cancelled")]
    Cancelled,
}

pub type Result<T, E = TrafficError> = std::result::Result<T, E>;
