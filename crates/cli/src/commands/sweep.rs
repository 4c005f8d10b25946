//! `pareto sweep`: compress → validate → project every recipe, then the comparison report.

use std::path::{Path, PathBuf};

use pareto_core::export::write_small_file;
use pareto_core::recipe::allocate::Knapsack;
use pareto_runs::allocate::{Problem, is_allocated_recipe, load_scan};

use pareto_runs::cluster::k8s::{K8sOptions, write_manifest};
use pareto_runs::cluster::slurm::{SlurmExecutor, SlurmOptions};
use pareto_runs::cluster::{TaskPlan, probe, run_baselines, run_task};
use pareto_runs::{
    Executor, LocalExecutor, Recorded, VariantSpec, model_files, prepare_out, recorded, sweep, write_sweep_reports,
};

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
    /// Validate decoders on the first N windows of the protocol only: quicker and noisier (each
    /// record's KL divergence carries its standard error). All windows by default.
    #[arg(long, value_name = "N", value_parser = two_or_more, conflicts_with = "no_validate")]
    pub validation_windows: Option<usize>,
    /// Also measure local speed of original and compressed models.
    #[arg(long)]
    pub speed: bool,
    #[command(flatten)]
    pub recommend: RecommendArgs,
    #[command(flatten)]
    pub calibration: CalibrationArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// Threads on this machine (--parallel at once).
    Local,
    /// One Slurm array task per variant on the shared output folder.
    Slurm,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum Emit {
    /// A Kubernetes Indexed Job manifest (JSON) for `kubectl apply -f`.
    K8s,
}

/// Where the variants run: here, on Slurm, or as a Kubernetes Job written for `kubectl`.
#[derive(clap::Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterArgs {
    /// Where the variants run. With slurm the output folder must be on a filesystem the nodes
    /// share (a probe job checks); run the same command again to resume: only variants without
    /// a record are submitted, those still queued are followed.
    #[arg(long, value_enum, default_value = "local")]
    pub executor: ExecutorKind,
    /// Slurm: submit and return with the job id; the same command run later collects the records
    /// and writes the report.
    #[arg(long)]
    pub detach: bool,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm generic resources per task, e.g. gpu:1.
    #[arg(long)]
    pub gres: Option<String>,
    /// Slurm time limit per task, e.g. 02:00:00.
    #[arg(long)]
    pub time: Option<String>,
    /// Slurm account.
    #[arg(long)]
    pub account: Option<String>,
    /// Slurm CPUs per task.
    #[arg(long)]
    pub cpus_per_task: Option<u32>,
    /// Memory per task (Slurm: e.g. 32G; Kubernetes: e.g. 32Gi).
    #[arg(long)]
    pub mem: Option<String>,
    /// Seconds between two looks at the queue while following.
    #[arg(long, default_value_t = 5.0)]
    pub poll: f64,
    /// The pareto binary as the nodes see it (default: this one's path).
    #[arg(long, value_name = "PATH")]
    pub remote_bin: Option<PathBuf>,
    /// Write a cluster job for the sweep instead of running it (then `kubectl apply -f` it and
    /// run this command again for the report).
    #[arg(long, value_enum, conflicts_with = "executor")]
    pub emit: Option<Emit>,
    /// Kubernetes: the container image with pareto on its PATH.
    #[arg(long, required_if_eq("emit", "k8s"))]
    pub image: Option<String>,
    /// Kubernetes: the PersistentVolumeClaim holding the shared folder.
    #[arg(long, required_if_eq("emit", "k8s"))]
    pub pvc: Option<String>,
    /// Kubernetes: where the claim is mounted, at the same path as here; the model, samples and
    /// output folder must lie under it (default: the output folder's parent).
    #[arg(long, value_name = "DIR")]
    pub shared_root: Option<PathBuf>,
    /// Kubernetes namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Kubernetes: GPUs per pod.
    #[arg(long, default_value_t = 0)]
    pub gpus: u32,
    /// Kubernetes: CPU request per pod.
    #[arg(long)]
    pub cpu: Option<String>,
}

impl ClusterArgs {
    fn slurm(&self) -> SlurmOptions {
        SlurmOptions {
            partition: self.partition.clone(),
            gres: self.gres.clone(),
            time: self.time.clone(),
            account: self.account.clone(),
            cpus_per_task: self.cpus_per_task,
            mem: self.mem.clone(),
            detach: self.detach,
            poll: std::time::Duration::from_secs_f64(self.poll.max(0.05)),
            remote_bin: self.remote_bin.clone(),
        }
    }

    fn k8s(&self, out: &Path) -> K8sOptions {
        let root = self.shared_root.clone().unwrap_or_else(|| {
            std::path::absolute(out).ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_else(|| "/".into())
        });
        K8sOptions {
            image: self.image.clone().unwrap_or_default(),
            pvc: self.pvc.clone().unwrap_or_default(),
            shared_root: root,
            namespace: self.namespace.clone(),
            gpus: self.gpus,
            cpu: self.cpu.clone(),
            memory: self.mem.clone(),
            // Every variant at once: the cluster's quota is what limits a Job.
            parallelism: None,
            bin: "pareto".into(),
        }
    }
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

/// A window count a standard error can be computed from.
fn two_or_more(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= pareto_runs::MIN_VALIDATION_WINDOWS => Ok(n),
        _ => Err(format!(
            "`{s}`: give {} or more windows (a standard error needs two)",
            pareto_runs::MIN_VALIDATION_WINDOWS
        )),
    }
}

