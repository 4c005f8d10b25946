//! Codes solved ahead of the export (sequential calibration), handed out tensor by tensor.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;

use pareto_core::quantize::{Rewrite, Solved, TensorQuantizer, TensorRequest};
use pareto_core::recipe::Algorithm;

use pareto_formats::QTensor;

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
}
