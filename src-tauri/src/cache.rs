//! The studio's cache estimate: a query log replayed through simulated caches as a job (progress,
//! cancel), through `pareto_traffic::estimate` as `pareto cache` does.

use std::sync::Arc;

use pareto_traffic::Cadence;
use pareto_traffic::estimate::{CacheEstimate, EstimateSpec, bundled_encoder, bundled_pairs};

use crate::dto::*;
use crate::jobs::Sink;
use crate::state::AppState;

/// Starts the estimate and returns the job id at once.
pub fn start(state: &Arc<AppState>, req: CacheRequest, sink: Sink) -> ApiResult<u32> {
    if req.log.trim().is_empty() {
        return Err(ApiError::new("choose a query log (.txt, .tsv, .csv or .jsonl)"));
    }
    let log = state.access().check(&req.log, "the query log")?;
    let encoder = match req.encoder.as_deref().filter(|e| !e.trim().is_empty()) {
        Some(e) => state.access().check(e, "the encoder folder")?,
        None => bundled_encoder().ok_or_else(|| {
            ApiError::new("no bundled sentence encoder here: choose an encoder folder (e.g. all-MiniLM-L6-v2)")
        })?,
    };
    let updates = Cadence::parse(&req.updates).map_err(|e| from_std(&e))?;
    let spec = EstimateSpec {
        thresholds: req.thresholds.clone(),
        capacities: vec![req.capacity as usize],
        ttls: vec![req.ttl_seconds],
        updates: vec![updates],
        pairs: bundled_pairs(),
        ..EstimateSpec::new(&log, &encoder)
    };
    crate::jobs::spawn(state, "cache", sink, move |ctx| {
        let est =
            pareto_traffic::estimate(&spec, ctx).map_err(|e| from_std(&e).context("the cache estimate failed"))?;
        Ok(JobEvent::CacheEstimated { result: Box::new(view(&est)) })
    })
}

/// The estimate as the Project screen shows it (one capacity, TTL and cadence: the rows are thresholds).
pub fn view(est: &CacheEstimate) -> CacheView {
    let first = est.rows.first();
    CacheView {
        log: est.log.clone(),
        requests: est.requests,
        distinct_queries: est.distinct_queries,
        capacity: first.map_or(0, |r| r.capacity as u64),
        ttl_seconds: first.and_then(|r| r.ttl_seconds),
        updates: first.map_or_else(|| "never".into(), |r| r.updates.clone()),
        rows: est
            .rows
            .iter()
            .map(|r| {
                let q = est.quality.as_ref().and_then(|q| q.thresholds.iter().find(|t| t.threshold == r.threshold));
                CacheRowView {
                    threshold: r.threshold,
                    exact_hit_rate: r.exact_hit_rate,
                    semantic_hit_rate: r.semantic_hit_rate,
                    wrong_answer_share: r.wrong_answer_share,
                    precision: q.and_then(|q| q.precision),
                    recall: q.map(|q| q.recall),
                }
            })
            .collect(),
        tenants: est.tenants.iter().map(|t| (t.name.clone(), t.share)).collect(),
        embedded_per_second: est.embedded_per_second,
        seconds: est.seconds,
        search: est.search.used.clone(),
        method: est.method.clone(),
    }
}
