use std::path::PathBuf;

pub type Result<T, E = ReportError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a Pareto run record: {message}")]
    NotARecord { path: PathBuf, message: String },
    #[error(
        "{path}: run record schema version {found} is not supported (this build reads version {supported}); re-run the variant with this version of pareto"
    )]
    SchemaVersion { path: PathBuf, found: u64, supported: u32 },
    #[error("refusing to write {path}: it is {what}; choose another output path")]
    WouldOverwrite { path: PathBuf, what: String },
    #[error("{path}: {bytes} bytes is more than the {cap}-byte cap for a run record")]
    TooLarge { path: PathBuf, bytes: u64, cap: u64 },
    #[error("no metric {name:?} in these records; available: {available}")]
    UnknownMetric { name: String, available: String },
    #[error("nothing to compare: give at least one run record")]
    NoRecords,
}
