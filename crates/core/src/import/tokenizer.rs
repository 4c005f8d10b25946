//! `tokenizer.ggml.*` → tokenizer.json + tokenizer_config.json: the inverse of
//! `export::gguf::tokenizer`, for the two tokenizer models real GGUFs carry.
//!
//! - `gpt2` (byte-level BPE): vocabulary and merges as stored; the pre-tokenizer is rebuilt from
//!   `tokenizer.ggml.pre` as the tokenizers-library pipeline that splits text the way llama.cpp's
//!   pre-type does (src/llama-vocab.cpp `regex_exprs`); a pre-type without one is refused by name.
//! - `llama` (SentencePiece): a BPE with byte fallback whose merges come from the piece scores,
//!   the construction transformers' GGUF converter and the tokenizers library's
//!   SentencePieceExtractor use (every split of a piece into two vocabulary pieces, ordered by
//!   the piece's score, stable by id).
//!
//! - `bert` (WordPiece): the converter's "phantom space" pieces turned back (a U+2581 prefix marks a
//!   word start, anything else was a `##` continuation; CONTROL pieces are as stored), with BERT's
//!   normalizer, pre-tokenizer, `[CLS] $A [SEP]` template and WordPiece decoder.
//!
//! CONTROL pieces become special added tokens, USER_DEFINED ones non-special added tokens.

use serde_json::{Value, json};

use super::Meta;
use crate::error::Result;
use crate::export::gguf::tokenizer::{BYTE, CONTROL, USER_DEFINED, split_regex};

/// tokenizer.json and tokenizer_config.json for the GGUF's vocabulary.
pub struct Rebuilt {
    pub tokenizer: Value,
    pub config: Value,
    /// Tokens in the vocabulary (to check against the embedding rows).
    pub vocab_size: usize,
}

/// (llama.cpp pre-type, tokenizers pre_tokenizer, whether merges are skipped for whole-vocabulary
/// words as llama.cpp's `ignore_merges` does).
fn byte_level_pre(pre: &str) -> Option<(Value, bool)> {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    let split = |regex: &str| {
        json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
            byte_level(false)
        ]})
    };
    Some(match pre {
        // GPT-2's own regex is ByteLevel's built-in one.
        "gpt-2" | "default" => (byte_level(true), false),
        // SmolLM: single digits first, then GPT-2's regex (llama.cpp LLAMA_VOCAB_PRE_TYPE_SMOLLM).
        "smollm" => (
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true}, byte_level(true)
            ]}),
            false,
        ),
        "llama-bpe" | "llama3" | "llama-v3" => (split(split_regex("llama-bpe")?), true),
        "qwen2" => (split(split_regex("qwen2")?), false),
        "tekken" => (split(split_regex("tekken")?), true),
        _ => return None,
    })
}

/// The pre-types [`byte_level_pre`] rebuilds, for error messages.
const PRE_SUPPORTED: &str = "gpt-2, default, smollm, llama-bpe, qwen2, tekken";

