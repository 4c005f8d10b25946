//! A decoder's decode speed measured on this machine (`pareto eval --speed --batches`, the studio's
//! Validate "measure speed") beside the roofline projection for the catalog device it ran on: the
//! decode efficiency fitted to it (`pareto project --calibration`, the studio's "calibrate with
//! the measurement") and the measured points next to the projected ones, batch by batch.
//!
//! The measurement runs the model's float weights as F32 with an F32 KV cache (candle's CPU
//! path), so the projection it is compared with reads the same bytes: the model's parameters at
//! four bytes each, not the checkpoint's BF16.

use pareto_core::plan_projection::original_weights;
use pareto_core::recipe::Plan;
use pareto_core::store::Model;
use pareto_eval::llama::WeightMode;
use pareto_eval::speed::{BATCH_DECODE_STEPS, BATCH_PROMPT_TOKENS, DecoderSpeed};
use pareto_projection::{
    Calibration, Device, DeviceKind, Efficiency, Measurement, ModelShape, PlanSummary, Roofline, WeightEntry, Work,
    decode_step,
};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{Result, RunError};

/// One batch size: measured and projected decode throughput, all sequences together. (The
/// studio's chart reads this type; its TypeScript is generated from it.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct MeasuredPoint {
    pub batch: usize,
    pub measured_tok_s: f64,
    /// The roofline with its default efficiencies.
    pub projected_tok_s: Option<f64>,
    /// The roofline with the efficiency fitted to this measurement.
    pub calibrated_tok_s: Option<f64>,
}

/// A measurement set against a device's projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredCurve {
    pub device: String,
    pub points: Vec<MeasuredPoint>,
    /// The fitted efficiency and what was fitted, said plainly; `None` when the measurement
    /// cannot calibrate this device (no bandwidth listed, a sweep without batch 1's step).
    pub efficiency: Option<Efficiency>,
    pub said: String,
}

/// The decode work of `plan`'s original weights as the measurement ran them (F32 weights and KV).
fn work_as_measured(model: &Model, plan: &Plan) -> Result<Work> {
    let weights: Vec<WeightEntry> = original_weights(plan)
        .into_iter()
        .map(|w| WeightEntry { stored_bytes: w.params * 4, format: "f32".into(), ..w })
        .collect();
    let summary = PlanSummary::from_weights("as measured (F32)", &weights, true)?;
    let shape = model.config().map(|c| ModelShape::from_hf_config(&c.raw)).transpose()?;
    Ok(Work::new(&summary, shape.as_ref(), 4.0))
}

/// Mean context of a step in the batched sweep (its prompt, then half its decode steps) and in
/// the batch-1 decode measurement (half its generated tokens after a one-token prompt).
fn mean_context(speed: &DecoderSpeed, batched: bool) -> f64 {
    if batched { (BATCH_PROMPT_TOKENS + BATCH_DECODE_STEPS / 2) as f64 } else { (speed.decode_tokens / 2) as f64 }
}

/// The measured points of `speed`: batch 1 from the decode measurement unless the sweep has it,
/// then the sweep's batches, in order.
fn measured_points(speed: &DecoderSpeed) -> Vec<(usize, f64, bool)> {
    let sweep: Vec<(usize, f64, bool)> = speed
        .batched
        .as_ref()
        .map(|b| b.points.iter().map(|p| (p.batch, p.decode_tokens_per_s, true)).collect())
        .unwrap_or_default();
    let mut points = Vec::new();
    if !sweep.iter().any(|p| p.0 == 1) {
        points.push((1, speed.decode_tokens_per_s.median, false));
    }
    points.extend(sweep);
    points.sort_by_key(|p| p.0);
    points
}

