//! `f32`, `f16`, `bf16`: element-wise round-to-nearest-even casts (via `half`).

use half::{bf16, f16};

use crate::codec::{Codec, expect_len, mismatch};
use crate::exec::{Parallelism, for_each, split_rows, split_rows_mut};
use crate::{FormatError, QTensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloatDtype {
    F32,
    F16,
    Bf16,
}

pub(crate) struct FloatCodec(pub FloatDtype);

/// Rows per parallel task: casts are too cheap to split per row.
const ROWS_PER_TASK: usize = 64;

impl FloatCodec {
    fn bytes_per_weight(&self) -> u64 {
        match self.0 {
            FloatDtype::F32 => 4,
            FloatDtype::F16 | FloatDtype::Bf16 => 2,
        }
    }

    /// A finite f32 that the cast turns into ±inf is an overflow, not a weight.
    fn overflow_check(&self, id: &'static str, w: &[f32]) -> Result<(), FormatError> {
        // Smallest magnitudes that round to inf: 65520 (f16), 0x7f7f8000 (bf16).
        let limit = match self.0 {
            FloatDtype::F32 => return Ok(()),
            FloatDtype::F16 => 65520.0f32,
            FloatDtype::Bf16 => f32::from_bits(0x7f7f_8000),
        };
        let bad = w.iter().position(|&x| x.abs() >= limit);
        match bad {
            Some(index) => Err(FormatError::Overflow { format: id, index, value: w[index] }),
            None => Ok(()),
        }
    }
}

fn cast<T: Copy + Send + Sync, U: Send>(par: Parallelism, src: &[T], dst: &mut [U], f: impl Fn(T) -> U + Sync + Send) {
    let tasks = src.len().div_ceil(ROWS_PER_TASK * 4096).max(1);
    let items: Vec<_> = split_rows(src, tasks.min(src.len().max(1)))
        .into_iter()
        .zip(split_rows_mut(dst, tasks.min(src.len().max(1))))
        .collect();
    for_each(par, items, |(s, d)| {
        for (o, &x) in d.iter_mut().zip(s) {
            *o = f(x);
        }
    });
}

impl Codec for FloatCodec {
    fn stored_bytes(&self, rows: u64, cols: u64) -> Option<u64> {
        rows.checked_mul(cols)?.checked_mul(self.bytes_per_weight())
    }

    fn quantize(
        &self,
        id: &'static str,
        w: &[f32],
        rows: usize,
        cols: usize,
        par: Parallelism,
    ) -> Result<QTensor, FormatError> {
        self.overflow_check(id, w)?;
        Ok(match self.0 {
            FloatDtype::F32 => QTensor::F32 { rows, cols, data: w.to_vec() },
            FloatDtype::F16 => {
                let mut data = vec![f16::ZERO; w.len()];
                cast(par, w, &mut data, f16::from_f32);
                QTensor::F16 { rows, cols, data }
            }
            FloatDtype::Bf16 => {
                let mut data = vec![bf16::ZERO; w.len()];
                cast(par, w, &mut data, bf16::from_f32);
                QTensor::Bf16 { rows, cols, data }
            }
        })
    }

    fn dequantize(&self, id: &'static str, q: &QTensor, par: Parallelism) -> Result<Vec<f32>, FormatError> {
        match (self.0, q) {
            (FloatDtype::F32, QTensor::F32 { rows, cols, data }) => {
                expect_len(id, "data", data.len(), *rows, *cols)?;
                Ok(data.clone())
            }
            (FloatDtype::F16, QTensor::F16 { rows, cols, data }) => {
                expect_len(id, "data", data.len(), *rows, *cols)?;
                let mut out = vec![0.0; data.len()];
                cast(par, data, &mut out, f16::to_f32);
                Ok(out)
            }
            (FloatDtype::Bf16, QTensor::Bf16 { rows, cols, data }) => {
                expect_len(id, "data", data.len(), *rows, *cols)?;
                let mut out = vec![0.0; data.len()];
                cast(par, data, &mut out, bf16::to_f32);
                Ok(out)
            }
            _ => Err(mismatch(id, format!("got a {} tensor", q.variant()))),
        }
    }

    fn fake_quantize(
        &self,
        id: &'static str,
        w: &mut [f32],
        _rows: usize,
        _cols: usize,
        par: Parallelism,
    ) -> Result<(), FormatError> {
        self.overflow_check(id, w)?;
        let round_trip: fn(f32) -> f32 = match self.0 {
            FloatDtype::F32 => return Ok(()),
            FloatDtype::F16 => |x| f16::from_f32(x).to_f32(),
            FloatDtype::Bf16 => |x| bf16::from_f32(x).to_f32(),
        };
        let n = w.len();
        let tasks = n.div_ceil(ROWS_PER_TASK * 4096).max(1).min(n.max(1));
        for_each(par, split_rows_mut(w, tasks), |c| {
            for x in c.iter_mut() {
                *x = round_trip(*x);
            }
        });
        Ok(())
    }
}
