//! Validation of a run: the original and the compressed model on the same samples through
//! `pareto_eval::evaluate`, on a worker thread with progress and cancel, into [`ValidationView`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use pareto_eval::DeviceSpec;
use pareto_eval::compare::{Compressed, EncoderMetrics, EvalOptions, EvalReport, SpeedReport};
use pareto_eval::samples::Selection;
use pareto_eval::speed::SpeedOptions;

use crate::dto::*;
use crate::jobs::Sink;
use crate::state::AppState;

fn row(name: &str, unit: &str, original: Option<f64>, compressed: Option<f64>, better: &str) -> MetricRow {
    MetricRow { name: name.into(), unit: unit.into(), original, compressed, better: better.into() }
}

fn options(state: &AppState, req: &ValidateRequest, output: PathBuf) -> ApiResult<EvalOptions> {
    let device: DeviceSpec = req.device.parse().map_err(|e: pareto_eval::EvalError| from_std(&e))?;
    let samples = req.samples.as_deref().filter(|s| !s.trim().is_empty());
    let mut opts = EvalOptions {
        compressed: Some(Compressed::Folder(output)),
        samples: samples.map(|s| state.access().check(s, "the sample file")).transpose()?,
        device,
        // Decoders also decode at batch 1, 4 and 16, the points the Project screen sets beside the
        // projection (encoders ignore the sweep).
        speed: req.speed.then(|| SpeedOptions { repeats: 3, batches: vec![1, 4, 16], ..SpeedOptions::default() }),
        ..EvalOptions::default()
    };
    if let Some(n) = req.limit {
        opts.protocol.max_windows = Some(n);
        opts.sample_options.selection = Selection::First { n };
    }
    Ok(opts)
}

pub fn view(run_id: u32, r: &EvalReport, seconds: f64) -> ValidationView {
    let mut metrics = Vec::new();
    let mut notes: Vec<String> = r.unavailable.iter().cloned().collect();
    if let Some(d) = &r.decoder {
        let c = d.compressed.as_ref();
        metrics.push(row("mean NLL", "nats/token", Some(d.original.mean_nll), c.map(|c| c.mean_nll), "lower"));
        metrics.push(row("perplexity", "", Some(d.original.perplexity), c.map(|c| c.perplexity), "lower"));
        metrics.push(row(
            "eval throughput",
            "tok/s",
            Some(d.original.tokens_per_s),
            c.map(|c| c.tokens_per_s),
            "higher",
        ));
        if let Some(cmp) = &d.comparison {
            metrics.push(row("mean KL vs original", "nats", None, Some(cmp.mean_kl), "lower"));
            metrics.push(row("top-1 agreement", "fraction", None, Some(cmp.top1_agreement), "higher"));
            notes.push(format!(
                "mean KL {:.6} ± {:.6} nats (standard error, from the spread of the windows' means)",
                cmp.mean_kl, cmp.kl_stderr
            ));
        }
        notes.push(format!(
            "{} windows of {} tokens ({} tokens scored)",
            d.original.windows, d.protocol.window, d.original.scored
        ));
        let g = &d.greedy;
        notes.push(match g.first_divergence {
            None => format!("greedy continuation of {} steps from BOS: identical", g.steps),
            Some(i) => format!("greedy continuation of {} steps from BOS: first differs at token #{i}", g.steps),
        });
    }
    if let Some(e) = &r.encoder {
        let c: Option<&EncoderMetrics> = e.compressed.as_ref();
        let o = &e.original;
        if o.sts.is_some() {
            let sts = |m: Option<&EncoderMetrics>, f: fn(&pareto_eval::sts::StsResult) -> f64| {
                m.and_then(|m| m.sts.as_ref()).map(f)
            };
            metrics.push(row("STS Spearman", "", sts(Some(o), |s| s.spearman), sts(c, |s| s.spearman), "higher"));
            metrics.push(row("STS Pearson", "", sts(Some(o), |s| s.pearson), sts(c, |s| s.pearson), "higher"));
            metrics.push(row(
                "sentences/s",
                "",
                sts(Some(o), |s| s.sentences_per_s),
                sts(c, |s| s.sentences_per_s),
                "higher",
            ));
        }
        if o.proxy.is_some() {
            let px = |m: Option<&EncoderMetrics>| m.and_then(|m| m.proxy.as_ref()).map(|p| p.accuracy);
            metrics.push(row("proxy accuracy", "%", px(Some(o)), px(c), "higher"));
        }
        if let Some(s) = &e.embedding_shift {
            metrics.push(row("embedding cosine vs original (mean)", "", None, Some(s.mean_cosine), "higher"));
        }
    }
    // Both families report load time and peak RSS around their own throughput rows.
    let sides = match &r.speed {
        Some(SpeedReport::Decoder { original, compressed }) => {
            let c = compressed.as_ref();
            let rates = vec![
                row(
                    "prefill (median)",
                    "tok/s",
                    Some(original.prefill_tokens_per_s.median),
                    c.map(|c| c.prefill_tokens_per_s.median),
                    "higher",
                ),
                row(
                    "decode (median)",
                    "tok/s",
                    Some(original.decode_tokens_per_s.median),
                    c.map(|c| c.decode_tokens_per_s.median),
                    "higher",
                ),
            ];
            let load = (original.load_ms.median, c.map(|c| c.load_ms.median));
            Some((load, (original.peak_rss_bytes, c.and_then(|c| c.peak_rss_bytes)), rates))
        }
        Some(SpeedReport::Encoder { original, compressed }) => {
            let c = compressed.as_ref();
            let rates = vec![row(
                "sentences/s (median)",
                "",
                Some(original.sentences_per_s.median),
                c.map(|c| c.sentences_per_s.median),
                "higher",
            )];
            let load = (original.load_ms.median, c.map(|c| c.load_ms.median));
            Some((load, (original.peak_rss_bytes, c.and_then(|c| c.peak_rss_bytes)), rates))
        }
        None => None,
    };
    let mut speed = Vec::new();
    if let Some(((load_o, load_c), (rss_o, rss_c), rates)) = sides {
        speed.push(row("load (median)", "ms", Some(load_o), load_c, "lower"));
        speed.extend(rates);
        speed.push(row("peak RSS", "B", rss_o.map(|b| b as f64), rss_c.map(|b| b as f64), "lower"));
    }
    ValidationView {
        run_id,
        family: match &r.family {
            pareto_eval::ModelFamily::Llama => "llama (decoder)".to_string(),
            pareto_eval::ModelFamily::Bert => "bert (encoder)".to_string(),
            pareto_eval::ModelFamily::Other(name) => name.clone(),
        },
        samples: r.samples.as_ref().map(|p| p.display().to_string()),
        sample_kind: r.sample_kind.clone(),
        device: r.device.to_string(),
        metrics,
        speed,
        notes,
        seconds,
    }
}

