//! Engine types → UI DTOs. Pure functions, no I/O.

use std::collections::BTreeMap;

use pareto_core::recipe::{Action, Plan, PruneSpec, Reason, layer_index, tensor_kind};
use pareto_core::{CompressReport, Model, Recipe};
use pareto_projection::{PlanProjection, Projection, Quantity};

use crate::dto::*;

/// A serde enum as its JSON string (`"mlp"`, `"gpu"`), for labels.
pub fn json_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

pub fn model_view(model: &Model) -> ModelView {
    let s = model.summary();
    let config = model.config().map(|c| ConfigView {
        architecture: c.architecture.name().to_string(),
        model_type: c.model_type.clone(),
        hidden_size: c.hidden_size,
        num_layers: c.num_layers,
        num_heads: c.num_heads,
        num_kv_heads: c.num_kv_heads,
        head_dim: c.head_dim,
        intermediate_size: c.intermediate_size,
        vocab_size: c.vocab_size,
        max_position_embeddings: c.max_position_embeddings,
        torch_dtype: c.torch_dtype.clone(),
    });
    let summary = ModelSummaryView {
        root: s.root.display().to_string(),
        architecture: s.architecture.clone(),
        parameters: s.parameters,
        tensor_count: s.tensor_count,
        bytes: s.bytes,
        file_bytes: s.file_bytes,
        shards: s.shards.len(),
        by_dtype: s
            .by_dtype
            .iter()
            .map(|d| Tally {
                key: d.dtype.as_str().to_string(),
                tensors: d.tensors,
                elements: d.elements,
                bytes: d.bytes,
            })
            .collect(),
        by_role: s
            .by_role
            .iter()
            .map(|r| Tally {
                key: r.role.as_str().to_string(),
                tensors: r.tensors,
                elements: r.elements,
                bytes: r.bytes,
            })
            .collect(),
        config,
    };
    let tensors = model
        .tensors()
        .iter()
        .map(|t| TensorRow {
            name: t.name.clone(),
            dtype: t.dtype.as_str().to_string(),
            shape: t.shape.clone(),
            role: t.role.as_str().to_string(),
            layer: layer_index(&t.name),
            params: t.numel(),
            bytes: t.nbytes,
        })
        .collect();
    ModelView { summary, tensors, open_ms: 0.0 }
}

pub fn action_label(a: &Action) -> String {
    let prune = a.prune.as_ref().map(PruneSpec::label);
    match (prune, &a.quantize) {
        (None, None) => "keep".into(),
        (Some(p), None) => p,
        (None, Some(q)) => q.format.clone(),
        (Some(p), Some(q)) => format!("{p} + {}", q.format),
    }
}

pub fn recipe_doc(recipe: &Recipe, toml: String, ignored_in_selection: Vec<String>) -> RecipeDoc {
    RecipeDoc {
        name: recipe.name.clone(),
        description: recipe.description.clone(),
        toml,
        default_action: action_label(&recipe.default),
        ignore: recipe.ignore_targets(),
        rules: recipe
            .rules
            .iter()
            .map(|r| RuleView { targets: r.targets.clone(), action: action_label(&r.action) })
            .collect(),
        ignored_in_selection,
    }
}

fn reason_label(r: &Reason) -> String {
    match r {
        Reason::Ignored(t) => format!("ignored ({t})"),
        Reason::Rule(i) => format!("rule {i}"),
        Reason::Default => "default".into(),
        Reason::NotAMatrix => "not a matrix".into(),
        Reason::NotFloat => "not float".into(),
        Reason::LayerDropped => "layer dropped".into(),
    }
}

pub fn plan_view(plan: &Plan, recipe: RecipeDoc) -> PlanView {
    let rows = plan
        .tensors
        .iter()
        .map(|t| PlanRow {
            name: t.source_name.clone(),
            action: t.action.label(),
            format: t.action.format.map(str::to_string),
            requested_format: t.action.requested_format.clone(),
            reason: reason_label(&t.reason),
            notes: t.notes.clone(),
            out_shape: t.shape.clone(),
            source_bytes: t.source_bytes,
            planned_bytes: t.planned_bytes,
            dropped: t.action.drop,
        })
        .collect();
    let t = &plan.totals;
    PlanView {
        recipe,
        rows,
        totals: PlanTotalsView {
            tensors: t.tensors,
            quantized: t.quantized,
            pruned: t.pruned,
            kept: t.kept,
            dropped: t.dropped,
            fallbacks: t.fallbacks,
            calibrated: t.calibrated,
            params_before: t.params_before,
            params_after: t.params_after,
            source_bytes: t.source_bytes,
            planned_bytes: t.planned_bytes,
            bytes_by_format: t
                .bytes_by_format
                .iter()
                .map(|(k, v)| Tally { key: k.clone(), tensors: 0, elements: 0, bytes: *v })
                .collect(),
        },
        plan_ms: 0.0,
    }
}

