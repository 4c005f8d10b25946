//! Weight-space error metrics between an original tensor and its compressed version. They are a
//! proxy for accuracy: cheap, available for any model, and labelled as such wherever shown. They live
//! beside the codecs so an encoder can measure each row while it is still in cache
//! ([`crate::Format::quantize_measured`]).

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

/// Accumulator lanes: independent partial sums the compiler keeps in vector registers (one
/// long chain of dependent adds would run at the adder's latency instead of its throughput).
const LANES: usize = 8;

/// Elements summed in f32 lanes before the partial sums move into f64 (8 per lane): the f32 part
/// adds about 1e-7 relative error, far below the digits a metric is shown with, and lets the hot
/// loop run on 8-wide f32 vectors instead of 4-wide f64 ones.
const CHUNK: usize = 8 * LANES;

/// Elements per parallel piece of [`Sums::of_par`]: small enough to spread a row chunk over the
/// cores, large enough that merging the pieces costs nothing.
const PIECE: usize = 1 << 16;

/// Per-lane partial sums of one chunk (f32), and their running totals (f64).
#[derive(Default)]
struct Lanes<T> {
    ww: [T; LANES],
    hh: [T; LANES],
    wh: [T; LANES],
    ee: [T; LANES],
}

impl<T: Copy + std::ops::Sub<Output = T> + std::ops::Mul<Output = T> + std::ops::AddAssign> Lanes<T> {
    /// Adds one pair to lane `k`; returns its error `w − h`.
    #[inline(always)]
    fn add(&mut self, k: usize, w: T, h: T) -> T {
        let e = w - h;
        self.ww[k] += w * w;
        self.hh[k] += h * h;
        self.wh[k] += w * h;
        self.ee[k] += e * e;
        e
    }
}

impl Sums {
    /// The sums of comparing `original` with `compressed` (the shorter length counts).
    #[inline(always)]
    pub fn of(original: &[f32], compressed: &[f32]) -> Sums {
        let n = original.len().min(compressed.len());
        let (original, compressed) = (&original[..n], &compressed[..n]);
        let mut total = Lanes::<f64>::default();
        let (mut mx, mut zeros) = ([0f32; LANES], [0u32; LANES]);
        let mut zeros_total = 0u64;
        for (a, b) in original.chunks(CHUNK).zip(compressed.chunks(CHUNK)) {
            let mut part = Lanes::<f32>::default();
            let mut add = |k: usize, w: f32, h: f32| {
                let e = part.add(k, w, h);
                mx[k] = mx[k].max(e.abs());
                zeros[k] += u32::from(h == 0.0);
            };
            let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
            let tail = ca.remainder().iter().zip(cb.remainder()).enumerate();
            for (a, b) in ca.zip(cb) {
                for k in 0..LANES {
                    add(k, a[k], b[k]);
                }
            }
            for (k, (&w, &h)) in tail {
                add(k, w, h);
            }
            let overflowed = part.ww.iter().chain(&part.hh).chain(&part.ee).any(|v| !v.is_finite());
            if overflowed {
                // Weights beyond ~1e19 square past f32's range: this chunk again in f64.
                for (k, (&w, &h)) in a.iter().zip(b).enumerate() {
                    total.add(k % LANES, f64::from(w), f64::from(h));
                }
            } else {
                for k in 0..LANES {
                    total.ww[k] += f64::from(part.ww[k]);
                    total.hh[k] += f64::from(part.hh[k]);
                    total.wh[k] += f64::from(part.wh[k]);
                    total.ee[k] += f64::from(part.ee[k]);
                }
            }
            zeros_total += zeros.iter().map(|&z| u64::from(z)).sum::<u64>();
            zeros = [0; LANES];
        }
        let sum = |v: [f64; LANES]| v.iter().sum::<f64>();
        Sums {
            ww: sum(total.ww),
            hh: sum(total.hh),
            wh: sum(total.wh),
            ee: sum(total.ee),
            max_err: f64::from(mx.iter().fold(0f32, |m, &v| m.max(v))),
            zeros: zeros_total as usize,
            n,
        }
    }

    /// [`Sums::of`] over the rayon pool, in fixed pieces merged in order: the same result whatever
    /// the thread count.
    pub fn of_par(original: &[f32], compressed: &[f32]) -> Sums {
        use rayon::prelude::*;
        let parts: Vec<Sums> =
            original.par_chunks(PIECE).zip(compressed.par_chunks(PIECE)).map(|(a, b)| Sums::of(a, b)).collect();
        parts.into_iter().fold(Sums::default(), Sums::merge)
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
    fn lane_and_parallel_sums_agree_with_a_plain_loop() {
        let mut x = 0x9E37_79B9u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as f32 / u32::MAX as f32 - 0.5
        };
        let n = 3 * PIECE + 13;
        let w: Vec<f32> = (0..n).map(|_| next()).collect();
        let h: Vec<f32> =
            w.iter().enumerate().map(|(i, &v)| if i % 7 == 0 { 0.0 } else { v + next() * 0.01 }).collect();
        let (mut ww, mut ee, mut mx, mut zeros) = (0f64, 0f64, 0f64, 0usize);
        for (&a, &b) in w.iter().zip(&h) {
            let e = f64::from(a) - f64::from(b);
            ww += f64::from(a) * f64::from(a);
            ee += e * e;
            mx = mx.max(e.abs());
            zeros += usize::from(b == 0.0);
        }
        for s in [Sums::of(&w, &h), Sums::of_par(&w, &h)] {
            assert!((s.ww - ww).abs() <= 1e-6 * ww && (s.ee - ee).abs() <= 1e-6 * ee);
            assert!((s.max_err - mx).abs() <= 1e-6 * mx);
            assert_eq!((s.zeros, s.n), (zeros, n));
        }
    }

    /// The fused path (ggml: each row measured as it is encoded) and the two-pass one (the others)
    /// give the codes `quantize` gives and the sums of comparing against their decoding.
    #[test]
    fn measured_quantization_equals_quantize_then_compare() {
        let (rows, cols) = (24, 512);
        let mut x = 0x2545_F491u32;
        let w: Vec<f32> = (0..rows * cols)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as f32 / u32::MAX as f32 - 0.5
            })
            .collect();
        for id in ["q8_0", "q4_0", "q5_0", "q4_k", "q6_k", "int4_g128_sym", "fp8_e4m3", "nf4"] {
            let f = crate::lookup(id).unwrap();
            let (q, sums) = f.quantize_measured(&w, rows, cols).unwrap();
            assert_eq!(q, f.quantize(&w, rows, cols).unwrap(), "{id}");
            let want = Sums::of(&w, &f.dequantize(&q).unwrap());
            assert!((sums.ee - want.ee).abs() <= 1e-6 * want.ee && sums.n == want.n, "{id}");
            assert_eq!((sums.max_err, sums.zeros), (want.max_err, want.zeros), "{id}");
        }
        // A non-finite weight is still refused by name, nothing returned.
        let mut bad = w.clone();
        bad[700] = f32::NAN;
        assert!(crate::lookup("q4_k").unwrap().quantize_measured(&bad, rows, cols).is_err());
    }

    #[test]
    fn sums_of_huge_weights_stay_finite() {
        let w = [3e25f32, -2e30, 1.0, 0.0];
        let h = [3e25f32, -2e30, 0.5, 0.0];
        let s = Sums::of(&w, &h);
        assert!(s.ww.is_finite() && (s.ww - 4e60).abs() <= 1e-6 * 4e60, "{}", s.ww);
        assert_eq!(s.ee, 0.25);
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
