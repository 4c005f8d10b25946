//! Who is near whom: for every distinct query, the earlier and later distinct queries whose cosine
//! similarity reaches the lowest threshold of the sweep. The replay then needs no vector search at
//! all: a query's semantic candidates are its list, best first, filtered by what the simulated
//! cache still holds.
//!
//! Two searches fill the lists: exact (every pair; quadratic, the reference) and HNSW through the
//! `hnsw_rs` crate (top-k per query, then the similarity floor), checked against exact search by
//! [`pair_recall`]. Queries arrive in chunks: a chunk is searched against everything before it, its
//! own pairs are compared exactly, and only then is it added to the index.

use anndists::dist::Distance;
use hnsw_rs::hnsw::Hnsw;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Longest neighbour list kept per query (the most similar first). A lookup that reaches the end
/// of a list that was cut (or of an HNSW search that may have stopped short) without a cached
/// neighbour is counted as truncated: a longer list might have hit.
pub const LIST_CAP: usize = 64;
/// Exact search keeps at most this many pairs per new query and step before the lists are capped,
/// so a very low threshold cannot make one step's candidates outgrow memory.
const ROW_CAP: usize = 4 * LIST_CAP;

/// How the neighbour lists are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMethod {
    /// Every pair compared: exact, O(n²).
    Exact,
    /// Hierarchical navigable small-world graph (approximate, ~O(n log n)).
    Hnsw,
}

/// The search's settings; the defaults reach a pair recall ≥ 0.99 on STS-B sentences (tested).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchSettings {
    pub method: SearchMethod,
    /// Pairs below this cosine similarity are never candidates (the sweep's lowest threshold).
    pub min_similarity: f32,
    /// HNSW: neighbours asked per query.
    pub k: usize,
    /// HNSW: candidate list width during search.
    pub ef_search: usize,
    /// HNSW: links per node.
    pub max_connections: usize,
    /// HNSW: candidate list width while building.
    pub ef_construction: usize,
}

impl SearchSettings {
    pub fn new(method: SearchMethod, min_similarity: f32) -> Self {
        Self { method, min_similarity, k: LIST_CAP, ef_search: 128, max_connections: 24, ef_construction: 200 }
    }
}

/// Distance `1 − a·b` between unit vectors, never negative (rounding can push a·b just past 1).
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitDot;

impl Distance<f32> for UnitDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

/// Dot product in 16 independent lanes (vectorised by the compiler), summed at the end.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Each distinct query's neighbours, most similar first.
#[derive(Debug, Clone, Default)]
pub struct Neighbours {
    lists: Vec<Vec<(u32, f32)>>,
    /// Lists that may miss neighbours above the floor (cut at the cap, or found by a search that
    /// returned as many results as it was asked for).
    cut: Vec<bool>,
}

impl Neighbours {
    pub fn of(&self, id: u32) -> &[(u32, f32)] {
        self.lists.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// Whether the list may miss neighbours above the floor (see [`LIST_CAP`]).
    pub fn is_cut(&self, id: u32) -> bool {
        self.cut.get(id as usize).copied().unwrap_or(false)
    }

    fn mark_cut(&mut self, id: u32) {
        if let Some(c) = self.cut.get_mut(id as usize) {
            *c = true;
        }
    }

    pub fn len(&self) -> usize {
        self.lists.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    fn grow_to(&mut self, n: usize) {
        if self.lists.len() < n {
            self.lists.resize_with(n, Vec::new);
            self.cut.resize(n, false);
        }
    }

    fn push(&mut self, id: u32, other: u32, sim: f32) {
        let list = &mut self.lists[id as usize];
        if list.len() >= LIST_CAP && list.last().is_some_and(|&(_, s)| s >= sim) {
            self.cut[id as usize] = true;
            return;
        }
        let at = list.partition_point(|&(_, s)| s >= sim);
        list.insert(at, (other, sim));
        if list.len() > LIST_CAP {
            list.truncate(LIST_CAP);
            self.cut[id as usize] = true;
        }
    }

    fn add_pair(&mut self, a: u32, b: u32, sim: f32) {
        self.push(a, b, sim);
        self.push(b, a, sim);
    }
}

/// The growing index over distinct queries (ids 0, 1, 2, … in arrival order).
pub struct NeighbourIndex {
    settings: SearchSettings,
    dim: usize,
    /// Exact search: every vector, row after row.
    vectors: Vec<f32>,
    hnsw: Option<Hnsw<'static, f32, UnitDot>>,
    count: usize,
    neighbours: Neighbours,
    /// Every pair at or above the floor, kept only when asked for (recall checks).
    pairs: Option<Vec<(u32, u32)>>,
}

impl std::fmt::Debug for NeighbourIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NeighbourIndex").field("settings", &self.settings).field("count", &self.count).finish()
    }
}

