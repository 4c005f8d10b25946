//! BERT-style sentence encoder (e.g. all-MiniLM-L6-v2) on candle-transformers' `bert`: mean pooling
//! over the attention mask, then L2 normalisation. The tokenizer comes from the model's
//! tokenizer.json with truncation at 256 and batch-longest padding (overriding any fixed padding
//! the file ships, e.g. MiniLM's Fixed(128)).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use pareto_core::job::JobContext;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::bert_packed::PackedBert;
use crate::error::{CandleContext, EvalError, Result};
use crate::weights::{load_tensors, read_config, tokenizer_path};

/// Longest input in tokens (special tokens included); longer sentences are truncated.
pub const MAX_TOKENS: usize = 256;
/// Sentences per forward pass.
pub const DEFAULT_BATCH: usize = 32;

/// A loaded encoder with its tokenizer.
pub struct BertEncoder {
    forward: Forward,
    tokenizer: Tokenizer,
    device: Device,
    dir: PathBuf,
    hidden_size: usize,
    load_time: Duration,
}

/// Which forward pass computes the embeddings.
enum Forward {
    /// The CPU: sentences packed without padding ([`crate::bert_packed`]).
    Packed(PackedBert),
    /// Other devices: candle-transformers' model over padded batches.
    Padded(BertModel),
}

impl std::fmt::Debug for BertEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEncoder")
            .field("dir", &self.dir)
            .field("hidden_size", &self.hidden_size)
            .finish_non_exhaustive()
    }
}

/// Loads a tokenizer.json and sets truncation at [`MAX_TOKENS`] and batch-longest padding.
pub fn load_bert_tokenizer(path: &Path) -> Result<Tokenizer> {
    let terr = |message: String| EvalError::Tokenizer { path: path.to_path_buf(), message };
    let bytes = pareto_core::bounded::read(path, pareto_core::bounded::TOKENIZER_CAP, "tokenizer.json")?;
    let mut tok = Tokenizer::from_bytes(bytes).map_err(|e| terr(e.to_string()))?;
    let pad = tok.get_padding().cloned().unwrap_or_default();
    tok.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..pad }));
    tok.with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..TruncationParams::default() }))
        .map_err(|e| terr(e.to_string()))?;
    Ok(tok)
}

impl BertEncoder {
    /// Loads weights (any float dtype, computed in F32) and tokenizer from `dir`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_with_tokenizer_fallback(dir, None, device)
    }

    /// As [`Self::load`], taking tokenizer.json from `fallback` when `dir` has none (a compressed
    /// folder written without tokenizer files).
    pub fn load_with_tokenizer_fallback(dir: &Path, fallback: Option<&Path>, device: &Device) -> Result<Self> {
        let start = Instant::now();
        let (config_path, json) = read_config(dir)?;
        let config: Config = serde_json::from_value(json)
            .map_err(|e| EvalError::Config { path: config_path.clone(), message: e.to_string() })?;
        let tokenizer = load_bert_tokenizer(&tokenizer_path(dir, fallback)?)?;
        let tensors = load_tensors(dir, device)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let forward = if device.is_cpu() {
            Forward::Packed(PackedBert::load(vb, &config, &config_path)?)
        } else {
            Forward::Padded(
                BertModel::load(vb, &config).ctx(|| format!("building the BERT model from {}", dir.display()))?,
            )
        };
        Ok(Self {
            forward,
            tokenizer,
            device: device.clone(),
            dir: dir.to_path_buf(),
            hidden_size: config.hidden_size,
            load_time: start.elapsed(),
        })
    }

    /// Wall time of [`Self::load`] (config, tokenizer, weights, model).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Embeds one batch: mean-pooled over the attention mask, L2-normalised, one row per sentence.
    pub fn embed_batch(&self, sentences: &[&str]) -> Result<Vec<Vec<f32>>> {
        if sentences.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(sentences.to_vec(), true)
            .map_err(|e| EvalError::Tokenizer { path: self.dir.join("tokenizer.json"), message: e.to_string() })?;
        let model = match &self.forward {
            Forward::Packed(packed) => {
                // Padding dropped: the tokens the attention mask keeps, at positions from 0.
                let ids: Vec<Vec<u32>> = encodings
                    .iter()
                    .map(|e| {
                        e.get_ids()
                            .iter()
                            .zip(e.get_attention_mask())
                            .filter(|(_, m)| **m == 1)
                            .map(|(i, _)| *i)
                            .collect()
                    })
                    .collect();
                let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
                return packed.embed(&refs);
            }
            Forward::Padded(model) => model,
        };
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(sentences.len() * len);
        let mut mask = Vec::with_capacity(sentences.len() * len);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let shape = (sentences.len(), len);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let types = ids.zeros_like()?;
        let hidden = model.forward(&ids, &types, Some(&mask)).ctx(|| "BERT forward pass".to_string())?;
        let maskf = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&maskf)?.sum(1)?;
        let counts = maskf.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let unit = mean.broadcast_div(&norm)?;
        Ok(unit.to_vec2::<f32>()?)
    }

    /// Embeds all sentences in batches of `batch_size`, grouping sentences of similar length to
    /// limit padding; rows come back in input order. Checks for cancellation between batches and
    /// advances progress by the number of sentences.
    pub fn embed(&self, sentences: &[&str], batch_size: usize, ctx: &JobContext) -> Result<Vec<Vec<f32>>> {
        let batch_size = batch_size.max(1);
        let mut order: Vec<usize> = (0..sentences.len()).collect();
        order.sort_by_key(|&i| sentences[i].len());
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); sentences.len()];
        for chunk in order.chunks(batch_size) {
            if ctx.cancel.is_cancelled() {
                return Err(EvalError::Cancelled);
            }
            let batch: Vec<&str> = chunk.iter().map(|&i| sentences[i]).collect();
            let rows = self.embed_batch(&batch)?;
            for (&i, row) in chunk.iter().zip(rows) {
                out[i] = row;
            }
            ctx.progress.advance(chunk.len() as u64, "sentences");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minilm() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2")
    }

    #[test]
    fn tokenizer_pads_to_the_batch_longest_and_truncates_at_256() {
        let tok = load_bert_tokenizer(&minilm().join("tokenizer.json")).unwrap();
        let enc = tok.encode_batch(vec!["a b", "a b c d"], true).unwrap();
        assert_eq!(enc[0].get_ids().len(), 6, "[CLS] a b c d [SEP]");
        assert_eq!(enc[0].get_attention_mask(), &[1, 1, 1, 1, 0, 0]);
        let long = "word ".repeat(400);
        let enc = tok.encode(long.as_str(), true).unwrap();
        assert_eq!(enc.get_ids().len(), MAX_TOKENS);
    }

    #[test]
    fn embeddings_are_unit_length_and_independent_of_padding() {
        let enc = BertEncoder::load(&minilm(), &Device::Cpu).unwrap();
        let ctx = JobContext::silent();
        let alone = enc.embed(&["A man is playing a guitar."], 8, &ctx).unwrap();
        let padded = enc
            .embed_batch(&[
                "A man is playing a guitar.",
                "A much longer sentence that forces the first one to be padded quite a lot.",
            ])
            .unwrap();
        assert_eq!(alone[0].len(), 384);
        let norm: f32 = alone[0].iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        let cos = crate::metrics::cosine(&alone[0], &padded[0]);
        assert!(cos > 0.99999, "padding changed the embedding: cos {cos}");
        let other = crate::metrics::cosine(&padded[0], &padded[1]);
        assert!(other < 0.9, "different sentences should differ: cos {other}");
    }
}
