//! Q3_K (`block_q3_K`: 32 bytes of high-bit mask, 64 bytes of 2-bit codes, 12 bytes of 6-bit
//! signed sub-block scales, f16 d), following `quantize_row_q3_K_ref` (`make_q3_quants` per
//! 16 weights, then one scale for the 16 sub-block scales), the importance-weighted
//! `quantize_row_q3_K_impl` (`make_qx_quants` for both levels) and `dequantize_row_q3_K` in
//! ggml/src/ggml-quants.c.

use super::{BlockCodec, GROUP_MAX_EPS, get_f16, make_qx_quants, nearest_int, put_f16};

pub(crate) struct Q3K;

const QK_K: usize = 256;
const SUB: usize = 16;
const NSUB: usize = QK_K / SUB;
/// Byte offsets inside the block.
const QS: usize = 32;
const SCALES: usize = 96;
const D: usize = 108;

impl BlockCodec for Q3K {
    const WEIGHTS: usize = QK_K;
    const BYTES: usize = 110;
    const F16_SCALES: &'static [usize] = &[D];
    const WEIGHTED: bool = true;

    #[inline(always)]
    fn encode(x: &[f32], out: &mut [u8]) {
        let mut l = [0i8; QK_K];
        let mut scales = [0.0f32; NSUB];
        let mut max_scale = 0.0f32;
        let mut amax = 0.0f32;
        for j in 0..NSUB {
            scales[j] = make_q3_quants(&x[SUB * j..SUB * (j + 1)], &mut l[SUB * j..SUB * (j + 1)]);
            let scale = scales[j].abs();
            if scale > amax {
                amax = scale;
                max_scale = scales[j];
            }
        }
        out[SCALES..D].fill(0);
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            // C stores nearest_int into an int8_t before clamping.
            let levels = scales.map(|s| ((nearest_int(iscale * s) as i8).clamp(-32, 31) + 32) as u8);
            pack_scales(&levels, out);
            put_f16(&mut out[D..D + 2], 1.0 / iscale);
        } else {
            put_f16(&mut out[D..D + 2], 0.0);
        }
        finish_block(x, &mut l, out);
    }

    /// `quantize_row_q3_K_impl` with quant weights: importance × sqrt(σ² + x²) (σ² twice the
    /// super-block's mean square) weighs each 16-weight fit's 19-scale search, and the 16 scales
    /// are themselves fitted to 6-bit levels weighted by each sub-block's total importance.
    fn encode_row_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
        for ((xb, qb), ob) in x.chunks_exact(QK_K).zip(qw.chunks_exact(QK_K)).zip(out.chunks_exact_mut(Self::BYTES)) {
            encode_weighted(xb, qb, ob);
        }
    }

    fn decode(b: &[u8], out: &mut [f32]) {
        let (hmask, qs) = (&b[..QS], &b[QS..SCALES]);
        let d = get_f16(&b[D..D + 2]);
        // ggml's order: (d × scale) × code.
        let dl: [f32; NSUB] = std::array::from_fn(|j| d * f32::from(scale(b, j)));
        for (k, y) in out.chunks_exact_mut(32).enumerate().take(QK_K / 32) {
            let (q, shift) = (&qs[(k / 4) * 32..], 2 * (k % 4));
            for (j, v) in y.iter_mut().enumerate() {
                let low = i32::from((q[j] >> shift) & 3);
                let high = i32::from((hmask[j] >> k) & 1);
                *v = dl[2 * k + j / 16] * (low - 4 + 4 * high) as f32;
            }
        }
    }
}

fn encode_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
    let sigma2 = super::twice_mean_square(x);
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; NSUB];
    let mut sw = [0.0f32; NSUB];
    for j in 0..NSUB {
        let xs = &x[SUB * j..SUB * (j + 1)];
        let weight = super::sigma_weights::<SUB>(xs, &qw[SUB * j..], sigma2);
        let mut sumw = 0.0f32;
        for &w in &weight {
            sumw += w;
        }
        sw[j] = sumw;
        scales[j] = make_qx_quants(xs, 4, &mut l[SUB * j..], Some(&weight));
    }
    let mut ls = [0i8; NSUB];
    let d_block = make_qx_quants(&scales, 32, &mut ls, Some(&sw));
    out[SCALES..D].fill(0);
    pack_scales(&ls.map(|v| v as u8), out);
    put_f16(&mut out[D..D + 2], d_block);
    finish_block(x, &mut l, out);
}

