//! Q8_0 (`block_q8_0`: f16 d, 32 x i8), following `quantize_row_q8_0_ref` /
//! `dequantize_row_q8_0` in ggml/src/ggml-quants.c.

use crate::GroupArith;

use super::{BlockCodec, abs_max_lanes, c_f32_to_i8, get_f16, put_f16, roundf_small};

pub(crate) struct Q8_0;

impl BlockCodec for Q8_0 {
    const WEIGHTS: usize = 32;
    const BYTES: usize = 34;
    const F16_SCALES: &'static [usize] = &[0];
    const ARITH: Option<GroupArith> = Some(GroupArith::Q8_0);

    #[inline(always)]
    fn encode(x: &[f32], out: &mut [u8]) {
        let amax = abs_max_lanes(x);
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(out, d);
        if id.is_finite() {
            // |v·id| <= 127 (plus rounding), so the branch-free rounding is exact and the i8 is
            // the low byte of the rounded value's magic-number bits (as ggml's `nearest_int`).
            for (q, &v) in out[2..34].iter_mut().zip(x) {
                *q = (roundf_small(v * id) + crate::RINT_MAGIC).to_bits() as u8;
            }
        } else {
            // 1 / subnormal d = inf: reproduce C's conversions of the non-finite products.
            for (q, &v) in out[2..34].iter_mut().zip(x) {
                *q = c_f32_to_i8((v * id).round()) as u8;
            }
        }
    }

    #[inline]
    fn decode(b: &[u8], out: &mut [f32]) {
        let d = get_f16(b);
        for (o, &q) in out.iter_mut().zip(&b[2..34]) {
            *o = f32::from(q as i8) * d;
        }
    }
}
