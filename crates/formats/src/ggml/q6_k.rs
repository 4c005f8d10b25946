//! Q6_K (`block_q6_K`: 128 bytes low nibbles, 64 bytes of 2-bit highs,
//! 16 x i8 sub-block scales, f16 d), following `quantize_row_q6_K_ref` (with
//! `make_qx_quants(16, 32, .., rmse_type = 1, NULL)`) and
//! `dequantize_row_q6_K` in ggml/src/ggml-quants.c.

use super::{BlockCodec, GROUP_MAX_EPS, get_f16, make_qx_quants, nearest_int, put_f16};

pub(crate) struct Q6K;

const QK_K: usize = 256;
const SUB: usize = 16;
const NSUB: usize = QK_K / SUB;

impl BlockCodec for Q6K {
    const WEIGHTS: usize = QK_K;
    const BYTES: usize = 210;
    const F16_SCALES: &'static [usize] = &[208];

    #[inline(always)]
    fn encode(x: &[f32], out: &mut [u8]) {
        encode_with(x, None, out);
    }

    const WEIGHTED: bool = true;

    /// `quantize_row_q6_K_impl` with quant weights: each sub-block's scale search weighs its
    /// errors by the importance instead of x² (ggml passes the weights as given, no sigma term).
    fn encode_row_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
        for ((xb, qb), ob) in x.chunks_exact(QK_K).zip(qw.chunks_exact(QK_K)).zip(out.chunks_exact_mut(210)) {
            encode_with(xb, Some(qb), ob);
        }
    }

    fn decode(b: &[u8], out: &mut [f32]) {
        decode_block(b, out);
    }
}

#[inline(always)]
fn encode_with(x: &[f32], qw: Option<&[f32]>, out: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; NSUB];
    let mut max_scale = 0.0f32;
    let mut max_abs_scale = 0.0f32;
    for ib in 0..NSUB {
        let s = make_qx_quants(
            &x[SUB * ib..SUB * (ib + 1)],
            32,
            &mut l[SUB * ib..],
            qw.map(|q| &q[SUB * ib..SUB * (ib + 1)]),
        );
        scales[ib] = s;
        if s.abs() > max_abs_scale {
            max_abs_scale = s.abs();
            max_scale = s;
        }
    }
    out.fill(0);
    if max_abs_scale < GROUP_MAX_EPS {
        put_f16(&mut out[208..210], 0.0);
        return;
    }

    let iscale = -128.0 / max_scale;
    put_f16(&mut out[208..210], 1.0 / iscale);
    for ib in 0..NSUB {
        // MIN(127, nearest_int(..)) stored into an int8_t (mod 256).
        out[192 + ib] = nearest_int(iscale * scales[ib]).min(127) as i8 as u8;
    }
    let d_all = get_f16(&out[208..210]);
    for j in 0..NSUB {
        let d = d_all * f32::from(out[192 + j] as i8);
        if d == 0.0 {
            continue;
        }
        for ii in 0..SUB {
            let q = nearest_int(x[SUB * j + ii] / d).clamp(-32, 31);
            l[SUB * j + ii] = (q + 32) as i8;
        }
    }

    let (ql, rest) = out.split_at_mut(128);
    let qh = &mut rest[..64];
    for (half, (ql, qh)) in ql.chunks_exact_mut(64).zip(qh.chunks_exact_mut(32)).enumerate() {
        let lq = &l[128 * half..128 * (half + 1)];
        for i in 0..32 {
            let (a, b, c, e) = (lq[i] as u8, lq[i + 32] as u8, lq[i + 64] as u8, lq[i + 96] as u8);
            ql[i] = (a & 0x0f) | ((c & 0x0f) << 4);
            ql[i + 32] = (b & 0x0f) | ((e & 0x0f) << 4);
            qh[i] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
        }
    }
}

fn decode_block(b: &[u8], out: &mut [f32]) {
    let d = get_f16(&b[208..210]);
    for half in 0..2 {
        let ql = &b[64 * half..64 * (half + 1)];
        let qh = &b[128 + 32 * half..128 + 32 * (half + 1)];
        let sc = &b[192 + 8 * half..192 + 8 * (half + 1)];
        let y = &mut out[128 * half..128 * (half + 1)];
        for i in 0..32 {
            let is = i / 16;
            let q1 = i32::from((ql[i] & 0x0f) | ((qh[i] & 3) << 4)) - 32;
            let q2 = i32::from((ql[i + 32] & 0x0f) | (((qh[i] >> 2) & 3) << 4)) - 32;
            let q3 = i32::from((ql[i] >> 4) | (((qh[i] >> 4) & 3) << 4)) - 32;
            let q4 = i32::from((ql[i + 32] >> 4) | (((qh[i] >> 6) & 3) << 4)) - 32;
            let s = |k: usize| f32::from(sc[is + k] as i8);
            y[i] = d * s(0) * q1 as f32;
            y[i + 32] = d * s(2) * q2 as f32;
            y[i + 64] = d * s(4) * q3 as f32;
            y[i + 96] = d * s(6) * q4 as f32;
        }
    }
}
