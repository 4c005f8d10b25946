//! Weight-space error metrics between an original tensor and its compressed version. They are a
//! proxy for accuracy: cheap, available for any model, and labelled as such wherever shown.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WeightMetrics {
    /// ‖w − ŵ‖ / ‖w‖ (0 for an all-zero original).
    pub rel_error: f64,
    /// 10·log10(‖w‖² / ‖w − ŵ‖²); `None` when the two are identical (infinite SNR).
    pub snr_db: Option<f64>,
    /// cos(w, ŵ); 1 when both are zero.
    pub cosine: f64,
    pub max_abs_error: f64,
    /// Fraction of exact zeros in ŵ.
    pub sparsity: f64,
}

/// The running sums behind [`WeightMetrics`], mergeable so long tensors can be compared in chunks.
/// Sums run in f64 so 100M-element tensors keep their precision.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sums {
    ww: f64,
    hh: f64,
    wh: f64,
    ee: f64,
    max_err: f64,
    zeros: usize,
    n: usize,
}

impl Sums {
    pub fn of(original: &[f32], compressed: &[f32]) -> Sums {
        let mut s = Sums::default();
        for (&w, &h) in original.iter().zip(compressed) {
            let (w, h) = (f64::from(w), f64::from(h));
            let e = w - h;
            s.ww += w * w;
            s.hh += h * h;
            s.wh += w * h;
            s.ee += e * e;
            s.max_err = s.max_err.max(e.abs());
            s.zeros += usize::from(h == 0.0);
            s.n += 1;
        }
        s
    }

    pub fn merge(self, o: Sums) -> Sums {
        Sums {
            ww: self.ww + o.ww,
            hh: self.hh + o.hh,
            wh: self.wh + o.wh,
            ee: self.ee + o.ee,
            max_err: self.max_err.max(o.max_err),
            zeros: self.zeros + o.zeros,
            n: self.n + o.n,
        }
    }

    pub fn metrics(&self) -> WeightMetrics {
        let Sums { ww, hh, wh, ee, max_err, zeros, n } = *self;
        let cosine = if ww == 0.0 && hh == 0.0 {
            1.0
        } else if ww == 0.0 || hh == 0.0 {
            0.0
        } else {
            wh / (ww.sqrt() * hh.sqrt())
        };
        WeightMetrics {
            rel_error: if ww == 0.0 { ee.sqrt() } else { (ee / ww).sqrt() },
            snr_db: (ee > 0.0).then(|| 10.0 * (ww / ee).log10()),
            cosine,
            max_abs_error: max_err,
            sparsity: if n == 0 { 0.0 } else { zeros as f64 / n as f64 },
        }
    }
}

impl WeightMetrics {
    /// Compares `original` and `compressed` element-wise.
    pub fn compare(original: &[f32], compressed: &[f32]) -> WeightMetrics {
        Sums::of(original, compressed).metrics()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_tensors() {
        let m = WeightMetrics::compare(&[1.0, -2.0, 0.0], &[1.0, -2.0, 0.0]);
        assert_eq!(m.rel_error, 0.0);
        assert_eq!(m.snr_db, None);
        assert!((m.cosine - 1.0).abs() < 1e-12);
        assert!((m.sparsity - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn known_error() {
        // w = (3, 4), ŵ = (3, 0): ‖e‖ = 4, ‖w‖ = 5.
        let m = WeightMetrics::compare(&[3.0, 4.0], &[3.0, 0.0]);
        assert!((m.rel_error - 0.8).abs() < 1e-12);
        assert!((m.snr_db.unwrap() - 10.0 * (25.0f64 / 16.0).log10()).abs() < 1e-12);
        assert!((m.cosine - 0.6).abs() < 1e-12);
        assert_eq!(m.max_abs_error, 4.0);
        assert_eq!(m.sparsity, 0.5);
    }
}
