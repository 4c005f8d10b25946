//! Sweeps: many variants of one model, run with bounded parallelism, each written as a run record
//! named by its content address, so a restarted sweep skips what is already done.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use pareto_core::export::SourcePaths;
use pareto_core::export::protect::resolve;
use pareto_core::job::JobContext;
use pareto_report::{FileHash, RunRecord};

use crate::error::{Result, RunError};
use crate::variant::{VariantSpec, run_variant};

/// Where variants run: [`LocalExecutor`] on threads here, [`crate::cluster::slurm::SlurmExecutor`]
/// on a Slurm cluster. Jobs in, one result per job out in the same order (a variant queued but
/// not waited for is [`RunError::Queued`]); an error for the whole call is one the executor
/// met before any variant ran (no scheduler, a refused submission).
pub trait Executor: Sync {
    fn execute(
        &self,
        jobs: &[VariantSpec],
        model_files: &[FileHash],
        out: &Path,
        ctx: &JobContext,
    ) -> Result<Vec<Result<RunRecord>>>;
}

/// Runs up to `parallelism` variants at once on local threads.
pub struct LocalExecutor {
    pub parallelism: usize,
}

impl Executor for LocalExecutor {
    fn execute(
        &self,
        jobs: &[VariantSpec],
        model_files: &[FileHash],
        out: &Path,
        ctx: &JobContext,
    ) -> Result<Vec<Result<RunRecord>>> {
        let next = AtomicUsize::new(0);
        let results: Vec<Mutex<Option<Result<RunRecord>>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
        let workers = self.parallelism.clamp(1, jobs.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(job) = jobs.get(i) else { break };
                        // The record is written the moment its variant finishes, so a sweep killed
                        // later still keeps it and resumes past it.
                        let r = ctx
                            .checkpoint()
                            .map_err(RunError::from)
                            .and_then(|()| run_variant(job, model_files, &out.join("artifacts"), ctx))
                            .and_then(|rec| write_record(out, &rec).map(|_| rec))
                            .map_err(|e| RunError::Variant { variant: job.recipe.clone(), source: Box::new(e) });
                        if let Ok(mut slot) = results[i].lock() {
                            *slot = Some(r);
                        }
                        ctx.progress.advance(1, &job.recipe);
                    }
                });
            }
        });
        Ok(results
            .into_iter()
            .map(|m| m.into_inner().ok().flatten().unwrap_or(Err(pareto_core::Error::Cancelled.into())))
            .collect())
    }
}

/// Writes the sweep's reviewer reports, `report.html` and `report.md`, from its records (in job
/// order) and returns their paths. Each replaces only a report Pareto wrote.
pub fn write_sweep_reports(
    out: &Path,
    records: &[RunRecord],
    cmp: &pareto_report::Comparison,
) -> Result<(PathBuf, PathBuf)> {
    let (html, md) = (out.join("report.html"), out.join("report.md"));
    pareto_report::write_report(&html, &pareto_report::render_html(records, cmp), &[])?;
    pareto_report::write_report(&md, &pareto_report::render_markdown(records, cmp), &[])?;
    Ok((html, md))
}

/// Writes a record atomically at its [`record_path`].
pub fn write_record(out: &Path, record: &RunRecord) -> Result<PathBuf> {
    let path = record_path(out, &record.recipe.name, &record.id);
    pareto_report::write_atomic(&path, &record.to_json())?;
    Ok(path)
}

/// The record file of a variant: `<out>/runs/<recipe>-<id>.json`.
pub fn record_path(out: &Path, recipe_name: &str, id: &str) -> PathBuf {
    let safe: String =
        recipe_name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    out.join("runs").join(format!("{safe}-{id}.json"))
}

#[derive(Debug)]
pub struct SweepOutcome {
    /// Records in the order of the jobs (finished earlier or now).
    pub records: Vec<RunRecord>,
    pub record_paths: Vec<PathBuf>,
    /// Variants skipped because their record already existed.
    pub resumed: Vec<String>,
    /// Variants whose record existed but was not reused, and why (artifact missing or changed).
    pub rerun: Vec<(String, String)>,
    /// Variants that failed, with the error.
    pub failed: Vec<(String, String)>,
    /// Variants submitted to a scheduler and not waited for, with the job that holds them.
    pub queued: Vec<(String, String)>,
}

/// Marks a folder as a sweep's: a later sweep may write into it, nothing else is overwritten.
pub const SWEEP_MARKER: &str = "pareto-sweep.json";

