//! One entry point for `pareto eval`: evaluate a model (and optionally its compressed version) on a
//! sample set, by family, into a serde report holding both metric sets and the deltas.

use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_core::quantized::GgmlDType;
use serde::{Deserialize, Serialize};

use crate::baseline::{self, BaselineCache};
use crate::bert::{BertEncoder, DEFAULT_BATCH};
use crate::device::DeviceSpec;
use crate::error::{EvalError, Result};
use crate::family::{ModelFamily, detect_family};
use crate::llama::{LlamaConfig, LlamaModel, LoadAs, parse_ggml_dtype};
use crate::perplexity::{
    DecoderComparison, OriginalSide, PerplexityProtocol, PerplexityResult, Scoring, adds_bos, compare_to_original,
    load_tokenizer, tokenize_up_to,
};
use crate::samples::{SampleOptions, SampleSet, Selection, bundled, load_samples};
use crate::speed::{DecoderSpeed, EncoderSpeed, SpeedOptions, measure_decoder, measure_encoder};
use crate::sts::{EmbeddingShift, ProxyResult, StsResult, embedding_shift, evaluate_proxy, evaluate_sts};
use crate::weights::tokenizer_path;
use pareto_core::job::JobContext;

/// What the compressed side is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Compressed {
    /// A model folder written by `pareto compress` (or any same-family folder).
    Folder(PathBuf),
    /// The original quantized in memory to a GGUF type and run on candle's quantized kernels
    /// (decoders only).
    InMemory(String),
}

/// Everything `evaluate` needs besides the model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalOptions {
    pub compressed: Option<Compressed>,
    /// The sample file; the family's bundled default when `None`.
    pub samples: Option<PathBuf>,
    pub sample_options: SampleOptions,
    pub protocol: PerplexityProtocol,
    pub device: DeviceSpec,
    /// Greedy continuation length compared between original and compressed (decoders).
    pub greedy_steps: usize,
    pub encoder_batch: usize,
    /// Also measure speed (load, prefill/decode or sentences/s, peak RSS).
    pub speed: Option<SpeedOptions>,
    /// The GGUF the model folder was converted from: its linears then run on the GGUF's stored
    /// blocks with candle's quantized kernels, as llama.cpp runs the file.
    #[serde(default)]
    pub original_gguf: Option<PathBuf>,
    /// The same for a compressed folder converted from a GGUF.
    #[serde(default)]
    pub compressed_gguf: Option<PathBuf>,
    /// Where the original's side of a decoder evaluation is kept for the next run.
    #[serde(default)]
    pub baseline_cache: BaselineCache,
}

impl EvalOptions {
    fn original_load(&self) -> LoadAs {
        self.original_gguf.clone().map_or(LoadAs::Dense, LoadAs::StoredGguf)
    }

    fn compressed_load(&self) -> LoadAs {
        self.compressed_gguf.clone().map_or(LoadAs::Dense, LoadAs::StoredGguf)
    }
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            compressed: None,
            samples: None,
            sample_options: SampleOptions::default(),
            protocol: PerplexityProtocol::default(),
            device: DeviceSpec::Cpu,
            greedy_steps: 60,
            encoder_batch: DEFAULT_BATCH,
            speed: None,
            original_gguf: None,
            compressed_gguf: None,
            baseline_cache: BaselineCache::default(),
        }
    }
}

/// Greedy continuations from BOS of both decoders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GreedyCheck {
    pub steps: usize,
    pub original: Vec<u32>,
    pub compressed: Vec<u32>,
    pub identical: bool,
    /// Index (in the id list, BOS = 0) of the first differing token.
    pub first_divergence: Option<usize>,
}

/// Decoder metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecoderReport {
    pub protocol: PerplexityProtocol,
    pub original: PerplexityResult,
    pub compressed: Option<PerplexityResult>,
    /// KL, top-1 agreement and deltas; present with a compressed model.
    pub comparison: Option<DecoderComparison>,
    pub greedy: GreedyCheck,
    /// The original's side came from an earlier run's cache (see [`crate::baseline`]).
    #[serde(default)]
    pub original_reused: bool,
}

