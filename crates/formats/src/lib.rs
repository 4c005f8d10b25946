//! pareto-formats: the quant-format registry and reference codecs. No I/O, no candle.
//!
//! Every format is a [`Format`] in [`registry()`]; look one up by id with
//! [`lookup`]. Weights are row-major `[rows, cols]` f32 with `cols` the input
//! (contiguous) dimension; every format quantizes rows independently, so rows
//! run in parallel on rayon and the result equals the serial path bit for bit.
//! The ggml formats (`q8_0`, `q4_0`, `q5_0`, `q4_k`, `q6_k`) are byte-exact with
//! llama.cpp's reference encoders.

mod codec;
mod error;
mod exec;
mod float;
pub mod fp8;
mod ggml;
mod group_arith;
mod int_grid;
pub mod metrics;
pub mod nf4;
pub mod pool;
mod qtensor;
mod registry;
mod rounding;

pub use error::FormatError;
pub use exec::{Parallelism, non_finite_bit};
pub use ggml::decode::{
    DECODABLE as GGML_DECODABLE, can_dequantize as can_dequantize_ggml, dequantize_blocks as dequantize_ggml,
};
pub use group_arith::GroupArith;
pub use int_grid::IntGrid;
pub use qtensor::QTensor;
pub use registry::{FallbackChain, Format, Kind, PER_ROW, PER_TENSOR, fallback_chain, lookup, registry};
pub use rounding::RINT_MAGIC;
