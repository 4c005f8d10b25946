//! The one place an export turns weights into codes.
//!
//! Every writer (dense, packed, GGUF) asks [`Pipeline::quantize`]; it picks who chooses the codes:
//! a calibrated solver for tensors the plan gives to one (GPTQ), else the accelerator for the
//! formats it implements exactly, else the registry codec on the CPU (round to nearest). The same
//! solver answers for the masks of calibrated pruning (Wanda). Writers
//! only pack the codes they are given, and every metric is computed from those codes decoded.

use pareto_formats::{Format, QTensor};

use crate::accel::AccelError;
use crate::error::{Error, Result};
use crate::metrics::Sums;
use crate::recipe::{Algorithm, PlannedTensor};
use crate::transform::Pipeline;

/// One tensor to quantize, as a solver sees it.
#[derive(Debug, Clone, Copy)]
pub struct TensorRequest<'a> {
    /// The tensor's name in the source model (`model.layers.0.self_attn.q_proj.weight`): the key
    /// of its calibration statistics.
    pub source_name: &'a str,
    pub format: &'static Format,
    pub algorithm: Algorithm,
    /// Row-major `[rows, cols]`, after structured slicing and pruning, finite.
    pub weights: &'a [f32],
    pub rows: usize,
    pub cols: usize,
}

/// A solver's answer for one tensor.
#[derive(Debug, Clone)]
pub struct Solved {
    pub codes: QTensor,
    /// The solver's own objective for this tensor (GPTQ: Σ (w − q)² / [H⁻¹]ᵢᵢ / 2 over the tensor),
    /// for the per-tensor report.
    pub loss: Option<f64>,
    /// What the solver did differently from its plan, said by name (a raised damping, a fallback
    /// to round-to-nearest for a tensor without statistics).
    pub notes: Vec<String>,
}

/// Chooses codes for the tensors of the algorithms it implements (from calibration statistics it
/// holds). Called once per tensor, in export order, from the export's thread.
pub trait TensorQuantizer: Send + Sync {
    /// Whether this solver answers for `algorithm`.
    fn serves(&self, algorithm: Algorithm) -> bool;

    /// The codes of one tensor. An error stops the export (nothing is written under the final name).
    fn quantize(&self, request: &TensorRequest<'_>) -> std::result::Result<Solved, String>;

    /// Which weights of a tensor a calibrated pruning method (Wanda) keeps, row-major; `None` when
    /// this solver decided nothing for it.
    fn keep_mask(&self, _source_name: &str) -> Option<Vec<bool>> {
        None
    }

    /// Whether [`TensorQuantizer::keep_mask`] has an answer, without building it.
    fn has_mask(&self, source_name: &str) -> bool {
        self.keep_mask(source_name).is_some()
    }

    /// What a calibrated method did to this tensor's source values before the export treats them
    /// (AWQ's scales, SparseGPT's updated weights); `None` when the tensor is written as the
    /// source holds it.
    fn rewrite(&self, _source_name: &str) -> Option<Rewrite> {
        None
    }
}

/// A calibrated method's rewrite of a tensor's source values: new values outright (SparseGPT's
/// pruned and updated weights), or per-channel scales that leave the model's function unchanged
/// (AWQ: a linear's input columns multiplied by `s`, the op that feeds that input — an RMSNorm's
/// weight, the rows of the linear before — divided by `s`), then each group of a row clipped to
/// the range a clipping search chose. Applied by the export to the source values and by the
/// calibration to the model it runs, with one function, so both see the same numbers bit for bit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rewrite {
    /// The values that replace the source's (same length), before any scale.
    pub values: Option<std::sync::Arc<[f32]>>,
    /// Multiply column j by `cols[j]` (the tensor's column count long).
    pub cols: Option<std::sync::Arc<[f32]>>,
    /// Divide row i by `rows[i]` (a 1-D tensor is one row per element).
    pub rows: Option<std::sync::Arc<[f32]>>,
    /// Clamp each group of `group` weights of a row to ±`max[row * groups + g]`.
    pub clip: Option<Clip>,
}

/// [`Rewrite::clip`]: one symmetric bound per group of a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub group: usize,
    pub max: std::sync::Arc<[f32]>,
}