impl NeighbourIndex {
    /// `expected` sizes the HNSW tables (a hint, not a limit).
    pub fn new(settings: SearchSettings, dim: usize, expected: usize) -> Self {
        let dim = dim.max(1);
        let hnsw = (settings.method == SearchMethod::Hnsw).then(|| {
            Hnsw::new(settings.max_connections.min(255), expected.max(1024), 16, settings.ef_construction, UnitDot)
        });
        Self { settings, dim, vectors: Vec::new(), hnsw, count: 0, neighbours: Neighbours::default(), pairs: None }
    }

    /// Keeps every pair found (for [`pair_recall`]).
    pub fn record_pairs(mut self) -> Self {
        self.pairs = Some(Vec::new());
        self
    }

    pub fn settings(&self) -> &SearchSettings {
        &self.settings
    }

    pub fn neighbours(&self) -> &Neighbours {
        &self.neighbours
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The pairs found so far (when recorded), as (earlier, later) ids.
    pub fn pairs(&self) -> Option<&[(u32, u32)]> {
        self.pairs.as_deref()
    }

    /// Moves an exact index onto HNSW (its vectors inserted, its lists kept): exact search is
    /// quadratic, so a growing log switches once it is large.
    pub fn into_hnsw(self, expected: usize) -> Self {
        if self.settings.method == SearchMethod::Hnsw {
            return self;
        }
        let settings = SearchSettings { method: SearchMethod::Hnsw, ..self.settings };
        let mut next = Self::new(settings, self.dim, expected.max(self.count));
        if let Some(h) = &next.hnsw {
            let items: Vec<(&[f32], usize)> =
                self.vectors.chunks_exact(self.dim).enumerate().map(|(i, v)| (v, i)).collect();
            h.parallel_insert_slice(&items);
        }
        next.count = self.count;
        next.neighbours = self.neighbours;
        next.pairs = self.pairs;
        next
    }

    /// Adds the next distinct queries (unit vectors of this index's dimension), finding their
    /// neighbours among everything added before and among themselves.
    pub fn add(&mut self, batch: &[Vec<f32>]) {
        let base = self.count;
        let floor = self.settings.min_similarity;
        let dim = self.dim;
        let k = self.settings.k.max(1);
        // Per new query: its neighbours among earlier queries, and whether that search may have
        // stopped short (HNSW returned all k it was asked for; exact search hit its row cap).
        let earlier: Vec<(Vec<(u32, f32)>, bool)> = match (&self.hnsw, base) {
            (_, 0) => vec![(Vec::new(), false); batch.len()],
            (Some(h), _) => {
                let ef = self.settings.ef_search.max(k);
                batch
                    .par_iter()
                    .map(|v| {
                        let found = h.search(v, k, ef);
                        let full = found.len() >= k;
                        let kept: Vec<(u32, f32)> = found
                            .into_iter()
                            .map(|n| (n.d_id as u32, 1.0 - n.distance))
                            .filter(|&(_, s)| s >= floor)
                            .collect();
                        let cut = full && kept.len() >= k;
                        (kept, cut)
                    })
                    .collect()
            }
            (None, _) => {
                let stored = &self.vectors;
                batch
                    .par_iter()
                    .map(|v| {
                        let mut found: Vec<(u32, f32)> = stored
                            .chunks_exact(dim)
                            .enumerate()
                            .filter_map(|(j, w)| {
                                let s = dot(v, w);
                                (s >= floor).then_some((j as u32, s))
                            })
                            .collect();
                        keep_best(&mut found, ROW_CAP)
                    })
                    .collect()
            }
        };
        let within: Vec<(Vec<(u32, f32)>, bool)> = (0..batch.len())
            .into_par_iter()
            .map(|j| {
                let mut found: Vec<(u32, f32)> = (0..j)
                    .filter_map(|i| {
                        let s = dot(&batch[i], &batch[j]);
                        (s >= floor).then_some(((base + i) as u32, s))
                    })
                    .collect();
                keep_best(&mut found, ROW_CAP)
            })
            .collect();
        self.neighbours.grow_to(base + batch.len());
        for (j, ((before, cut_before), (inside, cut_inside))) in earlier.into_iter().zip(within).enumerate() {
            let id = (base + j) as u32;
            if cut_before || cut_inside {
                self.neighbours.mark_cut(id);
            }
            for (other, sim) in before.into_iter().chain(inside) {
                self.neighbours.add_pair(other, id, sim.min(1.0));
                if let Some(p) = self.pairs.as_mut() {
                    p.push((other, id));
                }
            }
        }
        match &self.hnsw {
            Some(h) => {
                let items: Vec<(&[f32], usize)> =
                    batch.iter().enumerate().map(|(i, v)| (v.as_slice(), base + i)).collect();
                h.parallel_insert_slice(&items);
            }
            None => {
                for v in batch {
                    self.vectors.extend_from_slice(v);
                }
            }
        }
        self.count += batch.len();
    }
}

/// Keeps the `cap` most similar of `found` (in place); true when any were dropped.
fn keep_best(found: &mut Vec<(u32, f32)>, cap: usize) -> (Vec<(u32, f32)>, bool) {
    let cut = found.len() > cap;
    if cut {
        found.select_nth_unstable_by(cap, |a, b| b.1.total_cmp(&a.1));
        found.truncate(cap);
    }
    (std::mem::take(found), cut)
}

/// Share of the reference's pairs that `found` also has (both as (earlier, later) ids).
pub fn pair_recall(reference: &[(u32, u32)], found: &[(u32, u32)]) -> f64 {
    if reference.is_empty() {
        return 1.0;
    }
    let have: std::collections::HashSet<(u32, u32)> = found.iter().copied().collect();
    reference.iter().filter(|p| have.contains(p)).count() as f64 / reference.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = dot(v, v).sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn lists_are_symmetric_sorted_and_capped() {
        let mut ix = NeighbourIndex::new(SearchSettings::new(SearchMethod::Exact, 0.5), 2, 0);
        let a = unit(&[1.0, 0.0]);
        let b = unit(&[1.0, 0.2]);
        let c = unit(&[1.0, 0.6]);
        let d = unit(&[0.0, 1.0]);
        ix.add(&[a, b]);
        ix.add(&[c, d]);
        let n = ix.neighbours();
        let ids = |id| n.of(id).iter().map(|&(o, _)| o).collect::<Vec<_>>();
        assert_eq!(ids(0), vec![1, 2], "b is closer to a than c is");
        assert_eq!(ids(2), vec![1, 0, 3]);
        assert_eq!(ids(3), vec![2], "d is within the floor of c only");
        assert!(n.of(2).windows(2).all(|w| w[0].1 >= w[1].1));

        let mut many = Neighbours::default();
        many.grow_to(LIST_CAP + 10);
        for i in 1..(LIST_CAP + 10) as u32 {
            many.add_pair(0, i, i as f32 / 100.0);
        }
        assert_eq!(many.of(0).len(), LIST_CAP);
        assert!(many.is_cut(0));
        // A list that reached the cap without dropping anything is complete.
        let mut exact = Neighbours::default();
        exact.grow_to(LIST_CAP + 1);
        for i in 1..=LIST_CAP as u32 {
            exact.add_pair(0, i, 0.5);
        }
        assert_eq!(exact.of(0).len(), LIST_CAP);
        assert!(!exact.is_cut(0));
        let mut found: Vec<(u32, f32)> = (0..10).map(|i| (i, i as f32 / 10.0)).collect();
        let (kept, cut) = keep_best(&mut found, 3);
        let mut ids: Vec<u32> = kept.iter().map(|p| p.0).collect();
        ids.sort_unstable();
        assert_eq!((ids, cut), (vec![7, 8, 9], true));
        assert_eq!(many.of(0)[0], ((LIST_CAP + 9) as u32, (LIST_CAP + 9) as f32 / 100.0));
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-5);
        assert!(UnitDot.eval(&unit(&a), &unit(&a)) < 1e-6);
    }
}
