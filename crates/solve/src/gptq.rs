//! GPTQ (Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate Post-Training Quantization for
//! Generative Pre-trained Transformers", ICLR 2023).
//!
//! A linear layer's output error over the calibration inputs X is ‖(W − Q) Xᵀ‖², whose Hessian in
//! each row of W is H = 2 XᵀX / n. GPTQ quantizes the columns of W in order; after column i is
//! rounded, its error is spread over the columns not yet quantized through the upper Cholesky
//! factor U of H⁻¹ (H⁻¹ = UᵀU): `w[j] -= (w[i] − q[i]) / U[i][i] · U[i][j]` for j > i. The
//! objective reported is Σ (w[i] − q[i])² / U[i][i]² / 2, summed over the tensor.
//!
//! Rows are independent given U, so they are solved in tiles of [`TILE_ROWS`] on the rayon pool,
//! each tile reading U once per column (the reference's "lazy batch" trick serves a GPU; on a CPU
//! the row tile gives the same reuse). Group parameters (scale, zero) are chosen when the sweep
//! reaches a group's first column, from the group's values as updated so far, with the format's
//! own arithmetic ([`pareto_formats::IntGrid::params`]), so the codes decode exactly as the
//! registry codec's do. Columns in natural order (no act-order).

use half::f16;
use pareto_formats::{Format, QTensor};
use rayon::prelude::*;

use crate::error::SolveError;
use crate::hessian::Hessian;
use crate::linalg::{inverse_upper_factor_in_place, restore_after_failure};

/// Rows solved together: each row of U is read once per tile.
pub const TILE_ROWS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GptqOptions {
    /// Damping added to H's diagonal, as a fraction of its mean diagonal (reference default 0.01).
    pub damp: f64,
    /// How many times the damping is multiplied by 10 when H is not positive definite.
    pub damp_retries: u32,
    /// Quantize columns in order of decreasing Hessian diagonal (the reference's `act_order` /
    /// `desc_act`): the most active inputs are rounded first, while the most columns remain to
    /// absorb their error. Group parameters are then fixed up front from the original weights in
    /// the natural grouping ("static groups"), so the artifact needs no `g_idx` and loads in every
    /// engine as a plain grouped checkpoint.
    pub act_order: bool,
}

impl Default for GptqOptions {
    fn default() -> Self {
        GptqOptions { damp: 0.01, damp_retries: 2, act_order: true }
    }
}

/// The codes of one tensor and what the solve took.
#[derive(Debug, Clone)]
pub struct GptqResult {
    pub codes: QTensor,
    /// Σ (w − q)² / [U]ᵢᵢ² / 2 over the tensor (GPTQ's objective).
    pub loss: f64,
    /// The damping fraction that made H factor (raised from the option when needed).
    pub damp: f64,
    /// Input columns no calibration row ever touched (zero diagonal): their weights are
    /// quantized as zero, as the reference does, since no input reaches them.
    pub dead_columns: usize,
}

/// Solves `w` (`[rows, cols]`) in `fmt` against `hessian` (factor and sweep in one call; see
/// [`GptqFactor`] to reuse one factorisation for the linears that share an input).
pub fn gptq(
    w: &[f32],
    rows: usize,
    cols: usize,
    fmt: &'static Format,
    hessian: &Hessian,
    opts: &GptqOptions,
) -> Result<GptqResult, SolveError> {
    GptqFactor::new(hessian, opts)?.solve(w, rows, cols, fmt)
}

/// What GPTQ derives from one Hessian: the sweep order, the dead columns, and the upper factor of
/// the damped inverse. q/k/v (and gate/up) read the same input, so one factor serves them all.
#[derive(Debug, Clone)]
pub struct GptqFactor {
    cols: usize,
    /// Position p of the sweep handles column order[p].
    order: Vec<usize>,
    dead: Vec<bool>,
    /// Upper factor of the (permuted, damped) inverse Hessian, f32 for the sweep.
    u: F32InF64,
    damp: f64,
    act_order: bool,
}

impl GptqFactor {
    pub fn new(hessian: &Hessian, opts: &GptqOptions) -> Result<Self, SolveError> {
        Self::from_owned(hessian.clone(), opts)
    }

