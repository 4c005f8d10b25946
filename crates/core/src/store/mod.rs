//! Model store: opens a safetensors model (one file, a folder, or a sharded folder with an index),
//! validates every header, maps the shard files and reads tensors lazily on demand.
//!
//! Opening reads only the headers (8 + N bytes per shard) and `config.json`; tensor data is
//! touched only by [`Model::raw_bytes`] / [`Model::read_f32`]. Non-finite values are not checked
//! here: the compress step does that per tensor.

mod config;
mod dtype;
mod header;
mod roles;
mod shards;
mod summary;
mod tensor;

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests_malformed;
#[cfg(test)]
mod tests_models;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

pub use config::{Architecture, ModelConfig};
pub use dtype::{DType, f8_e4m3_to_f32, f8_e5m2_to_f32, f8_e8m0_to_f32};
/// Raw little-endian bytes → f32 for the float dtypes (None for others); used by streaming readers.
pub(crate) use dtype::{decode_f32, decode_f32_into};
pub use header::MAX_HEADER_LEN;
pub use roles::{Role, classify as classify_role};
pub use summary::{DTypeStats, ModelSummary, RoleStats, ShardSummary};
pub use tensor::{ShardInfo, TensorInfo};

use crate::error::{Error, Result};

/// An opened model. Cheap to share across threads (`Send + Sync`): reads go through read-only maps.
pub struct Model {
    root: PathBuf,
    shards: Vec<ShardInfo>,
    maps: Vec<Mmap>,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
    config: Option<ModelConfig>,
    other_files: Vec<PathBuf>,
    /// Opened as a folder or a shard index (then the whole folder is the source).
    opened_folder: bool,
    /// Other weight files in the folder, not opened.
    ignored: Vec<PathBuf>,
    index: Option<PathBuf>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("root", &self.root)
            .field("shards", &self.shards.len())
            .field("tensors", &self.tensors.len())
            .field("architecture", &self.config.as_ref().map(|c| c.architecture.name()))
            .finish()
    }
}

impl Model {
    /// Opens `path`: a `.safetensors` file, a shard index `.json`, or a folder holding
    /// `model.safetensors.index.json`, `model.safetensors`, or exactly one `*.safetensors` file.
    /// `config.json` next to the weights is optional, but when present it must parse and agree
    /// with the tensor shapes of the families we know.
    ///
    /// A GGUF is read through its Hugging Face conversion, made once into the user's cache
    /// ([`crate::import::open_cached`]); callers that want progress convert first.
    pub fn open(path: impl AsRef<Path>) -> Result<Model> {
        if crate::import::is_gguf(path.as_ref()) {
            let folder = crate::import::open_cached(path.as_ref(), &crate::job::JobContext::silent())?;
            return Model::open(folder);
        }
        let layout = shards::locate(path.as_ref())?;
        let opened_folder = layout.index.is_some() || path.as_ref().is_dir();
        let config = config::load(&layout.root)?;
        let architecture = config.as_ref().map(|c| &c.architecture);

        let mut shard_infos = Vec::with_capacity(layout.shards.len());
        let mut maps = Vec::with_capacity(layout.shards.len());
        let mut tensors = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (shard_index, shard_path) in layout.shards.iter().enumerate() {
            let (info, map, header) = open_shard(shard_path)?;
            let data_start = header.data_start();
            for e in header.entries {
                if let Some(&first) = by_name.get(&e.name) {
                    let first = tensors.get(first).and_then(|t: &TensorInfo| layout.shards.get(t.shard));
                    return Err(Error::TensorInMultipleShards {
                        tensor: e.name,
                        first: first.cloned().unwrap_or_default(),
                        second: shard_path.clone(),
                    });
                }
                // Bounded by the file size, as the header parser checked.
                let offset = data_start + e.begin;
                by_name.insert(e.name.clone(), tensors.len());
                tensors.push(TensorInfo {
                    role: roles::classify(&e.name, architecture),
                    nbytes: e.end - e.begin,
                    name: e.name,
                    dtype: e.dtype,
                    shape: e.shape,
                    shard: shard_index,
                    offset,
                });
            }
            shard_infos.push(info);
            maps.push(map);
        }
        if let Some(index) = &layout.index {
            check_index(index, &layout, &tensors, &by_name)?;
        }
        if let Some(config) = &config {
            config::validate(config, &tensors)?;
        }
        let other_files = shards::companion_files(&layout)?;
        let ignored = if opened_folder { shards::ignored_weight_files(&layout)? } else { Vec::new() };
        Ok(Model {
            root: layout.root,
            shards: shard_infos,
            maps,
            tensors,
            by_name,
            config,
            other_files,
            opened_folder,
            ignored,
            index: layout.index,
        })
    }

