//! Encoder evaluations: STS (cosine of sentence embeddings vs gold scores: Spearman and Pearson
//! ×100), the zero-shot sentiment proxy on labelled texts, and the original-vs-compressed embedding
//! comparison (mean cosine, top-k retrieval agreement).

use std::collections::HashMap;
use std::time::Instant;

use pareto_core::job::JobContext;
use serde::{Deserialize, Serialize};

use crate::bert::BertEncoder;
use crate::error::{EvalError, Result};
use crate::metrics::{RetrievalAgreement, cosine, pearson, retrieval_agreement, spearman};
use crate::samples::{LabelledText, ScoredPair};

/// The two anchor sentences of the zero-shot sentiment proxy (PROVENANCE reference 4).
pub const POSITIVE_ANCHOR: &str = "This movie is great.";
pub const NEGATIVE_ANCHOR: &str = "This movie is terrible.";
/// Sentences of the retrieval-agreement corpus (the first N distinct sentences), to bound its
/// O(N²) cost.
pub const RETRIEVAL_CORPUS: usize = 1000;
/// Neighbours compared in retrieval agreement.
pub const RETRIEVAL_K: usize = 10;

/// Correlation of embedding cosine with gold scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StsResult {
    pub pairs: usize,
    /// Spearman ×100 (average ranks for ties).
    pub spearman: f64,
    /// Pearson ×100.
    pub pearson: f64,
    /// Distinct sentences embedded.
    pub sentences: usize,
    pub seconds: f64,
    pub sentences_per_s: f64,
}

/// Zero-shot proxy accuracy on binary labelled texts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProxyResult {
    pub texts: usize,
    /// Percent correct.
    pub accuracy: f64,
    pub seconds: f64,
    pub sentences_per_s: f64,
}

/// Embeddings of distinct sentences, in first-seen order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SentenceEmbeddings {
    pub sentences: Vec<String>,
    pub vectors: Vec<Vec<f32>>,
    index: HashMap<String, usize>,
}

impl SentenceEmbeddings {
    /// Embeds each distinct sentence once.
    pub fn compute<'a>(
        encoder: &BertEncoder,
        sentences: impl IntoIterator<Item = &'a str>,
        batch: usize,
        ctx: &JobContext,
    ) -> Result<Self> {
        let mut out = Self::default();
        for s in sentences {
            if !out.index.contains_key(s) {
                out.index.insert(s.to_string(), out.sentences.len());
                out.sentences.push(s.to_string());
            }
        }
        let refs: Vec<&str> = out.sentences.iter().map(String::as_str).collect();
        ctx.progress.stage("embedding sentences", refs.len() as u64);
        out.vectors = encoder.embed(&refs, batch, ctx)?;
        Ok(out)
    }

    pub fn get(&self, sentence: &str) -> Option<&[f32]> {
        self.index.get(sentence).and_then(|&i| self.vectors.get(i)).map(Vec::as_slice)
    }

    fn need(&self, sentence: &str) -> Result<&[f32]> {
        self.get(sentence).ok_or_else(|| EvalError::InvalidArgument(format!("sentence not embedded: {sentence:?}")))
    }
}

fn pair_sentences(pairs: &[ScoredPair]) -> impl Iterator<Item = &str> {
    pairs.iter().flat_map(|p| [p.sentence1.as_str(), p.sentence2.as_str()])
}

/// STS correlation from precomputed embeddings.
pub fn sts_from_embeddings(pairs: &[ScoredPair], emb: &SentenceEmbeddings) -> Result<(f64, f64)> {
    let mut cos = Vec::with_capacity(pairs.len());
    let mut gold = Vec::with_capacity(pairs.len());
    for p in pairs {
        cos.push(cosine(emb.need(&p.sentence1)?, emb.need(&p.sentence2)?));
        gold.push(p.score);
    }
    let undefined = || EvalError::InvalidArgument("correlation undefined: need 2+ pairs with varying scores".into());
    Ok((100.0 * spearman(&cos, &gold).ok_or_else(undefined)?, 100.0 * pearson(&cos, &gold).ok_or_else(undefined)?))
}

/// Embeds the pairs' sentences and correlates cosine with the gold scores.
pub fn evaluate_sts(
    encoder: &BertEncoder,
    pairs: &[ScoredPair],
    batch: usize,
    ctx: &JobContext,
) -> Result<(StsResult, SentenceEmbeddings)> {
    let start = Instant::now();
    let emb = SentenceEmbeddings::compute(encoder, pair_sentences(pairs), batch, ctx)?;
    let seconds = start.elapsed().as_secs_f64();
    let (spearman, pearson) = sts_from_embeddings(pairs, &emb)?;
    Ok((
        StsResult {
            pairs: pairs.len(),
            spearman,
            pearson,
            sentences: emb.sentences.len(),
            seconds,
            sentences_per_s: emb.sentences.len() as f64 / seconds.max(1e-12),
        },
        emb,
    ))
}

