//! Serving under the scenario: operating batch, SLO check, per-instance capacity and the number
//! of instances at peak. Pure numbers; `project` turns them into quantities and the right-sizing
//! ranking reuses them for every candidate device.

use serde::{Deserialize, Serialize};

use crate::catalog::Device;
use crate::latency::{Efficiency, Roofline, StepTime, Work, decode_step, prefill};
use crate::memory::{MemoryNumbers, is_decoder, memory};
use crate::model::{ModelShape, PlanSummary};
use crate::scenario::Scenario;

/// Outcome of checking the SLO on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SloVerdict {
    Met,
    Missed,
    DoesNotFit,
    /// A figure the SLO needs is missing (device peak or bandwidth, or the model config).
    Unknown,
}

/// The SLO verdict with its reasons in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SloStatus {
    pub verdict: SloVerdict,
    pub reasons: Vec<String>,
}

/// Numbers of one plan on one device under one scenario.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub mem: MemoryNumbers,
    pub decoder: bool,
    /// Mean context during decode: input + output / 2.
    pub ctx: f64,
    pub decode1: StepTime,
    /// TTFT at p95: queue wait + prefill of one prompt (decoders); request latency (encoders).
    pub ttft_s: Option<f64>,
    pub op_batch: Option<f64>,
    pub step_at_op: Option<StepTime>,
    pub limited_by: String,
    /// Requests per second one instance serves at the operating batch.
    pub capacity_rps: Option<f64>,
    /// Compute and memory resource-seconds per request (for the cost split).
    pub comp_s_per_req: f64,
    pub mem_s_per_req: f64,
    pub avg_rps: f64,
    pub peak_rps: f64,
    pub instances: Option<f64>,
    pub instances_no_cache: Option<f64>,
    pub slo: SloStatus,
}

