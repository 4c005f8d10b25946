//! N-way comparison: the summary rows, the accuracy-vs-cost frontier and a recommendation with
//! its reasons. Missing numbers stay `None` all the way to the page ("not measured").

use serde::Serialize;

use crate::error::{ReportError, Result};
use crate::record::RunRecord;

/// Largest relative loss of the primary metric a recommendation accepts without a warning.
pub const ACCEPTABLE_LOSS: f64 = 0.01;

#[derive(Debug, Clone, Serialize)]
pub struct VariantRow {
    pub name: String,
    pub planned_bytes: u64,
    pub size_ratio: f64,
    pub metric: Option<String>,
    pub metric_original: Option<f64>,
    pub metric_value: Option<f64>,
    /// Relative change of the primary metric, signed so that negative is worse.
    pub metric_change: Option<f64>,
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
        let moved = if o == 0.0 { 0.0 } else { (c - o) / o.abs() * 100.0 };
        let word = if moved.abs() < 0.005 {
            "unchanged"
        } else if quality > 0.0 {
            "better"
        } else {
            "worse"
        };
        Some(format!("{moved:+.2}% ({word})"))
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
    pub recommendation: Recommendation,
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

pub fn compare(records: &[RunRecord]) -> Result<Comparison> {
    let first = records.first().ok_or(ReportError::NoRecords)?;
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
    let mut rows: Vec<VariantRow> = records
        .iter()
        .map(|r| {
            let m = r.primary_metric();
            let p = r.projection.as_ref().map(|p| &p.compressed);
            let change = m.and_then(|m| {
                let (o, c) = (m.original?, m.compressed?);
                if o == 0.0 {
                    return None;
                }
                let rel = (c - o) / o.abs();
                Some(if m.higher_is_better { rel } else { -rel })
            });
            VariantRow {
                name: r.recipe.name.clone(),
                planned_bytes: r.totals.planned_bytes,
                size_ratio: if r.totals.source_bytes == 0 {
                    1.0
                } else {
                    r.totals.planned_bytes as f64 / r.totals.source_bytes as f64
                },
                metric: m.map(|m| m.name.clone()),
                metric_original: m.and_then(|m| m.original),
                metric_value: m.and_then(|m| m.compressed),
                metric_change: change,
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
    let recommendation = if others.is_empty() {
        mark_frontier(&mut rows, by_usd);
        recommend(&rows, by_usd)
    } else {
        Recommendation {
            pick: None,
            headline: "No recommendation: the records come from different source models.".into(),
            reasons: vec!["Compare variants of one model at a time (one sweep, or the records of one source).".into()],
        }
    };
    Ok(Comparison {
        warnings,
        rows,
        cost_axis: if by_usd { "projected $/month".into() } else { "stored weight bytes".into() },
        recommendation,
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

fn recommend(rows: &[VariantRow], by_usd: bool) -> Recommendation {
    let unit = if by_usd { "projected cost" } else { "size" };
    let acceptable: Vec<(usize, &VariantRow)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.on_frontier && r.metric_change.is_some_and(|c| c >= -ACCEPTABLE_LOSS))
        .collect();
    let cheapest = acceptable.iter().min_by(|a, b| {
        let (x, y) = (cost(a.1, by_usd), cost(b.1, by_usd));
        x.0.total_cmp(&y.0).then(x.1.total_cmp(&y.1))
    });
    match cheapest {
        Some(&(i, r)) => {
            let mut reasons = vec![format!(
                "It is on the accuracy-vs-{unit} frontier: no other variant is both cheaper and at least as accurate."
            )];
            if let (Some(name), Some(change)) = (&r.metric, r.change_text()) {
                reasons.push(format!(
                    "{name} changes by {change} relative to the original, within the {:.0}% budget.",
                    ACCEPTABLE_LOSS * 100.0
                ));
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
                .filter(|o| {
                    cheaper(cost(o, by_usd), cost(r, by_usd)) && o.metric_change.is_some_and(|c| c < -ACCEPTABLE_LOSS)
                })
                .map(|o| o.name.as_str())
                .collect();
            if !cheaper_rejected.is_empty() {
                reasons.push(format!(
                    "Cheaper variants lose more than {:.0}% accuracy: {}.",
                    ACCEPTABLE_LOSS * 100.0,
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
            } else {
                format!("Every measured variant loses more than {:.0}% on its primary metric.", ACCEPTABLE_LOSS * 100.0)
            }],
        },
    }
}
