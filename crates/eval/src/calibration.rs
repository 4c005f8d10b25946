//! Calibration activations: the inputs of every linear layer of a decoder on a sample set, streamed
//! to a sink one window at a time. This is the data GPTQ / AWQ / Wanda consume; no algorithm lives
//! here. Memory stays bounded by one batch of activations plus whatever the sink keeps.

use std::collections::BTreeMap;

use candle_core::Tensor;
use pareto_core::job::JobContext;
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::llama::LlamaModel;

/// One batch of inputs to one or more linear layers that share it (q/k/v share the normed hidden
/// state, gate/up share theirs). `data` is row-major `[rows, cols]`: one row per token.
#[derive(Debug, Clone, Copy)]
pub struct LinearInput<'a> {
    /// Decoder layer index.
    pub layer: usize,
    /// Module names of the linear layers that consume this input, e.g.
    /// `model.layers.0.self_attn.q_proj` (the weight is `<name>.weight`).
    pub linears: &'a [String],
    pub rows: usize,
    /// Input features (the weight's column count).
    pub cols: usize,
    pub data: &'a [f32],
}

/// Receives activations as they are produced. The slice is only valid during the call: copy what
/// you need (or reduce it, as [`ChannelStats`] does).
pub trait ActivationSink {
    fn accept(&mut self, input: LinearInput<'_>) -> Result<()>;
}

impl<F: FnMut(LinearInput<'_>) -> Result<()>> ActivationSink for F {
    fn accept(&mut self, input: LinearInput<'_>) -> Result<()> {
        self(input)
    }
}

/// What to feed: `windows` windows of `window` tokens, taken in order from the token stream, each
/// prefixed by BOS (as in the perplexity protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalibrationPlan {
    pub window: usize,
    pub windows: usize,
    pub bos: u32,
}

/// Runs `model` over the planned windows of `tokens`, one window per forward pass, streaming every
/// linear layer's input to `sink`. Returns the number of token positions fed.
pub fn capture_activations(
    model: &LlamaModel,
    tokens: &[u32],
    plan: &CalibrationPlan,
    sink: &mut dyn ActivationSink,
    ctx: &JobContext,
) -> Result<usize> {
    if plan.window < 2 {
        return Err(EvalError::InvalidArgument("calibration window must be at least 2".into()));
    }
    let chunks: Vec<&[u32]> = tokens.chunks_exact(plan.window).take(plan.windows).collect();
    ctx.progress.stage("calibration activations", chunks.len() as u64);
    let mut fed = 0;
    for chunk in chunks {
        if ctx.cancel.is_cancelled() {
            return Err(EvalError::Cancelled);
        }
        let mut input = Vec::with_capacity(plan.window);
        input.push(plan.bos);
        input.extend_from_slice(&chunk[..plan.window - 1]);
        let ids = Tensor::new(input.as_slice(), model.device())?.unsqueeze(0)?;
        model.forward(&ids, None, Some(&mut *sink))?;
        fed += input.len();
        ctx.progress.advance(1, "window");
    }
    Ok(fed)
}

/// Per-input-channel running statistics of one linear layer's input: count, mean of squares and
/// absolute maximum per column. Bounded memory (two vectors per distinct input).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelStats {
    /// Keyed by the first consuming linear's name (see [`LinearInput::linears`]).
    pub inputs: BTreeMap<String, ChannelStat>,
}

/// Statistics for one input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelStat {
    pub linears: Vec<String>,
    pub rows: u64,
    pub sum_sq: Vec<f64>,
    pub abs_max: Vec<f32>,
}

impl ChannelStat {
    /// Mean of x² per column (the diagonal of XᵀX / n).
    pub fn mean_sq(&self) -> Vec<f64> {
        let n = self.rows.max(1) as f64;
        self.sum_sq.iter().map(|s| s / n).collect()
    }
}

impl ActivationSink for ChannelStats {
    fn accept(&mut self, input: LinearInput<'_>) -> Result<()> {
        let key = input.linears.first().cloned().unwrap_or_default();
        let stat = self.inputs.entry(key).or_insert_with(|| ChannelStat {
            linears: input.linears.to_vec(),
            rows: 0,
            sum_sq: vec![0.0; input.cols],
            abs_max: vec![0.0; input.cols],
        });
        if stat.sum_sq.len() != input.cols {
            return Err(EvalError::InvalidArgument(format!(
                "activation width changed from {} to {} for {:?}",
                stat.sum_sq.len(),
                input.cols,
                input.linears
            )));
        }
        for row in input.data.chunks_exact(input.cols) {
            for ((s, m), &v) in stat.sum_sq.iter_mut().zip(stat.abs_max.iter_mut()).zip(row) {
                *s += f64::from(v) * f64::from(v);
                *m = m.max(v.abs());
            }
        }
        stat.rows += input.rows as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn every_linear_input_is_streamed_with_its_shape() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/stories260K");
        let model = LlamaModel::load(&dir, &Device::Cpu).unwrap();
        let tokens: Vec<u32> = (3..3 + 64).collect();
        let plan = CalibrationPlan { window: 16, windows: 3, bos: 1 };
        let mut calls = Vec::new();
        let mut peak_rows = 0;
        let mut record = |x: LinearInput<'_>| -> Result<()> {
            assert_eq!(x.data.len(), x.rows * x.cols);
            peak_rows = peak_rows.max(x.rows);
            calls.push((x.layer, x.linears.to_vec(), x.cols));
            Ok(())
        };
        let fed = capture_activations(&model, &tokens, &plan, &mut record, &JobContext::silent()).unwrap();
        assert_eq!(fed, 48);
        assert_eq!(peak_rows, 16, "one window at a time");
        assert_eq!(calls.len(), 3 * 5 * 4, "windows x layers x distinct inputs");
        assert_eq!(calls[0].1[0], "model.layers.0.self_attn.q_proj");
        assert_eq!(calls[0].2, 64);
        assert_eq!(calls[3].1, vec!["model.layers.0.mlp.down_proj".to_string()]);
        assert_eq!(calls[3].2, 172);

        let mut stats = ChannelStats::default();
        capture_activations(&model, &tokens, &plan, &mut stats, &JobContext::silent()).unwrap();
        assert_eq!(stats.inputs.len(), 20);
        let down = &stats.inputs["model.layers.4.mlp.down_proj"];
        assert_eq!((down.rows, down.sum_sq.len()), (48, 172));
        assert!(down.mean_sq().iter().all(|v| v.is_finite() && *v >= 0.0));
        assert!(down.abs_max.iter().any(|v| *v > 0.0));
    }

    #[test]
    fn cancellation_stops_between_windows() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/stories260K");
        let model = LlamaModel::load(&dir, &Device::Cpu).unwrap();
        let ctx = JobContext::silent();
        ctx.cancel.cancel();
        let mut stats = ChannelStats::default();
        let plan = CalibrationPlan { window: 8, windows: 2, bos: 1 };
        let e = capture_activations(&model, &[5; 32], &plan, &mut stats, &ctx).unwrap_err();
        assert!(matches!(e, EvalError::Cancelled));
        assert!(stats.inputs.is_empty());
    }
}
