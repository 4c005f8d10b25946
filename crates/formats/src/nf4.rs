//! QLoRA NormalFloat4 (Dettmers et al. 2023, "QLoRA", appendix E), as
//! bitsandbytes implements it without double quantization: blocks of 64
//! weights, an f32 absmax per block, code = nearest LUT entry of
//! `x * (1 / absmax)`.
//!
//! LUT values and decision thresholds are bitsandbytes' (`get_4bit_type("nf4")`
//! in bitsandbytes/functional.py, `dQuantizeNF4` / `dDequantizeNF4` in
//! csrc/kernels.cu). The kernel's binary tree with strict `>` comparisons equals
//! counting the thresholds strictly below `x`, which is what we do (branch-free).
//! One deliberate difference: an all-zero block uses inverse scale 0 and code 7
//! (0.0); bitsandbytes computes 1/0 and ends at code 0 (-1.0 * 0 = -0.0).

use crate::codec::{Codec, expect_len, mismatch};
use crate::exec::{Parallelism, for_each, split_rows, split_rows_mut};
use crate::{FormatError, QTensor};

/// The 16 NF4 levels, index = code (bitsandbytes' literals, rounded to f32).
#[allow(clippy::excessive_precision)]
pub const NF4_LUT: [f32; 16] = [
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
];

/// bitsandbytes' decision thresholds (midpoints between levels), ascending.
#[allow(clippy::excessive_precision)]
const THRESHOLDS: [f32; 15] = [
    -0.8480964004993439,
    -0.6106329262256622,
    -0.4599952697753906,
    -0.33967943489551544,
    -0.23460740596055984,
    -0.13791173323988914,
    -0.045525018125772476,
    0.03979014977812767,
    0.1202552504837513,
    0.2035212516784668,
    0.2920137718319893,
    0.3893125355243683,
    0.5016634166240692,
    0.6427869200706482,
    0.8614784181118011,
];

/// Weights per absmax block.
pub const NF4_BLOCK: usize = 64;

#[inline]
fn nf4_code(n: f32) -> u8 {
    THRESHOLDS.iter().map(|&t| u8::from(n > t)).sum()
}

#[inline]
fn block_params(x: &[f32]) -> (f32, f32) {
    let absmax = x.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
    let inv = if absmax > 0.0 { 1.0 / absmax } else { 0.0 };
    (absmax, inv)
}

/// `v * (1 / absmax)` as bitsandbytes does; for absmax below ~2.9e-39 the
/// inverse overflows to inf, and we divide instead of producing NaN codes.
#[inline(always)]
fn normalize(v: f32, absmax: f32, inv: f32) -> f32 {
    if inv.is_finite() { v * inv } else { v / absmax }
}

pub(crate) struct Nf4Codec;

fn quantize_row(x: &[f32], codes: &mut [u8], absmax: &mut [f32]) {
    for ((xb, cb), a) in x.chunks(NF4_BLOCK).zip(codes.chunks_mut(NF4_BLOCK)).zip(absmax.iter_mut()) {
        let (m, inv) = block_params(xb);
        *a = m;
        for (c, &v) in cb.iter_mut().zip(xb) {
            *c = nf4_code(normalize(v, m, inv));
        }
    }
}

fn dequantize_row(codes: &[u8], absmax: &[f32], out: &mut [f32]) {
    for ((cb, ob), &a) in codes.chunks(NF4_BLOCK).zip(out.chunks_mut(NF4_BLOCK)).zip(absmax) {
        for (o, &c) in ob.iter_mut().zip(cb) {
            *o = NF4_LUT[usize::from(c & 15)] * a;
        }
    }
}

impl Codec for Nf4Codec {
    fn stored_bytes(&self, rows: u64, cols: u64) -> Option<u64> {
        let n = rows.checked_mul(cols)?;
        let blocks = n / NF4_BLOCK as u64;
        (n / 2).checked_add(blocks.checked_mul(4)?)
    }

    fn quantize(
        &self,
        _id: &'static str,
        w: &[f32],
        rows: usize,
        cols: usize,
        par: Parallelism,
    ) -> Result<QTensor, FormatError> {
        let bpr = cols / NF4_BLOCK;
        let mut codes = vec![0u8; w.len()];
        let mut absmax = vec![0.0f32; rows * bpr];
        let items: Vec<_> = split_rows(w, rows)
            .into_iter()
            .zip(split_rows_mut(&mut codes, rows))
            .zip(split_rows_mut(&mut absmax, rows))
            .collect();
        for_each(par, items, |((x, c), a)| quantize_row(x, c, a));
        Ok(QTensor::Nf4 { rows, cols, block: NF4_BLOCK, codes, absmax })
    }

    fn dequantize(&self, id: &'static str, q: &QTensor, par: Parallelism) -> Result<Vec<f32>, FormatError> {
        let QTensor::Nf4 { rows, cols, block, codes, absmax } = q else {
            return Err(mismatch(id, format!("got a {} tensor", q.variant())));
        };
        if *block != NF4_BLOCK {
            return Err(mismatch(id, format!("block {block}, expected {NF4_BLOCK}")));
        }
        let rows = *rows;
        expect_len(id, "codes", codes.len(), rows, *cols)?;
        expect_len(id, "absmax", absmax.len(), rows, cols / NF4_BLOCK)?;
        let mut out = vec![0.0f32; codes.len()];
        let items: Vec<_> = split_rows(codes, rows)
            .into_iter()
            .zip(split_rows(absmax, rows))
            .zip(split_rows_mut(&mut out, rows))
            .collect();
        for_each(par, items, |((c, a), o)| dequantize_row(c, a, o));
        Ok(out)
    }

    fn fake_quantize(
        &self,
        _id: &'static str,
        w: &mut [f32],
        rows: usize,
        _cols: usize,
        par: Parallelism,
    ) -> Result<(), FormatError> {
        for_each(par, split_rows_mut(w, rows), |x| {
            for xb in x.chunks_mut(NF4_BLOCK) {
                let (m, inv) = block_params(xb);
                for v in xb.iter_mut() {
                    *v = NF4_LUT[usize::from(nf4_code(normalize(*v, m, inv)))] * m;
                }
            }
        });
        Ok(())
    }
}
