//! Signed integer grids: `int8_channel` and the group-wise int4 formats.
//!
//! Conventions follow compressed-tensors (`calculate_qparams`, `_quantize`,
//! `_dequantize` in src/compressed_tensors/quantization/{utils/helpers,
//! lifecycle/forward}.py) so exported checkpoints decode identically:
//! - symmetric int4: scale = amax / ((qmax - qmin) / 2) = amax / 7.5, codes
//!   round(x / scale) clamped to [-8, 7] (so +amax saturates to 7, -amax is -8);
//! - asymmetric int4: min/max widened to include 0, scale = (max - min) / 15,
//!   zero = round(clamp(-8 - min / scale, -8, 7)) stored signed, codes
//!   round(x / scale + zero) clamped to [-8, 7];
//! - scales are clamped below at f32::EPSILON, rounding is half-to-even
//!   (torch.round).
//!
//! `int8_channel` is the classic symmetric per-row int8: scale = amax / 127,
//! codes in [-127, 127] (the brief's spec; compressed-tensors would use 127.5
//! and [-128, 127]).
//!
//! Scales are stored as f16 and rounded to f16 *before* the codes are
//! computed, so `dequantize` equals what an engine computes from the file.

use half::f16;

use crate::codec::{Codec, expect_len, mismatch};
use crate::exec::{Parallelism, split_rows, split_rows_mut, try_for_each};
use crate::rounding::rint;
use crate::{FormatError, GroupArith, QTensor};

/// A signed integer grid (see the module docs). Solvers reach it through [`crate::Format::int_grid`]
/// and use [`IntGrid::params`] / [`IntGrid::code`] / [`IntGrid::assemble`], so the codes they pick
/// decode with the format's own arithmetic.
pub struct IntGrid {
    bits: u8,
    /// Weights per group along a row; 0 = whole row.
    group: usize,
    symmetric: bool,
    qmin: f32,
    qmax: f32,
    /// Divisor turning amax (sym) or max - min (asym) into the scale.
    denom: f32,
}

impl IntGrid {
    pub(crate) const fn int8_channel() -> Self {
        IntGrid { bits: 8, group: 0, symmetric: true, qmin: -127.0, qmax: 127.0, denom: 127.0 }
    }

    pub(crate) const fn int4(group: usize, symmetric: bool) -> Self {
        IntGrid { bits: 4, group, symmetric, qmin: -8.0, qmax: 7.0, denom: if symmetric { 7.5 } else { 15.0 } }
    }

    /// Weights per group in a row of `cols` (the row itself for per-channel formats).
    pub fn group_len(&self, cols: usize) -> usize {
        if self.group == 0 { cols } else { self.group }
    }

    pub fn bits(&self) -> u8 {
        self.bits
    }

    pub fn symmetric(&self) -> bool {
        self.symmetric
    }

    fn groups_per_row(&self, cols: usize) -> usize {
        cols.checked_div(self.group).unwrap_or(1)
    }

