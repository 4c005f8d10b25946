//! `pareto sweep`: compress → validate → project every recipe, then the comparison report.

use std::path::{Path, PathBuf};

use pareto_core::export::write_small_file;
use pareto_core::recipe::allocate::Knapsack;
use pareto_runs::allocate::{Problem, is_allocated_recipe, load_scan};

use pareto_report::{render_html, render_markdown, write_report};
use pareto_runs::{LocalExecutor, VariantSpec, hash_files, prepare_out, sweep};

use crate::commands::compress::CalibrationArgs;
use crate::commands::report::RecommendArgs;
use crate::{output, progress};

#[derive(clap::Args)]
pub struct SweepArgs {
    /// The source model.
    pub path: PathBuf,
    /// Comma-separated presets or recipe files.
    #[arg(long, value_delimiter = ',', required_unless_present = "auto")]
    pub recipes: Vec<String>,
    /// Also sweep N allocations spread along the predicted frontier of a `pareto scan` (--scan),
    /// from the cheapest to the most accurate: validated, they give the measured frontier.
    #[arg(long, value_name = "N", requires = "scan")]
    pub auto: Option<usize>,
    /// The sensitivity scan --auto allocates from (written by `pareto scan`).
    #[arg(long, value_name = "FILE")]
    pub scan: Option<PathBuf>,
    /// With --auto: what the tensors the scan does not decide get, as in `pareto allocate --base`.
    #[arg(long, default_value = "gguf-q4_k_m", value_name = "RECIPE")]
    pub auto_base: String,
    /// With --auto: let q/k/v and gate/up take different formats (GGUF allows it).
    #[arg(long)]
    pub no_fuse: bool,
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
    #[command(flatten)]
    pub recommend: RecommendArgs,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
}

/// Writes `n` allocations along the scan's predicted frontier into `out/auto/` and returns their
/// paths (the same files again on a resumed sweep, so their records are reused).
fn auto_recipes(model: &pareto_core::Model, scan: &Path, n: usize, args: &SweepArgs) -> anyhow::Result<Vec<String>> {
    let scan = load_scan(scan, model)?;
    let base = pareto_core::Recipe::load(&args.auto_base)?;
    let problem = Problem::new(&scan, model, &base, !args.no_fuse)?;
    let ks = Knapsack::new(&problem.groups)?;
    let dir = args.out.join("auto");
    std::fs::create_dir_all(&dir)?;
    let mut paths = Vec::new();
    for (i, a) in problem.frontier(&ks, n, &scan).iter().enumerate() {
        let path = dir.join(format!("auto-{i:02}.toml"));
        let toml = a.recipe.to_toml()?;
        write_small_file(
            &path,
            toml.as_bytes(),
            true,
            &model.source_paths(),
            "an allocated recipe",
            &is_allocated_recipe,
        )?;
        crate::note!("auto: {} ({:.2} bits/weight, predicted KL {:.5})", path.display(), a.bpw, a.predicted_kl);
        paths.push(path.display().to_string());
    }
    Ok(paths)
}

pub fn run(args: &SweepArgs, json: bool) -> anyhow::Result<()> {
    // Every variant reads the folder opened here (for a GGUF, its conversion).
    let source = output::model_folder(&args.path)?;
    let model = output::open_model(&source)?;
    let shard_paths: Vec<PathBuf> = model.shards().iter().map(|s| s.path.clone()).collect();
    let files = hash_files(&shard_paths.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    prepare_out(&args.out, &model.source_paths())?;
    let mut recipes = args.recipes.clone();
    if let (Some(n), Some(scan)) = (args.auto, &args.scan) {
        recipes.extend(auto_recipes(&model, scan, n, args)?);
    }
    let jobs: Vec<VariantSpec> = recipes
        .iter()
        .map(|r| VariantSpec {
            model: source.clone(),
            recipe: r.clone(),
            samples: args.samples.clone(),
            scenario: args.scenario.clone(),
            device: args.device.clone(),
            validate: !args.no_validate,
            measure_speed: args.speed,
            calibration: args.calibration.spec(),
        })
        .collect();
    let ctx = progress::bar_context();
    let outcome = sweep(&jobs, &files, &args.out, &LocalExecutor { parallelism: args.parallel }, &ctx)?;
    drop(ctx);
    for name in &outcome.resumed {
        crate::note!("resumed: {name} (record already present)");
    }
    for (name, why) in &outcome.rerun {
        crate::note!("re-ran: {name} ({why})");
    }
    for (name, err) in &outcome.failed {
        eprintln!("failed: {name}: {err}");
    }
    if outcome.records.is_empty() {
        anyhow::bail!("no variant finished");
    }
    // A metric no record carries (say KL with --no-validate) must not cost the sweep its report:
    // the records are kept and `pareto report --metric` can render them again.
    let cmp = args.recommend.compare(&outcome.records, true)?;
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
