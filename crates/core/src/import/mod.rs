//! GGUF in: a `.gguf` (v2/v3) read as the Hugging Face folder it was converted from. llama.cpp's
//! convert_hf_to_gguf.py renames tensors, permutes the LLaMA Q/K rows into interleaved RoPE pairs
//! and moves config.json and the tokenizer into typed metadata; this module undoes each step:
//! tensors dequantized (bit-identical to ggml) and renamed, Q/K rows put back in HF's rotate-half
//! order, config.json rebuilt from the hyper-parameters, tokenizer.json from the vocabulary.
//!
//! [`convert`] writes the folder atomically (`pareto convert`); [`open_cached`] converts once into
//! the user's cache so every command that takes a model folder also takes a GGUF; [`describe`]
//! reads only the header (`pareto inspect model.gguf`). A source whose weights were quantized is
//! marked in the written safetensors metadata ([`SOURCE_TYPES_KEY`]) so plans and reports can say
//! that nothing made from it can be more accurate than it.

mod config;
mod summary;
pub mod tokenizer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use summary::{GgufSummary, describe};

use crate::error::{Error, Result};
use crate::export::atomic::{OutputDir, default_opener};
use crate::export::gguf::metadata::MetaValue;
use crate::export::gguf::{GgufFile, GgufTensor, names, types};
use crate::export::safetensors::{Entry, Layout, Writer};
use crate::export::{FileRecord, SourcePaths};
use crate::job::JobContext;
use crate::store::DType;

/// safetensors metadata key: the source GGUF's tensor types, e.g. `Q4_1:210,Q8_0:1,F32:61`.
pub const SOURCE_TYPES_KEY: &str = "pareto.source_gguf_types";
/// safetensors metadata key: the source GGUF's file name.
pub const SOURCE_KEY: &str = "pareto.source_gguf";

/// The GGUF architectures converted, with how their Q/K rows are stored.
const ARCHITECTURES: &str = "llama, qwen2, qwen3, phi3, bert";

/// How to write the tensors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TensorDtype {
    /// Each tensor in the narrowest type that holds it exactly: F32/F16/BF16 sources as stored,
    /// dequantized block types as F32.
    #[default]
    Exact,
    /// Every float tensor in this type (F16 refuses values beyond its range).
    All(DType),
}

#[derive(Debug, Clone, Serialize)]
pub struct ConvertReport {
    pub source: PathBuf,
    pub output: PathBuf,
    pub architecture: String,
    pub tensors: usize,
    /// Source tensor types and how many tensors had each.
    pub source_types: BTreeMap<String, usize>,
    /// Whether any weight was stored quantized in the source.
    pub quantized_source: bool,
    pub files: Vec<FileRecord>,
    pub notes: Vec<String>,
}

/// Typed access to the GGUF's metadata, with the file named in every error.
pub struct Meta<'a> {
    file: &'a GgufFile,
    arch: String,
}

impl<'a> Meta<'a> {
    fn new(file: &'a GgufFile) -> Result<Meta<'a>> {
        let arch = file.get("general.architecture").and_then(MetaValue::as_str).ok_or_else(|| {
            Error::GgufUnsupported { path: file.path.clone(), problem: "no general.architecture".into() }
        })?;
        Ok(Meta { file, arch: arch.to_string() })
    }

    pub fn unsupported(&self, problem: String) -> Error {
        Error::GgufUnsupported { path: self.file.path.clone(), problem }
    }

    pub fn str(&self, key: &str) -> Option<&'a str> {
        self.file.get(key).and_then(MetaValue::as_str)
    }
    pub fn u64(&self, key: &str) -> Option<u64> {
        self.file.get(key).and_then(MetaValue::as_u64)
    }
    pub fn f64(&self, key: &str) -> Option<f64> {
        self.file.get(key).and_then(MetaValue::as_f64)
    }
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.file.get(key) {
            Some(MetaValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }
    pub fn strings(&self, key: &str) -> Option<Vec<&'a str>> {
        self.file.get(key)?.as_array()?.iter().map(MetaValue::as_str).collect()
    }
    pub fn ints(&self, key: &str) -> Option<Vec<i32>> {
        let items = self.file.get(key)?.as_array()?;
        items
            .iter()
            .map(|v| match *v {
                MetaValue::I32(i) => Some(i),
                _ => v.as_u64().and_then(|u| i32::try_from(u).ok()),
            })
            .collect()
    }
    pub fn floats(&self, key: &str) -> Option<Vec<f32>> {
        self.file.get(key)?.as_array()?.iter().map(|v| v.as_f64().map(|f| f as f32)).collect()
    }
    /// `{architecture}.{key}`.
    pub fn arch_u64(&self, key: &str) -> Option<u64> {
        self.u64(&format!("{}.{key}", self.arch))
    }
    pub fn arch_f64(&self, key: &str) -> Option<f64> {
        self.f64(&format!("{}.{key}", self.arch))
    }
    pub fn arch_str(&self, key: &str) -> Option<&'a str> {
        self.str(&format!("{}.{key}", self.arch))
    }
    pub fn architecture(&self) -> &str {
        &self.arch
    }
}

