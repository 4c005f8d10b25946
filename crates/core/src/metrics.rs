//! Weight-space error metrics: defined beside the codecs (`pareto_formats::metrics`), which can
//! measure a row while encoding it.

pub use pareto_formats::metrics::{Sums, WeightMetrics};
