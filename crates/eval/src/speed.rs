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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Decoders: batch sizes of the batched-decode sweep (empty: none).
    #[serde(default)]
    pub batches: Vec<usize>,
}

impl Default for SpeedOptions {
    fn default() -> Self {
        Self { warmup: 1, repeats: 5, prefill_tokens: 256, decode_tokens: 128, encoder_batch: 32, batches: Vec::new() }
    }
}

/// Prompt length of each sequence in the batched sweep: short, so the step time is the weights'
/// and the per-sequence work's, not a long context's.
pub const BATCH_PROMPT_TOKENS: usize = 32;
/// Decode steps timed per batch size.
pub const BATCH_DECODE_STEPS: usize = 32;

/// `batch` sequences decoded together, one token each per step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchPoint {
    pub batch: usize,
    /// One decode step of the whole batch, ms.
    pub step_ms: Summary,
    /// Tokens per second over all sequences, at the median step.
    pub decode_tokens_per_s: f64,
    /// Prefill of the batch's prompts (`batch` × [`BATCH_PROMPT_TOKENS`]), tokens per second.
    pub prefill_tokens_per_s: Summary,
}

/// A batched-decode sweep and the step time fitted to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchedDecode {
    pub points: Vec<BatchPoint>,
    pub fit: Option<BatchFit>,
}

/// `step(B) = fixed + per_seq × B` fitted to a batched sweep by least squares, and each point
/// predicted from a fit to the others (the fit is judged on points it was not fitted to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchFit {
    pub fixed_ms: f64,
    pub per_seq_ms: f64,
    /// (batch, measured step ms, step ms predicted by the fit without this point).
    pub held_out: Vec<(usize, f64, f64)>,
    /// Median |predicted / measured − 1| over the held-out points (three or more points).
    pub median_held_out_error: Option<f64>,
}

fn line_fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    if points.len() < 2 || sxx <= 0.0 {
        return None;
    }
    let slope = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum::<f64>() / sxx;
    Some((my - slope * mx, slope))
}

impl BatchFit {
    /// `None` for fewer than two distinct batch sizes.
    pub fn of(points: &[BatchPoint]) -> Option<Self> {
        let xy: Vec<(f64, f64)> = points.iter().map(|p| (p.batch as f64, p.step_ms.median)).collect();
        let (fixed_ms, per_seq_ms) = line_fit(&xy)?;
        let held_out: Vec<(usize, f64, f64)> = (0..xy.len())
            .filter_map(|i| {
                let others: Vec<(f64, f64)> = xy.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| *p).collect();
                let (a, b) = line_fit(&others)?;
                Some((points[i].batch, xy[i].1, a + b * xy[i].0))
            })
            .collect();
        let errs: Vec<f64> = held_out.iter().map(|(_, m, p)| (p / m - 1.0).abs()).collect();
        let median_held_out_error = Summary::of(&errs).filter(|_| xy.len() >= 3).map(|s| s.median);
        Some(Self { fixed_ms, per_seq_ms, held_out, median_held_out_error })
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
    /// The batched-decode sweep, when asked for.
    #[serde(default)]
    pub batched: Option<Box<BatchedDecode>>,
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
    let batch_runs = opts.batches.len() * (opts.warmup + opts.repeats.max(1));
    ctx.progress.stage("measuring decoder speed", (3 * runs + batch_runs) as u64);
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
    let prompt = synthetic_prompt(cfg, prefill, 0);
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
    let points =
        opts.batches.iter().map(|&b| measure_batch(&model, device, b, opts, ctx)).collect::<Result<Vec<_>>>()?;
    let batched = (!points.is_empty()).then(|| Box::new(BatchedDecode { fit: BatchFit::of(&points), points }));
    Ok(DecoderSpeed {
        model: dir.display().to_string(),
        weights: model.mode().clone(),
        host: HostInfo::of(device),
        load_ms: summary("load", &load_ms)?,
        prefill_tokens: prefill,
        prefill_tokens_per_s: summary("prefill", &prefill_tps)?,
        decode_tokens: decode,
        decode_tokens_per_s: summary("decode", &decode_tps)?,
        batched,
        peak_rss_bytes: peak_rss_bytes(),
    })
}

/// A timing prompt of `len` tokens: BOS, then ids spread over the vocabulary (skipping the first
/// three, the usual special tokens); `row` gives each sequence of a batch different ids.
fn synthetic_prompt(cfg: &crate::llama::LlamaConfig, len: usize, row: usize) -> Vec<u32> {
    let vocab = (cfg.vocab_size as u32).saturating_sub(3).max(1);
    std::iter::once(cfg.bos())
        .chain((0..len.max(1) as u32 - 1).map(|i| 3 + (i * 7919 + row as u32 * 104_729) % vocab))
        .collect()
}