    /// [`GptqFactor::new`] in the Hessian's own storage: it is scaled, permuted, damped, factored
    /// and inverted in place, and the factor converted to f32 in place too, so the widest input of
    /// a layer costs one n × n f64 matrix at the peak and n × n f32 after.
    pub fn from_owned(hessian: Hessian, opts: &GptqOptions) -> Result<Self, SolveError> {
        let cols = hessian.cols();
        // The diagonal of H = 2 XᵀX / n decides the dead columns, the order and the damping.
        let mut diag: Vec<f64> = hessian.mean_square().iter().map(|v| 2.0 * v).collect();
        if diag.iter().any(|v| !v.is_finite()) {
            return Err(SolveError::NonFinite);
        }
        let dead: Vec<bool> = diag.iter().map(|&d| d == 0.0).collect();
        for (d, _) in diag.iter_mut().zip(&dead).filter(|(_, dead)| **dead) {
            *d = 1.0;
        }
        let mut order: Vec<usize> = (0..cols).collect();
        if opts.act_order {
            order.sort_by(|&a, &b| diag[b].total_cmp(&diag[a]).then(a.cmp(&b)));
        }
        let mean_diag = diag.iter().sum::<f64>() / cols.max(1) as f64;
        let mut h = hessian.into_matrix_permuted(&order);
        if h.iter().any(|v| !v.is_finite()) {
            return Err(SolveError::NonFinite);
        }
        // The undamped diagonal (a dead column's set to 1), kept to retry with more damping: a
        // failed factorisation leaves the rest of the matrix recoverable.
        let base: Vec<f64> =
            order.iter().enumerate().map(|(p, &i)| if dead[i] { 1.0 } else { h[p * cols + p] }).collect();
        let mut damp = opts.damp;
        loop {
            for (p, b) in base.iter().enumerate() {
                h[p * cols + p] = b + damp * mean_diag;
            }
            match inverse_upper_factor_in_place(&mut h, cols) {
                Ok(()) => break,
                Err(_) if damp < opts.damp * 10f64.powi(opts.damp_retries as i32) * 0.999 => {
                    restore_after_failure(&mut h, cols, &base);
                    damp *= 10.0;
                }
                Err(_) => return Err(SolveError::NotPositiveDefinite { damp_percent: damp * 100.0 }),
            }
        }
        Ok(GptqFactor { cols, order, dead, u: F32InF64::from_f64(h), damp, act_order: opts.act_order })
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Whether the sweep runs in act-order (columns by decreasing Hessian diagonal).
    pub fn act_order(&self) -> bool {
        self.act_order
    }

    /// The damping that made H factor.
    pub fn damp(&self) -> f64 {
        self.damp
    }

    pub(crate) fn upper(&self) -> &[f32] {
        self.u.as_f32(self.cols * self.cols)
    }

    pub(crate) fn dead(&self) -> &[bool] {
        &self.dead
    }

    /// The codes of `w` (`[rows, cols]`) in `fmt`.
    pub fn solve(&self, w: &[f32], rows: usize, cols: usize, fmt: &'static Format) -> Result<GptqResult, SolveError> {
        let grid = fmt.int_grid().ok_or(SolveError::NotAGrid { format: fmt.id })?;
        fmt.check_shape(rows, cols)?;
        if self.cols != cols {
            return Err(SolveError::ShapeMismatch { cols, got: self.cols });
        }
        let glen = grid.group_len(cols);
        let gpr = cols / glen.max(1);
        let sweep = Sweep {
            cols,
            glen,
            gpr,
            grid,
            u: self.upper(),
            dead: &self.dead,
            order: &self.order,
            static_groups: self.act_order,
        };
        let tiles: Vec<(usize, &[f32])> = w.chunks(TILE_ROWS * cols).enumerate().collect();
        let solved =
            tiles.into_par_iter().map(|(t, chunk)| sweep.tile(chunk, t * TILE_ROWS)).collect::<Result<Vec<_>, _>>()?;
        let mut codes = Vec::with_capacity(rows * cols);
        let mut scales = Vec::with_capacity(rows * gpr);
        let mut zeros = Vec::new();
        let mut loss = 0.0;
        for tile in solved {
            codes.extend(tile.codes);
            scales.extend(tile.scales);
            zeros.extend(tile.zeros);
            loss += tile.loss;
        }
        let codes = grid.assemble(rows, cols, codes, scales, zeros)?;
        Ok(GptqResult { codes, loss, damp: self.damp, dead_columns: self.dead.iter().filter(|d| **d).count() })
    }
}

struct Tile {
    codes: Vec<i8>,
    scales: Vec<f16>,
    zeros: Vec<i8>,
    loss: f64,
}

/// Spreads each row's error at sweep position `p` over the positions not yet visited, through row
/// `p` of the upper factor `u` (GPTQ's update, SparseGPT's too).
pub(crate) fn spread(w: &mut [f32], err: &[f32], u: &[f32], cols: usize, p: usize) {
    let urow = &u[p * cols + p + 1..(p + 1) * cols];
    for (r, &e) in err.iter().enumerate() {
        if e != 0.0 {
            for (x, &v) in w[r * cols + p + 1..(r + 1) * cols].iter_mut().zip(urow) {
                *x -= e * v;
            }
        }
    }
}

/// What every row tile shares.
struct Sweep<'a> {
    cols: usize,
    glen: usize,
    gpr: usize,
    grid: &'a pareto_formats::IntGrid,
    /// Upper factor of the (permuted) inverse Hessian.
    u: &'a [f32],
    dead: &'a [bool],
    order: &'a [usize],
    /// Group parameters fixed from the original weights before the sweep.
    static_groups: bool,
}

