//! Measured speed on the local device: load time, prefill and decode tokens/s (decoders),
//! sentences/s (encoders), peak RSS. Every figure is a [`Summary`] over repeats taken after
//! warm-up runs. These structs are what projection calibration consumes.

use std::path::Path;
use std::time::Instant;

use candle_core::{D, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::bert::BertEncoder;
use crate::error::{EvalError, Result};
use crate::llama::{LlamaModel, LoadAs, WeightMode};
use crate::metrics::Summary;
use pareto_core::job::JobContext;

/// Repeats and sizes of the speed measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeedOptions {
    /// Untimed runs before measuring (page cache, allocator, thread pool warm).
    pub warmup: usize,
    /// Timed runs; the summary's median is the headline figure.
    pub repeats: usize,
    /// Prompt length of the prefill measurement (one sequence).
    pub prefill_tokens: usize,
    /// Tokens generated one at a time with the KV cache in the decode measurement.
    pub decode_tokens: usize,
    /// Sentences per forward pass for encoders.
    pub encoder_batch: usize,
}

impl Default for SpeedOptions {
    fn default() -> Self {
        Self { warmup: 1, repeats: 5, prefill_tokens: 256, decode_tokens: 128, encoder_batch: 32 }
    }
}

/// Where the numbers were taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    pub device: String,
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// Whether the device is a CPU (candle's CPU kernels use all available cores).
    pub cpu_backend: bool,
}

impl HostInfo {
    pub fn of(device: &Device) -> Self {
        Self {
            device: format!("{:?}", device.location()),
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_backend: device.is_cpu(),
        }
    }
}

/// Measured decoder speed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecoderSpeed {
    pub model: String,
    pub weights: WeightMode,
    pub host: HostInfo,
    pub load_ms: Summary,
    pub prefill_tokens: usize,
    pub prefill_tokens_per_s: Summary,
    pub decode_tokens: usize,
    pub decode_tokens_per_s: Summary,
    /// Peak resident set of the whole process (VmHWM) after the measurement, in bytes. Process-wide:
    /// it includes everything loaded before (other models, tokenizers, the test harness).
    pub peak_rss_bytes: Option<u64>,
}

/// Measured encoder speed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderSpeed {
    pub model: String,
    pub host: HostInfo,
    pub load_ms: Summary,
    pub batch: usize,
    pub sentences: usize,
    pub sentences_per_s: Summary,
    /// Process-wide peak RSS (VmHWM), see [`DecoderSpeed::peak_rss_bytes`].
    pub peak_rss_bytes: Option<u64>,
}

/// Peak resident set size of this process (Linux `VmHWM` from /proc/self/status), in bytes.
/// Process-wide and monotonic: it never goes down, so it bounds everything done so far.
/// `None` where /proc is not available.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

fn summary(name: &str, v: &[f64]) -> Result<Summary> {
    Summary::of(v).ok_or_else(|| EvalError::InvalidArgument(format!("{name}: repeats must be at least 1")))
}

fn checkpoint(ctx: &JobContext) -> Result<()> {
    if ctx.cancel.is_cancelled() { Err(EvalError::Cancelled) } else { Ok(()) }
}

