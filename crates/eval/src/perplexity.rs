//! Perplexity of a decoder on plain text, and the distribution shift of a compressed decoder vs its
//! original (KL divergence, top-1 agreement), by the PROVENANCE protocol: the first `max_chars`
//! Unicode characters, tokenized with the model's tokenizer.json without BOS, cut into
//! non-overlapping windows of `window` tokens; each window is scored as `[BOS] + window[..-1]`
//! predicting all `window` tokens.

use std::path::Path;
use std::time::Instant;

use candle_core::{D, Tensor};
use pareto_core::job::JobContext;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::error::{EvalError, Result};
use crate::llama::{LlamaModel, LmHead};

/// How text is turned into scored windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerplexityProtocol {
    /// Keep the first N Unicode characters of the text (`None`: all of it).
    pub max_chars: Option<usize>,
    /// Tokens per window; each window is one forward pass of `window` positions.
    pub window: usize,
    /// Keep at most this many windows (`None`: all).
    pub max_windows: Option<usize>,
    /// Windows per forward pass (throughput only; results do not depend on it).
    pub batch: usize,
    /// How each window is fed and which of its tokens are scored.
    #[serde(default)]
    pub scoring: Scoring,
}

/// How a window is fed and scored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scoring {
    /// Pareto's (the PROVENANCE protocol): BOS then the window's first `window − 1` tokens in,
    /// every one of its `window` tokens scored.
    #[default]
    Windows,
    /// llama.cpp's `llama-perplexity -c window`: the window itself in (its first token replaced by
    /// BOS when the tokenizer adds one, which the caller signals by a token stream that starts
    /// with BOS), only the second half scored: positions `window/2 … window−2` predicting the
    /// token after each.
    LlamaCpp,
}

impl Scoring {
    pub fn parse(s: &str) -> Option<Scoring> {
        match s {
            "pareto" | "windows" => Some(Scoring::Windows),
            "llama.cpp" | "llama-cpp" | "llamacpp" => Some(Scoring::LlamaCpp),
            _ => None,
        }
    }

    /// (first scored position, positions scored) of a window of `w` tokens.
    fn scored(self, w: usize) -> (usize, usize) {
        match self {
            Scoring::Windows => (0, w),
            Scoring::LlamaCpp => (w / 2, w.saturating_sub(1 + w / 2)),
        }
    }
}

impl Default for PerplexityProtocol {
    /// The PROVENANCE protocol: 65,536 characters, windows of 256.
    fn default() -> Self {
        Self { max_chars: Some(65_536), window: 256, max_windows: None, batch: 8, scoring: Scoring::Windows }
    }
}

/// Perplexity of one model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PerplexityResult {
    /// Tokens in the (cut) text.
    pub tokens: usize,
    pub windows: usize,
    /// Targets scored (`windows × window`).
    pub scored: usize,
    /// Mean negative log-likelihood in nats per token.
    pub mean_nll: f64,
    pub perplexity: f64,
    /// Wall time of the forward passes and scoring.
    pub seconds: f64,
    /// Scored tokens per second.
    pub tokens_per_s: f64,
}

/// Original vs compressed on the same windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DecoderComparison {
    pub original: PerplexityResult,
    pub compressed: PerplexityResult,
    /// Mean over scored positions of KL(original ‖ compressed), nats.
    pub mean_kl: f64,
    /// Standard error of `mean_kl`, from the spread of the windows' means (windows of unrelated
    /// text are the independent samples; neighbouring positions are not). 0 with one window.
    #[serde(default)]
    pub kl_stderr: f64,
    /// Largest per-position KL.
    pub max_kl: f64,
    /// Fraction of positions where both models' argmax agree.
    pub top1_agreement: f64,
    /// compressed.mean_nll − original.mean_nll.
    pub delta_nll: f64,
    /// compressed.perplexity / original.perplexity − 1.
    pub relative_ppl_change: f64,
}

/// Loads a tokenizer.json as is (no truncation, no padding changes).
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    let bytes = pareto_core::bounded::read(path, pareto_core::bounded::TOKENIZER_CAP, "tokenizer.json")?;
    Tokenizer::from_bytes(bytes).map_err(|e| EvalError::Tokenizer { path: path.to_path_buf(), message: e.to_string() })
}

