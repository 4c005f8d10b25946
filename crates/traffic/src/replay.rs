//! The simulated cache: requests replayed in time order through a response cache of a given
//! capacity (entries, least recently used evicted), time to live and model-update cadence.
//!
//! Per request: an **exact hit** when the same normalised query is cached; else a **semantic hit**
//! when a cached query's cosine similarity reaches the threshold (the most similar cached one
//! answers, and is refreshed as recently used); else a miss, whose answer is cached. A time to live
//! counts from when the answer was cached (a hit does not extend it). A model update empties the
//! cache: answers are valid only for the model version that produced them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::correctness::Correctness;
use crate::error::{Result, TrafficError};
use crate::search::Neighbours;

/// When the served model changes (and the cache is emptied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    Never,
    /// Every `seconds` from the log's first request (`label`: weekly, monthly = 30 days, …).
    Every {
        label: String,
        seconds: f64,
    },
    /// At these instants (ms since the epoch), e.g. past release dates.
    Dates {
        label: String,
        ms: Vec<i64>,
    },
}

impl Cadence {
    /// `never`, `daily`, `weekly`, `monthly` (30 days), `quarterly` (91 days), or release dates
    /// separated by `+` (`2026-01-05+2026-02-01`, RFC 3339 or a day at 00:00 UTC).
    pub fn parse(s: &str) -> Result<Self> {
        let day = 86_400.0;
        let every = |label: &str, days: f64| Ok(Self::Every { label: label.into(), seconds: days * day });
        match s.trim() {
            "never" | "" => Ok(Self::Never),
            "daily" => every("daily", 1.0),
            "weekly" => every("weekly", 7.0),
            "monthly" => every("monthly", 30.0),
            "quarterly" => every("quarterly", 91.0),
            dates => {
                let mut ms = dates
                    .split('+')
                    .map(|d| {
                        let d = d.trim();
                        let day = d.len() == 10 && d.as_bytes()[4] == b'-';
                        let full = if day { format!("{d}T00:00:00Z") } else { d.to_string() };
                        crate::log::parse_time(&full).map_err(|m| TrafficError::Argument {
                            name: "--updates",
                            message: format!(
                                "`{d}`: {m}; use never, daily, weekly, monthly, quarterly or dates joined by +"
                            ),
                        })
                    })
                    .collect::<Result<Vec<i64>>>()?;
                ms.sort_unstable();
                Ok(Self::Dates { label: dates.to_string(), ms })
            }
        }
    }

    pub fn label(&self) -> String {
        match self {
            Self::Never => "never".into(),
            Self::Every { label, .. } | Self::Dates { label, .. } => label.clone(),
        }
    }
}

/// One simulated cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheConfig {
    /// Cosine similarity at or above which a cached answer serves a different query.
    pub threshold: f32,
    /// Entries held; the least recently used is evicted.
    pub capacity: usize,
    pub ttl_seconds: Option<f64>,
    pub updates: Cadence,
}

/// One request as the replay sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    /// Distinct (normalised) query id.
    pub id: u32,
    /// Milliseconds since the epoch; the request's index in an untimed log (no TTL or cadence then).
    pub time_ms: i64,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// The tenant's index (in the order the log first names them), when the log has tenants.
    pub tenant: Option<u32>,
}

/// One tenant's requests and hits in one simulated cache (shared by every tenant: a team's
/// request may be answered from another team's cached query).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantHits {
    pub name: String,
    pub requests: u64,
    pub exact_hit_rate: f64,
    pub semantic_hit_rate: f64,
}

/// What one cache did over the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheRow {
    pub threshold: f32,
    pub capacity: usize,
    pub ttl_seconds: Option<f64>,
    pub updates: String,
    pub requests: u64,
    pub exact_hits: u64,
    pub semantic_hits: u64,
    pub exact_hit_rate: f64,
    pub semantic_hit_rate: f64,
    /// Estimated share of the semantic hits that served an answer to a different question.
    pub wrong_answer_share: Option<f64>,
    /// The same, as a share of all requests.
    pub wrong_answer_rate: Option<f64>,
    /// Times a model update emptied the cache.
    pub flushes: u64,
    /// Lookups whose capped neighbour list held only uncached queries above the threshold (a
    /// longer list might have hit: the semantic rate is a lower bound by at most this share).
    pub truncated_lookups: u64,
    /// Output tokens the model did not generate, when the log has them.
    pub output_tokens_saved: Option<u64>,
    /// Hit rates per tenant, when the log names tenants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantHits>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    cached_at: i64,
    tick: u64,
}

