//! The interface every codec implements. `Format` validates inputs (shape,
//! length, and finiteness unless the codec checks that itself) before calling in,
//! so codecs only see well-formed data.

use crate::{FormatError, GroupArith, IntGrid, Parallelism, QTensor};

pub(crate) trait Codec: Sync + Send {
    /// Exact bytes of the packed representation (codes + scales + zeros) for a
    /// shape that passed `check_shape`; `None` when it overflows `u64`.
    fn stored_bytes(&self, rows: u64, cols: u64) -> Option<u64>;

    fn quantize(
        &self,
        id: &'static str,
        w: &[f32],
        rows: usize,
        cols: usize,
        par: Parallelism,
    ) -> Result<QTensor, FormatError>;

    fn dequantize(&self, id: &'static str, q: &QTensor, par: Parallelism) -> Result<Vec<f32>, FormatError>;

    /// Quantizes with per-column importance weights (llama.cpp's imatrix) where the codec's scale
    /// search takes them; `None` for codecs that ignore them (as ggml's do for theirs).
    fn quantize_weighted(
        &self,
        _id: &'static str,
        _w: &[f32],
        _rows: usize,
        _cols: usize,
        _importance: &[f32],
        _par: Parallelism,
    ) -> Option<Result<QTensor, FormatError>> {
        None
    }

    /// Quantizes and measures the error of each row in the same pass, while the row is in cache
    /// (`Some` for the codecs that can); per-row sums, in row order.
    fn quantize_measured(
        &self,
        _id: &'static str,
        _w: &[f32],
        _rows: usize,
        _cols: usize,
        _par: Parallelism,
    ) -> Option<Result<(QTensor, Vec<crate::metrics::Sums>), FormatError>> {
        None
    }

    /// Whether [`Codec::quantize_weighted`] answers.
    fn takes_importance(&self) -> bool {
        false
    }

    /// In place `dequantize(quantize(w))`, bit for bit, with per-row scratch only.
    fn fake_quantize(
        &self,
        id: &'static str,
        w: &mut [f32],
        rows: usize,
        cols: usize,
        par: Parallelism,
    ) -> Result<(), FormatError>;

    /// The codec's arithmetic when it is elementwise given a per-group scale (see [`GroupArith`]).
    fn group_arith(&self) -> Option<GroupArith> {
        None
    }

    /// The integer grid behind this codec, for solvers that choose the codes themselves.
    fn int_grid(&self) -> Option<&IntGrid> {
        None
    }

    /// Whether `quantize` and `fake_quantize` themselves reject NaN/Inf input (with
    /// [`FormatError::NonFinite`] at the first such element, `w` unchanged), so `Format` skips
    /// its own scan.
    fn checks_finite(&self) -> bool {
        false
    }
}

/// Error for a `QTensor` that does not belong to the decoding format.
pub(crate) fn mismatch(id: &'static str, reason: impl Into<String>) -> FormatError {
    FormatError::TensorMismatch { format: id, reason: reason.into() }
}

/// Checks that `len == rows * per_row` (with overflow check) for a decoded field.
pub(crate) fn expect_len(
    id: &'static str,
    field: &str,
    len: usize,
    rows: usize,
    per_row: usize,
) -> Result<(), FormatError> {
    match rows.checked_mul(per_row) {
        Some(n) if n == len => Ok(()),
        _ => Err(mismatch(id, format!("{field} has {len} entries, expected {rows} x {per_row}"))),
    }
}