/// Fits the decode efficiency of `device` to `speed` (measured on it): η_bw from the batch-1
/// step (less the per-sequence cost), the per-sequence cost from the batched sweep's slope. The
/// fit is judged on the sweep's other batch sizes ([`curve`]), not on the point it was fitted to.
pub fn fit(
    speed: &DecoderSpeed,
    model: &Model,
    plan: &Plan,
    device: &Device,
    source: &str,
) -> Result<(Efficiency, String)> {
    if speed.weights != WeightMode::Dense {
        return Err(invalid(format!("{source}: the original was not measured with dense weights")));
    }
    let Some(bw) = device.mem_bw_gbs else {
        return Err(invalid(format!("{} lists no memory bandwidth to calibrate against", device.id)));
    };
    // A CPU measurement says nothing of a GPU's efficiency, nor the reverse.
    let cpu = matches!(device.kind, DeviceKind::Cpu | DeviceKind::Edge | DeviceKind::Mcu);
    if speed.host.cpu_backend != cpu {
        return Err(invalid(format!(
            "{source} ran on {} and {} is {}: choose the catalog entry of the machine that measured",
            if speed.host.cpu_backend { "a CPU" } else { "a GPU" },
            device.id,
            if cpu { "a CPU" } else { "a GPU" }
        )));
    }
    let work = work_as_measured(model, plan)?;
    // Batch 1 of the sweep when it has one (the same run as the slope below), else the decode
    // measurement.
    let (measured, batched) = measured_points(speed)
        .into_iter()
        .find(|p| p.0 == 1)
        .map_or((speed.decode_tokens_per_s.median, false), |(_, tok_s, batched)| (tok_s, batched));
    let per_seq = speed.batched.as_ref().and_then(|b| b.fit.as_ref()).map(|f| f.per_seq_ms).filter(|v| *v > 0.0);
    // The projection adds the per-sequence cost to every step, batch 1 included: fit the bandwidth
    // term to what is left of the measured batch-1 step.
    let step_s = 1.0 / measured - per_seq.map_or(0.0, |ms| ms / 1e3);
    if step_s <= 0.0 {
        return Err(invalid(format!(
            "{source}: the batched sweep's per-sequence cost exceeds the batch-1 step; measure again"
        )));
    }
    let kv = mean_context(speed, batched) * work.kv_bytes_per_token.unwrap_or(0.0);
    let m = Measurement {
        label: format!("{} batch 1", speed.model),
        bytes_per_token: work.bytes_per_step + kv,
        bandwidth_gbs: bw,
        tokens_per_s: 1.0 / step_s,
    };
    let cal = Calibration::fit(std::slice::from_ref(&m))?;
    let mut eff = cal.apply(&Efficiency::default());
    if let Some(ms) = per_seq {
        eff.per_seq_s = ms / 1e3;
    }
    eff.source = format!("{} — fitted to {source}, taken as measured on {}", eff.source, device.id);
    let point = cal.compare(std::slice::from_ref(&m)).remove(0);
    let said = format!(
        "calibrated on {source}: η_bw {:.3} (default {}), fixed overhead {:.3} ms, per-sequence {} — batch-1 decode measured {:.1} tok/s, projected {:.1} with the calibration, {:.1} with the defaults (before per-sequence costs)",
        cal.eta_bw,
        Efficiency::default().eta_bw,
        cal.overhead_s * 1e3,
        per_seq.map_or("not measured (no batched sweep)".into(), |v| format!("{v:.3} ms from the batched sweep")),
        measured,
        1.0 / (1.0 / point.calibrated_tok_s + per_seq.map_or(0.0, |ms| ms / 1e3)),
        point.default_tok_s
    );
    Ok((eff, said))
}

/// Every measured point of `speed` beside the projection for `device` (defaults, and fitted when
/// the measurement can calibrate it; why not when it cannot).
pub fn curve(speed: &DecoderSpeed, model: &Model, plan: &Plan, device: &Device, source: &str) -> Result<MeasuredCurve> {
    let (efficiency, said) = match fit(speed, model, plan, device, source) {
        Ok((e, s)) => (Some(e), s),
        Err(e) => (None, format!("not calibrated: {e}")),
    };
    let points = points(speed, model, plan, device, efficiency.as_ref())?;
    Ok(MeasuredCurve { device: device.id.clone(), points, efficiency, said })
}

/// The measured points of `speed` beside the roofline for `device` with the default efficiency
/// and with `fitted` (the [`fit`] a caller already has).
pub fn points(
    speed: &DecoderSpeed,
    model: &Model,
    plan: &Plan,
    device: &Device,
    fitted: Option<&Efficiency>,
) -> Result<Vec<MeasuredPoint>> {
    let work = work_as_measured(model, plan)?;
    let roof = Roofline::of(device);
    let tok_s = |eff: &Efficiency, batch: usize, ctx: f64| {
        decode_step(&work, &roof, eff, batch as f64, ctx).total.filter(|t| *t > 0.0).map(|t| batch as f64 / t)
    };
    Ok(measured_points(speed)
        .into_iter()
        .map(|(batch, measured, batched)| {
            let ctx = mean_context(speed, batched);
            MeasuredPoint {
                batch,
                measured_tok_s: measured,
                projected_tok_s: tok_s(&Efficiency::default(), batch, ctx),
                calibrated_tok_s: fitted.and_then(|e| tok_s(e, batch, ctx)),
            }
        })
        .collect())
}

fn invalid(message: String) -> RunError {
    RunError::Projection(pareto_projection::ProjectionError::Calibration(message))
}