/// Starts validating run `req.run_id` (original vs its output) and returns the job id at once.
pub fn start(state: &Arc<AppState>, req: ValidateRequest, sink: Sink) -> ApiResult<u32> {
    let run = state.run(req.run_id)?;
    let opts = options(state, &req, run.report.output.clone())?;
    let state_after = Arc::clone(state);
    crate::jobs::spawn(state, "validate", sink, move |ctx| {
        let started = Instant::now();
        let r = pareto_eval::evaluate(&run.report.source, &opts, ctx)
            .map_err(|e| from_std(&e).context("validation failed"))?;
        let mut result = view(req.run_id, &r, started.elapsed().as_secs_f64());
        if let Some(SpeedReport::Decoder { original, .. }) = &r.speed {
            state_after.set_measured_speed(crate::state::MeasuredSpeed {
                model: run.report.source.clone(),
                speed: original.clone(),
                source: format!("validation of run #{} ({}, {} CPUs)", req.run_id, r.device, original.host.cpus),
            });
        }
        // Kept for Compare's measured frontier and the exported run record.
        match pareto_runs::validation_of(&r) {
            Ok(Some(v)) => state_after.set_validation(req.run_id, v),
            Ok(None) => {}
            Err(e) => result.notes.push(format!("not kept for Compare: {e}")),
        }
        Ok(JobEvent::Validated { result: Box::new(result) })
    })
}

/// CPU always; CUDA / Metal when this build has them compiled in.
/// The codec accelerator for a compress job on `device` (`None` or `cpu`: the CPU codecs, which are
/// the reference and the fastest path there).
pub fn accelerator(device: Option<&str>) -> ApiResult<Option<Arc<dyn pareto_core::accel::Accelerator>>> {
    let spec: DeviceSpec = device.unwrap_or("cpu").parse().map_err(|e: pareto_eval::EvalError| from_std(&e))?;
    pareto_eval::device_quant::DeviceQuantizer::for_device(spec).map_err(|e| from_std(&e))
}

pub fn devices() -> Vec<ComputeDevice> {
    let mut out = vec![ComputeDevice { id: "cpu".into(), label: "CPU".into() }];
    if DeviceSpec::Cuda(0).compiled_in() {
        out.push(ComputeDevice { id: "cuda:0".into(), label: "CUDA GPU 0".into() });
    }
    if DeviceSpec::Metal.compiled_in() {
        out.push(ComputeDevice { id: "metal".into(), label: "Metal GPU".into() });
    }
    out
}
