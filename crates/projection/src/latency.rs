//! Roofline latency: decode steps, prefill, encoder forward passes and the batching crossover.
//!
//! # Efficiency defaults (and why)
//!
//! * `η_bw = 0.75` — achieved / peak memory bandwidth. PROJECTION.md §2.2 collects 0.9 as an
//!   "aggressive" target (llm-analysis README, used with hbm_eff 0.9 in its FasterTransformer
//!   calibration), 0.72 (an H100 calibration file of unknown origin) and "70 to 85 percent" MBU for
//!   well-optimised stacks. The published batch-1 decode points in decode_reference_points.csv
//!   imply 0.63–0.82 of peak after subtracting the fixed overhead, so 0.75 sits inside the
//!   literature range and in the middle of the measurements.
//! * `η_c = 0.7` — fraction of dense peak reached by matmuls: llm-analysis "up to 0.7 for
//!   inference" and its FasterTransformer calibration flops_eff 0.7 (gpu_poor uses 0.85, an
//!   H100 file 0.65 for prefill).
//! * `t_fixed = 0.3 ms` per step — kernel launches, sampling and scheduling that do not scale with
//!   bytes. No public tool states a number; 0.3 ms is what the RTX 4090/5090 rows need on top of
//!   the bandwidth term (5090 Q4_0: 3.33 ms measured vs 2.13 ms at peak) while keeping the CPU rows
//!   (Pi 5, i5) inside ±30 %. `Calibration::fit` replaces both η_bw and t_fixed for a device with
//!   measured timings.

use serde::{Deserialize, Serialize};

use crate::catalog::Device;
use crate::model::{ModelShape, PlanSummary};
use crate::quantity::{Quantity, n};

/// Default achieved fraction of peak memory bandwidth.
pub const DEFAULT_ETA_BW: f64 = 0.75;
/// Default achieved fraction of dense peak compute.
pub const DEFAULT_ETA_COMPUTE: f64 = 0.7;
/// Default fixed overhead per forward step, seconds.
pub const DEFAULT_OVERHEAD_S: f64 = 0.3e-3;

/// Efficiency factors of the roofline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Efficiency {
    pub eta_bw: f64,
    pub eta_compute: f64,
    /// Achieved fraction of peak compute in prefill (large matrix products); `None`: `eta_compute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_prefill: Option<f64>,
    pub overhead_s: f64,
    /// Seconds per sequence per step (sampling and scheduling that grow with the batch).
    #[serde(default)]
    pub per_seq_s: f64,
    /// The serving engine whose fitted figures apply on each device (see [`Efficiency::on`]);
    /// `None` keeps these numbers on every device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Where these numbers came from (defaults or a calibration).
    pub source: String,
}

impl Efficiency {
    /// These figures with every speed multiplied by `f`: the bandwidth and compute fractions
    /// times `f`, the per-step costs divided by it (the engine's per-device figures are taken as
    /// already applied, so the result names no engine).
    pub fn speed_scaled(&self, f: f64) -> Efficiency {
        Efficiency {
            eta_bw: self.eta_bw * f,
            eta_compute: self.eta_compute * f,
            eta_prefill: self.eta_prefill.map(|e| e * f),
            overhead_s: self.overhead_s / f,
            per_seq_s: self.per_seq_s / f,
            engine: None,
            source: format!("{} × {f:.3}", self.source),
        }
    }

    /// The figures on `device`: with an engine, those fitted to published measurements of that
    /// engine on the device's class (crate::fidelity); without one, these.
    pub fn on(&self, device: &crate::catalog::Device) -> Efficiency {
        match self.engine.as_deref().and_then(|e| crate::fidelity::engine_efficiency(e, device)) {
            Some(fitted) => fitted,
            None => self.clone(),
        }
    }

    /// The defaults with the fitted figures of `engine` applied per device.
    pub fn for_engine(engine: Option<&str>) -> Efficiency {
        Efficiency { engine: engine.map(str::to_owned), ..Efficiency::default() }
    }
}