/// One output tensor: where it comes from and how its rows are reordered.
struct Planned<'a> {
    source: &'a GgufTensor,
    entry: Entry,
    /// Heads to un-permute the rows for (LLaMA Q and K), or 0.
    unpermute_heads: usize,
}

fn plan<'a>(file: &'a GgufFile, meta: &Meta<'_>, cfg: &config::Hyper, dtype: TensorDtype) -> Result<Vec<Planned<'a>>> {
    file.tensors
        .iter()
        // Llama 3's RoPE divisors become config.json's rope_scaling (config::Hyper::read).
        .filter(|t| t.name != "rope_freqs.weight")
        .map(|t| {
            let name = names::to_hf(meta.architecture(), &t.name).ok_or_else(|| {
                meta.unsupported(format!("tensor {} has no Hugging Face counterpart Pareto knows", t.name))
            })?;
            let stored = match t.ggml_type {
                types::F32 => DType::F32,
                types::F16 => DType::F16,
                types::BF16 => DType::BF16,
                ty if pareto_formats::can_dequantize_ggml(ty) => DType::F32,
                _ => return Err(file.undecodable(t)),
            };
            let dtype = match dtype {
                TensorDtype::Exact => stored,
                TensorDtype::All(d) => d,
            };
            let unpermute_heads = names::permuted_heads(meta.architecture(), &t.name, cfg.heads, cfg.kv_heads);
            let shape = t.shape().into_iter().map(|d| d as usize).collect();
            Ok(Planned { source: t, entry: Entry { name, dtype, shape }, unpermute_heads })
        })
        .collect()
}

/// Converts `gguf` into a Hugging Face folder at `out` (written beside it under a temporary name,
/// renamed into place when complete). Memory: one tensor at a time.
pub fn convert(gguf: &Path, out: &Path, dtype: TensorDtype, force: bool, ctx: &JobContext) -> Result<ConvertReport> {
    let file = GgufFile::open(gguf)?;
    let meta = Meta::new(&file)?;
    let hyper = config::Hyper::read(&meta, &file)?;
    let tok = tokenizer::rebuild(&meta)?;
    if tok.vocab_size != hyper.vocab_size {
        return Err(meta.unsupported(format!(
            "the vocabulary has {} tokens but the embedding has {} rows",
            tok.vocab_size, hyper.vocab_size
        )));
    }
    let planned = plan(&file, &meta, &hyper, dtype)?;
    let mut source_types: BTreeMap<String, usize> = BTreeMap::new();
    for t in &file.tensors {
        *source_types.entry(types::name(t.ggml_type).unwrap_or("unknown").to_string()).or_default() += 1;
    }
    let quantized_source = source_types.keys().any(|k| !is_float_type(k));
    // The dequantized folder is larger than the GGUF (4 bytes a weight for block types): refuse
    // before writing when the disk cannot hold it.
    let needed = planned.iter().try_fold(0u64, |a, p| Ok::<u64, Error>(a + p.entry.nbytes()?))? + (64 << 20);
    if let Some(free) = crate::disk::available_bytes(out)
        && free < needed
    {
        const GIB: f64 = (1u64 << 30) as f64;
        return Err(Error::NotEnoughSpace {
            path: out.to_path_buf(),
            needed,
            needed_gib: needed as f64 / GIB,
            available_gib: free as f64 / GIB,
            hint: "; convert elsewhere (pareto convert --out, or PARETO_CACHE_DIR for the cache) or write \
                   --dtype bf16 (half the size, rounded)",
        });
    }
    let source = SourcePaths { folders: Vec::new(), files: vec![gguf.to_path_buf()] };
    let mut dir = OutputDir::create(out, &source, force, default_opener())?;

    let type_list = source_types.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(",");
    let mut metadata = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    metadata.insert(SOURCE_TYPES_KEY.into(), type_list);
    metadata.insert(SOURCE_KEY.into(), gguf.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    let layout = Layout { entries: planned.iter().map(|p| p.entry.clone()).collect(), metadata };
    let mut writer = Writer::new(dir.create_file("model.safetensors")?, layout)?;
    ctx.progress.stage("converting tensors", planned.len() as u64);
    for p in &planned {
        ctx.checkpoint()?;
        let mut values = file.dequantize(p.source)?;
        if p.unpermute_heads > 0 {
            let row_len = p.entry.shape.last().copied().unwrap_or(0);
            values = names::unpermute_rows(&values, row_len, p.unpermute_heads).ok_or_else(|| {
                meta.unsupported(format!("{}: rows do not split into {} heads", p.source.name, p.unpermute_heads))
            })?;
        }
        let bytes = encode(&values, p.entry.dtype).map_err(|problem| Error::GgufTensorInvalid {
            path: file.path.clone(),
            tensor: p.source.name.clone(),
            problem,
        })?;
        writer.write_tensor(&p.entry.name, &bytes)?;
        ctx.progress.advance(1, &p.entry.name);
    }
    dir.record(writer.finish()?);
    let json = |v: &serde_json::Value| serde_json::to_vec_pretty(v).unwrap_or_default();
    dir.write_file("config.json", &json(&hyper.to_config(&meta)))?;
    dir.write_file("tokenizer.json", &json(&tok.tokenizer))?;
    dir.write_file("tokenizer_config.json", &json(&tok.config))?;
    for (name, contents) in hyper.pooling_files().into_iter().flatten() {
        dir.write_file(name, &json(&contents))?;
    }
    let files = dir.files();
    let output = dir.commit()?;
    let mut notes = Vec::new();
    if quantized_source {
        notes.push(quantized_note(&source_types));
    }
    Ok(ConvertReport {
        source: gguf.to_path_buf(),
        output,
        architecture: meta.architecture().to_string(),
        tensors: planned.len(),
        source_types,
        quantized_source,
        files,
        notes,
    })
}

/// Why results made from a quantized GGUF are bounded by it.
pub fn quantized_note(types: &BTreeMap<String, usize>) -> String {
    let q: Vec<String> = types.iter().filter(|(k, _)| !is_float_type(k)).map(|(k, v)| format!("{k} ×{v}")).collect();
    format!(
        "the source GGUF was already quantized ({}): its dequantized weights are the starting point, so nothing \
         made from it can be more accurate than that file",
        q.join(", ")
    )
}

/// The note for a model folder Pareto converted from a quantized GGUF, from its safetensors metadata.
pub fn quantized_source_note(metadata: &BTreeMap<String, String>) -> Option<String> {
    let list = metadata.get(SOURCE_TYPES_KEY)?;
    let types: BTreeMap<String, usize> = list
        .split(',')
        .filter_map(|kv| kv.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(0)))
        .collect();
    types.keys().any(|k| !is_float_type(k)).then(|| quantized_note(&types))
}

