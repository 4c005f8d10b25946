//! `pareto sweep`: compress → validate → project every recipe, then the comparison report.

use std::path::PathBuf;

use pareto_report::{ReportError, compare, compare_on, render_html, render_markdown, write_report};
use pareto_runs::{LocalExecutor, VariantSpec, hash_files, prepare_out, sweep};

use crate::commands::compress::CalibrationArgs;
use crate::{output, progress};

#[derive(clap::Args)]
pub struct SweepArgs {
    /// The source model.
    pub path: PathBuf,
    /// Comma-separated presets or recipe files.
    #[arg(long, value_delimiter = ',', required = true)]
    pub recipes: Vec<String>,
    /// Validation sample set (default: the model family's bundled set).
    #[arg(long)]
    pub samples: Option<PathBuf>,
    /// Traffic scenario preset or .toml file.
    #[arg(long, default_value = "high-volume-api")]
    pub scenario: String,
    /// Hardware catalog id (default: the scenario's).
    #[arg(long)]
    pub device: Option<String>,
    /// Output folder: runs/*.json, artifacts/, report.html, report.md.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Variants run at once.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Skip validation (records then say "not measured").
    #[arg(long)]
    pub no_validate: bool,
    /// Also measure local speed of original and compressed models.
    #[arg(long)]
    pub speed: bool,
    /// The report's accuracy axis: a validation metric by name ("perplexity", "KL divergence",
    /// "top-1 agreement", "STS Spearman", ...) or "weight error (proxy)". Default: the primary metric.
    #[arg(long)]
    pub metric: Option<String>,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
}

pub fn run(args: &SweepArgs, json: bool) -> anyhow::Result<()> {
    let model = output::open_model(&args.path)?;
    let shard_paths: Vec<PathBuf> = model.shards().iter().map(|s| s.path.clone()).collect();
    let files = hash_files(&shard_paths.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    let jobs: Vec<VariantSpec> = args
        .recipes
        .iter()
        .map(|r| VariantSpec {
            model: args.path.clone(),
            recipe: r.clone(),
            samples: args.samples.clone(),
            scenario: args.scenario.clone(),
            device: args.device.clone(),
            validate: !args.no_validate,
            measure_speed: args.speed,
            calibration: args.calibration.spec(),
        })
        .collect();
    prepare_out(&args.out, &model.source_paths())?;
    let ctx = progress::bar_context();
    let outcome = sweep(&jobs, &files, &args.out, &LocalExecutor { parallelism: args.parallel }, &ctx)?;
    drop(ctx);
    for name in &outcome.resumed {
        eprintln!("resumed: {name} (record already present)");
    }
    for (name, why) in &outcome.rerun {
        eprintln!("re-ran: {name} ({why})");
    }
    for (name, err) in &outcome.failed {
        eprintln!("failed: {name}: {err}");
    }
    if outcome.records.is_empty() {
        anyhow::bail!("no variant finished");
    }
    // A metric no record carries (say KL with --no-validate) must not cost the sweep its report:
    // the records are kept and `pareto report --metric` can render them again.
    let cmp = match compare_on(&outcome.records, args.metric.as_deref()) {
        Err(e @ ReportError::UnknownMetric { .. }) => {
            eprintln!("warning: {e}; the report uses the primary metric");
            compare(&outcome.records)?
        }
        other => other?,
    };
    let html = args.out.join("report.html");
    let md = args.out.join("report.md");
    write_report(&html, &render_html(&outcome.records, &cmp), &[])?;
    write_report(&md, &render_markdown(&outcome.records, &cmp), &[])?;
    if json {
        output::json(&serde_json::json!({
            "records": outcome.record_paths, "resumed": outcome.resumed, "rerun": outcome.rerun, "failed": outcome.failed,
            "report_html": html, "report_md": md, "comparison": cmp,
        }))?;
    } else {
        println!("{}", cmp.recommendation.headline);
        println!("wrote {} and {} ({} run records)", html.display(), md.display(), outcome.record_paths.len());
    }
    if !outcome.failed.is_empty() {
        anyhow::bail!("{} of {} variants failed", outcome.failed.len(), jobs.len());
    }
    Ok(())
}