impl Default for Efficiency {
    fn default() -> Self {
        Self {
            eta_bw: DEFAULT_ETA_BW,
            eta_compute: DEFAULT_ETA_COMPUTE,
            eta_prefill: None,
            overhead_s: DEFAULT_OVERHEAD_S,
            per_seq_s: 0.0,
            engine: None,
            source: "defaults: η_bw 0.75 (llm-analysis 0.9 aggressive, 0.72 calibration file, 70-85% MBU; PROJECTION.md §2.2), \
                     η_c 0.7 (llm-analysis inference / FasterTransformer calibration), t_fixed 0.3 ms (fit to decode_reference_points.csv GPU rows)"
                .to_owned(),
        }
    }
}

/// The device figures the roofline needs, in SI units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Roofline {
    /// Bytes per second; `None` when the catalog gives no bandwidth.
    pub bw: Option<f64>,
    /// Ops per second for [fp16, int8, fp8]; a missing int8/fp8 peak falls back to fp16 (the
    /// format then runs dequantised), a missing fp16 peak leaves compute unknown.
    pub peak: [Option<f64>; 3],
}

impl Roofline {
    /// From a catalog row.
    pub fn of(d: &Device) -> Self {
        let fp16 = d.fp16_tflops.filter(|x| *x > 0.0).map(|x| x * 1e12);
        let int8 = d.int8_tops.filter(|x| *x > 0.0).map(|x| x * 1e12).or(fp16);
        let fp8 = d.fp8_tflops.filter(|x| *x > 0.0).map(|x| x * 1e12).or(fp16);
        Self { bw: d.mem_bw_gbs.filter(|x| *x > 0.0).map(|x| x * 1e9), peak: [fp16, int8, fp8] }
    }

    /// Effective peak for a plan's mixture of matmul precisions (harmonic, weighted by params).
    pub fn mixed_peak(&self, plan: &PlanSummary) -> Option<f64> {
        let total = plan.matmul_total();
        let mut t = 0.0;
        for (p, peak) in plan.matmul_params.iter().zip(self.peak) {
            if *p > 0.0 {
                t += p / peak?;
            }
        }
        if t > 0.0 { Some(total / t) } else { self.peak[0] }
    }
}

/// The per-token work of a plan on a model shape (independent of the device).
#[derive(Debug, Clone, PartialEq)]
pub struct Work {
    pub bytes_per_step: f64,
    pub matmul_params: [f64; 3],
    /// KV bytes per token of context (`None` without a model config).
    pub kv_bytes_per_token: Option<f64>,
    /// Attention FLOPs per token of context per processed token: 4 × layers × heads × head_dim.
    pub attn_flops_per_ctx: f64,
}

impl Work {
    /// Builds the work description; `kv_bytes` is the KV dtype's bytes per element.
    pub fn new(plan: &PlanSummary, shape: Option<&ModelShape>, kv_bytes: f64) -> Self {
        Self {
            bytes_per_step: plan.bytes_per_step,
            matmul_params: plan.matmul_params,
            kv_bytes_per_token: shape.map(|s| s.kv_elems_per_token() * kv_bytes),
            attn_flops_per_ctx: shape.map_or(0.0, |s| 4.0 * s.n_layers as f64 * s.n_heads as f64 * s.head_dim as f64),
        }
    }
}

/// Which roofline limit binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    Memory,
    Compute,
    Unknown,
}

/// The time of one step, split into its roofline terms (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepTime {
    pub t_mem: Option<f64>,
    pub t_comp: Option<f64>,
    pub overhead: f64,
    pub total: Option<f64>,
    pub bound: Bound,
}

/// Seconds of compute at `eta` of the peaks.
fn compute_time(work: &Work, roof: &Roofline, eta: f64, tokens: f64, attn_flops: f64) -> Option<f64> {
    let mut t = 0.0;
    for (p, peak) in work.matmul_params.iter().zip(roof.peak) {
        if *p > 0.0 {
            t += 2.0 * p * tokens / (eta * peak?);
        }
    }
    if attn_flops > 0.0 {
        t += attn_flops / (eta * roof.peak[0]?);
    }
    Some(t)
}

