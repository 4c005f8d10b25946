//! AWQ (Lin, Tang, Tang, Yang, Dang, Gan, Han, "AWQ: Activation-aware Weight Quantization for LLM
//! Compression and Acceleration", MLSys 2024).
//!
//! A few input channels of a linear layer carry much larger activations than the rest; rounding
//! their weights costs the output most. AWQ multiplies those weight columns by a per-channel scale
//! `s` before rounding and divides the input by `s` (folded into the op that produces the input,
//! so the artifact is a plain checkpoint of the format): `W x = (W·diag(s)) (x / s)`. The scales
//! come from a one-parameter family `s = mean|x|^α / mean|ŵ|^(1-α)` (ŵ: weights normalised by
//! their group's maximum, "duo scaling"), α on a grid, picked by the output error on the
//! calibration set. A second search then clips each group of a row to the fraction of its range
//! that keeps the output closest.
//!
//! The objective is the one the paper states, the output error of the scaled linears, computed
//! exactly from the inputs' second moment H = XᵀX/n: ‖ΔW X‖² = Σ_rows δ H δᵀ. That needs no
//! replay of the calibration activations (the reference re-runs the block per grid point), so
//! the cost is rows·cols² per candidate, independent of the number of calibration tokens. The
//! unscaled weights (s = 1) are always a candidate, so the search never does worse than rounding
//! on its own objective.

use pareto_formats::Format;

use crate::error::SolveError;

/// The squared output error a change of weights causes on the calibration inputs. Implemented
/// where the matrix multiplications run (candle, on the CPU or a device).
pub trait OutputError {
    /// Σ over the rows of `delta` (`[rows, cols]`) of δ H δᵀ, with H the inputs' XᵀX / n.
    fn total(&self, delta: &[f32], rows: usize) -> Result<f64, SolveError>;

    /// The same per row and group of `group` consecutive columns, the cross-group terms left
    /// out: `[rows × cols / group]`, row-major (what clipping one group changes).
    fn per_group(&self, delta: &[f32], rows: usize, group: usize) -> Result<Vec<f64>, SolveError>;
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AwqOptions {
    /// Grid points for α over [0, 1], ends included (reference: 20); the unscaled weights are
    /// one more candidate.
    pub grid: usize,
    /// Scales from activations and weights (`mean|x|^α / mean|ŵ|^(1-α)`), else activations only.
    pub duo_scaling: bool,
    /// Run the clipping search.
    pub clip: bool,
    /// The largest fraction of a group's range clipping may remove (reference: 0.5, on the same
    /// 1/`grid` steps).
    pub max_shrink: f64,
}

impl Default for AwqOptions {
    fn default() -> Self {
        AwqOptions { grid: 20, duo_scaling: true, clip: true, max_shrink: 0.5 }
    }
}

/// One linear of a group that reads the same input: its weights `[rows, cols]` and format.
#[derive(Debug, Clone, Copy)]
pub struct ScaledLinear<'a> {
    pub weights: &'a [f32],
    pub rows: usize,
    pub format: &'static Format,
}

/// The scales chosen for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleSearch {
    /// Per input column; all ones when rounding the unscaled weights was best.
    pub scales: Vec<f32>,
    /// The α that won; `None` for the unscaled weights.
    pub ratio: Option<f64>,
    /// Output error of the group's rounded linears with these scales, and without any.
    pub loss: f64,
    pub loss_unscaled: f64,
}

/// The columns AWQ normalises weights over for `fmt`: its group when a row holds whole groups,
/// else the whole row (per-channel and per-tensor formats).
pub fn group_of(fmt: &Format, cols: usize) -> usize {
    match fmt.block {
        b if b > 1 && b < cols && cols.is_multiple_of(b) => b,
        _ => cols,
    }
}

