//! `pareto cache`: a query log streamed once — read a chunk, embed its new distinct queries, find
//! their neighbours, replay the chunk through every simulated cache — so memory holds the index
//! (one vector and a neighbour list per distinct query) and the caches, never the log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use pareto_core::job::{JobContext, NullProgress};
use pareto_eval::bert::{BertEncoder, DEFAULT_BATCH};
use pareto_eval::samples::{SampleOptions, SampleSet, load_samples};
use pareto_eval::sts::SentenceEmbeddings;
use pareto_eval::{DeviceSpec, ModelFamily, detect_family};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::correctness::{Correctness, ThresholdQuality};
use crate::error::{Result, TrafficError};
use crate::log::{LogReader, format_ms};
use crate::replay::{CacheConfig, CacheRow, Cadence, Event, Replay};
use crate::search::{NeighbourIndex, SearchMethod, SearchSettings, pair_recall};

/// Requests read, embedded and replayed per step.
pub const CHUNK: usize = 4096;
/// With `--search auto`: exact search up to this many distinct queries, HNSW beyond.
pub const AUTO_EXACT_UP_TO: usize = 20_000;

/// How an exact hit is recognised.
pub const NORMALISATION: &str =
    "exact hit = identical query after Unicode lower-casing, trimming and collapsing runs of whitespace";

/// Which search finds the neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchChoice {
    Auto,
    Exact,
    Hnsw,
}

/// What to estimate.
#[derive(Debug, Clone)]
pub struct EstimateSpec {
    pub log: PathBuf,
    pub encoder: PathBuf,
    pub device: DeviceSpec,
    pub thresholds: Vec<f32>,
    pub capacities: Vec<usize>,
    /// `None` = no time to live.
    pub ttls: Vec<Option<f64>>,
    pub updates: Vec<Cadence>,
    /// Labelled pairs for the wrong-answer estimate.
    pub pairs: Option<PathBuf>,
    /// Gold score at or above which a pair has the same intent.
    pub same_at: f64,
    pub search: SearchChoice,
    /// Also run exact search beside HNSW and report the pair recall (quadratic: for checks).
    pub check_recall: bool,
    /// Requests per step (read, embed, search, replay).
    pub chunk: usize,
    /// With [`SearchChoice::Auto`]: distinct queries searched exactly before the index moves to HNSW.
    pub exact_up_to: usize,
}

impl EstimateSpec {
    pub fn new(log: &Path, encoder: &Path) -> Self {
        Self {
            log: log.to_path_buf(),
            encoder: encoder.to_path_buf(),
            device: DeviceSpec::Cpu,
            thresholds: vec![0.80, 0.85, 0.90, 0.95],
            capacities: vec![100_000],
            ttls: vec![None],
            updates: vec![Cadence::Never],
            pairs: None,
            same_at: 4.0,
            search: SearchChoice::Auto,
            check_recall: false,
            chunk: CHUNK,
            exact_up_to: AUTO_EXACT_UP_TO,
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |name, message: String| Err(TrafficError::Argument { name, message });
        if self.thresholds.is_empty() {
            return bad("--thresholds", "give at least one threshold".into());
        }
        if let Some(t) = self.thresholds.iter().find(|t| !(t.is_finite() && (-1.0..=1.0).contains(*t))) {
            return bad("--thresholds", format!("{t} is outside [−1, 1] (a cosine similarity)"));
        }
        if self.capacities.is_empty() || self.capacities.contains(&0) {
            return bad("--capacity", "give one or more capacities of at least 1 entry".into());
        }
        if let Some(t) = self.ttls.iter().flatten().find(|t| !(t.is_finite() && **t > 0.0)) {
            return bad("--ttl", format!("{t} s: a time to live must be positive"));
        }
        if !(self.same_at.is_finite()) {
            return bad("--same-at", format!("{} is not a number", self.same_at));
        }
        Ok(())
    }

    fn configs(&self) -> Vec<CacheConfig> {
        let mut out = Vec::new();
        for u in &self.updates {
            for &ttl in &self.ttls {
                for &capacity in &self.capacities {
                    for &threshold in &self.thresholds {
                        out.push(CacheConfig { threshold, capacity, ttl_seconds: ttl, updates: u.clone() });
                    }
                }
            }
        }
        out
    }
}

/// Requests and tokens of one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantUse {
    pub name: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Share of the tokens (input + output) when the log has them, else of the requests.
    pub share: f64,
}

/// The labelled-pair view of correctness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    pub pairs: Correctness,
    pub thresholds: Vec<ThresholdQuality>,
}

