//! Q5_K (`block_q5_K`: f16 d, f16 dmin, Q4_K's 12 bytes of 6-bit scales and mins, 32 bytes of
//! fifth bits, 128 bytes of nibbles), following `quantize_row_q5_K_ref` (Q4_K's fits with levels
//! 0..=31, rmin = -0.5, nstep = 15), the importance-weighted `quantize_row_q5_K_impl` and
//! `dequantize_row_q5_K` in ggml/src/ggml-quants.c.

use super::q4_k::{Fit, finish_header, fit_plain, fit_weighted, scale_min};
use super::{BlockCodec, get_f16};

pub(crate) struct Q5K;

const QK_K: usize = 256;
const NMAX: i32 = 31;

impl BlockCodec for Q5K {
    const WEIGHTS: usize = QK_K;
    const BYTES: usize = 176;
    const F16_SCALES: &'static [usize] = &[0, 2];
    const WEIGHTED: bool = true;

    #[inline(always)]
    fn encode(x: &[f32], out: &mut [u8]) {
        let mut fit = fit_plain(x, NMAX, -0.5, 15);
        finish_header(x, &mut fit, NMAX, out);
        pack(&fit, out);
    }

    fn encode_row_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
        for ((xb, qb), ob) in x.chunks_exact(QK_K).zip(qw.chunks_exact(QK_K)).zip(out.chunks_exact_mut(Self::BYTES)) {
            let mut fit = fit_weighted(xb, qb, NMAX);
            finish_header(xb, &mut fit, NMAX, ob);
            pack(&fit, ob);
        }
    }

    fn decode(b: &[u8], out: &mut [f32]) {
        let (d, min) = (get_f16(&b[0..2]), get_f16(&b[2..4]));
        let (sc, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
        for (s, y) in out.chunks_exact_mut(32).enumerate().take(8) {
            let (scale, m) = scale_min(s, sc);
            let (d1, m1) = (d * f32::from(scale), min * f32::from(m));
            for (j, v) in y.iter_mut().enumerate() {
                let low = (qs[(s / 2) * 32 + j] >> (4 * (s % 2))) & 0x0f;
                let high = ((qh[j] >> s) & 1) << 4;
                *v = d1 * f32::from(low | high) - m1;
            }
        }
    }
}

/// Per 64 weights (sub-blocks 2k and 2k + 1), 32 bytes of (low nibble | high nibble << 4); the
/// fifth bit of weight j of sub-block s is bit s of byte j of the plane.
#[inline(always)]
fn pack(fit: &Fit, out: &mut [u8]) {
    let (qh, qs) = out[16..176].split_at_mut(32);
    qh.fill(0);
    for (k, (chunk, lq)) in qs.chunks_exact_mut(32).zip(fit.l.chunks_exact(64)).enumerate() {
        for j in 0..32 {
            let (a, b) = (lq[j], lq[j + 32]);
            qh[j] |= ((a >> 4) << (2 * k)) | ((b >> 4) << (2 * k + 1));
            chunk[j] = (a & 0x0f) | ((b & 0x0f) << 4);
        }
    }
}
