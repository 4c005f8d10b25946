//! Q5_0 (`block_q5_0`: f16 d, u32 LE of 5th bits, 16 bytes of low nibbles),
//! following `quantize_row_q5_0_ref` / `dequantize_row_q5_0` in
//! ggml/src/ggml-quants.c.

use super::q4_0::signed_absmax;
use super::{BlockCodec, c_f32_to_i8, get_f16, put_f16};
use crate::GroupArith;

pub(crate) struct Q5_0;

impl BlockCodec for Q5_0 {
    const ARITH: Option<GroupArith> = Some(GroupArith::SignedMax { levels: 16.0, qmax: 31.0 });
    const WEIGHTS: usize = 32;
    const BYTES: usize = 22;
    const F16_SCALES: &'static [usize] = &[0];

    #[inline(always)]
    fn encode(x: &[f32], out: &mut [u8]) {
        let d = signed_absmax(x) / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(out, d);
        let q5 = |v: f32| i32::from(c_f32_to_i8(v * id + 16.5)).min(31) as u8;
        let mut qh = 0u32;
        for j in 0..16 {
            let (a, b) = (q5(x[j]), q5(x[j + 16]));
            out[6 + j] = (a & 0x0f) | ((b & 0x0f) << 4);
            qh |= u32::from((a & 0x10) >> 4) << j;
            qh |= u32::from((b & 0x10) >> 4) << (j + 16);
        }
        out[2..6].copy_from_slice(&qh.to_le_bytes());
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