/// How the neighbours were found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchReport {
    pub used: String,
    pub settings: SearchSettings,
    /// Share of the exact search's pairs HNSW also found (with `check_recall`).
    pub pair_recall: Option<f64>,
}

/// The estimate `pareto cache` prints and `pareto project --cache-from` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEstimate {
    pub log: String,
    pub requests: u64,
    pub distinct_queries: u64,
    pub blank_lines: u64,
    pub first_request: Option<String>,
    pub last_request: Option<String>,
    /// Requests per day over the log's span (timed logs).
    pub requests_per_day: Option<f64>,
    pub encoder: String,
    pub device: String,
    pub embedding_seconds: f64,
    /// Distinct queries embedded per second (what scales the run).
    pub embedded_per_second: f64,
    pub seconds: f64,
    pub normalisation: String,
    pub search: SearchReport,
    pub rows: Vec<CacheRow>,
    pub quality: Option<Quality>,
    pub tenants: Vec<TenantUse>,
    pub method: Vec<String>,
}

/// The bundled encoder's config, relative to the repository or the installed bundle.
const BUNDLED_ENCODER: &str = "models/all-MiniLM-L6-v2/config.json";

/// The bundled all-MiniLM-L6-v2 folder, where it is installed.
pub fn bundled_encoder() -> Option<PathBuf> {
    pareto_eval::compare::resolve_bundled(BUNDLED_ENCODER).and_then(|p| p.parent().map(Path::to_path_buf))
}

/// The bundled labelled pairs (STS-B dev), where installed.
pub fn bundled_pairs() -> Option<PathBuf> {
    pareto_eval::compare::resolve_bundled(pareto_eval::samples::bundled::STSB_DEV)
}

/// Lower-cases, trims and collapses whitespace: the exact-hit key.
pub fn normalise(q: &str) -> String {
    q.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ")
}

/// Loads the encoder after checking it is one.
pub fn load_encoder(dir: &Path, device: &DeviceSpec) -> Result<BertEncoder> {
    match detect_family(dir) {
        Ok(ModelFamily::Bert) => {}
        Ok(other) => {
            return Err(TrafficError::NotAnEncoder {
                path: dir.to_path_buf(),
                message: format!("its config describes a {other:?} model"),
            });
        }
        Err(e) => return Err(TrafficError::NotAnEncoder { path: dir.to_path_buf(), message: e.to_string() }),
    }
    Ok(BertEncoder::load(dir, &device.open()?)?)
}

/// The wrong-answer model from a labelled pair file, embedded with `encoder`.
pub fn correctness(encoder: &BertEncoder, pairs: &Path, same_at: f64, ctx: &JobContext) -> Result<Correctness> {
    let set = load_samples(pairs, &SampleOptions::default())?;
    let SampleSet::Pairs(pairs_list) = set else {
        return Err(TrafficError::Argument {
            name: "--pairs",
            message: format!(
                "{}: holds {} samples, not scored sentence pairs (sentence1, sentence2, score)",
                pairs.display(),
                set.kind()
            ),
        });
    };
    let emb = SentenceEmbeddings::compute(
        encoder,
        pairs_list.iter().flat_map(|p| [p.sentence1.as_str(), p.sentence2.as_str()]),
        DEFAULT_BATCH,
        ctx,
    )?;
    let points = pairs_list.iter().filter_map(|p| {
        let (a, b) = (emb.get(&p.sentence1)?, emb.get(&p.sentence2)?);
        Some((crate::search::dot(a, b), p.score))
    });
    Correctness::new(pairs.display().to_string(), same_at, points)
}

/// Labelled pairs already embedded in this process, by encoder, pair file (with its size and
/// modification time) and `same_at`: a studio session measuring log after log embeds them once.
type PairsKey = (PathBuf, PathBuf, u64, Option<std::time::SystemTime>, u64);
static PAIRS: std::sync::Mutex<Vec<(PairsKey, Correctness)>> = std::sync::Mutex::new(Vec::new());

fn remembered_correctness(
    encoder: &BertEncoder,
    encoder_dir: &Path,
    pairs: &Path,
    same_at: f64,
    ctx: &JobContext,
) -> Result<Correctness> {
    let meta = std::fs::metadata(pairs).ok();
    let key: PairsKey = (
        encoder_dir.to_path_buf(),
        pairs.to_path_buf(),
        meta.as_ref().map_or(0, |m| m.len()),
        meta.and_then(|m| m.modified().ok()),
        same_at.to_bits(),
    );
    if let Some(c) = PAIRS.lock().ok().and_then(|g| g.iter().find(|(k, _)| *k == key).map(|(_, c)| c.clone())) {
        return Ok(c);
    }
    let c = correctness(encoder, pairs, same_at, ctx)?;
    if let Ok(mut g) = PAIRS.lock() {
        g.push((key, c.clone()));
    }
    Ok(c)
}