/// One decode step for `batch` sequences at mean context `ctx` tokens:
/// `max((W + B·L·k)/(η_bw·BW), FLOPs/(η_c·F)) + t_fixed`. KV traffic is 0 when the shape is unknown.
pub fn decode_step(work: &Work, roof: &Roofline, eff: &Efficiency, batch: f64, ctx: f64) -> StepTime {
    let bytes = work.bytes_per_step + batch * ctx * work.kv_bytes_per_token.unwrap_or(0.0);
    let t_mem = roof.bw.map(|bw| bytes / (eff.eta_bw * bw));
    let t_comp = compute_time(work, roof, eff.eta_compute, batch, batch * ctx * work.attn_flops_per_ctx);
    combine(t_mem, t_comp, eff.overhead_s + batch * eff.per_seq_s, false)
}

/// Prefill of `batch` prompts of `n_in` tokens: compute-bound matmuls + the attention term
/// (4·layers·d·N² per sequence, llm-analysis) + one weight read (gpu_poor) + t_fixed.
pub fn prefill(work: &Work, roof: &Roofline, eff: &Efficiency, batch: f64, n_in: f64) -> StepTime {
    let t_mem = roof
        .bw
        .map(|bw| (work.bytes_per_step + batch * n_in * work.kv_bytes_per_token.unwrap_or(0.0)) / (eff.eta_bw * bw));
    let eta = eff.eta_prefill.unwrap_or(eff.eta_compute);
    let t_comp = compute_time(work, roof, eta, batch * n_in, batch * n_in * n_in * work.attn_flops_per_ctx);
    combine(t_mem, t_comp, eff.overhead_s, true)
}

fn combine(t_mem: Option<f64>, t_comp: Option<f64>, overhead: f64, additive: bool) -> StepTime {
    let (total, bound) = match (t_mem, t_comp) {
        (Some(m), Some(c)) => {
            let b = if c > m { Bound::Compute } else { Bound::Memory };
            (Some(if additive { m + c } else { m.max(c) } + overhead), b)
        }
        // Prefill is compute-bound: without a compute peak its time is unknown.
        (Some(_), None) if additive => (None, Bound::Unknown),
        (Some(m), None) => (Some(m + overhead), Bound::Unknown),
        (None, _) => (None, Bound::Unknown),
    };
    StepTime { t_mem, t_comp, overhead, total, bound }
}

/// Crossover batch `B* = F·b/(2·BW)` (ignoring KV): below it decode is memory-bound, above it
/// compute-bound. `b` is the plan's stored bytes per matmul parameter, `F` its mixed peak.
pub fn crossover_batch(plan: &PlanSummary, roof: &Roofline) -> Option<f64> {
    Some(roof.mixed_peak(plan)? * plan.bytes_per_param() / (2.0 * roof.bw?))
}

