//! Sweeps on a cluster scheduler the user already runs. The submitter writes a [`TaskPlan`]
//! into the shared output folder; every task — a Slurm array element, a Kubernetes Indexed Job
//! pod — runs `pareto sweep-task PLAN --variant-index N` and writes that variant's record there,
//! atomically, as a local sweep does. Resuming is the local rule: a variant whose record is
//! present is done, any other is submitted again.

pub mod k8s;
mod plan;
pub mod slurm;

pub use plan::{CLUSTER_DIR, TaskPlan, probe, run_task};