/// Encoder metrics of one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EncoderMetrics {
    pub sts: Option<StsResult>,
    pub proxy: Option<ProxyResult>,
}

/// compressed − original.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EncoderDeltas {
    pub spearman: Option<f64>,
    pub pearson: Option<f64>,
    pub accuracy: Option<f64>,
    /// Fraction of texts whose proxy prediction is unchanged.
    pub prediction_agreement: Option<f64>,
}

/// Encoder report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderReport {
    pub original: EncoderMetrics,
    pub compressed: Option<EncoderMetrics>,
    pub deltas: Option<EncoderDeltas>,
    pub embedding_shift: Option<EmbeddingShift>,
}

/// Speed of both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SpeedReport {
    Decoder { original: DecoderSpeed, compressed: Option<DecoderSpeed> },
    Encoder { original: EncoderSpeed, compressed: Option<EncoderSpeed> },
}

/// The result of `pareto eval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub model: PathBuf,
    pub family: ModelFamily,
    pub compressed: Option<Compressed>,
    pub samples: Option<PathBuf>,
    pub sample_kind: Option<String>,
    pub device: DeviceSpec,
    pub decoder: Option<DecoderReport>,
    pub encoder: Option<EncoderReport>,
    pub speed: Option<SpeedReport>,
    /// Set when no end-to-end metrics exist for this family; says where proxies come from.
    pub unavailable: Option<String>,
}

/// The bundled default sample file of a family, relative to the repository root.
pub fn default_samples(family: &ModelFamily) -> Option<&'static str> {
    match family {
        ModelFamily::Llama => Some(bundled::TINYSTORIES),
        ModelFamily::Bert => Some(bundled::STSB_DEV),
        ModelFamily::Other(_) => None,
    }
}

/// Where an installed app keeps its bundled files (the desktop bundle's resource folder).
static BUNDLE_ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Registers the installed app's resource folder, searched first by [`resolve_bundled`]. The first
/// registration wins (one app, one bundle).
pub fn set_bundle_root(dir: PathBuf) {
    let _ = BUNDLE_ROOT.set(dir);
}

/// Finds a bundled file: in the installed app's resource folder, relative to the working
/// directory, then to the executable's ancestors, then to the source tree this crate was built from.
pub fn resolve_bundled(rel: &str) -> Option<PathBuf> {
    if let Some(p) = BUNDLE_ROOT.get().map(|root| root.join(rel)).filter(|p| p.is_file()) {
        return Some(p);
    }
    let cwd = PathBuf::from(rel);
    if cwd.is_file() {
        return Some(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            let p = dir.join(rel);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    built.is_file().then_some(built)
}

const UNAVAILABLE: &str = "end-to-end metrics are available for LLaMA-style decoders and BERT-style \
encoders only; for this architecture use the weight-space proxy metrics (relative error, SNR, cosine, \
sparsity per tensor) from `pareto compress`'s per-tensor summary";

impl EvalOptions {
    /// Refuses settings that would evaluate nothing yet print a result (a limit of 0 records
    /// gives perplexity 1.0 and KL 0) or cannot run (a batch of 0). One place for every caller:
    /// the CLI, sweeps and the studio.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, value: usize, allowed: &str| {
            Err(EvalError::InvalidArgument(format!("{what} = {value} is out of range: allowed {allowed}")))
        };
        let p = &self.protocol;
        if p.window < 2 {
            return bad(
                "perplexity window (tokens)",
                p.window,
                "2 or more (a window predicts its tokens after the first)",
            );
        }
        if p.batch == 0 {
            return bad("batch (windows per forward pass)", 0, "1 or more");
        }
        if self.encoder_batch == 0 {
            return bad("batch (sentences per forward pass)", 0, "1 or more");
        }
        if p.max_windows == Some(0) {
            return bad("limit (windows)", 0, "1 or more, or no limit");
        }
        for max_chars in [p.max_chars, self.sample_options.max_chars].into_iter().flatten() {
            if max_chars == 0 {
                return bad("max chars", 0, "1 or more");
            }
        }
        if let Selection::First { n: 0 } | Selection::Random { n: 0, .. } = self.sample_options.selection {
            return bad("limit (records)", 0, "1 or more, or no limit");
        }
        if let Some(s) = &self.speed
            && s.repeats == 0
        {
            return bad("speed repeats", 0, "1 or more");
        }
        Ok(())
    }
}

