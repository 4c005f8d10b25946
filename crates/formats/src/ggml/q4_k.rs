//! Q4_K (`block_q4_K`: f16 d, f16 dmin, 12 bytes of packed 6-bit scales and
//! mins for 8 sub-blocks of 32, 128 bytes of nibbles), following
//! `quantize_row_q4_K_ref` (with its `make_qkx2_quants` search,
//! rmin = -1, rdelta = 0.1, nstep = 20, squared error), the importance-weighted
//! `quantize_row_q4_K_impl` (`make_qkx3_quants`, rmin = -0.9, rdelta = 0.05,
//! nstep = 36, then `make_qp_quants` for the 6-bit scales and mins) and
//! `dequantize_row_q4_K` in ggml/src/ggml-quants.c. Q5_K ([`super::q5_k`]) is the same fit with
//! levels 0..=31, so the fits and the header live here for both.

use super::{BlockCodec, GROUP_MAX_EPS, get_f16, nearest_int, put_f16};

pub(crate) struct Q4K;

const QK_K: usize = 256;
const SUB: usize = 32;
const NSUB: usize = QK_K / SUB;
/// Candidate scales of `make_qkx2_quants` evaluated side by side.
const LANES: usize = 8;

/// Affine fit of one sub-block to levels 0..=nmax: returns (scale, -min) and
/// fills `l`. Same operation order as ggml's `make_qkx2_quants` (`GUARDED` false) and
/// `make_qkx3_quants` without mean-absolute error (`GUARDED` true: a candidate's level is
/// rounded from min(v, nmax) when v > 0, else 0, which differs from clamping the rounded value
/// only where v is NaN, infinite or beyond 2^22 — reachable in qkx3, whose later candidates may
/// divide by a `min` moved next to `max`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn make_qkx_quants<const GUARDED: bool>(
    x: &[f32; SUB],
    weights: &[f32; SUB],
    nmax: i32,
    l: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> (f32, f32) {
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..SUB {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l[..SUB].fill(0);
        return (0.0, -min);
    }
    let nmaxf = nmax as f32;
    let iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..SUB {
        let li = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l[i] = li as u8;
        let diff = scale * li as f32 + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    // Each candidate's sums and error are accumulated in ggml's element order, but the candidates
    // run side by side in vector lanes; the winner is chosen with ggml's comparison in ggml's
    // candidate order. ggml's later candidates use the `min` of the best fit so far, so when a win
    // moves `min` the remaining candidates are recomputed with it: bit-identical to the serial loop.
    let n = nstep.max(0) as usize + 1;
    let mut start = 0;
    while start < n {
        let lanes = Lanes::fit::<GUARDED>(x, weights, nmax, min, max, start, rmin, rdelta, sum_w, sum_x);
        let end = (start + LANES).min(n);
        let mut next = end;
        for c in start..end {
            let k = c - start;
            if lanes.det[k] > 0.0 && lanes.error[k] < best_error {
                for (li, level) in l.iter_mut().zip(&lanes.levels) {
                    *li = level[k] as u8;
                }
                best_error = lanes.error[k];
                scale = lanes.scale[k];
                if lanes.min[k].to_bits() != min.to_bits() {
                    min = lanes.min[k];
                    next = c + 1;
                    break;
                }
            }
        }
        start = next;
    }
    (scale, -min)
}

/// Candidate fits `start..start + LANES` of [`make_qkx_quants`] for a given `min`, one per lane.
struct Lanes {
    levels: [[f32; LANES]; SUB],
    det: [f32; LANES],
    scale: [f32; LANES],
    min: [f32; LANES],
    error: [f32; LANES],
}

impl Lanes {
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn fit<const GUARDED: bool>(
        x: &[f32; SUB],
        weights: &[f32; SUB],
        nmax: i32,
        min: f32,
        max: f32,
        start: usize,
        rmin: f32,
        rdelta: f32,
        sum_w: f32,
        sum_x: f32,
    ) -> Lanes {
        let nmaxf = nmax as f32;
        let mut iscales = [0f32; LANES];
        for (k, c) in iscales.iter_mut().enumerate() {
            *c = (rmin + rdelta * (start + k) as f32 + nmaxf) / (max - min);
        }
        let mut lanes = Lanes {
            levels: [[0f32; LANES]; SUB],
            det: [0f32; LANES],
            scale: [0f32; LANES],
            min: [0f32; LANES],
            error: [0f32; LANES],
        };
        let (sum_l, sum_l2, sum_xl) = accumulate::<GUARDED>(x, weights, min, &iscales, nmax, &mut lanes.levels);
        for c in 0..LANES {
            let det = sum_w * sum_l2[c] - sum_l[c] * sum_l[c];
            let s = (sum_w * sum_xl[c] - sum_x * sum_l[c]) / det;
            let m = (sum_l2[c] * sum_x - sum_l[c] * sum_xl[c]) / det;
            lanes.det[c] = det;
            (lanes.scale[c], lanes.min[c]) = if m > 0.0 { (sum_xl[c] / sum_l2[c], 0.0) } else { (s, m) };
        }
        for i in 0..SUB {
            for c in 0..LANES {
                let diff = lanes.scale[c] * lanes.levels[i][c] + lanes.min[c] - x[i];
                lanes.error[c] += weights[i] * (diff * diff);
            }
        }
        lanes
    }
}

/// Each candidate's levels and its sums Σw·l, Σw·l², Σw·l·x, in ggml's element order.
type Sums3 = ([f32; LANES], [f32; LANES], [f32; LANES]);

/// The hot loop of the scale search, with an AVX2 kernel where the CPU has it: written as plain
/// Rust, LLVM vectorised the three sums across each other with shuffles on every element. The
/// kernel does the same IEEE operations in the same order (no FMA), so the bytes do not change.
#[inline(always)]
fn accumulate<const GUARDED: bool>(
    x: &[f32; SUB],
    weights: &[f32; SUB],
    min: f32,
    iscales: &[f32; LANES],
    nmax: i32,
    levels: &mut [[f32; LANES]; SUB],
) -> Sums3 {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just checked to support AVX2, the only requirement of the call.
        #[allow(unsafe_code)]
        return unsafe { accumulate_avx2::<GUARDED>(x, weights, min, iscales, nmax, levels) };
    }
    accumulate_portable::<GUARDED>(x, weights, min, iscales, nmax, levels)
}

