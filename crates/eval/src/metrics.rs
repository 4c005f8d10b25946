//! Accuracy metrics on plain slices: rank and linear correlation, cosine, retrieval agreement, KL
//! divergence and top-1 agreement of next-token distributions. No candle here.

use serde::{Deserialize, Serialize};

/// Pearson correlation coefficient; `None` when fewer than two points, lengths differ or a side is
/// constant.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// 1-based ranks where tied values share the average of their positions.
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = avg;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman rank correlation (Pearson on average ranks, so ties are handled as scipy does).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() {
        return None;
    }
    pearson(&average_ranks(x), &average_ranks(y))
}

/// Cosine similarity; 0 when either vector is all zeros.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na.sqrt() * nb.sqrt()) }
}

/// Indices of the `k` most similar other rows of `emb` (by cosine) for row `i`, best first; ties
/// broken by the lower index.
fn top_k_neighbours(emb: &[Vec<f32>], i: usize, k: usize) -> Vec<usize> {
    let Some(q) = emb.get(i) else {
        return Vec::new();
    };
    let mut scored: Vec<(usize, f64)> =
        emb.iter().enumerate().filter(|(j, _)| *j != i).map(|(j, e)| (j, cosine(q, e))).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.into_iter().take(k).map(|(j, _)| j).collect()
}

/// Retrieval agreement between two embeddings of the same corpus.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetrievalAgreement {
    pub k: usize,
    /// Mean over queries of |top-k(original) ∩ top-k(compressed)| / k.
    pub overlap_at_k: f64,
    /// Fraction of queries whose top-k set is unchanged.
    pub identical_sets: f64,
    /// Fraction of queries whose nearest neighbour is unchanged.
    pub top1_agreement: f64,
}

/// Each row queries all other rows; compares the top-k neighbour sets of `a` and `b`. `None` when
/// the corpora differ in size or hold fewer than `k + 1` rows.
pub fn retrieval_agreement(a: &[Vec<f32>], b: &[Vec<f32>], k: usize) -> Option<RetrievalAgreement> {
    if a.len() != b.len() || k == 0 || a.len() <= k {
        return None;
    }
    let (mut overlap, mut same, mut top1) = (0.0, 0usize, 0usize);
    for i in 0..a.len() {
        let na = top_k_neighbours(a, i, k);
        let nb = top_k_neighbours(b, i, k);
        let common = na.iter().filter(|j| nb.contains(j)).count();
        overlap += common as f64 / k as f64;
        same += usize::from(common == k);
        top1 += usize::from(na.first() == nb.first());
    }
    let n = a.len() as f64;
    Some(RetrievalAgreement {
        k,
        overlap_at_k: overlap / n,
        identical_sets: same as f64 / n,
        top1_agreement: top1 as f64 / n,
    })
}

/// log-softmax of one row of logits, in f64.
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let sum: f64 = logits.iter().map(|&v| (f64::from(v) - max).exp()).sum();
    let lse = max + sum.ln();
    logits.iter().map(|&v| f64::from(v) - lse).collect()
}

/// KL(p ‖ q) in nats from two log-probability rows (p = reference).
pub fn kl_divergence(log_p: &[f64], log_q: &[f64]) -> f64 {
    log_p.iter().zip(log_q).map(|(&lp, &lq)| if lp == f64::NEG_INFINITY { 0.0 } else { lp.exp() * (lp - lq) }).sum()
}

/// Index of the largest value (first on ties).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Median, spread and extremes of a set of measurements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// Sample standard deviation (0 for one value).
    pub stddev: f64,
}

impl Summary {
    /// `None` for an empty slice.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = if n > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64 } else { 0.0 };
        Some(Self { n, median, mean, min: v[0], max: v[n - 1], stddev: var.sqrt() })
    }

    /// Standard error of the mean: stddev / √n (0 for one value).
    pub fn standard_error(&self) -> f64 {
        self.stddev / (self.n as f64).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn pearson_known_values() {
        assert!(close(pearson(&[1., 2., 3.], &[2., 4., 6.]).unwrap(), 1.0));
        assert!(close(pearson(&[1., 2., 3.], &[3., 2., 1.]).unwrap(), -1.0));
        // scipy.stats.pearsonr([1,2,3,4,5],[2,1,4,3,5]) = 0.8
        assert!(close(pearson(&[1., 2., 3., 4., 5.], &[2., 1., 4., 3., 5.]).unwrap(), 0.8));
        assert_eq!(pearson(&[1., 1.], &[1., 2.]), None);
        assert_eq!(pearson(&[1.], &[1.]), None);
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(average_ranks(&[10., 20., 10., 30.]), vec![1.5, 3.0, 1.5, 4.0]);
        assert_eq!(average_ranks(&[5., 5., 5.]), vec![2.0, 2.0, 2.0]);
    }

    #[test]
    fn spearman_with_ties_matches_scipy() {
        // scipy.stats.spearmanr([1,2,2,3,4],[1,3,2,2,5]).correlation = 0.7631578947368421
        let r = spearman(&[1., 2., 2., 3., 4.], &[1., 3., 2., 2., 5.]).unwrap();
        assert!((r - 0.763_157_894_736_842_1).abs() < 1e-12, "{r}");
    }

    #[test]
    fn cosine_and_retrieval() {
        assert!(close(cosine(&[1., 0.], &[0., 1.]), 0.0));
        assert!(close(cosine(&[1., 1.], &[2., 2.]), 1.0));
        assert_eq!(cosine(&[0., 0.], &[1., 1.]), 0.0);
        let a = vec![vec![1., 0.], vec![0.9, 0.1], vec![0., 1.], vec![0.1, 0.9]];
        let same = retrieval_agreement(&a, &a, 1).unwrap();
        assert_eq!((same.overlap_at_k, same.identical_sets, same.top1_agreement), (1.0, 1.0, 1.0));
        let b = vec![vec![1., 0.], vec![0., 1.], vec![0.9, 0.1], vec![0.1, 0.9]];
        let moved = retrieval_agreement(&a, &b, 1).unwrap();
        assert!(moved.top1_agreement < 1.0);
        assert_eq!(retrieval_agreement(&a, &a, 4), None);
    }

    #[test]
    fn kl_is_zero_for_equal_and_positive_otherwise() {
        let p = log_softmax(&[1.0, 2.0, 3.0]);
        let q = log_softmax(&[3.0, 2.0, 1.0]);
        assert!(kl_divergence(&p, &p).abs() < 1e-12);
        let kl = kl_divergence(&p, &q);
        // sum p*(lp-lq) with p = softmax([1,2,3]) = [0.0900, 0.2447, 0.6652]: 2*(0.6652-0.0900)
        assert!((kl - 2.0 * (p[2].exp() - p[0].exp())).abs() < 1e-12, "{kl}");
        assert!(close(p.iter().map(|v| v.exp()).sum::<f64>(), 1.0));
        assert_eq!(argmax(&[0.0, 3.0, 3.0, 1.0]), 1);
    }

    #[test]
    fn summary_median_and_spread() {
        let s = Summary::of(&[3.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((s.n, s.median, s.min, s.max), (4, 2.5, 1.0, 10.0));
        assert!(close(s.mean, 4.0));
        assert!(close(s.stddev, (50.0f64 / 3.0).sqrt()));
        assert_eq!(Summary::of(&[]), None);
    }
}