impl Rewrite {
    /// Applies the rewrite (values, then column scales, row scales, clipping) to `w`, row-major.
    /// Refuses a shape it was not computed for.
    pub fn apply(&self, w: &mut [f32]) -> std::result::Result<(), String> {
        if let Some(v) = &self.values {
            if v.len() != w.len() {
                return Err(format!("{} rewritten values for a tensor of {} values", v.len(), w.len()));
            }
            w.copy_from_slice(v);
        }
        if let Some(c) = &self.cols {
            if c.is_empty() || !w.len().is_multiple_of(c.len()) {
                return Err(format!("{} column scales for a tensor of {} values", c.len(), w.len()));
            }
            for row in w.chunks_exact_mut(c.len()) {
                for (v, s) in row.iter_mut().zip(c.iter()) {
                    *v *= s;
                }
            }
        }
        if let Some(r) = &self.rows {
            if r.is_empty() || !w.len().is_multiple_of(r.len()) {
                return Err(format!("{} row scales for a tensor of {} values", r.len(), w.len()));
            }
            let cols = w.len() / r.len();
            for (row, s) in w.chunks_exact_mut(cols).zip(r.iter()) {
                row.iter_mut().for_each(|v| *v /= s);
            }
        }
        if let Some(clip) = &self.clip {
            if clip.group == 0 || !w.len().is_multiple_of(clip.group) || w.len() / clip.group != clip.max.len() {
                return Err(format!(
                    "{} clip bounds of {} weights for a tensor of {} values",
                    clip.max.len(),
                    clip.group,
                    w.len()
                ));
            }
            for (g, m) in w.chunks_exact_mut(clip.group).zip(clip.max.iter()) {
                g.iter_mut().for_each(|v| *v = v.clamp(-m, *m));
            }
        }
        Ok(())
    }

    /// Folds `other` in after `self` (a linear both scaled as a consumer and as a feeder).
    pub fn then(mut self, other: Rewrite) -> Rewrite {
        let product = |a: Option<std::sync::Arc<[f32]>>, b: Option<std::sync::Arc<[f32]>>| match (a, b) {
            (Some(a), Some(b)) => Some(a.iter().zip(b.iter()).map(|(x, y)| x * y).collect()),
            (a, b) => a.or(b),
        };
        self.values = other.values.or(self.values);
        self.cols = product(self.cols, other.cols);
        self.rows = product(self.rows, other.rows);
        self.clip = other.clip.or(self.clip);
        self
    }
}