pub fn heatmap(report: &CompressReport) -> Heatmap {
    let mut grid: BTreeMap<(usize, String), f64> = BTreeMap::new();
    let mut kinds: Vec<String> = Vec::new();
    for t in &report.tensors {
        let (Some(layer), Some(m)) = (layer_index(&t.name), t.metrics.as_ref()) else { continue };
        let kind = tensor_kind(&t.name);
        if !kinds.contains(&kind) {
            kinds.push(kind.clone());
        }
        grid.insert((layer, kind), m.rel_error);
    }
    let mut layers: Vec<usize> = grid.keys().map(|(l, _)| *l).collect();
    layers.dedup();
    let cells = layers
        .iter()
        .flat_map(|l| kinds.iter().map(move |k| (*l, k.clone())))
        .map(|key| grid.get(&key).copied())
        .collect();
    Heatmap { layers, kinds, cells }
}

pub fn run_view(id: u32, report: &CompressReport, toml: &str, recipe_name: &str) -> RunView {
    let (mut err_sum, mut weight) = (0.0_f64, 0.0_f64);
    for t in &report.tensors {
        if let Some(m) = &t.metrics {
            let n = t.shape.iter().product::<usize>() as f64;
            err_sum += m.rel_error * n;
            weight += n;
        }
    }
    RunView {
        id,
        recipe_name: if recipe_name.is_empty() { "custom".into() } else { recipe_name.to_string() },
        recipe_toml: toml.to_string(),
        source: report.source.display().to_string(),
        output: report.output.display().to_string(),
        seconds: report.seconds,
        source_bytes: report.totals.source_bytes,
        planned_bytes: report.totals.planned_bytes,
        written_bytes: report.written_bytes,
        mean_rel_error: if weight > 0.0 { err_sum / weight } else { 0.0 },
        content_hash: report.content_hash.clone(),
        tensors: report
            .tensors
            .iter()
            .map(|t| TensorResult {
                name: t.name.clone(),
                action: t.action.clone(),
                format: t.format.map(str::to_string),
                shape: t.shape.clone(),
                source_bytes: t.source_bytes,
                planned_bytes: t.planned_bytes,
                notes: t.notes.clone(),
                metrics: t.metrics.map(|m| MetricsView {
                    rel_error: m.rel_error,
                    snr_db: m.snr_db,
                    cosine: m.cosine,
                    max_abs_error: m.max_abs_error,
                    sparsity: m.sparsity,
                }),
                calib_loss: t.calib_loss,
            })
            .collect(),
        heatmap: heatmap(report),
        files: report
            .files
            .iter()
            .map(|f| FileView { path: f.name.clone(), bytes: f.bytes, sha256: f.sha256.clone() })
            .collect(),
    }
}

pub fn histogram(before: &[f32], after: &[f32], bins: usize) -> Histogram {
    let finite = |v: &&f32| v.is_finite();
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in before.iter().chain(after).filter(finite) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        (lo, hi) = (0.0, 0.0);
    }
    let span = f64::from(hi) - f64::from(lo);
    let count = |xs: &[f32]| {
        let mut h = vec![0_u32; bins];
        for &v in xs.iter().filter(finite) {
            let i = if span > 0.0 { ((f64::from(v) - f64::from(lo)) / span * bins as f64) as usize } else { 0 };
            if let Some(c) = h.get_mut(i.min(bins - 1)) {
                *c = c.saturating_add(1);
            }
        }
        h
    };
    let zeros = |xs: &[f32]| xs.iter().filter(|v| **v == 0.0).count() as u64;
    Histogram {
        min: f64::from(lo),
        max: f64::from(hi),
        before: count(before),
        after: count(after),
        zeros_before: zeros(before),
        zeros_after: zeros(after),
        elements: before.len() as u64,
    }
}

fn q(x: &Quantity) -> QuantityView {
    QuantityView {
        value: x.value,
        unit: x.unit.clone(),
        formula: x.formula.clone(),
        sources: x.sources.clone(),
        estimate: x.estimate,
        range: x.range,
    }
}

fn push(list: &mut Vec<(String, QuantityView)>, label: &str, x: Option<&Quantity>) {
    if let Some(x) = x {
        list.push((label.to_string(), q(x)));
    }
}

