//! A scan turned into recipes: the allocation problem of a model under a base recipe, a budget in
//! the user's terms, and the recipe for any budget or for points along the predicted frontier.
//! The CLI (`pareto allocate`, `pareto sweep --auto`) and the studio share it.

use std::path::Path;

use pareto_core::recipe::allocate::{Allocation, Group, Knapsack, allocated_recipe};
use pareto_core::{Model, Recipe};
use pareto_projection::{Catalog, ModelShape, Scenario, weight_budget};
use serde::Serialize;

use crate::error::{Result, RunError};
use crate::scan::{Scan, groups, model_key};

/// How the description of every allocated recipe begins (also how an earlier one is recognised).
pub const MARK: &str = "Allocated by pareto allocate";

/// The budget as the user states it.
#[derive(Debug, Clone, PartialEq)]
pub enum Budget {
    Bytes(u64),
    /// Bits per weight over all of the model's parameters.
    Bpw(f64),
    /// The size a recipe or preset gives the model.
    Like(String),
    /// What fits on a catalog device beside the scenario's serving memory.
    Fits {
        device: String,
        scenario: String,
        concurrent: Option<u32>,
    },
}

/// A serving target an allocation must meet, checked on its projection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Projected total $/month at most this.
    UsdMonth(f64),
    /// Projected batch-1 decode at least this many tokens per second.
    DecodeTokS(f64),
}

impl Target {
    fn met(self, v: f64) -> bool {
        match self {
            Target::UsdMonth(max) => v <= max,
            Target::DecodeTokS(min) => v >= min,
        }
    }

    /// The target's number (dollars or tokens per second).
    pub fn limit(self) -> f64 {
        match self {
            Target::UsdMonth(v) | Target::DecodeTokS(v) => v,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Target::UsdMonth(_) => "monthly cost",
            Target::DecodeTokS(_) => "batch-1 decode speed",
        }
    }

    pub fn show(self, v: f64) -> String {
        match self {
            Target::UsdMonth(_) => format!("${v:.0}/month"),
            Target::DecodeTokS(_) => format!("{v:.1} tok/s"),
        }
    }
}

/// The model's allocation problem: the groups the solver decides, and the bytes the base recipe
/// fixes for every other tensor (embeddings when not scanned, norms, anything it ignores).
pub struct Problem {
    pub base: Recipe,
    pub groups: Vec<Group>,
    pub fixed: u64,
    pub params: u64,
    pub tensors: usize,
    pub fused: bool,
}

/// A solved point as a recipe, with its numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Allocated {
    pub bytes: u64,
    pub bpw: f64,
    pub predicted_kl: f64,
    #[serde(skip)]
    pub recipe: Recipe,
}

/// Reads a saved scan and checks it was measured on this model's weights.
pub fn load_scan(path: &Path, model: &Model) -> Result<Scan> {
    let s = crate::scan::read(path)?;
    if s.model_key != model_key(model)? {
        return Err(RunError::Scan(format!(
            "{} was measured on other weights than {}: scan this model again",
            path.display(),
            model.root().display()
        )));
    }
    Ok(s)
}

impl Problem {
    /// The tensors `base` compresses that the scan measured become the solver's groups (q/k/v and
    /// gate/up on one format when `fuse`); every other tensor keeps what `base` plans for it.
    pub fn new(scan: &Scan, model: &Model, base: &Recipe, fuse: bool) -> Result<Problem> {
        let plan = base.resolve(model)?;
        let scanned: Vec<&str> = scan.tensors.iter().map(|t| t.name.as_str()).collect();
        let (mut names, mut fixed) = (Vec::new(), 0u64);
        for t in &plan.tensors {
            if t.action.format.is_some() && !t.action.drop && scanned.contains(&t.source_name.as_str()) {
                names.push(t.source_name.clone());
            } else {
                fixed += t.planned_bytes;
            }
        }
        Ok(Problem {
            base: base.clone(),
            groups: groups(scan, &names, fuse),
            fixed,
            params: plan.totals.params_before,
            tensors: names.len(),
            fused: fuse,
        })
    }

