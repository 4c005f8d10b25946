//! Q4_1 (`block_q4_1`: f16 d, f16 min m, 16 bytes of nibbles; weight = d·q + m), following
//! `quantize_row_q4_1_ref` (min and max of the block, 15 steps between), the importance-weighted
//! `quantize_row_q4_1_impl` (`make_qkx3_quants`) and `dequantize_row_q4_1` in
//! ggml/src/ggml-quants.c.

use super::q4_0::trunc_level;
use super::{BlockCodec, c_f32_to_i8, get_f16, put_f16};

pub(crate) struct Q4_1;

impl BlockCodec for Q4_1 {
    const WEIGHTS: usize = 32;
    const BYTES: usize = 20;
    const F16_SCALES: &'static [usize] = &[0, 2];
    const WEIGHTED: bool = true;

    #[inline(always)]
    fn encode(x: &[f32], out: &mut [u8]) {
        let (d, id, min) = min_max_step(x, 15.0, out);
        if d.is_finite() && id.is_finite() {
            // (v − min)·id + 0.5 lies in [0.5, 15.5 + ε]: the float-only truncation applies.
            let q = |v: f32| trunc_level::<15>((v - min) * id + 0.5);
            for j in 0..16 {
                out[4 + j] = q(x[j]) | (q(x[j + 16]) << 4);
            }
        } else {
            // C: MIN(15, (int8_t)(x0 + 0.5f)), stored into a uint8_t.
            let q = |v: f32| i32::from(c_f32_to_i8((v - min) * id + 0.5)).min(15) as u8;
            for j in 0..16 {
                out[4 + j] = q(x[j]) | (q(x[j + 16]) << 4);
            }
        }
    }

    fn encode_row_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
        affine_weighted::<20>(x, qw, 15, out, |l, ob| {
            for j in 0..16 {
                ob[4 + j] = l[j] | (l[j + 16] << 4);
            }
        });
    }

    fn decode(b: &[u8], out: &mut [f32]) {
        let (d, m) = (get_f16(&b[0..2]), get_f16(&b[2..4]));
        for (j, &q) in b[4..20].iter().enumerate() {
            out[j] = d * f32::from(q & 0x0f) + m;
            out[j + 16] = d * f32::from(q >> 4) + m;
        }
    }
}

/// The plain encoders' block range: min and max, step d = (max − min) / `steps` and its inverse
/// (0 when d is 0); writes d and min as f16 and returns (d, 1/d, min).
#[inline(always)]
pub(crate) fn min_max_step(x: &[f32], steps: f32, out: &mut [u8]) -> (f32, f32, f32) {
    let (min, max) = min_max(x);
    let d = (max - min) / steps;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(&mut out[0..2], d);
    put_f16(&mut out[2..4], min);
    (d, id, min)
}

/// `quantize_row_q{4,5}_1_impl`: importance × sqrt(σ² + x²), σ² the row's mean square; each
/// 32-weight block fitted to levels 0..=`nmax` by `make_qkx3_quants` (37 candidate scales), its d
/// and min written as f16, then `pack` stores the levels.
pub(crate) fn affine_weighted<const BYTES: usize>(
    x: &[f32],
    qw: &[f32],
    nmax: i32,
    out: &mut [u8],
    pack: impl Fn(&[u8; 32], &mut [u8]),
) {
    let sigma2 = super::row_mean_square(x);
    for ((xb, qb), ob) in x.chunks_exact(32).zip(qw.chunks_exact(32)).zip(out.chunks_exact_mut(BYTES)) {
        let xs: &[f32; 32] = xb.try_into().expect("block is 32 weights");
        let weight = super::sigma_weights::<32>(xb, qb, sigma2);
        let mut l = [0u8; 32];
        let (d, neg_min) = super::q4_k::make_qkx_quants::<true>(xs, &weight, nmax, &mut l, -0.9, 0.05, 36);
        put_f16(&mut ob[0..2], d);
        put_f16(&mut ob[2..4], -neg_min);
        pack(&l, ob);
    }
}

/// ggml's `if (v < min) min = v; if (v > max) max = v;` from ±FLT_MAX over a block, in eight
/// lanes. Inputs are finite (checked before any codec runs), so the extremes do not depend on the
/// order, except the sign of a zero extreme: the serial loop keeps the first zero it meets.
#[inline(always)]
fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = ([f32::MAX; 8], [-f32::MAX; 8]);
    for c in x.chunks_exact(8) {
        for k in 0..8 {
            if c[k] < lo[k] {
                lo[k] = c[k];
            }
            if c[k] > hi[k] {
                hi[k] = c[k];
            }
        }
    }
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in lo.iter().chain(x.chunks_exact(8).remainder()) {
        if v < min {
            min = v;
        }
    }
    for &v in hi.iter().chain(x.chunks_exact(8).remainder()) {
        if v > max {
            max = v;
        }
    }
    let first_zero = || x.iter().copied().find(|&v| v == 0.0).unwrap_or(0.0);
    if min == 0.0 {
        min = first_zero();
    }
    if max == 0.0 {
        max = first_zero();
    }
    (min, max)
}

#[cfg(test)]
mod tests {
    /// The lanes give the serial loop's bits, signed zeros included, on blocks drawn from a few
    /// values with both zeros among them.
    #[test]
    fn min_max_equals_the_serial_loop_bit_for_bit() {
        // Non-negative blocks (a zero minimum), non-positive ones (a zero maximum), mixed ones.
        let alphabets: [&[f32]; 3] = [&[0.0, -0.0, 1.0, 0.5], &[0.0, -0.0, -1.0, -0.25], &[0.0, -0.0, 1.0, -1.0]];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..30_000 {
            let alphabet = alphabets[i % 3];
            let x: Vec<f32> = (0..32)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    alphabet[(state >> 33) as usize % alphabet.len()]
                })
                .collect();
            let (mut min, mut max) = (f32::MAX, -f32::MAX);
            for &v in &x {
                if v < min {
                    min = v;
                }
                if v > max {
                    max = v;
                }
            }
            let (lmin, lmax) = super::min_max(&x);
            assert_eq!((lmin.to_bits(), lmax.to_bits()), (min.to_bits(), max.to_bits()), "{x:?}");
        }
    }
}