fn side(p: &PlanProjection) -> PlanSide {
    let m = &p.memory;
    let mut memory = Vec::new();
    push(&mut memory, "weights", Some(&m.weights));
    push(&mut memory, "KV cache", m.kv_cache.as_ref());
    push(&mut memory, "activations", m.activations.as_ref());
    push(&mut memory, "runtime overhead", Some(&m.runtime_overhead));
    push(&mut memory, "total", Some(&m.total));
    push(&mut memory, "usable on device", Some(&m.usable));
    let l = &p.latency;
    let mut latency = Vec::new();
    push(&mut latency, "time per output token (batch 1)", l.tpot_batch1.as_ref());
    push(&mut latency, "decode tokens/s (batch 1)", l.decode_tok_s_batch1.as_ref());
    push(&mut latency, "p95 time to first token", l.ttft.as_ref());
    if let Some(t) = &p.throughput {
        push(&mut latency, "requests/s per instance", Some(&t.requests_per_s_per_instance));
    }
    let mut cost = Vec::new();
    if let Some(c) = &p.cost {
        push(&mut cost, "compute", Some(&c.compute_usd_month));
        push(&mut cost, "memory", Some(&c.memory_usd_month));
        push(&mut cost, "I/O", Some(&c.io_usd_month));
        push(&mut cost, "network", Some(&c.network_usd_month));
        push(&mut cost, "instances", Some(&c.instances));
        push(&mut cost, "caching saves", c.caching_savings_usd_month.as_ref());
    }
    PlanSide {
        label: p.label.clone(),
        fits: m.fits,
        memory,
        latency,
        cost,
        total_usd_month: p.cost.as_ref().map(|c| q(&c.total_usd_month)),
        usd_per_1m_requests: p.cost.as_ref().map(|c| q(&c.usd_per_1m_requests)),
        slo: format!("{} {}", json_str(&p.slo.verdict), p.slo.reasons.join("; ")).trim().to_string(),
    }
}

pub fn projection_view(p: &Projection) -> ProjectionView {
    ProjectionView {
        device: format!("{} ({})", p.device.name, p.device.id),
        scenario: p.scenario.clone(),
        mode: json_str(&p.mode),
        original: side(&p.original),
        compressed: p.compressed.as_ref().map(side),
        summary: p.comparison.as_ref().map(|c| c.summary.clone()),
        ranking: p
            .right_sizing
            .as_ref()
            .map(|r| {
                r.entries
                    .iter()
                    .map(|e| RankRow {
                        rank: e.rank,
                        device_id: e.device_id.clone(),
                        device_name: e.device_name.clone(),
                        fits: e.fits,
                        slo: json_str(&e.slo),
                        instances: e.instances,
                        usd_month: e.usd_month.as_ref().map(q),
                        note: e.note.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        ranking_verdict: p.right_sizing.as_ref().map(|r| r.verdict.clone()),
        latency_verdict: p.latency_boundary.as_ref().map(|b| b.verdict.clone()),
        latency_premium: p.latency_boundary.as_ref().and_then(|b| b.latency_premium_usd_month.as_ref()).map(q),
        batch_terms: p.latency_boundary.as_ref().map(|b| b.batch_terms.clone()).unwrap_or_default(),
        unknowns: p.unknowns.clone(),
        notes: p.notes.clone(),
        project_ms: 0.0,
        measured: None,
    }
}

/// The report's comparison as the Compare screen's view; rows are in run order.
pub fn compare_view(runs: &[std::sync::Arc<crate::state::RunRecord>], cmp: &pareto_report::Comparison) -> CompareView {
    let points = runs
        .iter()
        .zip(&cmp.rows)
        .map(|(r, row)| VariantPoint {
            run_id: r.view.id,
            label: format!("#{} {}", r.view.id, r.view.recipe_name),
            weight_bytes: row.planned_bytes,
            accuracy: row.metric_change,
            change_is_relative: row.change_is_relative,
            change_text: row.change_text(),
            metric_value: row.metric_value,
            usd_month: row.usd_month,
            on_frontier: row.on_frontier,
            dominated: row.dominated,
        })
        .collect();
    CompareView {
        cost_axis: cmp.cost_axis.clone(),
        metric: cmp.metric.clone(),
        accuracy_axis: cmp.accuracy_axis.clone(),
        metrics: cmp.metrics.clone(),
        is_proxy: cmp.metric == pareto_report::WEIGHT_ERROR_PROXY,
        warnings: cmp.warnings.clone(),
        recommendation: cmp.recommendation.headline.clone(),
        reasons: cmp.recommendation.reasons.clone(),
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_shares_range_and_counts_everything() {
        let h = histogram(&[-1.0, 0.0, 1.0, 0.5], &[-1.0, 0.0, 0.0, 0.5], 4);
        assert_eq!(h.before.iter().sum::<u32>(), 4);
        assert_eq!(h.after.iter().sum::<u32>(), 4);
        assert_eq!((h.min, h.max), (-1.0, 1.0));
        assert_eq!(h.zeros_after, 2);
    }
}
