//! Slurm: one array element per variant (`sbatch --array`), after a probe job that checks the
//! nodes see the shared folder. The submitter follows the tasks with `squeue` (and `sacct` or
//! `scontrol` for how a finished one ended) or returns at once with the job id (`detach`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pareto_core::job::JobContext;
use pareto_report::{FileHash, RunRecord};
use serde::{Deserialize, Serialize};

use super::plan::TaskPlan;
use crate::error::{Result, RunError};
use crate::sweep::{Executor, record_path};
use crate::variant::VariantSpec;

/// How the tasks are submitted and followed.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    /// Generic resources per task, e.g. `gpu:1`.
    pub gres: Option<String>,
    /// Time limit per task, e.g. `02:00:00`.
    pub time: Option<String>,
    pub account: Option<String>,
    pub cpus_per_task: Option<u32>,
    /// Memory per task as sbatch takes it, e.g. `32G`.
    pub mem: Option<String>,
    /// Submit and return with the job id instead of following the tasks.
    pub detach: bool,
    /// Between two `squeue` polls.
    pub poll: Duration,
    /// The `pareto` binary as the nodes see it (default: this process's own).
    pub remote_bin: Option<PathBuf>,
}

pub struct SlurmExecutor {
    pub options: SlurmOptions,
}

/// One submission, kept in `<out>/.pareto-cluster/submissions.jsonl` so a later run can find
/// tasks still queued instead of submitting their variants twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Submission {
    array_job: String,
    probe_job: String,
    plan: PathBuf,
    /// The variant ids of the plan's jobs, by array index.
    variants: Vec<String>,
}

/// A variant being followed: which array element runs it and where its record will appear.
struct Tracked {
    /// Index into the jobs given to `execute`.
    job: usize,
    /// `ARRAYJOB_INDEX`, as squeue prints it with `-r`.
    task: String,
    record: PathBuf,
    log: PathBuf,
    state: String,
    /// Polls since the task left the queue without a record (shared filesystems may show the
    /// record a moment later).
    gone: u32,
    result: Option<Result<RunRecord>>,
}

impl Tracked {
    /// Variant `job` as array element `task`, whose log Slurm writes into `logs`.
    fn new(job: usize, task: String, record: PathBuf, logs: &Path) -> Self {
        Tracked {
            job,
            log: logs.join(format!("{task}.log")),
            task,
            record,
            state: String::new(),
            gone: 0,
            result: None,
        }
    }
}

fn require(cmd: &'static str) -> Result<()> {
    super::on_path(cmd).map(|_| ()).ok_or(RunError::SchedulerMissing { command: cmd })
}

/// Runs a scheduler command and returns its stdout; a failure carries its stderr.
fn slurm(cmd: &str, args: &[String]) -> Result<String> {
    let shown = format!("{cmd} {}", args.join(" "));
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| RunError::Submit { command: shown.clone(), stderr: e.to_string() })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(RunError::Submit { command: shown, stderr });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Submits with `sbatch --parsable ARGS` and returns the job id (`--parsable` prints `ID[;CLUSTER]`).
fn sbatch(mut args: Vec<String>) -> Result<String> {
    args.insert(0, "--parsable".into());
    Ok(slurm("sbatch", &args)?.trim().split(';').next().unwrap_or_default().to_string())
}

/// A shell word: single-quoted unless plainly safe.
fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl SlurmOptions {
    /// The sbatch options shared by the probe and the array (the probe takes no GPU and five minutes).
    fn sbatch_args(&self, probe: bool) -> Vec<String> {
        let mut a = Vec::new();
        let mut opt = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                a.push(format!("--{k}={v}"));
            }
        };
        opt("partition", &self.partition);
        opt("account", &self.account);
        if probe {
            a.push("--time=00:05:00".into());
        } else {
            opt("gres", &self.gres);
            opt("time", &self.time);
            opt("mem", &self.mem);
            opt("cpus-per-task", &self.cpus_per_task.map(|c| c.to_string()));
        }
        a
    }
}

