//! FP8 E4M3, OCP "fn" flavour (as `torch.float8_e4m3fn`): bias 7, no
//! infinities, max ±448, NaN = 0x7f / 0xff. Encoding rounds to nearest even,
//! subnormals included, and saturates finite overflow to ±448 (the clamp
//! compressed-tensors applies before its cast).
//!
//! `fp8_e4m3`: one f32 scale per output row; `fp8_e4m3_tensor`: one scale.
//! scale = max(amax / 448, f32::EPSILON), code = e4m3(x / scale).

use crate::codec::{Codec, expect_len, mismatch};
use crate::exec::{Parallelism, abs_max, for_each, split_rows, split_rows_mut};
use crate::{FormatError, GroupArith, QTensor};

/// Largest finite E4M3 value.
pub const E4M3_MAX: f32 = 448.0;

/// Smallest normal E4M3 magnitude, 2^-6.
const MIN_NORMAL: f32 = 0.015625;

/// Encodes `x` as an E4M3 byte: round-to-nearest-even, saturating, NaN → 0x7f.
#[inline]
pub fn e4m3_from_f32(x: f32) -> u8 {
    let sign = ((x.to_bits() >> 24) & 0x80) as u8;
    let a = x.abs();
    if a.is_nan() {
        return sign | 0x7f;
    }
    if a >= E4M3_MAX {
        return sign | 0x7e;
    }
    if a < MIN_NORMAL {
        // Subnormal grid step is 2^-9; scaling by 512 is exact, and a result
        // of 8 is the smallest normal's encoding, so no special case.
        let q = crate::rounding::rint(a * 512.0);
        return sign | q as u8;
    }
    // Round the f32 mantissa to 3 bits, ties to even; a carry bumps the exponent.
    let bits = a.to_bits();
    let r = (bits + 0x7_ffff + ((bits >> 20) & 1)) >> 20;
    let exp = (r >> 3) + 7 - 127; // biased ≥ 121 here: adding first never underflows
    sign | ((exp as u8) << 3) | (r & 7) as u8
}

const fn decode(b: u8) -> f32 {
    let exp = ((b >> 3) & 0xf) as u32;
    let man = (b & 7) as u32;
    let sign = ((b & 0x80) as u32) << 24;
    let mag = if exp == 0xf && man == 7 {
        return f32::from_bits(sign | 0x7fc0_0000);
    } else if exp == 0 {
        man as f32 / 512.0
    } else {
        f32::from_bits(((exp + 127 - 7) << 23) | (man << 20))
    };
    f32::from_bits(sign | mag.to_bits())
}

const fn decode_table() -> [f32; 256] {
    let mut t = [0.0f32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = decode(i as u8);
        i += 1;
    }
    t
}

static E4M3_TO_F32: [f32; 256] = decode_table();

/// Decodes an E4M3 byte.
#[inline]
pub fn e4m3_to_f32(b: u8) -> f32 {
    E4M3_TO_F32[b as usize]
}

pub(crate) struct Fp8Codec {
    pub per_tensor: bool,
}

fn scale_for(amax: f32) -> f32 {
    (amax / E4M3_MAX).max(f32::EPSILON)
}

fn encode_row(x: &[f32], scale: f32, out: &mut [u8]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = e4m3_from_f32(v / scale);
    }
}

fn decode_row(codes: &[u8], scale: f32, out: &mut [f32]) {
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = e4m3_to_f32(c) * scale;
    }
}

impl Fp8Codec {
    /// The tensor-wide scale, or `None` for per-row scales (computed per row).
    fn tensor_scale(&self, w: &[f32], par: Parallelism) -> Option<f32> {
        self.per_tensor.then(|| scale_for(abs_max(par, w)))
    }
}

fn row_scale(tensor_scale: Option<f32>, x: &[f32]) -> f32 {
    tensor_scale.unwrap_or_else(|| scale_for(abs_max(Parallelism::Serial, x)))
}

impl Codec for Fp8Codec {
    fn group_arith(&self) -> Option<GroupArith> {
        Some(GroupArith::Fp8E4m3 { per_tensor: self.per_tensor, max: E4M3_MAX })
    }

    fn stored_bytes(&self, rows: u64, cols: u64) -> Option<u64> {
        let scales = if self.per_tensor { 1 } else { rows };
        rows.checked_mul(cols)?.checked_add(scales.checked_mul(4)?)
    }

    fn quantize(
        &self,
        _id: &'static str,
        w: &[f32],
        rows: usize,
        cols: usize,
        par: Parallelism,
    ) -> Result<QTensor, FormatError> {
        let ts = self.tensor_scale(w, par);
        let mut codes = vec![0u8; w.len()];
        let mut scales = vec![0.0f32; rows];
        let items: Vec<_> =
            split_rows(w, rows).into_iter().zip(split_rows_mut(&mut codes, rows)).zip(scales.iter_mut()).collect();
        for_each(par, items, |((x, c), s)| {
            *s = row_scale(ts, x);
            encode_row(x, *s, c);
        });
        if let Some(ts) = ts {
            scales = vec![ts];
        }
        Ok(QTensor::Fp8E4m3 { rows, cols, codes, scales })
    }

    fn dequantize(&self, id: &'static str, q: &QTensor, par: Parallelism) -> Result<Vec<f32>, FormatError> {
        let QTensor::Fp8E4m3 { rows, cols, codes, scales } = q else {
            return Err(mismatch(id, format!("got a {} tensor", q.variant())));
        };
        let rows = *rows;
        expect_len(id, "codes", codes.len(), rows, *cols)?;
        let row_scales = if self.per_tensor {
            expect_len(id, "scales", scales.len(), 1, 1)?;
            vec![scales[0]; rows]
        } else {
            expect_len(id, "scales", scales.len(), rows, 1)?;
            scales.clone()
        };
        let mut out = vec![0.0f32; codes.len()];
        let items: Vec<_> =
            split_rows(codes, rows).into_iter().zip(split_rows_mut(&mut out, rows)).zip(row_scales).collect();
        for_each(par, items, |((c, o), s)| decode_row(c, s, o));
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
        let ts = self.tensor_scale(w, par);
        for_each(par, split_rows_mut(w, rows), |x| {
            let s = row_scale(ts, x);
            for v in x.iter_mut() {
                *v = e4m3_to_f32(e4m3_from_f32(*v / s)) * s;
            }
        });
        Ok(())
    }
}