fn binary_label(t: &LabelledText) -> Result<bool> {
    match t.label.as_str() {
        "1" | "positive" | "pos" | "true" => Ok(true),
        "0" | "negative" | "neg" | "false" => Ok(false),
        other => Err(EvalError::InvalidArgument(format!(
            "line {}: label {other:?} is not binary (0/1, negative/positive)",
            t.line
        ))),
    }
}

/// Predictions (true = positive) of the zero-shot proxy: cos(x, positive anchor) > cos(x, negative
/// anchor).
pub fn proxy_predictions(emb: &SentenceEmbeddings, texts: &[LabelledText]) -> Result<Vec<bool>> {
    let pos = emb.need(POSITIVE_ANCHOR)?;
    let neg = emb.need(NEGATIVE_ANCHOR)?;
    texts
        .iter()
        .map(|t| {
            let v = emb.need(&t.text)?;
            Ok(cosine(v, pos) > cosine(v, neg))
        })
        .collect()
}

/// Zero-shot sentiment proxy (PROVENANCE reference 4) on binary labelled texts.
pub fn evaluate_proxy(
    encoder: &BertEncoder,
    texts: &[LabelledText],
    batch: usize,
    ctx: &JobContext,
) -> Result<(ProxyResult, SentenceEmbeddings, Vec<bool>)> {
    let labels = texts.iter().map(binary_label).collect::<Result<Vec<_>>>()?;
    let start = Instant::now();
    let all = [POSITIVE_ANCHOR, NEGATIVE_ANCHOR].into_iter().chain(texts.iter().map(|t| t.text.as_str()));
    let emb = SentenceEmbeddings::compute(encoder, all, batch, ctx)?;
    let seconds = start.elapsed().as_secs_f64();
    let pred = proxy_predictions(&emb, texts)?;
    let correct = pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
    Ok((
        ProxyResult {
            texts: texts.len(),
            accuracy: 100.0 * correct as f64 / texts.len().max(1) as f64,
            seconds,
            sentences_per_s: emb.sentences.len() as f64 / seconds.max(1e-12),
        },
        emb,
        pred,
    ))
}

/// How far compressed embeddings moved from the original ones on the same sentences.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingShift {
    pub sentences: usize,
    pub mean_cosine: f64,
    pub min_cosine: f64,
    /// Top-k neighbour agreement over the first [`RETRIEVAL_CORPUS`] sentences; `None` when there
    /// are too few sentences.
    pub retrieval: Option<RetrievalAgreement>,
}

/// Compares two embeddings of the same sentence list.
pub fn embedding_shift(a: &SentenceEmbeddings, b: &SentenceEmbeddings) -> Result<EmbeddingShift> {
    if a.sentences != b.sentences {
        return Err(EvalError::InvalidArgument("embedding sets cover different sentences".into()));
    }
    let cos: Vec<f64> = a.vectors.iter().zip(&b.vectors).map(|(x, y)| cosine(x, y)).collect();
    let n = a.vectors.len().min(RETRIEVAL_CORPUS);
    Ok(EmbeddingShift {
        sentences: cos.len(),
        mean_cosine: cos.iter().sum::<f64>() / cos.len().max(1) as f64,
        min_cosine: cos.iter().copied().fold(f64::INFINITY, f64::min),
        retrieval: retrieval_agreement(&a.vectors[..n], &b.vectors[..n], RETRIEVAL_K),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{SampleOptions, SampleSet, bundled, load_samples};
    use candle_core::Device;
    use std::path::{Path, PathBuf};

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn minilm_reproduces_stsb_dev_spearman_and_pearson() {
        let SampleSet::Pairs(pairs) = load_samples(&root().join(bundled::STSB_DEV), &SampleOptions::default()).unwrap()
        else {
            panic!("pairs expected")
        };
        assert_eq!(pairs.len(), 1500);
        let enc = BertEncoder::load(&root().join("models/all-MiniLM-L6-v2"), &Device::Cpu).unwrap();
        let (r, emb) = evaluate_sts(&enc, &pairs, 32, &JobContext::silent()).unwrap();
        eprintln!("STS-B dev: {r:?}");
        assert!((r.spearman - 86.72).abs() <= 0.05, "Spearman {}", r.spearman);
        assert!((r.pearson - 86.96).abs() <= 0.05, "Pearson {}", r.pearson);
        let same = embedding_shift(&emb, &emb).unwrap();
        assert!((same.mean_cosine - 1.0).abs() < 1e-6);
        assert_eq!(same.retrieval.map(|r| r.overlap_at_k), Some(1.0));
    }

    #[test]
    fn minilm_sst2_zero_shot_proxy_reproduces_69_27() {
        let SampleSet::Labelled(rows) =
            load_samples(&root().join(bundled::SST2_DEV), &SampleOptions::default()).unwrap()
        else {
            panic!("labelled expected")
        };
        let enc = BertEncoder::load(&root().join("models/all-MiniLM-L6-v2"), &Device::Cpu).unwrap();
        let (r, _, _) = evaluate_proxy(&enc, &rows, 32, &JobContext::silent()).unwrap();
        eprintln!("SST-2 proxy: {r:?}");
        assert_eq!(r.texts, 872);
        assert!((r.accuracy - 69.27).abs() < 0.06, "accuracy {}", r.accuracy);
    }
}