/// The batch script every array element runs: the variant its index names.
pub fn task_script(bin: &Path, plan: &Path) -> String {
    format!(
        "#!/bin/bash\n# Written by pareto sweep --executor slurm: one variant of {plan} per array element.\n\
         # As many threads as CPUs allocated (nodes without CPU binding would otherwise see them all).\n\
         {}\n",
        task_command(bin, plan, "--variant-index \"$SLURM_ARRAY_TASK_ID\""),
        plan = quote(&plan.display().to_string()),
    )
}

/// What every job of a sweep runs: `pareto sweep-task PLAN ARGS`, with as many threads as CPUs
/// Slurm allocated. One line, so it serves a script and `sbatch --wrap` alike.
fn task_command(bin: &Path, plan: &Path, args: &str) -> String {
    format!(
        "export RAYON_NUM_THREADS=\"${{RAYON_NUM_THREADS:-${{SLURM_CPUS_ON_NODE:-1}}}}\"; exec {} --quiet sweep-task {} {args}",
        quote(&bin.display().to_string()),
        quote(&plan.display().to_string()),
    )
}

fn read_submissions(path: &Path) -> Vec<Submission> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
        .unwrap_or_default()
}

fn append_submission(path: &Path, s: &Submission) -> Result<()> {
    use std::io::Write;
    let io = |e| RunError::Io { path: path.to_path_buf(), source: e };
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
    let line = serde_json::to_string(s).map_err(|e| RunError::Cluster(e.to_string()))?;
    writeln!(f, "{line}").map_err(io)
}

/// Array elements still queued or running, with their state: `{"12_3": "RUNNING"}`.
fn queued(jobs: &[&str]) -> Result<HashMap<String, String>> {
    if jobs.is_empty() {
        return Ok(HashMap::new());
    }
    let args = vec!["-h".into(), "-r".into(), "-o".into(), "%i|%T|%R".into(), "-j".into(), jobs.join(",")];
    // squeue rejects a list once every job in it has been purged; an empty queue is the answer.
    let text = match slurm("squeue", &args) {
        Ok(t) => t,
        Err(RunError::Submit { stderr, .. }) if stderr.contains("Invalid job id") => String::new(),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut f = l.split('|');
            let (id, state, reason) = (f.next()?, f.next()?, f.next().unwrap_or(""));
            let state = if state == "PENDING" && !reason.is_empty() && reason != "(null)" {
                format!("PENDING {reason}")
            } else if state == "RUNNING" {
                format!("RUNNING on {reason}")
            } else {
                state.to_string()
            };
            Some((id.trim().to_string(), state))
        })
        .collect())
}

/// How a task that left the queue ended, from accounting when the cluster keeps it, else from
/// the controller's memory of recent jobs.
fn ended_state(task: &str) -> String {
    let sacct = ["-n", "-P", "-X", "-o", "State,ExitCode", "-j", task].map(String::from);
    if let Ok(t) = slurm("sacct", &sacct)
        && let Some(l) = t.lines().find(|l| !l.trim().is_empty())
    {
        return l.replace('|', " exit ");
    }
    let show = ["-o", "show", "job", task].map(String::from);
    if let Ok(t) = slurm("scontrol", &show) {
        let field = |k: &str| t.split_whitespace().find_map(|w| w.strip_prefix(k)).map(str::to_string);
        if let Some(state) = field("JobState=") {
            return format!("{state} exit {}", field("ExitCode=").unwrap_or_default());
        }
    }
    "ended".into()
}

/// The last lines of a task's log, for the error shown to the user.
fn log_tail(log: &Path) -> String {
    match std::fs::read_to_string(log) {
        Ok(t) => {
            let lines: Vec<&str> = t.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
            if tail.is_empty() { String::new() } else { format!(": {tail}") }
        }
        Err(_) => " — the log is not visible from here".into(),
    }
}

