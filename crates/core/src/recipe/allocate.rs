//! Mixed precision under a budget: which format each group of tensors gets so that the predicted
//! loss — the sum of the groups' measured sensitivities (KL divergence when only that group is
//! compressed) — is least while the bytes stay within the budget. A multiple-choice knapsack,
//! solved by dynamic programming over a grid of byte costs; one pass gives the whole predicted
//! frontier (budget → least predicted loss) as well as the point asked for.
//!
//! The grid step is the greatest common divisor of the byte differences between choices (block
//! formats make them multiples of a few bytes), so the solution is exact; only when that would
//! take more than [`MAX_STEPS`] steps is the step coarser, costs are rounded *up* (an answer never
//! exceeds its budget), and a final pass spends the budget the rounding left on the best single
//! upgrades.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::recipe::{Action, QuantizeSpec, Recipe, Rule};

/// The most steps of the byte grid across the allocation's span (bounds the solver's memory:
/// groups × steps × 2 bytes).
const MAX_STEPS: u64 = 1 << 18;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// One way to store a group: a format, the group's bytes in it, and its predicted loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub format: String,
    pub bytes: u64,
    pub loss: f64,
}

/// Tensors that must share one format (q/k/v, gate/up for engines that fuse them), or one tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Source tensor names (`model.layers.0.self_attn.q_proj.weight`).
    pub tensors: Vec<String>,
    pub choices: Vec<Choice>,
}

/// A solved budget point: the choice index of each group, with the total bytes and loss.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Allocation {
    pub picks: Vec<usize>,
    /// Bytes of the allocated groups (add the tensors outside them for the model's size).
    pub bytes: u64,
    pub predicted_loss: f64,
}

/// The solved table for a set of groups: query any budget, or the whole frontier.
pub struct Knapsack<'a> {
    groups: &'a [Group],
    /// Bytes of the cheapest choice of every group.
    floor: u64,
    /// Bytes per grid step.
    unit: u64,
    steps: usize,
    /// The choice each group takes at each step count (for walking back).
    pick: Vec<Vec<u16>>,
}

impl<'a> Knapsack<'a> {
    pub fn new(groups: &'a [Group]) -> Result<Self> {
        if let Some(g) = groups.iter().find(|g| g.choices.is_empty() || g.choices.len() > usize::from(u16::MAX)) {
            return Err(Error::Allocation(format!("{} has no format to choose from", g.tensors.join(", "))));
        }
        if let Some(g) = groups.iter().find(|g| g.choices.iter().any(|c| !c.loss.is_finite())) {
            return Err(Error::Allocation(format!("{} has a non-finite predicted loss", g.tensors.join(", "))));
        }
        let min = |g: &Group| g.choices.iter().map(|c| c.bytes).min().unwrap_or(0);
        let max = |g: &Group| g.choices.iter().map(|c| c.bytes).max().unwrap_or(0);
        let floor: u64 = groups.iter().map(min).sum();
        let span: u64 = groups.iter().map(|g| max(g) - min(g)).sum();
        let common = groups
            .iter()
            .flat_map(|g| {
                let lo = min(g);
                g.choices.iter().map(move |c| c.bytes - lo)
            })
            .fold(0, gcd);
        let unit = common.max(span.div_ceil(MAX_STEPS)).max(1);
        let steps = span.div_ceil(unit) as usize;
        // best[c]: least loss of the groups so far within c steps (so it never rises with c).
        let mut best = vec![0.0f64; steps + 1];
        let mut pick = Vec::with_capacity(groups.len());
        for g in groups {
            let lo = min(g);
            let cost: Vec<usize> = g.choices.iter().map(|c| (c.bytes - lo).div_ceil(unit) as usize).collect();
            let mut next = vec![f64::INFINITY; steps + 1];
            let mut chosen = vec![0u16; steps + 1];
            for (c, slot) in next.iter_mut().enumerate() {
                for (k, (choice, &w)) in g.choices.iter().zip(&cost).enumerate() {
                    if w <= c {
                        let v = best[c - w] + choice.loss;
                        if v < *slot {
                            *slot = v;
                            chosen[c] = k as u16;
                        }
                    }
                }
            }
            best = next;
            pick.push(chosen);
        }
        Ok(Knapsack { groups, floor, unit, steps, pick })
    }

