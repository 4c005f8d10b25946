//! The full projection: one or two plans (original, compressed) on one device under one scenario,
//! side by side, plus the hardware right-sizing ranking.

use serde::{Deserialize, Serialize};

use crate::boundary::{LatencyBoundary, latency_boundary};
use crate::catalog::{Catalog, Device, DeviceKind};
use crate::cost::{CostProjection, cost_projection};
use crate::energy::{EnergyProjection, energy_numbers, energy_projection};
use crate::error::Result;
use crate::latency::{Bound, Efficiency, Roofline, Work, crossover_quantity, decode_step};
use crate::memory::{MemoryProjection, memory_projection};
use crate::model::{Family, ModelShape, PlanSummary, WeightEntry};
use crate::quantity::{Quantity, n};
use crate::rank::{RightSizing, right_size};
use crate::scenario::Scenario;
use crate::serving::{Evaluation, SloStatus, evaluate};

/// Everything a projection needs. `shape: None` gives a weights-only projection.
#[derive(Debug, Clone)]
pub struct ProjectionRequest<'a> {
    pub shape: Option<&'a ModelShape>,
    pub original: &'a [WeightEntry],
    pub compressed: Option<&'a [WeightEntry]>,
    pub device: &'a Device,
    pub scenario: &'a Scenario,
    /// When given, every candidate device is ranked (right-sizing).
    pub catalog: Option<&'a Catalog>,
    pub efficiency: Efficiency,
}

/// Full projection, or weights-only when there is no model config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Full,
    WeightsOnly,
}

/// The device a projection ran on, with its sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub id: String,
    pub name: String,
    pub kind: DeviceKind,
    pub spec_source: String,
    pub price_source: String,
    pub price_note: String,
}

/// Latency figures of one plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyProjection {
    /// Time per output token at batch 1.
    pub tpot_batch1: Option<Quantity>,
    pub decode_tok_s_batch1: Option<Quantity>,
    pub bound_batch1: Bound,
    /// p95 time to first token (request latency for encoders).
    pub ttft: Option<Quantity>,
    pub crossover_batch: Option<Quantity>,
}

/// Throughput under the batching policy, per instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputProjection {
    pub operating_batch: Quantity,
    pub limited_by: String,
    pub step_time: Quantity,
    pub output_tok_s_per_instance: Option<Quantity>,
    pub requests_per_s_per_instance: Quantity,
    pub peak_requests_per_s: Quantity,
}

/// One point of the decode batch sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchPoint {
    pub batch: u32,
    pub tok_s: f64,
    pub tpot_ms: f64,
    pub bound: Bound,
}

/// Decode throughput across batch sizes (shows where weight bytes stop mattering).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchSweep {
    pub formula: String,
    pub points: Vec<BatchPoint>,
}

/// Per-team cost on a shared cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantCost {
    pub name: String,
    pub traffic_share: Quantity,
    pub usd_month: Quantity,
}

/// One plan projected on the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanProjection {
    pub label: String,
    pub n_tensors: usize,
    pub params: Quantity,
    /// (format, stored bytes) in order of first appearance.
    pub formats: Vec<(String, f64)>,
    pub memory: MemoryProjection,
    pub latency: LatencyProjection,
    pub throughput: Option<ThroughputProjection>,
    pub slo: SloStatus,
    pub cost: Option<CostProjection>,
    pub energy: Option<EnergyProjection>,
    pub tenants: Vec<TenantCost>,
    pub batch_sweep: Option<BatchSweep>,
}

/// Compressed vs original decode speed at one batch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeedupPoint {
    pub batch: u32,
    pub original_tok_s: f64,
    pub compressed_tok_s: f64,
    pub speedup: f64,
}

/// Side-by-side summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub weight_bytes_saved: Quantity,
    pub weight_bytes_ratio: Quantity,
    pub decode_speedup: Vec<SpeedupPoint>,
    pub usd_month_saved: Option<Quantity>,
    pub summary: String,
}

/// The projection result (serialises to the JSON the report and UI read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    pub mode: Mode,
    /// What could not be projected and why.
    pub unknowns: Vec<String>,
    pub device: DeviceInfo,
    pub scenario: String,
    pub efficiency: Efficiency,
    pub original: PlanProjection,
    pub compressed: Option<PlanProjection>,
    pub comparison: Option<Comparison>,
    pub right_sizing: Option<RightSizing>,
    /// The cheapest way within the SLO beside the cheapest as queued spot batch work.
    #[serde(default)]
    pub latency_boundary: Option<LatencyBoundary>,
    pub notes: Vec<String>,
}

