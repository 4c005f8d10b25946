//! The studio's sweep: the open model under several recipes, here or on a Slurm cluster, as a job
//! (progress, the scheduler's per-task states as log lines, cancel), through `pareto_runs::sweep`
//! as `pareto sweep` does; the same records and reports.

use std::sync::Arc;
use std::time::Duration;

use pareto_runs::cluster::on_path;
use pareto_runs::cluster::slurm::{SlurmExecutor, SlurmOptions};
use pareto_runs::{
    Executor, LocalExecutor, SweepOutcome, VariantSpec, model_files, prepare_out, sweep, write_sweep_reports,
};

use crate::dto::*;
use crate::jobs::Sink;
use crate::state::AppState;

fn text(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

/// The `pareto` command-line tool the Slurm tasks run: `$PARETO_CLI`, else beside the studio's
/// executable (the .deb installs both in /usr/bin; a build puts both in target/release), else on
/// PATH. The nodes must see it at the same path (the probe job checks).
fn cli_binary() -> ApiResult<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("PARETO_CLI").filter(|p| !p.is_empty()) {
        return Ok(p.into());
    }
    let exe = std::env::current_exe().ok();
    let beside = exe.iter().flat_map(|e| e.ancestors().skip(1).take(2)).map(|d| d.join("pareto")).find(|p| p.is_file());
    beside.or_else(|| on_path("pareto")).ok_or_else(|| {
        ApiError::new(
            "Slurm tasks run the `pareto` command-line tool, which is neither beside the studio nor on PATH: \
             install it where the nodes see it (cargo install --path crates/cli) or set PARETO_CLI",
        )
    })
}

/// Starts the sweep and returns the job id at once.
pub fn start(state: &Arc<AppState>, req: SweepRequest, sink: Sink) -> ApiResult<u32> {
    let model = state.model()?;
    if req.recipes.is_empty() {
        return Err(ApiError::new("choose at least one recipe for the sweep"));
    }
    if req.validation_windows.is_some_and(|n| (n as usize) < pareto_runs::MIN_VALIDATION_WINDOWS) {
        return Err(ApiError::new(format!(
            "validate on {} or more windows (a standard error needs two), or on all of them",
            pareto_runs::MIN_VALIDATION_WINDOWS
        )));
    }
    let recipes = req.recipes.iter().map(|r| state.access().check_recipe(r)).collect::<ApiResult<Vec<_>>>()?;
    let out = state.access().check(&req.out, "the sweep folder")?;
    let executor: Box<dyn Executor + Send> = match req.executor.as_str() {
        "local" => Box::new(LocalExecutor { parallelism: 1 }),
        "slurm" => Box::new(SlurmExecutor {
            options: SlurmOptions {
                partition: text(&req.partition),
                gres: text(&req.gres),
                time: text(&req.time),
                account: text(&req.account),
                detach: req.detach,
                poll: Duration::from_secs(2),
                remote_bin: Some(cli_binary()?),
                ..SlurmOptions::default()
            },
        }),
        other => return Err(ApiError::new(format!("unknown executor {other:?}: local or slurm"))),
    };
    let template = VariantSpec {
        validate: req.validate,
        validation_windows: req.validation_windows.map(|n| n as usize),
        ..VariantSpec::new(model.root(), String::new(), req.scenario.clone())
    };
    crate::jobs::spawn(state, "sweep", sink, move |ctx| {
        let fail = |e: &dyn std::error::Error| from_std(e).context("the sweep failed");
        let files = model_files(&model).map_err(|e| fail(&e))?;
        prepare_out(&out, &model.source_paths()).map_err(|e| fail(&e))?;
        let jobs: Vec<VariantSpec> =
            recipes.iter().map(|r| VariantSpec { recipe: r.clone(), ..template.clone() }).collect();
        let outcome = sweep(&jobs, &files, &out, executor.as_ref(), ctx).map_err(|e| fail(&e))?;
        Ok(JobEvent::Swept { result: Box::new(view(&out, &jobs, &outcome)?) })
    })
}

/// The outcome as the studio shows it; the reports are written once every variant has ended.
fn view(out: &std::path::Path, jobs: &[VariantSpec], o: &SweepOutcome) -> ApiResult<SweepView> {
    let mut variants = Vec::new();
    for job in jobs {
        let name = pareto_core::Recipe::load(&job.recipe).map_or_else(|_| job.recipe.clone(), |r| r.name);
        let row = |state: &str, detail: String| SweepVariantView { recipe: name.clone(), state: state.into(), detail };
        if let Some((_, e)) = o.failed.iter().find(|(r, _)| *r == job.recipe) {
            variants.push(row("failed", e.clone()));
        } else if let Some((_, task)) = o.queued.iter().find(|(r, _)| *r == job.recipe) {
            variants.push(row("queued", format!("Slurm job {task}")));
        } else if let Some(i) = o.records.iter().position(|r| r.recipe.name == name) {
            let state = if o.resumed.contains(&name) { "resumed" } else { "recorded" };
            variants.push(row(state, o.record_paths[i].display().to_string()));
        }
    }
    let mut v = SweepView {
        out: out.display().to_string(),
        variants,
        recommendation: None,
        report_html: None,
        report_md: None,
    };
    if o.queued.is_empty() && !o.records.is_empty() {
        let cmp = pareto_report::compare_with(&o.records, None, &pareto_report::Constraint::default())
            .map_err(|e| from_std(&e))?;
        let (html, md) = write_sweep_reports(out, &o.records, &cmp).map_err(|e| from_std(&e))?;
        v.recommendation = Some(cmp.recommendation.headline.clone());
        v.report_html = Some(html.display().to_string());
        v.report_md = Some(md.display().to_string());
    }
    Ok(v)
}
