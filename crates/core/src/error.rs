//! The one error type of pareto-core. Variants carry the evidence (path, tensor, offset,
//! expected/got) so a message names what is wrong and where.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- I/O -------------------------------------------------------------------------------
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    // ---- store (safetensors, shards, config) -------------------------------------------------
    // (variants added by the store module)

    // ---- formats -------------------------------------------------------------------------------
    #[error(transparent)]
    Format(#[from] pareto_formats::FormatError),

    // ---- recipe --------------------------------------------------------------------------------
    // (variants added by the recipe module)

    // ---- jobs ----------------------------------------------------------------------------------
    #[error("cancelled by the user")]
    Cancelled,
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
