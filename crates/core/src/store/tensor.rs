//! What the store knows about each tensor and each shard file, without touching tensor data.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::dtype::DType;
use super::roles::Role;

/// One tensor: where its bytes are and how to interpret them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Index into `Model::shards()`.
    pub shard: usize,
    /// Absolute byte offset of the first element in the shard file.
    pub offset: u64,
    pub nbytes: u64,
    pub role: Role,
}

impl TensorInfo {
    /// Number of elements (1 for a 0-D scalar). Cannot overflow: the header parser checked the
    /// product against the byte span.
    pub fn numel(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }

    /// The 2-D view quantizers and pruners work on: the last dimension is the columns, all others
    /// fold into rows; 0-D and 1-D tensors are a single row.
    pub fn rows_cols(&self) -> (usize, usize) {
        match self.shape.split_last() {
            None => (1, 1),
            Some((&cols, [])) => (1, cols),
            Some((&cols, rest)) => (rest.iter().product(), cols),
        }
    }
}

/// One safetensors file of the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardInfo {
    pub path: PathBuf,
    pub file_size: u64,
    /// `N`, the JSON header length (data starts at `8 + N`).
    pub header_size: u64,
    pub tensor_count: usize,
    /// The header's `__metadata__` string map (empty when absent).
    pub metadata: BTreeMap<String, String>,
}
