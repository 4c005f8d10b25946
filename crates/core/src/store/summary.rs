//! A serializable overview of a model: what `pareto inspect` prints and the app's model page shows.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::dtype::DType;
use super::roles::Role;
use super::tensor::TensorInfo;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    pub root: PathBuf,
    /// Family name (`llama`, `bert`, ...); `None` without a config.json.
    pub architecture: Option<String>,
    pub model_type: Option<String>,
    /// Elements of floating-point tensors (see `Model::parameter_count`).
    pub parameters: u64,
    pub tensor_count: usize,
    /// Tensor data bytes, all dtypes.
    pub bytes: u64,
    /// Bytes on disk, headers included.
    pub file_bytes: u64,
    pub by_dtype: Vec<DTypeStats>,
    pub by_role: Vec<RoleStats>,
    pub shards: Vec<ShardSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DTypeStats {
    pub dtype: DType,
    pub tensors: usize,
    pub elements: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleStats {
    pub role: Role,
    pub tensors: usize,
    pub elements: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardSummary {
    pub path: PathBuf,
    pub file_size: u64,
    pub header_size: u64,
    pub tensors: usize,
}

/// Per-key totals, in key order (deterministic output).
pub(crate) fn tally<K: Ord + Copy>(
    tensors: &[TensorInfo],
    key: impl Fn(&TensorInfo) -> K,
) -> Vec<(K, usize, u64, u64)> {
    let mut acc: BTreeMap<K, (usize, u64, u64)> = BTreeMap::new();
    for t in tensors {
        let e = acc.entry(key(t)).or_default();
        e.0 += 1;
        e.1 = e.1.saturating_add(t.numel());
        e.2 = e.2.saturating_add(t.nbytes);
    }
    acc.into_iter().map(|(k, (n, el, b))| (k, n, el, b)).collect()
}
