//! Builders from the engine's results to the run record's sections.

use pareto_core::recipe::{Plan, layer_index};
use pareto_core::{CompressReport, Model};
use pareto_eval::EvalReport;
use pareto_eval::compare::SpeedReport;
use pareto_projection::{Projection, Quantity};
use pareto_report::{
    Assumption, ConfigSummary, FileHash, Metric, PlanCost, ProjectionRecord, SampleSet, SourceModel, TensorRecord,
    TierFit, Totals, Validation,
};

pub fn source_model(model: &Model, files: Vec<FileHash>) -> SourceModel {
    let summary = model.summary();
    SourceModel {
        path: model.root().display().to_string(),
        architecture: summary.architecture.clone(),
        parameters: model.parameter_count(),
        bytes: summary.bytes,
        files,
        config: model.config().map(|c| ConfigSummary {
            hidden_size: c.hidden_size,
            num_layers: c.num_layers,
            num_heads: c.num_heads,
            num_kv_heads: c.num_kv_heads,
            intermediate_size: c.intermediate_size,
            vocab_size: c.vocab_size,
        }),
    }
}

pub fn totals(plan: &Plan) -> Totals {
    let t = &plan.totals;
    Totals {
        tensors: t.tensors,
        quantized: t.quantized,
        pruned: t.pruned,
        kept: t.kept,
        dropped: t.dropped,
        params_before: t.params_before,
        params_after: t.params_after,
        source_bytes: t.source_bytes,
        planned_bytes: t.planned_bytes,
    }
}

/// Per-tensor formats and, when the work ran, measured weight error.
pub fn tensor_records(plan: &Plan, report: Option<&CompressReport>) -> Vec<TensorRecord> {
    plan.tensors
        .iter()
        .map(|t| {
            let m =
                report.and_then(|r| r.tensors.iter().find(|x| x.source_name == t.source_name)).and_then(|x| x.metrics);
            TensorRecord {
                name: t.name.clone(),
                layer: layer_index(&t.source_name),
                role: t.role.as_str().to_string(),
                action: t.action.label(),
                format: t.action.format.map(str::to_string),
                source_bytes: t.source_bytes,
                planned_bytes: t.planned_bytes,
                rel_error: m.map(|m| m.rel_error),
                snr_db: m.and_then(|m| m.snr_db),
                cosine: m.map(|m| m.cosine),
                sparsity: m.map(|m| m.sparsity),
            }
        })
        .collect()
}

fn metric(name: &str, unit: &str, original: Option<f64>, compressed: Option<f64>, higher_is_better: bool) -> Metric {
    Metric { name: name.into(), unit: unit.into(), original, compressed, higher_is_better, stderr: None }
}

/// The validation section: the task's metrics, original vs compressed, and measured speed.
pub fn validation_record(
    eval: &EvalReport,
    samples_sha256: String,
    rows: u64,
    description: String,
) -> Option<Validation> {
    let samples = SampleSet {
        path: eval.samples.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        sha256: samples_sha256,
        rows,
        description,
    };
    let mut metrics = Vec::new();
    let (task, primary) = if let Some(d) = &eval.decoder {
        let c = d.compressed.as_ref();
        metrics.push(metric("perplexity", "ppl", Some(d.original.perplexity), c.map(|c| c.perplexity), false));
        metrics.push(metric("mean NLL", "nats/token", Some(d.original.mean_nll), c.map(|c| c.mean_nll), false));
        if let Some(cmp) = &d.comparison {
            let kl = metric("KL divergence", "nats/token", Some(0.0), Some(cmp.mean_kl), false);
            metrics.push(Metric { stderr: (cmp.kl_stderr > 0.0).then_some(cmp.kl_stderr), ..kl });
            metrics.push(metric("top-1 agreement", "fraction", Some(1.0), Some(cmp.top1_agreement), true));
        }
        let same = d.greedy.identical;
        metrics.push(metric("greedy continuation identical", "bool", Some(1.0), Some(f64::from(u8::from(same))), true));
        ("perplexity", "perplexity")
    } else if let Some(e) = &eval.encoder {
        let c = e.compressed.as_ref();
        if let Some(sts) = &e.original.sts {
            let cs = c.and_then(|c| c.sts);
            metrics.push(metric("STS Spearman", "×100", Some(sts.spearman), cs.map(|s| s.spearman), true));
            metrics.push(metric("STS Pearson", "×100", Some(sts.pearson), cs.map(|s| s.pearson), true));
        }
        if let Some(shift) = &e.embedding_shift {
            metrics.push(metric("mean embedding cosine", "cosine", Some(1.0), Some(shift.mean_cosine), true));
        }
        ("sts", "STS Spearman")
    } else {
        return None;
    };
    let speed = speed_metrics(eval);
    Some(Validation { task: task.into(), samples, primary: primary.into(), metrics, speed })
}