pub fn run(args: &SweepArgs, json: bool) -> anyhow::Result<()> {
    // Every variant reads the folder opened here (for a GGUF, its conversion).
    let source = output::model_folder(&args.path)?;
    let model = output::open_model(&source)?;
    let files = model_files(&model)?;
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
            validation_windows: args.validation_windows,
            measure_speed: args.speed,
            calibration: args.calibration.spec(),
            baseline_cache: None,
        })
        .collect();
    if args.cluster.emit == Some(Emit::K8s) {
        return emit_k8s(&jobs, &files, args, json);
    }
    let executor: Box<dyn Executor> = match args.cluster.executor {
        ExecutorKind::Local => Box::new(LocalExecutor { parallelism: args.parallel }),
        ExecutorKind::Slurm => Box::new(SlurmExecutor { options: args.cluster.slurm() }),
    };
    let ctx = progress::bar_context();
    let outcome = sweep(&jobs, &files, &args.out, executor.as_ref(), &ctx)?;
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
    if !outcome.queued.is_empty() {
        // Detached: the report waits for every record; the same command collects them.
        if json {
            output::json(&serde_json::json!({
                "queued": outcome.queued, "records": outcome.record_paths, "failed": outcome.failed,
            }))?;
        } else {
            for (name, task) in &outcome.queued {
                println!("queued: {name} as Slurm job {task}");
            }
            println!(
                "{} variant(s) queued, {} recorded; run the same command again to follow them and write the report",
                outcome.queued.len(),
                outcome.records.len()
            );
        }
        return Ok(());
    }
    if outcome.records.is_empty() {
        anyhow::bail!("no variant finished");
    }
    // A metric no record carries (say KL with --no-validate) must not cost the sweep its report:
    // the records are kept and `pareto report --metric` can render them again.
    let mut cmp = args.recommend.compare(&outcome.records, true)?;
    if let Some(scan) = &args.scan {
        cmp.sensitivity = Some(pareto_runs::scan::sensitivity_for(scan, &outcome.records)?);
    }
    let (html, md) = write_sweep_reports(&args.out, &outcome.records, &cmp)?;
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

/// `--emit k8s`: the plan of the variants not yet recorded and the Indexed Job that runs them.
fn emit_k8s(
    jobs: &[VariantSpec],
    files: &[pareto_report::FileHash],
    args: &SweepArgs,
    json: bool,
) -> anyhow::Result<()> {
    // What a local sweep would run: no record, or one whose artifact is gone or changed.
    let mut missing = Vec::new();
    for job in jobs {
        if !matches!(recorded(job, files, &args.out)?.2, Recorded::Done(_)) {
            missing.push(job.clone());
        }
    }
    if missing.is_empty() {
        anyhow::bail!(
            "every variant is already recorded in {}: run the sweep without --emit for the report",
            args.out.display()
        );
    }
    let plan = TaskPlan::new(&missing, files, &args.out)?;
    let options = args.cluster.k8s(&args.out);
    let plan_path = plan.write()?;
    let manifest = write_manifest(&plan, &plan_path, &options)?;
    if json {
        output::json(&serde_json::json!({ "plan": plan_path, "manifest": manifest, "variants": missing.len() }))?;
    } else {
        println!(
            "wrote {} ({} variants, completion index = variant) and its plan {}",
            manifest.display(),
            missing.len(),
            plan_path.display()
        );
        println!(
            "next: kubectl apply -f {}; when the Job completes, run this sweep again without --emit for the report",
            manifest.display()
        );
    }
    Ok(())
}

/// `pareto sweep-task`: what one cluster task runs (hidden; written into job scripts).
#[derive(clap::Args)]
pub struct SweepTaskArgs {
    /// The plan a submission wrote (`<out>/.pareto-cluster/plan-*.json`).
    pub plan: PathBuf,
    /// The variant to run, 0-based. Default: $SLURM_ARRAY_TASK_ID, else $JOB_COMPLETION_INDEX
    /// (a Kubernetes Indexed Job's).
    #[arg(long)]
    pub variant_index: Option<usize>,
    /// Check this node instead: the plan's version, its inputs, and a file written for the submitter.
    #[arg(long, value_name = "TOKEN", conflicts_with = "variant_index")]
    pub probe: Option<String>,
    /// Evaluate the original once on the plan's sample sets, into the shared folder, for the
    /// variant tasks to reuse (the job the array waits for).
    #[arg(long, conflicts_with_all = ["variant_index", "probe"])]
    pub baseline: bool,
}

pub fn run_sweep_task(args: &SweepTaskArgs) -> anyhow::Result<()> {
    if let Some(token) = &args.probe {
        let file = probe(&args.plan, token)?;
        println!("probe: ok ({})", file.display());
        return Ok(());
    }
    if args.baseline {
        let ctx = progress::bar_context();
        let n = run_baselines(&args.plan, &ctx)?;
        println!("baseline: the original evaluated on {n} sample set(s)");
        return Ok(());
    }
    let index = match args.variant_index {
        Some(i) => i,
        None => ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"]
            .iter()
            .find_map(|k| std::env::var(k).ok())
            .ok_or_else(|| {
                anyhow::anyhow!("no --variant-index, and neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set")
            })?
            .parse()
            .map_err(|e| anyhow::anyhow!("the task index is not a number: {e}"))?,
    };
    let ctx = progress::bar_context();
    let record = run_task(&args.plan, index, &ctx)?;
    println!("{}", record.display());
    Ok(())
}