    /// The fewest bytes any allocation takes (every group at its cheapest choice).
    pub fn min_bytes(&self) -> u64 {
        self.floor
    }

    /// The least predicted loss within `budget` bytes for the groups.
    pub fn solve(&self, budget: u64) -> Result<Allocation> {
        if budget < self.floor {
            return Err(Error::BudgetInfeasible { budget, minimum: self.floor });
        }
        let c = (((budget - self.floor) / self.unit) as usize).min(self.steps);
        let mut a = self.walk_back(c);
        self.spend_rest(&mut a, budget);
        Ok(a)
    }

    /// Spends what grid rounding left of `budget` on the single upgrades that lower the loss most.
    fn spend_rest(&self, a: &mut Allocation, budget: u64) {
        loop {
            let room = budget - a.bytes;
            let mut best: Option<(usize, usize, f64)> = None;
            for (gi, g) in self.groups.iter().enumerate() {
                let now = &g.choices[a.picks[gi]];
                for (k, c) in g.choices.iter().enumerate() {
                    let gain = now.loss - c.loss;
                    if gain > 0.0 && c.bytes.saturating_sub(now.bytes) <= room && best.is_none_or(|b| gain > b.2) {
                        best = Some((gi, k, gain));
                    }
                }
            }
            let Some((gi, k, gain)) = best else { return };
            let g = &self.groups[gi];
            a.bytes = a.bytes - g.choices[a.picks[gi]].bytes + g.choices[k].bytes;
            a.predicted_loss -= gain;
            a.picks[gi] = k;
        }
    }

    fn walk_back(&self, mut c: usize) -> Allocation {
        let mut picks = vec![0; self.groups.len()];
        for (gi, g) in self.groups.iter().enumerate().rev() {
            let k = usize::from(self.pick[gi][c]);
            picks[gi] = k;
            let lo = g.choices.iter().map(|x| x.bytes).min().unwrap_or(0);
            c -= (g.choices[k].bytes - lo).div_ceil(self.unit) as usize;
        }
        let bytes = self.groups.iter().zip(&picks).map(|(g, &k)| g.choices[k].bytes).sum();
        let predicted_loss = self.groups.iter().zip(&picks).map(|(g, &k)| g.choices[k].loss).sum();
        Allocation { picks, bytes, predicted_loss }
    }

    /// The predicted frontier at `points` budgets spread evenly from the cheapest to the dearest
    /// allocation, each solved exactly; points with the same allocation are merged.
    pub fn frontier(&self, points: usize) -> Vec<Allocation> {
        let mut out: Vec<Allocation> = Vec::new();
        let n = points.max(2);
        for i in 0..n {
            let c = self.steps * i / (n - 1);
            let a = self.walk_back(c);
            if out.last().is_none_or(|last| last.picks != a.picks) {
                out.push(a);
            }
        }
        out
    }
}

