//! The one error type of the crate. Variants carry the evidence (ids, fields, values, lines).

use std::path::PathBuf;

/// Everything that can go wrong while loading data or projecting.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// A scenario's serving engine that has no fitted figures.
    #[error("unknown serving engine {engine:?} in the scenario; valid: {valid}")]
    UnknownEngine { engine: String, valid: &'static str },
    /// A device id that is not in the catalog.
    #[error("unknown device `{id}`; valid ids: {}", valid.join(", "))]
    UnknownDevice { id: String, valid: Vec<String> },
    /// A scenario preset id that does not exist.
    #[error("unknown scenario preset `{id}`; valid presets: {}", valid.join(", "))]
    UnknownPreset { id: String, valid: Vec<String> },
    /// A traffic or scenario field outside its valid range.
    #[error("invalid scenario field `{field}` = {value}: {reason}")]
    InvalidScenario { field: String, value: f64, reason: &'static str },
    /// A model dimension the projection needs but the config does not give.
    #[error("model config lacks `{key}` (tried keys: {}); give the model's config.json or use a weights-only projection", tried.join(", "))]
    MissingDim { key: &'static str, tried: Vec<&'static str> },
    /// A model dimension that is present but unusable.
    #[error("model config field `{key}` is invalid: {reason}")]
    InvalidDim { key: &'static str, reason: String },
    /// A weight entry that cannot be used.
    #[error("weight `{name}`: {reason}")]
    InvalidWeight { name: String, reason: String },
    /// A projection was asked for with no weights at all.
    #[error("the plan `{plan}` has no weights")]
    EmptyPlan { plan: String },
    /// Malformed CSV (catalog, overrides, reference points).
    #[error("{what}, line {line}: {message}")]
    Csv { what: String, line: usize, message: String },
    /// Malformed TOML (scenario or catalog overrides).
    #[error("{what}: {message}")]
    Toml { what: String, message: String },
    /// A hardware row that cannot be used for the requested projection.
    #[error("device `{id}`: {reason}")]
    InvalidDevice { id: String, reason: String },
    /// A file that could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Calibration could not be fitted.
    #[error("calibration: {0}")]
    Calibration(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, ProjectionError>;
