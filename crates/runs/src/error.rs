pub type Result<T, E = RunError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Core(#[from] pareto_core::Error),
    #[error(transparent)]
    Eval(#[from] pareto_eval::EvalError),
    #[error(transparent)]
    Projection(#[from] pareto_projection::ProjectionError),
    #[error(transparent)]
    Report(#[from] pareto_report::ReportError),
    #[error("calibration: {0}")]
    Calibration(String),
    #[error("sensitivity scan: {0}")]
    Scan(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "sweep output {path} is {what}; a sweep writes only into a new or empty folder or one an earlier sweep wrote (it holds {marker})"
    )]
    OutNotOurs { path: std::path::PathBuf, what: String, marker: &'static str },
    #[error("cluster: {0}")]
    Cluster(String),
    #[error(
        "{path} was written by {theirs}; this is pareto {ours}: records and plans of one sweep come from one version (sweep into a new folder, or run that version)"
    )]
    VersionMix { path: std::path::PathBuf, theirs: String, ours: String },
    #[error(
        "`{command}` is not on PATH: run the sweep on a machine that submits to the cluster (a login node), or use the local executor"
    )]
    SchedulerMissing { command: &'static str },
    #[error("`{command}` failed: {stderr}")]
    Submit { command: String, stderr: String },
    #[error("{state} without a record (log: {log}){tail}")]
    Task { state: String, log: std::path::PathBuf, tail: String },
    #[error("queued as job {job}")]
    Queued { job: String },
    #[error("variant {variant}: {source}")]
    Variant {
        variant: String,
        #[source]
        source: Box<RunError>,
    },
}

impl RunError {
    /// A record or plan at `path` written by another tool or version than this one.
    pub fn version_mix(path: &std::path::Path, tool: &str, version: &str) -> RunError {
        RunError::VersionMix {
            path: path.to_path_buf(),
            theirs: format!("{tool} {version}"),
            ours: env!("CARGO_PKG_VERSION").into(),
        }
    }

    /// The user cancelled (a transparent wrapper hides this from an error chain's walk).
    pub fn is_cancelled(&self) -> bool {
        match self {
            RunError::Core(pareto_core::Error::Cancelled) => true,
            RunError::Variant { source, .. } => source.is_cancelled(),
            _ => false,
        }
    }
}