/// `base` with the allocation's formats put first (the first matching rule wins), one rule per
/// format, so every tensor of the groups gets exactly the format the solver chose.
pub fn allocated_recipe(base: &Recipe, groups: &[Group], alloc: &Allocation, name: &str, description: &str) -> Recipe {
    let mut by_format: Vec<(String, Vec<String>)> = Vec::new();
    for (g, &k) in groups.iter().zip(&alloc.picks) {
        let format = &g.choices[k].format;
        match by_format.iter_mut().find(|(f, _)| f == format) {
            Some((_, names)) => names.extend(g.tensors.iter().cloned()),
            None => by_format.push((format.clone(), g.tensors.clone())),
        }
    }
    by_format.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rules: Vec<Rule> = by_format
        .into_iter()
        .map(|(format, targets)| Rule {
            targets,
            layers: None,
            with_imatrix: false,
            action: Action { prune: None, quantize: Some(QuantizeSpec { format, algorithm: Default::default() }) },
        })
        .collect();
    rules.extend(base.rules.iter().cloned());
    Recipe { name: name.to_string(), description: description.to_string(), rules, ..base.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, choices: &[(&str, u64, f64)]) -> Group {
        Group {
            tensors: vec![name.to_string()],
            choices: choices.iter().map(|&(f, b, l)| Choice { format: f.into(), bytes: b, loss: l }).collect(),
        }
    }

    /// Every combination, for checking the solver on small cases.
    fn brute_force(groups: &[Group], budget: u64) -> Option<f64> {
        let mut best: Option<f64> = None;
        let mut idx = vec![0usize; groups.len()];
        loop {
            let bytes: u64 = groups.iter().zip(&idx).map(|(g, &k)| g.choices[k].bytes).sum();
            let loss: f64 = groups.iter().zip(&idx).map(|(g, &k)| g.choices[k].loss).sum();
            if bytes <= budget && best.is_none_or(|b| loss < b) {
                best = Some(loss);
            }
            let mut i = 0;
            loop {
                if i == groups.len() {
                    return best;
                }
                idx[i] += 1;
                if idx[i] < groups[i].choices.len() {
                    break;
                }
                idx[i] = 0;
                i += 1;
            }
        }
    }

    #[test]
    fn exact_on_small_problems_and_never_over_budget() {
        // Deterministic pseudo-random instances (an LCG, no dependency).
        let mut seed = 12345u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            seed >> 33
        };
        for _ in 0..40 {
            let groups: Vec<Group> = (0..5)
                .map(|i| {
                    let mut choices: Vec<(String, u64, f64)> =
                        (0..3).map(|k| (format!("f{k}"), 50 + next() % 200, (next() % 1000) as f64 / 100.0)).collect();
                    choices.sort_by_key(|c| c.1);
                    Group {
                        tensors: vec![format!("t{i}")],
                        choices: choices.into_iter().map(|(f, b, l)| Choice { format: f, bytes: b, loss: l }).collect(),
                    }
                })
                .collect();
            let ks = Knapsack::new(&groups).unwrap();
            for budget in [ks.min_bytes(), ks.min_bytes() + 100, ks.min_bytes() + 300, 5000] {
                let a = ks.solve(budget).unwrap();
                assert!(a.bytes <= budget);
                // The grid step divides every byte cost here, so the answer is exact.
                let exact = brute_force(&groups, budget).unwrap();
                assert!((a.predicted_loss - exact).abs() < 1e-9, "{} vs {exact}", a.predicted_loss);
            }
        }
    }

    #[test]
    fn infeasible_budget_is_named_with_the_minimum() {
        let groups = vec![group("a", &[("q4", 100, 1.0), ("q8", 200, 0.1)]), group("b", &[("q4", 50, 2.0)])];
        let ks = Knapsack::new(&groups).unwrap();
        let e = ks.solve(149).unwrap_err().to_string();
        assert!(e.contains("149") && e.contains("150"), "{e}");
        assert!(Knapsack::new(&[group("c", &[])]).is_err());
    }

    #[test]
    fn frontier_falls_as_the_budget_grows_and_the_recipe_puts_choices_first() {
        let groups = vec![
            group("a", &[("q4_0", 100, 1.0), ("q6_k", 150, 0.3), ("q8_0", 200, 0.1)]),
            group("b", &[("q4_0", 100, 5.0), ("q6_k", 150, 1.0), ("q8_0", 200, 0.2)]),
        ];
        let ks = Knapsack::new(&groups).unwrap();
        let f = ks.frontier(16);
        assert!(f.windows(2).all(|w| w[1].bytes >= w[0].bytes && w[1].predicted_loss <= w[0].predicted_loss));
        assert_eq!(f.first().unwrap().picks, vec![0, 0]);
        assert_eq!(f.last().unwrap().picks, vec![2, 2]);
        // At 250 bytes the more sensitive group gets the bits.
        let a = ks.solve(250).unwrap();
        assert_eq!(a.picks, vec![0, 1]);
        let base = Recipe::from_toml(
            "name = \"base\"\n[default.quantize]\nformat = \"q4_0\"\n[[rules]]\ntargets = [\"a\"]\nquantize = { format = \"q8_0\" }\n",
            "test",
        )
        .unwrap();
        let r = allocated_recipe(&base, &groups, &a, "auto", "");
        assert_eq!(r.rules.len(), 3);
        assert_eq!(r.rules[0].targets, vec!["a"]);
        assert_eq!(r.rules[0].action.quantize.as_ref().unwrap().format, "q4_0");
        assert_eq!(r.rules[1].targets, vec!["b"]);
        assert_eq!(r.rules[2], base.rules[0]);
    }
}
