//! Q8_0 (`block_q8_0`: f16 d, 32 x i8), following `quantize_row_q8_0_ref` /
//! `dequantize_row_q8_0` in ggml/src/ggml-quants.c.

use super::{BlockCodec, c_f32_to_i8, get_f16, put_f16};

pub(crate) struct Q8_0;

impl BlockCodec for Q8_0 {
    const WEIGHTS: usize = 32;
    const BYTES: usize = 34;

    #[inline]
    fn encode(x: &[f32], out: &mut [u8]) {
        // ggml's MAX(amax, |v|) keeps amax on ties and NaN; inputs are finite.
        let amax = x.iter().fold(0.0f32, |m, &v| if m > v.abs() { m } else { v.abs() });
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        put_f16(out, d);
        for (q, &v) in out[2..34].iter_mut().zip(x) {
            // roundf: half away from zero, i.e. Rust's `round`.
            *q = c_f32_to_i8((v * id).round()) as u8;
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
