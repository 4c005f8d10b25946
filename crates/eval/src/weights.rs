//! Reading a model folder's safetensors (single file or sharded with an index) into candle tensors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{EvalError, Result};

/// The safetensors files of a model folder: the shards named by `model.safetensors.index.json`, else
/// `model.safetensors`, else every `*.safetensors` in the folder (sorted).
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = pareto_core::bounded::read_text(&index, pareto_core::bounded::INDEX_CAP, "shard index")?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| EvalError::Config { path: index.clone(), message: e.to_string() })?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| EvalError::Config { path: index.clone(), message: "no `weight_map` object".to_string() })?;
        let mut files: Vec<String> = map.values().filter_map(|v| v.as_str().map(str::to_string)).collect();
        files.sort();
        files.dedup();
        for f in &files {
            if f.contains('/') || f.contains('\\') || f.starts_with('.') {
                return Err(EvalError::Config {
                    path: index.clone(),
                    message: format!("shard name `{f}` must be a plain file name"),
                });
            }
        }
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| EvalError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(EvalError::Config {
            path: dir.to_path_buf(),
            message: "no .safetensors weights in this folder".to_string(),
        });
    }
    Ok(files)
}

/// Loads every tensor of the model folder onto `device` (dtypes as stored).
pub fn load_tensors(dir: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let mut all = HashMap::new();
    for file in safetensors_files(dir)? {
        let tensors = candle_core::safetensors::load(&file, device)
            .map_err(|source| EvalError::Candle { context: format!("reading {}", file.display()), source })?;
        for (name, t) in &tensors {
            check_finite(&file, name, t)?;
        }
        all.extend(tensors);
    }
    Ok(all)
}

/// A NaN or Inf weight makes every metric computed from the model meaningless (or quietly NaN):
/// refused by tensor and element. One reduction on the device; the element is looked up on the
/// host only when the sum is not finite (which a sum of huge finite values alone can also cause).
fn check_finite(file: &Path, name: &str, t: &Tensor) -> Result<()> {
    if !t.dtype().is_float() {
        return Ok(());
    }
    let ctx = || format!("checking `{name}` for NaN/Inf");
    let sum = t
        .to_dtype(DType::F32)
        .and_then(|x| x.abs()?.sum_all()?.to_scalar::<f32>())
        .map_err(|source| EvalError::Candle { context: ctx(), source })?;
    if sum.is_finite() {
        return Ok(());
    }
    let values = t
        .to_dtype(DType::F32)
        .and_then(|x| x.flatten_all()?.to_vec1::<f32>())
        .map_err(|source| EvalError::Candle { context: ctx(), source })?;
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(EvalError::NonFiniteWeight {
            path: file.to_path_buf(),
            tensor: name.to_string(),
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Reads and parses `config.json` of a model folder.
pub fn read_config(dir: &Path) -> Result<(PathBuf, serde_json::Value)> {
    let path = dir.join("config.json");
    let text = pareto_core::bounded::read_text(&path, pareto_core::bounded::CONFIG_CAP, "config.json")?;
    let value =
        serde_json::from_str(&text).map_err(|e| EvalError::Config { path: path.clone(), message: e.to_string() })?;
    Ok((path, value))
}

/// `tokenizer.json` of `dir`, or of `fallback` (the original model) when a compressed folder ships none.
pub fn tokenizer_path(dir: &Path, fallback: Option<&Path>) -> Result<PathBuf> {
    let own = dir.join("tokenizer.json");
    if own.is_file() {
        return Ok(own);
    }
    if let Some(f) = fallback {
        let other = f.join("tokenizer.json");
        if other.is_file() {
            return Ok(other);
        }
    }
    Err(EvalError::Tokenizer { path: own, message: "missing (a Hugging Face tokenizer.json is required)".to_string() })
}
