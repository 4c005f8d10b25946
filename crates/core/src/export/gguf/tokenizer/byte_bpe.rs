//! GPT-2-style byte-level BPE (`tokenizer.ggml.model = "gpt2"`): llama.cpp picks its
//! pre-tokenizer by name (`tokenizer.ggml.pre`), so the tokenizer.json pre-tokenizer must be one it
//! implements. llama.cpp's convert_hf_to_gguf.py names it from a hash of the token ids of a test
//! text; Pareto instead reads the pre-tokenizer itself and accepts exactly the splitting regexes
//! that llama.cpp's src/llama-vocab.cpp lists as each pre-type's "original regex from
//! tokenizer.json" (a regex it does not know is refused by name, never written as "default").

use serde_json::Value;

/// `(tokenizer.ggml.pre, the Split regex of tokenizer.json)`: sources above.
const SPLIT_REGEXES: [(&str, &str); 3] = [
    // Llama 3 / 3.1 / 3.2 (LLAMA_VOCAB_PRE_TYPE_LLAMA3).
    (
        "llama-bpe",
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    ),
    // Qwen2 / Qwen2.5 (LLAMA_VOCAB_PRE_TYPE_QWEN2): single digits.
    (
        "qwen2",
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    ),
    // Mistral NeMo's "tekken" (LLAMA_VOCAB_PRE_TYPE_TEKKEN).
    (
        "tekken",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    ),
];

/// The names [`pre_tokenizer`] can return, for error messages.
pub const SUPPORTED: &str = "gpt-2 (ByteLevel with its own regex), smollm (single digits, then GPT-2's), \
                             llama-bpe (Llama 3), qwen2, tekken";

/// The tokenizer.json splitting regex of a llama.cpp pre-type that has one.
pub fn split_regex(pre: &str) -> Option<&'static str> {
    SPLIT_REGEXES.iter().find(|(name, _)| *name == pre).map(|(_, r)| *r)
}

/// The llama.cpp pre-tokenizer name of a byte-level tokenizer.json, or why there is none.
pub fn pre_tokenizer(tj: &Value) -> Result<&'static str, String> {
    match tj.get("normalizer") {
        None | Some(Value::Null) => {}
        // Qwen2 normalizes to NFC; llama.cpp's qwen2 pre-type does not, which only matters for
        // text that is not already NFC (as convert_hf_to_gguf.py accepts it too).
        Some(n) if n.get("type").and_then(Value::as_str) == Some("NFC") => {}
        Some(n) => {
            return Err(format!("normalizer {} has no llama.cpp equivalent for byte-level BPE", kind(n)));
        }
    }
    let pre = tj.get("pre_tokenizer").ok_or("byte-level BPE without a pre_tokenizer")?;
    let byte_level = |p: &Value| p.get("type").and_then(Value::as_str) == Some("ByteLevel");
    let flag = |p: &Value, key: &str| p.get(key).and_then(Value::as_bool);
    // GPT-2 itself: ByteLevel splitting with its built-in regex.
    if byte_level(pre) {
        return match (flag(pre, "use_regex").unwrap_or(true), flag(pre, "add_prefix_space").unwrap_or(false)) {
            (true, false) => Ok("gpt-2"),
            (true, true) => Err("ByteLevel with add_prefix_space has no llama.cpp pre-tokenizer".into()),
            (false, _) => Err("ByteLevel without any splitting regex".into()),
        };
    }
    let steps = match pre.get("type").and_then(Value::as_str) {
        Some("Sequence") => pre.get("pretokenizers").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default(),
        _ => return Err(format!("pre_tokenizer {} is not a byte-level one llama.cpp implements", kind(pre))),
    };
    // SmolLM / SmolLM2: every digit alone, then GPT-2's regex (llama.cpp's `smollm` pre-type).
    if let [digits, last] = steps
        && digits.get("type").and_then(Value::as_str) == Some("Digits")
        && flag(digits, "individual_digits") == Some(true)
        && byte_level(last)
        && flag(last, "use_regex").unwrap_or(true)
        && flag(last, "add_prefix_space") != Some(true)
    {
        return Ok("smollm");
    }
    let [split, last] = steps else {
        return Err(format!("a pre_tokenizer sequence of {} steps (expected Split then ByteLevel)", steps.len()));
    };
    if split.get("type").and_then(Value::as_str) != Some("Split")
        || !byte_level(last)
        || flag(last, "use_regex") != Some(false)
        || flag(last, "add_prefix_space") == Some(true)
    {
        return Err(format!(
            "pre_tokenizer sequence {} then {} (expected Split then ByteLevel)",
            kind(split),
            kind(last)
        ));
    }
    if split.get("behavior").and_then(Value::as_str) != Some("Isolated") || flag(split, "invert") == Some(true) {
        return Err("Split pre-tokenizer that does not isolate its matches".into());
    }
    let regex = split.pointer("/pattern/Regex").and_then(Value::as_str).ok_or("Split without a regex pattern")?;
    SPLIT_REGEXES
        .iter()
        .find(|(_, r)| *r == regex)
        .map(|(name, _)| *name)
        .ok_or_else(|| format!("its splitting regex is not one llama.cpp implements (known: {SUPPORTED}): {regex}"))
}

