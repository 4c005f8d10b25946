//! Q5_0 (`block_q5_0`: f16 d, u32 LE of 5th bits, 16 bytes of low nibbles),
//! following `quantize_row_q5_0_ref` / `dequantize_row_q5_0` in
//! ggml/src/ggml-quants.c.

use super::q4_0::{signed_absmax, trunc_level};
use super::{BlockCodec, c_f32_to_i8, get_f16, make_qx_quants, put_f16};
use crate::GroupArith;

pub(crate) struct Q5_0;

impl BlockCodec for Q5_0 {
    const ARITH: Option<GroupArith> = Some(GroupArith::SignedMax { levels: 16.0, qmax: 31.0 });
    const WEIGHTS: usize = 32;
    const BYTES: usize = 22;
    const F16_SCALES: &'static [usize] = &[0];
    const WEIGHTED: bool = true;

    #[inline(always)]
    fn encode(x: &[f32], out: &mut [u8]) {
        let d = signed_absmax(x) / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(out, d);
        if id.is_finite() {
            // v·id lies in [-16, 16] (up to rounding, which `trunc_level` absorbs at both ends), so
            // v·id + 16.5 needs none of the saturating cast's out-of-range cases and the loop
            // vectorizes, as Q4_0's does.
            let q5 = |v: f32| trunc_level::<31>(v * id + 16.5);
            pack_fifth_bits(&std::array::from_fn(|j| q5(x[j])), 2, out);
        } else {
            // `(int8_t)(v*id + 16.5f)` truncates, then MIN(31, ·) into a uint8_t.
            let q5 = |v: f32| i32::from(c_f32_to_i8(v * id + 16.5)).min(31) as u8;
            pack_fifth_bits(&std::array::from_fn(|j| q5(x[j])), 2, out);
        }
    }

    /// `quantize_row_q5_0_impl`: as Q4_0's weighted path, importance × sqrt(σ² + x²) with σ² the
    /// row's mean square, and a searched block scale (`make_qx_quants`, levels -16..15).
    fn encode_row_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
        let sigma2 = super::row_mean_square(x);
        for ((xb, qb), ob) in x.chunks_exact(32).zip(qw.chunks_exact(32)).zip(out.chunks_exact_mut(22)) {
            let weight = super::sigma_weights::<32>(xb, qb, sigma2);
            let mut l = [0i8; 32];
            put_f16(ob, make_qx_quants(xb, 16, &mut l, Some(&weight)));
            pack_fifth_bits(&l.map(|v| v as u8), 2, ob);
        }
    }

    #[inline]
    fn decode(b: &[u8], out: &mut [f32]) {
        let d = get_f16(b);
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        for j in 0..16 {
            let h0 = ((qh >> j) << 4) & 0x10;
            let h1 = (qh >> (j + 12)) & 0x10;
            let q = u32::from(b[6 + j]);
            out[j] = (((q & 0x0f) | h0) as i32 - 16) as f32 * d;
            out[j + 16] = (((q >> 4) | h1) as i32 - 16) as f32 * d;
        }
    }
}

/// Writes 32 levels 0..=31 as a word of fifth bits at byte `qh` (bit j for weight j) followed by
/// 16 bytes of low nibbles (weights j and j + 16 share byte j): block_q5_0's layout from byte 2,
/// block_q5_1's from byte 4.
#[inline(always)]
pub(crate) fn pack_fifth_bits(l: &[u8; 32], qh: usize, out: &mut [u8]) {
    let mut bits = 0u32;
    for j in 0..16 {
        let (a, b) = (l[j], l[j + 16]);
        out[qh + 4 + j] = (a & 0x0f) | ((b & 0x0f) << 4);
        bits |= u32::from((a & 0x10) >> 4) << j;
        bits |= u32::from((b & 0x10) >> 4) << (j + 16);
    }
    out[qh..qh + 4].copy_from_slice(&bits.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The float-only level equals ggml's saturating cast on blocks whose extreme is matched,
    /// tied in magnitude by its negation, or tiny and huge, over many scales.
    #[test]
    fn levels_equal_the_c_cast_path() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for i in 0..40_000 {
            let scale = [1e-30f32, 1e-3, 0.7, 1.0, 3.0, 1e4, 1e30][i % 7];
            let mut x: [f32; 32] = std::array::from_fn(|_| next() * scale);
            if i % 5 == 0 {
                x[(i / 5) % 32] = -x[(i / 7) % 32];
            }
            let mut got = [0u8; 22];
            Q5_0::encode(&x, &mut got);
            let d = signed_absmax(&x) / -16.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            let mut want = [0u8; 22];
            put_f16(&mut want, d);
            let q5 = |v: f32| i32::from(c_f32_to_i8(v * id + 16.5)).min(31) as u8;
            pack_fifth_bits(&std::array::from_fn(|j| q5(x[j])), 2, &mut want);
            assert_eq!(got, want, "{x:?}");
        }
    }
}
