//! A general GGUF (v2/v3) reader: header, typed metadata, tensor infos, and tensor data
//! dequantized with the registry codecs. Every count, length and offset read from the file is
//! checked against the file size before it is used; errors name the byte offset.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use pareto_formats::{Kind, QTensor};

use super::metadata::{MetaValue, ValueType};
use super::{MAGIC, types};
use crate::error::{Error, Result};
use crate::source::read_exact_at;

/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;
/// Nesting limit for arrays of arrays.
const MAX_DEPTH: u32 = 4;

#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensor {
    pub name: String,
    /// `dims[0]` is the contiguous row length.
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    /// Offset relative to the data section.
    pub offset: u64,
    pub nbytes: u64,
}

impl GgufTensor {
    /// (rows, row length) of the 2-D view.
    pub fn rows_cols(&self) -> (u64, u64) {
        let cols = self.dims.first().copied().unwrap_or(1);
        (self.dims.iter().skip(1).product::<u64>(), cols)
    }

    /// Shape in PyTorch order (`[out, in]` for a weight).
    pub fn shape(&self) -> Vec<u64> {
        self.dims.iter().rev().copied().collect()
    }
}

#[derive(Debug)]
pub struct GgufFile {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: Vec<(String, MetaValue)>,
    pub tensors: Vec<GgufTensor>,
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_start: u64,
    file: File,
}

struct Cursor<R> {
    r: R,
    pos: u64,
    len: u64,
    path: PathBuf,
}

