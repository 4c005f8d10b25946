//! Codecs on another device (a GPU, through pareto-eval's candle backend).
//!
//! The core stays free of candle: an export takes an optional [`Accelerator`] and asks it first for
//! every tensor it quantizes. The accelerator answers only for formats it implements exactly (the
//! CPU codecs are the reference, and tests compare bytes); the CPU codec runs for the rest.

use pareto_formats::{Format, QTensor};

/// Why a device could not quantize one tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum AccelError {
    /// Not enough device memory: the export quantizes this tensor on the CPU instead.
    OutOfMemory { needed_bytes: u64, detail: String },
    /// Any other device failure: the export stops.
    Device(String),
}

/// A device that runs some codecs.
pub trait Accelerator: Send + Sync {
    /// The device as the user named it (`cuda:0`).
    fn device(&self) -> String;

    /// Quantizes `w` (`[rows, cols]`, finite, already validated by the export) on the device, or
    /// `None` when `fmt` (or this shape) is not implemented there.
    fn quantize(
        &self,
        fmt: &'static Format,
        w: &[f32],
        rows: usize,
        cols: usize,
    ) -> Option<Result<QTensor, AccelError>>;
}