/// Refuses, before loading anything, an evaluation on the CPU whose models would not fit in the
/// memory available now: one model at a time as F32 (4 bytes a weight) and the original's head,
/// plus a margin for activations. Better a named refusal than the machine swapping for an hour or the process
/// being killed. Unknown sizes (a folder the store cannot read) or platforms without
/// `/proc/meminfo` are not checked.
fn check_fits_in_memory(model: &Path, options: &EvalOptions) -> Result<()> {
    if options.device != DeviceSpec::Cpu {
        return Ok(());
    }
    let (Ok(m), Some(available)) = (pareto_core::Model::open(model), available_memory()) else { return Ok(()) };
    let count = |t: &pareto_core::store::TensorInfo| t.shape.iter().map(|&d| d as u64).product::<u64>();
    let weights: u64 = m.tensors().iter().map(count).sum();
    // One model at a time (the original's pass runs before the compressed model is loaded), and
    // beside the compressed model the original's head.
    let head = match options.compressed {
        Some(_) => m
            .tensors()
            .iter()
            .filter(|t| t.name == "lm_head.weight" || t.name == "model.embed_tokens.weight")
            .map(count)
            .max()
            .unwrap_or(0),
        None => 0,
    };
    let needs = (weights + head).saturating_mul(4) + (512 << 20);
    if needs > available {
        return Err(EvalError::WouldNotFit { needs, available });
    }
    Ok(())
}

/// `MemAvailable` of `/proc/meminfo` in bytes (Linux).
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Evaluates `model`, and the compressed side when `options.compressed` is set, on the sample set.
pub fn evaluate(model: &Path, options: &EvalOptions, ctx: &JobContext) -> Result<EvalReport> {
    options.validate()?;
    check_fits_in_memory(model, options)?;
    let family = detect_family(model)?;
    let mut report = EvalReport {
        model: model.to_path_buf(),
        family: family.clone(),
        compressed: options.compressed.clone(),
        samples: None,
        sample_kind: None,
        device: options.device,
        decoder: None,
        encoder: None,
        speed: None,
        unavailable: None,
    };
    if let ModelFamily::Other(_) = family {
        report.unavailable = Some(UNAVAILABLE.to_string());
        return Ok(report);
    }
    if let Some(Compressed::Folder(dir)) = &options.compressed {
        let other = detect_family(dir)?;
        if other != family {
            return Err(EvalError::InvalidArgument(format!(
                "{} is {other:?} but {} is {family:?}",
                dir.display(),
                model.display()
            )));
        }
    }
    let samples_path = match &options.samples {
        Some(p) => p.clone(),
        None => default_samples(&family).and_then(resolve_bundled).ok_or_else(|| {
            EvalError::InvalidArgument("no bundled sample set found: pass --samples <file>".to_string())
        })?,
    };
    let mut sample_options = options.sample_options.clone();
    if sample_options.max_chars.is_none() {
        sample_options.max_chars = options.protocol.max_chars;
    }
    let samples = load_samples(&samples_path, &sample_options)?;
    report.samples = Some(samples_path.clone());
    report.sample_kind = Some(samples.kind().to_string());
    let device = options.device.open()?;
    match family {
        ModelFamily::Llama => {
            let SampleSet::Text(text) = &samples else {
                return Err(EvalError::SampleFormat {
                    path: samples_path,
                    message: format!("a decoder is evaluated on plain text (perplexity), not on {}", samples.kind()),
                });
            };
            report.decoder = Some(evaluate_decoder(model, text, options, &device, ctx)?);
            if let Some(speed) = &options.speed {
                report.speed = Some(decoder_speed(model, options, &device, speed, ctx)?);
            }
        }
        ModelFamily::Bert => {
            report.encoder = Some(evaluate_encoder(model, &samples, &samples_path, options, &device, ctx)?);
            if let Some(speed) = &options.speed {
                report.speed = Some(encoder_speed(model, &samples, options, &device, speed, ctx)?);
            }
        }
        ModelFamily::Other(_) => {}
    }
    Ok(report)
}