/// A cache being replayed.
#[derive(Debug, Clone)]
pub struct Replay {
    config: CacheConfig,
    entries: HashMap<u32, Entry>,
    lru: BTreeMap<u64, u32>,
    expiry: BTreeSet<(i64, u32)>,
    tick: u64,
    next_update: Option<i64>,
    started: bool,
    requests: u64,
    exact: u64,
    semantic: u64,
    wrong: f64,
    flushes: u64,
    truncated: u64,
    saved: u64,
    tokens_known: bool,
    /// Requests, exact hits and semantic hits per tenant index.
    by_tenant: Vec<[u64; 3]>,
}

impl Replay {
    pub fn new(config: CacheConfig) -> Self {
        Self {
            config,
            entries: HashMap::new(),
            lru: BTreeMap::new(),
            expiry: BTreeSet::new(),
            tick: 0,
            next_update: None,
            started: false,
            requests: 0,
            exact: 0,
            semantic: 0,
            wrong: 0.0,
            flushes: 0,
            truncated: 0,
            saved: 0,
            tokens_known: true,
            by_tenant: Vec::new(),
        }
    }

    fn remove(&mut self, id: u32) {
        if let Some(e) = self.entries.remove(&id) {
            self.lru.remove(&e.tick);
            self.expiry.remove(&(e.cached_at, id));
        }
    }

