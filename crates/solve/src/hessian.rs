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
        if gram.iter().any(|v| !v.is_finite()) {
            return Err(SolveError::NonFinite);
        }
        for (s, &g) in self.sum.iter_mut().zip(gram) {
            *s += f64::from(g);
        }
        self.rows += rows as u64;
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

    /// [`Hessian::matrix`] with rows and columns in `order`: `out[p][q] = H[order[p]][order[q]]`.
    pub fn matrix_permuted(&self, order: &[usize]) -> Vec<f64> {
        let (n, k) = (self.cols, 2.0 / self.rows.max(1) as f64);
        let mut out = Vec::with_capacity(n * n);
        for &i in order {
            let row = &self.sum[i * n..(i + 1) * n];
            out.extend(order.iter().map(|&j| row[j] * k));
        }
        out
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