    /// What the user should know about how the folder was read: weight files it holds that were
    /// not opened (only `model.safetensors`, or the index's shards, are the model).
    pub fn notes(&self) -> Vec<String> {
        let opened: Vec<String> = self
            .index
            .iter()
            .chain(self.shards.first().map(|s| &s.path).filter(|_| self.index.is_none()))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        self.ignored
            .iter()
            .map(|p| {
                format!(
                    "{} is not part of the model ({} was opened); if it is another copy of the weights, it is ignored",
                    p.display(),
                    opened.join(", ")
                )
            })
            .chain(self.quantized_source())
            .collect()
    }

    /// Why results made from this model are bounded by a quantized original, when it was
    /// converted from a GGUF whose weights were quantized.
    pub fn quantized_source(&self) -> Option<String> {
        self.shards.iter().find_map(|s| crate::import::quantized_source_note(&s.metadata))
    }

    /// What an output must keep clear of: the model folder when a folder (or an index) was opened,
    /// and every file read — weights, index, config.json and the companions an export copies.
    pub fn source_paths(&self) -> crate::export::SourcePaths {
        let config = self.root.join("config.json");
        let files = self
            .shards
            .iter()
            .map(|s| s.path.clone())
            .chain(self.index.clone())
            .chain(config.is_file().then_some(config))
            .chain(self.other_files.iter().cloned())
            .collect();
        let folders = if self.opened_folder { vec![self.root.clone()] } else { Vec::new() };
        crate::export::SourcePaths { folders, files }
    }

    /// Why this model is already a compressed artifact (a compressed-tensors, GPTQ, AWQ, FP8 or
    /// bitsandbytes checkpoint), if it is: its stored values are codes and scales, not weights, so
    /// compressing them again would write garbage. `None` for a dense model.
    pub fn already_compressed(&self) -> Option<String> {
        if let Some(qc) = self.config.as_ref().and_then(|c| c.raw.get("quantization_config")) {
            let method = qc.get("quant_method").and_then(|m| m.as_str()).unwrap_or("unnamed method");
            return Some(format!("its config.json has a quantization_config ({method})"));
        }
        if self.root.join("quantize_config.json").is_file() {
            return Some("it has a quantize_config.json (GPTQ)".into());
        }
        const PACKED: &[&str] = &[
            ".weight_packed",
            ".qweight",
            ".qzeros",
            ".g_idx",
            ".weight_scale",
            ".weight_zero_point",
            ".weight_global_scale",
            ".weight.absmax",
            ".weight.quant_map",
        ];
        self.tensors
            .iter()
            .find(|t| PACKED.iter().any(|s| t.name.ends_with(s)))
            .map(|t| format!("it stores quantized codes and scales (tensor `{}`)", t.name))
    }