impl Pipeline<'_> {
    /// The calibrated change of basis of `pt`'s source values (AWQ), if any.
    pub fn rewrite(&self, pt: &PlannedTensor) -> Option<Rewrite> {
        self.solver.and_then(|s| s.rewrite(&pt.source_name))
    }

    /// Codes for `w` (`[rows, cols]`, a whole tensor or a run of its rows) in `fmt`, chosen as the
    /// plan says for `pt`. Refuses a calibrated tensor when no solver serves its algorithm (the
    /// export checks that before any work; this is the backstop).
    pub fn quantize(
        &mut self,
        pt: &PlannedTensor,
        fmt: &'static Format,
        w: &[f32],
        rows: usize,
        cols: usize,
    ) -> Result<Solved> {
        if let Some(solved) = self.chosen_elsewhere(pt, fmt, w, rows, cols)? {
            return Ok(solved);
        }
        let codes = fmt.quantize(w, rows, cols).map_err(|e| Error::Format(e).for_tensor(&pt.name))?;
        Ok(Solved { codes, loss: None, notes: Vec::new() })
    }

    /// [`Pipeline::quantize`] plus the error sums of plain rounding on the CPU, measured by the
    /// encoder row by row while each row is in cache; `None` when the codes came from elsewhere (a
    /// solver, an imatrix, the accelerator), which the caller then decodes to measure.
    pub fn quantize_measured(
        &mut self,
        pt: &PlannedTensor,
        fmt: &'static Format,
        w: &[f32],
        rows: usize,
        cols: usize,
    ) -> Result<(Solved, Option<Sums>)> {
        if let Some(solved) = self.chosen_elsewhere(pt, fmt, w, rows, cols)? {
            return Ok((solved, None));
        }
        let (codes, sums) = fmt.quantize_measured(w, rows, cols).map_err(|e| Error::Format(e).for_tensor(&pt.name))?;
        Ok((Solved { codes, loss: None, notes: Vec::new() }, Some(sums)))
    }

    /// Replaces `w` by the values its codes decode to (what a dense file holds), chosen as
    /// [`Pipeline::quantize`] would. Plain rounding runs in place (`fake_quantize`, the same values
    /// bit for bit), so the dense path holds no codes beside the tensor. Returns the loss and notes.
    pub fn quantize_in_place(
        &mut self,
        pt: &PlannedTensor,
        fmt: &'static Format,
        w: &mut [f32],
        rows: usize,
        cols: usize,
    ) -> Result<(Option<f64>, Vec<String>)> {
        let fail = |e| Error::Format(e).for_tensor(&pt.name);
        match self.chosen_elsewhere(pt, fmt, w, rows, cols)? {
            Some(solved) => {
                w.copy_from_slice(&fmt.dequantize(&solved.codes).map_err(fail)?);
                Ok((solved.loss, solved.notes))
            }
            None => {
                fmt.fake_quantize(w, rows, cols).map_err(fail)?;
                Ok((None, Vec::new()))
            }
        }
    }

    /// Codes not from the registry codec's plain rounding: a calibrated solver's, importance-
    /// weighted ones (an imatrix), or the accelerator's. `None`: plain rounding on the CPU applies.
    fn chosen_elsewhere(
        &mut self,
        pt: &PlannedTensor,
        fmt: &'static Format,
        w: &[f32],
        rows: usize,
        cols: usize,
    ) -> Result<Option<Solved>> {
        let algorithm = pt.action.algorithm;
        if algorithm.needs_calibration() {
            let solver = self.solver.filter(|s| s.serves(algorithm)).ok_or_else(|| Error::NeedsCalibration {
                algorithm: algorithm.label(),
                tensors: 1,
                example: pt.source_name.clone(),
            })?;
            let request =
                TensorRequest { source_name: &pt.source_name, format: fmt, algorithm, weights: w, rows, cols };
            return solver.quantize(&request).map(Some).map_err(|detail| Error::Solver {
                algorithm: algorithm.label(),
                tensor: pt.name.clone(),
                detail,
            });
        }
        // Importance weights (an imatrix) for the ggml types whose scale search takes them; the
        // device codecs do not implement that search, so such tensors stay on the CPU.
        let importance = self
            .imatrix
            .filter(|_| fmt.takes_importance())
            .and_then(|m| m.importance(&crate::export::gguf::names::to_gguf(&pt.source_name)?));
        if let Some(imp) = importance {
            let codes =
                fmt.quantize_weighted(w, rows, cols, &imp).map_err(|e| Error::Format(e).for_tensor(&pt.name))?;
            return Ok(Some(Solved { codes, loss: None, notes: vec!["importance-weighted (imatrix)".into()] }));
        }
        Ok(self.on_device(fmt, w, rows, cols, &pt.name)?.map(|codes| Solved { codes, loss: None, notes: Vec::new() }))
    }

    /// Quantizes on the accelerator when it implements `fmt`: `Some(codes)`, or `None` for the CPU
    /// codec. Running out of device memory hands the tensor back to the CPU (noted in the report);
    /// any other device failure stops the export.
    fn on_device(
        &mut self,
        fmt: &'static Format,
        w: &[f32],
        rows: usize,
        cols: usize,
        tensor: &str,
    ) -> Result<Option<QTensor>> {
        let Some(accel) = self.accel else { return Ok(None) };
        match accel.quantize(fmt, w, rows, cols) {
            None => Ok(None),
            Some(Ok(q)) => {
                self.device_tensors += 1;
                Ok(Some(q))
            }
            Some(Err(AccelError::OutOfMemory { needed_bytes, detail })) => {
                self.device_notes.push(format!(
                    "{}: out of memory for `{tensor}` ({:.1} MiB needed: {detail}); quantized on the CPU",
                    accel.device(),
                    needed_bytes as f64 / 1048576.0
                ));
                Ok(None)
            }
            Some(Err(AccelError::Device(detail))) => {
                Err(Error::Device { device: accel.device(), tensor: tensor.to_string(), detail })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rescale_folded_into_the_norm_keeps_the_layers_function() {
        // y = (x ⊙ g) Wᵀ: scale W's columns by s and divide the norm's weight g by s.
        let (rows, cols) = (3, 4);
        let w: Vec<f32> = (0..rows * cols).map(|i| (i as f32 * 0.37).sin()).collect();
        let g = vec![1.0f32, 0.5, 2.0, -1.5];
        let x = vec![0.3f32, -1.2, 0.8, 2.0];
        let s: std::sync::Arc<[f32]> = vec![2.0f32, 0.25, 1.5, 4.0].into();
        let y = |g: &[f32], w: &[f32]| -> Vec<f32> {
            w.chunks_exact(cols).map(|r| r.iter().zip(g).zip(&x).map(|((w, g), x)| w * g * x).sum()).collect()
        };
        let (mut w2, mut g2) = (w.clone(), g.clone());
        Rewrite { cols: Some(s.clone()), ..Rewrite::default() }.apply(&mut w2).unwrap();
        Rewrite { rows: Some(s.clone()), ..Rewrite::default() }.apply(&mut g2).unwrap();
        for (a, b) in y(&g, &w).iter().zip(y(&g2, &w2)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        // Merged rewrites apply in one pass; clipping bounds each group of a row.
        let both = Rewrite { cols: Some(s.clone()), ..Rewrite::default() }.then(Rewrite {
            rows: Some(vec![2.0f32, 1.0, 0.5].into()),
            clip: Some(Clip { group: 2, max: vec![0.1f32; 6].into() }),
            ..Rewrite::default()
        });
        let mut w3 = w.clone();
        both.apply(&mut w3).unwrap();
        assert!(w3.iter().all(|v| v.abs() <= 0.1));
        assert_eq!(both.cols.as_deref(), Some(&s[..]));
        // Scales for another shape are refused, not applied.
        let e = Rewrite { cols: Some(s), ..Rewrite::default() }.apply(&mut [0.0; 6]).unwrap_err();
        assert!(e.contains("4 column scales for a tensor of 6 values"), "{e}");
        let e = both.apply(&mut [0.0; 8]).unwrap_err();
        assert!(e.contains("row scales"), "{e}");
    }
}
