//! The quantized tensor as codecs produce it and exporters consume it.
//!
//! Every variant keeps `rows`/`cols` of the original row-major `[rows, cols]`
//! weight (cols = input dimension, contiguous). Per-weight codes are stored
//! unpacked (one element per weight) so exporters can pack them in whatever
//! container their file format wants; ggml formats are the exception and hold
//! the exact on-disk block bytes.

use half::{bf16, f16};

#[derive(Debug, Clone, PartialEq)]
pub enum QTensor {
    /// `f32`: the weights unchanged.
    F32 { rows: usize, cols: usize, data: Vec<f32> },
    /// `f16`: round-to-nearest-even casts.
    F16 { rows: usize, cols: usize, data: Vec<f16> },
    /// `bf16`: round-to-nearest-even casts.
    Bf16 { rows: usize, cols: usize, data: Vec<bf16> },
    /// Signed integer grid (int8 per channel, int4 group-wise).
    ///
    /// `codes`: `[rows, cols]`, each in `[-2^(bits-1), 2^(bits-1)-1]` (int8 uses ±127).
    /// `scales`: `[rows, cols / group]`, f16 as GPTQ / compressed-tensors store them.
    /// `zeros`: `[rows, cols / group]` signed zero points (asymmetric formats only).
    /// Dequantized value: `(code - zero) * scale`.
    Int { rows: usize, cols: usize, bits: u8, group: usize, codes: Vec<i8>, scales: Vec<f16>, zeros: Option<Vec<i8>> },
    /// FP8 E4M3 (OCP "fn"): `codes` are the raw fp8 bytes `[rows, cols]`;
    /// `scales` has one f32 per row (per channel) or a single entry (per tensor).
    /// Dequantized value: `e4m3(code) * scale`.
    Fp8E4m3 { rows: usize, cols: usize, codes: Vec<u8>, scales: Vec<f32> },
    /// QLoRA NF4: `codes` are LUT indices 0..=15 `[rows, cols]`, `absmax` one f32
    /// per block of `block` weights along a row. Dequantized: `NF4[code] * absmax`.
    Nf4 { rows: usize, cols: usize, block: usize, codes: Vec<u8>, absmax: Vec<f32> },
    /// A ggml block type: the exact ggml block bytes, rows concatenated
    /// (identical to the tensor data of a GGUF file).
    Blocks { rows: usize, cols: usize, ggml_type: u32, bytes: Vec<u8> },
}

impl QTensor {
    /// Rows `first..first + n` as a tensor of their own (scales and zeros of those rows; a
    /// per-tensor scale is kept), so a caller can decode a large tensor a few rows at a time.
    /// `None` when the range or the tensor's own lengths do not add up.
    pub fn row_range(&self, first: usize, n: usize) -> Option<QTensor> {
        let rows = self.rows();
        let end = first.checked_add(n).filter(|&e| e <= rows)?;
        // The slice of `v` belonging to the rows, for a field with the same count per row.
        fn part<T: Clone>(v: &[T], rows: usize, first: usize, end: usize) -> Option<Vec<T>> {
            let per = v.len().checked_div(rows)?;
            (per * rows == v.len()).then_some(())?;
            v.get(first * per..end * per).map(<[T]>::to_vec)
        }
        Some(match self {
            QTensor::F32 { cols, data, .. } => {
                QTensor::F32 { rows: n, cols: *cols, data: part(data, rows, first, end)? }
            }
            QTensor::F16 { cols, data, .. } => {
                QTensor::F16 { rows: n, cols: *cols, data: part(data, rows, first, end)? }
            }
            QTensor::Bf16 { cols, data, .. } => {
                QTensor::Bf16 { rows: n, cols: *cols, data: part(data, rows, first, end)? }
            }
            QTensor::Int { cols, bits, group, codes, scales, zeros, .. } => QTensor::Int {
                rows: n,
                cols: *cols,
                bits: *bits,
                group: *group,
                codes: part(codes, rows, first, end)?,
                scales: part(scales, rows, first, end)?,
                zeros: match zeros {
                    Some(z) => Some(part(z, rows, first, end)?),
                    None => None,
                },
            },
            QTensor::Fp8E4m3 { cols, codes, scales, .. } => QTensor::Fp8E4m3 {
                rows: n,
                cols: *cols,
                codes: part(codes, rows, first, end)?,
                scales: if scales.len() == 1 && rows != 1 { scales.clone() } else { part(scales, rows, first, end)? },
            },
            QTensor::Nf4 { cols, block, codes, absmax, .. } => QTensor::Nf4 {
                rows: n,
                cols: *cols,
                block: *block,
                codes: part(codes, rows, first, end)?,
                absmax: part(absmax, rows, first, end)?,
            },
            QTensor::Blocks { cols, ggml_type, bytes, .. } => {
                QTensor::Blocks { rows: n, cols: *cols, ggml_type: *ggml_type, bytes: part(bytes, rows, first, end)? }
            }
        })
    }

    pub fn rows(&self) -> usize {
        match self {
            QTensor::F32 { rows, .. }
            | QTensor::F16 { rows, .. }
            | QTensor::Bf16 { rows, .. }
            | QTensor::Int { rows, .. }
            | QTensor::Fp8E4m3 { rows, .. }
            | QTensor::Nf4 { rows, .. }
            | QTensor::Blocks { rows, .. } => *rows,
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            QTensor::F32 { cols, .. }
            | QTensor::F16 { cols, .. }
            | QTensor::Bf16 { cols, .. }
            | QTensor::Int { cols, .. }
            | QTensor::Fp8E4m3 { cols, .. }
            | QTensor::Nf4 { cols, .. }
            | QTensor::Blocks { cols, .. } => *cols,
        }
    }

    /// Short name of the variant, for error messages.
    pub fn variant(&self) -> &'static str {
        match self {
            QTensor::F32 { .. } => "F32",
            QTensor::F16 { .. } => "F16",
            QTensor::Bf16 { .. } => "Bf16",
            QTensor::Int { .. } => "Int",
            QTensor::Fp8E4m3 { .. } => "Fp8E4m3",
            QTensor::Nf4 { .. } => "Nf4",
            QTensor::Blocks { .. } => "Blocks",
        }
    }
}