/// `evaluate` with a compressed folder: both models on the same samples, with deltas.
pub fn compare(original: &Path, compressed: &Path, options: &EvalOptions, ctx: &JobContext) -> Result<EvalReport> {
    let options = EvalOptions { compressed: Some(Compressed::Folder(compressed.to_path_buf())), ..options.clone() };
    evaluate(original, &options, ctx)
}

fn load_compressed_decoder(model: &Path, options: &EvalOptions, device: &Device) -> Result<Option<LlamaModel>> {
    Ok(match &options.compressed {
        None => None,
        Some(Compressed::Folder(dir)) => Some(LlamaModel::load_as(dir, device, &options.compressed_load())?),
        Some(Compressed::InMemory(fmt)) => Some(LlamaModel::load_quantized(model, device, parse_ggml_dtype(fmt)?)?),
    })
}

fn evaluate_decoder(
    model: &Path,
    text: &str,
    options: &EvalOptions,
    device: &Device,
    ctx: &JobContext,
) -> Result<DecoderReport> {
    let config = LlamaConfig::read(model)?;
    let tokenizer = load_tokenizer(&tokenizer_path(model, None)?)?;
    let needed = options.protocol.max_windows.map_or(usize::MAX, |n| n.saturating_mul(options.protocol.window));
    let mut tokens = tokenize_up_to(&tokenizer, text, needed)?;
    let protocol = options.protocol;
    // llama-perplexity tokenizes with the tokenizer's special tokens: BOS first when it adds one.
    let bos = config.bos();
    if protocol.scoring == Scoring::LlamaCpp && adds_bos(&tokenizer, bos)? {
        tokens.insert(0, bos);
    }
    // The original first, on its own (or from an earlier run's cache), then the compressed model.
    let steps = options.greedy_steps.min(config.max_position_embeddings.saturating_sub(1));
    let pass = baseline::Pass { tokens: &tokens, protocol: &protocol, greedy_steps: steps };
    let mut baseline = baseline::obtain(model, &options.original_load(), device, pass, &options.baseline_cache, ctx)?;
    for note in &baseline.notes {
        ctx.progress.log(note);
    }
    if baseline.reused {
        ctx.progress.log("the original's evaluation on these samples was reused from an earlier run (cache folder)");
    }
    let compressed = load_compressed_decoder(model, options, device)?;
    let (comp_ppl, comparison) = match &compressed {
        Some(c) => {
            let head = baseline.head().clone();
            let mut hidden = |first: usize, input: &candle_core::Tensor| baseline.hidden(first, input.dim(0)?, device);
            let cmp =
                compare_to_original(OriginalSide { hidden: &mut hidden, head: &head }, c, &tokens, &protocol, ctx)?;
            (Some(cmp.compressed), Some(cmp))
        }
        None => (None, None),
    };
    // The original's figures are the pass's own (its wall time included), equal to the comparison's.
    let orig_ppl = baseline.result();
    let comparison = comparison.map(|c| DecoderComparison { original: orig_ppl, ..c });
    let a = baseline.greedy().to_vec();
    let b = match &compressed {
        Some(c) => c.greedy(&[bos], steps)?,
        None => a.clone(),
    };
    let first_divergence = a.iter().zip(&b).position(|(x, y)| x != y);
    Ok(DecoderReport {
        protocol,
        original: orig_ppl,
        compressed: comp_ppl,
        comparison,
        greedy: GreedyCheck { steps, identical: a == b, first_divergence, original: a, compressed: b },
        original_reused: baseline.reused,
    })
}