    fn touch(&mut self, id: u32) {
        self.tick += 1;
        if let Some(e) = self.entries.get_mut(&id) {
            self.lru.remove(&e.tick);
            e.tick = self.tick;
            self.lru.insert(self.tick, id);
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.lru.clear();
        self.expiry.clear();
    }

    /// Empties the cache at each model update up to `now`.
    fn apply_updates(&mut self, now: i64) {
        if !self.started {
            self.started = true;
            self.next_update = match &self.config.updates {
                Cadence::Never => None,
                Cadence::Every { seconds, .. } => Some(now + (seconds * 1000.0) as i64),
                Cadence::Dates { ms, .. } => ms.iter().copied().find(|&d| d > now),
            };
            return;
        }
        let Some(due) = self.next_update else { return };
        if now < due {
            return;
        }
        self.clear();
        self.flushes += 1;
        self.next_update = match &self.config.updates {
            Cadence::Never => None,
            Cadence::Every { seconds, .. } => {
                let period = ((seconds * 1000.0) as i64).max(1);
                Some(due + ((now - due) / period + 1) * period)
            }
            Cadence::Dates { ms, .. } => ms.iter().copied().find(|&d| d > now),
        };
    }

    fn expire(&mut self, now: i64) {
        let Some(ttl) = self.config.ttl_seconds else { return };
        let ttl_ms = (ttl * 1000.0) as i64;
        while let Some(&(at, id)) = self.expiry.first() {
            if now - at <= ttl_ms {
                break;
            }
            self.remove(id);
        }
    }

    /// Replays one request.
    pub fn step(&mut self, ev: &Event, neighbours: &Neighbours, correctness: Option<&Correctness>) {
        self.apply_updates(ev.time_ms);
        self.expire(ev.time_ms);
        self.requests += 1;
        let exact_before = self.exact;
        let semantic_before = self.semantic;
        let hit = if self.entries.contains_key(&ev.id) {
            self.exact += 1;
            self.touch(ev.id);
            true
        } else {
            let threshold = self.config.threshold;
            let mut above = 0usize;
            let found = neighbours.of(ev.id).iter().take_while(|&&(_, s)| s >= threshold).find(|&&(other, _)| {
                above += 1;
                self.entries.contains_key(&other)
            });
            match found {
                Some(&(other, sim)) => {
                    self.semantic += 1;
                    self.wrong += correctness.map_or(0.0, |c| c.wrong_probability(sim));
                    self.touch(other);
                    true
                }
                None => {
                    if neighbours.is_cut(ev.id) && above == neighbours.of(ev.id).len() {
                        self.truncated += 1;
                    }
                    self.insert(ev.id, ev.time_ms);
                    false
                }
            }
        };
        match (hit, ev.output_tokens) {
            (true, Some(t)) => self.saved += t,
            (_, None) => self.tokens_known = false,
            _ => {}
        }
        if let Some(t) = ev.tenant.map(|t| t as usize) {
            if self.by_tenant.len() <= t {
                self.by_tenant.resize(t + 1, [0; 3]);
            }
            let c = &mut self.by_tenant[t];
            c[0] += 1;
            c[1] += self.exact - exact_before;
            c[2] += self.semantic - semantic_before;
        }
    }

    fn insert(&mut self, id: u32, now: i64) {
        if self.config.capacity == 0 {
            return;
        }
        while self.entries.len() >= self.config.capacity {
            let Some((_, oldest)) = self.lru.pop_first() else { break };
            self.remove(oldest);
        }
        self.tick += 1;
        self.entries.insert(id, Entry { cached_at: now, tick: self.tick });
        self.lru.insert(self.tick, id);
        self.expiry.insert((now, id));
    }

    /// What the cache did; `tenants` names the tenant indices of the events.
    pub fn row(&self, correctness: Option<&Correctness>, tenants: &[String]) -> CacheRow {
        let n = self.requests.max(1) as f64;
        let c = &self.config;
        let wrong_share = correctness.map(|_| if self.semantic == 0 { 0.0 } else { self.wrong / self.semantic as f64 });
        CacheRow {
            threshold: c.threshold,
            capacity: c.capacity,
            ttl_seconds: c.ttl_seconds,
            updates: c.updates.label(),
            requests: self.requests,
            exact_hits: self.exact,
            semantic_hits: self.semantic,
            exact_hit_rate: self.exact as f64 / n,
            semantic_hit_rate: self.semantic as f64 / n,
            wrong_answer_share: wrong_share,
            wrong_answer_rate: correctness.map(|_| self.wrong / n),
            flushes: self.flushes,
            truncated_lookups: self.truncated,
            output_tokens_saved: (self.tokens_known && self.requests > 0).then_some(self.saved),
            tenants: self
                .by_tenant
                .iter()
                .zip(tenants)
                .filter(|(c, _)| c[0] > 0)
                .map(|(c, name)| TenantHits {
                    name: name.clone(),
                    requests: c[0],
                    exact_hit_rate: c[1] as f64 / c[0] as f64,
                    semantic_hit_rate: c[2] as f64 / c[0] as f64,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{NeighbourIndex, SearchMethod, SearchSettings};

    /// Three directions: 0 and 1 are near (cos 0.98), 2 is far from both.
    fn index() -> NeighbourIndex {
        let unit = |a: f32| vec![a.cos(), a.sin()];
        let mut ix = NeighbourIndex::new(SearchSettings::new(SearchMethod::Exact, 0.5), 2, 0);
        ix.add(&[unit(0.0), unit(0.2), unit(1.5)]);
        ix
    }

    fn run(cfg: CacheConfig, events: &[(u32, i64)]) -> CacheRow {
        let ix = index();
        let mut r = Replay::new(cfg);
        for &(id, t) in events {
            r.step(
                &Event { id, time_ms: t, input_tokens: None, output_tokens: Some(10), tenant: None },
                ix.neighbours(),
                None,
            );
        }
        r.row(None, &[])
    }

    #[test]
    fn hits_are_counted_per_tenant_in_one_shared_cache() {
        let ix = index();
        let mut r = Replay::new(cfg(0.9, 10, None, "never"));
        // ads asks 0; search asks 0 (an exact hit on ads' answer) and 1 (a semantic hit); ads asks 2.
        for (id, tenant) in [(0, 0), (0, 1), (1, 1), (2, 0)] {
            let ev = Event { id, time_ms: 0, input_tokens: None, output_tokens: None, tenant: Some(tenant) };
            r.step(&ev, ix.neighbours(), None);
        }
        let row = r.row(None, &["ads".into(), "search".into()]);
        let t = |n: &str| row.tenants.iter().find(|t| t.name == n).cloned().unwrap_or_else(|| panic!("{n}"));
        assert_eq!((t("ads").requests, t("ads").exact_hit_rate, t("ads").semantic_hit_rate), (2, 0.0, 0.0));
        assert_eq!((t("search").requests, t("search").exact_hit_rate, t("search").semantic_hit_rate), (2, 0.5, 0.5));
        assert!((row.exact_hit_rate - 0.25).abs() < 1e-12 && (row.semantic_hit_rate - 0.25).abs() < 1e-12);
    }

    fn cfg(threshold: f32, capacity: usize, ttl: Option<f64>, updates: &str) -> CacheConfig {
        CacheConfig {
            threshold,
            capacity,
            ttl_seconds: ttl,
            updates: Cadence::parse(updates).unwrap_or(Cadence::Never),
        }
    }

    #[test]
    fn exact_and_semantic_hits_follow_the_threshold() {
        let ev = [(0, 0), (0, 1), (1, 2), (2, 3), (1, 4)];
        let r = run(cfg(0.95, 10, None, "never"), &ev);
        // 0 miss, 0 exact, 1 semantic (cos 0.98 to 0), 2 miss, 1 semantic again (1 was never cached).
        assert_eq!((r.exact_hits, r.semantic_hits, r.requests), (1, 2, 5));
        assert_eq!(r.output_tokens_saved, Some(30));
        let strict = run(cfg(0.99, 10, None, "never"), &ev);
        // 1 misses and is cached, so its second request is an exact hit.
        assert_eq!((strict.exact_hits, strict.semantic_hits), (2, 0));
    }

    #[test]
    fn capacity_evicts_the_least_recently_used() {
        // Capacity 2: 0, 2 cached; 0 used again; 1 (near 0) hits 0; then … 2 is evicted by nothing.
        let r = run(cfg(0.99, 2, None, "never"), &[(0, 0), (2, 1), (0, 2), (1, 3), (2, 4), (0, 5)]);
        // 0 miss, 2 miss, 0 hit, 1 miss → evicts 2 (LRU), 2 miss → evicts 0, 0 miss.
        assert_eq!((r.exact_hits, r.semantic_hits), (1, 0));
        let none = run(cfg(0.5, 0, None, "never"), &[(0, 0), (0, 1)]);
        assert_eq!(none.exact_hits, 0, "a cache of no entries never hits");
    }

    #[test]
    fn ttl_counts_from_caching_and_updates_flush() {
        let s = 1000;
        // TTL 10 s: hit at 5 s, hit at 10 s (not extended by the hit), miss at 11 s.
        let r = run(cfg(0.99, 10, Some(10.0), "never"), &[(0, 0), (0, 5 * s), (0, 10 * s), (0, 11 * s)]);
        assert_eq!(r.exact_hits, 2);
        // Daily updates: requests a day apart never hit; within a day they do.
        let day = 86_400 * s;
        let r =
            run(cfg(0.99, 10, None, "daily"), &[(0, 0), (0, day / 2), (0, day + 1), (0, 3 * day), (0, 3 * day + 1)]);
        assert_eq!((r.exact_hits, r.flushes), (2, 2));
        let dates = Cadence::parse("1970-01-02+1970-01-04").map(|c| c.label()).unwrap_or_default();
        assert_eq!(dates, "1970-01-02+1970-01-04");
        let r = run(cfg(0.99, 10, None, "1970-01-02+1970-01-04"), &[(0, 0), (0, day / 2), (0, day + 1), (0, 2 * day)]);
        assert_eq!((r.exact_hits, r.flushes), (2, 1));
        assert!(Cadence::parse("fortnightly").is_err());
        let secs = Cadence::parse("86400+1970-01-04");
        assert!(matches!(secs, Ok(Cadence::Dates { ref ms, .. }) if ms == &[86_400_000, 3 * 86_400_000]), "{secs:?}");
    }
}
