//! What one decoder layer's calibration pass keeps per distinct linear input: XᵀX (GPTQ, AWQ),
//! its diagonal alone (Wanda), mean |x| (AWQ); and the output error of a weight change measured
//! with it, by candle's GEMM.

use std::cell::RefCell;
use std::collections::BTreeMap;

use pareto_eval::calibration::{ActivationSink, ChannelStats, LinearInput};
use pareto_eval::candle_core::{DType, Device, Tensor};
use pareto_solve::{Hessian, OutputError, SolveError};

use super::{eval_err, invalid};
use crate::error::{Result, RunError};

/// Rows of XᵀX computed per GEMM (512 × 14336 f32 = 28 MiB for an 8B model's widest input).
pub(super) const GRAM_BAND: usize = 512;

/// Accumulates XᵀX per distinct input of one layer (keyed by every linear that reads it), with
/// the Gram matrix of each batch computed by candle's GEMM.
#[derive(Default)]
pub(super) struct HessianSink {
    /// Keep only the input whose first consumer is this linear (`None`: every input).
    only: Option<String>,
    /// Full XᵀX (GPTQ, AWQ); otherwise only its diagonal (Wanda's input norms), O(cols) per input.
    full: bool,
    /// Also Σ |x| per column (AWQ's activation statistic).
    abs: bool,
    abs_sum: BTreeMap<String, Vec<f64>>,
    inputs: BTreeMap<String, Hessian>,
    /// The diagonal alone, as eval's per-column statistics keep it.
    diagonal: ChannelStats,
    owners: BTreeMap<String, String>,
    pub(super) error: Option<RunError>,
}

impl HessianSink {
    /// A sink for the input first read by `only` (every input: `None`), keeping full XᵀX when
    /// `full` and Σ |x| when `abs`.
    pub(super) fn new(only: Option<String>, full: bool, abs: bool) -> Self {
        HessianSink { only, full, abs, ..HessianSink::default() }
    }

    pub(super) fn of(&self, linear: &str) -> Option<&Hessian> {
        self.inputs.get(self.owners.get(linear)?)
    }

    /// Hands over the Hessian of `linear`'s input (the sink forgets it), for a solver that
    /// factors it in its own storage.
    pub(super) fn take(&mut self, linear: &str) -> Option<Hessian> {
        self.inputs.remove(self.owners.get(linear)?)
    }

    pub(super) fn bytes(&self) -> u64 {
        self.inputs.values().map(|h| (h.cols() * h.cols() * 8) as u64).sum()
    }

    /// Mean |x| per input column of `linear` (with `abs`).
    pub(super) fn abs_mean(&self, linear: &str) -> Option<Vec<f64>> {
        let key = self.owners.get(linear)?;
        let n = self.inputs.get(key)?.rows().max(1) as f64;
        Some(self.abs_sum.get(key)?.iter().map(|s| s / n).collect())
    }

    /// ‖X_j‖ per input column of `linear` (up to a common scale).
    pub(super) fn norms(&self, linear: &str) -> Option<Vec<f32>> {
        let key = self.owners.get(linear)?;
        let sq = match self.inputs.get(key) {
            Some(h) => h.mean_square(),
            None => self.diagonal.inputs.get(key)?.mean_sq(),
        };
        Some(sq.iter().map(|v| v.sqrt() as f32).collect())
    }

    fn add(&mut self, input: LinearInput<'_>) -> Result<()> {
        let key = input.linears.first().cloned().unwrap_or_default();
        if self.only.as_ref().is_some_and(|o| *o != key) {
            return Ok(());
        }
        for l in input.linears {
            self.owners.insert(l.clone(), key.clone());
        }
        let non_finite = || {
            invalid(&format!("calibration activations of {:?} hold NaN or Inf (layer {})", input.linears, input.layer))
        };
        if input.data.iter().any(|v| !v.is_finite()) {
            return Err(non_finite());
        }
        if !self.full {
            return Ok(self.diagonal.accept(input)?);
        }
        if self.abs {
            let sums = self.abs_sum.entry(key.clone()).or_insert_with(|| vec![0.0; input.cols]);
            for row in input.data.chunks_exact(input.cols) {
                for (s, v) in sums.iter_mut().zip(row) {
                    *s += f64::from(v.abs());
                }
            }
        }
        let x = Tensor::from_slice(input.data, (input.rows, input.cols), &Device::Cpu).map_err(eval_err)?;
        let h = self.inputs.entry(key).or_insert_with(|| Hessian::new(input.cols));
        // XᵀX a band of GRAM_BAND rows at a time: a 14336-wide input's whole Gram in f32 (and its
        // copy out of candle) would be 1.5 GiB beside the f64 sum.
        for first in (0..input.cols).step_by(GRAM_BAND) {
            let band = GRAM_BAND.min(input.cols - first);
            let part: Vec<f32> = x
                .narrow(1, first, band)
                .and_then(|xb| xb.t()?.matmul(&x)?.flatten_all()?.to_vec1())
                .map_err(eval_err)?;
            h.add_gram_rows(first, &part).map_err(|e| match e {
                SolveError::NonFinite => non_finite(),
                other => invalid(&other.to_string()),
            })?;
        }
        h.count(input.rows);
        Ok(())
    }
}

