//! Both sides of the latency boundary: the cheapest way to serve the scenario within its interactive
//! SLO, beside the cheapest way to do the same daily work as queued batch jobs on spot capacity, and
//! the difference — what the latency requirement costs each month.

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::error::Result;
use crate::latency::{Efficiency, Work};
use crate::model::{ModelShape, PlanSummary};
use crate::quantity::{Quantity, n};
use crate::rank::{RightSizing, right_size};
use crate::scenario::{PricingTier, Scenario, Slo};

/// Largest batch the batch side may use (vLLM's default `max_num_seqs` is 256).
const BATCH_MAX_SEQS: u32 = 256;
/// Utilisation a queued workload can sustain (the queue absorbs the bursts).
const BATCH_UTILISATION: f64 = 0.9;

/// The cheapest viable device of one side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundarySide {
    pub device_id: String,
    pub device_name: String,
    pub instances: f64,
    pub tier: PricingTier,
    pub usd_month: Quantity,
}

/// The two sides and what separates them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyBoundary {
    /// Within the scenario's SLO, at its pricing tier.
    pub interactive: Option<BoundarySide>,
    /// The same requests per day as queued work: no latency SLO, spot capacity, full batches.
    pub batch: Option<BoundarySide>,
    /// How the batch side differs from the scenario.
    pub batch_terms: Vec<String>,
    /// Interactive minus batch.
    pub latency_premium_usd_month: Option<Quantity>,
    pub verdict: String,
}

/// The scenario's daily work as queued batch jobs, and the terms that changed.
pub fn batch_scenario(sc: &Scenario) -> (Scenario, Vec<String>) {
    let mut b = sc.clone();
    b.slo = Slo { ttft_p95_ms: None, tpot_p95_ms: None };
    b.pricing.tier = PricingTier::Spot;
    b.peak_to_average = 1.0;
    b.utilisation_target = b.utilisation_target.max(BATCH_UTILISATION);
    b.batching.max_batch = b.batching.max_batch.max(BATCH_MAX_SEQS);
    let terms = vec![
        "no latency SLO: requests wait in a queue and are served in full batches".to_owned(),
        "spot capacity (interruptible; the queue re-runs interrupted work)".to_owned(),
        format!(
            "work spread evenly over the day (peak-to-average 1, utilisation {:.0} %)",
            b.utilisation_target * 100.0
        ),
        format!("batches of up to {} sequences", b.batching.max_batch),
    ];
    (b, terms)
}

fn cheapest(r: &RightSizing, tier: PricingTier) -> Option<BoundarySide> {
    let e = r.entries.iter().find(|e| e.rank == Some(1))?;
    Some(BoundarySide {
        device_id: e.device_id.clone(),
        device_name: e.device_name.clone(),
        instances: e.instances?,
        tier,
        usd_month: e.usd_month.clone()?,
    })
}

/// The boundary for one plan, from the scenario's right-sizing and a batch one.
pub fn latency_boundary(
    interactive: &RightSizing,
    plan: &PlanSummary,
    work: &Work,
    shape: Option<&ModelShape>,
    catalog: &Catalog,
    sc: &Scenario,
    eff: &Efficiency,
) -> Result<LatencyBoundary> {
    let (batch_sc, batch_terms) = batch_scenario(sc);
    let batch_rs = right_size(plan, work, shape, catalog, &batch_sc, eff)?;
    let interactive = cheapest(interactive, sc.pricing.tier);
    let batch = cheapest(&batch_rs, PricingTier::Spot);
    let premium = match (&interactive, &batch) {
        (Some(i), Some(b)) => Some(
            Quantity::estimate(
                i.usd_month.value - b.usd_month.value,
                "USD/month",
                format!(
                    "${} ({} × {}, {:?}, within the SLO) − ${} ({} × {}, spot, queued)",
                    n(i.usd_month.value),
                    n(i.instances),
                    i.device_id,
                    i.tier,
                    n(b.usd_month.value),
                    n(b.instances),
                    b.device_id
                ),
            )
            .srcs(i.usd_month.sources.iter().chain(&b.usd_month.sources).cloned()),
        ),
        _ => None,
    };
    let verdict = match (&interactive, &batch, &premium) {
        (Some(i), Some(b), Some(p)) if p.value > 0.5 => format!(
            "the latency requirement costs ${:.0}/month: ${:.0} on {} within the SLO vs ${:.0} on {} as queued spot batch work",
            p.value, i.usd_month.value, i.device_id, b.usd_month.value, b.device_id
        ),
        (Some(i), Some(_), Some(_)) => format!(
            "the latency requirement costs nothing here: ${:.0}/month on {} is already as cheap as queued spot batch work",
            i.usd_month.value, i.device_id
        ),
        (None, Some(b), _) => format!(
            "no device meets the SLO; as queued spot batch work it runs on {} at ${:.0}/month",
            b.device_id, b.usd_month.value
        ),
        _ => "no priced device can run this work, interactive or batch".to_owned(),
    };
    Ok(LatencyBoundary { interactive, batch, batch_terms, latency_premium_usd_month: premium, verdict })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ComputePrecision, llama3_8b_weights};

    #[test]
    fn an_interactive_slo_costs_more_than_queued_spot_work() -> Result<()> {
        let cat = Catalog::builtin()?;
        let sc = Scenario::preset("high-volume-api")?;
        let shape = ModelShape::llama3_8b();
        let plan = PlanSummary::from_weights("p", &llama3_8b_weights("x", 4.5, ComputePrecision::Fp16), true)?;
        let work = Work::new(&plan, Some(&shape), sc.kv_dtype.bytes());
        let eff = Efficiency::default();
        let rs = right_size(&plan, &work, Some(&shape), &cat, &sc, &eff)?;
        let b = latency_boundary(&rs, &plan, &work, Some(&shape), &cat, &sc, &eff)?;
        let (i, q) = (b.interactive.as_ref().expect("interactive"), b.batch.as_ref().expect("batch"));
        assert!(q.usd_month.value < i.usd_month.value, "{} vs {}", q.usd_month.value, i.usd_month.value);
        let p = b.latency_premium_usd_month.as_ref().expect("premium");
        assert!((p.value - (i.usd_month.value - q.usd_month.value)).abs() < 1e-9);
        assert!(b.verdict.starts_with("the latency requirement costs $"), "{}", b.verdict);
        // A scenario that is already queued spot work has (almost) nothing to gain.
        let (batch, _) = batch_scenario(&sc);
        let rs = right_size(&plan, &work, Some(&shape), &cat, &batch, &eff)?;
        let same = latency_boundary(&rs, &plan, &work, Some(&shape), &cat, &batch, &eff)?;
        assert!(same.latency_premium_usd_month.expect("premium").value.abs() < 1e-6);
        Ok(())
    }
}
