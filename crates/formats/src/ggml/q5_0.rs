//! Q5_0 (`block_q5_0`: f16 d, u32 LE of 5th bits, 16 bytes of low nibbles),
//! following `quantize_row_q5_0_ref` / `dequantize_row_q5_0` in
//! ggml/src/ggml-quants.c.

use super::q4_0::signed_absmax;
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
        let q5 = |v: f32| i32::from(c_f32_to_i8(v * id + 16.5)).min(31) as u8;
        pack_fifth_bits(&std::array::from_fn(|j| q5(x[j])), 2, out);
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
