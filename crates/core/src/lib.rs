//! pareto-core: the Tauri-free engine. Data flows one way:
//! store → recipe (plan) → quantize/prune → export.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod accel;
pub mod bounded;
pub mod cache;
pub mod compress;
pub mod disk;
pub mod error;
pub mod export;
pub mod file_hash;
pub mod import;
pub mod job;
pub mod metrics;
pub mod plan_projection;
pub mod prune;
pub mod quantize;
pub mod recipe;
pub mod source;
pub mod store;
mod transform;

pub use compress::{CompressOptions, CompressReport, TensorReport, compress};
pub use error::{Error, Result};
pub use export::ExportFormat;
pub use recipe::{Plan, Recipe};
pub use store::Model;
