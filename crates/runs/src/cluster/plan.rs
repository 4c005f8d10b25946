//! The plan file: what every task of one submission reads.

use std::path::{Path, PathBuf};

use pareto_core::job::JobContext;
use pareto_report::FileHash;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, RunError};
use crate::sweep::{Recorded, recorded, write_record};
use crate::variant::{VariantSpec, run_variant};

/// The folder under a sweep's output that holds plans, job scripts, logs and probe files.
pub const CLUSTER_DIR: &str = ".pareto-cluster";

/// The variants of one submission, with every path absolute (tasks start elsewhere) and the
/// Pareto version that wrote it: a task run by another version refuses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskPlan {
    pub tool: String,
    pub version: String,
    /// The sweep's output folder, as the tasks see it.
    pub out: PathBuf,
    /// The source model's files as hashed by the submitter (the variants' content addresses).
    pub model_files: Vec<FileHash>,
    pub jobs: Vec<VariantSpec>,
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| RunError::Io { path: p.to_path_buf(), source: e })
}

/// A preset name stays a name; a file is made absolute.
fn absolute_name_or_file(s: &str) -> Result<String> {
    Ok(if Path::new(s).is_file() { absolute(Path::new(s))?.display().to_string() } else { s.to_string() })
}

impl TaskPlan {
    pub fn new(jobs: &[VariantSpec], model_files: &[FileHash], out: &Path) -> Result<Self> {
        let out = absolute(out)?;
        let jobs = jobs
            .iter()
            .map(|j| {
                let mut j = j.clone();
                j.model = absolute(&j.model)?;
                j.recipe = absolute_name_or_file(&j.recipe)?;
                j.scenario = absolute_name_or_file(&j.scenario)?;
                j.samples = j.samples.as_deref().map(absolute).transpose()?;
                if let Some(c) = &mut j.calibration {
                    c.samples = absolute(&c.samples)?;
                }
                // The original's evaluation is computed once (the baseline task) and shared in
                // the folder every node sees.
                j.baseline_cache = Some(out.join(CLUSTER_DIR).join("baselines"));
                Ok(j)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TaskPlan {
            tool: "pareto".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            out,
            model_files: model_files.to_vec(),
            jobs,
        })
    }

    pub fn cluster_dir(&self) -> PathBuf {
        self.out.join(CLUSTER_DIR)
    }

    /// A short name for this plan's content: the same pending variants give the same name.
    pub fn key(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        hex::encode(Sha256::digest(text.as_bytes())).chars().take(12).collect()
    }

    /// Writes the plan as `<out>/.pareto-cluster/plan-<key>.json` (atomically) and returns its path.
    pub fn write(&self) -> Result<PathBuf> {
        let path = self.cluster_dir().join(format!("plan-{}.json", self.key()));
        let text = serde_json::to_string_pretty(self).map_err(|e| RunError::Cluster(e.to_string()))?;
        pareto_report::write_atomic(&path, &text)?;
        Ok(path)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| RunError::Io { path: path.to_path_buf(), source: e })?;
        let plan: TaskPlan = serde_json::from_str(&text)
            .map_err(|e| RunError::Cluster(format!("{} is not a sweep plan: {e}", path.display())))?;
        if plan.tool != "pareto" || plan.version != env!("CARGO_PKG_VERSION") {
            return Err(RunError::version_mix(path, &plan.tool, &plan.version));
        }
        Ok(plan)
    }

    /// Every file or folder a task reads: the model, recipe, scenario and sample files.
    pub fn inputs(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for j in &self.jobs {
            v.push(j.model.clone());
            for s in [&j.recipe, &j.scenario] {
                if Path::new(s).is_absolute() {
                    v.push(PathBuf::from(s));
                }
            }
            v.extend(j.samples.clone());
            v.extend(j.calibration.as_ref().map(|c| c.samples.clone()));
        }
        v.sort();
        v.dedup();
        v
    }
}

/// Runs variant `index` of the plan at `plan_path` and writes its record; a variant whose record
/// is already there (a task run twice) is not run again. Returns the record's path.
pub fn run_task(plan_path: &Path, index: usize, ctx: &JobContext) -> Result<PathBuf> {
    let plan = TaskPlan::load(plan_path)?;
    let job = plan.jobs.get(index).ok_or_else(|| {
        RunError::Cluster(format!(
            "variant index {index} is out of range: {} holds {} variants (0..{})",
            plan_path.display(),
            plan.jobs.len(),
            plan.jobs.len().saturating_sub(1)
        ))
    })?;
    if let (name, path, Recorded::Done(_)) = recorded(job, &plan.model_files, &plan.out)? {
        ctx.progress.log(&format!("{name}: already recorded at {}", path.display()));
        return Ok(path);
    }
    let record = run_variant(job, &plan.model_files, &plan.out.join("artifacts"), ctx)
        .map_err(|e| RunError::Variant { variant: job.recipe.clone(), source: Box::new(e) })?;
    write_record(&plan.out, &record)
}

/// The baseline task: evaluates the original once on every distinct sample set the plan's
/// validated variants use, into the shared folder, so the variant tasks (which run after it)
/// evaluate only their compressed side. Returns how many evaluations it ran.
pub fn run_baselines(plan_path: &Path, ctx: &JobContext) -> Result<usize> {
    let plan = TaskPlan::load(plan_path)?;
    let mut done: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    for job in plan.jobs.iter().filter(|j| j.validate) {
        let what = (job.model.clone(), job.samples.clone());
        if done.contains(&what) {
            continue;
        }
        if !matches!(pareto_eval::detect_family(&job.model)?, pareto_eval::ModelFamily::Llama) {
            continue;
        }
        ctx.progress.log(&format!("evaluating the original {} once for every variant", job.model.display()));
        pareto_eval::evaluate(&job.model, &job.original_evaluation(), ctx)?;
        done.push(what);
    }
    Ok(done.len())
}

/// What a probe task checks on a node before any variant runs there: this binary's version
/// reads the plan, every input is visible with the size the submitter hashed, and the output
/// folder takes a file — which the submitter then looks for, to learn that it sees the same
/// folder. Returns the path of the file written.
pub fn probe(plan_path: &Path, token: &str) -> Result<PathBuf> {
    let plan = TaskPlan::load(plan_path)?;
    let mut missing: Vec<String> =
        plan.inputs().into_iter().filter(|p| !p.exists()).map(|p| p.display().to_string()).collect();
    if let Some(model) = plan.jobs.first().map(|j| &j.model) {
        for f in &plan.model_files {
            let path = if model.is_dir() { model.join(&f.name) } else { model.clone() };
            match std::fs::metadata(&path) {
                Ok(m) if m.len() == f.bytes => {}
                Ok(m) => missing.push(format!("{} ({} bytes here, {} when hashed)", path.display(), m.len(), f.bytes)),
                Err(_) if model.is_dir() => missing.push(path.display().to_string()),
                Err(_) => {}
            }
        }
    }
    if !missing.is_empty() {
        return Err(RunError::Cluster(format!("this node does not see the sweep's inputs: {}", missing.join(", "))));
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let path = plan.cluster_dir().join(format!("probe-{token}.json"));
    let text = serde_json::json!({ "host": host.trim(), "version": env!("CARGO_PKG_VERSION") });
    pareto_report::write_atomic(&path, &text.to_string())?;
    Ok(path)
}
