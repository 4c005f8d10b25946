//! Test helpers: a tiny safetensors writer that can also produce deliberately broken files.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// A tensor to write: name, dtype name, shape, raw bytes.
pub(crate) type Spec<'a> = (&'a str, &'a str, &'a [usize], Vec<u8>);

/// A valid file: tensors laid out contiguously in the given order.
pub(crate) fn serialize(tensors: &[Spec<'_>], metadata: Option<&[(&str, &str)]>) -> Vec<u8> {
    let mut header = Map::new();
    let mut data = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let begin = data.len();
        data.extend_from_slice(bytes);
        header.insert(name.to_string(), json!({"dtype": dtype, "shape": shape, "data_offsets": [begin, data.len()]}));
    }
    if let Some(meta) = metadata {
        let meta: Map<String, Value> = meta.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        header.insert("__metadata__".to_string(), Value::Object(meta));
    }
    raw_file(&Value::Object(header).to_string(), &data)
}

/// `u64` length + header text + data, with no checks: for malformed inputs.
pub(crate) fn raw_file(header: &str, data: &[u8]) -> Vec<u8> {
    raw_bytes_file(header.as_bytes(), data)
}

pub(crate) fn raw_bytes_file(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out
}

pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Err(e) = std::fs::write(&path, bytes) {
        panic!("writing {}: {e}", path.display());
    }
    path
}

pub(crate) fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub(crate) fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    }
}
