//! Importance matrices as llama.cpp computes them: the original model run over calibration text,
//! Σx² and the token count per input column of every linear weight, named as in a GGUF.

use std::collections::BTreeMap;
use std::path::Path;

use pareto_core::export::gguf::imatrix::{Imatrix, ImatrixEntry, weights_of};
use pareto_core::export::gguf::names;
use pareto_core::job::JobContext;
use pareto_eval::calibration::{CalibrationPlan, ChannelStats, capture_activations};
use pareto_eval::candle_core::Device;
use pareto_eval::llama::LlamaModel;

use crate::calibrate::{CalibrationSpec, calibration_tokens};
use crate::error::Result;

/// Computes the importance matrix of the decoder in `model_dir` on `spec`'s text (the model as
/// loaded, like `llama-imatrix`), with notes on the protocol.
pub fn compute_imatrix(model_dir: &Path, spec: &CalibrationSpec, ctx: &JobContext) -> Result<(Imatrix, Vec<String>)> {
    let model = LlamaModel::load(model_dir, &Device::Cpu)?;
    let (mut tokens, windows, notes) = calibration_tokens(&model, spec)?;
    // capture_activations puts BOS in front of each window's first window - 1 tokens.
    let per_window = spec.window - 1;
    let mut padded = Vec::with_capacity(windows * spec.window);
    for chunk in tokens.chunks(per_window) {
        padded.extend_from_slice(chunk);
        padded.push(0);
    }
    tokens = padded;
    let plan = CalibrationPlan { window: spec.window, windows, bos: model.config().bos() };
    let mut stats = ChannelStats::default();
    capture_activations(&model, &tokens, &plan, &mut stats, ctx)?;
    let mut entries = BTreeMap::new();
    for stat in stats.inputs.values() {
        let sums: Vec<f32> = stat.sum_sq.iter().map(|&v| v as f32).collect();
        for linear in &stat.linears {
            if let Some(name) = names::to_gguf(&format!("{linear}.weight")) {
                entries.insert(name, ImatrixEntry { sums: sums.clone(), counts: vec![stat.rows as f32] });
            }
        }
    }
    let imatrix = Imatrix {
        datasets: vec![spec.samples.display().to_string()],
        chunk_count: windows as u32,
        chunk_size: spec.window as u32,
        entries,
        source: Default::default(),
    };
    Ok((imatrix, notes))
}

/// The model's block weights (what llama-imatrix collects by default) by GGUF name with their
/// input columns, to check an imatrix against.
pub fn imatrix_targets(model: &pareto_core::Model) -> BTreeMap<String, usize> {
    weights_of(model).into_iter().filter(|(name, _)| name.starts_with("blk.")).collect()
}