    pub fn bpw(&self, bytes: u64) -> f64 {
        bytes as f64 * 8.0 / self.params.max(1) as f64
    }

    /// The budget in total stored bytes of the model.
    pub fn budget_bytes(&self, model: &Model, budget: &Budget) -> Result<u64> {
        Ok(match budget {
            Budget::Bytes(b) => *b,
            Budget::Bpw(bits) => (bits * self.params as f64 / 8.0).floor() as u64,
            Budget::Like(r) => Recipe::load(r)?.resolve(model)?.totals.planned_bytes,
            Budget::Fits { device, scenario, concurrent } => {
                let catalog = Catalog::builtin()?;
                let dev = catalog.get(device)?;
                let mut sc = Scenario::load(scenario)?;
                if let Some(n) = concurrent {
                    sc.batching.max_batch = *n;
                }
                let shape = model.config().map(|c| ModelShape::from_hf_config(&c.raw)).transpose()?;
                weight_budget(shape.as_ref(), dev, &sc).map(|b| b as u64).ok_or_else(|| {
                    RunError::Scan(format!(
                        "{} cannot hold even the KV cache for {} sequences of {} tokens with activations and runtime overhead: choose a larger device or fewer concurrent sequences",
                        dev.name,
                        sc.batching.max_batch,
                        sc.input_tokens + sc.output_tokens
                    ))
                })?
            }
        })
    }

    /// The least predicted KL within `budget` total bytes, as a recipe.
    pub fn solve(&self, ks: &Knapsack<'_>, budget: u64, scan: &Scan) -> Result<Allocated> {
        let Some(for_groups) = budget.checked_sub(self.fixed) else {
            return Err(RunError::Scan(format!(
                "the budget of {budget} bytes is below the {} bytes the base recipe's other tensors take alone (norms, unscanned tensors): raise it or choose a smaller base",
                self.fixed
            )));
        };
        let alloc = ks.solve(for_groups).map_err(|e| match e {
            pareto_core::Error::BudgetInfeasible { minimum, .. } => RunError::Scan(format!(
                "the budget of {budget} bytes is below the smallest allocation, {} bytes ({} fixed by the base recipe + {minimum} with every scanned tensor at its cheapest candidate): raise it or add a smaller format",
                self.fixed + minimum,
                self.fixed
            )),
            e => e.into(),
        })?;
        Ok(self.allocated(&alloc, Some(budget), scan))
    }

