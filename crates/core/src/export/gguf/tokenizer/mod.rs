//! tokenizer.json → `tokenizer.ggml.*`, as llama.cpp's src/llama-vocab.cpp consumes them (token
//! types from gguf-py/gguf/constants.py `TokenType`).
//!
//! - SentencePiece-style (`tokenizer.ggml.model = "llama"`), llama.cpp's SPM tokenizer, where
//!   merges pick the highest-scoring piece:
//!   - BPE with `byte_fallback` (what transformers writes for SentencePiece-BPE models such as
//!     LLaMA-1/2 and stories260K): `<0xXX>` pieces are BYTE. tokenizer.json carries no piece
//!     scores, and llama.cpp's gguf-py `LlamaHfVocab` writes a flat −1000, which would make
//!     llama.cpp's merge order arbitrary. SentencePiece orders ids by score, so the NORMAL piece of
//!     rank r gets score −r: the same merge priority, and for stories260K exactly the original
//!     GGUF's scores.
//!   - Unigram: pieces and scores are written as stored.
//! - GPT-2-style byte-level BPE (`"gpt2"`: Llama 3, Qwen2, Mistral NeMo): pieces, merges in rank
//!   order and the pre-tokenizer name (see [`byte_bpe`]); no scores.
//! - WordPiece (`"bert"`, llama.cpp's WPM tokenizer: BERT encoders): the converter's "phantom space"
//!   vocabulary — a piece that starts a word gets U+2581 in front, a `##` continuation loses its
//!   `##`, special tokens stay as they are (all CONTROL, the unknown token included); no scores.
//!   llama.cpp's WPM does its own splitting and reads no pre-tokenizer name, so it is "default"
//!   (the converter writes whichever name its hash table gives, e.g. "jina-v2-en" for MiniLM).
//!
//! Common to all: special added tokens are CONTROL (the unknown token UNKNOWN), other added tokens
//! USER_DEFINED, the rest NORMAL; ids without a token up to config.json's `vocab_size` become
//! `[PAD<id>]` USER_DEFINED entries, as gguf-py writes them, so the vocabulary matches the
//! embedding rows; special-token ids, add-BOS/EOS flags and the chat template.

mod byte_bpe;

pub use byte_bpe::split_regex;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::metadata::{MetaValue, ValueType};
use crate::error::{Error, Result};

pub const NORMAL: i32 = 1;
pub const UNKNOWN: i32 = 2;
pub const CONTROL: i32 = 3;
pub const USER_DEFINED: i32 = 4;
pub const BYTE: i32 = 6;

/// More token ids than any real vocabulary has: guards allocations against lying files.
const MAX_TOKENS: usize = 10_000_000;

/// id → (piece, score if the tokenizer stores one).
type Pieces = Vec<Option<(String, Option<f32>)>>;

