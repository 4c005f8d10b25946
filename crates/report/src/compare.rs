//! N-way comparison: the summary rows, the accuracy-vs-cost frontier and a recommendation with
//! its reasons. Missing numbers stay `None` all the way to the page ("not measured").

use serde::Serialize;

use crate::error::{ReportError, Result};
use crate::record::{Metric, RunRecord};

/// Largest relative loss of the primary metric a recommendation accepts without a warning.
pub const ACCEPTABLE_LOSS: f64 = 0.01;

/// The same budget for KL divergence, whose original is 0 so a relative change means nothing:
/// 0.01 nats/token is about what a 1 % perplexity rise costs (Δ mean NLL = ln 1.01 ≈ 0.00995).
pub const ACCEPTABLE_KL: f64 = 0.01;

/// The accuracy axis when nothing was measured: parameter-weighted relative weight error. It is a
/// proxy that does not predict task accuracy, so it is offered by name and never mixed with
/// measured metrics, and no recommendation is made on it.
pub const WEIGHT_ERROR_PROXY: &str = "weight error (proxy)";

/// `value ± error` with as many decimals as show the error's two leading digits (4 to 8), so a
/// small KL reads "+0.00030 ± 0.00004" rather than "+0.0003 ± 0.0000"; the value alone to 4
/// decimals when there is no error.
pub fn with_error(value: f64, stderr: Option<f64>, signed: bool) -> String {
    let e = stderr.filter(|e| *e > 0.0 && e.is_finite());
    let decimals = e.map_or(4, |e| ((-e.log10()).floor() as i64 + 2).clamp(4, 8) as usize);
    let v = if signed { format!("{value:+.decimals$}") } else { format!("{value:.decimals$}") };
    match e {
        Some(e) => format!("{v} ± {e:.decimals$}"),
        None => v,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantRow {
    pub name: String,
    pub planned_bytes: u64,
    pub size_ratio: f64,
    pub metric: Option<String>,
    pub metric_unit: Option<String>,
    pub metric_original: Option<f64>,
    pub metric_value: Option<f64>,
    /// Standard error of `metric_value`, where the validation gave one.
    pub metric_stderr: Option<f64>,
    /// Change of the chosen metric, signed so that negative is worse: relative to the original
    /// when the original is non-zero, else absolute (KL divergence starts at 0).
    pub metric_change: Option<f64>,
    pub change_is_relative: bool,
    pub usd_month: Option<f64>,
    pub usd_per_1m_requests: Option<f64>,
    pub decode_tok_s_batch1: Option<f64>,
    pub fits: Option<bool>,
    pub dominated: bool,
    pub on_frontier: bool,
}

impl VariantRow {
    /// The primary metric's relative change as a reader expects it: signed as the metric itself
    /// moved (perplexity 4.574 → 4.997 is +9.25%), with the direction in words, since for some
    /// metrics up is better and for others worse. Every report shows changes through this.
    pub fn change_text(&self) -> Option<String> {
        let (o, c, quality) = (self.metric_original?, self.metric_value?, self.metric_change?);
        let word = |shown: f64, zero: f64| {
            if shown.abs() < zero {
                "unchanged"
            } else if quality > 0.0 {
                "better"
            } else {
                "worse"
            }
        };
        if self.change_is_relative {
            let moved = (c - o) / o.abs() * 100.0;
            let se = self.metric_stderr.map_or(String::new(), |e| format!(" ± {:.2}%", e / o.abs() * 100.0));
            Some(format!("{moved:+.2}%{se} ({})", word(moved, 0.005)))
        } else {
            let unit = self.metric_unit.as_deref().map_or(String::new(), |u| format!(" {u}"));
            Some(format!("{}{unit} ({})", with_error(c - o, self.metric_stderr, true), word(c - o, 5e-5)))
        }
    }

    /// The chosen metric's value, with its standard error where the validation gave one.
    pub fn value_text(&self) -> Option<String> {
        Some(with_error(self.metric_value?, self.metric_stderr, false))
    }

    /// The loss budget of this row's metric: the reviewer's `max_loss` (a fraction for relative
    /// changes, the metric's unit for absolute ones) or the default.
    fn budget(&self, max_loss: Option<f64>) -> Option<f64> {
        if self.change_is_relative {
            return Some(max_loss.unwrap_or(ACCEPTABLE_LOSS));
        }
        let kl = self.metric.as_deref().is_some_and(|m| m.contains("KL"));
        max_loss.or(kl.then_some(ACCEPTABLE_KL))
    }

    /// Whether the change is within the loss budget; `None` when no budget applies (a proxy, or
    /// an absolute change of a metric other than KL divergence with no `max_loss`).
    fn within(&self, max_loss: Option<f64>) -> Option<bool> {
        Some(self.metric_change? >= -self.budget(max_loss)?)
    }

    fn budget_text(&self, max_loss: Option<f64>) -> String {
        match self.budget(max_loss) {
            Some(b) if self.change_is_relative => format!("{}%", b * 100.0),
            Some(b) => format!("{b} {}", self.metric_unit.as_deref().unwrap_or("")),
            None => "no".into(),
        }
    }
}

/// What the reviewer states the recommendation must meet. With a cost or size limit the pick is
/// the most accurate frontier variant within it; without one, the cheapest within the loss budget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Constraint {
    /// Largest loss accepted: a fraction (0.02 = 2 %) for relative changes, the metric's unit for
    /// absolute ones (KL divergence). Default: 1 % / 0.01 nats/token.
    pub max_loss: Option<f64>,
    /// Most projected $/month.
    pub max_usd_month: Option<f64>,
    /// Most stored weight bytes.
    pub max_bytes: Option<u64>,
}

impl Constraint {
    fn limits_cost(&self) -> bool {
        self.max_usd_month.is_some() || self.max_bytes.is_some()
    }

    fn admits(&self, r: &VariantRow) -> bool {
        self.max_usd_month.is_none_or(|m| r.usd_month.is_some_and(|u| u <= m))
            && self.max_bytes.is_none_or(|m| r.planned_bytes <= m)
    }

    fn text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = self.max_usd_month {
            parts.push(format!("${m:.0}/month"));
        }
        if let Some(b) = self.max_bytes {
            parts.push(format!("{b} bytes of weights"));
        }
        parts.join(" and ")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub pick: Option<usize>,
    pub headline: String,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Shown as a banner: records of different models, missing measurements.
    pub warnings: Vec<String>,
    pub rows: Vec<VariantRow>,
    /// What the frontier's cost axis is: $/month when every variant has it, else stored bytes.
    pub cost_axis: String,
    /// The metric on the accuracy axis (a validation metric's name, or [`WEIGHT_ERROR_PROXY`]).
    pub metric: String,
    /// What the accuracy axis shows, in words.
    pub accuracy_axis: String,
    /// Every accuracy axis these records offer: measured metrics, then the proxy.
    pub metrics: Vec<String>,
    pub recommendation: Recommendation,
    /// The sensitivity scan the variants were allocated from, when the caller has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<crate::sensitivity::Sensitivity>,
}

/// The cost a variant is ranked on: projected $/month when every variant has one, with stored
/// bytes breaking ties (tiny models often project the same rounded price); else stored bytes.
fn cost(row: &VariantRow, by_usd: bool) -> (f64, f64) {
    let bytes = row.planned_bytes as f64;
    if by_usd { (row.usd_month.unwrap_or(f64::INFINITY), bytes) } else { (bytes, 0.0) }
}

fn cheaper(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}

/// The comparison on each record's primary validation metric (perplexity, STS Spearman).
pub fn compare(records: &[RunRecord]) -> Result<Comparison> {
    compare_on(records, None)
}

/// Parameter-weighted mean relative weight error of a record's compressed tensors.
fn weight_error(r: &RunRecord) -> Option<f64> {
    let (mut sum, mut weight) = (0.0, 0.0);
    for t in &r.tensors {
        if let Some(e) = t.rel_error {
            sum += e * t.source_bytes as f64;
            weight += t.source_bytes as f64;
        }
    }
    (weight > 0.0).then(|| sum / weight)
}

/// The accuracy metrics the records offer, measured ones first (in the order records list them).
pub fn available_metrics(records: &[RunRecord]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for v in records.iter().filter_map(|r| r.validation.as_ref()) {
        for m in &v.metrics {
            if !names.contains(&m.name) {
                names.push(m.name.clone());
            }
        }
    }
    names.push(WEIGHT_ERROR_PROXY.to_string());
    names
}

/// The comparison with `metric` on the accuracy axis: a validation metric by name, or
/// [`WEIGHT_ERROR_PROXY`]; `None` picks each record's primary metric.
pub fn compare_on(records: &[RunRecord], metric: Option<&str>) -> Result<Comparison> {
    compare_with(records, metric, &Constraint::default())
}

/// [`compare_on`] with the reviewer's constraint on the recommendation.
pub fn compare_with(records: &[RunRecord], metric: Option<&str>, constraint: &Constraint) -> Result<Comparison> {
    let first = records.first().ok_or(ReportError::NoRecords)?;
    let metrics = available_metrics(records);
    if let Some(name) = metric
        && !metrics.iter().any(|m| m == name)
    {
        return Err(ReportError::UnknownMetric { name: name.to_string(), available: metrics.join(", ") });
    }
    let proxy = metric == Some(WEIGHT_ERROR_PROXY);
    let mut warnings = Vec::new();
    let key = first.model_key();
    let others: Vec<&str> = records.iter().filter(|r| r.model_key() != key).map(|r| r.recipe.name.as_str()).collect();
    if !others.is_empty() {
        warnings.push(format!(
            "These records come from different source models ({} vs {}): accuracy and cost are not comparable across them.",
            first.source.path,
            others.join(", ")
        ));
    }
    let chosen = |r: &RunRecord| -> Option<Metric> {
        if proxy {
            return weight_error(r).map(|e| Metric {
                name: WEIGHT_ERROR_PROXY.into(),
                unit: "relative".into(),
                original: Some(0.0),
                compressed: Some(e),
                higher_is_better: false,
                stderr: None,
            });
        }
        let v = r.validation.as_ref()?;
        let name = metric.unwrap_or(&v.primary);
        v.metrics.iter().find(|m| m.name == name).cloned()
    };
    let mut rows: Vec<VariantRow> = records
        .iter()
        .map(|r| {
            let m = chosen(r);
            let p = r.projection.as_ref().map(|p| &p.compressed);
            let relative = m.as_ref().and_then(|m| m.original).is_some_and(|o| o != 0.0);
            let change = m.as_ref().and_then(|m| {
                let (o, c) = (m.original?, m.compressed?);
                let moved = if relative { (c - o) / o.abs() } else { c - o };
                Some(if m.higher_is_better { moved } else { -moved })
            });
            VariantRow {
                name: r.recipe.name.clone(),
                planned_bytes: r.totals.planned_bytes,
                size_ratio: if r.totals.source_bytes == 0 {
                    1.0
                } else {
                    r.totals.planned_bytes as f64 / r.totals.source_bytes as f64
                },
                metric: m.as_ref().map(|m| m.name.clone()),
                metric_unit: m.as_ref().map(|m| m.unit.clone()),
                metric_original: m.as_ref().and_then(|m| m.original),
                metric_value: m.as_ref().and_then(|m| m.compressed),
                metric_stderr: m.as_ref().and_then(|m| m.stderr),
                metric_change: change,
                change_is_relative: relative,
                usd_month: p.and_then(|p| p.usd_month),
                usd_per_1m_requests: p.and_then(|p| p.usd_per_1m_requests),
                decode_tok_s_batch1: p.and_then(|p| p.decode_tok_s_batch1),
                fits: p.map(|p| p.fits),
                dominated: false,
                on_frontier: false,
            }
        })
        .collect();
    let unmeasured: Vec<&str> = rows.iter().filter(|r| r.metric_change.is_none()).map(|r| r.name.as_str()).collect();
    if !unmeasured.is_empty() {
        warnings.push(format!("Accuracy not measured for: {}.", unmeasured.join(", ")));
    }
    // Rank on $/month only when it separates the variants; a tiny model projects the same
    // rounded price for every variant, and then stored bytes say more.
    let usd: Vec<f64> = rows.iter().filter_map(|r| r.usd_month).collect();
    let spread = usd.iter().copied().fold(f64::MIN, f64::max) - usd.iter().copied().fold(f64::MAX, f64::min);
    let by_usd = usd.len() == rows.len() && spread > 0.005 * usd.iter().copied().fold(0.0, f64::max);
    // Across models neither a frontier nor a pick means anything: a smaller model is not a
    // cheaper variant of a larger one.
    let recommendation = if !others.is_empty() {
        Recommendation {
            pick: None,
            headline: "No recommendation: the records come from different source models.".into(),
            reasons: vec!["Compare variants of one model at a time (one sweep, or the records of one source).".into()],
        }
    } else if proxy {
        mark_frontier(&mut rows, by_usd);
        warnings.push(
            "The accuracy axis is relative weight error, a proxy that does not predict task accuracy: validate the variants for a measured frontier.".into(),
        );
        Recommendation {
            pick: None,
            headline: "No recommendation on a proxy.".into(),
            reasons: vec!["Weight error ranks variants of one kind but not their accuracy: validate them, then compare on a measured metric.".into()],
        }
    } else {
        mark_frontier(&mut rows, by_usd);
        recommend(&rows, by_usd, constraint)
    };
    let name = match metric {
        Some(m) => m.to_string(),
        None => rows.iter().find_map(|r| r.metric.clone()).unwrap_or_else(|| "not measured".into()),
    };
    let accuracy_axis = if proxy {
        format!(
            "{WEIGHT_ERROR_PROXY}: parameter-weighted relative weight error, negated so that up is better (not a measurement)"
        )
    } else if rows.iter().any(|r| r.metric_change.is_some() && !r.change_is_relative) {
        format!("{name}: change from the original, signed so that up is better")
    } else {
        format!("{name}: relative change from the original, signed so that up is better")
    };
    Ok(Comparison {
        warnings,
        rows,
        cost_axis: if by_usd { "projected $/month".into() } else { "stored weight bytes".into() },
        metric: name,
        accuracy_axis,
        metrics,
        recommendation,
        sensitivity: None,
    })
}

/// A variant is dominated when another is no more costly and no less accurate, and strictly
/// better in one of the two. Variants without an accuracy measurement are neither.
fn mark_frontier(rows: &mut [VariantRow], by_usd: bool) {
    let points: Vec<Option<((f64, f64), f64)>> =
        rows.iter().map(|r| r.metric_change.map(|acc| (cost(r, by_usd), acc))).collect();
    for (i, row) in rows.iter_mut().enumerate() {
        let Some((ci, ai)) = points[i] else { continue };
        row.dominated = points.iter().enumerate().any(|(j, p)| {
            j != i && p.is_some_and(|(cj, aj)| !cheaper(ci, cj) && aj >= ai && (cheaper(cj, ci) || aj > ai))
        });
        row.on_frontier = !row.dominated;
    }
}

fn recommend(rows: &[VariantRow], by_usd: bool, c: &Constraint) -> Recommendation {
    let unit = if by_usd { "projected cost" } else { "size" };
    let loss = c.max_loss;
    let frontier = rows.iter().enumerate().filter(|(_, r)| r.on_frontier && r.metric_change.is_some());
    let cheapest = if c.limits_cost() {
        // Most accurate within the stated cost or size.
        frontier.filter(|(_, r)| c.admits(r)).max_by(|a, b| {
            let (x, y) = (a.1.metric_change.unwrap_or(f64::MIN), b.1.metric_change.unwrap_or(f64::MIN));
            x.total_cmp(&y)
        })
    } else {
        frontier.filter(|(_, r)| r.within(loss) == Some(true)).min_by(|a, b| {
            let (x, y) = (cost(a.1, by_usd), cost(b.1, by_usd));
            x.0.total_cmp(&y.0).then(x.1.total_cmp(&y.1))
        })
    };
    match cheapest {
        Some((i, r)) => {
            let mut reasons = vec![format!(
                "It is on the accuracy-vs-{unit} frontier: no other variant is both cheaper and at least as accurate."
            )];
            if c.limits_cost() {
                reasons.push(format!("It is the most accurate variant within {}.", c.text()));
            }
            if let (Some(name), Some(change)) = (&r.metric, r.change_text()) {
                match r.within(loss) {
                    Some(false) => reasons.push(format!(
                        "Warning: {name} changes by {change} from the original, beyond the {} budget.",
                        r.budget_text(loss)
                    )),
                    _ => reasons.push(format!(
                        "{name} changes by {change} from the original, within the {} budget.",
                        r.budget_text(loss)
                    )),
                }
            }
            reasons.push(format!("Its weights take {:.1}% of the original bytes.", r.size_ratio * 100.0));
            if let Some(usd) = r.usd_month {
                reasons.push(format!("Projected serving cost: ${usd:.0}/month (an estimate; see assumptions)."));
            }
            if r.fits == Some(false) {
                reasons.push("Warning: it does not fit the chosen device's memory.".into());
            }
            let cheaper_rejected: Vec<&str> = rows
                .iter()
                .filter(|o| cheaper(cost(o, by_usd), cost(r, by_usd)) && o.within(loss) == Some(false))
                .map(|o| o.name.as_str())
                .collect();
            if !cheaper_rejected.is_empty() {
                reasons.push(format!(
                    "Cheaper variants lose more than the {} budget: {}.",
                    r.budget_text(loss),
                    cheaper_rejected.join(", ")
                ));
            }
            Recommendation { pick: Some(i), headline: format!("Ship {}.", r.name), reasons }
        }
        None => Recommendation {
            pick: None,
            headline: "No recommendation.".into(),
            reasons: vec![if rows.iter().all(|r| r.metric_change.is_none()) {
                "No variant has a measured accuracy: run validation before choosing on size alone.".into()
            } else if c.limits_cost() {
                format!("No measured variant on the frontier is within {}.", c.text())
            } else if rows.iter().all(|r| r.within(loss).is_none()) {
                "The chosen metric has no loss budget (only relative changes and KL divergence do): pick the variant on the frontier yourself.".into()
            } else if let Some(budget) =
                loss.and_then(|_| rows.iter().find(|r| r.metric_change.is_some())).map(|r| r.budget_text(loss))
            {
                format!("Every measured variant loses more than the stated budget ({budget}).")
            } else {
                format!(
                    "Every measured variant loses more than the budget ({:.0}% relative, or {ACCEPTABLE_KL} nats/token of KL divergence).",
                    ACCEPTABLE_LOSS * 100.0
                )
            }],
        },
    }
}
