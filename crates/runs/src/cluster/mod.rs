//! Sweeps on a cluster scheduler the user already runs. The submitter writes a [`TaskPlan`]
//! into the shared output folder; every task — a Slurm array element, a Kubernetes Indexed Job
//! pod — runs `pareto sweep-task PLAN --variant-index N` and writes that variant's record there,
//! atomically, as a local sweep does. Resuming is the local rule: a variant whose record is
//! present is done, any other is submitted again.

pub mod k8s;
mod plan;
pub mod slurm;

pub use plan::{CLUSTER_DIR, TaskPlan, probe, run_baselines, run_task};

/// The first file called `name` in a folder of `PATH` (what a shell would run).
pub fn on_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}