/// Whether the tokenizer puts `bos` first when asked for special tokens (its post-processor or
/// tokenizer_config's add_bos_token), as llama.cpp's `add_bos` says for a GGUF.
pub fn adds_bos(tokenizer: &Tokenizer, bos: u32) -> Result<bool> {
    let enc = |special| {
        tokenizer
            .encode("a", special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| EvalError::Tokenizer { path: "tokenizer.json".into(), message: e.to_string() })
    };
    Ok(enc(true)?.first() == Some(&bos) && enc(false)?.first() != Some(&bos))
}

/// Tokenizes `text` without special tokens (no BOS).
pub fn tokenize(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    tokenize_up_to(tokenizer, text, usize::MAX)
}

/// Texts longer than this are tokenized in pieces: the tokenizer's working memory grows by tens of
/// bytes per character (a 50 MB single-line text in one call took 4 GB). Pieces end at a line
/// break, else a space, so only the first token of each piece can differ from a one-call encode
/// (a piece starts as a text does); texts up to this size, the reference protocol's included, are
/// encoded in one call exactly as before.
const TOKENIZE_PIECE: usize = 1 << 20;

/// [`tokenize`], stopping once `max_tokens` are there (an evaluation that keeps N windows needs no
/// more of the text).
pub fn tokenize_up_to(tokenizer: &Tokenizer, text: &str, max_tokens: usize) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    let mut rest = text;
    while !rest.is_empty() && ids.len() < max_tokens {
        let (piece, tail) = rest.split_at(piece_end(rest, TOKENIZE_PIECE));
        let enc = tokenizer
            .encode(piece, false)
            .map_err(|e| EvalError::Tokenizer { path: "tokenizer.json".into(), message: e.to_string() })?;
        ids.extend_from_slice(enc.get_ids());
        rest = tail;
    }
    Ok(ids)
}

/// Where the next piece of at most `max` bytes ends: after its last line break, else its last
/// space, else at the last character boundary (one endless word).
fn piece_end(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let head = s.get(..end).unwrap_or_default();
    head.rfind('\n').or_else(|| head.rfind(' ')).map(|i| i + 1).filter(|&i| i > 0).unwrap_or(end)
}

/// The full windows of the token stream under `protocol`.
pub fn windows<'a>(tokens: &'a [u32], protocol: &PerplexityProtocol) -> Vec<&'a [u32]> {
    tokens.chunks_exact(protocol.window.max(1)).take(protocol.max_windows.unwrap_or(usize::MAX)).collect()
}

fn check(tokens: &[u32], protocol: &PerplexityProtocol) -> Result<()> {
    if protocol.window < 1 {
        return Err(EvalError::InvalidArgument("window must be at least 1 token".into()));
    }
    if tokens.len() < protocol.window {
        return Err(EvalError::InvalidArgument(format!(
            "the text has {} tokens, fewer than one window of {}",
            tokens.len(),
            protocol.window
        )));
    }
    Ok(())
}

/// A batch of windows → (input ids `[n, window]`, targets `[n, scored]`) under `protocol`'s scoring.
/// `bos_first`: the token stream starts with BOS (llama.cpp scoring then puts BOS first in every
/// window, as llama-perplexity does when the tokenizer adds one).
fn batch_tensors(
    model: &LlamaModel,
    batch: &[&[u32]],
    protocol: &PerplexityProtocol,
    bos_first: bool,
) -> Result<(Tensor, Tensor)> {
    let w = batch.first().map_or(0, |c| c.len());
    let bos = model.config().bos();
    let (first, count) = protocol.scoring.scored(w);
    let mut input = Vec::with_capacity(batch.len() * w);
    let mut target = Vec::with_capacity(batch.len() * count);
    for chunk in batch {
        match protocol.scoring {
            Scoring::Windows => {
                input.push(bos);
                input.extend_from_slice(&chunk[..w - 1]);
                target.extend_from_slice(chunk);
            }
            Scoring::LlamaCpp => {
                let start = input.len();
                input.extend_from_slice(chunk);
                if bos_first && let Some(t) = input.get_mut(start) {
                    *t = bos;
                }
                target.extend_from_slice(&chunk[first + 1..first + 1 + count]);
            }
        }
    }
    let dev = model.device();
    Ok((Tensor::from_vec(input, (batch.len(), w), dev)?, Tensor::from_vec(target, (batch.len(), count), dev)?))
}