    /// Scale (f16-rounded) and zero point of one group; `None` when the f16
    /// scale would overflow.
    #[inline]
    pub fn params(&self, x: &[f32]) -> Option<(f16, i8)> {
        if self.symmetric {
            let amax = x.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
            let s = f16::from_f32((amax / self.denom).max(f32::EPSILON));
            s.is_finite().then_some((s, 0))
        } else {
            let (mn, mx) = x.iter().fold((0.0f32, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let s = f16::from_f32(((mx - mn) / self.denom).max(f32::EPSILON));
            if !s.is_finite() {
                return None;
            }
            let zp = rint((self.qmin - mn / s.to_f32()).clamp(self.qmin, self.qmax));
            Some((s, zp as i8))
        }
    }

    #[inline]
    fn code(&self, x: f32, scale: f32, zero: f32) -> f32 {
        rint((x / scale + zero).clamp(self.qmin - 1.0, self.qmax + 1.0)).clamp(self.qmin, self.qmax)
    }

    /// The code of `x` in a group with these parameters, and the value it decodes to.
    #[inline]
    pub fn code_of(&self, x: f32, scale: f16, zero: i8) -> (i8, f32) {
        let (s, z) = (scale.to_f32(), f32::from(zero));
        let c = self.code(x, s, z);
        (c as i8, (c - z) * s)
    }

    /// A tensor of codes chosen elsewhere (row-major `[rows, cols]`, one scale and, when
    /// asymmetric, one zero per group), checked against this grid's layout.
    pub fn assemble(
        &self,
        rows: usize,
        cols: usize,
        codes: Vec<i8>,
        scales: Vec<f16>,
        zeros: Vec<i8>,
    ) -> Result<QTensor, FormatError> {
        let id = "int grid";
        let gpr = self.groups_per_row(cols);
        expect_len(id, "codes", codes.len(), rows, cols)?;
        expect_len(id, "scales", scales.len(), rows, gpr)?;
        if !self.symmetric {
            expect_len(id, "zeros", zeros.len(), rows, gpr)?;
        }
        Ok(QTensor::Int {
            rows,
            cols,
            bits: self.bits,
            group: self.group_len(cols),
            codes,
            scales,
            zeros: (!self.symmetric).then_some(zeros),
        })
    }

    /// Quantizes one row into codes/scales/zeros; `Err(offset)` names the
    /// first group whose scale overflows f16.
    fn quantize_row(&self, x: &[f32], codes: &mut [i8], scales: &mut [f16], zeros: &mut [i8]) -> Result<(), usize> {
        let g = self.group_len(x.len());
        for (gi, scale) in scales.iter_mut().enumerate() {
            let xs = &x[gi * g..(gi + 1) * g];
            let (s, z) = self.params(xs).ok_or_else(|| gi * g + argmax_abs(xs))?;
            *scale = s;
            if let Some(zero) = zeros.get_mut(gi) {
                *zero = z;
            }
            let (sf, zf) = (s.to_f32(), f32::from(z));
            for (c, &v) in codes[gi * g..(gi + 1) * g].iter_mut().zip(xs) {
                *c = self.code(v, sf, zf) as i8;
            }
        }
        Ok(())
    }

    fn dequantize_row(&self, codes: &[i8], scales: &[f16], zeros: &[i8], out: &mut [f32]) {
        let g = self.group_len(out.len());
        for (gi, s) in scales.iter().enumerate() {
            let sf = s.to_f32();
            let zf = zeros.get(gi).map_or(0.0, |&z| f32::from(z));
            for (o, &c) in out[gi * g..(gi + 1) * g].iter_mut().zip(&codes[gi * g..(gi + 1) * g]) {
                *o = (f32::from(c) - zf) * sf;
            }
        }
    }

    /// Same float operations as quantize + dequantize, group by group in place.
    fn fake_row(&self, x: &mut [f32]) -> Result<(), usize> {
        let g = self.group_len(x.len());
        if g == 0 {
            return Ok(());
        }
        for (gi, xs) in x.chunks_mut(g).enumerate() {
            let (s, z) = self.params(xs).ok_or_else(|| gi * g + argmax_abs(xs))?;
            let (sf, zf) = (s.to_f32(), f32::from(z));
            for v in xs.iter_mut() {
                let c = self.code(*v, sf, zf) as i8;
                *v = (f32::from(c) - zf) * sf;
            }
        }
        Ok(())
    }
}

fn argmax_abs(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if v.abs() > x[best].abs() {
            best = i;
        }
    }
    best
}

fn overflow(id: &'static str, w: &[f32], row: usize, cols: usize, offset: usize) -> FormatError {
    let index = row * cols + offset;
    FormatError::Overflow { format: id, index, value: w.get(index).copied().unwrap_or(f32::NAN) }
}

impl Codec for IntGrid {
    fn int_grid(&self) -> Option<&IntGrid> {
        Some(self)
    }