const SWEEP: [u32; 6] = [1, 8, 32, 64, 128, 256];

struct Prepared {
    plan: PlanSummary,
    work: Work,
    ev: Evaluation,
}

fn prepare(label: &str, weights: &[WeightEntry], req: &ProjectionRequest<'_>) -> Result<Prepared> {
    let decoder = req.shape.is_none_or(|s| s.family != Family::Encoder);
    let plan = PlanSummary::from_weights(label, weights, decoder)?;
    let work = Work::new(&plan, req.shape, req.scenario.kv_dtype.bytes());
    let ev = evaluate(&plan, &work, req.shape, req.device, req.scenario, &req.efficiency);
    Ok(Prepared { plan, work, ev })
}

/// Projects the original (and compressed) plan. Bad inputs are errors; an SLO that cannot be met
/// or a model that does not fit is an answer in the output (`slo`, `memory.verdict`, `right_sizing.verdict`).
pub fn project(req: &ProjectionRequest<'_>) -> Result<Projection> {
    req.scenario.validate()?;
    // The engine's fitted figures on this device (other devices, in the ranking, get theirs).
    let req = &ProjectionRequest { efficiency: req.efficiency.on(req.device), ..*req };
    let orig = prepare("original", req.original, req)?;
    let comp = req.compressed.map(|w| prepare("compressed", w, req)).transpose()?;
    let mut unknowns = Vec::new();
    let mut notes = Vec::new();
    let mode = if req.shape.is_some() { Mode::Full } else { Mode::WeightsOnly };
    if mode == Mode::WeightsOnly {
        unknowns.extend(
            [
                "weights-only projection (no model config): KV cache size needs n_layers, n_kv_heads, head_dim",
                "activation workspace needs hidden and intermediate sizes",
                "prefill / TTFT needs the attention dimensions",
                "batched throughput, instances, cost and energy need the KV cache (it limits the batch)",
                "decode below is batch 1 at short context (weights only, KV traffic ignored)",
            ]
            .map(str::to_owned),
        );
    }
    let d = req.device;
    if d.mem_bw_gbs.is_none() {
        unknowns.push(format!("{} lists no memory bandwidth: decode latency unknown", d.id));
    }
    if d.fp16_tflops.is_none() {
        unknowns.push(format!("{} lists no FP16 peak: compute-bound terms (prefill, large batch) unknown", d.id));
    }
    if d.ondemand_usd_h.is_none() {
        notes.push(format!("{} has no hourly price (owned hardware): cost is energy only, capex excluded", d.id));
    }
    if !d.price_note.is_empty() {
        notes.push(format!("price note for {}: {}", d.id, d.price_note));
    }
    if let Some(s) = req.shape
        && s.family == Family::Unknown
    {
        notes.push("model family unknown: treated as a decoder because the scenario has output tokens".to_owned());
    }
    if let (Some(engine), Some(fit)) = (&req.efficiency.engine, crate::fidelity::committed()) {
        let ranges: Vec<String> = fit
            .by_regime
            .iter()
            .map(|g| {
                format!(
                    "{}: median {:.0} %, 90 % of points within ±{:.0} %",
                    g.group,
                    g.median_abs * 100.0,
                    g.p90_abs * 100.0
                )
            })
            .collect();
        notes.push(format!(
            "decode speeds use the figures fitted to {engine}'s published measurements on this device class ({}); how far such a projection is from a measurement it was not fitted to, by regime: {}",
            req.efficiency.source,
            ranges.join("; ")
        ));
    }
    let mut original = plan_projection(&orig, req);
    let mut compressed = comp.as_ref().map(|c| plan_projection(c, req));
    // Every estimate gets the range the decode model's held-out error gives it: the projection
    // again with speeds at the 10th and 90th percentile of that error.
    if let Some((factors, regime)) = speed_factors(req) {
        let (mut o, mut c) = (Vec::new(), Vec::new());
        for f in factors {
            let r = ProjectionRequest { efficiency: req.efficiency.speed_scaled(f), ..*req };
            o.push(plan_projection(&prepare("original", req.original, &r)?, &r));
            if let Some(w) = req.compressed {
                c.push(plan_projection(&prepare("compressed", w, &r)?, &r));
            }
        }
        crate::quantity::widen(&mut original, &o);
        if let Some(p) = compressed.as_mut() {
            crate::quantity::widen(p, &c);
        }
        notes.push(format!(
            "ranges: each estimate again with every speed × {:.2} and × {:.2}, the 10th–90th percentile of the held-out error at {regime} (80 % of published measurements the model was not fitted to land inside)",
            factors[0], factors[1]
        ));
    }
    let comparison = comp.as_ref().map(|c| comparison(&orig, c, &original, compressed.as_ref(), req));
    let (right_sizing, latency_boundary) = match (req.catalog, req.shape) {
        (Some(cat), Some(_)) => {
            let p = comp.as_ref().unwrap_or(&orig);
            let rs = right_size(&p.plan, &p.work, req.shape, cat, req.scenario, &req.efficiency)?;
            let lb = latency_boundary(&rs, &p.plan, &p.work, req.shape, cat, req.scenario, &req.efficiency)?;
            (Some(rs), Some(lb))
        }
        _ => (None, None),
    };
    Ok(Projection {
        mode,
        unknowns,
        device: DeviceInfo {
            id: d.id.clone(),
            name: d.name.clone(),
            kind: d.kind,
            spec_source: d.spec_source.clone(),
            price_source: d.price_source.clone(),
            price_note: d.price_note.clone(),
        },
        scenario: req.scenario.name.clone(),
        efficiency: req.efficiency.clone(),
        original,
        compressed,
        comparison,
        right_sizing,
        latency_boundary,
        notes,
    })
}

