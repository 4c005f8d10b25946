//! tokenizer.json → `tokenizer.ggml.*` for SentencePiece-style vocabularies (`tokenizer.ggml.model
//! = "llama"`), as llama.cpp's SPM tokenizer consumes them (src/llama-vocab.cpp: merges pick the
//! highest-scoring piece; token types from gguf-py/gguf/constants.py `TokenType`).
//!
//! - BPE with `byte_fallback` (what transformers writes for SentencePiece-BPE models such as
//!   LLaMA-1/2 and stories260K): token ids are kept; `<0xXX>` pieces are BYTE, special added
//!   tokens CONTROL (the unknown token UNKNOWN), other added tokens USER_DEFINED, the rest NORMAL.
//!   tokenizer.json carries no piece scores, and llama.cpp's gguf-py `LlamaHfVocab` writes a flat
//!   −1000, which would make llama.cpp's merge order arbitrary. SentencePiece orders ids by score,
//!   so the NORMAL piece of rank r gets score −r: the same merge priority, and for stories260K
//!   exactly the original GGUF's scores.
//! - Unigram: pieces and scores are written as stored.
//!
//! GPT-2 style byte-level BPE (needs `tokenizer.ggml.pre`, a pre-tokenizer fingerprint) is refused
//! with a clear error rather than written with degraded pre-tokenization.

use std::path::Path;

use serde_json::Value;

use super::metadata::{MetaValue, ValueType};
use crate::error::{Error, Result};

pub const NORMAL: i32 = 1;
pub const UNKNOWN: i32 = 2;
pub const CONTROL: i32 = 3;
pub const USER_DEFINED: i32 = 4;
pub const BYTE: i32 = 6;