impl Sweep<'_> {
    fn tile(&self, chunk: &[f32], first_row: usize) -> Result<Tile, SolveError> {
        let (cols, glen, gpr, grid) = (self.cols, self.glen, self.gpr, self.grid);
        let n = chunk.len() / cols;
        let mut original = chunk.to_vec();
        for row in original.chunks_exact_mut(cols) {
            for (x, _) in row.iter_mut().zip(self.dead).filter(|(_, d)| **d) {
                *x = 0.0;
            }
        }
        // The rows in sweep order: position p holds column order[p].
        let mut w: Vec<f32> = original.chunks_exact(cols).flat_map(|row| self.order.iter().map(|&j| row[j])).collect();
        let mut codes = vec![0i8; n * cols];
        let mut scales = vec![f16::ZERO; n * gpr];
        let mut zeros = vec![0i8; if grid.symmetric() { 0 } else { n * gpr }];
        let mut set_params = |r: usize, g: usize, group: &[f32]| -> Result<(f16, i8), SolveError> {
            let p = grid.params(group).ok_or(SolveError::ScaleOverflow { row: first_row + r, col: g * glen })?;
            scales[r * gpr + g] = p.0;
            if let Some(z) = zeros.get_mut(r * gpr + g) {
                *z = p.1;
            }
            Ok(p)
        };
        // Static groups: every group's parameters from the original weights, up front.
        let mut fixed = Vec::new();
        if self.static_groups {
            for r in 0..n {
                for g in 0..gpr {
                    fixed.push(set_params(r, g, &original[r * cols + g * glen..r * cols + (g + 1) * glen])?);
                }
            }
        }
        let mut params = vec![(f16::ZERO, 0i8); n];
        let mut err = vec![0f32; n];
        let mut loss = 0.0f64;
        for p in 0..cols {
            let col = self.order[p];
            if !self.static_groups && p % glen == 0 {
                // Natural order: the group starting here, as updated so far.
                for (r, slot) in params.iter_mut().enumerate() {
                    *slot = set_params(r, p / glen, &w[r * cols + p..r * cols + p + glen])?;
                }
            }
            let d = self.u[p * cols + p];
            for r in 0..n {
                let (scale, zero) = if self.static_groups { fixed[r * gpr + col / glen] } else { params[r] };
                let x = w[r * cols + p];
                let (c, q) = grid.code_of(x, scale, zero);
                codes[r * cols + col] = c;
                let e = (x - q) / d;
                loss += f64::from(e) * f64::from(e) / 2.0;
                err[r] = e;
            }
            spread(&mut w, &err, self.u, cols, p);
        }
        Ok(Tile { codes, scales, zeros, loss })
    }
}

/// f32 values packed two to an element of the f64 buffer they were converted from, in place:
/// converting the factor into a fresh `Vec<f32>` would hold 1.5 n × n f64 at once, and the
/// buffer is shrunk to the f32 size after.
#[derive(Debug, Clone)]
struct F32InF64(Vec<f64>);

impl F32InF64 {
    fn from_f64(mut v: Vec<f64>) -> Self {
        let n = v.len();
        let words: &mut [u32] = bytemuck::cast_slice_mut(&mut v[..]);
        // Element i's two words (2i, 2i + 1) are read before word i is written, and every word
        // below 2i was either already read or is never read again: a forward pass is safe.
        for i in 0..n {
            let (a, b) = (words[2 * i].to_ne_bytes(), words[2 * i + 1].to_ne_bytes());
            let x = f64::from_ne_bytes([a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]);
            words[i] = (x as f32).to_bits();
        }
        v.truncate(n.div_ceil(2));
        v.shrink_to_fit();
        F32InF64(v)
    }

