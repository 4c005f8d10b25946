//! Reading and validating one safetensors header: `u64` little-endian length `N`, `N` bytes of JSON
//! (`name → {dtype, shape, data_offsets}` plus an optional `__metadata__` string map), then data.
//!
//! Only the 8 + N header bytes are read. Every size is computed with checked arithmetic, and the
//! entries are checked against the file length so later reads through the mmap stay in bounds.
//!
//! Layout rule (the same as the reference `safetensors` crate): the order of entries in the JSON
//! does not matter, but sorted by offset they must tile the data section exactly, from 0 to its
//! end. Overlaps, gaps between tensors and trailing bytes are all rejected, so every byte of the
//! data section belongs to exactly one tensor and a file we accept is one every loader accepts.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::dtype::DType;
use crate::error::{Error, Result};

/// Headers above this are rejected before allocating (the reference implementation's cap).
pub const MAX_HEADER_LEN: u64 = 100_000_000;

const METADATA_KEY: &str = "__metadata__";

/// One validated tensor entry; offsets are relative to the start of the data section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub begin: u64,
    pub end: u64,
}

/// A validated header, entries sorted by data offset (file order).
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// `N`: the JSON length; data starts at `8 + N`.
    pub header_len: u64,
    pub metadata: BTreeMap<String, String>,
    pub entries: Vec<Entry>,
}

impl Header {
    pub fn data_start(&self) -> u64 {
        // Cannot overflow: header_len <= MAX_HEADER_LEN.
        8 + self.header_len
    }
}

/// Reads `8 + N` bytes from `file` (positioned at its start) and validates them against `file_len`.
pub(crate) fn read_header(path: &Path, file: &mut File, file_len: u64) -> Result<Header> {
    if file_len < 8 {
        return Err(Error::HeaderTruncated { path: path.to_path_buf(), file_len });
    }
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix).map_err(|e| Error::io(path, e))?;
    let header_len = check_header_len(path, u64::from_le_bytes(prefix), file_len)?;
    let mut json = vec![0u8; header_len];
    file.read_exact(&mut json).map_err(|e| Error::io(path, e))?;
    parse_header(path, &json, file_len)
}

/// Validates `N` against the cap and the file size; returns it as a buffer length.
fn check_header_len(path: &Path, header_len: u64, file_len: u64) -> Result<usize> {
    if header_len > MAX_HEADER_LEN {
        return Err(Error::HeaderTooLarge { path: path.to_path_buf(), header_len, limit: MAX_HEADER_LEN });
    }
    if header_len > file_len.saturating_sub(8) {
        return Err(Error::HeaderBeyondFile { path: path.to_path_buf(), header_len, file_len });
    }
    usize::try_from(header_len).map_err(|_| Error::HeaderTooLarge {
        path: path.to_path_buf(),
        header_len,
        limit: MAX_HEADER_LEN,
    })
}

/// Parses and validates the JSON header bytes of a file of `file_len` bytes.
pub(crate) fn parse_header(path: &Path, json: &[u8], file_len: u64) -> Result<Header> {
    let header_len = json.len() as u64;
    let text = std::str::from_utf8(json)
        .map_err(|e| Error::HeaderNotUtf8 { path: path.to_path_buf(), valid_up_to: e.valid_up_to() })?;
    let raw: RawObject = serde_json::from_str(text).map_err(|e| match e.classify() {
        // Well-formed JSON of the wrong type (array, number...) vs malformed text.
        serde_json::error::Category::Data => Error::HeaderNotObject { path: path.to_path_buf(), detail: e.to_string() },
        _ => Error::HeaderNotJson { path: path.to_path_buf(), source: e },
    })?;

    let mut seen = HashSet::with_capacity(raw.0.len());
    let mut metadata = BTreeMap::new();
    let mut entries = Vec::with_capacity(raw.0.len());
    for (name, value) in raw.0 {
        if !seen.insert(name.clone()) {
            return Err(Error::DuplicateTensor { path: path.to_path_buf(), tensor: name });
        }
        if name == METADATA_KEY {
            metadata = parse_metadata(path, value)?;
        } else {
            entries.push(parse_entry(path, name, &value)?);
        }
    }

    let data_len = file_len.checked_sub(8 + header_len).ok_or_else(|| Error::HeaderBeyondFile {
        path: path.to_path_buf(),
        header_len,
        file_len,
    })?;
    // Stable sort: zero-sized tensors sharing an offset keep their header order.
    entries.sort_by_key(|e| (e.begin, e.end));
    check_layout(path, &entries, data_len, file_len)?;
    Ok(Header { header_len, metadata, entries })
}

