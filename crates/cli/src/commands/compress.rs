//! `pareto compress`: apply a recipe and write the compressed model.

use std::path::PathBuf;

use pareto_core::{CompressOptions, ExportFormat, Recipe};
use pareto_eval::DeviceSpec;
use pareto_eval::device_quant::DeviceQuantizer;

use pareto_runs::{CalibrationSpec, calibrate};

use crate::{output, progress};

#[derive(clap::Args)]
pub struct CompressArgs {
    /// The source model (folder or .safetensors file); never modified.
    pub path: PathBuf,
    /// A preset name (see `pareto formats`) or a recipe .toml file.
    #[arg(long, short)]
    pub recipe: String,
    #[command(flatten)]
    pub output: WriteArgs,
}

/// Where and how an artifact is written: shared by `compress` and `export`.
#[derive(clap::Args)]
pub struct WriteArgs {
    /// The output folder; created atomically.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Replace the output folder if it exists (only after the new one is complete).
    #[arg(long)]
    pub force: bool,
    /// The artifact: dense safetensors (default), compressed-tensors (vLLM), gguf (llama.cpp) or
    /// gptq (GPTQ v1 checkpoint).
    #[arg(long, default_value = "safetensors", value_parser = parse_format)]
    pub format: ExportFormat,
    /// Skip the per-tensor error metrics of packed formats (faster export).
    #[arg(long)]
    pub no_metrics: bool,
    /// GGUF from a model without tokenizer.json: write the tensors only (llama.cpp cannot run the
    /// file; for benchmarks and inspection). Without this flag such an export is refused.
    #[arg(long)]
    pub gguf_weights_only: bool,
    /// Where the codecs run: cpu, or cuda:N (a build with `--features cuda`). On a GPU the
    /// integer, FP8, Q8_0, Q4_0 and Q5_0 codecs run there (same bytes as the CPU); the others
    /// (the k-quants, Q4_1, Q5_1, NF4) stay on the CPU.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Rows of the per-tensor summary table to print.
    #[arg(long, default_value_t = 40)]
    pub limit: usize,
    /// A llama.cpp importance matrix (GGUF or .dat, from `pareto imatrix` or llama-imatrix): the
    /// ggml-typed tensors (all but q8_0) quantize with its weights, as `llama-quantize --imatrix` does.
    #[arg(long, value_name = "FILE")]
    pub imatrix: Option<PathBuf>,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
}

/// The calibration set of calibrated algorithms (GPTQ).
#[derive(clap::Args)]
pub struct CalibrationArgs {
    /// Plain-text calibration set for the recipe's gptq rules (a decoder is run layer by layer over
    /// it). Use text the model was not evaluated on (see --calibration-skip).
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Windows of calibration text (each one forward pass).
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub calibration_windows: usize,
    /// Tokens per window, BOS included.
    #[arg(long, default_value_t = 512, value_name = "TOKENS")]
    pub calibration_window: usize,
    /// Characters skipped at the start of the calibration file (e.g. the part `pareto eval` scores).
    #[arg(long, default_value_t = 0, value_name = "CHARS")]
    pub calibration_skip: usize,
    /// GPTQ damping, as a fraction of the Hessian's mean diagonal.
    #[arg(long, default_value_t = 0.01, value_name = "FRACTION")]
    pub gptq_damp: f64,
    /// GPTQ in natural column order, group scales chosen as the sweep reaches them (default:
    /// act-order with static groups, which needs no g_idx in the artifact).
    #[arg(long)]
    pub gptq_natural_order: bool,
    /// Calibrate each linear of a layer on inputs computed with the layer's earlier linears
    /// already quantized (one forward pass per input group instead of one per layer).
    #[arg(long)]
    pub gptq_true_sequential: bool,
}

impl CalibrationArgs {
    /// The calibration protocol these flags describe (`None` without `--calibration`).
    pub fn spec(&self) -> Option<CalibrationSpec> {
        Some(CalibrationSpec {
            samples: self.calibration.clone()?,
            windows: self.calibration_windows,
            window: self.calibration_window,
            skip_chars: self.calibration_skip,
            damp: self.gptq_damp,
            act_order: !self.gptq_natural_order,
            true_sequential: self.gptq_true_sequential,
        })
    }

