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
    #[error("variant {variant}: {source}")]
    Variant {
        variant: String,
        #[source]
        source: Box<RunError>,
    },
}
