//! Codes solved ahead of the export (sequential calibration), handed out tensor by tensor.

use std::collections::HashMap;
use std::sync::Mutex;

use pareto_core::quantize::{Solved, TensorQuantizer, TensorRequest};
use pareto_core::recipe::Algorithm;

/// The codes a calibration run chose, keyed by source tensor name, with the format they are in.
/// The export asks for each tensor once; an entry is checked against what the export is about to
/// write (format and shape), so codes never land in the wrong place.
#[derive(Debug, Default)]
pub struct SolvedCodes {
    algorithm: Option<Algorithm>,
    entries: Mutex<HashMap<String, (&'static str, Solved)>>,
}

impl SolvedCodes {
    pub fn new(algorithm: Algorithm) -> Self {
        SolvedCodes { algorithm: Some(algorithm), entries: Mutex::new(HashMap::new()) }
    }

    pub fn insert(&self, source_name: &str, format: &'static str, solved: Solved) {
        if let Ok(mut e) = self.entries.lock() {
            e.insert(source_name.to_string(), (format, solved));
        }
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
            .map(|e| e.iter().filter_map(|(k, (_, s))| s.loss.map(|l| (k.clone(), l))).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

impl TensorQuantizer for SolvedCodes {
    fn serves(&self, algorithm: Algorithm) -> bool {
        self.algorithm == Some(algorithm)
    }

    fn quantize(&self, request: &TensorRequest<'_>) -> Result<Solved, String> {
        let entries = self.entries.lock().map_err(|_| "solver state poisoned".to_string())?;
        let (format, solved) = entries.get(request.source_name).ok_or_else(|| {
            "no calibration statistics reached this tensor (is it a linear layer of a decoder block?)".to_string()
        })?;
        let c = &solved.codes;
        if *format != request.format.id || c.rows() != request.rows || c.cols() != request.cols {
            return Err(format!(
                "codes were solved as {format} [{}, {}], the export writes {} [{}, {}]",
                c.rows(),
                c.cols(),
                request.format.id,
                request.rows,
                request.cols
            ));
        }
        Ok(solved.clone())
    }
}