pub fn rebuild(meta: &Meta<'_>) -> Result<Rebuilt> {
    let bad = |problem: String| meta.unsupported(format!("its tokenizer cannot be rebuilt: {problem}"));
    let model = meta.str("tokenizer.ggml.model").ok_or_else(|| bad("no tokenizer.ggml.model".into()))?;
    let tokens = meta.strings("tokenizer.ggml.tokens").ok_or_else(|| bad("no tokenizer.ggml.tokens".into()))?;
    let types = meta.ints("tokenizer.ggml.token_type").unwrap_or_default();
    if !types.is_empty() && types.len() != tokens.len() {
        return Err(bad(format!("{} token types for {} tokens", types.len(), tokens.len())));
    }
    let ty = |id: usize| types.get(id).copied().unwrap_or(1);
    let id_key = |key: &str| meta.u64(key).and_then(|i| usize::try_from(i).ok()).filter(|&i| i < tokens.len());
    let (bos, eos, unk, pad) = (
        id_key("tokenizer.ggml.bos_token_id"),
        id_key("tokenizer.ggml.eos_token_id"),
        id_key("tokenizer.ggml.unknown_token_id"),
        id_key("tokenizer.ggml.padding_token_id"),
    );
    // BERT's separator: its own key, else the EOS the converter makes of it.
    let sep = id_key("tokenizer.ggml.seperator_token_id").or(eos);
    // WordPiece's pieces in their tokenizer.json spelling; the other models store them as they are.
    let owned: Vec<String> = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| match (model, t.strip_prefix('\u{2581}')) {
            ("bert", _) if ty(id) == CONTROL => t.to_string(),
            ("bert", Some(word)) => word.to_string(),
            ("bert", None) => format!("##{t}"),
            _ => t.to_string(),
        })
        .collect();
    let tokens: Vec<&str> = owned.iter().map(String::as_str).collect();
    let added: Vec<Value> = tokens
        .iter()
        .enumerate()
        .filter(|&(id, _)| matches!(ty(id), CONTROL | USER_DEFINED) || Some(id) == unk)
        .map(|(id, t)| {
            let special = ty(id) != USER_DEFINED;
            json!({"id": id, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": !special, "special": special})
        })
        .collect();
    let vocab: serde_json::Map<String, Value> =
        tokens.iter().enumerate().map(|(id, t)| (t.to_string(), json!(id))).collect();
    if vocab.len() != tokens.len() {
        return Err(bad(format!("{} tokens but only {} distinct pieces", tokens.len(), vocab.len())));
    }
    let default_bos = model == "llama";
    let add_bos = meta.bool("tokenizer.ggml.add_bos_token").unwrap_or(default_bos) && bos.is_some();
    let add_eos = meta.bool("tokenizer.ggml.add_eos_token").unwrap_or(false) && eos.is_some();
    let post = post_processor(&tokens, add_bos.then_some(bos).flatten(), add_eos.then_some(eos).flatten());
    let tokenizer = match model {
        "gpt2" => {
            let pre_name = meta.str("tokenizer.ggml.pre").unwrap_or("default");
            let (pre, ignore_merges) = byte_level_pre(pre_name).ok_or_else(|| {
                bad(format!("pre-tokenizer {pre_name:?} is not one Pareto rebuilds ({PRE_SUPPORTED})"))
            })?;
            let merges = meta.strings("tokenizer.ggml.merges").ok_or_else(|| bad("BPE without merges".into()))?;
            let byte_level =
                json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true});
            json!({
                "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
                "normalizer": null, "pre_tokenizer": pre,
                "post_processor": post.unwrap_or(byte_level.clone()),
                "decoder": byte_level,
                "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                          "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                          "ignore_merges": ignore_merges, "vocab": vocab, "merges": merges}
            })
        }
        "llama" => {
            let scores =
                meta.floats("tokenizer.ggml.scores").ok_or_else(|| bad("SentencePiece without scores".into()))?;
            if scores.len() != tokens.len() {
                return Err(bad(format!("{} scores for {} tokens", scores.len(), tokens.len())));
            }
            let merges = spm_merges(&tokens, &scores, |id| ty(id) == 1);
            let space_prefix = meta.bool("tokenizer.ggml.add_space_prefix").unwrap_or(true);
            let mut normalizers = Vec::new();
            if space_prefix {
                normalizers.push(json!({"type": "Prepend", "prepend": "\u{2581}"}));
            }
            normalizers.push(json!({"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}));
            let mut decoders = vec![
                json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}),
                json!({"type": "ByteFallback"}),
                json!({"type": "Fuse"}),
            ];
            if space_prefix {
                decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
            }
            let has_bytes = (0..tokens.len()).any(|id| ty(id) == BYTE);
            json!({
                "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
                "normalizer": {"type": "Sequence", "normalizers": normalizers}, "pre_tokenizer": null,
                "post_processor": post, "decoder": {"type": "Sequence", "decoders": decoders},
                "model": {"type": "BPE", "dropout": null, "unk_token": unk.map(|i| tokens[i]),
                          "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": true,
                          "byte_fallback": has_bytes, "ignore_merges": false, "vocab": vocab, "merges": merges}
            })
        }
        "bert" => {
            let cls = bos.ok_or_else(|| bad("WordPiece without a [CLS] (bos) token".into()))?;
            let sep = sep.ok_or_else(|| bad("WordPiece without a [SEP] (separator or eos) token".into()))?;
            let lowercase = meta.bool("tokenizer.ggml.normalizer.lowercase").unwrap_or(true);
            let strip = meta.bool("tokenizer.ggml.normalizer.strip_accents").map_or(Value::Null, |b| json!(b));
            json!({
                "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
                "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                               "strip_accents": strip, "lowercase": lowercase},
                "pre_tokenizer": {"type": "BertPreTokenizer"},
                "post_processor": bert_template(&tokens, cls, sep),
                "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
                "model": {"type": "WordPiece", "unk_token": unk.map_or(Value::Null, |i| json!(tokens[i])),
                          "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab}
            })
        }
        other => return Err(bad(format!("tokenizer model {other:?} (Pareto rebuilds gpt2, llama and bert)"))),
    };
    let name = |id: Option<usize>| id.map_or(Value::Null, |i| json!(tokens[i]));
    let mut config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": name(bos), "eos_token": name(eos), "unk_token": name(unk), "pad_token": name(pad),
        "add_bos_token": add_bos, "add_eos_token": add_eos, "clean_up_tokenization_spaces": false,
    });
    if let (true, Some(o)) = (model == "bert", config.as_object_mut()) {
        o.insert("cls_token".into(), name(bos));
        o.insert("sep_token".into(), name(sep));
        o.insert("mask_token".into(), name(id_key("tokenizer.ggml.mask_token_id")));
        o.insert("do_lower_case".into(), json!(meta.bool("tokenizer.ggml.normalizer.lowercase").unwrap_or(true)));
    }
    if let (Some(t), Some(o)) = (meta.str("tokenizer.chat_template"), config.as_object_mut()) {
        o.insert("chat_template".into(), json!(t));
    }
    if let (Some(n), Some(o)) = (meta.arch_u64("context_length"), config.as_object_mut()) {
        o.insert("model_max_length".into(), json!(n));
    }
    Ok(Rebuilt { tokenizer, config, vocab_size: tokens.len() })
}