/// Logits `[n, scored, vocab]` of the scored positions of a batch's logits `[n, window, vocab]`.
fn scored_logits(logits: &Tensor, protocol: &PerplexityProtocol) -> Result<Tensor> {
    let w = logits.dim(1)?;
    let (first, count) = protocol.scoring.scored(w);
    Ok(if count == w { logits.clone() } else { logits.narrow(1, first, count)? })
}

fn finish(tokens: usize, windows: usize, scored: usize, nll: f64, seconds: f64) -> PerplexityResult {
    let mean_nll = nll / scored.max(1) as f64;
    PerplexityResult {
        tokens,
        windows,
        scored,
        mean_nll,
        perplexity: mean_nll.exp(),
        seconds,
        tokens_per_s: scored as f64 / seconds.max(1e-12),
    }
}

/// Perplexity of `model` on `tokens` (already tokenized, no BOS).
pub fn perplexity(
    model: &LlamaModel,
    tokens: &[u32],
    protocol: &PerplexityProtocol,
    ctx: &JobContext,
) -> Result<PerplexityResult> {
    original_pass(model, tokens, protocol, &mut |_| Ok(()), ctx)
}

/// The original's side of a comparison, batch by batch: its last layer's output for a batch of
/// windows (computed, or kept from an earlier run) and the head that turns it into logits.
pub struct OriginalSide<'a> {
    /// Hidden states `[n, window, hidden]` of the `n` windows from window `first` on, given their
    /// input ids `[n, window]`.
    pub hidden: &'a mut dyn FnMut(usize, &Tensor) -> Result<Tensor>,
    pub head: &'a LmHead,
}

/// A model's pass on its own: its perplexity, every batch's hidden states handed to `keep`
/// (windows in order; the original's, for a later [`compare_to_original`]).
pub fn original_pass(
    original: &LlamaModel,
    tokens: &[u32],
    protocol: &PerplexityProtocol,
    keep: &mut dyn FnMut(&Tensor) -> Result<()>,
    ctx: &JobContext,
) -> Result<PerplexityResult> {
    check(tokens, protocol)?;
    let wins = windows(tokens, protocol);
    let bos_first = tokens.first() == Some(&original.config().bos());
    let head = original.lm_head()?;
    ctx.progress.stage("perplexity", wins.len() as u64);
    let start = Instant::now();
    let mut nll = 0.0;
    for batch in wins.chunks(protocol.batch.max(1)) {
        if ctx.cancel.is_cancelled() {
            return Err(EvalError::Cancelled);
        }
        let (input, target) = batch_tensors(original, batch, protocol, bos_first)?;
        let x = original.hidden(&input)?;
        nll += crate::logits::nll(&scored_logits(&head.logits(&x)?, protocol)?, &target)?;
        keep(&x)?;
        ctx.progress.advance(batch.len() as u64, "windows");
    }
    let scored = wins.len() * protocol.scoring.scored(protocol.window).1;
    Ok(finish(tokens.len(), wins.len(), scored, nll, start.elapsed().as_secs_f64()))
}

/// Runs both models on the same windows: perplexity of each, KL(original ‖ compressed) and top-1
/// agreement of the next-token distributions at every scored position.
pub fn compare_decoders(
    original: &LlamaModel,
    compressed: &LlamaModel,
    tokens: &[u32],
    protocol: &PerplexityProtocol,
    ctx: &JobContext,
) -> Result<DecoderComparison> {
    let head = original.lm_head()?;
    let mut hidden = |_: usize, input: &Tensor| original.hidden(input);
    compare_to_original(OriginalSide { hidden: &mut hidden, head: &head }, compressed, tokens, protocol, ctx)
}

