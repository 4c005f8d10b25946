//! pareto-solve: calibrated quantizers. Given a linear layer's weights and the Hessian of its
//! inputs over a calibration set, choose codes that keep the layer's *outputs* close, not only its
//! weights. Pure Rust on the CPU; statistics come from pareto-eval's forward passes.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod awq;
mod codes;
mod error;
pub mod gptq;
mod hessian;
pub mod linalg;
pub mod sparsegpt;
mod spill;

pub use awq::{AwqOptions, OutputError};
pub use codes::SolvedCodes;
pub use error::SolveError;
pub use gptq::{GptqFactor, GptqOptions, GptqResult, gptq};
pub use hessian::Hessian;
