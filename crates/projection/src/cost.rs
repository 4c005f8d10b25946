//! Cost: instance-hours at the chosen pricing tier, split into four categories, plus storage,
//! egress, tier comparison and caching savings.
//!
//! # Attribution rule
//! An instance-hour buys compute and memory together. It is split between the **compute** and
//! **memory** categories in proportion to the roofline resource-seconds each would need alone to
//! serve a request at the operating point (compute: prefill FLOPs + decode FLOPs / (η_c·peak);
//! memory: decode bytes / (η_bw·BW)), so memory-bound decode shows up as memory cost and a
//! weight-only quantisation visibly shrinks it. **I/O** is model-artifact storage
//! (stored bytes × instances × $/GB-month). **Network** is egress (GB/request × all requests,
//! cache hits included, × $/GB). Devices with no hourly price (owned hardware) are charged their
//! energy in the compute and memory categories instead; cloud prices already include energy, so
//! it is reported but not added.

use serde::{Deserialize, Serialize};

use crate::catalog::Device;
use crate::energy::EnergyNumbers;
use crate::model::PlanSummary;
use crate::quantity::{Quantity, n};
use crate::scenario::{PricingTier, Scenario};
use crate::serving::Evaluation;

/// The attribution rule in words (shown in the UI and JSON).
pub const ATTRIBUTION_RULE: &str = "instance $ split compute:memory by roofline resource-seconds per request (compute = FLOPs/(η_c·peak), memory = bytes/(η_bw·BW)); \
I/O = model storage (stored GB × instances × $/GB-month); network = egress GB/request × all requests × $/GB; \
owned devices (no hourly price) are charged energy instead of instance-hours";

/// Hourly price per device at a tier; `None` when the catalog has no such price.
pub fn hourly_price(device: &Device, tier: PricingTier, sc: &Scenario) -> Option<f64> {
    match tier {
        PricingTier::OnDemand => device.ondemand_usd_h,
        PricingTier::Spot => device.spot_usd_h,
        PricingTier::Reserved => device.ondemand_usd_h.map(|p| p * (1.0 - sc.pricing.reserved_discount)),
    }
}

/// Monthly cost figures (USD).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostNumbers {
    pub hourly: Option<f64>,
    pub instance_usd: f64,
    pub compute: f64,
    pub memory: f64,
    pub io: f64,
    pub network: f64,
    pub total: f64,
    pub requests_month: f64,
    pub output_tokens_month: f64,
}

/// Cost of `instances` devices for a month.
pub fn cost_numbers(
    ev: &Evaluation,
    plan: &PlanSummary,
    device: &Device,
    sc: &Scenario,
    instances: f64,
    energy: Option<&EnergyNumbers>,
) -> CostNumbers {
    let hours = sc.pricing.hours_per_month;
    let hourly = hourly_price(device, sc.pricing.tier, sc);
    let instance_usd = match hourly {
        Some(h) => h * instances * hours,
        None => energy.map_or(0.0, |e| e.usd_month),
    };
    let denom = ev.comp_s_per_req + ev.mem_s_per_req;
    let comp_share = if denom > 0.0 { ev.comp_s_per_req / denom } else { 0.5 };
    let io = plan.stored_bytes / 1e9 * instances * sc.pricing.storage_usd_per_gb_month;
    let requests_month = sc.requests_per_day * hours / 24.0;
    let network = sc.network.egress_gb_per_request * requests_month * sc.network.usd_per_gb;
    CostNumbers {
        hourly,
        instance_usd,
        compute: instance_usd * comp_share,
        memory: instance_usd * (1.0 - comp_share),
        io,
        network,
        total: instance_usd + io + network,
        requests_month,
        output_tokens_month: requests_month * sc.output_tokens,
    }
}

/// The cost section of a projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostProjection {
    pub tier: PricingTier,
    pub instances: Quantity,
    /// Mean load over the month relative to provisioned capacity.
    pub average_utilisation: Quantity,
    pub total_usd_month: Quantity,
    pub usd_per_1m_requests: Quantity,
    pub usd_per_1m_output_tokens: Option<Quantity>,
    pub compute_usd_month: Quantity,
    pub memory_usd_month: Quantity,
    pub io_usd_month: Quantity,
    pub network_usd_month: Quantity,
    pub on_demand_usd_month: Option<Quantity>,
    pub spot_usd_month: Option<Quantity>,
    pub reserved_usd_month: Option<Quantity>,
    pub caching_savings_usd_month: Option<Quantity>,
    pub energy_charged: bool,
    pub attribution_rule: String,
    pub price_note: String,
}