/// [`compare_decoders`] with the original's side given as its hidden states and head, so they can
/// come from an earlier run (see [`crate::baseline`]); the numbers are the same either way.
pub fn compare_to_original(
    original: OriginalSide<'_>,
    compressed: &LlamaModel,
    tokens: &[u32],
    protocol: &PerplexityProtocol,
    ctx: &JobContext,
) -> Result<DecoderComparison> {
    check(tokens, protocol)?;
    let wins = windows(tokens, protocol);
    let bos_first = tokens.first() == Some(&compressed.config().bos());
    ctx.progress.stage("perplexity + KL (original vs compressed)", wins.len() as u64);
    let (mut nll_a, mut nll_b, mut sec_a, mut sec_b) = (0.0, 0.0, 0.0, 0.0);
    let (mut kl_sum, mut kl_max, mut agree) = (0.0f64, 0.0f64, 0usize);
    let mut window_kl = Vec::with_capacity(wins.len());
    let mut first = 0;
    for batch in wins.chunks(protocol.batch.max(1)) {
        if ctx.cancel.is_cancelled() {
            return Err(EvalError::Cancelled);
        }
        let (input, target) = batch_tensors(compressed, batch, protocol, bos_first)?;
        let t = Instant::now();
        let lp = scored_logits(&original.head.logits(&(original.hidden)(first, &input)?)?, protocol)?;
        if lp.dim(D::Minus1)? != compressed.config().vocab_size {
            return Err(EvalError::InvalidArgument(format!(
                "vocabularies differ: {} vs {}",
                lp.dim(D::Minus1)?,
                compressed.config().vocab_size
            )));
        }
        // The original's scoring is timed with its share of the comparison; the forward pass
        // dominates either side.
        sec_a += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let lq = scored_logits(&compressed.forward(&input, None, None)?, protocol)?;
        for w in 0..batch.len() {
            let (p, q, next) = (lp.narrow(0, w, 1)?, lq.narrow(0, w, 1)?, target.narrow(0, w, 1)?);
            let sums = crate::logits::compare(&p, &q, &next)?;
            (nll_a, nll_b) = (nll_a + sums.nll_p, nll_b + sums.nll_q);
            (kl_sum, kl_max, agree) = (kl_sum + sums.kl, kl_max.max(sums.kl_max), agree + sums.agree);
            window_kl.push(sums.kl / sums.rows.max(1) as f64);
        }
        sec_b += t.elapsed().as_secs_f64();
        first += batch.len();
        ctx.progress.advance(batch.len() as u64, "windows");
    }
    let scored = wins.len() * protocol.scoring.scored(protocol.window).1;
    let original = finish(tokens.len(), wins.len(), scored, nll_a, sec_a);
    let compressed = finish(tokens.len(), wins.len(), scored, nll_b, sec_b);
    Ok(DecoderComparison {
        mean_kl: kl_sum / scored.max(1) as f64,
        kl_stderr: standard_error(&window_kl),
        max_kl: kl_max,
        top1_agreement: agree as f64 / scored.max(1) as f64,
        delta_nll: compressed.mean_nll - original.mean_nll,
        relative_ppl_change: compressed.perplexity / original.perplexity - 1.0,
        original,
        compressed,
    })
}

