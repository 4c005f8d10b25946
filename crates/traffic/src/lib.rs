//! Pareto traffic: the cost levers a user can measure from their own query log instead of typing
//! them in as assumptions — exact and semantic cache hit rates (a replay through simulated caches),
//! what semantic hits cost in wrong answers (labelled pairs), and each tenant's share of the use.

pub mod correctness;
pub mod error;
pub mod estimate;
pub mod log;
pub mod replay;
pub mod scenario;
pub mod search;

pub use error::{Result, TrafficError};
pub use estimate::{CacheEstimate, EstimateSpec, SearchChoice, estimate};
pub use replay::{CacheConfig, CacheRow, Cadence};
