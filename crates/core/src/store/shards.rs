//! Where a model's weights are: a single `.safetensors` file, a folder with `model.safetensors`,
//! or a folder with a `model.safetensors.index.json` whose `weight_map` names the shard files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

pub(crate) const SINGLE_FILE: &str = "model.safetensors";
pub(crate) const INDEX_FILE: &str = "model.safetensors.index.json";

/// The weight files of a model, resolved from the path the user gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The model folder: other files (config, tokenizer) are looked up here.
    pub root: PathBuf,
    /// The index file, for sharded models.
    pub index: Option<PathBuf>,
    /// Shard files in index order (sorted file names; HF's `-0000k-of-0000n` names sort numerically).
    pub shards: Vec<PathBuf>,
    /// tensor name → shard file name, for sharded models.
    pub weight_map: BTreeMap<String, String>,
}

pub(crate) fn locate(path: &Path) -> Result<Layout> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return locate_in_dir(path);
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let root = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if name.ends_with(".safetensors") {
        Ok(single(root, path.to_path_buf()))
    } else if name.ends_with(".json") {
        sharded(root, path.to_path_buf())
    } else {
        Err(Error::NotSafetensors { path: path.to_path_buf() })
    }
}

fn locate_in_dir(dir: &Path) -> Result<Layout> {
    let root = dir.to_path_buf();
    let index = dir.join(INDEX_FILE);
    if index.is_file() {
        return sharded(root, index);
    }
    let file = dir.join(SINGLE_FILE);
    if file.is_file() {
        return Ok(single(root, file));
    }
    // Otherwise accept one unambiguous candidate (e.g. an export named after its recipe).
    let names = list_files(dir)?;
    let indexes: Vec<&PathBuf> = names.iter().filter(|p| has_suffix(p, ".safetensors.index.json")).collect();
    let files: Vec<&PathBuf> = names.iter().filter(|p| has_suffix(p, ".safetensors")).collect();
    match (indexes.as_slice(), files.as_slice()) {
        ([only], _) => sharded(root, (*only).clone()),
        ([], [only]) => Ok(single(root, (*only).clone())),
        _ => Err(Error::NoWeights { dir: root }),
    }
}

fn single(root: PathBuf, file: PathBuf) -> Layout {
    Layout { root, index: None, shards: vec![file], weight_map: BTreeMap::new() }
}

fn sharded(root: PathBuf, index: PathBuf) -> Result<Layout> {
    let weight_map = read_index(&index)?;
    let dir = index.parent().map_or_else(|| root.clone(), Path::to_path_buf);
    let names: BTreeSet<&String> = weight_map.values().collect();
    let mut shards = Vec::with_capacity(names.len());
    for name in names {
        let shard = dir.join(name);
        match std::fs::metadata(&shard) {
            Ok(m) if m.is_file() => shards.push(shard),
            Ok(_) => return Err(Error::ShardMissing { index: index.clone(), shard }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::ShardMissing { index: index.clone(), shard });
            }
            Err(e) => return Err(Error::io(&shard, e)),
        }
    }
    Ok(Layout { root, index: Some(index), shards, weight_map })
}

/// Parses an index's `weight_map`. Shard names must be plain file names in the index's folder: an
/// index must not point the reader at arbitrary paths.
fn read_index(path: &Path) -> Result<BTreeMap<String, String>> {
    let bytes = crate::bounded::read(path, crate::bounded::INDEX_CAP, "shard index")?;
    let doc: Value =
        serde_json::from_slice(&bytes).map_err(|e| Error::IndexNotJson { path: path.to_path_buf(), source: e })?;
    let invalid = |problem: String| Error::IndexInvalid { path: path.to_path_buf(), problem };
    let map = match doc.get("weight_map") {
        None | Some(Value::Null) => return Err(Error::IndexMissingWeightMap { path: path.to_path_buf() }),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(invalid("`weight_map` is not an object".to_string())),
    };
    if map.is_empty() {
        return Err(invalid("`weight_map` is empty".to_string()));
    }
    map.iter()
        .map(|(tensor, shard)| {
            let shard = shard.as_str().ok_or_else(|| invalid(format!("shard of tensor `{tensor}` is not a string")))?;
            let mut parts = Path::new(shard).components();
            match (parts.next(), parts.next()) {
                (Some(Component::Normal(_)), None) => Ok((tensor.clone(), shard.to_string())),
                _ => Err(invalid(format!(
                    "shard `{shard}` of tensor `{tensor}` is not a file name in the index's folder"
                ))),
            }
        })
        .collect()
}

fn has_suffix(path: &Path, suffix: &str) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(suffix))
}

/// Regular files (following links) directly in `dir`, sorted by name.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Weight files of any framework: copying them next to an export would ship the original weights.
const WEIGHT_SUFFIXES: &[&str] =
    &[".safetensors", ".index.json", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx", ".ot"];

/// Weight files in the model folder that were not opened (a second copy such as Mistral's
/// `consolidated.safetensors` beside `model.safetensors`, or leftovers of another export): the user
/// is told, since they may have meant one of those.
pub(crate) fn ignored_weight_files(layout: &Layout) -> Result<Vec<PathBuf>> {
    let ours: BTreeSet<&PathBuf> = layout.shards.iter().chain(layout.index.iter()).collect();
    Ok(list_files(&layout.root)?
        .into_iter()
        .filter(|p| !ours.contains(p) && (has_suffix(p, ".safetensors") || has_suffix(p, ".safetensors.index.json")))
        .collect())
}

/// Companion files an exporter copies: everything in the folder except weights, indexes, hidden
/// files, `config.json` (which the exporter writes itself, from `ModelConfig::raw`, since
/// compression changes it) and an earlier export's manifest (the new one replaces it).
pub(crate) fn companion_files(layout: &Layout) -> Result<Vec<PathBuf>> {
    let ours: BTreeSet<&PathBuf> = layout.shards.iter().chain(layout.index.iter()).collect();
    Ok(list_files(&layout.root)?
        .into_iter()
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            !ours.contains(p)
                && !name.is_empty()
                && !name.starts_with('.')
                && name != "config.json"
                && name != crate::export::manifest::MANIFEST_NAME
                && !WEIGHT_SUFFIXES.iter().any(|s| name.ends_with(s))
        })
        .collect())
}
