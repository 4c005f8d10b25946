//! `pareto inspect model.gguf`: what the header says, without reading tensor data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Meta;
use crate::error::Result;
use crate::export::gguf::metadata::MetaValue;
use crate::export::gguf::{GgufFile, types};

#[derive(Debug, Clone, Serialize)]
pub struct GgufSummary {
    pub path: PathBuf,
    pub version: u32,
    pub file_bytes: u64,
    pub architecture: String,
    pub name: Option<String>,
    /// `{architecture}.*` scalar keys (hyper-parameters), without the prefix.
    pub hyper_parameters: BTreeMap<String, String>,
    pub tokenizer: TokenizerSummary,
    pub parameters: u64,
    pub tensors: Vec<GgufTensorRow>,
    pub by_type: Vec<TypeRow>,
    /// Types present that Pareto cannot dequantize (the file can be inspected, not converted).
    pub undecodable: Vec<String>,
    /// Whether any weight is stored quantized.
    pub quantized: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenizerSummary {
    pub model: Option<String>,
    pub pre: Option<String>,
    pub tokens: usize,
    pub merges: usize,
    pub bos: Option<u64>,
    pub eos: Option<u64>,
    pub add_bos: Option<bool>,
    pub chat_template: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct GgufTensorRow {
    pub name: String,
    pub ggml_type: String,
    /// PyTorch order (`[out, in]`).
    pub shape: Vec<u64>,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TypeRow {
    pub ggml_type: String,
    pub tensors: usize,
    pub elements: u64,
    pub bytes: u64,
}

pub fn describe(path: &Path) -> Result<GgufSummary> {
    let file = GgufFile::open(path)?;
    let meta = Meta::new(&file)?;
    let prefix = format!("{}.", meta.architecture());
    let hyper_parameters = file
        .metadata
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix(&prefix)?;
            let text = match v {
                MetaValue::String(s) => s.clone(),
                MetaValue::Array(..) => return None,
                MetaValue::Bool(b) => b.to_string(),
                // As stored: an f32 shown through f64 would print 1e-12 as 0.0000000000009999999960041972.
                MetaValue::F32(f) if f.abs() < 1e-3 && *f != 0.0 => format!("{f:e}"),
                MetaValue::F32(f) => format!("{f}"),
                other => other.as_f64().map_or_else(String::new, |f| format!("{f}")),
            };
            Some((key.to_string(), text))
        })
        .collect();
    let type_name = |t: u32| types::name(t).map_or_else(|| format!("type {t}"), String::from);
    let tensors: Vec<GgufTensorRow> = file
        .tensors
        .iter()
        .map(|t| GgufTensorRow {
            name: t.name.clone(),
            ggml_type: type_name(t.ggml_type),
            shape: t.shape(),
            bytes: t.nbytes,
        })
        .collect();
    let mut by: BTreeMap<String, TypeRow> = BTreeMap::new();
    for t in &file.tensors {
        let name = type_name(t.ggml_type);
        let row = by.entry(name.clone()).or_insert(TypeRow { ggml_type: name, tensors: 0, elements: 0, bytes: 0 });
        row.tensors += 1;
        row.elements = row.elements.saturating_add(t.dims.iter().product());
        row.bytes = row.bytes.saturating_add(t.nbytes);
    }
    let floats = [types::F32, types::F16, types::BF16];
    let undecodable = file
        .tensors
        .iter()
        .filter(|t| !floats.contains(&t.ggml_type) && !pareto_formats::can_dequantize_ggml(t.ggml_type))
        .map(|t| type_name(t.ggml_type))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let count = |key: &str| file.get(key).and_then(MetaValue::as_array).map_or(0, <[MetaValue]>::len);
    Ok(GgufSummary {
        path: path.to_path_buf(),
        version: file.version,
        file_bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        architecture: meta.architecture().to_string(),
        name: meta.str("general.name").map(String::from),
        hyper_parameters,
        tokenizer: TokenizerSummary {
            model: meta.str("tokenizer.ggml.model").map(String::from),
            pre: meta.str("tokenizer.ggml.pre").map(String::from),
            tokens: count("tokenizer.ggml.tokens"),
            merges: count("tokenizer.ggml.merges"),
            bos: meta.u64("tokenizer.ggml.bos_token_id"),
            eos: meta.u64("tokenizer.ggml.eos_token_id"),
            add_bos: meta.bool("tokenizer.ggml.add_bos_token"),
            chat_template: meta.str("tokenizer.chat_template").is_some(),
        },
        parameters: file.tensors.iter().map(|t| t.dims.iter().product::<u64>()).sum(),
        quantized: file.tensors.iter().any(|t| !floats.contains(&t.ggml_type)),
        tensors,
        by_type: by.into_values().collect(),
        undecodable,
    })
}
