//! pareto-core: the Tauri-free engine. Data flows one way:
//! store → recipe (plan) → quantize/prune → export.

pub mod error;
pub mod job;
pub mod store;

pub use error::{Error, Result};
