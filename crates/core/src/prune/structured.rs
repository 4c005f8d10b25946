//! Structured pruning for LLaMA-style decoders: which FFN channels and KV head groups to keep.
//!
//! Importance is weight-magnitude based (no activations needed): an FFN channel j scores
//! ‖gate[j,:]‖·‖up[j,:]‖ + ‖down[:,j]‖², a KV group scores the squared norms of its K/V rows plus
//! those of its query heads' Q rows and O columns. Activation-aware scores (Wanda-style) need the
//! calibration pipeline and are not used here. The same count is removed from every layer
//! because HF configs hold one FFN width and one head count for all layers.

use std::collections::BTreeMap;

/// Indices kept per layer, in ascending order (so the surviving channels keep their order).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Selection {
    pub head_dim: usize,
    /// Query heads per KV head.
    pub group: usize,
    pub ffn: BTreeMap<usize, Vec<usize>>,
    pub kv_groups: BTreeMap<usize, Vec<usize>>,
}

/// Sum of squares of each row of a row-major [rows, cols] matrix.
pub fn row_sq_norms(w: &[f32], cols: usize) -> Vec<f64> {
    w.chunks_exact(cols.max(1)).map(|r| r.iter().map(|&x| f64::from(x) * f64::from(x)).sum()).collect()
}

/// Sum of squares of each column of a row-major [rows, cols] matrix.
pub fn col_sq_norms(w: &[f32], cols: usize) -> Vec<f64> {
    let mut out = vec![0f64; cols];
    for row in w.chunks_exact(cols.max(1)) {
        for (o, &x) in out.iter_mut().zip(row) {
            *o += f64::from(x) * f64::from(x);
        }
    }
    out
}

/// The `keep` highest scores' indices, ascending. Ties keep the lower index.
pub fn top_indices(scores: &[f64], keep: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.truncate(keep);
    idx.sort_unstable();
    idx
}

pub fn ffn_scores(gate_rows: &[f64], up_rows: &[f64], down_cols: &[f64]) -> Vec<f64> {
    gate_rows.iter().zip(up_rows).zip(down_cols).map(|((g, u), d)| (g * u).sqrt() + d).collect()
}

/// Scores of KV groups from per-row norms of q/k/v and per-column norms of o.
pub fn kv_group_scores(
    q_rows: &[f64],
    k_rows: &[f64],
    v_rows: &[f64],
    o_cols: &[f64],
    n_kv: usize,
    group: usize,
    head_dim: usize,
) -> Vec<f64> {
    (0..n_kv)
        .map(|g| {
            let kv = g * head_dim..(g + 1) * head_dim;
            let q = g * group * head_dim..(g + 1) * group * head_dim;
            let sum = |v: &[f64], r: std::ops::Range<usize>| v.get(r).map_or(0.0, |s| s.iter().sum::<f64>());
            sum(k_rows, kv.clone()) + sum(v_rows, kv) + sum(q_rows, q.clone()) + sum(o_cols, q)
        })
        .collect()
}

/// Expands kept KV groups to kept rows of K/V (`head_dim` rows each) or of Q / columns of O
/// (`group · head_dim` each).
pub fn expand(groups: &[usize], width: usize) -> Vec<usize> {
    groups.iter().flat_map(|&g| g * width..(g + 1) * width).collect()
}

/// Keeps the given rows of a row-major matrix.
pub fn take_rows(w: &[f32], cols: usize, rows: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * cols);
    for &r in rows {
        out.extend_from_slice(&w[r * cols..(r + 1) * cols]);
    }
    out
}

/// Keeps the given columns of a row-major matrix.
pub fn take_cols(w: &[f32], cols: usize, keep: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(w.len() / cols.max(1) * keep.len());
    for row in w.chunks_exact(cols.max(1)) {
        out.extend(keep.iter().map(|&c| row[c]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_indices_keep_order() {
        assert_eq!(top_indices(&[0.1, 5.0, 0.3, 5.0, 2.0], 3), vec![1, 3, 4]);
    }

    #[test]
    fn slicing() {
        let w: Vec<f32> = (0..12).map(|x| x as f32).collect(); // 3×4
        assert_eq!(take_rows(&w, 4, &[0, 2]), vec![0., 1., 2., 3., 8., 9., 10., 11.]);
        assert_eq!(take_cols(&w, 4, &[1, 3]), vec![1., 3., 5., 7., 9., 11.]);
        assert_eq!(col_sq_norms(&w, 4)[0], 0.0 + 16.0 + 64.0);
        assert_eq!(expand(&[1, 3], 2), vec![2, 3, 6, 7]);
    }
}