fn speed_metrics(eval: &EvalReport) -> Vec<Metric> {
    let med = |s: &pareto_eval::metrics::Summary| s.median;
    match &eval.speed {
        Some(SpeedReport::Decoder { original, compressed }) => {
            let c = compressed.as_ref();
            vec![
                metric(
                    "decode speed",
                    "tokens/s",
                    Some(med(&original.decode_tokens_per_s)),
                    c.map(|c| med(&c.decode_tokens_per_s)),
                    true,
                ),
                metric(
                    "prefill speed",
                    "tokens/s",
                    Some(med(&original.prefill_tokens_per_s)),
                    c.map(|c| med(&c.prefill_tokens_per_s)),
                    true,
                ),
                metric("load time", "ms", Some(med(&original.load_ms)), c.map(|c| med(&c.load_ms)), false),
            ]
        }
        Some(SpeedReport::Encoder { original, compressed }) => {
            let c = compressed.as_ref();
            vec![
                metric(
                    "encode speed",
                    "sentences/s",
                    Some(med(&original.sentences_per_s)),
                    c.map(|c| med(&c.sentences_per_s)),
                    true,
                ),
                metric("load time", "ms", Some(med(&original.load_ms)), c.map(|c| med(&c.load_ms)), false),
            ]
        }
        None => Vec::new(),
    }
}

fn q(x: &Quantity) -> String {
    format!("{:.4} {}", x.value, x.unit)
}

fn assumption(name: &str, x: &Quantity) -> Assumption {
    Assumption { name: name.into(), value: q(x), formula: x.formula.clone(), sources: x.sources.clone() }
}

fn plan_cost(p: &pareto_projection::PlanProjection) -> PlanCost {
    let cost = p.cost.as_ref();
    PlanCost {
        weights_bytes: p.memory.weights.value,
        kv_cache_bytes: p.memory.kv_cache.as_ref().map(|x| x.value),
        overhead_bytes: p.memory.runtime_overhead.value,
        total_memory_bytes: p.memory.total.value,
        fits: p.memory.fits,
        decode_tok_s_batch1: p.latency.decode_tok_s_batch1.as_ref().map(|x| x.value),
        usd_month: cost.map(|c| c.total_usd_month.value),
        usd_per_1m_requests: cost.map(|c| c.usd_per_1m_requests.value),
        cost_by_category: cost
            .map(|c| {
                vec![
                    ("compute".to_string(), c.compute_usd_month.value),
                    ("memory".to_string(), c.memory_usd_month.value),
                    ("I/O".to_string(), c.io_usd_month.value),
                    ("network".to_string(), c.network_usd_month.value),
                ]
            })
            .unwrap_or_default(),
        cost_by_team: p.tenants.iter().map(|t| (t.name.clone(), t.usd_month.value)).collect(),
    }
}

/// The projection section: both plans' costs, right-sizing tiers and the assumptions behind them.
pub fn projection_record(p: &Projection) -> ProjectionRecord {
    let compressed = p.compressed.as_ref().unwrap_or(&p.original);
    let mut assumptions = vec![Assumption {
        name: "efficiency (η_bw, η_compute, fixed overhead per step)".into(),
        value: format!("{} / {} / {} ms", p.efficiency.eta_bw, p.efficiency.eta_compute, p.efficiency.overhead_s * 1e3),
        formula: "decode step = max(bytes/(η_bw·BW), FLOPs/(η_c·peak)) + overhead".into(),
        sources: vec![p.efficiency.source.clone()],
    }];
    assumptions.push(Assumption {
        name: format!("device {}", p.device.id),
        value: p.device.name.clone(),
        formula: p.device.price_note.clone(),
        sources: vec![p.device.spec_source.clone(), p.device.price_source.clone()],
    });
    assumptions.push(assumption("weights (compressed)", &compressed.memory.weights));
    if let Some(kv) = &compressed.memory.kv_per_token {
        assumptions.push(assumption("KV cache per token", kv));
    }
    if let Some(x) = &compressed.latency.decode_tok_s_batch1 {
        assumptions.push(assumption("decode tokens/s at batch 1", x));
    }
    if let Some(x) = &compressed.latency.crossover_batch {
        assumptions.push(assumption("crossover batch B*", x));
    }
    if let Some(c) = &compressed.cost {
        assumptions.push(assumption("instances at peak", &c.instances));
        assumptions.push(assumption("total $/month", &c.total_usd_month));
        assumptions.push(Assumption {
            name: "cost attribution".into(),
            value: format!("{:?}", c.tier),
            formula: c.attribution_rule.clone(),
            sources: vec![c.price_note.clone()],
        });
    }
    if let Some(e) = &compressed.energy {
        assumptions.push(assumption("energy", &e.kwh_month));
        assumptions.push(assumption("CO₂", &e.co2_kg_month));
    }
    ProjectionRecord {
        device_id: p.device.id.clone(),
        device_name: p.device.name.clone(),
        scenario: p.scenario.clone(),
        original: plan_cost(&p.original),
        compressed: plan_cost(compressed),
        tiers: p
            .right_sizing
            .iter()
            .flat_map(|r| &r.entries)
            .map(|e| TierFit {
                device_id: e.device_id.clone(),
                fits: e.fits,
                slo: format!("{:?}", e.slo).to_lowercase(),
                usd_month: e.usd_month.as_ref().map(|x| x.value),
            })
            .collect(),
        assumptions,
    }
}