    /// Runs the calibration the plan needs (nothing when it needs none).
    fn solve(
        &self,
        model: &pareto_core::Model,
        plan: &pareto_core::Plan,
        json: bool,
    ) -> anyhow::Result<Option<std::sync::Arc<dyn pareto_core::quantize::TensorQuantizer>>> {
        let Some(spec) = self.spec() else { return Ok(None) };
        if plan.totals.calibrated == 0 {
            crate::note!("note: the recipe has no calibrated rule (gptq, awq, wanda); --calibration is not used");
            return Ok(None);
        }
        let ctx = progress::bar_context();
        let (codes, report) = calibrate(model.root(), plan, &spec, &ctx)?;
        drop(ctx);
        for note in &report.notes {
            crate::note!("note: {note}");
        }
        for t in &report.tensors {
            for note in &t.notes {
                crate::note!("note: {}: {note}", t.name);
            }
        }
        if !json && report.reused.is_none() {
            crate::note!(
                "calibrated {} tensors on {} windows x {} tokens in {:.2} s (predicted peak memory {:.2} GiB; {:.1} MiB of codes waited on disk)",
                report.tensors.len(),
                report.windows_used,
                spec.window,
                report.seconds,
                report.predicted_peak.total() as f64 / f64::from(1u32 << 30),
                report.spilled_bytes as f64 / f64::from(1u32 << 20)
            );
        }
        Ok(Some(codes))
    }
}

pub fn run(args: &CompressArgs, json: bool) -> anyhow::Result<()> {
    let model = output::open_model(&args.path)?;
    let recipe = Recipe::load(&args.recipe)?;
    write(&model, &recipe, &args.output, json)
}

/// Applies `recipe` to `model` and writes the artifact as `args` say, then prints the summary.
pub fn write(model: &pareto_core::Model, recipe: &Recipe, args: &WriteArgs, json: bool) -> anyhow::Result<()> {
    let plan = recipe.resolve_for(model, args.imatrix.is_some())?;
    let mut opts = CompressOptions::new(&args.out);
    opts.force = args.force;
    opts.format = args.format;
    opts.metrics = !args.no_metrics;
    opts.gguf_weights_only = args.gguf_weights_only;
    opts.accelerator = DeviceQuantizer::for_device(args.device.parse::<DeviceSpec>()?)?;
    if args.calibration.calibration.is_some() {
        pareto_core::compress::check_output(model, &opts)?;
    }
    if let Some(path) = &args.imatrix {
        opts.imatrix = Some(std::sync::Arc::new(pareto_core::export::gguf::imatrix::Imatrix::read(path)?));
    }
    opts.solver = args.calibration.solve(model, &plan, json)?;
    let ctx = progress::bar_context();
    let report = pareto_core::compress(model, &plan, &opts, &ctx)?;
    drop(ctx);
    if json {
        return output::json(&report);
    }
    let rows: Vec<Vec<String>> = report
        .tensors
        .iter()
        .take(args.limit)
        .map(|t| {
            let m = t.metrics.as_ref();
            vec![
                t.name.clone(),
                t.action.clone(),
                output::bytes(t.source_bytes),
                output::bytes(t.planned_bytes),
                m.map_or("-".into(), |m| format!("{:.4}", m.rel_error)),
                m.map_or("-".into(), |m| m.snr_db.map_or("inf".into(), |s| format!("{s:.1}"))),
                m.map_or("-".into(), |m| format!("{:.1}%", m.sparsity * 100.0)),
                t.calib_loss.map_or("-".into(), output::sig),
            ]
        })
        .collect();
    output::table(
        &["tensor", "action", "before", "after (packed)", "rel err", "SNR dB", "zeros", "solver loss"],
        &rows,
    );
    if report.tensors.len() > args.limit {
        println!("… {} more tensors (--limit N, or --json for all)", report.tensors.len() - args.limit);
    }
    crate::commands::plan::print_totals(&report.totals);
    if report.device != "cpu" {
        println!("{} tensors quantized on {}, the others on the CPU", report.device_tensors, report.device);
    }
    for note in &report.device_notes {
        crate::note!("note: {note}");
    }
    for stale in &report.stale_removed {
        crate::note!("note: removed {}, the temporary folder of an earlier run that was killed", stale.display());
    }
    println!(
        "wrote {} ({}, {}) in {:.2} s; content hash {}",
        report.output.display(),
        report.format,
        output::bytes(report.written_bytes),
        report.seconds,
        &report.content_hash[..16.min(report.content_hash.len())]
    );
    Ok(())
}

fn parse_format(s: &str) -> Result<ExportFormat, String> {
    ExportFormat::parse(s).ok_or_else(|| {
        format!(
            "unknown format {s:?}; valid: {}",
            ExportFormat::ALL.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
        )
    })
}