/// The speed factors that bound 80 % of the fitted engine's held-out errors in the scenario's
/// regime (batch 1 or batched), lowest first; `None` without a fitted engine.
fn speed_factors(req: &ProjectionRequest<'_>) -> Option<([f64; 2], &'static str)> {
    req.efficiency.engine.as_ref()?;
    let fit = crate::fidelity::committed()?;
    let regime = if req.scenario.batching.max_batch <= 1 { "batch 1" } else { "batched" };
    let g = fit.by_regime.iter().find(|g| g.group == regime)?;
    let (lo, hi) = (1.0 / (1.0 + g.p90_signed), 1.0 / (1.0 + g.p10_signed));
    (lo.is_finite() && hi.is_finite() && lo > 0.0 && lo < hi).then_some(([lo, hi], regime))
}

fn plan_projection(p: &Prepared, req: &ProjectionRequest<'_>) -> PlanProjection {
    let (d, sc, eff) = (req.device, req.scenario, &req.efficiency);
    let ev = &p.ev;
    let roof = Roofline::of(d);
    let memory = memory_projection(&ev.mem, &p.plan, req.shape, d, sc);
    let eff_src = eff.source.clone();
    let ctx_txt = if req.shape.is_some() {
        format!("context {} tokens", n(ev.ctx))
    } else {
        "KV ignored (weights only)".to_owned()
    };
    let step_formula = |b: f64| {
        format!(
            "max(({} GB weights + {b}·L·KV)/({}·{} GB/s), FLOPs/({}·peak)) + {} ms; {}",
            n(p.plan.bytes_per_step / 1e9),
            n(eff.eta_bw),
            n(d.mem_bw_gbs.unwrap_or(0.0)),
            n(eff.eta_compute),
            n(eff.overhead_s * 1e3),
            ctx_txt
        )
    };
    let tpot_batch1 = ev
        .decode1
        .total
        .map(|t| Quantity::estimate(t * 1e3, "ms", step_formula(1.0)).src(d.spec_cite()).src(eff_src.clone()));
    let decode_tok_s_batch1 = ev
        .decode1
        .total
        .map(|t| Quantity::estimate(1.0 / t, "tok/s", "1 / time per output token at batch 1").src(eff_src.clone()));
    let ttft = ev.ttft_s.map(|t| {
        let (what, formula) = if ev.decoder {
            ("TTFT", format!("queue {} ms + prefill of {} tokens: 2·P·N/(η_p·F) + 4·layers·d·N²/(η_p·F) + one weight read + t_fixed, η_p {}", n(sc.batching.max_queue_wait_ms), n(sc.input_tokens), n(eff.eta_prefill.unwrap_or(eff.eta_compute))))
        } else {
            ("request latency", format!("queue {} ms + forward of {} sentence(s) × {} tokens", n(sc.batching.max_queue_wait_ms), n(sc.sentences_per_request), n(sc.input_tokens)))
        };
        Quantity::estimate(t * 1e3, "ms", formula).src(format!("{what}: llm-analysis attention term, gpu_poor weight read (PROJECTION.md §2.2)")).src(d.spec_cite())
    });
    let latency = LatencyProjection {
        tpot_batch1,
        decode_tok_s_batch1,
        bound_batch1: ev.decode1.bound,
        ttft,
        crossover_batch: crossover_quantity(&p.plan, &roof, d),
    };
    let throughput = match (ev.op_batch, ev.step_at_op.and_then(|s| s.total), ev.capacity_rps) {
        (Some(b), Some(t), Some(rps)) => Some(ThroughputProjection {
            operating_batch: Quantity::estimate(
                b,
                "sequences",
                format!(
                    "largest batch ≤ min(max_batch {}, memory {}) meeting the SLO",
                    sc.batching.max_batch,
                    ev.mem.max_seqs.map_or("n/a".to_owned(), n)
                ),
            )
            .src("scenario batching, slo"),
            limited_by: ev.limited_by.clone(),
            step_time: Quantity::estimate(t * 1e3, "ms", step_formula(b)).src(d.spec_cite()).src(eff_src.clone()),
            output_tok_s_per_instance: ev.decoder.then(|| {
                Quantity::estimate(
                    rps * sc.output_tokens,
                    "tok/s",
                    format!("{} req/s × {} output tokens", n(rps), n(sc.output_tokens)),
                )
            }),
            requests_per_s_per_instance: Quantity::estimate(
                rps,
                "req/s",
                if ev.decoder {
                    format!("1 / (prefill compute + {} tokens × step / {b})", n(sc.output_tokens))
                } else {
                    format!("{b} sentences / step / {} sentences per request", n(sc.sentences_per_request))
                },
            ),
            peak_requests_per_s: Quantity::exact(
                ev.peak_rps,
                "req/s",
                format!(
                    "{} req/day / 86400 × {} peak × (1 − {} exact − {} semantic hits)",
                    n(sc.requests_per_day),
                    n(sc.peak_to_average),
                    n(sc.cache.exact_hit_rate),
                    n(sc.cache.semantic_hit_rate)
                ),
            ),
        }),
        _ => None,
    };
    let energy_n = ev.instances.and_then(|i| energy_numbers(d, i, sc));
    let cost = cost_projection(ev, &p.plan, d, sc, energy_n.as_ref());
    let energy = match (energy_n.as_ref(), ev.instances) {
        (Some(e), Some(i)) => Some(energy_projection(e, d, i, sc)),
        _ => None,
    };
    let tenants = tenant_costs(sc, cost.as_ref());
    let batch_sweep = (ev.decoder && d.mem_bw_gbs.is_some()).then(|| BatchSweep {
        formula: step_formula(f64::NAN).replace("NaN", "B"),
        points: SWEEP
            .iter()
            .filter_map(|&b| {
                let s = decode_step(
                    &p.work,
                    &roof,
                    &req.efficiency,
                    f64::from(b),
                    if req.shape.is_some() { ev.ctx } else { 0.0 },
                );
                s.total.map(|t| BatchPoint { batch: b, tok_s: f64::from(b) / t, tpot_ms: t * 1e3, bound: s.bound })
            })
            .collect(),
    });
    PlanProjection {
        label: p.plan.label.clone(),
        n_tensors: p.plan.n_tensors,
        params: Quantity::exact(p.plan.total_params, "params", format!("Σ params over {} tensors", p.plan.n_tensors)),
        formats: p.plan.formats.clone(),
        memory,
        latency,
        throughput,
        slo: ev.slo.clone(),
        cost,
        energy,
        tenants,
        batch_sweep,
    }
}

