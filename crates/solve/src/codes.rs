//! Codes solved ahead of the export (sequential calibration), handed out tensor by tensor.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;

use pareto_core::quantize::{Clip, Rewrite, Solved, TensorQuantizer, TensorRequest};
use pareto_core::recipe::Algorithm;

use pareto_formats::QTensor;
use serde::{Deserialize, Serialize};

use crate::spill::{Extent, Spill, SpilledInt};

/// What a calibration run decided, keyed by source tensor name: the codes GPTQ chose (with the
/// format they are in), the keep masks of calibrated pruning, AWQ's and SparseGPT's rewrites of
/// values, and the tensors AWQ leaves to the export's rounding. The export asks for each tensor once; an entry is checked
/// against what the export is about to write (format and shape), so codes never land in the
/// wrong place. Integer codes and rewritten values wait in a spill file (see [`crate::spill`]), so
/// what a run holds in memory does not grow with the model's depth.
#[derive(Debug)]
pub struct SolvedCodes {
    algorithms: Vec<Algorithm>,
    spill: Spill,
    entries: Mutex<HashMap<String, (&'static str, Held)>>,
    /// Keep masks of calibrated pruning, one bit per weight.
    masks: Mutex<HashMap<String, (usize, Vec<u64>)>>,
    /// Rewrites, their `values` (a whole tensor's worth) in the spill file.
    rewrites: Mutex<HashMap<String, (Rewrite, Option<Extent>)>>,
    /// Tensors whose codes are the registry codec's rounding of their rescaled values (AWQ), with
    /// the format, the solver's loss and notes for the report.
    rounded: Mutex<HashMap<String, Rounded>>,
}

/// A tensor's solved codes, where they wait, with the solver's loss and notes.
#[derive(Debug)]
struct Held {
    codes: Codes,
    loss: Option<f64>,
    notes: Vec<String>,
}

#[derive(Debug)]
enum Codes {
    Memory(QTensor),
    Spilled(SpilledInt),
}

impl Held {
    fn shape(&self) -> (usize, usize) {
        match &self.codes {
            Codes::Memory(q) => (q.rows(), q.cols()),
            Codes::Spilled(s) => (s.rows(), s.cols()),
        }
    }
}

#[derive(Debug)]
struct Rounded {
    format: &'static str,
    loss: Option<f64>,
    notes: Vec<String>,
}

impl SolvedCodes {
    /// An empty answer serving `algorithms` (its spill file created, unnamed, in the system's
    /// temporary folder).
    pub fn new(algorithms: &[Algorithm]) -> io::Result<Self> {
        Ok(SolvedCodes {
            algorithms: algorithms.to_vec(),
            spill: Spill::new()?,
            entries: Mutex::default(),
            masks: Mutex::default(),
            rewrites: Mutex::default(),
            rounded: Mutex::default(),
        })
    }

    /// Bytes of codes and values waiting on disk.
    pub fn spilled_bytes(&self) -> u64 {
        self.spill.bytes()
    }

    /// Records what AWQ or SparseGPT did to a tensor's values (the values go to the spill file).
    pub fn insert_rewrite(&self, source_name: &str, mut rewrite: Rewrite) -> io::Result<()> {
        let values = rewrite.values.take().map(|v| self.spill.put_f32(&v)).transpose()?;
        self.rewrites.lock().map_err(|_| poisoned())?.insert(source_name.to_string(), (rewrite, values));
        Ok(())
    }

    /// Records that `source_name`'s codes are `format`'s rounding of its rescaled values, with the
    /// solver's loss and notes: the export rounds them again (the same codes, bit for bit) instead
    /// of this holding them.
    pub fn insert_rounded(&self, source_name: &str, format: &'static str, loss: Option<f64>, notes: Vec<String>) {
        if let Ok(mut m) = self.rounded.lock() {
            m.insert(source_name.to_string(), Rounded { format, loss, notes });
        }
    }