impl SlurmExecutor {
    fn cancel(&self, jobs: &[String]) {
        if !jobs.is_empty() {
            let _ = slurm("scancel", jobs);
        }
    }

    /// Waits for the probe job; `Ok` once its file is visible here.
    fn await_probe(&self, probe: &str, file: &Path, log: &Path, ctx: &JobContext) -> Result<()> {
        loop {
            if ctx.checkpoint().is_err() {
                return Err(pareto_core::Error::Cancelled.into());
            }
            if queued(&[probe])?.is_empty() {
                break;
            }
            std::thread::sleep(self.options.poll);
        }
        // A shared filesystem may show another node's write a moment later.
        for _ in 0..10 {
            if file.is_file() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let state = ended_state(probe);
        Err(RunError::Cluster(if state.starts_with("COMPLETED") {
            format!(
                "the probe job {probe} finished but its file {} is not visible here: the output folder is not on a filesystem this machine shares with the nodes",
                file.display()
            )
        } else {
            format!(
                "the probe job {probe} ({state}) could not check the nodes (log: {}{}); a log that is not visible here means the nodes do not see the output folder",
                log.display(),
                log_tail(log)
            )
        }))
    }

    fn follow(&self, tracked: &mut [Tracked], ours: &[String], ctx: &JobContext) -> Result<()> {
        let started = Instant::now();
        loop {
            if ctx.checkpoint().is_err() {
                ctx.progress.log(&format!("cancelling Slurm job(s) {}", ours.join(", ")));
                self.cancel(ours);
                return Err(pareto_core::Error::Cancelled.into());
            }
            let arrays: Vec<&str> = {
                let mut a: Vec<&str> =
                    tracked.iter().filter(|t| t.result.is_none()).filter_map(|t| t.task.split('_').next()).collect();
                a.sort_unstable();
                a.dedup();
                a
            };
            if arrays.is_empty() {
                return Ok(());
            }
            let q = queued(&arrays)?;
            for t in tracked.iter_mut().filter(|t| t.result.is_none()) {
                if let Ok(r) = RunRecord::load(&t.record) {
                    ctx.progress.advance(1, &r.recipe.name);
                    t.result = Some(Ok(r));
                    continue;
                }
                match q.get(&t.task) {
                    Some(state) => {
                        if *state != t.state {
                            ctx.progress.log(&format!("job {}: {state}", t.task));
                            t.state = state.clone();
                        }
                        t.gone = 0;
                    }
                    None if t.gone < 2 => t.gone += 1,
                    None => {
                        let state = ended_state(&t.task);
                        ctx.progress.advance(1, &format!("job {} {state}", t.task));
                        t.result = Some(Err(RunError::Task {
                            state: format!("task {} ended {state}", t.task),
                            log: t.log.clone(),
                            tail: log_tail(&t.log),
                        }));
                    }
                }
            }
            if tracked.iter().all(|t| t.result.is_some()) {
                ctx.progress.log(&format!("all tasks ended after {:.0} s", started.elapsed().as_secs_f64()));
                return Ok(());
            }
            std::thread::sleep(self.options.poll);
        }
    }
}

impl Executor for SlurmExecutor {
    fn execute(
        &self,
        jobs: &[VariantSpec],
        model_files: &[FileHash],
        out: &Path,
        ctx: &JobContext,
    ) -> Result<Vec<Result<RunRecord>>> {
        require("sbatch")?;
        require("squeue")?;
        let all = TaskPlan::new(jobs, model_files, out)?;
        let dir = all.cluster_dir();
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| RunError::Io { path: logs.clone(), source: e })?;
        let ids: Vec<(String, PathBuf)> = all
            .jobs
            .iter()
            .map(|j| j.id(model_files).map(|(r, id)| (id.clone(), record_path(&all.out, &r.name, &id))))
            .collect::<Result<_>>()?;

