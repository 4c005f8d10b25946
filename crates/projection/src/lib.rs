//! pareto-projection: hardware catalog and memory / latency / cost / energy projection.
//!
//! Pure functions of (per-tensor plan, model shape, hardware row, traffic scenario). Every
//! projected number is a [`Quantity`] carrying its unit, formula and sources; estimates are
//! labelled. See `latency` for the efficiency defaults and why, and `cost` for the cost
//! attribution rule.
//!
//! ```
//! use pareto_projection::*;
//! let catalog = Catalog::builtin()?;
//! let scenario = Scenario::preset("high-volume-api")?;
//! let shape = ModelShape::llama3_8b();
//! let original = llama3_8b_weights("bf16", 16.0, ComputePrecision::Fp16);
//! let int4 = llama3_8b_weights("int4_g128_sym", 4.25, ComputePrecision::Fp16);
//! let p = project(&ProjectionRequest {
//!     shape: Some(&shape),
//!     original: &original,
//!     compressed: Some(&int4),
//!     device: catalog.get("h100_sxm")?,
//!     scenario: &scenario,
//!     catalog: Some(&catalog),
//!     efficiency: Efficiency::default(),
//! })?;
//! assert!(p.original.memory.fits);
//! # Ok::<(), ProjectionError>(())
//! ```

mod boundary;
mod calibration;
mod catalog;
mod cost;
mod csv;
mod energy;
mod error;
pub mod fidelity;
mod latency;
mod least_squares;
mod memory;
mod model;
mod project;
mod quantity;
mod rank;
mod reference;
mod scenario;
mod serving;

pub use boundary::{BoundarySide, LatencyBoundary, batch_scenario, latency_boundary};
pub use calibration::{Calibration, CalibrationPoint, Measurement};
pub use catalog::{Catalog, Device, DeviceKind};
pub use cost::{ATTRIBUTION_RULE, CostProjection, hourly_price};
pub use energy::EnergyProjection;
pub use error::{ProjectionError, Result};
pub use latency::{
    Bound, DEFAULT_ETA_BW, DEFAULT_ETA_COMPUTE, DEFAULT_OVERHEAD_S, Efficiency, Roofline, StepTime, Work,
    crossover_batch, decode_step, prefill,
};
pub use memory::{MemoryProjection, runtime_overhead, weight_budget};
pub use model::{
    ComputePrecision, Family, ModelShape, PlanSummary, WeightEntry, is_embedding_lookup, llama3_8b_weights,
};
pub use project::{
    BatchPoint, BatchSweep, Comparison, DeviceInfo, LatencyProjection, Mode, PlanProjection, Projection,
    ProjectionRequest, SpeedupPoint, TenantCost, ThroughputProjection, project,
};
pub use quantity::Quantity;
pub use rank::{RankEntry, RightSizing, right_size};
pub use reference::{REFERENCE_POINTS_CSV, ReferencePointResult, reference_points, reference_points_with};
pub use scenario::{Batching, Cache, Energy, KvDtype, Network, Pricing, PricingTier, Scenario, Slo, Tenant};
pub use serving::{SloStatus, SloVerdict};
