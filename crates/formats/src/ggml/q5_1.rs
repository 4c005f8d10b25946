//! Q5_1 (`block_q5_1`: f16 d, f16 min m, u32 LE of fifth bits, 16 bytes of low nibbles), following
//! `quantize_row_q5_1_ref`, the importance-weighted `quantize_row_q5_1_impl` (`make_qkx3_quants`)
//! and `dequantize_row_q5_1` in ggml/src/ggml-quants.c.

use super::q4_0::trunc_level;
use super::q4_1::{affine_weighted, min_max_step};
use super::q5_0::pack_fifth_bits;
use super::{BlockCodec, c_f32_to_i8, get_f16};

pub(crate) struct Q5_1;

impl BlockCodec for Q5_1 {
    const WEIGHTS: usize = 32;
    const BYTES: usize = 24;
    const F16_SCALES: &'static [usize] = &[0, 2];
    const WEIGHTED: bool = true;

    #[inline(always)]
    fn encode(x: &[f32], out: &mut [u8]) {
        let (d, id, min) = min_max_step(x, 31.0, out);
        if d.is_finite() && id.is_finite() {
            // (v − min)·id + 0.5 lies in [0.5, 31.5 + ε], below 32: the float-only truncation.
            let q = |v: f32| trunc_level::<31>((v - min) * id + 0.5);
            pack_fifth_bits(&std::array::from_fn(|j| q(x[j])), 4, out);
        } else {
            // C: (uint8_t)(x0 + 0.5f), no clamp.
            let q = |v: f32| c_f32_to_i8((v - min) * id + 0.5) as u8;
            pack_fifth_bits(&std::array::from_fn(|j| q(x[j])), 4, out);
        }
    }

    fn encode_row_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
        affine_weighted::<24>(x, qw, 31, out, |l, ob| pack_fifth_bits(l, 4, ob));
    }

    fn decode(b: &[u8], out: &mut [f32]) {
        let (d, m) = (get_f16(&b[0..2]), get_f16(&b[2..4]));
        // i32, not u32: an unsigned conversion to f32 has no single instruction before AVX-512.
        let qh = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        for (j, &q) in b[8..24].iter().enumerate() {
            let h0 = ((qh >> j) & 1) << 4;
            let h1 = ((qh >> (j + 16)) & 1) << 4;
            out[j] = d * ((i32::from(q & 0x0f) | h0) as f32) + m;
            out[j + 16] = d * ((i32::from(q >> 4) | h1) as f32) + m;
        }
    }
}
