//! A measured estimate put into a projection scenario: one cache row's hit rates (replacing the
//! assumed ones, with their source) and the log's tenants (replacing the assumed traffic split).

use pareto_projection::{Scenario, Tenant};

use crate::error::{Result, TrafficError};
use crate::estimate::CacheEstimate;
use crate::replay::CacheRow;

/// A share as a percentage with one decimal, as the estimate's summaries print it.
pub fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

/// The row a projection uses: at `threshold` (default: the estimate's highest, the most
/// conservative) and `capacity` (default: the only one); of several times to live or update
/// cadences, the one with the fewest hits.
pub fn pick_row(est: &CacheEstimate, threshold: Option<f32>, capacity: Option<usize>) -> Result<&CacheRow> {
    let threshold = threshold.unwrap_or_else(|| est.rows.iter().map(|r| r.threshold).fold(f32::NEG_INFINITY, f32::max));
    let mut capacities: Vec<usize> = est.rows.iter().map(|r| r.capacity).collect();
    capacities.sort_unstable();
    capacities.dedup();
    let capacity = match (capacity, capacities.as_slice()) {
        (Some(c), _) => c,
        (None, [only]) => *only,
        (None, many) => {
            return Err(TrafficError::Argument {
                name: "--cache-capacity",
                message: format!("the estimate has capacities {many:?}; choose one"),
            });
        }
    };
    est.rows
        .iter()
        .filter(|r| (r.threshold - threshold).abs() < 1e-6 && r.capacity == capacity)
        .min_by(|a, b| (a.exact_hit_rate + a.semantic_hit_rate).total_cmp(&(b.exact_hit_rate + b.semantic_hit_rate)))
        .ok_or_else(|| {
            let ts: Vec<String> = est.rows.iter().map(|r| format!("{:.2}", r.threshold)).collect();
            TrafficError::Argument {
                name: "--cache-threshold",
                message: format!(
                    "no row at threshold {threshold} and capacity {capacity} (thresholds: {})",
                    ts.join(", ")
                ),
            }
        })
}

/// Applies `row` and the tenants to `scenario`; returns what was used, in words.
pub fn apply(est: &CacheEstimate, row: &CacheRow, scenario: &mut Scenario, origin: &str) -> Result<String> {
    let wrong = row
        .wrong_answer_rate
        .map_or(String::new(), |w| format!(", an estimated {} of requests answered wrongly", pct(w)));
    let used = format!(
        "cache rates measured by `pareto cache` on {} ({} requests): threshold {:.2}, capacity {}, ttl {}, updates {}: {} exact + {} semantic hits{wrong}",
        est.log,
        est.requests,
        row.threshold,
        row.capacity,
        row.ttl_seconds.map_or("none".into(), |t| format!("{t} s")),
        row.updates,
        pct(row.exact_hit_rate),
        pct(row.semantic_hit_rate),
    );
    scenario.cache.exact_hit_rate = row.exact_hit_rate;
    scenario.cache.semantic_hit_rate = row.semantic_hit_rate;
    scenario.cache.measured_by = Some(format!("{used} ({origin})"));
    if !est.tenants.is_empty() {
        scenario.tenants = est
            .tenants
            .iter()
            .map(|t| {
                let per = |tokens: u64| (tokens > 0).then(|| tokens as f64 / t.requests.max(1) as f64);
                // This row's hits for the team: a team whose queries repeat costs less per request.
                let hits = row.tenants.iter().find(|h| h.name == t.name);
                Tenant {
                    name: t.name.clone(),
                    measured_requests: t.requests as f64,
                    input_tokens: per(t.input_tokens),
                    output_tokens: per(t.output_tokens),
                    cache_hit_rate: hits.map(|h| h.exact_hit_rate + h.semantic_hit_rate),
                }
            })
            .collect();
    }
    scenario.validate().map_err(|e| TrafficError::Argument { name: "--cache-from", message: e.to_string() })?;
    Ok(used)
}
