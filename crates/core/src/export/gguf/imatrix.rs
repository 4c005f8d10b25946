//! llama.cpp importance matrices: per weight tensor, the sum of x² over the calibration tokens of
//! every input column, and the token count (`llama-imatrix`'s output, read by `llama-quantize
//! --imatrix`). Both of its file formats:
//! - GGUF (`general.type = "imatrix"`): tensors `<name>.in_sum2` (F32, `[cols, n_mat]`) and
//!   `<name>.counts` (F32, `[1, n_mat]`), keys `imatrix.datasets`, `imatrix.chunk_count`,
//!   `imatrix.chunk_size` (tools/imatrix/imatrix.cpp `save_imatrix`, common/imatrix-loader.cpp);
//! - the legacy `.dat`: i32 entry count, then per entry i32 name length, name, i32 ncall, i32 nval,
//!   nval f32 of (sum / count) · ncall; then i32 chunk count and the dataset name (`save_imatrix_legacy`).
//!
//! Names are GGUF tensor names (`blk.0.attn_q.weight`), as llama-quantize looks them up.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::metadata::{MetaValue, ValueType, encode_kv, encode_str};
use super::reader::GgufFile;
use super::{ALIGNMENT, MAGIC, VERSION};
use crate::error::{Error, Result};
use crate::export::protect::SourcePaths;

/// `GGML_TYPE_F32`.
const F32: u32 = 0;

/// One weight's statistics: `sums[m * cols + j]` is Σx² of input column `j` for matrix `m`
/// (one matrix except for MoE experts), `counts[m]` the rows (tokens) summed.
#[derive(Debug, Clone, PartialEq)]
pub struct ImatrixEntry {
    pub sums: Vec<f32>,
    pub counts: Vec<f32>,
}

impl ImatrixEntry {
    /// Input columns per matrix.
    pub fn cols(&self) -> usize {
        self.sums.len() / self.counts.len().max(1)
    }