/// Builds the cost section.
pub fn cost_projection(
    ev: &Evaluation,
    plan: &PlanSummary,
    device: &Device,
    sc: &Scenario,
    energy: Option<&EnergyNumbers>,
) -> Option<CostProjection> {
    let instances = ev.instances?;
    let c = cost_numbers(ev, plan, device, sc, instances, energy);
    let hours = sc.pricing.hours_per_month;
    let price_src = device.price_cite();
    let (inst_formula, energy_charged) = match c.hourly {
        Some(h) => {
            (format!("{} instances × ${}/h ({:?}) × {} h", n(instances), n(h), sc.pricing.tier, n(hours)), false)
        }
        None => (format!("{} has no hourly price (owned hardware): energy only, capex excluded", device.id), true),
    };
    let total_usd_month = Quantity::estimate(
        c.total,
        "USD/month",
        format!("instances [{inst_formula}] + I/O ${:.2} + network ${:.2}", c.io, c.network),
    )
    .src(price_src.clone())
    .src(format!("scenario pricing.tier = {:?}", sc.pricing.tier));
    let comp_pct = if c.instance_usd > 0.0 { c.compute / c.instance_usd * 100.0 } else { 0.0 };
    let tier_q = |tier: PricingTier| {
        hourly_price(device, tier, sc).map(|h| {
            Quantity::estimate(
                h * instances * hours,
                "USD/month",
                format!(
                    "{} × ${}/h × {} h{}",
                    n(instances),
                    n(h),
                    n(hours),
                    if tier == PricingTier::Reserved {
                        format!(" (on-demand − {}% reserved discount)", n(sc.pricing.reserved_discount * 100.0))
                    } else {
                        String::new()
                    }
                ),
            )
            .src(price_src.clone())
        })
    };
    let caching_savings_usd_month = ev.instances_no_cache.map(|n0| {
        let without = cost_numbers(ev, plan, device, sc, n0, None);
        let diff = (without.instance_usd + without.io) - (c.instance_usd + c.io);
        Quantity::estimate(
            diff.max(0.0),
            "USD/month",
            format!(
                "cost at {} instances without cache − cost at {} with {}% exact + {}% semantic hits",
                n(n0),
                n(instances),
                n(sc.cache.exact_hit_rate * 100.0),
                n(sc.cache.semantic_hit_rate * 100.0)
            ),
        )
        .src(
            sc.cache
                .measured_by
                .clone()
                .unwrap_or_else(|| "scenario cache.exact_hit_rate, cache.semantic_hit_rate (assumed)".into()),
        )
        .src("cache infrastructure cost not included")
    });
    Some(CostProjection {
        tier: sc.pricing.tier,
        instances: Quantity::estimate(
            instances,
            "instances",
            format!(
                "⌈peak {} req/s / ({} req/s per instance × {} utilisation target)⌉",
                n(ev.peak_rps),
                n(ev.capacity_rps.unwrap_or(0.0)),
                n(sc.utilisation_target)
            ),
        )
        .src("scenario requests_per_day, peak_to_average, cache hit rates, utilisation_target"),
        average_utilisation: Quantity::estimate(
            ev.avg_rps / (instances * ev.capacity_rps.unwrap_or(f64::INFINITY)),
            "fraction",
            format!(
                "average {} req/s / ({} instances × {} req/s)",
                n(ev.avg_rps),
                n(instances),
                n(ev.capacity_rps.unwrap_or(0.0))
            ),
        ),
        usd_per_1m_requests: Quantity::estimate(
            c.total / c.requests_month * 1e6,
            "USD/1M requests",
            format!("${:.2}/month / {} requests/month × 1e6", c.total, n(c.requests_month)),
        ),
        usd_per_1m_output_tokens: (c.output_tokens_month > 0.0).then(|| {
            Quantity::estimate(
                c.total / c.output_tokens_month * 1e6,
                "USD/1M output tokens",
                format!("${:.2}/month / {} output tokens/month × 1e6", c.total, n(c.output_tokens_month)),
            )
        }),
        compute_usd_month: Quantity::estimate(
            c.compute,
            "USD/month",
            format!("instance ${:.2} × {:.1}% compute resource-seconds", c.instance_usd, comp_pct),
        )
        .src(ATTRIBUTION_RULE),
        memory_usd_month: Quantity::estimate(
            c.memory,
            "USD/month",
            format!("instance ${:.2} × {:.1}% memory resource-seconds", c.instance_usd, 100.0 - comp_pct),
        )
        .src(ATTRIBUTION_RULE),
        io_usd_month: Quantity::estimate(
            c.io,
            "USD/month",
            format!(
                "{} GB stored × {} instances × ${}/GB-month",
                n(plan.stored_bytes / 1e9),
                n(instances),
                n(sc.pricing.storage_usd_per_gb_month)
            ),
        )
        .src("scenario pricing.storage_usd_per_gb_month"),
        network_usd_month: Quantity::exact(
            c.network,
            "USD/month",
            format!(
                "{} GB/request × {} requests/month × ${}/GB",
                n(sc.network.egress_gb_per_request),
                n(c.requests_month),
                n(sc.network.usd_per_gb)
            ),
        )
        .src("scenario network.egress_gb_per_request, network.usd_per_gb"),
        on_demand_usd_month: tier_q(PricingTier::OnDemand),
        spot_usd_month: tier_q(PricingTier::Spot),
        reserved_usd_month: tier_q(PricingTier::Reserved),
        caching_savings_usd_month,
        total_usd_month,
        energy_charged,
        attribution_rule: ATTRIBUTION_RULE.to_owned(),
        price_note: device.price_note.clone(),
    })
}
