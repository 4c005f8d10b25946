//! ggml block formats, bit-exact with llama.cpp's reference encoders
//! (`quantize_row_*_ref` in ggml/src/ggml-quants.c; block structs in
//! ggml/src/ggml-common.h). llama-quantize without an importance matrix calls
//! exactly these, so our bytes equal a llama.cpp-made GGUF's.
//!
//! Bit-exactness needs the same f32 operations in the same order: no fused
//! multiply-add (Rust never contracts), ggml's `nearest_int` magic-number
//! rounding, `roundf` (half away from zero), RNE f32→f16 conversions, and the
//! x86-64 result of C's float→int8 casts (see [`c_f32_to_i8`]).

pub mod decode;
pub mod q3_k;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q5_1;
pub mod q5_k;
pub mod q6_k;
pub mod q8_0;

use std::sync::atomic::{AtomicBool, Ordering};

use half::f16;

use crate::codec::{Codec, expect_len, mismatch};
use crate::exec::{Parallelism, for_each, split_rows, split_rows_mut};
use crate::metrics::Sums;
use crate::{FormatError, GroupArith, QTensor};

/// ggml's GROUP_MAX_EPS: below this a group counts as all zero.
pub(crate) const GROUP_MAX_EPS: f32 = 1e-15;

/// Candidate scale offsets ggml tries after the first guess: is = -9..=9 without 0.
const CANDIDATES: usize = 18;

/// Symmetric fit of a group to levels -nmax..nmax-1, weighted by `qw` (ggml's quant weights from
/// an importance matrix) or else by x², searching 19 candidate scales; fills `l` with level + nmax
/// and returns the scale. Bit-identical to ggml's `make_qx_quants` with rmse_type 1: every
/// candidate's sums are accumulated in ggml's element order, but the 18 candidates run side by
/// side (vector lanes, no chain of dependent adds), and the winner is then chosen with ggml's
/// comparisons in ggml's candidate order.
#[inline(always)]
pub(crate) fn make_qx_quants(x: &[f32], nmax: i32, l: &mut [i8], qw: Option<&[f32]>) -> f32 {
    // Two monomorphic copies: the unweighted one is the hot path of every plain export.
    match qw {
        None => qx_search::<false>(x, nmax, l, &[]),
        Some(q) => qx_search::<true>(x, nmax, l, q),
    }
}

