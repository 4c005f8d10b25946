//! SparseGPT (Frantar, Alistarh, "SparseGPT: Massive Language Models Can Be Accurately Pruned in
//! One-Shot", ICML 2023).
//!
//! GPTQ's column sweep with a mask: the weights a column drops are set to zero (or, jointly with
//! quantization, the kept ones are rounded to the grid) and the error is spread over the columns
//! not yet visited through the upper Cholesky factor U of the damped inverse Hessian, exactly as
//! GPTQ spreads its rounding error. Which weights go is decided lazily on the weights as updated
//! so far, with the OBS saliency w² / U_qq²: for unstructured sparsity at the start of each block
//! of [`BLOCK`] columns, the given fraction of each row's block; for N:M at the start of each group
//! of m columns. (The reference compares the whole block across rows; comparing within each row,
//! as Wanda found better for LLMs, also lets rows be solved independently in parallel tiles.)

use half::f16;
use pareto_core::prune::wanda::{WandaPattern, keep_mask};
use pareto_formats::{Format, QTensor};
use rayon::prelude::*;

use crate::error::SolveError;
use crate::gptq::{GptqFactor, TILE_ROWS, spread};

/// Columns whose unstructured mask is chosen together (the reference's block size).
pub const BLOCK: usize = 128;

/// A pruned tensor: its values after the sweep (pruning only) or its codes (joint with GPTQ
/// quantization), with the mask and the objective.
#[derive(Debug, Clone)]
pub struct SparseResult {
    /// The pruned and updated weights, `[rows, cols]` (pruning only).
    pub values: Option<Vec<f32>>,
    /// The codes (jointly quantized): pruned weights have the code of zero.
    pub codes: Option<QTensor>,
    /// Which weights are kept, row-major.
    pub keep: Vec<bool>,
    /// Σ (w − q)² / U_ii² / 2 over the tensor, as GPTQ's.
    pub loss: f64,
}

impl GptqFactor {
    /// Prunes `w` (`[rows, cols]`) to `pattern`, updating the remaining weights, and quantizes
    /// them to `format` when one is given (an integer grid). Needs a factor in natural column
    /// order (no act-order), as blocks and N:M groups are runs of consecutive columns.
    pub fn solve_sparse(
        &self,
        w: &[f32],
        rows: usize,
        cols: usize,
        pattern: WandaPattern,
        format: Option<&'static Format>,
    ) -> Result<SparseResult, SolveError> {
        if self.act_order() {
            return Err(SolveError::Unsupported(
                "sparsegpt sweeps columns in natural order; build the factor without act-order".into(),
            ));
        }
        if self.cols() != cols || w.len() != rows * cols {
            return Err(SolveError::ShapeMismatch { cols, got: self.cols() });
        }
        if let WandaPattern::NM { n, m } = pattern
            && (m == 0 || n >= m || !cols.is_multiple_of(m))
        {
            return Err(SolveError::Unsupported(format!(
                "{n}:{m} sparsity needs 0 < n < m and {cols} columns a multiple of m"
            )));
        }
        let grid = match format {
            Some(f) => {
                f.check_shape(rows, cols)?;
                Some(f.int_grid().ok_or(SolveError::NotAGrid { format: f.id })?)
            }
            None => None,
        };
        let tiles: Vec<(usize, &[f32])> = w.chunks(TILE_ROWS * cols).enumerate().collect();
        let solved = tiles
            .into_par_iter()
            .map(|(t, chunk)| self.sparse_tile(chunk, t * TILE_ROWS, pattern, grid))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = SparseResult { values: None, codes: None, keep: Vec::with_capacity(rows * cols), loss: 0.0 };
        let (mut values, mut codes, mut scales, mut zeros) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for t in solved {
            out.keep.extend(t.keep);
            out.loss += t.loss;
            values.extend(t.values);
            codes.extend(t.codes);
            scales.extend(t.scales);
            zeros.extend(t.zeros);
        }
        match grid {
            Some(g) => out.codes = Some(g.assemble(rows, cols, codes, scales, zeros)?),
            None => out.values = Some(values),
        }
        Ok(out)
    }