/// Measures a decoder: loads it `warmup + repeats` times (dense, or quantized in memory to `quant`
/// and then running candle's quantized kernels), prefill of one `prefill_tokens` sequence and
/// cached greedy decode of `decode_tokens` after BOS.
pub fn measure_decoder(
    dir: &Path,
    device: &Device,
    how: &LoadAs,
    opts: &SpeedOptions,
    ctx: &JobContext,
) -> Result<DecoderSpeed> {
    let load = || LlamaModel::load_as(dir, device, how);
    let runs = opts.warmup + opts.repeats;
    ctx.progress.stage("measuring decoder speed", (3 * runs) as u64);
    let mut load_ms = Vec::new();
    let mut model = None;
    for i in 0..runs {
        checkpoint(ctx)?;
        let t = Instant::now();
        let m = load()?;
        if i >= opts.warmup {
            load_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        model = Some(m);
        ctx.progress.advance(1, "load");
    }
    let model = model.ok_or_else(|| EvalError::InvalidArgument("repeats must be at least 1".into()))?;
    let cfg = model.config();
    let max = cfg.max_position_embeddings;
    let prefill = opts.prefill_tokens.clamp(1, max);
    let decode = opts.decode_tokens.clamp(1, max.saturating_sub(1).max(1));
    let vocab = cfg.vocab_size as u32;
    let prompt: Vec<u32> = std::iter::once(cfg.bos())
        .chain((0..prefill as u32 - 1).map(|i| 3 + (i * 7919) % vocab.saturating_sub(3).max(1)))
        .collect();
    let ids = Tensor::new(prompt.as_slice(), device)?.unsqueeze(0)?;
    let mut prefill_tps = Vec::new();
    for i in 0..runs {
        checkpoint(ctx)?;
        let t = Instant::now();
        let logits = model.forward(&ids, None, None)?;
        // Reading a value back waits for asynchronous devices to finish.
        logits.max_keepdim(D::Minus1)?.flatten_all()?.to_vec1::<f32>()?;
        if i >= opts.warmup {
            prefill_tps.push(prefill as f64 / t.elapsed().as_secs_f64());
        }
        ctx.progress.advance(1, "prefill");
    }
    let mut decode_tps = Vec::new();
    for i in 0..runs {
        checkpoint(ctx)?;
        let mut cache = model.new_cache();
        let mut input = Tensor::new(&[cfg.bos()], device)?.unsqueeze(0)?;
        let t = Instant::now();
        for _ in 0..decode {
            let logits = model.forward(&input, Some(&mut cache), None)?;
            let next = logits.flatten_all()?.argmax(D::Minus1)?.to_scalar::<u32>()?;
            input = Tensor::new(&[next], device)?.unsqueeze(0)?;
        }
        if i >= opts.warmup {
            decode_tps.push(decode as f64 / t.elapsed().as_secs_f64());
        }
        ctx.progress.advance(1, "decode");
    }
    Ok(DecoderSpeed {
        model: dir.display().to_string(),
        weights: model.mode().clone(),
        host: HostInfo::of(device),
        load_ms: summary("load", &load_ms)?,
        prefill_tokens: prefill,
        prefill_tokens_per_s: summary("prefill", &prefill_tps)?,
        decode_tokens: decode,
        decode_tokens_per_s: summary("decode", &decode_tps)?,
        peak_rss_bytes: peak_rss_bytes(),
    })
}

/// Measures an encoder: load time and sentences/s embedding `sentences` in batches.
pub fn measure_encoder(
    dir: &Path,
    device: &Device,
    sentences: &[&str],
    opts: &SpeedOptions,
    ctx: &JobContext,
) -> Result<EncoderSpeed> {
    if sentences.is_empty() {
        return Err(EvalError::InvalidArgument("no sentences to measure with".into()));
    }
    let runs = opts.warmup + opts.repeats;
    let mut load_ms = Vec::new();
    let mut encoder = None;
    for i in 0..runs {
        checkpoint(ctx)?;
        let t = Instant::now();
        let e = BertEncoder::load(dir, device)?;
        if i >= opts.warmup {
            load_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        encoder = Some(e);
    }
    let encoder = encoder.ok_or_else(|| EvalError::InvalidArgument("repeats must be at least 1".into()))?;
    ctx.progress.stage("measuring encoder speed", (runs * sentences.len()) as u64);
    let mut sps = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        encoder.embed(sentences, opts.encoder_batch, ctx)?;
        if i >= opts.warmup {
            sps.push(sentences.len() as f64 / t.elapsed().as_secs_f64());
        }
    }
    Ok(EncoderSpeed {
        model: dir.display().to_string(),
        host: HostInfo::of(device),
        load_ms: summary("load", &load_ms)?,
        batch: opts.encoder_batch,
        sentences: sentences.len(),
        sentences_per_s: summary("encode", &sps)?,
        peak_rss_bytes: peak_rss_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_is_read_and_covers_a_touched_allocation() {
        let before = peak_rss_bytes().unwrap();
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        let after = peak_rss_bytes().unwrap();
        assert!(before > 1 << 20, "{before}");
        // Process-wide high-water mark: other tests may already have pushed it higher.
        assert!(after >= before && after >= 64 << 20, "{before} -> {after}");
    }

    #[test]
    fn decoder_speed_has_positive_medians_for_dense_and_q8_0() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/stories260K");
        let opts = SpeedOptions { warmup: 1, repeats: 2, prefill_tokens: 64, decode_tokens: 16, encoder_batch: 8 };
        let ctx = JobContext::silent();
        let dense = measure_decoder(&dir, &Device::Cpu, &LoadAs::Dense, &opts, &ctx).unwrap();
        assert_eq!(dense.weights, WeightMode::Dense);
        assert_eq!(dense.prefill_tokens_per_s.n, 2);
        assert!(dense.prefill_tokens_per_s.median > 0.0 && dense.decode_tokens_per_s.median > 0.0);
        assert!(dense.load_ms.min > 0.0);
        let q8 = measure_decoder(
            &dir,
            &Device::Cpu,
            &LoadAs::Requantize(candle_core::quantized::GgmlDType::Q8_0),
            &opts,
            &ctx,
        )
        .unwrap();
        // stories260K's five 172-wide down_proj rows stay F16, and the label says so.
        let label = "q8_0 (5 of 36 linear weights in f16: rows not a multiple of 32)";
        assert_eq!(q8.weights, WeightMode::Quantized(label.into()));
        let zero = SpeedOptions { repeats: 0, ..opts };
        assert!(measure_decoder(&dir, &Device::Cpu, &LoadAs::Dense, &zero, &ctx).is_err());
    }
}
