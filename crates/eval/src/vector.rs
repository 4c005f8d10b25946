//! Loops over f32 slices written so that the compiler vectorizes them (eight independent lanes,
//! branch-free bodies), shared by the fused attention kernel and the logit-row statistics. Callers
//! compile them inside an AVX2 `target_feature` function for 8-wide vectors.

/// e^x for x <= 0 (softmax after subtracting the row maximum), within 2 ulp of `f32::exp`.
///
/// Branch-free so that a loop over a slice vectorizes; libm's `expf` is a call per element and
/// was the largest single cost of the attention. Cody–Waite range reduction x = n·ln2 + r with
/// |r| <= ln2/2, then the degree-6 minimax polynomial for e^r from Cephes' `expf`, scaled by 2^n
/// through the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact for the n that occur.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = pareto_formats::RINT_MAGIC;
    let x = x.max(-87.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut y = 1.987_569_1e-4_f32;
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 0.5] {
        y = y * r + c;
    }
    let poly = y * r * r + r + 1.0;
    poly * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// erf(x) within 6e-7 (the rational approximation 7.1.26 of Abramowitz & Stegun, error
/// ≤ 1.5e-7 in exact arithmetic, plus f32 rounding), branch-free so that a loop over a slice
/// vectorizes; libm's `erff` is a call per element and took a sixth of a BERT forward pass.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    (1.0 - poly * exp(-a * a)).copysign(x)
}

/// Maximum with eight independent lanes (see [`dot`]).
#[inline(always)]
pub(crate) fn max(a: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = a.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    for x in chunks {
        for l in 0..8 {
            acc[l] = acc[l].max(x[l]);
        }
    }
    acc.iter().fold(tail, |m, &x| m.max(x))
}

/// Sum with eight independent partial sums (see [`dot`]).
#[inline(always)]
pub(crate) fn sum(a: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = a.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for x in chunks {
        for l in 0..8 {
            acc[l] += x[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Dot product with eight independent partial sums, so the compiler can keep them in one vector
/// register (a single running sum forces sequential adds).
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_within_two_ulp_of_std_on_the_softmax_range() {
        let mut worst = 0f32;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let (got, want) = (exp(x), x.exp());
            worst = worst.max((got - want).abs() / (want * f32::EPSILON));
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert!(exp(f32::NEG_INFINITY) < 1e-37 && exp(-1e30) < 1e-37);
    }

    #[test]
    fn fast_erf_is_within_6e_7_of_a_series_in_f64() {
        // Maclaurin series below 4 (its largest term there is ~1e7, so f64 keeps ~1e-9);
        // beyond, erfc(4) = 1.5e-8 is below f32's resolution at 1.
        let reference = |x: f64| -> f64 {
            if x.abs() >= 4.0 {
                return x.signum();
            }
            let (mut term, mut total, mut n) = (x, x, 0.0);
            while term.abs() > 1e-17 {
                n += 1.0;
                term *= -x * x / n;
                total += term / (2.0 * n + 1.0);
            }
            total * 2.0 / std::f64::consts::PI.sqrt()
        };
        let mut worst = 0f64;
        for i in -60_000..=60_000 {
            let x = i as f32 * 1e-4;
            worst = worst.max((f64::from(erf(x)) - reference(f64::from(x))).abs());
        }
        assert!(worst < 6e-7, "worst error {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert!(erf(f32::MAX) == 1.0 && erf(f32::MIN) == -1.0);
    }

    #[test]
    fn lane_loops_equal_the_plain_folds_with_a_tail() {
        let a: Vec<f32> = (0..21).map(|i| ((i * 7) % 11) as f32 - 4.5).collect();
        let b: Vec<f32> = (0..21).map(|i| ((i * 5) % 13) as f32 * 0.25).collect();
        assert_eq!(max(&a), 5.5);
        assert!((sum(&a) - a.iter().sum::<f32>()).abs() < 1e-5);
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }
}