/// Standard error of the mean of `xs` (sample standard deviation / √n); 0 below two samples.
fn standard_error(xs: &[f64]) -> f64 {
    crate::metrics::Summary::of(xs).map_or(0.0, |s| s.standard_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{SampleLimits, bundled, read_text};
    use candle_core::Device;
    use candle_core::quantized::GgmlDType;
    use std::path::PathBuf;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn protocol_tokens() -> Vec<u32> {
        let text = read_text(&root().join(bundled::TINYSTORIES), &SampleLimits::default(), Some(65_536)).unwrap();
        assert_eq!(text.chars().count(), 65_536);
        let tok = load_tokenizer(&root().join("models/stories260K/tokenizer.json")).unwrap();
        tokenize(&tok, &text).unwrap()
    }

    #[test]
    fn tokenizing_the_protocol_text_gives_31401_tokens_without_bos() {
        let tokens = protocol_tokens();
        assert_eq!(tokens.len(), 31_401);
        assert_ne!(tokens[0], 1, "no BOS");
        assert!(tokens.contains(&13), "newline falls back to byte token 3 + 0x0A");
        assert_eq!(windows(&tokens, &PerplexityProtocol::default()).len(), 122);
    }

    #[test]
    fn stories260k_nll_reproduces_the_reference() {
        let model = LlamaModel::load(&root().join("models/stories260K"), &Device::Cpu).unwrap();
        let r = perplexity(&model, &protocol_tokens(), &PerplexityProtocol::default(), &JobContext::silent()).unwrap();
        assert_eq!((r.windows, r.scored), (122, 31_232));
        let rel = (r.mean_nll / 1.520419 - 1.0).abs();
        assert!(rel < 1e-3, "mean NLL {} vs 1.520419 (rel {rel:e})", r.mean_nll);
        assert!((r.perplexity / 4.574144 - 1.0).abs() < 1e-3, "PPL {}", r.perplexity);
        eprintln!("stories260K: NLL {:.6} PPL {:.6} {:.0} tok/s", r.mean_nll, r.perplexity, r.tokens_per_s);
    }

    #[test]
    fn batch_size_does_not_change_the_result() {
        let model = LlamaModel::load(&root().join("models/stories260K"), &Device::Cpu).unwrap();
        let tokens = protocol_tokens();
        let p1 = PerplexityProtocol { max_windows: Some(6), batch: 1, ..PerplexityProtocol::default() };
        let p3 = PerplexityProtocol { batch: 3, ..p1 };
        let a = perplexity(&model, &tokens, &p1, &JobContext::silent()).unwrap();
        let b = perplexity(&model, &tokens, &p3, &JobContext::silent()).unwrap();
        assert!((a.mean_nll - b.mean_nll).abs() < 1e-5, "{} vs {}", a.mean_nll, b.mean_nll);
    }

    #[test]
    fn self_comparison_has_zero_kl_and_full_agreement_and_q4_0_moves() {
        let dir = root().join("models/stories260K");
        let model = LlamaModel::load(&dir, &Device::Cpu).unwrap();
        let tokens = protocol_tokens();
        let p = PerplexityProtocol { max_windows: Some(8), ..PerplexityProtocol::default() };
        let same = compare_decoders(&model, &model, &tokens, &p, &JobContext::silent()).unwrap();
        assert!(same.mean_kl < 1e-6 && same.max_kl < 1e-5, "{same:?}");
        assert_eq!(same.top1_agreement, 1.0);
        assert_eq!(same.delta_nll, 0.0);

        let q4 = LlamaModel::load_quantized(&dir, &Device::Cpu, GgmlDType::Q4_0).unwrap();
        let moved = compare_decoders(&model, &q4, &tokens, &p, &JobContext::silent()).unwrap();
        assert!(moved.mean_kl > 1e-4, "{moved:?}");
        // Eight windows of different text: a spread, well below the mean itself.
        assert!(moved.kl_stderr > 0.0 && moved.kl_stderr < moved.mean_kl / 2.0, "{moved:?}");
        assert!(same.kl_stderr < 1e-6, "{same:?}");
        assert!(moved.top1_agreement < 1.0 && moved.top1_agreement > 0.5, "{moved:?}");
        assert!(moved.delta_nll > 0.0, "{moved:?}");
        eprintln!("q4_0 vs f32 on 8 windows: {moved:?}");
    }

    #[test]
    fn the_standard_error_is_the_spread_over_root_n() {
        let se = standard_error(&[1.0, 2.0, 3.0, 4.0]);
        assert!((se - (5.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-12, "{se}");
        assert_eq!(standard_error(&[0.3]), 0.0);
        assert!(standard_error(&[0.2, 0.2, 0.2]) < 1e-15);
    }

    #[test]
    fn too_short_text_is_a_clear_error() {
        let model = LlamaModel::load(&root().join("models/stories260K"), &Device::Cpu).unwrap();
        let e = perplexity(&model, &[5; 10], &PerplexityProtocol::default(), &JobContext::silent()).unwrap_err();
        assert!(e.to_string().contains("fewer than one window of 256"), "{e}");
    }

    #[test]
    fn long_texts_are_cut_at_line_breaks_spaces_or_char_boundaries() {
        let lines = "one line of text\n".repeat(10);
        assert_eq!(piece_end(&lines, 1000), lines.len(), "short texts are one piece");
        assert_eq!(piece_end(&lines, 40), 34, "after the last line break within the limit");
        assert_eq!(piece_end("aaaa bbbb cccc", 11), 10, "else after the last space");
        let word = "é".repeat(10);
        assert_eq!(piece_end(&word, 5), 4, "else at a character boundary");
    }

    #[test]
    fn tokenizing_stops_once_enough_tokens_are_there() {
        let tok = load_tokenizer(&root().join("models/stories260K/tokenizer.json")).unwrap();
        let text = "Once upon a time there was a little girl.\n".repeat(60_000); // 2.6 MB: 3 pieces
        let some = tokenize_up_to(&tok, &text, 100).unwrap();
        let all = tokenize(&tok, &text).unwrap();
        assert!(some.len() >= 100 && some.len() < all.len() / 2, "{} of {}", some.len(), all.len());
        assert_eq!(some[..100], all[..100]);
    }
}
