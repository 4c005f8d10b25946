//! pareto-eval: validation of original vs compressed models with candle. BERT-style encoders
//! (embeddings, STS correlation) and LLaMA-style decoders (perplexity, KL divergence, top-1
//! agreement, greedy continuation) end to end; strict sample-set readers; measured speed; and the
//! calibration-activation stream that GPTQ/AWQ/Wanda-style compression consumes.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod attention;
pub mod baseline;
pub mod bert;
mod bert_packed;
pub mod calibration;
pub mod compare;
pub mod device;
pub mod device_quant;
pub mod error;
pub mod family;
pub mod llama;
pub mod logits;
pub mod metrics;
pub mod perplexity;
pub mod samples;
pub mod speed;
pub mod sts;
mod vector;
pub mod weights;

#[cfg(test)]
mod tests_smollm2;

/// candle, re-exported so callers (tests, the app) name the same version.
pub use candle_core;
pub use candle_nn;
pub use compare::{Compressed, EvalOptions, EvalReport, compare, evaluate};
pub use device::DeviceSpec;
pub use error::{EvalError, Result};
pub use family::{ModelFamily, detect_family};
