//! A streaming safetensors writer: the header is computed up front from the planned names,
//! dtypes and shapes, then tensor data is written one tensor at a time, never the whole model.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::atomic::HashingFile;
use crate::error::{Error, Result};
use crate::store::DType;

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
}

impl Entry {
    pub fn nbytes(&self) -> Result<u64> {
        self.shape
            .iter()
            .try_fold(self.dtype.size_bytes(), |acc, &d| acc.checked_mul(d as u64))
            .ok_or_else(|| Error::SizeOverflow { tensor: self.name.clone() })
    }
}

/// The byte layout of one output file: entries in write order.
#[derive(Debug, Clone)]
pub struct Layout {
    pub entries: Vec<Entry>,
    pub metadata: BTreeMap<String, String>,
}

impl Layout {
    /// The 8-byte length prefix plus the JSON header, padded with spaces to a multiple of 8 so
    /// tensor data starts aligned (as the reference serializer does).
    pub fn header(&self) -> Result<Vec<u8>> {
        let mut map = Map::new();
        if !self.metadata.is_empty() {
            map.insert("__metadata__".into(), json!(self.metadata));
        }
        let mut offset = 0u64;
        for e in &self.entries {
            let end = offset + e.nbytes()?;
            map.insert(
                e.name.clone(),
                json!({ "dtype": e.dtype.as_str(), "shape": e.shape, "data_offsets": [offset, end] }),
            );
            offset = end;
        }
        let mut text = serde_json::to_vec(&Value::Object(map))
            .map_err(|e| Error::WriterMismatch { expected: "a serializable header".into(), got: e.to_string() })?;
        while (8 + text.len()) % 8 != 0 {
            text.push(b' ');
        }
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&text);
        Ok(out)
    }

    pub fn data_bytes(&self) -> Result<u64> {
        self.entries.iter().try_fold(0u64, |acc, e| Ok(acc + e.nbytes()?))
    }
}

/// Writes a [`Layout`] into a file, checking that tensors arrive in order with the right sizes.
pub struct Writer {
    file: HashingFile,
    layout: Layout,
    next: usize,
    /// Bytes of the current tensor written so far.
    partial: u64,
}

impl Writer {
    pub fn new(mut file: HashingFile, layout: Layout) -> Result<Writer> {
        file.write_all_checked(&layout.header()?)?;
        Ok(Writer { file, layout, next: 0, partial: 0 })
    }

    /// Writes a whole tensor.
    pub fn write_tensor(&mut self, name: &str, data: &[u8]) -> Result<()> {
        self.write_tensor_chunk(name, data)?;
        self.end_tensor(name)
    }

    /// Writes the next part of the current tensor; tensors can be streamed in pieces.
    pub fn write_tensor_chunk(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let expected = self.expect(name)?;
        let want = expected.nbytes()?;
        if self.partial + data.len() as u64 > want {
            return Err(Error::WriterMismatch {
                expected: format!("{} ({want} bytes)", expected.name),
                got: format!("{name} ({} bytes)", self.partial + data.len() as u64),
            });
        }
        self.file.write_all_checked(data)?;
        self.partial += data.len() as u64;
        Ok(())
    }

    /// Closes the current tensor, checking that all its bytes arrived.
    pub fn end_tensor(&mut self, name: &str) -> Result<()> {
        let expected = self.expect(name)?;
        let want = expected.nbytes()?;
        if self.partial != want {
            return Err(Error::WriterMismatch {
                expected: format!("{} ({want} bytes)", expected.name),
                got: format!("{name} ({} bytes)", self.partial),
            });
        }
        self.next += 1;
        self.partial = 0;
        Ok(())
    }

    fn expect(&self, name: &str) -> Result<&Entry> {
        match self.layout.entries.get(self.next) {
            Some(e) if e.name == name => Ok(e),
            Some(e) => Err(Error::WriterMismatch { expected: e.name.clone(), got: name.to_string() }),
            None => Err(Error::WriterMismatch { expected: "no more tensors".into(), got: name.to_string() }),
        }
    }

    pub fn finish(self) -> Result<super::FileRecord> {
        if self.next != self.layout.entries.len() {
            return Err(Error::WriterMismatch {
                expected: format!("{} tensors", self.layout.entries.len()),
                got: format!("{} written", self.next),
            });
        }
        self.file.finish()
    }
}
