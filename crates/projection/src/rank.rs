//! Hardware right-sizing: every candidate device ranked by $/month among those where the model
//! fits and the SLO is met; the rest listed with the reason they were rejected.

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Device};
use crate::cost::cost_numbers;
use crate::energy::energy_numbers;
use crate::error::Result;
use crate::latency::{Efficiency, Work};
use crate::model::{ModelShape, PlanSummary};
use crate::quantity::{Quantity, n};
use crate::scenario::{PricingTier, Scenario};
use crate::serving::{SloVerdict, evaluate};

/// One device in the ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankEntry {
    /// 1-based position among viable devices; `None` when rejected.
    pub rank: Option<usize>,
    pub device_id: String,
    pub device_name: String,
    pub fits: bool,
    pub slo: SloVerdict,
    pub instances: Option<f64>,
    pub usd_month: Option<Quantity>,
    /// Why it ranks where it does, or why it was rejected.
    pub note: String,
}

/// The right-sizing answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RightSizing {
    pub plan: String,
    pub tier: PricingTier,
    pub entries: Vec<RankEntry>,
    /// One sentence: the cheapest viable device, or why none is.
    pub verdict: String,
}

/// The candidate devices of a scenario (its `candidates`, or the whole catalog).
pub fn candidates<'c>(catalog: &'c Catalog, sc: &Scenario) -> Result<Vec<&'c Device>> {
    if sc.candidates.is_empty() {
        Ok(catalog.devices.iter().collect())
    } else {
        sc.candidates.iter().map(|id| catalog.get(id)).collect()
    }
}

/// Ranks candidate devices for a plan.
pub fn right_size(
    plan: &PlanSummary,
    work: &Work,
    shape: Option<&ModelShape>,
    catalog: &Catalog,
    sc: &Scenario,
    eff: &Efficiency,
) -> Result<RightSizing> {
    let mut viable: Vec<(f64, bool, RankEntry)> = Vec::new();
    let mut rejected = Vec::new();
    for d in candidates(catalog, sc)? {
        let ev = evaluate(plan, work, shape, d, sc, &eff.on(d));
        let mut e = RankEntry {
            rank: None,
            device_id: d.id.clone(),
            device_name: d.name.clone(),
            fits: ev.mem.fits,
            slo: ev.slo.verdict,
            instances: ev.instances,
            usd_month: None,
            note: ev.slo.reasons.join("; "),
        };
        match (ev.slo.verdict, ev.instances) {
            (SloVerdict::Met, Some(inst)) => {
                let energy = energy_numbers(d, inst, sc);
                let c = cost_numbers(&ev, plan, d, sc, inst, energy.as_ref());
                let priced = c.hourly.is_some();
                e.note = if priced {
                    format!("{} × ${}/h {:?}", n(inst), n(c.hourly.unwrap_or(0.0)), sc.pricing.tier)
                } else if energy.is_some() {
                    "no hourly price (owned hardware): energy cost only, capex excluded".to_owned()
                } else {
                    "no hourly price and no TDP: running cost unknown".to_owned()
                };
                if !d.price_note.is_empty() && priced {
                    e.note.push_str("; price predates mid-2025 AWS P-series cuts");
                }
                e.usd_month = (priced || energy.is_some())
                    .then(|| Quantity::estimate(c.total, "USD/month", e.note.clone()).src(d.price_cite()));
                let key = if priced || energy.is_some() { c.total } else { f64::INFINITY };
                viable.push((key, priced, e));
            }
            _ => {
                if e.note.is_empty() {
                    e.note = "SLO could not be checked".to_owned();
                }
                rejected.push(e);
            }
        }
    }
    // Priced devices first (by $/month), then owned devices (by energy $/month), then unknown.
    viable.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.total_cmp(&b.0)).then(a.2.device_id.cmp(&b.2.device_id)));
    let verdict = match viable.first() {
        Some((cost, priced, e)) if *priced => format!(
            "cheapest device that fits and meets the SLO: {} at ${:.0}/month ({} instances)",
            e.device_id,
            cost,
            n(e.instances.unwrap_or(0.0))
        ),
        Some((_, _, e)) => format!("fits and meets the SLO on {} (owned hardware; no hourly price)", e.device_id),
        None => {
            let nofit = rejected.iter().filter(|e| !e.fits).count();
            format!(
                "SLO impossible on every candidate device: {} of {} do not fit the model, the rest miss the latency SLO or lack the figures to check it — relax the SLO, compress further, or add hardware with an override file",
                nofit,
                rejected.len()
            )
        }
    };
    let mut entries: Vec<RankEntry> = viable.into_iter().map(|(_, _, e)| e).collect();
    for (i, e) in entries.iter_mut().enumerate() {
        e.rank = Some(i + 1);
    }
    entries.extend(rejected);
    Ok(RightSizing { plan: plan.label.clone(), tier: sc.pricing.tier, entries, verdict })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ComputePrecision, llama3_8b_weights};

    fn run(sc: &Scenario, bits: f64) -> Result<RightSizing> {
        let cat = Catalog::builtin()?;
        let shape = ModelShape::llama3_8b();
        let plan = PlanSummary::from_weights("p", &llama3_8b_weights("x", bits, ComputePrecision::Fp16), true)?;
        let work = Work::new(&plan, Some(&shape), sc.kv_dtype.bytes());
        right_size(&plan, &work, Some(&shape), &cat, sc, &Efficiency::default())
    }

    #[test]
    fn ranking_is_sorted_and_rejects_devices_that_do_not_fit() -> Result<()> {
        let sc = Scenario::preset("high-volume-api")?;
        let r = run(&sc, 16.0)?;
        assert_eq!(r.entries.len(), 18);
        let costs: Vec<f64> = r.entries.iter().filter_map(|e| e.usd_month.as_ref().map(|q| q.value)).collect();
        assert!(costs.windows(2).all(|w| w[0] <= w[1]), "{costs:?}");
        let t4 = r.entries.iter().find(|e| e.device_id == "t4").map(|e| (e.rank, e.fits));
        assert_eq!(t4, Some((None, false)));
        assert!(r.verdict.starts_with("cheapest device"), "{}", r.verdict);
        Ok(())
    }

    #[test]
    fn impossible_slo_everywhere_is_a_clear_answer() -> Result<()> {
        let mut sc = Scenario::preset("high-volume-api")?;
        sc.slo.tpot_p95_ms = Some(0.01);
        let r = run(&sc, 16.0)?;
        assert!(r.entries.iter().all(|e| e.rank.is_none()));
        assert!(r.verdict.starts_with("SLO impossible on every candidate device"), "{}", r.verdict);
        Ok(())
    }

    #[test]
    fn edge_candidates_only() -> Result<()> {
        let sc = Scenario::preset("edge")?;
        let r = run(&sc, 4.5)?;
        let ids: Vec<&str> = r.entries.iter().map(|e| e.device_id.as_str()).collect();
        assert_eq!(ids.len(), 3);
        let mcu = r.entries.iter().find(|e| e.device_id == "cortex_m7_stm32h743").map(|e| e.fits);
        assert_eq!(mcu, Some(false));
        let mut bad = sc.clone();
        bad.candidates.push("nope".into());
        assert!(run(&bad, 4.5).is_err());
        Ok(())
    }
}