impl ActivationSink for HessianSink {
    fn accept(&mut self, input: LinearInput<'_>) -> pareto_eval::Result<()> {
        if self.error.is_none()
            && let Err(e) = self.add(input)
        {
            self.error = Some(e);
        }
        Ok(())
    }
}

/// H = XᵀX / n of one input as an f32 matrix for candle's GEMM: the [`OutputError`] AWQ searches
/// with. Diagonal blocks for the clipping search are cut once per group width.
pub(super) struct Moments {
    h: Tensor,
    cols: usize,
    blocks: RefCell<Option<(usize, Tensor)>>,
}

impl Moments {
    pub(super) fn new(h: &Hessian) -> Result<Self> {
        // `matrix()` is 2 XᵀX / n (GPTQ's normalisation); the mean squared output wants XᵀX / n.
        let m: Vec<f32> = h.matrix().iter().map(|v| (v / 2.0) as f32).collect();
        let cols = h.cols();
        Ok(Moments {
            h: Tensor::from_vec(m, (cols, cols), &Device::Cpu).map_err(eval_err)?,
            cols,
            blocks: RefCell::new(None),
        })
    }

    fn blocks(&self, group: usize) -> std::result::Result<Tensor, pareto_eval::candle_core::Error> {
        if let Some((g, b)) = self.blocks.borrow().as_ref()
            && *g == group
        {
            return Ok(b.clone());
        }
        let parts: Vec<Tensor> = (0..self.cols / group)
            .map(|g| self.h.narrow(0, g * group, group)?.narrow(1, g * group, group))
            .collect::<std::result::Result<_, _>>()?;
        let b = Tensor::stack(&parts, 0)?.contiguous()?;
        *self.blocks.borrow_mut() = Some((group, b.clone()));
        Ok(b)
    }
}

fn backend(e: pareto_eval::candle_core::Error) -> SolveError {
    SolveError::Backend(e.to_string())
}

impl OutputError for Moments {
    fn total(&self, delta: &[f32], rows: usize) -> std::result::Result<f64, SolveError> {
        let d = Tensor::from_slice(delta, (rows, self.cols), &Device::Cpu).map_err(backend)?;
        let e = d.matmul(&self.h).and_then(|hd| (hd * &d)?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>());
        e.map_err(backend)
    }

    fn per_group(&self, delta: &[f32], rows: usize, group: usize) -> std::result::Result<Vec<f64>, SolveError> {
        if group == 0 || !self.cols.is_multiple_of(group) {
            return Err(SolveError::ShapeMismatch { cols: self.cols, got: group });
        }
        let groups = self.cols / group;
        let e = (|| {
            let d = Tensor::from_slice(delta, (rows, groups, group), &Device::Cpu)?.transpose(0, 1)?.contiguous()?;
            let per = (d.matmul(&self.blocks(group)?)? * &d)?.sum(2)?;
            per.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()
        })();
        Ok(e.map_err(backend)?.into_iter().map(f64::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An input wider than one band: the banded Gram equals XᵀX summed directly, and `take`
    /// hands the Hessian over once.
    #[test]
    fn a_wide_input_is_accumulated_band_by_band() {
        let (rows, cols) = (6, GRAM_BAND + 77);
        let x: Vec<f32> = (0..rows * cols).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
        let linears = ["l.down_proj".to_string()];
        let mut sink = HessianSink::new(None, true, false);
        for _ in 0..2 {
            let input = LinearInput { layer: 0, linears: &linears, rows, cols, data: &x };
            sink.accept(input).unwrap();
        }
        assert!(sink.error.is_none());
        let mut direct = Hessian::new(cols);
        direct.add_rows(&x, rows).unwrap();
        direct.add_rows(&x, rows).unwrap();
        let got = sink.take("l.down_proj").unwrap();
        assert_eq!(got.rows(), direct.rows());
        for (a, b) in got.matrix().iter().zip(direct.matrix()) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
        }
        assert!(sink.take("l.down_proj").is_none() && sink.of("l.down_proj").is_none());
    }
}