        // Variants an earlier submission still holds in the queue are followed, not resubmitted.
        let history = dir.join("submissions.jsonl");
        let earlier = read_submissions(&history);
        let arrays: Vec<&str> = earlier.iter().map(|s| s.array_job.as_str()).collect();
        let live = queued(&arrays)?;
        let mut in_queue: HashMap<&str, String> = HashMap::new();
        for s in &earlier {
            for (i, v) in s.variants.iter().enumerate() {
                let task = format!("{}_{i}", s.array_job);
                if live.contains_key(&task) {
                    in_queue.insert(v.as_str(), task);
                }
            }
        }
        let mut tracked = Vec::new();
        let mut fresh = Vec::new();
        for (i, (id, record)) in ids.iter().enumerate() {
            match in_queue.get(id.as_str()) {
                Some(task) => {
                    ctx.progress.log(&format!("{}: still queued as job {task}, not submitted again", jobs[i].recipe));
                    tracked.push(Tracked::new(i, task.clone(), record.clone(), &logs));
                }
                None => fresh.push(i),
            }
        }

        let mut ours = Vec::new();
        if !fresh.is_empty() {
            let plan = TaskPlan { jobs: fresh.iter().map(|&i| all.jobs[i].clone()).collect(), ..all.clone() };
            let plan_path = plan.write()?;
            let bin = match &self.options.remote_bin {
                Some(b) => b.clone(),
                None => std::env::current_exe().map_err(|e| RunError::Io { path: "pareto".into(), source: e })?,
            };
            let script = dir.join(format!("sweep-{}.sbatch", plan.key()));
            let text = task_script(&bin, &plan_path);
            pareto_report::write_atomic(&script, &text)?;

            let token = format!("{}-{}", plan.key(), std::process::id());
            let probe_file = dir.join(format!("probe-{token}.json"));
            let mut args = self.options.sbatch_args(true);
            args.extend([
                "--job-name=pareto-probe".into(),
                format!("--output={}", logs.join("probe-%j.log").display()),
                format!("--wrap={}", task_command(&bin, &plan_path, &format!("--probe {token}"))),
            ]);
            let probe_job = sbatch(args)?;

            // The original is evaluated once, after the probe, with a variant's resources; the
            // array waits for it but runs however it ended (a variant computes what is missing).
            let baseline_job = if plan.jobs.iter().any(|j| j.validate) {
                let mut args = self.options.sbatch_args(false);
                args.extend([
                    "--job-name=pareto-baseline".into(),
                    format!("--dependency=afterok:{probe_job}"),
                    "--kill-on-invalid-dep=yes".into(),
                    format!("--output={}", logs.join("baseline-%j.log").display()),
                    format!("--wrap={}", task_command(&bin, &plan_path, "--baseline")),
                ]);
                match sbatch(args) {
                    Ok(id) => Some(id),
                    Err(e) => {
                        self.cancel(std::slice::from_ref(&probe_job));
                        return Err(e);
                    }
                }
            } else {
                None
            };
            let dependency = match &baseline_job {
                Some(b) => format!("--dependency=afterok:{probe_job},afterany:{b}"),
                None => format!("--dependency=afterok:{probe_job}"),
            };

            let mut args = self.options.sbatch_args(false);
            args.extend([
                "--job-name=pareto-sweep".into(),
                format!("--array=0-{}", plan.jobs.len() - 1),
                dependency,
                "--kill-on-invalid-dep=yes".into(),
                format!("--output={}", logs.join("%A_%a.log").display()),
                script.display().to_string(),
            ]);
            let before: Vec<String> = std::iter::once(probe_job.clone()).chain(baseline_job.clone()).collect();
            let array_job = match sbatch(args) {
                Ok(id) => id,
                Err(e) => {
                    self.cancel(&before);
                    return Err(e);
                }
            };
            ctx.progress.log(&format!(
                "submitted {} variant(s) as Slurm array job {array_job} after probe job {probe_job}{}",
                fresh.len(),
                baseline_job.as_ref().map_or(String::new(), |b| format!(
                    " and baseline job {b} (the original evaluated once, for every variant)"
                ))
            ));
            let variants = fresh.iter().map(|&i| ids[i].0.clone()).collect();
            append_submission(
                &history,
                &Submission { array_job: array_job.clone(), probe_job: probe_job.clone(), plan: plan_path, variants },
            )?;
            for (k, &i) in fresh.iter().enumerate() {
                tracked.push(Tracked::new(i, format!("{array_job}_{k}"), ids[i].1.clone(), &logs));
            }
            ours = before.into_iter().chain(std::iter::once(array_job.clone())).collect();
            if !self.options.detach {
                let probe_log = logs.join(format!("probe-{probe_job}.log"));
                if let Err(e) = self.await_probe(&probe_job, &probe_file, &probe_log, ctx) {
                    if e.is_cancelled() {
                        ctx.progress.log(&format!("cancelling Slurm job(s) {}", ours.join(", ")));
                    }
                    self.cancel(&ours);
                    return Err(e);
                }
                ctx.progress.log(&format!("probe job {probe_job}: the nodes see the sweep's folder and inputs"));
            }
        }