#[inline(always)]
fn accumulate_portable<const GUARDED: bool>(
    x: &[f32; SUB],
    weights: &[f32; SUB],
    min: f32,
    iscales: &[f32; LANES],
    nmax: i32,
    levels: &mut [[f32; LANES]; SUB],
) -> Sums3 {
    let nmaxf = nmax as f32;
    let (mut sum_l, mut sum_l2, mut sum_xl) = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
    for i in 0..SUB {
        let (w, xi, shifted) = (weights[i], x[i], x[i] - min);
        for c in 0..LANES {
            let v = iscales[c] * shifted;
            let lf = if !GUARDED {
                nearest_int(v).clamp(0, nmax) as f32
            } else if v > 0.0 {
                nearest_int(v.min(nmaxf)) as f32
            } else {
                0.0
            };
            levels[i][c] = lf;
            sum_l[c] += w * lf;
            sum_l2[c] += w * lf * lf;
            sum_xl[c] += w * lf * xi;
        }
    }
    (sum_l, sum_l2, sum_xl)
}

/// [`accumulate_portable`] with AVX2 intrinsics: one register per sum, `nearest_int` as the
/// magic-number addition and mask, the clamp as integer min/max.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
fn accumulate_avx2<const GUARDED: bool>(
    x: &[f32; SUB],
    weights: &[f32; SUB],
    min: f32,
    iscales: &[f32; LANES],
    nmax: i32,
    levels: &mut [[f32; LANES]; SUB],
) -> Sums3 {
    use std::arch::x86_64::*;
    // SAFETY (every block below): AVX2 is enabled for this function; loads and stores go through
    // arrays of exactly eight f32.
    unsafe {
        let is = _mm256_loadu_ps(iscales.as_ptr());
        let magic = _mm256_set1_ps(crate::RINT_MAGIC);
        let mask = _mm256_set1_epi32(0x007f_ffff);
        let offset = _mm256_set1_epi32(0x0040_0000);
        let (zero_i, nmax_i) = (_mm256_setzero_si256(), _mm256_set1_epi32(nmax));
        let (zero, nmaxf) = (_mm256_setzero_ps(), _mm256_set1_ps(nmax as f32));
        let nearest =
            |v: __m256| _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(_mm256_add_ps(v, magic)), mask), offset);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
        for i in 0..SUB {
            let v = _mm256_mul_ps(is, _mm256_set1_ps(x[i] - min));
            let lf = if !GUARDED {
                _mm256_cvtepi32_ps(_mm256_min_epi32(_mm256_max_epi32(nearest(v), zero_i), nmax_i))
            } else {
                // v > 0 ? nearest_int(min(v, nmax)) : 0 (NaN compares false: 0).
                let l = _mm256_cvtepi32_ps(nearest(_mm256_min_ps(v, nmaxf)));
                _mm256_and_ps(l, _mm256_cmp_ps::<_CMP_GT_OQ>(v, zero))
            };
            _mm256_storeu_ps(levels[i].as_mut_ptr(), lf);
            let wl = _mm256_mul_ps(_mm256_set1_ps(weights[i]), lf);
            sum_l = _mm256_add_ps(sum_l, wl);
            sum_l2 = _mm256_add_ps(sum_l2, _mm256_mul_ps(wl, lf));
            sum_xl = _mm256_add_ps(sum_xl, _mm256_mul_ps(wl, _mm256_set1_ps(x[i])));
        }
        let mut out: Sums3 = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
        _mm256_storeu_ps(out.0.as_mut_ptr(), sum_l);
        _mm256_storeu_ps(out.1.as_mut_ptr(), sum_l2);
        _mm256_storeu_ps(out.2.as_mut_ptr(), sum_xl);
        out
    }
}