/// Makes `out` ready for a sweep: refuses the source model (its folder, its files, anything inside
/// it) and a folder that holds anything but an earlier sweep's output; creates it and marks it.
pub fn prepare_out(out: &Path, source: &SourcePaths) -> Result<()> {
    let resolved = resolve(out);
    source.check(out, &resolved)?;
    let refuse = |what: &str| RunError::OutNotOurs { path: out.to_path_buf(), what: what.into(), marker: SWEEP_MARKER };
    match std::fs::symlink_metadata(&resolved) {
        Ok(m) if !m.is_dir() => return Err(refuse("not a folder")),
        Ok(_) => {
            let mut entries = std::fs::read_dir(&resolved).map_err(|e| RunError::Io { path: out.into(), source: e })?;
            // Sweeps made before the marker existed are recognised by their runs/ folder of records.
            let ours = resolved.join(SWEEP_MARKER).is_file() || resolved.join("runs").is_dir();
            if entries.next().is_some() && !ours {
                return Err(refuse("a folder that an earlier sweep did not write"));
            }
        }
        Err(_) => std::fs::create_dir_all(&resolved).map_err(|e| RunError::Io { path: out.into(), source: e })?,
    }
    let marker = resolved.join(SWEEP_MARKER);
    if !marker.is_file() {
        let text = serde_json::json!({ "tool": "pareto", "kind": "sweep", "version": env!("CARGO_PKG_VERSION") });
        pareto_report::write_atomic(&marker, &format!("{text:#}\n"))?;
    }
    Ok(())
}

/// What a sweep folder holds for one variant.
pub enum Recorded {
    /// No record of this variant.
    Missing,
    /// Its record, reusable: the artifact is still there with the content hash it recorded.
    Done(Box<RunRecord>),
    /// A record that cannot be reused, and why (its artifact is gone or changed).
    Stale(String),
}

/// What `out` holds for `job`, with the recipe's name and the record's path (where a run writes
/// it). A record of another Pareto version is an error: never reused, never silently replaced.
pub fn recorded(job: &VariantSpec, model_files: &[FileHash], out: &Path) -> Result<(String, PathBuf, Recorded)> {
    let (recipe, id) = job.id(model_files)?;
    let path = record_path(out, &recipe.name, &id);
    let state = match RunRecord::load(&path) {
        Ok(r) if r.id == id && r.tool.version != env!("CARGO_PKG_VERSION") => {
            return Err(RunError::version_mix(&path, &r.tool.name, &r.tool.version));
        }
        Ok(r) if r.id == id => match artifact_problem(&r) {
            None => Recorded::Done(Box::new(r)),
            Some(why) => Recorded::Stale(why),
        },
        _ => Recorded::Missing,
    };
    Ok((recipe.name, path, state))
}

/// Why a finished record cannot be reused: its artifact is gone or no longer what it recorded.
fn artifact_problem(record: &RunRecord) -> Option<String> {
    let artifact = record.artifact.as_ref()?;
    let Some(manifest) = pareto_core::export::protect::pareto_manifest(Path::new(&artifact.path)) else {
        return Some(format!("its artifact {} is missing", artifact.path));
    };
    let hash = manifest.get("content_hash").and_then(|h| h.as_str());
    (hash != Some(artifact.content_hash.as_str()))
        .then(|| format!("its artifact {} changed since it was recorded", artifact.path))
}

/// Runs every job not already recorded under `out` (each record is written as its variant
/// finishes) and returns all records in job order. A record is reused only while its artifact is
/// still there with the content hash it recorded. Call [`prepare_out`] first.
pub fn sweep(
    jobs: &[VariantSpec],
    model_files: &[FileHash],
    out: &Path,
    executor: &dyn Executor,
    ctx: &JobContext,
) -> Result<SweepOutcome> {
    let mut pending = Vec::new();
    let mut slots: Vec<Option<(RunRecord, PathBuf)>> = Vec::with_capacity(jobs.len());
    let mut resumed = Vec::new();
    let mut rerun = Vec::new();
    for job in jobs {
        let (name, path, state) = recorded(job, model_files, out)?;
        match state {
            Recorded::Done(r) => {
                resumed.push(name);
                slots.push(Some((*r, path)));
                continue;
            }
            Recorded::Stale(why) => rerun.push((name, why)),
            Recorded::Missing => {}
        }
        pending.push(job.clone());
        slots.push(None);
    }
    ctx.progress.stage("sweep", jobs.len() as u64);
    ctx.progress.advance(resumed.len() as u64, "resumed");
    let results = if pending.is_empty() { Vec::new() } else { executor.execute(&pending, model_files, out, ctx)? };
    let mut failed = Vec::new();
    let mut queued = Vec::new();
    let mut done = results.into_iter();
    for (job, slot) in jobs.iter().zip(slots.iter_mut()) {
        if slot.is_some() {
            continue;
        }
        match done.next() {
            Some(Ok(record)) => {
                let path = record_path(out, &record.recipe.name, &record.id);
                *slot = Some((record, path));
            }
            Some(Err(RunError::Queued { job: id })) => queued.push((job.recipe.clone(), id)),
            Some(Err(e)) => failed.push((job.recipe.clone(), e.to_string())),
            None => failed.push((job.recipe.clone(), "not run".into())),
        }
    }
    let (records, record_paths) = slots.into_iter().flatten().unzip();
    Ok(SweepOutcome { records, record_paths, resumed, rerun, failed, queued })
}