        if self.options.detach {
            return Ok(jobs
                .iter()
                .enumerate()
                .map(|(i, _)| {
                    let task = tracked.iter().find(|t| t.job == i).map_or_else(String::new, |t| t.task.clone());
                    Err(RunError::Queued { job: task })
                })
                .collect());
        }
        self.follow(&mut tracked, &ours, ctx)?;
        let mut by_job: BTreeMap<usize, Result<RunRecord>> = BTreeMap::new();
        for t in tracked {
            if let Some(r) = t.result {
                by_job.insert(t.job, r);
            }
        }
        Ok((0..jobs.len()).map(|i| by_job.remove(&i).unwrap_or(Err(pareto_core::Error::Cancelled.into()))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(quote("/opt/pareto/bin/pareto"), "/opt/pareto/bin/pareto");
        assert_eq!(quote("/data/my models/x"), "'/data/my models/x'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn the_task_script_runs_the_element_its_index_names() {
        let s = task_script(Path::new("/usr/bin/pareto"), Path::new("/shared/out/.pareto-cluster/plan-abc.json"));
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(s.contains(
            "exec /usr/bin/pareto --quiet sweep-task /shared/out/.pareto-cluster/plan-abc.json --variant-index \"$SLURM_ARRAY_TASK_ID\""
        ));
        // The probe and baseline jobs (`--wrap`) get the same thread count as the array's tasks.
        let wrap = task_command(Path::new("/usr/bin/pareto"), Path::new("/p.json"), "--baseline");
        assert!(wrap.starts_with("export RAYON_NUM_THREADS=") && !wrap.contains('\n'), "{wrap}");
        assert!(wrap.ends_with("exec /usr/bin/pareto --quiet sweep-task /p.json --baseline"), "{wrap}");
    }

    #[test]
    fn the_probe_asks_for_no_gpu_and_a_short_time() {
        let o = SlurmOptions {
            partition: Some("gpu".into()),
            gres: Some("gpu:1".into()),
            time: Some("02:00:00".into()),
            account: Some("ml".into()),
            mem: Some("32G".into()),
            ..Default::default()
        };
        assert_eq!(o.sbatch_args(true), ["--partition=gpu", "--account=ml", "--time=00:05:00"]);
        assert_eq!(
            o.sbatch_args(false),
            ["--partition=gpu", "--account=ml", "--gres=gpu:1", "--time=02:00:00", "--mem=32G"]
        );
    }

    #[test]
    fn no_sbatch_is_a_named_error() {
        // Looked up on PATH only: a name no system has.
        assert!(matches!(require("sbatch-that-no-cluster-has"), Err(RunError::SchedulerMissing { .. })));
    }
}