/// [`crossover_batch`] as a [`Quantity`].
pub fn crossover_quantity(plan: &PlanSummary, roof: &Roofline, device: &Device) -> Option<Quantity> {
    let b = crossover_batch(plan, roof)?;
    let f = roof.mixed_peak(plan)?;
    Some(
        Quantity::estimate(
            b,
            "sequences",
            format!(
                "B* = F·b/(2·BW) = {} TFLOP/s × {} B/param / (2 × {} GB/s)",
                n(f / 1e12),
                n(plan.bytes_per_param()),
                n(roof.bw? / 1e9)
            ),
        )
        .src("PROJECTION.md §2.2 crossover batch (ignores KV traffic)")
        .src(device.spec_cite()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::error::Result;
    use crate::model::{ComputePrecision, llama3_8b_weights};

    fn plan(bits: f64, compute: ComputePrecision) -> Result<PlanSummary> {
        PlanSummary::from_weights("p", &llama3_8b_weights("x", bits, compute), true)
    }

    #[test]
    fn crossover_a100_fp16_is_153() -> Result<()> {
        let cat = Catalog::builtin()?;
        let p = plan(16.0, ComputePrecision::Fp16)?;
        let b = crossover_batch(&p, &Roofline::of(cat.get("a100_80gb_sxm")?)).unwrap_or(0.0);
        assert!((b - 153.0).abs() < 0.5, "{b}");
        let h100 = crossover_batch(&p, &Roofline::of(cat.get("h100_sxm")?)).unwrap_or(0.0);
        assert!((h100 - 295.0).abs() < 1.0, "{h100}");
        Ok(())
    }

    #[test]
    fn w8a8_keeps_crossover_and_w4a16_lowers_it_4x() -> Result<()> {
        let cat = Catalog::builtin()?;
        let roof = Roofline::of(cat.get("h100_sxm")?);
        let fp16 = crossover_batch(&plan(16.0, ComputePrecision::Fp16)?, &roof).unwrap_or(0.0);
        let fp8 = crossover_batch(&plan(8.0, ComputePrecision::Fp8)?, &roof).unwrap_or(0.0);
        let int4 = crossover_batch(&plan(4.0, ComputePrecision::Fp16)?, &roof).unwrap_or(0.0);
        // Embeddings/head stay BF16, so the ratios are near (not exactly) 1 and 1/4.
        assert!((fp8 / fp16 - 1.0).abs() < 0.15, "{fp8} vs {fp16}");
        assert!(int4 < fp16 / 3.0, "{int4} vs {fp16}");
        Ok(())
    }

    #[test]
    fn int4_speeds_small_batch_far_more_than_large_batch() -> Result<()> {
        let cat = Catalog::builtin()?;
        let dev = cat.get("a100_80gb_sxm")?;
        let roof = Roofline::of(dev);
        let eff = Efficiency::default();
        let shape = crate::model::ModelShape::llama3_8b();
        let w16 = Work::new(&plan(16.0, ComputePrecision::Fp16)?, Some(&shape), 2.0);
        let w4 = Work::new(&plan(4.5, ComputePrecision::Fp16)?, Some(&shape), 2.0);
        let speed = |b: f64| {
            let t16 = decode_step(&w16, &roof, &eff, b, 1024.0).total.unwrap_or(f64::NAN);
            let t4 = decode_step(&w4, &roof, &eff, b, 1024.0).total.unwrap_or(f64::NAN);
            t16 / t4
        };
        let (s1, s256) = (speed(1.0), speed(256.0));
        assert!(s1 > 2.5, "batch-1 int4 speedup {s1}");
        assert!(s256 < 1.3, "batch-256 int4 speedup {s256}");
        assert!(s1 > 2.0 * s256);
        Ok(())
    }

    #[test]
    fn kv_llama31_8b_fp16_is_128_kib_per_token() -> Result<()> {
        let p = plan(16.0, ComputePrecision::Fp16)?;
        let w = Work::new(&p, Some(&crate::model::ModelShape::llama3_8b()), 2.0);
        assert_eq!(w.kv_bytes_per_token, Some(128.0 * 1024.0));
        Ok(())
    }

    #[test]
    fn decode_is_memory_bound_at_batch_1_and_compute_bound_far_above_bstar() -> Result<()> {
        let cat = Catalog::builtin()?;
        let roof = Roofline::of(cat.get("a100_80gb_sxm")?);
        let w = Work::new(&plan(16.0, ComputePrecision::Fp16)?, None, 2.0);
        let eff = Efficiency::default();
        assert_eq!(decode_step(&w, &roof, &eff, 1.0, 0.0).bound, Bound::Memory);
        assert_eq!(decode_step(&w, &roof, &eff, 1024.0, 0.0).bound, Bound::Compute);
        let apple = Roofline::of(cat.get("apple_m2_max")?);
        let s = decode_step(&w, &apple, &eff, 1.0, 0.0);
        assert_eq!((s.bound, s.t_comp), (Bound::Unknown, None));
        assert!(s.total.is_some(), "bandwidth-bound decode still projects without a compute peak");
        Ok(())
    }

    #[test]
    fn prefill_grows_quadratically_with_attention() -> Result<()> {
        let cat = Catalog::builtin()?;
        let roof = Roofline::of(cat.get("h100_sxm")?);
        let w = Work::new(&plan(16.0, ComputePrecision::Fp16)?, Some(&crate::model::ModelShape::llama3_8b()), 2.0);
        let eff = Efficiency::default();
        let c = |n_in: f64| prefill(&w, &roof, &eff, 1.0, n_in).t_comp.unwrap_or(0.0);
        let linear_ratio = c(8192.0) / c(1024.0);
        assert!(linear_ratio > 8.0, "attention adds superlinear cost: {linear_ratio}");
        Ok(())
    }
}