    /// The most accurate allocation whose projected serving on `device` under `scenario` meets
    /// `target`, and the projected value that decided it. Projected cost grows and decode speed
    /// falls with the stored bytes, so the largest byte budget that meets the target is found by
    /// bisection over the solver's budgets (each candidate recipe planned and projected as
    /// `pareto project` would).
    #[allow(clippy::too_many_arguments)]
    pub fn solve_for_target(
        &self,
        ks: &Knapsack<'_>,
        scan: &Scan,
        model: &Model,
        target: Target,
        catalog: &Catalog,
        scenario: &Scenario,
        device: Option<&str>,
    ) -> Result<(Allocated, f64)> {
        let value = |a: &Allocated| -> Result<f64> {
            let plan = a.recipe.resolve(model)?;
            let p = pareto_core::plan_projection::project_plan(model, &plan, catalog, scenario, device, true)?;
            let side = p.compressed.as_ref().unwrap_or(&p.original);
            let got = match target {
                Target::UsdMonth(_) => side.cost.as_ref().map(|c| c.total_usd_month.value),
                Target::DecodeTokS(_) => side.latency.decode_tok_s_batch1.as_ref().map(|q| q.value),
            };
            got.ok_or_else(|| {
                RunError::Scan(format!(
                    "the projection on {} gives no {} for this model: {}",
                    p.device.name,
                    target.what(),
                    p.unknowns.join("; ")
                ))
            })
        };
        let at = |bytes: u64| -> Result<(Allocated, f64)> {
            let a = self.solve(ks, bytes, scan)?;
            let v = value(&a)?;
            Ok((a, v))
        };
        let top: u64 = self.groups.iter().map(|g| g.choices.iter().map(|c| c.bytes).max().unwrap_or(0)).sum();
        let (mut lo, mut hi) = (self.fixed + ks.min_bytes(), self.fixed + top);
        let cheapest = at(lo)?;
        if !target.met(cheapest.1) {
            return Err(RunError::Scan(format!(
                "even the smallest allocation ({} bytes, {:.2} bits/weight) projects {} on this device and traffic, short of the target {}: choose another device, scenario or a smaller base",
                cheapest.0.bytes,
                cheapest.0.bpw,
                target.show(cheapest.1),
                target.show(target.limit())
            )));
        }
        let largest = at(hi)?;
        if target.met(largest.1) {
            return Ok(largest);
        }
        let mut best = cheapest;
        // 40 halvings take any byte range down to one byte.
        for _ in 0..40 {
            if hi - lo <= 1 {
                break;
            }
            let mid = lo + (hi - lo) / 2;
            let point = at(mid)?;
            if target.met(point.1) {
                lo = mid;
                best = point;
            } else {
                hi = mid;
            }
        }
        Ok(best)
    }

    /// `points` allocations along the predicted frontier, cheapest first, each as a recipe.
    pub fn frontier(&self, ks: &Knapsack<'_>, points: usize, scan: &Scan) -> Vec<Allocated> {
        ks.frontier(points).iter().map(|a| self.allocated(a, None, scan)).collect()
    }

    fn allocated(&self, alloc: &Allocation, budget: Option<u64>, scan: &Scan) -> Allocated {
        let bytes = self.fixed + alloc.bytes;
        let within = budget.map_or_else(String::new, |b| format!(" within {b} bytes ({:.2} bits/weight)", self.bpw(b)));
        let description = format!(
            "{MARK}{within}: {} tensors in {} groups{}, predicted KL {:.5} nats/token (sum of single-tensor KLs measured on {} tokens of {}); other tensors as {}.",
            self.tensors,
            self.groups.len(),
            if self.fused { " (q/k/v and gate/up kept on one format)" } else { "" },
            alloc.predicted_loss,
            scan.tokens,
            scan.spec.samples.display(),
            self.base.name
        );
        let name = format!("auto-{:.2}bpw", self.bpw(bytes));
        Allocated {
            bytes,
            bpw: self.bpw(bytes),
            predicted_kl: alloc.predicted_loss,
            recipe: allocated_recipe(&self.base, &self.groups, alloc, &name, &description),
        }
    }
}

/// Whether `path` holds a recipe `pareto allocate` wrote (what `--force` may replace).
pub fn is_allocated_recipe(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| Recipe::from_toml(&t, "").ok())
        .is_some_and(|r| r.description.starts_with(MARK))
}

/// The scan's prediction for a plan: bytes and the sum of its scanned tensors' single-tensor KLs.
/// The KL is `None` when a scanned tensor gets a format the scan did not measure (say, a pruned or
/// GPTQ-calibrated tensor), since nothing predicts it then.
pub fn predicted(scan: &Scan, plan: &pareto_core::Plan) -> (u64, Option<f64>) {
    let mut kl = Some(0.0);
    for t in &scan.tensors {
        let Some(pt) = plan.get(&t.name) else { continue };
        let contribution = match pt.action.format {
            _ if pt.action.prune.is_some() || !pt.action.algorithm.is_rtn() => None,
            None => Some(0.0),
            Some(f) => t.candidates.iter().find(|c| c.format == f).map(|c| c.kl),
        };
        kl = kl.zip(contribution).map(|(a, b)| a + b);
    }
    (plan.totals.planned_bytes, kl)
}