/// Searches the input scales of the linears in `group` (all `cols` wide, one shared input whose
/// per-column mean |x| is `x_abs_mean`).
pub fn search_scales(
    group: &[ScaledLinear<'_>],
    cols: usize,
    x_abs_mean: &[f64],
    err: &dyn OutputError,
    opts: &AwqOptions,
) -> Result<ScaleSearch, SolveError> {
    if x_abs_mean.len() != cols {
        return Err(SolveError::ShapeMismatch { cols, got: x_abs_mean.len() });
    }
    for l in group {
        if l.weights.len() != l.rows * cols {
            return Err(SolveError::ShapeMismatch { cols, got: l.weights.len() / l.rows.max(1) });
        }
        if l.weights.iter().any(|v| !v.is_finite()) {
            return Err(SolveError::NonFinite);
        }
    }
    let w_mean = normalised_weight_mean(group, cols);
    let loss_of = |scales: &[f32]| -> Result<f64, SolveError> {
        let mut loss = 0.0;
        for l in group {
            loss += err.total(&scaled_rounding_error(l, cols, scales)?, l.rows)?;
        }
        Ok(loss)
    };
    let ones = vec![1.0f32; cols];
    let loss_unscaled = loss_of(&ones)?;
    let mut best = ScaleSearch { scales: ones, ratio: None, loss: loss_unscaled, loss_unscaled };
    let n = opts.grid.max(2);
    for i in 0..n {
        let ratio = i as f64 / (n - 1) as f64;
        let Some(scales) = candidate(x_abs_mean, &w_mean, ratio, opts.duo_scaling) else { continue };
        let loss = loss_of(&scales)?;
        if loss < best.loss {
            best = ScaleSearch { scales, ratio: Some(ratio), loss, loss_unscaled };
        }
    }
    Ok(best)
}

/// Per column, the mean over every row of the group of |w| divided by its quantization group's
/// largest |w| (each linear normalised in its own format's groups).
fn normalised_weight_mean(group: &[ScaledLinear<'_>], cols: usize) -> Vec<f64> {
    let mut sum = vec![0.0f64; cols];
    let mut rows = 0usize;
    for l in group {
        let g = group_of(l.format, cols);
        for row in l.weights.chunks_exact(cols) {
            for (chunk, s) in row.chunks_exact(g).zip(sum.chunks_exact_mut(g)) {
                let max = chunk.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (acc, v) in s.iter_mut().zip(chunk) {
                    *acc += f64::from(v.abs() / (max + 1e-6));
                }
            }
        }
        rows += l.rows;
    }
    let n = rows.max(1) as f64;
    sum.into_iter().map(|s| s / n).collect()
}

/// The scales of grid point `ratio`, normalised so their geometric range is centred on 1
/// (`s / sqrt(max · min)`); `None` when they do not come out finite and positive.
fn candidate(x_abs_mean: &[f64], w_mean: &[f64], ratio: f64, duo: bool) -> Option<Vec<f32>> {
    let raw: Vec<f64> = x_abs_mean
        .iter()
        .zip(w_mean)
        .map(|(&x, &w)| {
            let s = if duo { x.powf(ratio) / (w.powf(1.0 - ratio) + 1e-4) } else { x.powf(ratio) };
            s.max(1e-4)
        })
        .collect();
    let (min, max) = raw.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let norm = (max * min).sqrt();
    let scales: Vec<f32> = raw.iter().map(|s| (s / norm) as f32).collect();
    scales.iter().all(|s| s.is_finite() && *s > 0.0).then_some(scales)
}

/// `round(W · diag(s)) / s − W` for one linear: its weight error as the input sees it.
fn scaled_rounding_error(l: &ScaledLinear<'_>, cols: usize, scales: &[f32]) -> Result<Vec<f32>, SolveError> {
    let mut q: Vec<f32> =
        l.weights.chunks_exact(cols).flat_map(|row| row.iter().zip(scales).map(|(w, s)| w * s)).collect();
    l.format.fake_quantize(&mut q, l.rows, cols)?;
    for (row, orig) in q.chunks_exact_mut(cols).zip(l.weights.chunks_exact(cols)) {
        for ((v, s), w) in row.iter_mut().zip(scales).zip(orig) {
            *v = *v / s - w;
        }
    }
    Ok(q)
}

/// The clipping one linear's groups get.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSearch {
    /// Columns per group ([`group_of`] the format).
    pub group: usize,
    /// Per row and group, the bound each weight is clamped to (the group's max |w| when clipping
    /// does not help).
    pub max: Vec<f32>,
    /// Groups whose range was shrunk.
    pub clipped: usize,
}

/// Searches, per row and group of `w` (`[rows, cols]`, already scaled), the fraction of the
/// group's range to keep before rounding, by the output error. `input_scale[j]` maps a weight
/// change in column j back to the unscaled input (1/s_j; ones for an unscaled input).
pub fn search_clip(
    w: &[f32],
    rows: usize,
    cols: usize,
    format: &'static Format,
    input_scale: &[f32],
    err: &dyn OutputError,
    opts: &AwqOptions,
) -> Result<ClipSearch, SolveError> {
    if w.len() != rows * cols || input_scale.len() != cols {
        return Err(SolveError::ShapeMismatch { cols, got: input_scale.len() });
    }
    let group = group_of(format, cols);
    let groups = cols / group;
    let amax: Vec<f32> = w.chunks_exact(group).map(|g| g.iter().fold(0.0f32, |m, v| m.max(v.abs()))).collect();
    let mut best_err = vec![f64::INFINITY; rows * groups];
    let mut best_max = amax.clone();
    let steps = ((opts.max_shrink * opts.grid as f64).round() as usize).max(1);
    for i in 0..steps {
        let keep = 1.0 - i as f32 / opts.grid.max(1) as f32;
        let bounds: Vec<f32> = amax.iter().map(|m| m * keep).collect();
        let mut q = w.to_vec();
        for (g, m) in q.chunks_exact_mut(group).zip(&bounds) {
            g.iter_mut().for_each(|v| *v = v.clamp(-m, *m));
        }
        format.fake_quantize(&mut q, rows, cols)?;
        for (row, orig) in q.chunks_exact_mut(cols).zip(w.chunks_exact(cols)) {
            for ((v, o), s) in row.iter_mut().zip(orig).zip(input_scale) {
                *v = (*v - o) * s;
            }
        }
        let e = err.per_group(&q, rows, group)?;
        for (k, e) in e.into_iter().enumerate().take(rows * groups) {
            if e < best_err[k] {
                best_err[k] = e;
                best_max[k] = bounds[k];
            }
        }
    }
    let clipped = best_max.iter().zip(&amax).filter(|(b, a)| b < a).count();
    Ok(ClipSearch { group, max: best_max, clipped })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// H = XᵀX / n held densely; the sums in f64 (the test's reference arithmetic).
    struct Dense {
        cols: usize,
        h: Vec<f64>,
    }

    impl Dense {
        fn from_inputs(x: &[f32], cols: usize) -> Self {
            let n = x.len() / cols;
            let mut h = vec![0.0; cols * cols];
            for row in x.chunks_exact(cols) {
                for i in 0..cols {
                    for j in 0..cols {
                        h[i * cols + j] += f64::from(row[i]) * f64::from(row[j]) / n as f64;
                    }
                }
            }
            Dense { cols, h }
        }

        fn quad(&self, d: &[f32], lo: usize, hi: usize) -> f64 {
            let mut s = 0.0;
            for i in lo..hi {
                for j in lo..hi {
                    s += f64::from(d[i]) * self.h[i * self.cols + j] * f64::from(d[j]);
                }
            }
            s
        }
    }

    impl OutputError for Dense {
        fn total(&self, delta: &[f32], _rows: usize) -> Result<f64, SolveError> {
            Ok(delta.chunks_exact(self.cols).map(|d| self.quad(d, 0, self.cols)).sum())
        }

        fn per_group(&self, delta: &[f32], _rows: usize, group: usize) -> Result<Vec<f64>, SolveError> {
            Ok(delta
                .chunks_exact(self.cols)
                .flat_map(|d| (0..self.cols / group).map(move |g| self.quad(d, g * group, (g + 1) * group)))
                .collect())
        }
    }

    /// Inputs with a few channels 30× larger than the rest, as trained LLMs' activations have.
    fn outlier_inputs(rng: &mut rand::rngs::StdRng, n: usize, cols: usize) -> Vec<f32> {
        (0..n * cols)
            .map(|i| {
                let big = (i % cols) % 16 == 3;
                rng.random_range(-1.0f32..1.0) * if big { 30.0 } else { 1.0 }
            })
            .collect()
    }

    #[test]
    fn scales_protect_the_channels_with_large_activations() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (rows, cols) = (24, 64);
        let x = outlier_inputs(&mut rng, 256, cols);
        let h = Dense::from_inputs(&x, cols);
        let w: Vec<f32> = (0..rows * cols).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let x_abs: Vec<f64> =
            (0..cols).map(|j| x.chunks_exact(cols).map(|r| f64::from(r[j].abs())).sum::<f64>() / 256.0).collect();
        let fmt = pareto_formats::lookup("int4_g32_asym").unwrap();
        let lin = ScaledLinear { weights: &w, rows, format: fmt };
        let s = search_scales(&[lin], cols, &x_abs, &h, &AwqOptions::default()).unwrap();
        assert!(s.ratio.is_some(), "a scaled candidate wins on outlier inputs");
        assert!(s.loss < 0.8 * s.loss_unscaled, "{} vs {}", s.loss, s.loss_unscaled);
        let (big, small): (Vec<_>, Vec<_>) = (0..cols).partition(|j| j % 16 == 3);
        let mean = |v: &[usize]| v.iter().map(|&j| f64::from(s.scales[j])).sum::<f64>() / v.len() as f64;
        assert!(mean(&big) > 2.0 * mean(&small), "outlier channels get larger scales");
        // The loss the search reports is the objective recomputed from scratch.
        assert!((h.total(&scaled_rounding_error(&lin, cols, &s.scales).unwrap(), rows).unwrap() - s.loss).abs() < 1e-9);
    }

    #[test]
    fn uniform_inputs_never_do_worse_than_rounding() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (rows, cols) = (8, 32);
        let x: Vec<f32> = (0..128 * cols).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let h = Dense::from_inputs(&x, cols);
        let w: Vec<f32> = (0..rows * cols).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let fmt = pareto_formats::lookup("int4_g32_sym").unwrap();
        let s = search_scales(
            &[ScaledLinear { weights: &w, rows, format: fmt }],
            cols,
            &[0.5; 32],
            &h,
            &AwqOptions::default(),
        )
        .unwrap();
        assert!(s.loss <= s.loss_unscaled);
        let e = search_scales(
            &[ScaledLinear { weights: &w[1..], rows, format: fmt }],
            cols,
            &[0.5; 32],
            &h,
            &AwqOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(e, SolveError::ShapeMismatch { .. }));
    }

    #[test]
    fn clipping_only_shrinks_ranges_where_the_output_gains() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let (rows, cols) = (16, 64);
        let x: Vec<f32> = (0..256 * cols).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let h = Dense::from_inputs(&x, cols);
        // Heavy-tailed rows: one large weight per group stretches the grid for the other 31.
        let w: Vec<f32> =
            (0..rows * cols).map(|i| if i % 32 == 5 { 6.0 } else { rng.random_range(-1.0f32..1.0) }).collect();
        let fmt = pareto_formats::lookup("int4_g32_sym").unwrap();
        let c = search_clip(&w, rows, cols, fmt, &[1.0; 64], &h, &AwqOptions::default()).unwrap();
        assert_eq!((c.group, c.max.len()), (32, rows * 2));
        assert!(c.clipped > 0, "some outlier-stretched groups are clipped");
        let amax = |k: usize| w[k * 32..(k + 1) * 32].iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(c.max.iter().enumerate().all(|(k, m)| *m <= amax(k) && *m >= 0.5 * amax(k) - 1e-6));
        // Applying the bounds lowers the per-group objective against plain rounding.
        let error = |bounds: &[f32]| {
            let mut q = w.clone();
            for (g, m) in q.chunks_exact_mut(32).zip(bounds) {
                g.iter_mut().for_each(|v| *v = v.clamp(-m, *m));
            }
            fmt.fake_quantize(&mut q, rows, cols).unwrap();
            let d: Vec<f32> = q.iter().zip(&w).map(|(a, b)| a - b).collect();
            h.per_group(&d, rows, 32).unwrap().iter().sum::<f64>()
        };
        let plain: Vec<f32> = (0..rows * 2).map(amax).collect();
        assert!(error(&c.max) < error(&plain));
    }
}