/// Per-team cost: share_i = requests_i × (1 − hit_i) × (in_i + out_i) / Σ — the work the model
/// does for each team's measured traffic (requests its cache did not answer), not headcount. A
/// team without a measured hit rate gets the scenario's.
fn tenant_costs(sc: &Scenario, cost: Option<&CostProjection>) -> Vec<TenantCost> {
    let Some(c) = cost else { return Vec::new() };
    let overall = sc.cache.exact_hit_rate + sc.cache.semantic_hit_rate;
    let tokens = |t: &crate::scenario::Tenant| {
        t.input_tokens.unwrap_or(sc.input_tokens) + t.output_tokens.unwrap_or(sc.output_tokens)
    };
    let misses = |t: &crate::scenario::Tenant| 1.0 - t.cache_hit_rate.unwrap_or(overall);
    let weight = |t: &crate::scenario::Tenant| t.measured_requests * misses(t) * tokens(t);
    let total: f64 = sc.tenants.iter().map(weight).sum();
    if total <= 0.0 {
        return Vec::new();
    }
    sc.tenants
        .iter()
        .map(|t| {
            let share = weight(t) / total;
            let missed = match t.cache_hit_rate {
                Some(h) => format!(" × {} missing the cache (measured)", n(1.0 - h)),
                None => String::new(),
            };
            TenantCost {
                name: t.name.clone(),
                traffic_share: Quantity::exact(
                    share,
                    "fraction",
                    format!("{} requests{missed} × {} tokens / Σ over tenants", n(t.measured_requests), n(tokens(t))),
                )
                .src("scenario tenants (measured traffic share, not headcount)"),
                usd_month: Quantity::estimate(
                    c.total_usd_month.value * share,
                    "USD/month",
                    format!("${:.2} total × {:.4} share", c.total_usd_month.value, share),
                ),
            }
        })
        .collect()
}