    /// Records which weights a calibrated pruning method keeps.
    pub fn insert_mask(&self, source_name: &str, keep: &[bool]) {
        let mut bits = vec![0u64; keep.len().div_ceil(64)];
        for (i, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
            bits[i / 64] |= 1 << (i % 64);
        }
        if let Ok(mut m) = self.masks.lock() {
            m.insert(source_name.to_string(), (keep.len(), bits));
        }
    }

    /// Records a tensor's solved codes (an integer grid's go to the spill file).
    pub fn insert(&self, source_name: &str, format: &'static str, solved: Solved) -> io::Result<()> {
        let codes = match self.spill.put_int(&solved.codes)? {
            Some(spilled) => Codes::Spilled(spilled),
            None => Codes::Memory(solved.codes),
        };
        let held = Held { codes, loss: solved.loss, notes: solved.notes };
        self.entries.lock().map_err(|_| poisoned())?.insert(source_name.to_string(), (format, held));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Per-tensor solver losses, sorted by name.
    pub fn losses(&self) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self
            .entries
            .lock()
            .map(|e| e.iter().filter_map(|(k, (_, h))| h.loss.map(|l| (k.clone(), l))).collect())
            .unwrap_or_default();
        if let Ok(r) = self.rounded.lock() {
            v.extend(r.iter().filter_map(|(k, r)| r.loss.map(|l| (k.clone(), l))));
        }
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

impl TensorQuantizer for SolvedCodes {
    fn serves(&self, algorithm: Algorithm) -> bool {
        self.algorithms.contains(&algorithm)
    }

    fn quantize(&self, request: &TensorRequest<'_>) -> Result<Solved, String> {
        let rounded = self.rounded.lock().map_err(|_| "solver state poisoned".to_string())?;
        if let Some(r) = rounded.get(request.source_name) {
            if r.format != request.format.id {
                return Err(format!(
                    "awq calibrated this tensor for {}, the export writes {}",
                    r.format, request.format.id
                ));
            }
            let codes =
                request.format.quantize(request.weights, request.rows, request.cols).map_err(|e| e.to_string())?;
            return Ok(Solved { codes, loss: r.loss, notes: r.notes.clone() });
        }
        drop(rounded);
        let entries = self.entries.lock().map_err(|_| "solver state poisoned".to_string())?;
        let (format, held) = entries.get(request.source_name).ok_or_else(|| {
            "no calibration statistics reached this tensor (is it a linear layer of a decoder block?)".to_string()
        })?;
        let (rows, cols) = held.shape();
        if *format != request.format.id || rows != request.rows || cols != request.cols {
            return Err(format!(
                "codes were solved as {format} [{rows}, {cols}], the export writes {} [{}, {}]",
                request.format.id, request.rows, request.cols
            ));
        }
        let codes = match &held.codes {
            Codes::Memory(q) => q.clone(),
            Codes::Spilled(s) => self.spill.get_int(s).map_err(|e| format!("reading the solved codes back: {e}"))?,
        };
        Ok(Solved { codes, loss: held.loss, notes: held.notes.clone() })
    }

    fn keep_mask(&self, source_name: &str) -> Option<Vec<bool>> {
        let masks = self.masks.lock().ok()?;
        let (len, bits) = masks.get(source_name)?;
        Some((0..*len).map(|i| bits[i / 64] >> (i % 64) & 1 == 1).collect())
    }

    fn has_mask(&self, source_name: &str) -> bool {
        self.masks.lock().is_ok_and(|m| m.contains_key(source_name))
    }

    fn rewrite(&self, source_name: &str) -> Option<Rewrite> {
        let (rewrite, values) = self.rewrites.lock().ok()?.get(source_name).cloned()?;
        let mut rewrite = rewrite;
        if let Some(e) = values {
            // The export checks the rewrite's length against the tensor: a failed read-back is
            // an empty array there, refused by name, never a silent source value.
            rewrite.values = Some(self.spill.get_f32(e).unwrap_or_default().into());
        }
        Some(rewrite)
    }
}

/// Where a kept calibration's parts lie in its file: written by [`SolvedCodes::keep`] beside the
/// arrays, read back by [`SolvedCodes::open_kept`].
#[derive(Debug, Serialize, Deserialize)]
struct Index {
    algorithms: Vec<Algorithm>,
    entries: Vec<KeptCodes>,
    masks: Vec<KeptMask>,
    rewrites: Vec<KeptRewrite>,
    rounded: Vec<KeptRounded>,
}

#[derive(Debug, Serialize, Deserialize)]
struct KeptCodes {
    name: String,
    format: String,
    codes: SpilledInt,
    loss: Option<f64>,
    notes: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct KeptMask {
    name: String,
    len: usize,
    bits: Extent,
}

#[derive(Debug, Serialize, Deserialize)]
struct KeptRewrite {
    name: String,
    values: Option<Extent>,
    cols: Option<Extent>,
    rows: Option<Extent>,
    clip: Option<(usize, Extent)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct KeptRounded {
    name: String,
    format: String,
    loss: Option<f64>,
    notes: Vec<String>,
}

impl SolvedCodes {
    /// Writes what this holds to `out` — every array (the spill file's, then the masks' and the
    /// rewrites' scale arrays appended to it) — and returns the index that finds them again, for
    /// [`SolvedCodes::open_kept`] over a file whose bytes at some offset are what was written.
    /// Codes held in memory (no integer grid: none of the calibrated methods makes those today)
    /// are refused, so a kept calibration is never partial.
    pub fn keep(&self, out: &mut impl io::Write) -> io::Result<Vec<u8>> {
        let entries = self.entries.lock().map_err(|_| poisoned())?;
        let mut index = Index {
            algorithms: self.algorithms.clone(),
            entries: Vec::with_capacity(entries.len()),
            masks: Vec::new(),
            rewrites: Vec::new(),
            rounded: Vec::new(),
        };
        for (name, (format, held)) in entries.iter() {
            let Codes::Spilled(codes) = held.codes else {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!("`{name}`'s codes are not an integer grid"),
                ));
            };
            let (loss, notes) = (held.loss, held.notes.clone());
            index.entries.push(KeptCodes { name: name.clone(), format: format.to_string(), codes, loss, notes });
        }
        for (name, (len, bits)) in self.masks.lock().map_err(|_| poisoned())?.iter() {
            index.masks.push(KeptMask { name: name.clone(), len: *len, bits: self.spill.put_u64(bits)? });
        }
        for (name, (rewrite, values)) in self.rewrites.lock().map_err(|_| poisoned())?.iter() {
            let put = |v: &Option<std::sync::Arc<[f32]>>| v.as_ref().map(|v| self.spill.put_f32(v)).transpose();
            let clip = match &rewrite.clip {
                Some(c) => Some((c.group, self.spill.put_f32(&c.max)?)),
                None => None,
            };
            let (cols, rows) = (put(&rewrite.cols)?, put(&rewrite.rows)?);
            index.rewrites.push(KeptRewrite { name: name.clone(), values: *values, cols, rows, clip });
        }
        for (name, r) in self.rounded.lock().map_err(|_| poisoned())?.iter() {
            let (format, loss, notes) = (r.format.to_string(), r.loss, r.notes.clone());
            index.rounded.push(KeptRounded { name: name.clone(), format, loss, notes });
        }
        self.spill.copy_to(out)?;
        serde_json::to_vec(&index).map_err(io::Error::other)
    }

    /// The codes kept by [`SolvedCodes::keep`]: its arrays are the `len` bytes at `base` in
    /// `file`, read in place; `index` is what `keep` returned. Every array is checked to lie in
    /// the file with the length its shape implies, and every format to be one this build knows,
    /// before anything is read.
    pub fn open_kept(file: std::fs::File, base: u64, len: u64, index: &[u8]) -> io::Result<Self> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let index: Index = serde_json::from_slice(index).map_err(|e| bad(format!("its index is damaged: {e}")))?;
        let spill = Spill::kept(file, base, len);
        let format = |id: &str| pareto_formats::lookup(id).map(|f| f.id).map_err(|e| bad(e.to_string()));
        let mut entries = HashMap::new();
        for e in index.entries {
            let grid = pareto_formats::lookup(&e.format).ok().and_then(|f| f.int_grid());
            if !e.codes.fits(&spill) || !grid.is_some_and(|g| e.codes.is_of(g)) {
                return Err(bad(format!("`{}`'s codes do not fit the file or their format {}", e.name, e.format)));
            }
            let held = Held { codes: Codes::Spilled(e.codes), loss: e.loss, notes: e.notes };
            entries.insert(e.name, (format(&e.format)?, held));
        }
        let mut masks = HashMap::new();
        for m in index.masks {
            if !spill.holds(m.bits) || m.bits.len() != m.len.div_ceil(64) * 8 {
                return Err(bad(format!("`{}`'s mask does not fit the file", m.name)));
            }
            masks.insert(m.name, (m.len, spill.get_u64(m.bits)?));
        }
        let mut rewrites = HashMap::new();
        for r in index.rewrites {
            let all = [r.values, r.cols, r.rows, r.clip.map(|c| c.1)];
            if !all.into_iter().flatten().all(|e| spill.holds(e)) {
                return Err(bad(format!("`{}`'s rewrite does not fit the file", r.name)));
            }
            let get = |e: Option<Extent>| e.map(|e| spill.get_f32(e).map(Into::into)).transpose();
            let clip = match r.clip {
                Some((group, e)) => Some(Clip { group, max: spill.get_f32(e)?.into() }),
                None => None,
            };
            let rewrite = Rewrite { values: None, cols: get(r.cols)?, rows: get(r.rows)?, clip };
            rewrites.insert(r.name, (rewrite, r.values));
        }
        let mut rounded = HashMap::new();
        for r in index.rounded {
            rounded.insert(r.name, Rounded { format: format(&r.format)?, loss: r.loss, notes: r.notes });
        }
        Ok(SolvedCodes {
            algorithms: index.algorithms,
            spill,
            entries: Mutex::new(entries),
            masks: Mutex::new(masks),
            rewrites: Mutex::new(rewrites),
            rounded: Mutex::new(rounded),
        })
    }
}

fn poisoned() -> io::Error {
    io::Error::other("solver state poisoned")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_handed_out_only_for_the_format_and_shape_they_were_solved_in() {
        let fmt = pareto_formats::lookup("int4_g32_sym").unwrap();
        let w = vec![0.5f32; 4 * 32];
        let codes = SolvedCodes::new(&[Algorithm::Gptq]).unwrap();
        let q = fmt.quantize(&w, 4, 32).unwrap();
        codes.insert("a.weight", fmt.id, Solved { codes: q.clone(), loss: Some(1.0), notes: vec![] }).unwrap();
        assert!(codes.spilled_bytes() >= 4 * 32, "the codes wait on disk");
        let values: std::sync::Arc<[f32]> = w.iter().map(|v| v * 2.0).collect();
        codes.insert_rewrite("a.weight", Rewrite { values: Some(values.clone()), ..Rewrite::default() }).unwrap();
        assert_eq!(codes.rewrite("a.weight").and_then(|r| r.values), Some(values));
        codes.insert_mask("a.weight", &[true, false, true]);
        let ask = |name: &str, rows: usize, format: &'static pareto_formats::Format| {
            codes.quantize(&TensorRequest {
                source_name: name,
                format,
                algorithm: Algorithm::Gptq,
                weights: &w,
                rows,
                cols: 32,
            })
        };
        assert_eq!(ask("a.weight", 4, fmt).map(|s| s.codes), Ok(q));
        assert!(ask("a.weight", 2, fmt).unwrap_err().contains("solved as int4_g32_sym [4, 32]"));
        let other = pareto_formats::lookup("int4_g32_asym").unwrap();
        assert!(ask("a.weight", 4, other).unwrap_err().contains("the export writes int4_g32_asym"));
        assert!(ask("b.weight", 4, fmt).unwrap_err().contains("no calibration statistics"));
        assert_eq!(codes.keep_mask("a.weight"), Some(vec![true, false, true]));
        assert!(codes.has_mask("a.weight") && !codes.has_mask("b.weight"));
        assert!(codes.serves(Algorithm::Gptq) && !codes.serves(Algorithm::Awq));
    }