/// The top-level object as an ordered list, so duplicate keys are seen rather than silently
/// collapsed (serde_json's map keeps only the last).
struct RawObject(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = RawObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<RawObject, A::Error> {
                let mut out = Vec::new();
                while let Some(pair) = map.next_entry::<String, Value>()? {
                    out.push(pair);
                }
                Ok(RawObject(out))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

fn parse_metadata(path: &Path, value: Value) -> Result<BTreeMap<String, String>> {
    let invalid = |problem: String| Error::MetadataInvalid { path: path.to_path_buf(), problem };
    match value {
        // The reference reader accepts an explicit null as "no metadata".
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                other => Err(invalid(format!("value of `{k}` is {}, not a string", kind(&other)))),
            })
            .collect(),
        other => Err(invalid(format!("found {}", kind(&other)))),
    }
}

fn parse_entry(path: &Path, name: String, value: &Value) -> Result<Entry> {
    let invalid = |name: &str, problem: String| Error::HeaderEntryInvalid {
        path: path.to_path_buf(),
        tensor: name.to_string(),
        problem,
    };
    let Value::Object(obj) = value else {
        return Err(invalid(&name, format!("expected an object, found {}", kind(value))));
    };
    let field = |key: &str| obj.get(key).ok_or_else(|| invalid(&name, format!("missing `{key}`")));

    let dtype_name = field("dtype")?.as_str().ok_or_else(|| invalid(&name, "`dtype` is not a string".to_string()))?;
    let Some(dtype) = DType::parse(dtype_name) else {
        return Err(Error::UnknownDType { path: path.to_path_buf(), tensor: name, dtype: dtype_name.to_string() });
    };

    let dims = u64_array(field("shape")?)
        .ok_or_else(|| invalid(&name, "`shape` is not an array of non-negative integers".to_string()))?;
    let offsets = u64_array(field("data_offsets")?)
        .ok_or_else(|| invalid(&name, "`data_offsets` is not an array of non-negative integers".to_string()))?;
    let &[begin, end] = offsets.as_slice() else {
        return Err(invalid(&name, format!("`data_offsets` has {} values, expected 2", offsets.len())));
    };

    let nbytes = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .and_then(|numel| numel.checked_mul(dtype.size_bytes()));
    let shape: Option<Vec<usize>> = dims.iter().map(|&d| usize::try_from(d).ok()).collect();
    let (Some(nbytes), Some(shape)) = (nbytes, shape) else {
        return Err(Error::TensorSizeOverflow { path: path.to_path_buf(), tensor: name, dtype, shape: dims });
    };

    if begin > end {
        return Err(Error::OffsetsReversed { path: path.to_path_buf(), tensor: name, begin, end });
    }
    let span = end - begin;
    if span != nbytes {
        return Err(Error::TensorByteCountMismatch {
            path: path.to_path_buf(),
            tensor: name,
            dtype,
            shape,
            begin,
            end,
            expected: nbytes,
            got: span,
        });
    }
    Ok(Entry { name, dtype, shape, begin, end })
}

fn u64_array(value: &Value) -> Option<Vec<u64>> {
    value.as_array()?.iter().map(Value::as_u64).collect()
}

/// Checks that entries sorted by offset tile `[0, data_len)` exactly (see the module docs).
fn check_layout(path: &Path, sorted: &[Entry], data_len: u64, file_len: u64) -> Result<()> {
    let mut expected = 0u64;
    let mut previous: Option<&Entry> = None;
    for e in sorted {
        if e.begin < expected {
            let first = previous.map(|p| p.name.clone()).unwrap_or_default();
            return Err(Error::TensorsOverlap {
                path: path.to_path_buf(),
                first,
                first_end: expected,
                second: e.name.clone(),
                second_begin: e.begin,
            });
        }
        if e.begin > expected {
            // A jump past the end of the file is a bogus offset, not a hole in the data.
            if e.begin > data_len {
                return Err(Error::OffsetsOutOfBounds {
                    path: path.to_path_buf(),
                    tensor: e.name.clone(),
                    begin: e.begin,
                    end: e.end,
                    data_len,
                });
            }
            return Err(Error::DataGap {
                path: path.to_path_buf(),
                tensor: e.name.clone(),
                gap_begin: expected,
                gap_end: e.begin,
            });
        }
        expected = e.end;
        previous = Some(e);
    }
    if expected > data_len {
        // The header is self-consistent but the file is cut short: name the first casualty.
        let (tensor, end) =
            sorted.iter().find(|e| e.end > data_len).map_or((String::new(), expected), |e| (e.name.clone(), e.end));
        return Err(Error::DataTruncated { path: path.to_path_buf(), tensor, end, data_len, file_len });
    }
    if expected < data_len {
        return Err(Error::TrailingData { path: path.to_path_buf(), tensors_end: expected, data_len });
    }
    Ok(())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