impl<R: Read> Cursor<R> {
    fn bad(&self, problem: impl Into<String>) -> Error {
        Error::GgufInvalid { path: self.path.clone(), offset: self.pos, problem: problem.into() }
    }

    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        if n > self.len.saturating_sub(self.pos) {
            return Err(self.bad(format!("{what} of {n} bytes runs past the end of the {}-byte file", self.len)));
        }
        let mut buf = vec![0u8; n as usize];
        self.r.read_exact(&mut buf).map_err(|e| Error::io(&self.path, e))?;
        self.pos += n;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let v = self.bytes(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&v);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.u64(what)?;
        let at = self.pos;
        let b = self.bytes(n, what)?;
        String::from_utf8(b).map_err(|e| Error::GgufInvalid {
            path: self.path.clone(),
            offset: at,
            problem: format!("{what} is not UTF-8 ({e})"),
        })
    }

    fn value(&mut self, ty: ValueType, depth: u32) -> Result<MetaValue> {
        Ok(match ty {
            ValueType::U8 => MetaValue::U8(u8::from_le_bytes(self.array("u8")?)),
            ValueType::I8 => MetaValue::I8(i8::from_le_bytes(self.array("i8")?)),
            ValueType::U16 => MetaValue::U16(u16::from_le_bytes(self.array("u16")?)),
            ValueType::I16 => MetaValue::I16(i16::from_le_bytes(self.array("i16")?)),
            ValueType::U32 => MetaValue::U32(self.u32("u32")?),
            ValueType::I32 => MetaValue::I32(i32::from_le_bytes(self.array("i32")?)),
            ValueType::F32 => MetaValue::F32(f32::from_le_bytes(self.array("f32")?)),
            ValueType::Bool => match u8::from_le_bytes(self.array("bool")?) {
                0 => MetaValue::Bool(false),
                1 => MetaValue::Bool(true),
                b => return Err(self.bad(format!("bool value {b} is neither 0 nor 1"))),
            },
            ValueType::String => MetaValue::String(self.string("string value")?),
            ValueType::U64 => MetaValue::U64(self.u64("u64")?),
            ValueType::I64 => MetaValue::I64(i64::from_le_bytes(self.array("i64")?)),
            ValueType::F64 => MetaValue::F64(f64::from_le_bytes(self.array("f64")?)),
            ValueType::Array => {
                if depth >= MAX_DEPTH {
                    return Err(self.bad("arrays nested too deeply"));
                }
                let raw = self.u32("array type")?;
                let et =
                    ValueType::from_u32(raw).ok_or_else(|| self.bad(format!("unknown array element type {raw}")))?;
                let n = self.u64("array length")?;
                // Every element takes at least one byte: a count beyond the rest of the file is a lie.
                if n > self.len.saturating_sub(self.pos) {
                    return Err(self.bad(format!("array of {n} elements cannot fit in the rest of the file")));
                }
                let mut items = Vec::with_capacity(n.min(1 << 20) as usize);
                for _ in 0..n {
                    items.push(self.value(et, depth + 1)?);
                }
                MetaValue::Array(et, items)
            }
        })
    }
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<GgufFile> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut c = Cursor {
            r: BufReader::new(file.try_clone().map_err(|e| Error::io(path, e))?),
            pos: 0,
            len,
            path: path.to_path_buf(),
        };
        let magic: [u8; 4] = c.array("magic")?;
        if &magic != MAGIC {
            return Err(Error::GgufInvalid {
                path: path.to_path_buf(),
                offset: 0,
                problem: format!("magic {magic:02x?} is not \"GGUF\""),
            });
        }
        let version = c.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(c.bad(format!("version {version} is not supported (2 or 3)")));
        }
        let n_tensors = c.u64("tensor count")?;
        let n_kv = c.u64("metadata count")?;
        // Each KV needs ≥ 12 bytes and each tensor info ≥ 24: bound the counts by the file size.
        if n_kv.saturating_mul(12) > len || n_tensors.saturating_mul(24) > len {
            return Err(c.bad(format!("{n_tensors} tensors / {n_kv} metadata pairs cannot fit in a {len}-byte file")));
        }
        let mut metadata = Vec::with_capacity(n_kv as usize);
        for _ in 0..n_kv {
            let key = c.string("metadata key")?;
            let raw = c.u32("metadata type")?;
            let ty = ValueType::from_u32(raw).ok_or_else(|| c.bad(format!("key {key}: unknown value type {raw}")))?;
            let v = c.value(ty, 0)?;
            if metadata.iter().any(|(k, _): &(String, MetaValue)| *k == key) {
                return Err(c.bad(format!("duplicate metadata key {key}")));
            }
            metadata.push((key, v));
        }
        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => 32,
            Some((_, v)) => match v {
                MetaValue::U32(a) if *a > 0 && a.is_multiple_of(8) => u64::from(*a),
                other => return Err(c.bad(format!("general.alignment {other:?} is not a positive u32 multiple of 8"))),
            },
        };
        let mut tensors: Vec<GgufTensor> = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let name = c.string("tensor name")?;
            let n_dims = c.u32("n_dims")?;
            if n_dims > MAX_DIMS {
                return Err(c.bad(format!("tensor {name}: {n_dims} dimensions (max {MAX_DIMS})")));
            }
            let dims = (0..n_dims).map(|_| c.u64("dimension")).collect::<Result<Vec<u64>>>()?;
            let ggml_type = c.u32("tensor type")?;
            let offset = c.u64("tensor offset")?;
            let rows = dims.iter().skip(1).try_fold(1u64, |a, &d| a.checked_mul(d));
            let nbytes = rows
                .and_then(|r| types::nbytes(ggml_type, dims.first().copied().unwrap_or(1), r))
                .ok_or_else(|| {
                    c.bad(format!(
                        "tensor {name}: type {ggml_type} ({}) with dims {dims:?} has no valid byte size",
                        types::name(ggml_type).unwrap_or("unknown")
                    ))
                })?;
            if !offset.is_multiple_of(alignment) {
                return Err(
                    c.bad(format!("tensor {name}: offset {offset} is not a multiple of the alignment {alignment}"))
                );
            }
            if tensors.iter().any(|t| t.name == name) {
                return Err(c.bad(format!("duplicate tensor name {name}")));
            }
            tensors.push(GgufTensor { name, dims, ggml_type, offset, nbytes });
        }
        let data_start = c.pos.div_ceil(alignment) * alignment;
        for t in &tensors {
            let end = data_start.checked_add(t.offset).and_then(|s| s.checked_add(t.nbytes));
            if end.is_none_or(|e| e > len) {
                return Err(Error::GgufTensorInvalid {
                    path: path.to_path_buf(),
                    tensor: t.name.clone(),
                    problem: format!(
                        "data [{}, +{}) runs past the end of the {len}-byte file",
                        data_start.saturating_add(t.offset),
                        t.nbytes
                    ),
                });
            }
        }
        Ok(GgufFile { path: path.to_path_buf(), version, metadata, tensors, alignment, data_start, file })
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn tensor(&self, name: &str) -> Option<&GgufTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The tensor's stored bytes.
    pub fn read_raw(&self, t: &GgufTensor) -> Result<Vec<u8>> {
        let len = usize::try_from(t.nbytes).map_err(|_| Error::SizeOverflow { tensor: t.name.clone() })?;
        let mut buf = vec![0u8; len];
        read_exact_at(&self.file, &mut buf, self.data_start + t.offset).map_err(|e| Error::io(&self.path, e))?;
        Ok(buf)
    }

    /// The tensor as registry blocks (`QTensor::Blocks`) or floats, ready for the codec.
    pub fn qtensor(&self, t: &GgufTensor) -> Result<QTensor> {
        let (rows, cols) = t.rows_cols();
        let (rows, cols) = (rows as usize, cols as usize);
        let bytes = self.read_raw(t)?;
        Ok(match t.ggml_type {
            types::F32 => QTensor::F32 {
                rows,
                cols,
                data: bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            },
            types::F16 => QTensor::F16 {
                rows,
                cols,
                data: bytes.chunks_exact(2).map(|c| half::f16::from_bits(u16::from_le_bytes([c[0], c[1]]))).collect(),
            },
            types::BF16 => QTensor::Bf16 {
                rows,
                cols,
                data: bytes.chunks_exact(2).map(|c| half::bf16::from_bits(u16::from_le_bytes([c[0], c[1]]))).collect(),
            },
            ty => QTensor::Blocks { rows, cols, ggml_type: ty, bytes },
        })
    }

    /// The registry format of a ggml type id.
    pub fn format_of(ggml_type: u32) -> Option<&'static pareto_formats::Format> {
        pareto_formats::registry()
            .iter()
            .find(|f| f.ggml_type == Some(ggml_type) && matches!(f.kind, Kind::GgmlBlock | Kind::Float))
    }

    /// The tensor dequantized to f32 (row-major, `dims[0]` contiguous), bit-identical to ggml's
    /// and gguf-py's dequantization.
    pub fn dequantize(&self, t: &GgufTensor) -> Result<Vec<f32>> {
        let undecodable = || self.undecodable(t);
        if pareto_formats::can_dequantize_ggml(t.ggml_type) {
            let bytes = self.read_raw(t)?;
            return pareto_formats::dequantize_ggml(t.ggml_type, &bytes)
                .map_err(|e| Error::Format(e).for_tensor(&t.name));
        }
        let fmt = GgufFile::format_of(t.ggml_type).filter(|f| f.kind == Kind::Float).ok_or_else(undecodable)?;
        let q = self.qtensor(t)?;
        fmt.dequantize(&q).map_err(|e| Error::Format(e).for_tensor(&t.name))
    }

    /// The error for a tensor whose type Pareto cannot decode.
    pub fn undecodable(&self, t: &GgufTensor) -> Error {
        Error::GgufTensorInvalid {
            path: self.path.clone(),
            tensor: t.name.clone(),
            problem: format!(
                "type {} cannot be decoded (Pareto decodes F32, F16, BF16, {})",
                types::name(t.ggml_type).unwrap_or("unknown"),
                pareto_formats::GGML_DECODABLE
            ),
        }
    }
}