    #[test]
    fn a_kept_answer_reads_back_as_the_one_that_was_kept() {
        let fmt = pareto_formats::lookup("int4_g32_asym").unwrap();
        let w: Vec<f32> = (0..4 * 64).map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0).collect();
        let codes = SolvedCodes::new(&[Algorithm::Gptq, Algorithm::Awq]).unwrap();
        let q = fmt.quantize(&w, 4, 64).unwrap();
        codes
            .insert("a.weight", fmt.id, Solved { codes: q.clone(), loss: Some(0.25), notes: vec!["n".into()] })
            .unwrap();
        let f = |v: &[f32]| -> std::sync::Arc<[f32]> { v.into() };
        let rewrite = Rewrite {
            values: Some(f(&w)),
            cols: Some(f(&[2.0; 64])),
            rows: Some(f(&[0.5; 4])),
            clip: Some(Clip { group: 32, max: f(&[1.0; 8]) }),
        };
        codes.insert_rewrite("b.weight", rewrite.clone()).unwrap();
        codes.insert_rewrite("norm.weight", Rewrite { cols: Some(f(&[3.0; 64])), ..Rewrite::default() }).unwrap();
        codes.insert_mask("a.weight", &[true, false, true, true, false]);
        codes.insert_rounded("c.weight", fmt.id, Some(0.5), vec!["awq: alpha 0.4".into()]);