fn comparison(
    o: &Prepared,
    c: &Prepared,
    op: &PlanProjection,
    cp: Option<&PlanProjection>,
    req: &ProjectionRequest<'_>,
) -> Comparison {
    let roof = Roofline::of(req.device);
    let ctx = if req.shape.is_some() { o.ev.ctx } else { 0.0 };
    let decode_speedup: Vec<SpeedupPoint> = SWEEP
        .iter()
        .filter_map(|&b| {
            let bf = f64::from(b);
            let to = decode_step(&o.work, &roof, &req.efficiency, bf, ctx).total?;
            let tc = decode_step(&c.work, &roof, &req.efficiency, bf, ctx).total?;
            Some(SpeedupPoint { batch: b, original_tok_s: bf / to, compressed_tok_s: bf / tc, speedup: to / tc })
        })
        .collect();
    let saved = o.plan.stored_bytes - c.plan.stored_bytes;
    let ratio = c.plan.stored_bytes / o.plan.stored_bytes;
    let usd_month_saved = match (op.cost.as_ref(), cp.and_then(|p| p.cost.as_ref())) {
        (Some(a), Some(b)) => Some(Quantity::estimate(
            a.total_usd_month.value - b.total_usd_month.value,
            "USD/month",
            format!("${:.2} original − ${:.2} compressed", a.total_usd_month.value, b.total_usd_month.value),
        )),
        _ => None,
    };
    let s1 = decode_speedup.first().map_or(f64::NAN, |p| p.speedup);
    let sl = decode_speedup.last().map_or(f64::NAN, |p| p.speedup);
    let summary = format!(
        "weights {:.1}% of original; decode speedup {:.2}× at batch 1 vs {:.2}× at batch {} — {}",
        ratio * 100.0,
        s1,
        sl,
        SWEEP[SWEEP.len() - 1],
        if s1 > sl * 1.2 {
            "fewer weight bytes help memory-bound small-batch decode most; large batches are limited by compute and KV traffic"
        } else {
            "the speedup holds across batch sizes (compute precision changed too, or KV traffic is small)"
        }
    );
    Comparison {
        weight_bytes_saved: Quantity::exact(
            saved,
            "B",
            format!("{} − {} stored bytes", n(o.plan.stored_bytes), n(c.plan.stored_bytes)),
        ),
        weight_bytes_ratio: Quantity::exact(ratio, "fraction", "compressed stored bytes / original stored bytes"),
        decode_speedup,
        usd_month_saved,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ComputePrecision, llama3_8b_weights};

    fn run(device: &str, preset: &str, shape: Option<&ModelShape>) -> Result<Projection> {
        run_with(device, &Scenario::preset(preset)?, shape)
    }

    fn run_with(device: &str, sc: &Scenario, shape: Option<&ModelShape>) -> Result<Projection> {
        let cat = Catalog::builtin()?;
        let o = llama3_8b_weights("bf16", 16.0, ComputePrecision::Fp16);
        let c = llama3_8b_weights("int4_g128_sym", 4.25, ComputePrecision::Fp16);
        project(&ProjectionRequest {
            shape,
            original: &o,
            compressed: Some(&c),
            device: cat.get(device)?,
            scenario: sc,
            catalog: Some(&cat),
            efficiency: Efficiency::default(),
        })
    }

    #[test]
    fn side_by_side_int4_shows_small_batch_gain_and_lower_cost() -> Result<()> {
        let shape = ModelShape::llama3_8b();
        let p = run("h100_sxm", "high-volume-api", Some(&shape))?;
        assert_eq!(p.mode, Mode::Full);
        let cmp = p.comparison.as_ref().ok_or(crate::ProjectionError::EmptyPlan { plan: "cmp".into() })?;
        let first = cmp.decode_speedup.first().map_or(0.0, |s| s.speedup);
        let last = cmp.decode_speedup.last().map_or(0.0, |s| s.speedup);
        assert!(first > 2.5 && last < 1.6 && first > last, "{first} vs {last}");
        assert!(cmp.usd_month_saved.as_ref().is_some_and(|q| q.value > 0.0));
        let (oc, cc) = (p.original.cost.as_ref(), p.compressed.as_ref().and_then(|c| c.cost.as_ref()));
        let mem = |c: Option<&CostProjection>| c.map_or(0.0, |c| c.memory_usd_month.value);
        assert!(mem(cc) < mem(oc), "int4 shrinks the memory cost category");
        let c = oc.ok_or(crate::ProjectionError::EmptyPlan { plan: "cost".into() })?;
        let parts =
            c.compute_usd_month.value + c.memory_usd_month.value + c.io_usd_month.value + c.network_usd_month.value;
        assert!((parts - c.total_usd_month.value).abs() < 1e-6, "categories add up to the total");
        assert!(c.spot_usd_month.as_ref().map(|q| q.value) < c.on_demand_usd_month.as_ref().map(|q| q.value));
        assert!(c.caching_savings_usd_month.as_ref().is_some_and(|q| q.value > 0.0));
        assert!(p.notes.iter().any(|n| n.contains("mid-2025")));
        let json = serde_json::to_value(&p).map_err(|e| crate::ProjectionError::Calibration(e.to_string()))?;
        assert!(json["original"]["memory"]["kv_per_token"]["formula"].as_str().is_some_and(|f| f.contains("kv_heads")));
        Ok(())
    }

    /// With a fitted engine every number the speeds move carries the band its held-out error
    /// gives (batched regime here); exact counts and a projection without an engine carry none.
    #[test]
    fn a_fitted_engine_gives_speed_and_cost_estimates_their_held_out_range() -> Result<()> {
        let shape = ModelShape::llama3_8b();
        let cat = Catalog::builtin()?;
        let o = llama3_8b_weights("bf16", 16.0, ComputePrecision::Fp16);
        let c = llama3_8b_weights("int4_g128_sym", 4.25, ComputePrecision::Fp16);
        let sc = Scenario::preset("high-volume-api")?;
        let p = project(&ProjectionRequest {
            shape: Some(&shape),
            original: &o,
            compressed: Some(&c),
            device: cat.get("h100_sxm")?,
            scenario: &sc,
            catalog: Some(&cat),
            efficiency: Efficiency { engine: Some("vllm".into()), ..Efficiency::default() },
        })?;
        let none = || crate::ProjectionError::EmptyPlan { plan: "c".into() };
        let comp = p.compressed.as_ref().ok_or_else(none)?;
        let within = |q: &Quantity| q.range.is_some_and(|[lo, hi]| lo <= q.value && q.value <= hi && lo < hi);
        let decode = comp.latency.decode_tok_s_batch1.as_ref().ok_or_else(none)?;
        assert!(within(decode), "{decode:?}");
        let cost = comp.cost.as_ref().ok_or_else(none)?;
        assert!(within(&cost.total_usd_month), "{:?}", cost.total_usd_month);
        assert!(p.original.latency.decode_tok_s_batch1.as_ref().is_some_and(within));
        assert_eq!(comp.memory.weights.range, None);
        assert!(p.notes.iter().any(|n| n.starts_with("ranges: ") && n.contains("batched")));
        let plain = run("h100_sxm", "high-volume-api", Some(&shape))?;
        let plain_decode = plain.compressed.as_ref().and_then(|c| c.latency.decode_tok_s_batch1.as_ref());
        assert!(plain_decode.is_some_and(|q| q.range.is_none()), "no engine, no fitted error to carry");
        Ok(())
    }

    #[test]
    fn weights_only_is_labelled_and_lists_unknowns() -> Result<()> {
        let p = run("rpi5", "edge", None)?;
        assert_eq!(p.mode, Mode::WeightsOnly);
        assert!(p.unknowns.iter().any(|u| u.contains("KV cache")));
        assert!(p.original.memory.kv_cache.is_none() && p.original.cost.is_none() && p.right_sizing.is_none());
        assert!(p.compressed.as_ref().is_some_and(|c| c.latency.decode_tok_s_batch1.is_some()));
        Ok(())
    }

    #[test]
    fn multi_tenant_costs_follow_measured_traffic_share() -> Result<()> {
        let shape = ModelShape::llama3_8b();
        let p = run("h100_sxm", "multi-tenant", Some(&shape))?;
        let c = p.compressed.as_ref().ok_or(crate::ProjectionError::EmptyPlan { plan: "c".into() })?;
        assert_eq!(c.tenants.len(), 3);
        let total: f64 = c.tenants.iter().map(|t| t.usd_month.value).sum();
        let cost = c.cost.as_ref().map_or(0.0, |c| c.total_usd_month.value);
        assert!((total - cost).abs() < 1e-6);
        // search: 12.6M × 420 tokens, support 6.3M × 1200, analytics 2.1M × 2900 → 5.292 : 7.56 : 6.09.
        let share = |name: &str| c.tenants.iter().find(|t| t.name == name).map_or(0.0, |t| t.traffic_share.value);
        assert!((share("support") - 7.56 / 18.942).abs() < 1e-9);
        assert!(share("support") > share("search"), "more tokens outweigh more requests");
        Ok(())
    }

    /// A team whose requests the cache answers more often pays for fewer model passes: its
    /// measured hit rate replaces the scenario's in its share; the shares still sum to the bill.
    #[test]
    fn a_teams_measured_hit_rate_lowers_its_share() -> Result<()> {
        let shape = ModelShape::llama3_8b();
        let mut sc = Scenario::preset("multi-tenant")?;
        let overall = sc.cache.exact_hit_rate + sc.cache.semantic_hit_rate;
        let before = run_with("h100_sxm", &sc, Some(&shape))?;
        for t in &mut sc.tenants {
            t.cache_hit_rate = Some(if t.name == "search" { 0.6 } else { overall });
        }
        let after = run_with("h100_sxm", &sc, Some(&shape))?;
        let share = |p: &Projection, name: &str| {
            p.compressed
                .as_ref()
                .and_then(|c| c.tenants.iter().find(|t| t.name == name))
                .map_or(0.0, |t| t.traffic_share.value)
        };
        // search's weight falls by (1 − 0.6) / (1 − overall); the others keep theirs.
        let (s0, s1) = (share(&before, "search"), share(&after, "search"));
        let k = (1.0 - 0.6) / (1.0 - overall);
        assert!((s1 - s0 * k / (s0 * k + 1.0 - s0)).abs() < 1e-9, "{s0} → {s1}");
        assert!(share(&after, "support") > share(&before, "support"));
        let total: f64 =
            after.compressed.as_ref().map_or(0.0, |c| c.tenants.iter().map(|t| t.traffic_share.value).sum());
        assert!((total - 1.0).abs() < 1e-9);
        sc.tenants[0].cache_hit_rate = Some(1.5);
        assert!(sc.validate().is_err(), "a hit rate above 1 is refused by name");
        Ok(())
    }

    #[test]
    fn edge_mcu_answers_does_not_fit() -> Result<()> {
        let shape = ModelShape::llama3_8b();
        let p = run("cortex_m7_stm32h743", "edge", Some(&shape))?;
        assert!(!p.original.memory.fits);
        assert_eq!(p.original.slo.verdict, crate::serving::SloVerdict::DoesNotFit);
        assert!(p.unknowns.iter().any(|u| u.contains("no memory bandwidth")));
        Ok(())
    }
}
