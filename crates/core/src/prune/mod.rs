//! Pruning: unstructured magnitude (per tensor or global), N:M semi-structured, Wanda (with
//! calibration statistics), and structured
//! removal of FFN channels / KV head groups / layers for LLaMA-style models.

pub mod global;
mod magnitude;
mod nm;
pub mod structured;
pub mod wanda;

pub use global::GlobalThreshold;
pub use magnitude::{prune_below, prune_magnitude};
pub use nm::prune_n_m;