        let mut body = b"MAGIC".to_vec();
        let index = codes.keep(&mut body).unwrap();
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), &body).unwrap();
        let open = |len: u64| SolvedCodes::open_kept(std::fs::File::open(tmp.path()).unwrap(), 5, len, &index);
        let kept = open(body.len() as u64 - 5).unwrap();
        let ask = |c: &SolvedCodes, name: &str| {
            let s = c
                .quantize(&TensorRequest {
                    source_name: name,
                    format: fmt,
                    algorithm: Algorithm::Gptq,
                    weights: &w,
                    rows: 4,
                    cols: 64,
                })
                .unwrap();
            (s.codes, s.loss, s.notes)
        };
        assert_eq!(ask(&kept, "a.weight"), ask(&codes, "a.weight"));
        assert_eq!(ask(&kept, "a.weight").0, q);
        assert_eq!(ask(&kept, "c.weight"), ask(&codes, "c.weight"));
        assert_eq!(kept.rewrite("b.weight"), Some(rewrite));
        assert_eq!(kept.rewrite("norm.weight"), codes.rewrite("norm.weight"));
        assert_eq!(kept.keep_mask("a.weight"), Some(vec![true, false, true, true, false]));
        assert_eq!(kept.losses(), codes.losses());
        assert!(kept.serves(Algorithm::Awq) && !kept.serves(Algorithm::Rtn));
        assert!(kept.insert_rewrite("x", Rewrite::default()).is_ok(), "no values: nothing written");
        let values = Rewrite { values: Some(f(&w)), ..Rewrite::default() };
        assert!(kept.insert_rewrite("x", values).is_err(), "a kept answer is read only");

        // An index that points past the file is refused before anything is read.
        let short = open(100).unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::InvalidData, "{short}");
        let damaged = SolvedCodes::open_kept(std::fs::File::open(tmp.path()).unwrap(), 5, 10, b"{not json");
        assert!(damaged.unwrap_err().to_string().contains("index is damaged"));
    }
}