    /// Mean x² per column (what llama-quantize hands its codecs); 1 where nothing was counted.
    pub fn mean_square(&self) -> Vec<f32> {
        let cols = self.cols();
        self.sums
            .iter()
            .enumerate()
            .map(|(i, s)| match self.counts.get(i / cols.max(1)) {
                Some(&c) if c > 0.0 => s / c,
                _ => 1.0,
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imatrix {
    pub datasets: Vec<String>,
    /// Chunks (windows) of `chunk_size` tokens the statistics were collected on.
    pub chunk_count: u32,
    pub chunk_size: u32,
    /// By GGUF tensor name.
    pub entries: BTreeMap<String, ImatrixEntry>,
    /// The file it was read from (empty when computed), for messages.
    pub source: PathBuf,
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::Imatrix { path: path.to_path_buf(), message: message.into() }
}

impl Imatrix {
    /// The GGUF file's bytes.
    pub fn to_gguf(&self) -> Vec<u8> {
        let kv = [
            ("general.type", MetaValue::String("imatrix".into())),
            (
                "imatrix.datasets",
                MetaValue::Array(
                    ValueType::String,
                    self.datasets.iter().map(|d| MetaValue::String(d.clone())).collect(),
                ),
            ),
            ("imatrix.chunk_count", MetaValue::U32(self.chunk_count)),
            ("imatrix.chunk_size", MetaValue::U32(self.chunk_size)),
        ];
        // Tensors in name order, `.counts` before `.in_sum2` as sorted names give.
        let mut tensors: Vec<(String, [u64; 2], &[f32])> = Vec::new();
        for (name, e) in &self.entries {
            let n_mat = e.counts.len() as u64;
            tensors.push((format!("{name}.counts"), [1, n_mat], &e.counts));
            tensors.push((format!("{name}.in_sum2"), [e.cols() as u64, n_mat], &e.sums));
        }
        let mut h = Vec::new();
        h.extend(MAGIC);
        h.extend(VERSION.to_le_bytes());
        h.extend((tensors.len() as u64).to_le_bytes());
        h.extend((kv.len() as u64).to_le_bytes());
        for (k, v) in &kv {
            encode_kv(k, v, &mut h);
        }
        let mut offset = 0u64;
        for (name, dims, data) in &tensors {
            encode_str(name, &mut h);
            h.extend(2u32.to_le_bytes());
            for d in dims {
                h.extend(d.to_le_bytes());
            }
            h.extend(F32.to_le_bytes());
            h.extend(offset.to_le_bytes());
            offset += (data.len() as u64 * 4).div_ceil(ALIGNMENT) * ALIGNMENT;
        }
        pad(&mut h);
        for (_, _, data) in &tensors {
            for v in *data {
                h.extend(v.to_le_bytes());
            }
            pad(&mut h);
        }
        h
    }

    /// The legacy `.dat` bytes (entries in name order).
    pub fn to_dat(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend((self.entries.len() as i32).to_le_bytes());
        for (name, e) in &self.entries {
            out.extend((name.len() as i32).to_le_bytes());
            out.extend(name.as_bytes());
            let chunk = self.chunk_size.max(1) as f32;
            let max_count = e.counts.iter().copied().fold(0.0f32, f32::max);
            let ncall = (max_count / chunk).ceil().max(1.0);
            out.extend((ncall as i32).to_le_bytes());
            out.extend((e.sums.len() as i32).to_le_bytes());
            for v in e.mean_square() {
                out.extend((v * ncall).to_le_bytes());
            }
        }
        out.extend((self.chunk_count as i32).to_le_bytes());
        let dataset = self.datasets.last().map_or("", String::as_str);
        out.extend((dataset.len() as i32).to_le_bytes());
        out.extend(dataset.as_bytes());
        out
    }

    /// The importance weights of the weight with GGUF name `name` (mean x² per input column).
    pub fn importance(&self, name: &str) -> Option<Vec<f32>> {
        self.entries.get(name).map(ImatrixEntry::mean_square)
    }

    /// Reads either format (GGUF by its magic, else legacy `.dat`).
    pub fn read(path: &Path) -> Result<Imatrix> {
        let mut head = [0u8; 4];
        std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).map_err(|e| Error::io(path, e))?;
        if &head == MAGIC { Self::read_gguf(path) } else { Self::read_dat(path) }
    }

    fn read_gguf(path: &Path) -> Result<Imatrix> {
        let f = GgufFile::open(path)?;
        if f.get("general.type").and_then(MetaValue::as_str) != Some("imatrix") {
            return Err(bad(path, "a GGUF without general.type = \"imatrix\" (a model, not an importance matrix?)"));
        }
        let u32_of = |k: &str| f.get(k).and_then(MetaValue::as_u64).and_then(|v| u32::try_from(v).ok());
        let (Some(chunk_count), Some(chunk_size)) = (u32_of("imatrix.chunk_count"), u32_of("imatrix.chunk_size"))
        else {
            return Err(bad(path, "missing imatrix.chunk_count / imatrix.chunk_size (llama-quantize refuses it too)"));
        };
        let datasets = f
            .get("imatrix.datasets")
            .and_then(MetaValue::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let mut m = Imatrix { datasets, chunk_count, chunk_size, entries: BTreeMap::new(), source: path.to_path_buf() };
        let floats = |name: &str| -> Result<Option<Vec<f32>>> {
            let Some(t) = f.tensor(name) else { return Ok(None) };
            if t.ggml_type != F32 {
                return Err(bad(path, format!("{name} is not F32")));
            }
            Ok(Some(f.dequantize(t)?))
        };
        for t in &f.tensors {
            let Some(base) = t.name.strip_suffix(".in_sum2") else { continue };
            let sums = floats(&t.name)?.unwrap_or_default();
            let counts =
                floats(&format!("{base}.counts"))?.ok_or_else(|| bad(path, format!("{base} has no .counts")))?;
            if counts.is_empty() || sums.len() % counts.len() != 0 {
                return Err(bad(path, format!("{base}: {} sums for {} matrices", sums.len(), counts.len())));
            }
            if sums.iter().chain(&counts).any(|v| !v.is_finite() || *v < 0.0) {
                return Err(bad(path, format!("{base}: negative, NaN or infinite statistics")));
            }
            m.entries.insert(base.to_string(), ImatrixEntry { sums, counts });
        }
        Ok(m)
    }

    fn read_dat(path: &Path) -> Result<Imatrix> {
        let bytes = crate::bounded::read(path, crate::bounded::INDEX_CAP * 64, "imatrix")?;
        let mut pos = 0usize;
        let mut take = |n: usize| -> Result<&[u8]> {
            let s = bytes.get(pos..pos + n).ok_or_else(|| bad(path, format!("truncated at byte {pos}")))?;
            pos += n;
            Ok(s)
        };
        let int = |b: &[u8]| i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let n = int(take(4)?);
        if n <= 0 {
            return Err(bad(path, format!("{n} entries: not a llama.cpp imatrix .dat (or empty)")));
        }
        let mut m = Imatrix { source: path.to_path_buf(), ..Imatrix::default() };
        for _ in 0..n {
            let len = usize::try_from(int(take(4)?)).map_err(|_| bad(path, "negative name length"))?;
            let name = String::from_utf8(take(len)?.to_vec()).map_err(|_| bad(path, "a name is not UTF-8"))?;
            let ncall = int(take(4)?);
            let nval = usize::try_from(int(take(4)?)).map_err(|_| bad(path, "negative value count"))?;
            let raw = take(nval.checked_mul(4).ok_or_else(|| bad(path, "value count overflows"))?)?;
            // Stored as (sum / count) · ncall; keep mean x² · 1 with count 1 so mean_square() is exact.
            let div = if ncall > 0 { ncall as f32 } else { 1.0 };
            let sums: Vec<f32> =
                raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) / div).collect();
            if sums.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(bad(path, format!("{name}: negative, NaN or infinite statistics")));
            }
            m.entries.insert(name, ImatrixEntry { sums, counts: vec![1.0] });
        }
        if let Ok(c) = take(4) {
            m.chunk_count = u32::try_from(int(c)).unwrap_or(0);
            if let Ok(l) = take(4) {
                let len = usize::try_from(int(l)).unwrap_or(0);
                if let Ok(d) = take(len) {
                    m.datasets.push(String::from_utf8_lossy(d).into_owned());
                }
            }
        }
        Ok(m)
    }

    /// Checks the matrix against a model's linear weights (GGUF name → input columns): every
    /// entry must name one of them with its column count. Returns the weights it does not cover.
    pub fn check_against(&self, path: &Path, weights: &BTreeMap<String, usize>) -> Result<Vec<String>> {
        for (name, e) in &self.entries {
            match weights.get(name) {
                None => {
                    return Err(bad(
                        path,
                        format!("`{name}` is not a weight of this model (an imatrix for another model?)"),
                    ));
                }
                Some(&cols) if cols != e.cols() => {
                    return Err(bad(
                        path,
                        format!("`{name}`: {} columns in the imatrix, {cols} in the model", e.cols()),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(weights.keys().filter(|k| !self.entries.contains_key(*k)).cloned().collect())
    }
}

/// A model's weight matrices by GGUF name, with their input columns: what an imatrix's entries
/// must name and match.
pub fn weights_of(model: &crate::store::Model) -> BTreeMap<String, usize> {
    model
        .tensors()
        .iter()
        .filter(|t| t.shape.len() == 2)
        .filter_map(|t| Some((super::names::to_gguf(&t.name)?, *t.shape.last()?)))
        .collect()
}

fn pad(h: &mut Vec<u8>) {
    let rem = h.len() as u64 % ALIGNMENT;
    if rem != 0 {
        h.resize(h.len() + (ALIGNMENT - rem) as usize, 0);
    }
}

/// Writes `bytes` to `path` atomically (a temporary file beside it, then a rename). An existing
/// file is replaced only with `force` and only when it is itself an importance matrix; never one
/// of `sources`.
pub fn write_file(path: &Path, bytes: &[u8], force: bool, sources: &SourcePaths) -> Result<PathBuf> {
    crate::export::atomic::write_small_file(path, bytes, force, sources, "an importance matrix", &|p| {
        Imatrix::read(p).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Imatrix {
        let mut entries = BTreeMap::new();
        entries
            .insert("blk.0.attn_q.weight".into(), ImatrixEntry { sums: vec![4.0, 0.0, 9.0, 1.5], counts: vec![2.0] });
        entries.insert("blk.0.ffn_down.weight".into(), ImatrixEntry { sums: vec![1.0; 6], counts: vec![3.0] });
        Imatrix { datasets: vec!["calib.txt".into()], chunk_count: 3, chunk_size: 512, entries, source: PathBuf::new() }
    }

    #[test]
    fn both_formats_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let m = sample();
        let g = dir.path().join("m.gguf");
        std::fs::write(&g, m.to_gguf()).unwrap();
        assert_eq!(Imatrix::read(&g).unwrap(), Imatrix { source: g.clone(), ..m.clone() });
        let d = dir.path().join("m.dat");
        std::fs::write(&d, m.to_dat()).unwrap();
        let back = Imatrix::read(&d).unwrap();
        assert_eq!((back.chunk_count, back.datasets.clone()), (3, vec!["calib.txt".to_string()]));
        for (name, e) in &m.entries {
            assert_eq!(back.entries[name].mean_square(), e.mean_square(), "{name}");
        }
    }

    #[test]
    fn bad_files_and_other_models_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let m = sample();
        let d = dir.path().join("cut.dat");
        std::fs::write(&d, &m.to_dat()[..20]).unwrap();
        let e = Imatrix::read(&d).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let mut weights = BTreeMap::from([("blk.0.attn_q.weight".to_string(), 4), ("blk.0.ffn_down.weight".into(), 6)]);
        assert_eq!(m.check_against(&d, &weights).unwrap(), Vec::<String>::new());
        weights.insert("blk.0.attn_q.weight".into(), 8);
        let e = m.check_against(&d, &weights).unwrap_err();
        assert!(e.to_string().contains("4 columns in the imatrix, 8 in the model"), "{e}");
        weights.remove("blk.0.attn_q.weight");
        let e = m.check_against(&d, &weights).unwrap_err();
        assert!(e.to_string().contains("another model"), "{e}");

        // Never over a file that is not an importance matrix, replaced only with force.
        let other = dir.path().join("notes.gguf");
        std::fs::write(&other, b"my notes").unwrap();
        assert!(matches!(
            write_file(&other, &m.to_gguf(), false, &SourcePaths::none()),
            Err(Error::OutputExists { .. })
        ));
        assert!(matches!(
            write_file(&other, &m.to_gguf(), true, &SourcePaths::none()),
            Err(Error::OutputNotOurs { .. })
        ));
        assert_eq!(std::fs::read(&other).unwrap(), b"my notes");
        let ours = dir.path().join("i.gguf");
        write_file(&ours, &m.to_gguf(), false, &SourcePaths::none()).unwrap();
        write_file(&ours, &m.to_gguf(), true, &SourcePaths::none()).unwrap();
        assert_eq!(Imatrix::read(&ours).unwrap().entries, m.entries);
    }
}