fn encoder_metrics(
    encoder: &BertEncoder,
    samples: &SampleSet,
    batch: usize,
    ctx: &JobContext,
) -> Result<(EncoderMetrics, crate::sts::SentenceEmbeddings, Vec<bool>)> {
    match samples {
        SampleSet::Pairs(pairs) => {
            let (r, emb) = evaluate_sts(encoder, pairs, batch, ctx)?;
            Ok((EncoderMetrics { sts: Some(r), proxy: None }, emb, Vec::new()))
        }
        SampleSet::Labelled(rows) => {
            let (r, emb, pred) = evaluate_proxy(encoder, rows, batch, ctx)?;
            Ok((EncoderMetrics { sts: None, proxy: Some(r) }, emb, pred))
        }
        SampleSet::Text(_) => Err(EvalError::InvalidArgument(
            "an encoder is evaluated on sentence pairs with scores (STS) or labelled texts".into(),
        )),
    }
}

fn evaluate_encoder(
    model: &Path,
    samples: &SampleSet,
    samples_path: &Path,
    options: &EvalOptions,
    device: &Device,
    ctx: &JobContext,
) -> Result<EncoderReport> {
    if let SampleSet::Text(_) = samples {
        return Err(EvalError::SampleFormat {
            path: samples_path.to_path_buf(),
            message: "an encoder needs sentence pairs with scores (STS) or labelled texts".into(),
        });
    }
    let original = BertEncoder::load(model, device)?;
    let (orig, emb_a, pred_a) = encoder_metrics(&original, samples, options.encoder_batch, ctx)?;
    drop(original);
    let compressed_dir = match &options.compressed {
        None => None,
        Some(Compressed::Folder(dir)) => Some(dir.clone()),
        Some(Compressed::InMemory(fmt)) => {
            return Err(EvalError::InvalidArgument(format!(
                "in-memory quantization ({fmt}) runs decoders only: candle has no quantized BERT"
            )));
        }
    };
    let Some(dir) = compressed_dir else {
        return Ok(EncoderReport { original: orig, compressed: None, deltas: None, embedding_shift: None });
    };
    let compressed = BertEncoder::load_with_tokenizer_fallback(&dir, Some(model), device)?;
    let (comp, emb_b, pred_b) = encoder_metrics(&compressed, samples, options.encoder_batch, ctx)?;
    let d = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
    let agreement = (!pred_a.is_empty())
        .then(|| pred_a.iter().zip(&pred_b).filter(|(a, b)| a == b).count() as f64 / pred_a.len() as f64);
    Ok(EncoderReport {
        deltas: Some(EncoderDeltas {
            spearman: d(orig.sts.map(|s| s.spearman), comp.sts.map(|s| s.spearman)),
            pearson: d(orig.sts.map(|s| s.pearson), comp.sts.map(|s| s.pearson)),
            accuracy: d(orig.proxy.map(|p| p.accuracy), comp.proxy.map(|p| p.accuracy)),
            prediction_agreement: agreement,
        }),
        embedding_shift: Some(embedding_shift(&emb_a, &emb_b)?),
        original: orig,
        compressed: Some(comp),
    })
}

fn decoder_speed(
    model: &Path,
    options: &EvalOptions,
    device: &Device,
    speed: &SpeedOptions,
    ctx: &JobContext,
) -> Result<SpeedReport> {
    let original = measure_decoder(model, device, &options.original_load(), speed, ctx)?;
    let compressed = match &options.compressed {
        None => None,
        Some(Compressed::Folder(dir)) => Some(measure_decoder(dir, device, &options.compressed_load(), speed, ctx)?),
        Some(Compressed::InMemory(fmt)) => {
            let q: GgmlDType = parse_ggml_dtype(fmt)?;
            Some(measure_decoder(model, device, &LoadAs::Requantize(q), speed, ctx)?)
        }
    };
    Ok(SpeedReport::Decoder { original, compressed })
}

