//! Budgeted allocation in the studio: the sensitivity scan as a job (progress, cancel) kept in the
//! session, and budgets solved against it at once, through `pareto_runs::allocate` as the CLI does.

use std::sync::Arc;

use pareto_core::Recipe;
use pareto_core::recipe::allocate::Knapsack;
use pareto_projection::{Catalog, Scenario};
use pareto_runs::allocate::{Allocated, Budget, Problem, Target, predicted};
use pareto_runs::{Scan, ScanSpec};

use crate::dto::*;
use crate::jobs::Sink;
use crate::state::AppState;

/// Starts scanning the open model and returns the job id at once; the scan is kept for budgets.
pub fn start_scan(state: &Arc<AppState>, req: ScanRequest, sink: Sink) -> ApiResult<u32> {
    let model = state.model()?;
    if req.samples.trim().is_empty() {
        return Err(ApiError::new("choose a plain-text sample file to measure on"));
    }
    let spec = ScanSpec {
        windows: req.windows as usize,
        window: req.window as usize,
        skip_chars: req.skip_chars as usize,
        formats: req.formats.clone(),
        predict_from: req.predict_from.clone().filter(|f| !f.trim().is_empty()),
        ..ScanSpec::new(state.access().check(&req.samples, "the sample file")?)
    };
    let state_after = Arc::clone(state);
    crate::jobs::spawn(state, "scan", sink, move |ctx| {
        let s = pareto_runs::scan(model.root(), &spec, ctx)
            .map_err(|e| from_std(&e).context("the sensitivity scan failed"))?;
        let view = view(&s);
        state_after.set_scan(Arc::new(s));
        Ok(JobEvent::Scanned { result: Box::new(view) })
    })
}

/// The scan's grid (`pareto_runs::scan::sensitivity`), as the report draws it.
pub fn view(s: &Scan) -> ScanView {
    pareto_runs::scan::sensitivity(s)
}

fn point(a: &Allocated) -> AllocPoint {
    AllocPoint { bytes: a.bytes, bpw: a.bpw, predicted_kl: Some(a.predicted_kl) }
}

/// The least predicted KL within the budget, the predicted frontier, and where the editor's recipe
/// sits, from the session's scan.
pub fn allocate(state: &AppState, q: &BudgetQuery) -> ApiResult<AllocationView> {
    let model = state.model()?;
    let scan = state.scan()?;
    let base = Recipe::load(&state.access().check_recipe(&q.base)?)?;
    let problem = Problem::new(&scan, &model, &base, q.fuse).map_err(|e| from_std(&e))?;
    let need = |what: &str| ApiError::new(format!("the {what} budget needs a value"));
    let ks = Knapsack::new(&problem.groups)?;
    // Serving targets are met on each candidate's projection (the scenario's device unless one is chosen).
    let target = match q.kind.as_str() {
        "usd" => Some(Target::UsdMonth(q.value.ok_or_else(|| need("$/month"))?)),
        "tok_s" => Some(Target::DecodeTokS(q.value.ok_or_else(|| need("decode speed"))?)),
        _ => None,
    };
    if let Some(target) = target {
        let scenario = Scenario::load(q.scenario.as_deref().unwrap_or("high-volume-api")).map_err(|e| from_std(&e))?;
        let catalog = Catalog::builtin().map_err(|e| from_std(&e))?;
        let (chosen, value) = problem
            .solve_for_target(&ks, &scan, &model, target, &catalog, &scenario, q.device.as_deref())
            .map_err(|e| from_std(&e))?;
        let mut view = allocation_view(&model, &scan, &problem, &ks, q, chosen.bytes, &chosen)?;
        view.notes.insert(
            0,
            format!("target {}: this allocation projects {}", target.show(target.limit()), target.show(value)),
        );
        return Ok(view);
    }
    let budget = match q.kind.as_str() {
        "bpw" => Budget::Bpw(q.value.ok_or_else(|| need("bits-per-weight"))?),
        "mib" => Budget::Bytes((q.value.ok_or_else(|| need("size"))? * 1024.0 * 1024.0) as u64),
        "like" => Budget::Like(state.access().check_recipe(q.like.as_deref().ok_or_else(|| need("preset"))?)?),
        "fits" => Budget::Fits {
            device: q.device.clone().ok_or_else(|| need("device"))?,
            scenario: q.scenario.clone().unwrap_or_else(|| "high-volume-api".into()),
            concurrent: None,
        },
        other => {
            return Err(ApiError::new(format!("unknown budget kind {other:?} (bpw, mib, like, fits, usd, tok_s)")));
        }
    };
    let budget_bytes = problem.budget_bytes(&model, &budget).map_err(|e| from_std(&e))?;
    let chosen = problem.solve(&ks, budget_bytes, &scan).map_err(|e| from_std(&e))?;
    allocation_view(&model, &scan, &problem, &ks, q, budget_bytes, &chosen)
}

/// The chosen point, the predicted frontier and where the editor's recipe sits on it.
fn allocation_view(
    model: &pareto_core::Model,
    scan: &pareto_runs::Scan,
    problem: &Problem,
    ks: &Knapsack<'_>,
    q: &BudgetQuery,
    budget_bytes: u64,
    chosen: &Allocated,
) -> ApiResult<AllocationView> {
    let frontier = problem.frontier(ks, 24, scan).iter().map(point).collect();
    let mut notes = scan.notes.clone();
    let current = match q.current_toml.as_deref().map(|t| Recipe::from_toml(t, "the recipe editor")) {
        Some(Ok(r)) => match r.resolve(model) {
            Ok(plan) => {
                let (bytes, kl) = predicted(scan, &plan);
                if kl.is_none() {
                    notes.push("the editor's recipe uses formats or methods the scan did not measure: its predicted KL is unknown".into());
                }
                Some(AllocPoint { bytes, bpw: problem.bpw(bytes), predicted_kl: kl })
            }
            Err(_) => None,
        },
        _ => None,
    };
    Ok(AllocationView {
        budget_bytes,
        recipe_toml: chosen.recipe.to_toml()?,
        chosen: point(chosen),
        frontier,
        current,
        notes,
    })
}