/// BERT's `[CLS] $A [SEP]` and `[CLS] $A [SEP] $B:1 [SEP]:1`.
fn bert_template(tokens: &[&str], cls: usize, sep: usize) -> Value {
    let special = |id: usize, type_id: u32| json!({"SpecialToken": {"id": tokens[id], "type_id": type_id}});
    let seq = |s: &str, type_id: u32| json!({"Sequence": {"id": s, "type_id": type_id}});
    let specials: serde_json::Map<String, Value> = [cls, sep]
        .into_iter()
        .map(|id| (tokens[id].to_string(), json!({"id": tokens[id], "ids": [id], "tokens": [tokens[id]]})))
        .collect();
    json!({
        "type": "TemplateProcessing",
        "single": [special(cls, 0), seq("A", 0), special(sep, 0)],
        "pair": [special(cls, 0), seq("A", 0), special(sep, 0), seq("B", 1), special(sep, 1)],
        "special_tokens": specials,
    })
}

/// A TemplateProcessing that adds BOS and/or EOS around a sequence, or `None` when neither is.
fn post_processor(tokens: &[&str], bos: Option<usize>, eos: Option<usize>) -> Option<Value> {
    if bos.is_none() && eos.is_none() {
        return None;
    }
    let special = |id: usize| json!({"SpecialToken": {"id": tokens[id], "type_id": 0}});
    let seq = |s: &str| json!({"Sequence": {"id": s, "type_id": 0}});
    let wrap = |inner: Vec<Value>| -> Vec<Value> {
        bos.map(special).into_iter().chain(inner).chain(eos.map(special)).collect()
    };
    let specials: serde_json::Map<String, Value> = bos
        .into_iter()
        .chain(eos)
        .map(|id| (tokens[id].to_string(), json!({"id": tokens[id], "ids": [id], "tokens": [tokens[id]]})))
        .collect();
    Some(json!({
        "type": "TemplateProcessing",
        "single": wrap(vec![seq("A")]),
        "pair": wrap(vec![seq("A"), seq("B")]),
        "special_tokens": specials,
    }))
}

/// SentencePiece-BPE merges from scores: every split of a NORMAL piece into two vocabulary pieces,
/// grouped by piece in id order and sorted by (left id, right id) within it, then stably by the
/// piece's score, highest first.
fn spm_merges(tokens: &[&str], scores: &[f32], normal: impl Fn(usize) -> bool) -> Vec<Value> {
    let ids: std::collections::HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    let mut merges: Vec<(usize, usize, f32)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        if !normal(id) {
            continue;
        }
        let mut local: Vec<(usize, usize, f32)> = piece
            .char_indices()
            .skip(1)
            .filter_map(|(at, _)| Some((*ids.get(&piece[..at])?, *ids.get(&piece[at..])?, scores[id])))
            .collect();
        local.sort_by_key(|&(l, r, _)| (l, r));
        merges.extend(local);
    }
    merges.sort_by(|a, b| b.2.total_cmp(&a.2));
    merges.into_iter().map(|(l, r, _)| json!([tokens[l], tokens[r]])).collect()
}