/// Whether a ggml type name is a plain float type (its values are the weights, not codes).
fn is_float_type(name: &str) -> bool {
    matches!(name, "F32" | "F16" | "BF16")
}

/// The values in `dtype` (via the exporters' [`crate::transform::encode_f32`]), refusing what F16
/// cannot hold and non-float types.
fn encode(values: &[f32], dtype: DType) -> std::result::Result<Vec<u8>, String> {
    match dtype {
        DType::F32 | DType::BF16 => {}
        DType::F16 => {
            if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| v.is_finite() && v.abs() > 65504.0) {
                return Err(format!("value {v} at element {i} does not fit in F16 (use --dtype f32 or bf16)"));
            }
        }
        other => return Err(format!("{other} is not a float type to write weights in")),
    }
    let mut out = Vec::with_capacity(values.len() * dtype.size_bytes() as usize);
    crate::transform::encode_f32(values, dtype, &mut out);
    Ok(out)
}

/// The Hugging Face folder of `gguf`, converted into [`crate::cache::cache_dir`] the first time (exact dtypes)
/// and reused while the file's path, size and modification time are unchanged.
pub fn open_cached(gguf: &Path, ctx: &JobContext) -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    let abs = std::fs::canonicalize(gguf).map_err(|e| Error::io(gguf, e))?;
    let md = std::fs::metadata(&abs).map_err(|e| Error::io(&abs, e))?;
    let mtime = md.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(abs.to_string_lossy().as_bytes());
    h.update(md.len().to_le_bytes());
    h.update(mtime.as_nanos().to_le_bytes());
    h.update(CACHE_VERSION.as_bytes());
    let key = hex::encode(&h.finalize()[..8]);
    let stem = abs.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    let gguf_cache = crate::cache::cache_dir().join("gguf");
    let folder = gguf_cache.join(format!("{stem}-{key}"));
    if folder.join("model.safetensors").is_file() && folder.join("config.json").is_file() {
        return Ok(folder);
    }
    convert(&abs, &folder, TensorDtype::Exact, true, ctx)?;
    // Which file this folder came from, so that conversions of earlier versions of the same file
    // (rewritten or re-downloaded since) are removed instead of piling up.
    let source = serde_json::json!({ "path": abs, "bytes": md.len(), "mtime_ns": mtime.as_nanos().to_string() });
    let _ = std::fs::write(folder.join(SOURCE_FILE), source.to_string());
    remove_stale_conversions(&gguf_cache, &abs, &folder);
    Ok(folder)
}

/// Records, in a cached conversion, the GGUF it was made from (hidden: never copied into exports).
const SOURCE_FILE: &str = ".pareto-gguf-source.json";

/// Removes cached conversions of `source` other than `keep` (best effort).
fn remove_stale_conversions(cache: &Path, source: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(cache) else { return };
    for dir in entries.flatten().map(|e| e.path()).filter(|p| p != keep && p.is_dir()) {
        let from = std::fs::read(dir.join(SOURCE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("path").and_then(|p| p.as_str()).map(PathBuf::from));
        if from.as_deref() == Some(source) {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Bumped when the conversion changes, so older cached folders are not reused.
const CACHE_VERSION: &str = "gguf-import-1";

/// Whether `path` names a GGUF file (by its magic, not its extension).
pub fn is_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    path.is_file()
        && std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok()
        && &magic == crate::export::gguf::MAGIC
}

#[cfg(test)]
mod tests;
