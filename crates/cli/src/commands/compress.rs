//! `pareto compress`: apply a recipe and write the compressed model.

use std::path::PathBuf;

use pareto_core::{CompressOptions, ExportFormat, Recipe};
use pareto_eval::DeviceSpec;
use pareto_eval::device_quant::DeviceQuantizer;

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
    /// (Q4_K, Q6_K, NF4) stay on the CPU.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Rows of the per-tensor summary table to print.
    #[arg(long, default_value_t = 40)]
    pub limit: usize,
}

pub fn run(args: &CompressArgs, json: bool) -> anyhow::Result<()> {
    let model = output::open_model(&args.path)?;
    let recipe = Recipe::load(&args.recipe)?;
    write(&model, &recipe, &args.output, json)
}

/// Applies `recipe` to `model` and writes the artifact as `args` say, then prints the summary.
pub fn write(model: &pareto_core::Model, recipe: &Recipe, args: &WriteArgs, json: bool) -> anyhow::Result<()> {
    let plan = recipe.resolve(model)?;
    let mut opts = CompressOptions::new(&args.out);
    opts.force = args.force;
    opts.format = args.format;
    opts.metrics = !args.no_metrics;
    opts.gguf_weights_only = args.gguf_weights_only;
    opts.accelerator = DeviceQuantizer::for_device(args.device.parse::<DeviceSpec>()?)?;
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
            ]
        })
        .collect();
    output::table(&["tensor", "action", "before", "after (packed)", "rel err", "SNR dB", "zeros"], &rows);
    if report.tensors.len() > args.limit {
        println!("… {} more tensors (--limit N, or --json for all)", report.tensors.len() - args.limit);
    }
    crate::commands::plan::print_totals(&report.totals);
    if report.device != "cpu" {
        println!("{} tensors quantized on {}, the others on the CPU", report.device_tensors, report.device);
    }
    for note in &report.device_notes {
        eprintln!("note: {note}");
    }
    for stale in &report.stale_removed {
        eprintln!("note: removed {}, the temporary folder of an earlier run that was killed", stale.display());
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
