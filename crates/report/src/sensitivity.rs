//! The sensitivity scan as the report shows it: for each candidate format, the KL divergence from
//! the original when only one tensor is compressed, on a grid of rows (`embed`, layers `0`…,
//! `head`) × tensor kinds. Built from a scan by `pareto_runs::scan::sensitivity`; the studio's
//! heatmap is this same type (its TypeScript is generated from it).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Sensitivity {
    /// Tokens the KL was measured on.
    pub tokens: usize,
    pub seconds: f64,
    /// Spearman rank correlation of the cheap proxy with the measured KL.
    pub proxy_spearman: Option<f64>,
    pub formats: Vec<String>,
    pub layers: Vec<String>,
    pub kinds: Vec<String>,
    /// `formats × layers × kinds`, format-major; `None` where the tensor has no such candidate.
    pub cells: Vec<Option<f64>>,
    /// Whether each cell was measured (false: predicted from the anchor format and the proxies).
    pub measured: Vec<bool>,
    pub notes: Vec<String>,
}

impl Sensitivity {
    /// Where format `f`'s cells are in `cells` and `measured`.
    fn block(&self, f: usize) -> std::ops::Range<usize> {
        let per = self.layers.len() * self.kinds.len();
        f * per..(f + 1) * per
    }

    /// The grid of format `f`: rows = layers, columns = kinds.
    pub fn grid(&self, f: usize) -> Vec<&[Option<f64>]> {
        let block = self.cells.get(self.block(f)).unwrap_or_default();
        block.chunks(self.kinds.len().max(1)).collect()
    }

    /// Whether any cell of format `f` was predicted rather than measured.
    pub fn predicted(&self, f: usize) -> bool {
        let measured = self.measured.get(self.block(f)).unwrap_or_default();
        let cells = self.cells.get(self.block(f)).unwrap_or_default();
        cells.iter().zip(measured).any(|(c, m)| c.is_some() && !m)
    }

    /// The `n` (format, row, kind, KL) cells with the largest KL: where compression hurts most.
    pub fn most_sensitive(&self, n: usize) -> Vec<(&str, &str, &str, f64)> {
        let per = self.layers.len() * self.kinds.len();
        let mut all: Vec<(&str, &str, &str, f64)> = Vec::new();
        for (i, v) in self.cells.iter().enumerate() {
            let Some(v) = v else { continue };
            let (f, rest) = (i / per.max(1), i % per.max(1));
            let (r, k) = (rest / self.kinds.len().max(1), rest % self.kinds.len().max(1));
            if let (Some(f), Some(r), Some(k)) = (self.formats.get(f), self.layers.get(r), self.kinds.get(k)) {
                all.push((f, r, k, *v));
            }
        }
        all.sort_by(|a, b| b.3.total_cmp(&a.3));
        all.truncate(n);
        all
    }

    /// The method, in one sentence for both renderers.
    pub fn caption(&self) -> String {
        let proxy = self
            .proxy_spearman
            .map(|r| format!("; the cheap proxy (importance-weighted weight error) ranks like it with Spearman {r:.2}"))
            .unwrap_or_default();
        format!(
            "KL divergence from the original (nats/token, measured on {} tokens) when only that tensor is compressed to the format; larger = more sensitive{proxy}.",
            self.tokens
        )
    }
}
