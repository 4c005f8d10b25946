//! The second-moment matrix of a linear layer's inputs, XᵀX, accumulated over a calibration set.

use crate::error::SolveError;

/// Σ x xᵀ over every input row x seen, with the row count. Full symmetric `[cols, cols]`, f64 so a
/// long calibration run does not lose small contributions.
#[derive(Debug, Clone, PartialEq)]
pub struct Hessian {
    cols: usize,
    rows: u64,
    sum: Vec<f64>,
}

impl Hessian {
    pub fn new(cols: usize) -> Self {
        Hessian { cols, rows: 0, sum: vec![0.0; cols * cols] }
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Input rows accumulated so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds a Gram matrix `gram = XᵀX` (`[cols, cols]`, computed elsewhere, e.g. by a device GEMM)
    /// of `rows` input rows.
    pub fn add_gram(&mut self, gram: &[f32], rows: usize) -> Result<(), SolveError> {
        if gram.len() != self.sum.len() {
            return Err(SolveError::ShapeMismatch { cols: self.cols, got: (gram.len() as f64).sqrt() as usize });
        }
        self.add_gram_rows(0, gram)?;
        self.count(rows);
        Ok(())
    }

    /// Adds input rows `x` (`[rows, cols]` row-major) directly: O(rows · cols²) on one core.
    pub fn add_rows(&mut self, x: &[f32], rows: usize) -> Result<(), SolveError> {
        if x.len() != rows * self.cols {
            return Err(SolveError::ShapeMismatch { cols: self.cols, got: x.len() / rows.max(1) });
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(SolveError::NonFinite);
        }
        let n = self.cols;
        for row in x.chunks_exact(n) {
            for (i, &a) in row.iter().enumerate() {
                let a = f64::from(a);
                if a == 0.0 {
                    continue;
                }
                for (s, &b) in self.sum[i * n..(i + 1) * n].iter_mut().zip(row) {
                    *s += a * f64::from(b);
                }
            }
        }
        self.rows += rows as u64;
        Ok(())
    }

    /// H = 2 XᵀX / n, the Hessian of the layer's squared output error (GPTQ's normalisation).
    pub fn matrix(&self) -> Vec<f64> {
        let k = 2.0 / self.rows.max(1) as f64;
        self.sum.iter().map(|s| s * k).collect()
    }

    /// [`Hessian::matrix`] with rows and columns in `order` (`out[p][q] = H[order[p]][order[q]]`),
    /// built in the sum's own storage: rows moved along the permutation's cycles, then each row's
    /// columns through one row of scratch.
    pub fn into_matrix_permuted(self, order: &[usize]) -> Vec<f64> {
        let (n, k) = (self.cols, 2.0 / self.rows.max(1) as f64);
        let mut m = self.sum;
        for v in &mut m {
            *v *= k;
        }
        if order.iter().enumerate().all(|(p, &i)| p == i) {
            return m;
        }
        let mut row = vec![0.0; n];
        let mut placed = vec![false; n];
        for start in 0..n {
            if placed[start] {
                continue;
            }
            // Row p takes row order[p]: follow the cycle through `start`, holding its first row.
            row.copy_from_slice(&m[start * n..(start + 1) * n]);
            let mut p = start;
            loop {
                placed[p] = true;
                let src = order[p];
                if src == start {
                    m[p * n..(p + 1) * n].copy_from_slice(&row);
                    break;
                }
                m.copy_within(src * n..(src + 1) * n, p * n);
                p = src;
            }
        }
        for r in m.chunks_exact_mut(n) {
            row.copy_from_slice(r);
            for (v, &j) in r.iter_mut().zip(order) {
                *v = row[j];
            }
        }
        m
    }

    /// Adds rows `first..first + block.len() / cols` of a Gram matrix XᵀX, so a wide input's Gram
    /// can be computed a band at a time; [`Hessian::count`] then adds the rows of X once.
    pub fn add_gram_rows(&mut self, first: usize, block: &[f32]) -> Result<(), SolveError> {
        let start = first * self.cols;
        let Some(dst) = self.sum.get_mut(start..start + block.len()) else {
            return Err(SolveError::ShapeMismatch { cols: self.cols, got: first + block.len() / self.cols.max(1) });
        };
        if block.iter().any(|v| !v.is_finite()) {
            return Err(SolveError::NonFinite);
        }
        for (s, &g) in dst.iter_mut().zip(block) {
            *s += f64::from(g);
        }
        Ok(())
    }

    /// Counts `rows` input rows whose Gram matrix went in through [`Hessian::add_gram_rows`].
    pub fn count(&mut self, rows: usize) {
        self.rows += rows as u64;
    }

    /// Mean x² per input column (the diagonal of XᵀX / n): the importance llama.cpp's imatrix and
    /// Wanda use.
    pub fn mean_square(&self) -> Vec<f64> {
        let n = self.rows.max(1) as f64;
        (0..self.cols).map(|i| self.sum[i * self.cols + i] / n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permuting_in_place_moves_rows_and_columns() {
        let x: Vec<f32> = (0..40).map(|i| (i as f32 * 0.37).cos()).collect();
        let mut h = Hessian::new(5);
        h.add_rows(&x, 8).unwrap();
        let full = h.matrix();
        for order in [vec![0, 1, 2, 3, 4], vec![4, 3, 2, 1, 0], vec![2, 0, 4, 1, 3], vec![1, 0, 3, 4, 2]] {
            let m = h.clone().into_matrix_permuted(&order);
            for (p, &i) in order.iter().enumerate() {
                for (q, &j) in order.iter().enumerate() {
                    assert_eq!(m[p * 5 + q], full[i * 5 + j], "{order:?} ({p},{q})");
                }
            }
        }
    }

    #[test]
    fn gram_and_rows_agree() {
        let x: Vec<f32> = (0..12).map(|i| (i as f32 * 0.7).sin()).collect();
        let (mut a, mut b) = (Hessian::new(3), Hessian::new(3));
        a.add_rows(&x, 4).unwrap();
        let mut gram = vec![0f32; 9];
        for r in x.chunks(3) {
            for i in 0..3 {
                for j in 0..3 {
                    gram[i * 3 + j] += r[i] * r[j];
                }
            }
        }
        b.add_gram(&gram, 4).unwrap();
        for (p, q) in a.matrix().iter().zip(b.matrix()) {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
        assert_eq!(a.rows(), 4);
        assert_eq!(a.add_rows(&[f32::NAN, 0.0, 0.0], 1), Err(SolveError::NonFinite));
    }
}