    fn group_arith(&self) -> Option<GroupArith> {
        Some(GroupArith::IntGrid {
            bits: self.bits,
            group: self.group,
            symmetric: self.symmetric,
            qmin: self.qmin,
            qmax: self.qmax,
            denom: self.denom,
        })
    }

    fn stored_bytes(&self, rows: u64, cols: u64) -> Option<u64> {
        let groups = if self.group == 0 { rows } else { rows.checked_mul(cols / self.group as u64)? };
        let zero_bits = if self.symmetric { 0 } else { 4 };
        let bits = rows
            .checked_mul(cols)?
            .checked_mul(u64::from(self.bits))?
            .checked_add(groups.checked_mul(16 + zero_bits)?)?;
        Some(bits.div_ceil(8))
    }

    fn quantize(
        &self,
        id: &'static str,
        w: &[f32],
        rows: usize,
        cols: usize,
        par: Parallelism,
    ) -> Result<QTensor, FormatError> {
        let gpr = self.groups_per_row(cols);
        let mut codes = vec![0i8; w.len()];
        let mut scales = vec![f16::ZERO; rows * gpr];
        let mut zeros = vec![0i8; if self.symmetric { 0 } else { rows * gpr }];
        let zero_rows = if self.symmetric {
            (0..rows).map(|_| -> &mut [i8] { &mut [] }).collect()
        } else {
            split_rows_mut(&mut zeros, rows)
        };
        let items: Vec<_> = split_rows(w, rows)
            .into_iter()
            .zip(split_rows_mut(&mut codes, rows))
            .zip(split_rows_mut(&mut scales, rows))
            .zip(zero_rows)
            .enumerate()
            .collect();
        try_for_each(par, items, |(r, (((x, c), s), z))| {
            self.quantize_row(x, c, s, z).map_err(|off| overflow(id, w, r, cols, off))
        })?;
        self.assemble(rows, cols, codes, scales, zeros)
    }

    fn dequantize(&self, id: &'static str, q: &QTensor, par: Parallelism) -> Result<Vec<f32>, FormatError> {
        let QTensor::Int { rows, cols, bits, group, codes, scales, zeros } = q else {
            return Err(mismatch(id, format!("got a {} tensor", q.variant())));
        };
        let (rows, cols) = (*rows, *cols);
        if *bits != self.bits || *group != self.group_len(cols) {
            return Err(mismatch(id, format!("got {bits}-bit codes in groups of {group}")));
        }
        let gpr = self.groups_per_row(cols);
        expect_len(id, "codes", codes.len(), rows, cols)?;
        expect_len(id, "scales", scales.len(), rows, gpr)?;
        let zero_rows = match (zeros, self.symmetric) {
            (None, true) => vec![&[][..]; rows],
            (Some(z), false) => {
                expect_len(id, "zeros", z.len(), rows, gpr)?;
                split_rows(z, rows)
            }
            _ => return Err(mismatch(id, "zero points present/absent unexpectedly")),
        };
        let mut out = vec![0.0f32; codes.len()];
        let items: Vec<_> = split_rows(codes, rows)
            .into_iter()
            .zip(split_rows(scales, rows))
            .zip(zero_rows)
            .zip(split_rows_mut(&mut out, rows))
            .collect();
        try_for_each(par, items, |(((c, s), z), o)| {
            self.dequantize_row(c, s, z, o);
            Ok::<(), FormatError>(())
        })?;
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
        let items: Vec<_> = split_rows_mut(w, rows).into_iter().enumerate().collect();
        let failed = try_for_each(par, items, |(r, x)| self.fake_row(x).map_err(|off| (r, off)));
        // The failing group itself is still untouched (earlier groups are not).
        failed.map_err(|(r, off)| overflow(id, w, r, cols, off))
    }
}