/// The tokenizer keys, or `None` when the folder has no tokenizer.json.
pub fn convert(root: &Path, config: Option<&Value>) -> Result<Option<Vec<(String, MetaValue)>>> {
    let path = root.join("tokenizer.json");
    if !path.is_file() {
        return Ok(None);
    }
    let bad = |problem: String| Error::TokenizerUnsupported { path: path.clone(), problem };
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let tj: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let tc: Value = std::fs::read_to_string(root.join("tokenizer_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let model = tj.get("model").ok_or_else(|| bad("no `model`".into()))?;
    let kind = model.get("type").and_then(Value::as_str).unwrap_or("");
    // id → (piece, score or None)
    let mut pieces: Vec<Option<(String, Option<f32>)>> = Vec::new();
    let put = |pieces: &mut Vec<Option<(String, Option<f32>)>>, id: usize, s: String, score: Option<f32>| {
        if pieces.len() <= id {
            pieces.resize(id + 1, None);
        }
        pieces[id] = Some((s, score));
    };
    let byte_fallback = model.get("byte_fallback").and_then(Value::as_bool).unwrap_or(false);
    match kind {
        "BPE" if byte_fallback => {
            let vocab =
                model.get("vocab").and_then(Value::as_object).ok_or_else(|| bad("BPE without a vocab".into()))?;
            if vocab.len() > 10_000_000 {
                return Err(bad(format!("{} tokens is implausibly many", vocab.len())));
            }
            for (piece, id) in vocab {
                let id = id.as_u64().ok_or_else(|| bad(format!("token {piece:?} has a non-integer id")))? as usize;
                if id > vocab.len() * 2 + 1024 {
                    return Err(bad(format!("token {piece:?} has id {id}, far beyond the vocabulary size")));
                }
                put(&mut pieces, id, piece.clone(), None);
            }
        }
        "Unigram" => {
            let vocab =
                model.get("vocab").and_then(Value::as_array).ok_or_else(|| bad("Unigram without a vocab".into()))?;
            for (id, entry) in vocab.iter().enumerate() {
                let piece = entry
                    .get(0)
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("vocab[{id}] is not [piece, score]")))?;
                let score = entry.get(1).and_then(Value::as_f64).unwrap_or(0.0) as f32;
                put(&mut pieces, id, piece.to_string(), Some(score));
            }
        }
        "BPE" => {
            return Err(bad(
                "byte-level (GPT-2 style) BPE needs a tokenizer.ggml.pre fingerprint, which Pareto does not compute yet; \
                 supported: SentencePiece-style BPE with byte_fallback, and Unigram"
                    .into(),
            ));
        }
        other => return Err(bad(format!("model type {other:?} is not supported (BPE with byte_fallback, Unigram)"))),
    }
    let mut special = std::collections::BTreeMap::new();
    for a in tj.get("added_tokens").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let (Some(id), Some(content)) = (a.get("id").and_then(Value::as_u64), a.get("content").and_then(Value::as_str))
        else {
            continue;
        };
        let is_special = a.get("special").and_then(Value::as_bool).unwrap_or(false);
        let id = id as usize;
        if id > pieces.len() + 1_000_000 {
            return Err(bad(format!("added token {content:?} has id {id}, far beyond the vocabulary")));
        }
        if pieces.get(id).is_none_or(Option::is_none) {
            put(&mut pieces, id, content.to_string(), None);
        }
        special.insert(id, is_special);
    }
    if let Some(hole) = pieces.iter().position(Option::is_none) {
        return Err(bad(format!("token ids are not contiguous: id {hole} has no token")));
    }
    let token_str = |key: &str| -> Option<String> {
        match tc.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).map(String::from),
            _ => None,
        }
    };
    let id_of = |s: &str| pieces.iter().position(|p| p.as_ref().is_some_and(|(t, _)| t == s));
    let unk = token_str("unk_token")
        .or_else(|| model.get("unk_token").and_then(Value::as_str).map(String::from))
        .and_then(|s| id_of(&s));
    let mut tokens = Vec::with_capacity(pieces.len());
    let mut scores = Vec::with_capacity(pieces.len());
    let mut types = Vec::with_capacity(pieces.len());
    let mut normal_rank = 0u32;
    for (id, p) in pieces.iter().enumerate() {
        let Some((piece, score)) = p else { continue };
        let is_byte = byte_fallback && piece.len() == 6 && piece.starts_with("<0x") && piece.ends_with('>');
        let ty = if Some(id) == unk {
            UNKNOWN
        } else if let Some(&sp) = special.get(&id) {
            if sp { CONTROL } else { USER_DEFINED }
        } else if is_byte {
            BYTE
        } else {
            NORMAL
        };
        let s = match score {
            Some(s) => *s,
            None if ty == NORMAL => {
                normal_rank += 1;
                -((normal_rank - 1) as f32)
            }
            None => 0.0,
        };
        tokens.push(MetaValue::String(piece.clone()));
        scores.push(MetaValue::F32(s));
        types.push(MetaValue::I32(ty));
    }
    let mut kv = vec![
        ("tokenizer.ggml.model".to_string(), MetaValue::String("llama".into())),
        ("tokenizer.ggml.tokens".to_string(), MetaValue::Array(ValueType::String, tokens)),
        ("tokenizer.ggml.scores".to_string(), MetaValue::Array(ValueType::F32, scores)),
        ("tokenizer.ggml.token_type".to_string(), MetaValue::Array(ValueType::I32, types)),
    ];
    let cfg_id = |key: &str| config.and_then(|c| c.get(key)).and_then(Value::as_u64);
    let ids = [
        ("bos", token_str("bos_token").and_then(|s| id_of(&s)).map(|i| i as u64).or_else(|| cfg_id("bos_token_id"))),
        ("eos", token_str("eos_token").and_then(|s| id_of(&s)).map(|i| i as u64).or_else(|| cfg_id("eos_token_id"))),
        ("unknown", unk.map(|i| i as u64)),
        ("padding", token_str("pad_token").and_then(|s| id_of(&s)).map(|i| i as u64)),
    ];
    for (name, id) in ids {
        if let Some(id) = id.and_then(|i| u32::try_from(i).ok()) {
            kv.push((format!("tokenizer.ggml.{name}_token_id"), MetaValue::U32(id)));
        }
    }
    // BOS prepended when the post-processor template starts with a special token (llama.cpp's
    // default for SPM is to add it; state it explicitly).
    let adds_bos = tj.pointer("/post_processor/single/0/SpecialToken").is_some()
        || tc.get("add_bos_token").and_then(Value::as_bool).unwrap_or(false);
    kv.push(("tokenizer.ggml.add_bos_token".to_string(), MetaValue::Bool(adds_bos)));
    kv.push((
        "tokenizer.ggml.add_eos_token".to_string(),
        MetaValue::Bool(tc.get("add_eos_token").and_then(Value::as_bool).unwrap_or(false)),
    ));
    Ok(Some(kv))
}