    /// The model folder (the file's parent when a single file was opened).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// All tensors: shards in index order, tensors in file (offset) order within each shard.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.by_name
            .get(name)
            .and_then(|&i| self.tensors.get(i))
            .ok_or_else(|| Error::TensorNotFound { name: name.to_string() })
    }

    pub fn shards(&self) -> &[ShardInfo] {
        &self.shards
    }

    pub fn config(&self) -> Option<&ModelConfig> {
        self.config.as_ref()
    }

    pub fn require_config(&self) -> Result<&ModelConfig> {
        self.config.as_ref().ok_or_else(|| Error::ConfigMissing { dir: self.root.clone() })
    }

    /// The tensor's bytes, straight from the map (little-endian, as stored). `t` must come from this
    /// model: a `TensorInfo` from another model is `TensorNotFound`.
    pub fn raw_bytes(&self, t: &TensorInfo) -> Result<&[u8]> {
        let ours = self.tensor(&t.name)?;
        if ours != t {
            return Err(Error::TensorNotFound { name: t.name.clone() });
        }
        let out_of_bounds = || Error::OffsetsOutOfBounds {
            path: self.shards.get(t.shard).map(|s| s.path.clone()).unwrap_or_default(),
            tensor: t.name.clone(),
            begin: t.offset,
            end: t.offset.saturating_add(t.nbytes),
            data_len: self.maps.get(t.shard).map_or(0, |m| m.len() as u64),
        };
        let start = usize::try_from(t.offset).map_err(|_| out_of_bounds())?;
        let len = usize::try_from(t.nbytes).map_err(|_| out_of_bounds())?;
        let end = start.checked_add(len).ok_or_else(out_of_bounds)?;
        self.maps.get(t.shard).and_then(|m| m.get(start..end)).ok_or_else(out_of_bounds)
    }

    /// The tensor converted to f32 (F64 is narrowed; F16/BF16/F8 widened exactly).
    pub fn read_f32(&self, t: &TensorInfo) -> Result<Vec<f32>> {
        let not_float = || Error::NotAFloatTensor { tensor: t.name.clone(), dtype: t.dtype };
        if !t.dtype.is_float() {
            return Err(not_float());
        }
        dtype::decode_f32(t.dtype, self.raw_bytes(t)?).ok_or_else(not_float)
    }

    /// Elements of the floating-point tensors. Integer tensors are left out: they are buffers
    /// (BERT's `position_ids`) or packed quantized data whose element count is not a parameter count.
    pub fn parameter_count(&self) -> u64 {
        self.tensors.iter().filter(|t| t.dtype.is_float()).map(TensorInfo::numel).fold(0, u64::saturating_add)
    }

    pub fn summary(&self) -> ModelSummary {
        let by_dtype = summary::tally(&self.tensors, |t| t.dtype)
            .into_iter()
            .map(|(dtype, tensors, elements, bytes)| DTypeStats { dtype, tensors, elements, bytes })
            .collect();
        let by_role = summary::tally(&self.tensors, |t| t.role)
            .into_iter()
            .map(|(role, tensors, elements, bytes)| RoleStats { role, tensors, elements, bytes })
            .collect();
        ModelSummary {
            root: self.root.clone(),
            architecture: self.config.as_ref().map(|c| c.architecture.name().to_string()),
            model_type: self.config.as_ref().map(|c| c.model_type.clone()),
            parameters: self.parameter_count(),
            tensor_count: self.tensors.len(),
            bytes: self.tensors.iter().map(|t| t.nbytes).fold(0, u64::saturating_add),
            file_bytes: self.shards.iter().map(|s| s.file_size).fold(0, u64::saturating_add),
            by_dtype,
            by_role,
            shards: self
                .shards
                .iter()
                .map(|s| ShardSummary {
                    path: s.path.clone(),
                    file_size: s.file_size,
                    header_size: s.header_size,
                    tensors: s.tensor_count,
                })
                .collect(),
        }
    }

    /// Files an exporter copies next to the compressed weights (tokenizer, generation config,
    /// vocab, README...): regular files directly in the model folder, sorted, excluding weight
    /// files of any framework, shard indexes, hidden files and `config.json` (exporters write
    /// that themselves from `ModelConfig::raw`). Listed once, at open.
    pub fn other_files(&self) -> Vec<PathBuf> {
        self.other_files.clone()
    }
}

/// Reads and validates one shard's header, then maps the file.
fn open_shard(path: &Path) -> Result<(ShardInfo, Mmap, header::Header)> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let header = header::read_header(path, &mut file, file_size)?;
    // SAFETY: the map is read-only and the bytes are only ever read as plain integers/floats, so any
    // content is valid. Another process truncating or rewriting the file while it is mapped can still
    // change what we read or fault the process (SIGBUS); like every mmap-based safetensors loader we
    // accept that, and the header checks above guarantee every slice we take lies inside the file as
    // it was at open.
    #[allow(unsafe_code)]
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let info = ShardInfo {
        path: path.to_path_buf(),
        file_size,
        header_size: header.header_len,
        tensor_count: header.entries.len(),
        metadata: header.metadata.clone(),
    };
    Ok((info, map, header))
}

/// The index and the shards must agree exactly: every listed tensor in its listed shard, and no
/// shard holding a tensor the index does not place there.
fn check_index(
    index: &Path,
    layout: &shards::Layout,
    tensors: &[TensorInfo],
    by_name: &HashMap<String, usize>,
) -> Result<()> {
    let shard_name =
        |i: usize| layout.shards.get(i).and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or_default();
    let shard_path = |name: &str| index.parent().map_or_else(|| PathBuf::from(name), |d| d.join(name));
    for (tensor, shard) in &layout.weight_map {
        let found = by_name.get(tensor).and_then(|&i| tensors.get(i));
        if found.is_none_or(|t| shard_name(t.shard) != shard) {
            return Err(Error::TensorMissingFromShard {
                index: index.to_path_buf(),
                tensor: tensor.clone(),
                shard: shard_path(shard),
            });
        }
    }
    for t in tensors {
        if layout.weight_map.get(&t.name).is_none_or(|s| s != shard_name(t.shard)) {
            return Err(Error::TensorNotInIndex {
                index: index.to_path_buf(),
                tensor: t.name.clone(),
                shard: layout.shards.get(t.shard).cloned().unwrap_or_default(),
            });
        }
    }
    Ok(())
}
