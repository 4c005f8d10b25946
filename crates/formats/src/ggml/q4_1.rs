//! Q4_1 (`block_q4_1`: f16 d, f16 min m, 16 bytes of nibbles; weight = d·q + m), following
//! `quantize_row_q4_1_ref` (min and max of the block, 15 steps between), the importance-weighted
//! `quantize_row_q4_1_impl` (`make_qkx3_quants`) and `dequantize_row_q4_1` in
//! ggml/src/ggml-quants.c.

use super::{BlockCodec, c_f32_to_i8, get_f16, put_f16};

pub(crate) struct Q4_1;

impl BlockCodec for Q4_1 {
    const WEIGHTS: usize = 32;
    const BYTES: usize = 20;
    const F16_SCALES: &'static [usize] = &[0, 2];
    const WEIGHTED: bool = true;

    #[inline(always)]
    fn encode(x: &[f32], out: &mut [u8]) {
        let (_, id, min) = min_max_step(x, 15.0, out);
        // C: MIN(15, (int8_t)(x0 + 0.5f)), stored into a uint8_t.
        let q = |v: f32| i32::from(c_f32_to_i8((v - min) * id + 0.5)).min(15) as u8;
        for j in 0..16 {
            out[4 + j] = q(x[j]) | (q(x[j + 16]) << 4);
        }
    }

    fn encode_row_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
        super::affine_weighted::<20>(x, qw, 15, out, |l, ob| {
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
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    let d = (max - min) / steps;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(&mut out[0..2], d);
    put_f16(&mut out[2..4], min);
    (d, id, min)
}