/// Unpacks the 6-bit (scale, min) of sub-block `j` (ggml's `get_scale_min_k4`).
#[inline(always)]
pub(crate) fn scale_min(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

impl BlockCodec for Q4K {
    const WEIGHTS: usize = QK_K;
    const BYTES: usize = 144;
    const F16_SCALES: &'static [usize] = &[0, 2];

    #[inline(always)]
    fn encode(x: &[f32], out: &mut [u8]) {
        let mut fit = fit_plain(x, 15, -1.0, 20);
        finish_header(x, &mut fit, 15, out);
        pack_nibbles(&fit.l, &mut out[16..144]);
    }

    const WEIGHTED: bool = true;

    /// `quantize_row_q4_K_impl` with quant weights (see [`fit_weighted`]).
    fn encode_row_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
        for ((xb, qb), ob) in x.chunks_exact(QK_K).zip(qw.chunks_exact(QK_K)).zip(out.chunks_exact_mut(Self::BYTES)) {
            let mut fit = fit_weighted(xb, qb, 15);
            finish_header(xb, &mut fit, 15, ob);
            pack_nibbles(&fit.l, &mut ob[16..144]);
        }
    }

    fn decode(b: &[u8], out: &mut [f32]) {
        let d = get_f16(&b[0..2]);
        let min = get_f16(&b[2..4]);
        let sc = &b[4..16];
        for (k, (q, y)) in b[16..144].chunks_exact(32).zip(out.chunks_exact_mut(64)).enumerate() {
            let (s1, m1) = scale_min(2 * k, sc);
            let (s2, m2) = scale_min(2 * k + 1, sc);
            let (d1, m1) = (d * f32::from(s1), min * f32::from(m1));
            let (d2, m2) = (d * f32::from(s2), min * f32::from(m2));
            for i in 0..32 {
                y[i] = d1 * f32::from(q[i] & 0x0f) - m1;
                y[i + 32] = d2 * f32::from(q[i] >> 4) - m2;
            }
        }
    }
}

/// The sub-block fits of one super-block, before they are stored: levels, 6-bit scale and min
/// levels, and the two f16 super-scales (shared by Q4_K and Q5_K, which differ in the level range,
/// the search constants and how the codes are packed).
pub(crate) struct Fit {
    pub(crate) l: [u8; QK_K],
    ls: [u8; NSUB],
    lm: [u8; NSUB],
    d: f32,
    dmin: f32,
}

