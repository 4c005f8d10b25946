//! Q4_0 (`block_q4_0`: f16 d, 16 bytes of nibbles; low nibbles hold weights
//! 0..16, high nibbles 16..32), following `quantize_row_q4_0_ref` /
//! `dequantize_row_q4_0` in ggml/src/ggml-quants.c.

use super::{BlockCodec, c_f32_to_i8, get_f16, put_f16};

pub(crate) struct Q4_0;

/// The signed value of largest magnitude (first one on ties), as ggml picks it.
#[inline(always)]
pub(crate) fn signed_absmax(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

impl BlockCodec for Q4_0 {
    const WEIGHTS: usize = 32;
    const BYTES: usize = 18;

    #[inline]
    fn encode(x: &[f32], out: &mut [u8]) {
        let d = signed_absmax(x) / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(out, d);
        // `(int8_t)(v*id + 8.5f)` truncates, then MIN(15, ·) into a uint8_t.
        let nib = |v: f32| i32::from(c_f32_to_i8(v * id + 8.5)).min(15) as u8;
        for j in 0..16 {
            out[2 + j] = nib(x[j]) | (nib(x[j + 16]) << 4);
        }
    }

    #[inline]
    fn decode(b: &[u8], out: &mut [f32]) {
        let d = get_f16(b);
        for j in 0..16 {
            let q = b[2 + j];
            out[j] = (i32::from(q & 0x0f) - 8) as f32 * d;
            out[j + 16] = (i32::from(q >> 4) - 8) as f32 * d;
        }
    }
}