/// Evaluates a plan on a device. Needs a model shape for anything beyond memory and batch-1 decode.
pub fn evaluate(
    plan: &PlanSummary,
    work: &Work,
    shape: Option<&ModelShape>,
    device: &Device,
    sc: &Scenario,
    eff: &Efficiency,
) -> Evaluation {
    let roof = Roofline::of(device);
    let mem = memory(plan, shape, device, sc);
    let decoder = is_decoder(shape, sc);
    let ctx = sc.input_tokens + sc.output_tokens / 2.0;
    let decode1 = decode_step(work, &roof, eff, 1.0, if shape.is_some() { ctx } else { 0.0 });
    let (avg_rps, peak_rps) = sc.model_rps();
    let miss = 1.0 - sc.cache.exact_hit_rate - sc.cache.semantic_hit_rate;
    let mut ev = Evaluation {
        mem,
        decoder,
        ctx,
        decode1,
        ttft_s: None,
        op_batch: None,
        step_at_op: None,
        limited_by: String::new(),
        capacity_rps: None,
        comp_s_per_req: 0.0,
        mem_s_per_req: 0.0,
        avg_rps,
        peak_rps,
        instances: None,
        instances_no_cache: None,
        slo: SloStatus { verdict: SloVerdict::Unknown, reasons: Vec::new() },
    };
    let mut reasons = Vec::new();
    if !ev.mem.fits {
        ev.slo =
            SloStatus { verdict: SloVerdict::DoesNotFit, reasons: vec![format!("model does not fit {}", device.id)] };
        return ev;
    }
    if shape.is_none() {
        ev.slo.reasons.push("no model config: KV cache, prefill and batching are unknown".to_owned());
        return ev;
    }
    let queue = sc.batching.max_queue_wait_ms / 1e3;
    let mem_cap = ev.mem.max_seqs.unwrap_or(f64::from(sc.batching.max_batch));
    let cap = f64::from(sc.batching.max_batch).min(mem_cap).max(1.0);
    let mut unknown = false;
    if decoder {
        let pre = prefill(work, &roof, eff, 1.0, sc.input_tokens);
        ev.ttft_s = pre.total.map(|t| t + queue);
        let tpot_ok = |b: f64| match (decode_step(work, &roof, eff, b, ctx).total, sc.slo.tpot_p95_ms) {
            (Some(t), Some(slo)) => t * 1e3 <= slo,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let Some(t1) = decode1.total else {
            ev.slo = SloStatus {
                verdict: SloVerdict::Unknown,
                reasons: vec![format!("{} lists no memory bandwidth", device.id)],
            };
            return ev;
        };
        if let Some(slo) = sc.slo.tpot_p95_ms
            && t1 * 1e3 > slo
        {
            reasons.push(format!("time per output token at batch 1 is {:.1} ms > SLO {slo} ms", t1 * 1e3));
        }
        match (ev.ttft_s, sc.slo.ttft_p95_ms) {
            (Some(t), Some(slo)) if t * 1e3 > slo => reasons.push(format!("TTFT {:.0} ms > SLO {slo} ms", t * 1e3)),
            (None, Some(_)) => {
                unknown = true;
                reasons.push(format!("{} lists no compute peak: prefill/TTFT unknown", device.id));
            }
            _ => {}
        }
        // Largest batch ≤ cap meeting the TPOT SLO (step time grows with batch).
        let b = if tpot_ok(cap) {
            ev.limited_by = if cap < f64::from(sc.batching.max_batch) {
                "memory (KV cache)".to_owned()
            } else {
                "batching.max_batch".to_owned()
            };
            cap
        } else {
            let (mut lo, mut hi) = (1.0_f64, cap);
            while hi - lo > 1.0 {
                let mid = ((lo + hi) / 2.0).floor();
                if tpot_ok(mid) { lo = mid } else { hi = mid }
            }
            ev.limited_by = "time-per-output-token SLO".to_owned();
            lo
        };
        let step = decode_step(work, &roof, eff, b, ctx);
        let pre_comp = pre.t_comp.unwrap_or(0.0);
        if let Some(t) = step.total {
            let per_req = pre_comp + sc.output_tokens * t / b;
            ev.capacity_rps = Some(1.0 / per_req);
            ev.comp_s_per_req = pre_comp + sc.output_tokens * step.t_comp.unwrap_or(0.0) / b;
            ev.mem_s_per_req = sc.output_tokens * step.t_mem.unwrap_or(0.0) / b;
        }
        ev.op_batch = Some(b);
        ev.step_at_op = Some(step);
    } else {
        // Encoder: a batch of B sentences of input_tokens each is one forward pass.
        let fwd = |b: f64| prefill(work, &roof, eff, b, sc.input_tokens);
        let lat_ok = |b: f64| match (fwd(b).total, sc.slo.ttft_p95_ms) {
            (Some(t), Some(slo)) => (t + queue) * 1e3 <= slo,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let per_req = sc.sentences_per_request.min(cap).max(1.0);
        let one = fwd(per_req);
        ev.ttft_s = one.total.map(|t| t + queue);
        if one.t_comp.is_none() {
            unknown = true;
            reasons.push(format!("{} lists no compute peak: encoder latency unknown", device.id));
        } else if !lat_ok(per_req) {
            reasons.push(format!(
                "request latency {:.0} ms > SLO {} ms",
                ev.ttft_s.unwrap_or(0.0) * 1e3,
                sc.slo.ttft_p95_ms.unwrap_or(0.0)
            ));
        }
        let b = if lat_ok(cap) {
            ev.limited_by = "batching.max_batch".to_owned();
            cap
        } else {
            let (mut lo, mut hi) = (per_req, cap);
            while hi - lo > 1.0 {
                let mid = ((lo + hi) / 2.0).floor();
                if lat_ok(mid) { lo = mid } else { hi = mid }
            }
            ev.limited_by = "latency SLO".to_owned();
            lo
        };
        let step = fwd(b);
        if let Some(t) = step.total {
            ev.capacity_rps = Some(b / t / sc.sentences_per_request);
            ev.comp_s_per_req = step.t_comp.unwrap_or(0.0) / b * sc.sentences_per_request;
            ev.mem_s_per_req = step.t_mem.unwrap_or(0.0) / b * sc.sentences_per_request;
        }
        ev.op_batch = Some(b);
        ev.step_at_op = Some(step);
    }
    if let Some(c) = ev.capacity_rps {
        let need = |rps: f64| (rps / (c * sc.utilisation_target)).ceil().max(1.0);
        ev.instances = Some(need(peak_rps));
        ev.instances_no_cache = Some(need(peak_rps / miss));
    }
    ev.slo = if !reasons.is_empty() && !unknown {
        SloStatus { verdict: SloVerdict::Missed, reasons }
    } else if unknown {
        SloStatus { verdict: SloVerdict::Unknown, reasons }
    } else {
        SloStatus {
            verdict: SloVerdict::Met,
            reasons: vec![format!("operating batch {} limited by {}", ev.op_batch.unwrap_or(1.0), ev.limited_by)],
        }
    };
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::error::Result;
    use crate::model::{ComputePrecision, llama3_8b_weights};

    fn setup(bits: f64) -> Result<(PlanSummary, Work, ModelShape)> {
        let shape = ModelShape::llama3_8b();
        let plan = PlanSummary::from_weights("p", &llama3_8b_weights("x", bits, ComputePrecision::Fp16), true)?;
        let work = Work::new(&plan, Some(&shape), 2.0);
        Ok((plan, work, shape))
    }

    #[test]
    fn high_volume_api_on_h100_needs_a_handful_of_gpus() -> Result<()> {
        let cat = Catalog::builtin()?;
        let sc = Scenario::preset("high-volume-api")?;
        let (plan, work, shape) = setup(16.0)?;
        let ev = evaluate(&plan, &work, Some(&shape), cat.get("h100_sxm")?, &sc, &Efficiency::default());
        assert_eq!(ev.slo.verdict, SloVerdict::Met, "{:?}", ev.slo);
        let n = ev.instances.unwrap_or(0.0);
        // PROJECTION.md §6: ~13k tok/s per H100 (NIM) → ~6 GPUs at 2× peak for 10M × 300 tokens/day.
        assert!((3.0..=20.0).contains(&n), "{n}");
        assert!(ev.instances_no_cache >= ev.instances);
        Ok(())
    }

    #[test]
    fn impossible_slo_is_a_verdict_not_an_error() -> Result<()> {
        let cat = Catalog::builtin()?;
        let mut sc = Scenario::preset("high-volume-api")?;
        sc.slo.tpot_p95_ms = Some(0.5);
        let (plan, work, shape) = setup(16.0)?;
        let ev = evaluate(&plan, &work, Some(&shape), cat.get("h200_sxm")?, &sc, &Efficiency::default());
        assert_eq!(ev.slo.verdict, SloVerdict::Missed);
        assert!(ev.slo.reasons[0].contains("time per output token"), "{:?}", ev.slo.reasons);
        Ok(())
    }

    #[test]
    fn tight_tpot_slo_lowers_the_operating_batch() -> Result<()> {
        let cat = Catalog::builtin()?;
        let mut sc = Scenario::preset("high-volume-api")?;
        let (plan, work, shape) = setup(16.0)?;
        let dev = cat.get("a100_80gb_sxm")?;
        let loose = evaluate(&plan, &work, Some(&shape), dev, &sc, &Efficiency::default());
        sc.slo.tpot_p95_ms = Some(15.0);
        let tight = evaluate(&plan, &work, Some(&shape), dev, &sc, &Efficiency::default());
        assert!(tight.op_batch < loose.op_batch, "{:?} vs {:?}", tight.op_batch, loose.op_batch);
        assert_eq!(tight.limited_by, "time-per-output-token SLO");
        assert!(tight.instances >= loose.instances);
        Ok(())
    }
}