/// ggml's `make_q3_quants(16, 4, x, L, do_rmse = true)`: levels -4..3 from the block's signed
/// extreme, then up to five rounds of single-level moves that raise the x²-weighted correlation;
/// leaves level + 4 in `l` and returns the least-squares scale.
#[inline(always)]
fn make_q3_quants(x: &[f32], l: &mut [i8]) -> f32 {
    const NMAX: i32 = 4;
    let max = super::q4_0::signed_absmax(x);
    if max.abs() < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let iscale = -(NMAX as f32) / max;
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (li, &v) in l.iter_mut().zip(x) {
        let q = nearest_int(iscale * v).clamp(-NMAX, NMAX - 1);
        *li = q as i8;
        let (w, qf) = (v * v, q as f32);
        sumlx += w * v * qf;
        suml2 += w * qf * qf;
    }
    for _ in 0..5 {
        let mut changed = false;
        for (li, &v) in l.iter_mut().zip(x) {
            let (w, cur) = (v * v, f32::from(*li));
            let mut slx = sumlx - w * v * cur;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * cur * cur;
                let new_l = nearest_int(v * sl2 / slx).clamp(-NMAX, NMAX - 1);
                if new_l != i32::from(*li) {
                    let nf = new_l as f32;
                    slx += w * v * nf;
                    sl2 += w * nf * nf;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *li = new_l as i8;
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
    for li in l.iter_mut() {
        *li += NMAX as i8;
    }
    if suml2 > 0.0 { sumlx / suml2 } else { 0.0 }
}

/// Writes 16 six-bit scale levels (0..=63, stored biased by 32): low nibbles in bytes 0..8 (two
/// per byte), the high two bits in bytes 8..12.
#[inline(always)]
fn pack_scales(levels: &[u8; NSUB], out: &mut [u8]) {
    let sc = &mut out[SCALES..D];
    for (j, &l) in levels.iter().enumerate() {
        if j < 8 {
            sc[j] = l & 0x0f;
        } else {
            sc[j - 8] |= (l & 0x0f) << 4;
        }
        sc[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
    }
}

/// The signed scale of sub-block `j` as stored (-32..=31).
#[inline(always)]
fn scale(b: &[u8], j: usize) -> i8 {
    let sc = &b[SCALES..D];
    let low = if j < 8 { sc[j] & 0x0f } else { sc[j - 8] >> 4 };
    let high = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
    (low | (high << 4)) as i8 - 32
}

/// ggml's closing pass: every weight rounded against its sub-block's scale as stored, then the
/// third bit into the mask (bit b of byte m for weight 32b + m) and two bits per code.
#[inline(always)]
fn finish_block(x: &[f32], l: &mut [i8; QK_K], out: &mut [u8]) {
    let d_all = get_f16(&out[D..D + 2]);
    for j in 0..NSUB {
        let d = d_all * f32::from(scale(out, j));
        if d == 0.0 {
            continue;
        }
        for ii in 0..SUB {
            l[SUB * j + ii] = (nearest_int(x[SUB * j + ii] / d).clamp(-4, 3) + 4) as i8;
        }
    }
    let (hmask, qs) = out[..SCALES].split_at_mut(QS);
    hmask.fill(0);
    for (j, lj) in l.iter_mut().enumerate() {
        if *lj > 3 {
            hmask[j % 32] |= 1 << (j / 32);
            *lj -= 4;
        }
    }
    for (half, q) in qs.chunks_exact_mut(32).enumerate() {
        let lh = |k: usize| l[128 * half + k] as u8;
        for (i, b) in q.iter_mut().enumerate() {
            *b = lh(i) | (lh(i + 32) << 2) | (lh(i + 64) << 4) | (lh(i + 96) << 6);
        }
    }
}