fn encoder_speed(
    model: &Path,
    samples: &SampleSet,
    options: &EvalOptions,
    device: &Device,
    speed: &SpeedOptions,
    ctx: &JobContext,
) -> Result<SpeedReport> {
    let sentences: Vec<&str> = match samples {
        SampleSet::Pairs(p) => p.iter().take(256).map(|p| p.sentence1.as_str()).collect(),
        SampleSet::Labelled(l) => l.iter().take(256).map(|l| l.text.as_str()).collect(),
        SampleSet::Text(t) => t.lines().filter(|l| !l.trim().is_empty()).take(256).collect(),
    };
    let original = measure_encoder(model, device, &sentences, speed, ctx)?;
    let compressed = match &options.compressed {
        Some(Compressed::Folder(dir)) => Some(measure_encoder(dir, device, &sentences, speed, ctx)?),
        _ => None,
    };
    Ok(SpeedReport::Encoder { original, compressed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn unknown_family_reports_proxy_metrics_are_elsewhere() {
        let dir = std::env::temp_dir().join(format!("pareto-eval-compare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), r#"{"architectures":["GPT2LMHeadModel"]}"#).unwrap();
        let r = evaluate(&dir, &EvalOptions::default(), &JobContext::silent()).unwrap();
        assert_eq!(r.family, ModelFamily::Other("GPT2LMHeadModel".into()));
        assert!(r.decoder.is_none() && r.encoder.is_none());
        assert!(r.unavailable.unwrap().contains("pareto compress"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn decoder_vs_in_memory_q8_0_with_bundled_defaults() {
        let opts = EvalOptions {
            compressed: Some(Compressed::InMemory("q8_0".into())),
            protocol: PerplexityProtocol { max_windows: Some(16), ..PerplexityProtocol::default() },
            ..EvalOptions::default()
        };
        let r = evaluate(&root().join("models/stories260K"), &opts, &JobContext::silent()).unwrap();
        assert_eq!(r.sample_kind.as_deref(), Some("text"));
        let d = r.decoder.unwrap();
        let c = d.comparison.unwrap();
        assert_eq!(c.original.windows, 16);
        assert!(c.mean_kl > 0.0 && c.mean_kl < 0.01, "{c:?}");
        assert!(c.top1_agreement > 0.95, "{c:?}");
        assert!(c.delta_nll.abs() < 0.01, "{c:?}");
        assert_eq!(d.greedy.original.len(), 61);
        let json = serde_json::to_value(&d.greedy).unwrap();
        assert!(json.get("identical").is_some());
    }

    #[test]
    fn decoder_rejects_pairs_and_self_compare_folder_has_no_shift() {
        let model = root().join("models/stories260K");
        let opts = EvalOptions { samples: Some(root().join(bundled::STSB_DEV)), ..EvalOptions::default() };
        let e = evaluate(&model, &opts, &JobContext::silent()).unwrap_err().to_string();
        assert!(e.contains("plain text"), "{e}");

        let opts = EvalOptions {
            protocol: PerplexityProtocol { max_windows: Some(4), ..PerplexityProtocol::default() },
            greedy_steps: 10,
            ..EvalOptions::default()
        };
        let r = compare(&model, &model, &opts, &JobContext::silent()).unwrap();
        let d = r.decoder.unwrap();
        let c = d.comparison.unwrap();
        assert_eq!((c.delta_nll, c.top1_agreement), (0.0, 1.0));
        assert!(d.greedy.identical && d.greedy.first_divergence.is_none());
    }

    #[test]
    fn encoder_self_compare_on_a_random_subset() {
        let model = root().join("models/all-MiniLM-L6-v2");
        let mut opts = EvalOptions::default();
        opts.sample_options.selection = crate::samples::Selection::Random { n: 40, seed: 3 };
        let r = compare(&model, &model, &opts, &JobContext::silent()).unwrap();
        let e = r.encoder.unwrap();
        assert_eq!(e.original.sts.unwrap().pairs, 40);
        let d = e.deltas.unwrap();
        assert_eq!(d.spearman, Some(0.0));
        let shift = e.embedding_shift.unwrap();
        assert!((shift.mean_cosine - 1.0).abs() < 1e-6);
        assert_eq!(shift.retrieval.unwrap().identical_sets, 1.0);
    }
}