/// `quantize_row_q{4,5}_K_ref`'s fits: each sub-block weighted by mean |x| + |x|, searched from
/// `rmin` in `nstep` steps of 0.1, then the scales and mins scaled from the largest to 6 bits.
#[inline(always)]
pub(crate) fn fit_plain(x: &[f32], nmax: i32, rmin: f32, nstep: i32) -> Fit {
    let mut l = [0u8; QK_K];
    let mut scales = [0.0f32; NSUB];
    let mut mins = [0.0f32; NSUB];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..NSUB {
        let xs: &[f32; SUB] = x[SUB * j..SUB * (j + 1)].try_into().expect("sub-block is 32 weights");
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights: [f32; SUB] = std::array::from_fn(|i| av_x + xs[i].abs());
        let (s, m) = make_qkx_quants::<false>(xs, &weights, nmax, &mut l[SUB * j..], rmin, 0.1, nstep);
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    // C stores nearest_int into a uint8_t (mod 256) before MIN(63, ·).
    let ls = scales.map(|s| (nearest_int(inv_scale * s) as u8).min(63));
    let lm = mins.map(|m| (nearest_int(inv_min * m) as u8).min(63));
    Fit { l, ls, lm, d: max_scale / 63.0, dmin: max_min / 63.0 }
}

/// `quantize_row_q{4,5}_K_impl` with quant weights: each weight's importance is scaled by
/// sqrt(σ² + x²), σ² twice the super-block's mean square; the sub-block fits search 37
/// candidates, and the 6-bit scales and mins are themselves fitted (`make_qp_quants`),
/// weighted by each sub-block's total importance, instead of scaled from the largest.
pub(crate) fn fit_weighted(x: &[f32], qw: &[f32], nmax: i32) -> Fit {
    let sigma2 = super::twice_mean_square(x);
    let mut l = [0u8; QK_K];
    let mut scales = [0.0f32; NSUB];
    let mut mins = [0.0f32; NSUB];
    let mut sw = [0.0f32; NSUB];
    for j in 0..NSUB {
        let xs: &[f32; SUB] = x[SUB * j..SUB * (j + 1)].try_into().expect("sub-block is 32 weights");
        let weights = super::sigma_weights::<SUB>(xs, &qw[SUB * j..], sigma2);
        let mut sumw = 0.0f32;
        for &w in &weights {
            sumw += w;
        }
        sw[j] = sumw;
        (scales[j], mins[j]) = make_qkx_quants::<true>(xs, &weights, nmax, &mut l[SUB * j..], -0.9, 0.05, 36);
    }
    let (d, ls) = make_qp_quants(&scales, &sw);
    let (dmin, lm) = make_qp_quants(&mins, &sw);
    Fit { l, ls, lm, d, dmin }
}

/// Writes the f16 super-scales and the packed 6-bit sub-block scales and mins (bytes 0..16), then
/// rounds every weight to 0..=nmax against the scales as stored (ggml's closing pass).
#[inline(always)]
pub(crate) fn finish_header(x: &[f32], fit: &mut Fit, nmax: i32, out: &mut [u8]) {
    let sc = &mut out[4..16];
    sc.fill(0);
    for j in 0..NSUB {
        let (ls, lm) = (fit.ls[j], fit.lm[j]);
        if j < 4 {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (ls & 0x0f) | ((lm & 0x0f) << 4);
            sc[j - 4] |= (ls >> 4) << 6;
            sc[j] |= (lm >> 4) << 6;
        }
    }
    put_f16(&mut out[0..2], fit.d);
    put_f16(&mut out[2..4], fit.dmin);

    let d_all = get_f16(&out[0..2]);
    let dmin_all = get_f16(&out[2..4]);
    for j in 0..NSUB {
        let (s, m) = scale_min(j, &out[4..16]);
        let d = d_all * f32::from(s);
        if d == 0.0 {
            continue;
        }
        let dm = dmin_all * f32::from(m);
        for ii in 0..SUB {
            fit.l[SUB * j + ii] = nearest_int((x[SUB * j + ii] + dm) / d).clamp(0, nmax) as u8;
        }
    }
}

/// Q4_K's codes: per 64 weights, 32 bytes of (low sub-block | high sub-block << 4).
#[inline(always)]
fn pack_nibbles(l: &[u8; QK_K], qs: &mut [u8]) {
    for (chunk, lq) in qs.chunks_exact_mut(32).zip(l.chunks_exact(64)) {
        for i in 0..32 {
            chunk[i] = lq[i] | (lq[i + 32] << 4);
        }
    }
}

/// ggml's `make_qp_quants(8, 63, x, L, quant_weights)`: fits non-negative values to levels
/// 0..=63 under one scale, weighted (a 9-point scale search, then up to five rounds of
/// single-level moves that raise the weighted correlation). Returns the scale and the levels, each
/// stored as C stores an int into a `uint8_t`.
fn make_qp_quants(x: &[f32; NSUB], qw: &[f32; NSUB]) -> (f32, [u8; NSUB]) {
    const NMAX: i32 = 63;
    let nmaxf = NMAX as f32;
    let mut levels = [0u8; NSUB];
    let mut max = 0.0f32;
    for &v in x {
        if v > max {
            max = v;
        }
    }
    if max < GROUP_MAX_EPS {
        return (0.0, levels);
    }
    let mut iscale = nmaxf / max;
    for (l, &v) in levels.iter_mut().zip(x) {
        *l = nearest_int(iscale * v) as u8;
    }
    let scale = 1.0 / iscale;
    let mut best_mse = 0.0f32;
    for i in 0..NSUB {
        let diff = x[i] - scale * f32::from(levels[i]);
        best_mse += qw[i] * diff * diff;
    }
    for is in (-4..=4).filter(|&is| is != 0) {
        let iscale_is = (0.1 * is as f32 + nmaxf) / max;
        let scale_is = 1.0 / iscale_is;
        let mut mse = 0.0f32;
        for i in 0..NSUB {
            let l = nearest_int(iscale_is * x[i]).min(NMAX);
            let diff = x[i] - scale_is * l as f32;
            mse += qw[i] * diff * diff;
        }
        if mse < best_mse {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for i in 0..NSUB {
        let l = nearest_int(iscale * x[i]).min(NMAX);
        levels[i] = l as u8;
        let lf = l as f32;
        sumlx += qw[i] * x[i] * lf;
        suml2 += qw[i] * lf * lf;
    }
    for _ in 0..5 {
        let mut changed = false;
        for i in 0..NSUB {
            let (w, li) = (qw[i], f32::from(levels[i]));
            let mut slx = sumlx - w * x[i] * li;
            let mut sl2 = suml2 - w * li * li;
            if slx > 0.0 && sl2 > 0.0 {
                let new_l = nearest_int(x[i] * sl2 / slx).min(NMAX);
                if new_l != i32::from(levels[i]) {
                    let nf = new_l as f32;
                    slx += w * x[i] * nf;
                    sl2 += w * nf * nf;
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        levels[i] = new_l as u8;
                        sumlx = slx;
                        suml2 = sl2;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    (if suml2 > 0.0 { sumlx / suml2 } else { 0.0 }, levels)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::{LANES, SUB, accumulate_avx2, accumulate_portable};

    /// The AVX2 kernel and the portable loop give the same bits (levels and sums) for both
    /// rounding rules, on sub-blocks with ties, zeros, huge and tiny values and NaN-producing scales.
    #[test]
    fn the_avx2_search_kernel_equals_the_portable_loop() {
        if !is_x86_feature_detected!("avx2") {
            return;
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..4000 {
            let x: [f32; SUB] = std::array::from_fn(|_| {
                let r = next();
                match r % 7 {
                    0 => 0.0,
                    1 => ((r >> 8) % 64) as f32 * 0.25 - 8.0,
                    2 => f32::from_bits((r >> 32) as u32 & 0x807f_ffff | 0x3f00_0000),
                    _ => ((r >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * (1u64 << (r % 20)) as f32,
                }
            });
            let weights: [f32; SUB] = std::array::from_fn(|i| x[i].abs() + (next() % 5) as f32);
            let min = x.iter().fold(0f32, |m, &v| m.min(v));
            let max = x.iter().fold(min, |m, &v| m.max(v));
            let iscales: [f32; LANES] = std::array::from_fn(|k| {
                let span = if round % 50 == 0 { 0.0 } else { max - min };
                (-0.9 + 0.05 * k as f32 + 15.0) / span
            });
            for nmax in [15, 31] {
                let (mut a, mut b) = ([[0f32; LANES]; SUB], [[0f32; LANES]; SUB]);
                let bits = |s: ([f32; LANES], [f32; LANES], [f32; LANES])| [s.0, s.1, s.2].map(|v| v.map(f32::to_bits));
                let p = bits(accumulate_portable::<false>(&x, &weights, min, &iscales, nmax, &mut a));
                #[allow(unsafe_code)]
                // SAFETY: AVX2 support was checked above.
                let v = bits(unsafe { accumulate_avx2::<false>(&x, &weights, min, &iscales, nmax, &mut b) });
                assert_eq!((p, a.map(|r| r.map(f32::to_bits))), (v, b.map(|r| r.map(f32::to_bits))), "plain {x:?}");
                let p = bits(accumulate_portable::<true>(&x, &weights, min, &iscales, nmax, &mut a));
                #[allow(unsafe_code)]
                // SAFETY: AVX2 support was checked above.
                let v = bits(unsafe { accumulate_avx2::<true>(&x, &weights, min, &iscales, nmax, &mut b) });
                assert_eq!((p, a.map(|r| r.map(f32::to_bits))), (v, b.map(|r| r.map(f32::to_bits))), "guarded {x:?}");
            }
        }
    }
}