#[inline(always)]
fn qx_search<const WEIGHTED: bool>(x: &[f32], nmax: i32, l: &mut [i8], qw: &[f32]) -> f32 {
    let weight = |i: usize, v: f32| if WEIGHTED { qw[i] } else { v * v };
    // ggml's first element of the largest magnitude.
    let max = q4_0::signed_absmax(x);
    if max.abs() < GROUP_MAX_EPS {
        l[..x.len()].fill(0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let quant = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let first = -nmaxf / max;
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (i, &v) in x.iter().enumerate() {
        let lf = quant(first, v) as f32;
        let w = weight(i, v);
        sumlx += w * v * lf;
        suml2 += w * lf * lf;
    }
    let mut iscales = [0f32; CANDIDATES];
    for (c, is) in iscales.iter_mut().zip((-9..=9).filter(|&is| is != 0)) {
        *c = -(nmaxf + 0.1 * is as f32) / max;
    }
    let (mut lx, mut l2) = ([0f32; CANDIDATES], [0f32; CANDIDATES]);
    for (i, &v) in x.iter().enumerate() {
        let w = weight(i, v);
        for c in 0..CANDIDATES {
            let lf = quant(iscales[c], v) as f32;
            lx[c] += w * v * lf;
            l2[c] += w * lf * lf;
        }
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    let mut chosen = first;
    for c in 0..CANDIDATES {
        if l2[c] > 0.0 && lx[c] * lx[c] > best * l2[c] {
            chosen = iscales[c];
            scale = lx[c] / l2[c];
            best = scale * lx[c];
        }
    }
    for (li, &v) in l.iter_mut().zip(x) {
        *li = (quant(chosen, v) + nmax) as i8;
    }
    scale
}

/// One ggml block type: `WEIGHTS` floats <-> `BYTES` bytes.
pub(crate) trait BlockCodec: Sync + Send {
    const WEIGHTS: usize;
    const BYTES: usize;
    /// Elementwise arithmetic other backends can follow, when the type has one.
    const ARITH: Option<GroupArith> = None;
    /// Byte offsets of the block's f16 scales: a block whose weights are too large for them gets
    /// an infinite scale, which ggml writes without a word; Pareto refuses it.
    const F16_SCALES: &'static [usize];
    fn encode(x: &[f32], out: &mut [u8]);
    fn decode(b: &[u8], out: &mut [f32]);
    /// Whether the type takes importance weights in its scale search (ggml's
    /// `quantize_<type>(…, quant_weights)`); the others ignore them, as ggml does.
    const WEIGHTED: bool = false;
    /// Encodes one row (finite) with per-column importance `qw`, as ggml's
    /// `quantize_row_<type>_impl` does; only called when [`BlockCodec::WEIGHTED`].
    fn encode_row_weighted(x: &[f32], _qw: &[f32], out: &mut [u8]) {
        for (xb, ob) in x.chunks_exact(Self::WEIGHTS).zip(out.chunks_exact_mut(Self::BYTES)) {
            Self::encode(xb, ob);
        }
    }
}

/// Σx², summed in ggml's order.
#[inline(always)]
fn sum_squares(x: &[f32]) -> f32 {
    let mut sum_x2 = 0.0f32;
    for &v in x {
        sum_x2 += v * v;
    }
    sum_x2
}

/// Σx² / n over a row (the σ² of the importance-weighted legacy encoders).
#[inline(always)]
pub(crate) fn row_mean_square(x: &[f32]) -> f32 {
    sum_squares(x) / x.len() as f32
}

/// 2·Σx² / n over a super-block (the σ² of the importance-weighted k-quants), in ggml's order of
/// operations: (2·Σx²) / n.
#[inline(always)]
pub(crate) fn twice_mean_square(x: &[f32]) -> f32 {
    2.0 * sum_squares(x) / x.len() as f32
}

/// ggml's importance weights for a group: `qw[i] * sqrt(σ² + x[i]²)`.
#[inline(always)]
pub(crate) fn sigma_weights<const N: usize>(x: &[f32], qw: &[f32], sigma2: f32) -> [f32; N] {
    std::array::from_fn(|i| qw[i] * (sigma2 + x[i] * x[i]).sqrt())
}

/// ggml's `nearest_int`: adding 1.5 * 2^23 leaves round-half-even(fval) in
/// the low mantissa bits. Valid for |fval| < 2^22; outside that it yields the
/// same (meaningless but deterministic) bits as ggml, which then clamps.
#[inline(always)]
pub(crate) fn nearest_int(fval: f32) -> i32 {
    let val = fval + crate::RINT_MAGIC;
    (val.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// C's `roundf` (half away from zero) for |x| < 2^22, branch-free so that loops vectorize
/// (`f32::round` is a libm call per element on the baseline x86-64 target, which lacks SSE4.1).
/// Adding and subtracting 1.5·2^23 rounds half to even; ties then move away from zero instead.
#[inline(always)]
pub(crate) fn roundf_small(x: f32) -> f32 {
    let even = crate::rounding::rint(x);
    if (x - even).abs() == 0.5 { x + 0.5f32.copysign(x) } else { even.copysign(x) }
}

/// C's `(int8_t)x` for float `x` as gcc/clang compile it on x86-64:
/// `cvttss2si` truncation toward zero to i32 (0x8000_0000 for NaN / out of
/// range), then the low byte. Only reachable with non-finite intermediates
/// (e.g. 1 / subnormal = inf), where Rust's saturating `as` would differ.
#[inline(always)]
pub(crate) fn c_f32_to_i8(x: f32) -> i8 {
    let i = if x > -2_147_483_648.0 && x < 2_147_483_648.0 { x as i32 } else { i32::MIN };
    i as i8
}

/// ggml's `MAX(amax, fabsf(v))` fold over a block. Inputs are finite (checked before any codec
/// runs), so the maximum does not depend on the order and eight lanes give the same value, vectorized.
#[inline(always)]
pub(crate) fn abs_max_lanes(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    for chunk in x.chunks_exact(8) {
        for (m, v) in lanes.iter_mut().zip(chunk) {
            *m = m.max(v.abs());
        }
    }
    let tail = x.chunks_exact(8).remainder().iter().fold(0f32, |m, v| m.max(v.abs()));
    lanes.iter().fold(tail, |m, &l| m.max(l))
}

#[inline(always)]
pub(crate) fn put_f16(out: &mut [u8], x: f32) {
    // The const (software) conversion inlines; `from_f32` dispatches at run time on every call.
    out[..2].copy_from_slice(&f16::from_f32_const(x).to_bits().to_le_bytes());
}

#[inline(always)]
pub(crate) fn get_f16(b: &[u8]) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
}

thread_local! {
    /// One decoded row per thread for [`Codec::quantize_measured`], reused across rows and tensors.
    static DECODED_ROW: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Adapts a [`BlockCodec`] to the row-parallel [`Codec`] interface.
pub(crate) struct Ggml<B>(pub B);

/// What encoding a row found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Row {
    Done,
    /// A NaN/Inf weight: nothing was encoded.
    NonFinite,
    /// Encoded, but a block's f16 scale overflowed (|w| too large for the type).
    ScaleOverflow,
}

/// An f16 whose exponent bits are all ones (Inf or NaN).
#[inline(always)]
fn f16_non_finite(b: &[u8]) -> bool {
    u16::from_le_bytes([b[0], b[1]]) & 0x7c00 == 0x7c00
}

impl<B: BlockCodec> Ggml<B> {
    /// The first block of an encoded row (or tensor) whose f16 scales are not finite.
    fn first_overflowed_block(bytes: &[u8]) -> Option<usize> {
        bytes.chunks_exact(B::BYTES).position(|b| B::F16_SCALES.iter().any(|&at| f16_non_finite(&b[at..])))
    }

    /// The error for an overflowed scale: the first such block, its largest weight.
    fn overflow_error(id: &'static str, w: &[f32], bytes: &[u8]) -> FormatError {
        let block = Self::first_overflowed_block(bytes).unwrap_or(0);
        let start = block * B::WEIGHTS;
        let xs = w.get(start..start + B::WEIGHTS).unwrap_or_default();
        let (offset, value) =
            xs.iter().enumerate().fold((0, 0f32), |(i, m), (j, &v)| if v.abs() > m.abs() { (j, v) } else { (i, m) });
        FormatError::Overflow { format: id, index: start + offset, value }
    }

    /// Encodes one row unless it holds a NaN/Inf (then `out` untouched). The check runs here
    /// rather than as a separate pass over the tensor: the row is in L1 for the encoder right
    /// after, where a tensor-wide scan streamed it from memory once more.
    fn encode_row(x: &[f32], out: &mut [u8]) -> Row {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU was just checked to support AVX2, the only requirement of the call.
            #[allow(unsafe_code)]
            return unsafe { Self::encode_row_avx2(x, out) };
        }
        Self::encode_row_portable(x, out)
    }

    /// The same encoder compiled for 8-wide vectors (the default x86-64 target has 4-wide SSE2).
    /// Only the instruction set changes: the same IEEE operations in the same order, no fused
    /// multiply-add, so the bytes are identical (the golden tests run whichever path the CPU takes,
    /// `encode_paths_agree` compares both).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn encode_row_avx2(x: &[f32], out: &mut [u8]) -> Row {
        Self::encode_row_portable(x, out)
    }

    #[inline(always)]
    fn encode_row_portable(x: &[f32], out: &mut [u8]) -> Row {
        if !crate::exec::all_finite(x) {
            return Row::NonFinite;
        }
        for (xb, ob) in x.chunks_exact(B::WEIGHTS).zip(out.chunks_exact_mut(B::BYTES)) {
            B::encode(xb, ob);
        }
        if Self::first_overflowed_block(out).is_some() { Row::ScaleOverflow } else { Row::Done }
    }

    /// [`BlockCodec::encode_row_weighted`], on AVX2 where the CPU has it (as [`Self::encode_row`]).
    fn encode_row_weighted(x: &[f32], qw: &[f32], out: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU was just checked to support AVX2, the only requirement of the call.
            #[allow(unsafe_code)]
            return unsafe { Self::encode_row_weighted_avx2(x, qw, out) };
        }
        B::encode_row_weighted(x, qw, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn encode_row_weighted_avx2(x: &[f32], qw: &[f32], out: &mut [u8]) {
        B::encode_row_weighted(x, qw, out)
    }

    /// Encodes every row (on the pool); with `measure`, each row is decoded right after, on its
    /// thread while it is still in cache, and its error sums kept (else the sums stay empty).
    fn encode_all(
        id: &'static str,
        w: &[f32],
        rows: usize,
        cols: usize,
        par: Parallelism,
        measure: bool,
    ) -> Result<(QTensor, Vec<Sums>), FormatError> {
        let ggml_type = ggml_type_of(id)?;
        let mut bytes = crate::pool::ENCODED.take_zeroed(rows * Self::row_bytes(cols));
        let mut sums = vec![Sums::default(); if measure { rows } else { 0 }];
        let mut slots: Vec<Option<&mut Sums>> = sums.iter_mut().map(Some).collect();
        slots.resize_with(rows, || None);
        let items: Vec<_> = split_rows(w, rows).into_iter().zip(split_rows_mut(&mut bytes, rows)).zip(slots).collect();
        let (finite, fits) = (AtomicBool::new(true), AtomicBool::new(true));
        for_each(par, items, |((x, o), slot)| match Self::encode_row(x, o) {
            Row::Done => {
                if let Some(s) = slot {
                    *s = Self::measure_row(x, o);
                }
            }
            Row::NonFinite => finite.store(false, Ordering::Relaxed),
            Row::ScaleOverflow => fits.store(false, Ordering::Relaxed),
        });
        let error = if !finite.into_inner() {
            Some(crate::registry::non_finite_error(id, w))
        } else if !fits.into_inner() {
            Some(Self::overflow_error(id, w, &bytes))
        } else {
            None
        };
        if let Some(e) = error {
            crate::pool::ENCODED.give_back(bytes);
            return Err(e);
        }
        Ok((QTensor::Blocks { rows, cols, ggml_type, bytes }, sums))
    }

    /// The error sums of one encoded row, decoded into a per-thread buffer while the row is still
    /// in cache; on AVX2 where the CPU has it (8-wide sums).
    fn measure_row(x: &[f32], encoded: &[u8]) -> Sums {
        DECODED_ROW.with_borrow_mut(|buf| {
            buf.resize(x.len(), 0.0);
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU was just checked to support AVX2, the only requirement of the call.
                #[allow(unsafe_code)]
                return unsafe { Self::measure_row_avx2(x, encoded, buf) };
            }
            Self::decode_row(encoded, buf);
            Sums::of(x, buf)
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn measure_row_avx2(x: &[f32], encoded: &[u8], buf: &mut [f32]) -> Sums {
        Self::decode_row(encoded, buf);
        Sums::of(x, buf)
    }

    fn decode_row(b: &[u8], out: &mut [f32]) {
        for (bb, ob) in b.chunks_exact(B::BYTES).zip(out.chunks_exact_mut(B::WEIGHTS)) {
            B::decode(bb, ob);
        }
    }

    fn row_bytes(cols: usize) -> usize {
        cols / B::WEIGHTS * B::BYTES
    }
}

impl<B: BlockCodec> Codec for Ggml<B> {
    fn group_arith(&self) -> Option<GroupArith> {
        B::ARITH
    }

    fn checks_finite(&self) -> bool {
        true
    }

    fn stored_bytes(&self, rows: u64, cols: u64) -> Option<u64> {
        rows.checked_mul(cols / B::WEIGHTS as u64)?.checked_mul(B::BYTES as u64)
    }

    fn quantize(
        &self,
        id: &'static str,
        w: &[f32],
        rows: usize,
        cols: usize,
        par: Parallelism,
    ) -> Result<QTensor, FormatError> {
        Self::encode_all(id, w, rows, cols, par, false).map(|(q, _)| q)
    }

    fn quantize_measured(
        &self,
        id: &'static str,
        w: &[f32],
        rows: usize,
        cols: usize,
        par: Parallelism,
    ) -> Option<Result<(QTensor, Vec<Sums>), FormatError>> {
        Some(Self::encode_all(id, w, rows, cols, par, true))
    }

    fn takes_importance(&self) -> bool {
        B::WEIGHTED
    }

    fn quantize_weighted(
        &self,
        id: &'static str,
        w: &[f32],
        rows: usize,
        cols: usize,
        importance: &[f32],
        par: Parallelism,
    ) -> Option<Result<QTensor, FormatError>> {
        if !B::WEIGHTED {
            return None;
        }
        let run = || {
            let ggml_type = ggml_type_of(id)?;
            if !crate::exec::all_finite(w) {
                return Err(crate::registry::non_finite_error(id, w));
            }
            let mut bytes = vec![0u8; rows * Self::row_bytes(cols)];
            let items: Vec<_> = split_rows(w, rows).into_iter().zip(split_rows_mut(&mut bytes, rows)).collect();
            for_each(par, items, |(x, o)| Self::encode_row_weighted(x, importance, o));
            if Self::first_overflowed_block(&bytes).is_some() {
                return Err(Self::overflow_error(id, w, &bytes));
            }
            Ok(QTensor::Blocks { rows, cols, ggml_type, bytes })
        };
        Some(run())
    }

    fn dequantize(&self, id: &'static str, q: &QTensor, par: Parallelism) -> Result<Vec<f32>, FormatError> {
        let QTensor::Blocks { rows, cols, ggml_type, bytes } = q else {
            return Err(mismatch(id, format!("got a {} tensor", q.variant())));
        };
        if *ggml_type != ggml_type_of(id)? {
            return Err(mismatch(id, format!("ggml type {ggml_type}")));
        }
        let (rows, cols) = (*rows, *cols);
        expect_len(id, "bytes", bytes.len(), rows, Self::row_bytes(cols))?;
        let n = rows.checked_mul(cols).ok_or(FormatError::ShapeOverflow { rows, cols })?;
        let mut out = vec![0.0f32; n];
        let items: Vec<_> = split_rows(bytes, rows).into_iter().zip(split_rows_mut(&mut out, rows)).collect();
        for_each(par, items, |(b, o)| Self::decode_row(b, o));
        Ok(out)
    }

    fn fake_quantize(
        &self,
        id: &'static str,
        w: &mut [f32],
        rows: usize,
        cols: usize,
        par: Parallelism,
    ) -> Result<(), FormatError> {
        // Encoding the whole tensor first checks every row (NaN/Inf weights, overflowed scales)
        // before any is changed, so an error leaves `w` as it was.
        let QTensor::Blocks { bytes, .. } = self.quantize(id, w, rows, cols, par)? else {
            return Err(mismatch(id, "the encoder returned no blocks"));
        };
        let items: Vec<_> = split_rows(&bytes, rows).into_iter().zip(split_rows_mut(w, rows)).collect();
        for_each(par, items, |(b, o)| Self::decode_row(b, o));
        crate::pool::ENCODED.give_back(bytes);
        Ok(())
    }
}

/// The registry is the single source of ggml type ids.
fn ggml_type_of(id: &'static str) -> Result<u32, FormatError> {
    crate::lookup(id)?.ggml_type.ok_or_else(|| mismatch(id, "format has no ggml type"))
}

#[cfg(test)]
mod tests {
    use super::roundf_small;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn encode_paths_agree() {
        use super::{
            Ggml, q3_k::Q3K, q4_0::Q4_0, q4_1::Q4_1, q4_k::Q4K, q5_0::Q5_0, q5_1::Q5_1, q5_k::Q5K, q6_k::Q6K,
            q8_0::Q8_0,
        };
        if !is_x86_feature_detected!("avx2") {
            return;
        }
        let mut state = 7u64;
        let x: Vec<f32> = (0..256 * 64)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                if i % 97 == 0 { 0.0 } else { u * (1.0 + (i % 13) as f32) }
            })
            .collect();
        fn check<B: super::BlockCodec>(x: &[f32]) {
            let n = x.len() / B::WEIGHTS * B::BYTES;
            let (mut portable, mut avx2) = (vec![0u8; n], vec![0u8; n]);
            Ggml::<B>::encode_row_portable(x, &mut portable);
            #[allow(unsafe_code)]
            // SAFETY: AVX2 support was checked by the caller.
            unsafe {
                Ggml::<B>::encode_row_avx2(x, &mut avx2)
            };
            assert!(portable == avx2, "{} bytes differ", portable.iter().zip(&avx2).filter(|(a, b)| a != b).count());
            if B::WEIGHTED {
                let qw: Vec<f32> = (0..x.len()).map(|i| ((i * 37) % 101) as f32 / 16.0).collect();
                B::encode_row_weighted(x, &qw, &mut portable);
                #[allow(unsafe_code)]
                // SAFETY: AVX2 support was checked by the caller.
                unsafe {
                    Ggml::<B>::encode_row_weighted_avx2(x, &qw, &mut avx2)
                };
                assert!(portable == avx2, "weighted: bytes differ");
            }
        }
        check::<Q8_0>(&x);
        check::<Q4_0>(&x);
        check::<Q5_0>(&x);
        check::<Q4K>(&x);
        check::<Q6K>(&x);
        check::<Q4_1>(&x);
        check::<Q5_1>(&x);
        check::<Q3K>(&x);
        check::<Q5K>(&x);
    }

    #[test]
    fn software_f16_conversion_equals_the_hardware_one() {
        use half::f16;
        for bits in (0..=u32::MAX).step_by(7) {
            let x = f32::from_bits(bits);
            let (soft, hard) = (f16::from_f32_const(x), f16::from_f32(x));
            assert!(soft.to_bits() == hard.to_bits() || (soft.is_nan() && hard.is_nan()), "{x:e}");
        }
    }

    #[test]
    fn roundf_small_equals_std_round_below_2_pow_22_and_at_every_tie() {
        let limit = 4_194_304f32.to_bits();
        for bits in (0..limit).step_by(2).chain(limit - 1000..limit) {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                assert_eq!(roundf_small(x).to_bits(), x.round().to_bits(), "{x:e}");
            }
        }
        for i in -300..300 {
            let x = i as f32 + 0.5;
            for x in [x, f32::from_bits(x.to_bits() - 1), f32::from_bits(x.to_bits() + 1)] {
                assert_eq!(roundf_small(x).to_bits(), x.round().to_bits(), "{x:e}");
            }
        }
    }
}