fn cancelled(ctx: &JobContext) -> Result<()> {
    if ctx.cancel.is_cancelled() { Err(TrafficError::Cancelled) } else { Ok(()) }
}

/// Runs the estimate.
pub fn estimate(spec: &EstimateSpec, ctx: &JobContext) -> Result<CacheEstimate> {
    spec.check()?;
    let started = Instant::now();
    let mut reader = LogReader::open(&spec.log)?;
    let encoder = load_encoder(&spec.encoder, &spec.device)?;
    let quiet = JobContext::new(Arc::new(NullProgress), ctx.cancel.clone());
    let quality = match &spec.pairs {
        Some(p) => {
            ctx.progress.stage("labelled pairs", 0);
            Some(remembered_correctness(&encoder, &spec.encoder, p, spec.same_at, &quiet)?)
        }
        None => None,
    };
    let floor = spec.thresholds.iter().copied().fold(f32::INFINITY, f32::min);
    let method = match spec.search {
        SearchChoice::Hnsw => SearchMethod::Hnsw,
        SearchChoice::Exact | SearchChoice::Auto => SearchMethod::Exact,
    };
    let settings = SearchSettings::new(method, floor);
    let dim = encoder.hidden_size();
    let expected = (reader.position().1 / 48).clamp(1024, 1 << 24) as usize;
    let mut index = NeighbourIndex::new(settings, dim, expected);
    if spec.check_recall {
        index = index.record_pairs();
    }
    let mut shadow = spec
        .check_recall
        .then(|| NeighbourIndex::new(SearchSettings::new(SearchMethod::Exact, floor), dim, 0).record_pairs());
    let mut switched_at = None;
    let mut replays: Vec<Replay> = spec.configs().into_iter().map(Replay::new).collect();
    let mut ids: HashMap<String, u32> = HashMap::new();
    // Tenants in the order the log first names them; events carry the index.
    let mut tenants: Vec<TenantUse> = Vec::new();
    let mut tenant_ids: HashMap<String, u32> = HashMap::new();
    let (mut requests, mut first, mut last, mut timed) = (0u64, None, None, None::<bool>);
    let mut embed_seconds = 0.0;
    ctx.progress.stage("replaying the log", reader.position().1);
    let mut done_bytes = 0;
    loop {
        cancelled(ctx)?;
        let mut chunk = Vec::with_capacity(spec.chunk);
        while chunk.len() < spec.chunk.max(1) {
            match reader.next_query()? {
                Some(q) => chunk.push(q),
                None => break,
            }
        }
        if chunk.is_empty() {
            break;
        }
        let is_timed = *timed.get_or_insert(chunk[0].time_ms.is_some());
        if !is_timed && (spec.ttls.iter().any(Option::is_some) || spec.updates.iter().any(|u| *u != Cadence::Never)) {
            return Err(TrafficError::Argument {
                name: "--ttl/--updates",
                message: format!(
                    "{} has no timestamps, so a time to live or model updates cannot be replayed",
                    spec.log.display()
                ),
            });
        }
        let mut fresh: Vec<String> = Vec::new();
        let mut events = Vec::with_capacity(chunk.len());
        for q in &chunk {
            let key = normalise(&q.text);
            let next = ids.len() as u32;
            let id = *ids.entry(key).or_insert_with_key(|k| {
                fresh.push(k.clone());
                next
            });
            let time_ms = q.time_ms.unwrap_or(requests as i64);
            first.get_or_insert(time_ms);
            last = Some(time_ms);
            let tenant = q.tenant.as_ref().map(|name| {
                let next = tenants.len() as u32;
                let i = *tenant_ids.entry(name.clone()).or_insert_with(|| {
                    tenants.push(TenantUse {
                        name: name.clone(),
                        requests: 0,
                        input_tokens: 0,
                        output_tokens: 0,
                        share: 0.0,
                    });
                    next
                });
                let t = &mut tenants[i as usize];
                t.requests += 1;
                t.input_tokens += q.input_tokens.unwrap_or(0);
                t.output_tokens += q.output_tokens.unwrap_or(0);
                i
            });
            events.push(Event { id, time_ms, input_tokens: q.input_tokens, output_tokens: q.output_tokens, tenant });
            requests += 1;
        }
        let t0 = Instant::now();
        let refs: Vec<&str> = fresh.iter().map(String::as_str).collect();
        let vectors = encoder.embed(&refs, 64, &quiet).map_err(|e| match e {
            pareto_eval::EvalError::Cancelled => TrafficError::Cancelled,
            e => e.into(),
        })?;
        embed_seconds += t0.elapsed().as_secs_f64();
        if spec.search == SearchChoice::Auto
            && index.settings().method == SearchMethod::Exact
            && index.len() + vectors.len() > spec.exact_up_to
        {
            index = index.into_hnsw(expected);
            switched_at = Some(index.len());
        }
        index.add(&vectors);
        if let Some(s) = shadow.as_mut() {
            s.add(&vectors);
        }
        let neighbours = index.neighbours();
        replays.par_iter_mut().for_each(|r| {
            for ev in &events {
                r.step(ev, neighbours, quality.as_ref());
            }
        });
        let (pos, _) = reader.position();
        ctx.progress.advance(pos - done_bytes, &format!("{requests} requests, {} distinct", ids.len()));
        done_bytes = pos;
    }
    if requests == 0 {
        return Err(TrafficError::Layout { path: spec.log.clone(), message: "the log holds no queries".into() });
    }
    let tenant_names: Vec<String> = tenants.iter().map(|t| t.name.clone()).collect();
    let rows: Vec<CacheRow> = replays.iter().map(|r| r.row(quality.as_ref(), &tenant_names)).collect();
    let tenant_list = tenant_shares(tenants);
    let timed = timed == Some(true);
    let span_days = match (first, last) {
        (Some(a), Some(b)) if timed && b > a => Some((b - a) as f64 / 86_400_000.0),
        _ => None,
    };
    let pair_recall = shadow.as_ref().and_then(|s| Some(pair_recall(s.pairs()?, index.pairs()?)));
    let used = match (index.settings().method, switched_at) {
        (SearchMethod::Hnsw, Some(n)) => format!("exact up to {n} distinct queries, then HNSW"),
        (SearchMethod::Hnsw, None) => "HNSW".into(),
        (SearchMethod::Exact, _) => "exact".into(),
    };
    let mut method = vec![
        NORMALISATION.to_string(),
        format!(
            "semantic hit = the most similar cached query with cosine similarity ≥ the threshold ({} mean-pooled, L2-normalised embeddings)",
            spec.encoder.display()
        ),
        "cache: least recently used evicted at capacity; a time to live counts from caching; a model update empties the cache".into(),
    ];
    if let Some(q) = &quality {
        method.push(format!(
            "wrong-answer share: per semantic hit, the share of different-intent pairs (gold < {}) among the {} labelled pairs of {} nearest in similarity",
            q.same_at,
            crate::correctness::NEAREST,
            q.source
        ));
    }
    Ok(CacheEstimate {
        log: spec.log.display().to_string(),
        requests,
        distinct_queries: ids.len() as u64,
        blank_lines: reader.blank_lines() as u64,
        first_request: first.filter(|_| timed).map(format_ms),
        last_request: last.filter(|_| timed).map(format_ms),
        requests_per_day: span_days.filter(|d| *d >= 1.0).map(|d| requests as f64 / d),
        encoder: spec.encoder.display().to_string(),
        device: spec.device.to_string(),
        embedding_seconds: embed_seconds,
        embedded_per_second: if embed_seconds > 0.0 { ids.len() as f64 / embed_seconds } else { 0.0 },
        seconds: started.elapsed().as_secs_f64(),
        normalisation: NORMALISATION.into(),
        search: SearchReport { used, settings: *index.settings(), pair_recall },
        quality: quality.map(|q| Quality { thresholds: spec.thresholds.iter().map(|&t| q.at(t)).collect(), pairs: q }),
        rows,
        tenants: tenant_list,
        method,
    })
}

/// Tenants by share, largest first: tokens when the log counts them, else requests.
fn tenant_shares(mut list: Vec<TenantUse>) -> Vec<TenantUse> {
    let tokens: u64 = list.iter().map(|t| t.input_tokens + t.output_tokens).sum();
    let requests: u64 = list.iter().map(|t| t.requests).sum();
    for t in &mut list {
        t.share = if tokens > 0 {
            (t.input_tokens + t.output_tokens) as f64 / tokens as f64
        } else {
            t.requests as f64 / requests.max(1) as f64
        };
    }
    list.sort_by(|a, b| b.share.total_cmp(&a.share).then(a.name.cmp(&b.name)));
    list
}