/// The tokenizer keys, or `None` when the folder has no tokenizer.json.
pub fn convert(root: &Path, config: Option<&Value>) -> Result<Option<Vec<(String, MetaValue)>>> {
    let path = root.join("tokenizer.json");
    if !path.is_file() {
        return Ok(None);
    }
    let bad = |problem: String| Error::TokenizerUnsupported { path: path.clone(), problem };
    let bytes = crate::bounded::read(&path, crate::bounded::TOKENIZER_CAP, "tokenizer.json")?;
    let tj: Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let tc_path = root.join("tokenizer_config.json");
    let tc: Value = if tc_path.is_file() {
        let bytes = crate::bounded::read(&tc_path, crate::bounded::CONFIG_CAP, "tokenizer_config.json")?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::TokenizerUnsupported { path: tc_path.clone(), problem: format!("not JSON: {e}") })?
    } else {
        Value::Null
    };
    let model = tj.get("model").ok_or_else(|| bad("no `model`".into()))?;
    let kind = model.get("type").and_then(Value::as_str).unwrap_or("");
    let byte_fallback = model.get("byte_fallback").and_then(Value::as_bool).unwrap_or(false);
    let mut pieces = Pieces::new();
    let mut kv = Vec::new();
    let ggml_model = match kind {
        "BPE" if byte_fallback => {
            vocab_map(model, &mut pieces).map_err(bad)?;
            "llama"
        }
        "WordPiece" => {
            vocab_map(model, &mut pieces).map_err(bad)?;
            kv.push(("tokenizer.ggml.pre".to_string(), MetaValue::String("default".into())));
            "bert"
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
            "llama"
        }
        "BPE" => {
            let pre = byte_bpe::pre_tokenizer(&tj).map_err(&bad)?;
            vocab_map(model, &mut pieces).map_err(&bad)?;
            let merges = byte_bpe::merges(model).map_err(&bad)?.into_iter().map(MetaValue::String).collect();
            kv.push(("tokenizer.ggml.pre".to_string(), MetaValue::String(pre.into())));
            kv.push(("tokenizer.ggml.merges".to_string(), MetaValue::Array(ValueType::String, merges)));
            "gpt2"
        }
        other => {
            return Err(bad(format!(
                "model type {other:?} is not supported (SentencePiece-style BPE with byte_fallback, Unigram, \
                 WordPiece, byte-level BPE with a pre-tokenizer llama.cpp implements: {})",
                byte_bpe::SUPPORTED
            )));
        }
    };
    let mut special = BTreeMap::new();
    for a in tj.get("added_tokens").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let (Some(id), Some(content)) = (a.get("id").and_then(Value::as_u64), a.get("content").and_then(Value::as_str))
        else {
            continue;
        };
        let id = usize::try_from(id).unwrap_or(usize::MAX);
        if id >= MAX_TOKENS {
            return Err(bad(format!("added token {content:?} has id {id}, far beyond any vocabulary")));
        }
        if pieces.get(id).is_none_or(Option::is_none) {
            put(&mut pieces, id, content.to_string(), None);
        }
        special.insert(id, a.get("special").and_then(Value::as_bool).unwrap_or(false));
    }
    let config_vocab = config.and_then(|c| c.get("vocab_size")).and_then(Value::as_u64).map(|n| n as usize);
    // Token ids index the embedding rows: a tokenizer with ids past them is not this model's.
    let last_id = pieces.iter().rposition(Option::is_some);
    if let (Some(n), Some(last)) = (config_vocab, last_id)
        && last >= n
    {
        return Err(bad(format!(
            "token id {last} is past the model's {n} embedding rows (config.json vocab_size): this tokenizer does not belong to the model"
        )));
    }
    if let Some(n) = config_vocab.filter(|&n| n > pieces.len() && n < MAX_TOKENS) {
        pieces.resize(n, None);
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
    let wordpiece = ggml_model == "bert";
    for (id, p) in pieces.iter().enumerate() {
        let Some((piece, score)) = p else {
            tokens.push(MetaValue::String(format!("[PAD{id}]")));
            scores.push(MetaValue::F32(0.0));
            types.push(MetaValue::I32(USER_DEFINED));
            continue;
        };
        let is_byte = byte_fallback && piece.len() == 6 && piece.starts_with("<0x") && piece.ends_with('>');
        let ty = if Some(id) == unk && !wordpiece {
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
        let piece = match piece.strip_prefix("##") {
            _ if !wordpiece || ty == CONTROL => piece.clone(),
            Some(rest) => rest.to_string(),
            None => format!("\u{2581}{piece}"),
        };
        tokens.push(MetaValue::String(piece));
        scores.push(MetaValue::F32(s));
        types.push(MetaValue::I32(ty));
    }
    kv.splice(
        0..0,
        [
            ("tokenizer.ggml.model".to_string(), MetaValue::String(ggml_model.into())),
            ("tokenizer.ggml.tokens".to_string(), MetaValue::Array(ValueType::String, tokens)),
        ],
    );
    if ggml_model == "llama" {
        kv.push(("tokenizer.ggml.scores".to_string(), MetaValue::Array(ValueType::F32, scores)));
    }
    kv.push(("tokenizer.ggml.token_type".to_string(), MetaValue::Array(ValueType::I32, types)));
    let cfg_id = |key: &str| config.and_then(|c| c.get(key)).and_then(Value::as_u64);
    let special_id = |key: &str| token_str(key).and_then(|s| id_of(&s)).map(|i| i as u64);
    // As gguf-py's SpecialVocab: an encoder's [CLS] / [SEP] stand in for a missing BOS / EOS.
    let ids = [
        ("bos", special_id("bos_token").or_else(|| special_id("cls_token")).or_else(|| cfg_id("bos_token_id"))),
        ("eos", special_id("eos_token").or_else(|| special_id("sep_token")).or_else(|| cfg_id("eos_token_id"))),
        ("unknown", unk.map(|i| i as u64)),
        ("seperator", special_id("sep_token")), // sic: llama.cpp's key
        ("padding", special_id("pad_token")),
        ("mask", special_id("mask_token")),
    ];
    for (name, id) in ids {
        if let Some(id) = id.and_then(|i| u32::try_from(i).ok()) {
            kv.push((format!("tokenizer.ggml.{name}_token_id"), MetaValue::U32(id)));
        }
    }
    let post = tj.get("post_processor");
    let adds_bos =
        template_adds(post, Edge::First) || tc.get("add_bos_token").and_then(Value::as_bool).unwrap_or(false);
    let adds_eos = template_adds(post, Edge::Last) || tc.get("add_eos_token").and_then(Value::as_bool).unwrap_or(false);
    kv.push(("tokenizer.ggml.add_bos_token".to_string(), MetaValue::Bool(adds_bos)));
    kv.push(("tokenizer.ggml.add_eos_token".to_string(), MetaValue::Bool(adds_eos)));
    if ggml_model == "bert" {
        // llama.cpp's WPM adds [SEP] by default; with [SEP] already the trailing token it must not
        // add another (the converter's reading of the pair template comes to the same).
        kv.push(("tokenizer.ggml.add_sep_token".to_string(), MetaValue::Bool(!adds_eos && pair_has_separator(post))));
    }
    kv.extend(normalizer_flags(tj.get("normalizer")));
    if let Some(template) = chat_template(&tc) {
        kv.push(("tokenizer.chat_template".to_string(), MetaValue::String(template)));
    }
    Ok(Some(kv))
}

fn put(pieces: &mut Pieces, id: usize, s: String, score: Option<f32>) {
    if pieces.len() <= id {
        pieces.resize(id + 1, None);
    }
    pieces[id] = Some((s, score));
}

/// A BPE or WordPiece `vocab` object (piece → id) into `pieces`.
fn vocab_map(model: &Value, pieces: &mut Pieces) -> std::result::Result<(), String> {
    let vocab = model.get("vocab").and_then(Value::as_object).ok_or("no vocab object (piece → id)")?;
    if vocab.len() > MAX_TOKENS {
        return Err(format!("{} tokens is implausibly many", vocab.len()));
    }
    for (piece, id) in vocab {
        let id = id.as_u64().ok_or_else(|| format!("token {piece:?} has a non-integer id"))? as usize;
        if id > vocab.len() * 2 + 1024 {
            return Err(format!("token {piece:?} has id {id}, far beyond the vocabulary size"));
        }
        put(pieces, id, piece.clone(), None);
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Edge {
    First,
    Last,
}

/// Whether the post-processor puts a special token at `edge` of a single sequence (a
/// TemplateProcessing, alone or inside a Sequence as Llama 3.1 writes it): `[CLS] $A [SEP]` adds
/// both, `<s> $A` only the first. llama.cpp's defaults differ by tokenizer; the flags state it
/// explicitly either way.
fn template_adds(post: Option<&Value>, edge: Edge) -> bool {
    let Some(p) = post else { return false };
    match p.get("type").and_then(Value::as_str) {
        Some("TemplateProcessing") => {
            let single = p.get("single").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let end = match edge {
                Edge::First => single.first(),
                Edge::Last => single.last(),
            };
            single.len() > 1 && end.is_some_and(|e| e.get("SpecialToken").is_some())
        }
        Some("Sequence") => p
            .get("processors")
            .and_then(Value::as_array)
            .is_some_and(|ps| ps.iter().any(|q| template_adds(Some(q), edge))),
        _ => false,
    }
}

/// Whether a pair of sequences gets a special token between them (`$A [SEP] $B`).
fn pair_has_separator(post: Option<&Value>) -> bool {
    let Some(pair) = post.and_then(|p| p.get("pair")).and_then(Value::as_array) else { return false };
    let seq = |e: &Value, id: &str| e.pointer("/Sequence/id").and_then(Value::as_str) == Some(id);
    match (pair.iter().position(|e| seq(e, "A")), pair.iter().position(|e| seq(e, "B"))) {
        (Some(a), Some(b)) if a < b => pair[a + 1..b].iter().any(|e| e.get("SpecialToken").is_some()),
        _ => false,
    }
}

/// The lowercasing and accent stripping of the normalizer (a BertNormalizer's flags, Lowercase,
/// StripAccents, nested in Sequences), as gguf-py's SpecialVocab states them; llama.cpp's WPM
/// strips accents whenever it lowercases unless told otherwise.
fn normalizer_flags(n: Option<&Value>) -> Vec<(String, MetaValue)> {
    fn walk(n: &Value, lower: &mut Option<bool>, strip: &mut Option<bool>) {
        match n.get("type").and_then(Value::as_str) {
            Some("Lowercase") => *lower = Some(true),
            Some("StripAccents") => *strip = Some(true),
            Some("BertNormalizer") => {
                if let Some(v) = n.get("lowercase").and_then(Value::as_bool) {
                    *lower = Some(v);
                }
                if let Some(v) = n.get("strip_accents").and_then(Value::as_bool) {
                    *strip = Some(v);
                }
            }
            Some("Sequence") => {
                for m in n.get("normalizers").and_then(Value::as_array).into_iter().flatten() {
                    walk(m, lower, strip);
                }
            }
            _ => {}
        }
    }
    let (mut lower, mut strip) = (None, None);
    if let Some(n) = n {
        walk(n, &mut lower, &mut strip);
    }
    let key = |k: &str| format!("tokenizer.ggml.normalizer.{k}");
    lower
        .map(|v| (key("lowercase"), MetaValue::Bool(v)))
        .into_iter()
        .chain(strip.map(|v| (key("strip_accents"), MetaValue::Bool(v))))
        .collect()
}

/// tokenizer_config.json's chat template: a string, or the one named "default" of a list.
fn chat_template(tc: &Value) -> Option<String> {
    match tc.get("chat_template")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => list
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template"))
            .and_then(Value::as_str)
            .map(String::from),
        _ => None,
    }
}