    fn as_f32(&self, len: usize) -> &[f32] {
        let all: &[f32] = bytemuck::cast_slice(&self.0[..]);
        &all[..len.min(all.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// Correlated inputs (as real activations are): x = z · M for a random mixing M.
    fn inputs(rows: usize, cols: usize, rng: &mut StdRng) -> Vec<f32> {
        let m: Vec<f32> = (0..cols * cols).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut x = vec![0f32; rows * cols];
        for r in 0..rows {
            let z: Vec<f32> = (0..cols).map(|_| rng.random_range(-1.0..1.0)).collect();
            for j in 0..cols {
                x[r * cols + j] = (0..cols).map(|k| z[k] * m[k * cols + j]).sum::<f32>() / (cols as f32).sqrt();
            }
        }
        x
    }

    fn output_error(w: &[f32], q: &[f32], x: &[f32], rows: usize, cols: usize) -> f64 {
        let mut e = 0.0f64;
        for xr in x.chunks(cols) {
            for r in 0..rows {
                let d: f32 = (0..cols).map(|j| (w[r * cols + j] - q[r * cols + j]) * xr[j]).sum();
                e += f64::from(d) * f64::from(d);
            }
        }
        e
    }

    #[test]
    fn gptq_beats_round_to_nearest_on_the_calibration_outputs() {
        let mut rng = StdRng::seed_from_u64(7);
        let (rows, cols, n) = (40, 64, 512);
        let w: Vec<f32> = (0..rows * cols).map(|_| rng.random_range(-1.0..1.0)).collect();
        let x = inputs(n, cols, &mut rng);
        let mut h = Hessian::new(cols);
        h.add_rows(&x, n).unwrap();
        for id in ["int4_g32_sym", "int4_g32_asym", "int8_channel", "int4_g64_sym"] {
            let fmt = pareto_formats::lookup(id).unwrap();
            let r = gptq(&w, rows, cols, fmt, &h, &GptqOptions::default()).unwrap();
            let g = fmt.dequantize(&r.codes).unwrap();
            let mut rtn = w.clone();
            fmt.fake_quantize(&mut rtn, rows, cols).unwrap();
            let (eg, er) = (output_error(&w, &g, &x, rows, cols), output_error(&w, &rtn, &x, rows, cols));
            assert!(eg < 0.8 * er, "{id}: gptq {eg} vs rtn {er}");
            assert!(r.loss > 0.0 && r.loss.is_finite());
            assert_eq!((r.damp, r.dead_columns), (0.01, 0));
        }
    }

    #[test]
    fn dead_inputs_and_singular_hessians_are_handled_by_name() {
        let (rows, cols) = (4, 32);
        let w: Vec<f32> = (0..rows * cols).map(|i| (i as f32 * 0.37).sin()).collect();
        let fmt = pareto_formats::lookup("int4_g32_sym").unwrap();
        // Inputs only ever use the first 8 columns: the rest are dead.
        let mut x = vec![0f32; 64 * cols];
        for (k, v) in x.iter_mut().enumerate() {
            if k % cols < 8 {
                *v = ((k * 31 % 17) as f32 - 8.0) / 8.0;
            }
        }
        let mut h = Hessian::new(cols);
        h.add_rows(&x, 64).unwrap();
        let r = gptq(&w, rows, cols, fmt, &h, &GptqOptions::default()).unwrap();
        assert_eq!(r.dead_columns, 24);
        let deq = fmt.dequantize(&r.codes).unwrap();
        assert!(deq.chunks(cols).all(|row| row[8..].iter().all(|v| *v == 0.0)));

        assert_eq!(
            gptq(&w, rows, 16, fmt, &Hessian::new(16), &GptqOptions::default()).unwrap_err(),
            SolveError::Format(pareto_formats::FormatError::ShapeNotDivisible {
                format: "int4_g32_sym",
                cols: 16,
                block: 32
            })
        );
        assert_eq!(
            gptq(&w, rows, cols, fmt, &Hessian::new(64), &GptqOptions::default()).unwrap_err(),
            SolveError::ShapeMismatch { cols, got: 64 }
        );
        // A Hessian that no damping makes positive definite is reported with the damping tried.
        let mut bad = Hessian::new(cols);
        bad.add_gram(&vec![-1.0; cols * cols], 4).unwrap();
        let diag_negative = (0..cols).all(|i| bad.matrix()[i * cols + i] < 0.0);
        assert!(diag_negative);
        match gptq(&w, rows, cols, fmt, &bad, &GptqOptions::default()) {
            Err(SolveError::NotPositiveDefinite { damp_percent }) => assert!((damp_percent - 100.0).abs() < 1e-9),
            other => panic!("{other:?}"),
        }
        let q8 = pareto_formats::lookup("q8_0").unwrap();
        assert_eq!(
            gptq(&w, rows, cols, q8, &h, &GptqOptions::default()).unwrap_err(),
            SolveError::NotAGrid { format: "q8_0" }
        );
    }
}