/// One batch size of the sweep: `batch` different prompts prefilled together, then
/// [`BATCH_DECODE_STEPS`] greedy steps of all of them with the KV cache.
fn measure_batch(
    model: &LlamaModel,
    device: &Device,
    batch: usize,
    opts: &SpeedOptions,
    ctx: &JobContext,
) -> Result<BatchPoint> {
    if batch == 0 {
        return Err(EvalError::InvalidArgument("batch sizes must be at least 1".into()));
    }
    let cfg = model.config();
    let prompt = BATCH_PROMPT_TOKENS.min(cfg.max_position_embeddings / 2).max(1);
    let steps = BATCH_DECODE_STEPS.min(cfg.max_position_embeddings - prompt).max(1);
    let ids: Vec<u32> = (0..batch).flat_map(|row| synthetic_prompt(cfg, prompt, row)).collect();
    let ids = Tensor::from_vec(ids, (batch, prompt), device)?;
    let (mut steps_ms, mut prefill_tps) = (Vec::new(), Vec::new());
    for i in 0..opts.warmup + opts.repeats.max(1) {
        checkpoint(ctx)?;
        let mut cache = model.new_cache();
        let t = Instant::now();
        let logits = model.forward(&ids, Some(&mut cache), None)?;
        let mut next = logits.narrow(1, prompt - 1, 1)?.argmax(D::Minus1)?;
        next.to_vec2::<u32>()?;
        let prefill_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for _ in 0..steps {
            let logits = model.forward(&next, Some(&mut cache), None)?;
            next = logits.argmax(D::Minus1)?;
            // Reading the tokens back waits for asynchronous devices.
            next.to_vec2::<u32>()?;
        }
        if i >= opts.warmup {
            steps_ms.push(t.elapsed().as_secs_f64() * 1e3 / steps as f64);
            prefill_tps.push((batch * prompt) as f64 / prefill_s);
        }
        ctx.progress.advance(1, &format!("batch {batch}"));
    }
    let step_ms = summary("batched decode", &steps_ms)?;
    Ok(BatchPoint {
        batch,
        decode_tokens_per_s: batch as f64 / (step_ms.median / 1e3),
        step_ms,
        prefill_tokens_per_s: summary("batched prefill", &prefill_tps)?,
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
    fn the_batch_fit_recovers_a_line_and_predicts_held_out_points() {
        let point = |batch: usize, ms: f64| BatchPoint {
            batch,
            step_ms: Summary::of(&[ms]).expect("one value"),
            decode_tokens_per_s: batch as f64 / ms * 1e3,
            prefill_tokens_per_s: Summary::of(&[1.0]).expect("one value"),
        };
        let pts: Vec<BatchPoint> = [1, 2, 4, 8].iter().map(|&b| point(b, 3.0 + 0.5 * b as f64)).collect();
        let fit = BatchFit::of(&pts).expect("fit");
        assert!((fit.fixed_ms - 3.0).abs() < 1e-9 && (fit.per_seq_ms - 0.5).abs() < 1e-9);
        assert!(fit.median_held_out_error.is_some_and(|e| e < 1e-9));
        // A point off the line is predicted from the others, so its error shows.
        let mut bent = pts.clone();
        bent[3] = point(8, 14.0);
        let h = BatchFit::of(&bent).expect("fit").held_out[3];
        assert!((h.2 - 7.0).abs() < 1e-9, "predicted from batches 1, 2, 4: {h:?}");
        assert!(BatchFit::of(&pts[..1]).is_none());
    }

    #[test]
    fn decoder_speed_has_positive_medians_for_dense_and_q8_0() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/stories260K");
        let opts = SpeedOptions {
            warmup: 1,
            repeats: 2,
            prefill_tokens: 64,
            decode_tokens: 16,
            encoder_batch: 8,
            batches: vec![1, 2, 4],
        };
        let ctx = JobContext::silent();
        let dense = measure_decoder(&dir, &Device::Cpu, &LoadAs::Dense, &opts, &ctx).unwrap();
        assert_eq!(dense.weights, WeightMode::Dense);
        assert_eq!(dense.prefill_tokens_per_s.n, 2);
        assert!(dense.prefill_tokens_per_s.median > 0.0 && dense.decode_tokens_per_s.median > 0.0);
        assert!(dense.load_ms.min > 0.0);
        // Decoding four sequences together yields more tokens per second than one: the weights are
        // read once per step for all of them.
        let sweep = dense.batched.as_ref().expect("the batched sweep");
        let b: Vec<usize> = sweep.points.iter().map(|p| p.batch).collect();
        assert_eq!(b, [1, 2, 4]);
        assert!(sweep.points[2].decode_tokens_per_s > sweep.points[0].decode_tokens_per_s, "{:?}", sweep.points);
        let fit = sweep.fit.as_ref().expect("three batch sizes fit a line");
        assert_eq!(fit.held_out.len(), 3);
        assert!(fit.median_held_out_error.is_some_and(f64::is_finite));
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
