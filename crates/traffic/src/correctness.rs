//! What a semantic hit costs in correctness, estimated on labelled pairs.
//!
//! A labelled pair is two sentences and a gold score; "same intent" is a score at or above
//! `same_at` (STS-B's 0–5 scale: 4.0, "mostly equivalent"; a 0/1 duplicate label: 1). Each pair's
//! cosine similarity comes from the same encoder as the log's. Two views:
//! - per threshold, the precision (of the pairs at or above it, the share of the same intent) and
//!   the recall (of the same-intent pairs, the share at or above it);
//! - per semantic hit of the replay, the probability that it served a different question: the
//!   share of not-same pairs among the [`NEAREST`] labelled pairs closest in similarity to the
//!   hit's. Conditioning on the hit's own similarity (not on the threshold alone) keeps the
//!   estimate fair when the log's hits sit at other similarities than the labelled set's pairs.

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrafficError};

/// Labelled pairs consulted per similarity value.
pub const NEAREST: usize = 40;

/// Precision and recall of "same answer" at one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdQuality {
    pub threshold: f32,
    /// Labelled pairs at or above the threshold.
    pub pairs_above: usize,
    /// Of those, the share with the same intent (`None` when no pair reaches the threshold).
    pub precision: Option<f64>,
    /// Of the same-intent pairs, the share at or above the threshold.
    pub recall: f64,
}

/// The labelled pairs, as (cosine similarity, same intent), sorted by similarity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correctness {
    /// Where the pairs came from.
    pub source: String,
    pub same_at: f64,
    pub pairs: usize,
    pub same_intent: usize,
    #[serde(skip)]
    points: Vec<(f32, bool)>,
}

impl Correctness {
    /// `points`: each pair's cosine similarity and gold score.
    pub fn new(source: String, same_at: f64, points: impl IntoIterator<Item = (f32, f64)>) -> Result<Self> {
        let mut points: Vec<(f32, bool)> = points.into_iter().map(|(s, g)| (s, g >= same_at)).collect();
        if points.len() < NEAREST {
            return Err(TrafficError::Argument {
                name: "--pairs",
                message: format!("{source}: {} labelled pairs, at least {NEAREST} are needed", points.len()),
            });
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let same_intent = points.iter().filter(|p| p.1).count();
        Ok(Self { source, same_at, pairs: points.len(), same_intent, points })
    }

    /// Probability that a semantic hit at similarity `sim` answered a different question.
    pub fn wrong_probability(&self, sim: f32) -> f64 {
        let p = &self.points;
        let k = NEAREST.min(p.len());
        // The window of k points nearest to `sim`: start where `sim` would sort, then slide the
        // window towards whichever side is closer.
        let mut lo = p.partition_point(|q| q.0 < sim).saturating_sub(k / 2).min(p.len() - k);
        while lo > 0 && sim - p[lo - 1].0 < p[lo + k - 1].0 - sim {
            lo -= 1;
        }
        while lo + k < p.len() && p[lo + k].0 - sim < sim - p[lo].0 {
            lo += 1;
        }
        p[lo..lo + k].iter().filter(|q| !q.1).count() as f64 / k as f64
    }

    pub fn at(&self, threshold: f32) -> ThresholdQuality {
        let above = &self.points[self.points.partition_point(|q| q.0 < threshold)..];
        let same = above.iter().filter(|q| q.1).count();
        ThresholdQuality {
            threshold,
            pairs_above: above.len(),
            precision: (!above.is_empty()).then(|| same as f64 / above.len() as f64),
            recall: if self.same_intent == 0 { 0.0 } else { same as f64 / self.same_intent as f64 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_recall_and_the_local_wrong_rate() -> Result<()> {
        // 100 pairs: similarities 0.00..0.99; gold 5 (same) from 0.70 up, except every 4th of those.
        let pts = (0..100).map(|i| {
            let s = i as f32 / 100.0;
            (s, if i >= 70 && i % 4 != 0 { 5.0 } else { 1.0 })
        });
        let c = Correctness::new("synthetic".into(), 4.0, pts)?;
        let q = c.at(0.9);
        assert_eq!(q.pairs_above, 10);
        // 90..99: 92 and 96 are not same → 8 of 10.
        assert_eq!(q.precision, Some(0.8));
        // Same-intent pairs: 70..99 minus 72, 76, …, 96 (7) = 23; above 0.9: 8.
        assert!((q.recall - 8.0 / 23.0).abs() < 1e-12);
        assert_eq!(c.at(1.5).precision, None);
        // At 0.1 every one of the 40 nearest pairs (0.00..0.39 region) is different.
        assert_eq!(c.wrong_probability(0.1), 1.0);
        // At the top: the 40 highest (0.60..0.99): 10 below 0.70 + 7 every-4th = 17 wrong.
        assert!((c.wrong_probability(1.0) - 17.0 / 40.0).abs() < 1e-12);
        assert!(Correctness::new("few".into(), 4.0, [(0.5, 5.0)]).is_err());
        Ok(())
    }
}