/// `tokenizer.ggml.merges`: "left right" strings in rank order. tokenizer.json stores them as such
/// strings or as `[left, right]` pairs; llama.cpp splits at the first space after the first byte,
/// so a left piece containing a space cannot be expressed.
pub fn merges(model: &Value) -> Result<Vec<String>, String> {
    let list = model.get("merges").and_then(Value::as_array).ok_or("BPE without merges")?;
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            let (left, right) = match m {
                Value::String(s) => s.split_once(' ').ok_or_else(|| format!("merge {i} {s:?} has no space"))?,
                Value::Array(pair) => match pair.as_slice() {
                    [Value::String(l), Value::String(r)] => (l.as_str(), r.as_str()),
                    _ => return Err(format!("merge {i} is not a pair of strings")),
                },
                _ => return Err(format!("merge {i} is neither a string nor a pair")),
            };
            if left.is_empty() || right.is_empty() || left.bytes().skip(1).any(|b| b == b' ') {
                return Err(format!("merge {i} ({left:?}, {right:?}) cannot be written as llama.cpp reads merges"));
            }
            Ok(format!("{left} {right}"))
        })
        .collect()
}

fn kind(v: &Value) -> String {
    v.get("type").and_then(Value::as_str).unwrap_or("(untyped)").to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn seq(regex: &str) -> Value {
        json!({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}})
    }

    #[test]
    fn known_pre_tokenizers_are_named_and_others_refused() {
        for (name, regex) in SPLIT_REGEXES {
            assert_eq!(pre_tokenizer(&seq(regex)), Ok(name));
        }
        let gpt2 = json!({"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}});
        assert_eq!(pre_tokenizer(&gpt2), Ok("gpt-2"));
        // SmolLM2's tokenizer.json: single digits, then GPT-2's byte-level regex.
        let smollm = json!({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]}});
        assert_eq!(pre_tokenizer(&smollm), Ok("smollm"));
        let mut grouped = smollm.clone();
        grouped["pre_tokenizer"]["pretokenizers"][0]["individual_digits"] = json!(false);
        assert!(pre_tokenizer(&grouped).is_err());
        let err = pre_tokenizer(&seq(r"\p{N}+|\s+")).unwrap_err();
        assert!(err.contains("llama-bpe") && err.contains(r"\p{N}+|\s+"), "{err}");
        let mut nfkc = seq(SPLIT_REGEXES[0].1);
        nfkc["normalizer"] = json!({"type": "NFKC"});
        assert!(pre_tokenizer(&nfkc).unwrap_err().contains("NFKC"));
        let whitespace = json!({"pre_tokenizer": {"type": "Whitespace"}});
        assert!(pre_tokenizer(&whitespace).is_err());
    }

    #[test]
    fn merges_in_both_spellings() {
        let m = json!({"merges": ["Ġ t", ["h", "e"]]});
        assert_eq!(merges(&m).unwrap(), ["Ġ t", "h e"]);
        assert!(merges(&json!({"merges": [["a b", "c"]]})).is_err());
        assert!(merges(&json!({"merges": ["ab"]})).is_err());
    }
}