    fn sparse_tile(
        &self,
        chunk: &[f32],
        first_row: usize,
        pattern: WandaPattern,
        grid: Option<&pareto_formats::IntGrid>,
    ) -> Result<SparseTile, SolveError> {
        let cols = self.cols();
        let u = self.upper();
        let n = chunk.len() / cols;
        let mut w = chunk.to_vec();
        for row in w.chunks_exact_mut(cols) {
            for (x, _) in row.iter_mut().zip(self.dead()).filter(|(_, d)| **d) {
                *x = 0.0;
            }
        }
        let glen = grid.map_or(cols, |g| g.group_len(cols));
        let gpr = cols / glen.max(1);
        let mut t = SparseTile {
            keep: vec![true; n * cols],
            values: if grid.is_none() { vec![0.0; n * cols] } else { Vec::new() },
            codes: if grid.is_some() { vec![0; n * cols] } else { Vec::new() },
            scales: if grid.is_some() { vec![f16::ZERO; n * gpr] } else { Vec::new() },
            zeros: if grid.is_some_and(|g| !g.symmetric()) { vec![0; n * gpr] } else { Vec::new() },
            loss: 0.0,
        };
        let mut params = vec![(f16::ZERO, 0i8); n];
        let mut err = vec![0f32; n];
        // 1 / U_qq: the saliency w² / U_qq² orders like |w| · (1 / U_qq), Wanda's score shape.
        let inv_d: Vec<f32> = (0..cols).map(|q| 1.0 / u[q * cols + q]).collect();
        let decide = |w: &[f32], keep: &mut [bool], start: usize, len: usize, pattern: WandaPattern| {
            let block: Vec<f32> = w.chunks_exact(cols).flat_map(|r| r[start..start + len].iter().copied()).collect();
            let mask = keep_mask(&block, len, &inv_d[start..start + len], pattern);
            for (r, m) in mask.chunks_exact(len).enumerate() {
                keep[r * cols + start..r * cols + start + len].copy_from_slice(m);
            }
        };
        for p in 0..cols {
            match pattern {
                WandaPattern::Unstructured(_) if p % BLOCK == 0 => {
                    decide(&w, &mut t.keep, p, BLOCK.min(cols - p), pattern);
                }
                WandaPattern::NM { m, .. } if p % m == 0 => decide(&w, &mut t.keep, p, m, pattern),
                _ => {}
            }
            if let Some(g) = grid
                && p % glen == 0
            {
                for (r, slot) in params.iter_mut().enumerate() {
                    let group = &w[r * cols + p..r * cols + p + glen];
                    let (s, z) = g.params(group).ok_or(SolveError::ScaleOverflow { row: first_row + r, col: p })?;
                    t.scales[r * gpr + p / glen] = s;
                    if let Some(zero) = t.zeros.get_mut(r * gpr + p / glen) {
                        *zero = z;
                    }
                    *slot = (s, z);
                }
            }
            let d = u[p * cols + p];
            for r in 0..n {
                let x = w[r * cols + p];
                let kept = t.keep[r * cols + p];
                let q = match grid {
                    Some(g) => {
                        let (c, q) = g.code_of(if kept { x } else { 0.0 }, params[r].0, params[r].1);
                        t.codes[r * cols + p] = c;
                        q
                    }
                    None => {
                        let q = if kept { x } else { 0.0 };
                        t.values[r * cols + p] = q;
                        q
                    }
                };
                let e = (x - q) / d;
                t.loss += f64::from(e) * f64::from(e) / 2.0;
                err[r] = e;
            }
            spread(&mut w, &err, u, cols, p);
        }
        Ok(t)
    }
}

struct SparseTile {
    keep: Vec<bool>,
    values: Vec<f32>,
    codes: Vec<i8>,
    scales: Vec<f16>,
    zeros: Vec<i8>,
    loss: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GptqOptions, Hessian};
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn output_error(w: &[f32], q: &[f32], x: &[f32], cols: usize) -> f64 {
        let mut e = 0.0;
        for xr in x.chunks_exact(cols) {
            for (wr, qr) in w.chunks_exact(cols).zip(q.chunks_exact(cols)) {
                let d: f64 = wr.iter().zip(qr).zip(xr).map(|((a, b), x)| f64::from((a - b) * x)).sum();
                e += d * d;
            }
        }
        e
    }

    #[test]
    fn the_weight_update_beats_pruning_the_same_mask_alone() {
        let mut rng = StdRng::seed_from_u64(5);
        let (rows, cols, n) = (12, 256, 512);
        // Correlated inputs: the update can move a pruned weight's contribution to its neighbours.
        let base: Vec<f32> = (0..n * cols).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let x: Vec<f32> =
            base.chunks_exact(cols).flat_map(|r| (0..cols).map(move |j| r[j] + 0.7 * r[(j + 1) % cols])).collect();
        let mut h = Hessian::new(cols);
        h.add_rows(&x, n).unwrap();
        let w: Vec<f32> = (0..rows * cols).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let f = GptqFactor::new(&h, &GptqOptions { act_order: false, ..GptqOptions::default() }).unwrap();
        for pattern in [WandaPattern::Unstructured(0.5), WandaPattern::NM { n: 2, m: 4 }] {
            let r = f.solve_sparse(&w, rows, cols, pattern, None).unwrap();
            let v = r.values.unwrap();
            assert_eq!(r.keep.iter().filter(|k| !**k).count(), rows * cols / 2, "{pattern:?}: half the weights go");
            assert!(v.iter().zip(&r.keep).all(|(v, k)| *k || *v == 0.0), "pruned weights are zero");
            if let WandaPattern::NM { .. } = pattern {
                assert!(r.keep.chunks_exact(4).all(|g| g.iter().filter(|k| **k).count() == 2));
            }
            let masked: Vec<f32> = w.iter().zip(&r.keep).map(|(w, k)| if *k { *w } else { 0.0 }).collect();
            let (updated, plain) = (output_error(&w, &v, &x, cols), output_error(&w, &masked, &x, cols));
            assert!(updated < 0.8 * plain, "{pattern:?}: {updated} vs {plain}");
        }
        // Jointly quantized: pruned weights get the code of zero; act-order factors are refused.
        let fmt = pareto_formats::lookup("int4_g32_asym").unwrap();
        let r = f.solve_sparse(&w, rows, cols, WandaPattern::NM { n: 2, m: 4 }, Some(fmt)).unwrap();
        let q = fmt.dequantize(&r.codes.unwrap()).unwrap();
        assert!(q.iter().zip(&r.keep).all(|(v, k)| *k || *v == 0.0));
        let ordered = GptqFactor::new(&h, &GptqOptions::default()).unwrap();
        assert!(matches!(
            ordered.solve_sparse(&w, rows, cols, WandaPattern::Unstructured(0.5), None),
            Err(SolveError::Unsupported(_))
        ));
    }
}
