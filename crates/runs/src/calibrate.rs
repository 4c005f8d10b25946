//! Sequential calibration for GPTQ: layer k is calibrated on the outputs of layers 0..k-1 as
//! already compressed, as the GPTQ reference does.
//!
//! Memory: the hidden states of the calibration set for one layer (windows × window × hidden × 4
//! bytes), that layer's input Hessians (f64, one per distinct input: q/k/v share one, gate/up
//! share one), the model's weights, and the solved codes, which the export then writes. The
//! Hessians of other layers are never held.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use pareto_core::job::JobContext;
use pareto_core::quantize::Solved;
use pareto_core::recipe::{Algorithm, Plan};
use pareto_eval::calibration::{ActivationSink, LinearInput};
use pareto_eval::candle_core::{DType, Device, Tensor};
use pareto_eval::llama::LlamaModel;
use pareto_eval::perplexity::{load_tokenizer, tokenize_up_to};
use pareto_eval::samples::{SampleOptions, SampleSet, load_samples};
use pareto_eval::{EvalError, weights};
use pareto_solve::{GptqFactor, GptqOptions, Hessian, SolveError, SolvedCodes};
use serde::Serialize;

use crate::error::{Result, RunError};

/// What the calibration set is and how it is fed: `windows` windows of `window` tokens (BOS
/// first), cut in file order from the text after its first `skip_chars` characters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationSpec {
    pub samples: PathBuf,
    pub windows: usize,
    pub window: usize,
    /// Characters skipped at the start of the file (so a file also used for evaluation can give
    /// disjoint calibration text).
    pub skip_chars: usize,
    /// GPTQ damping as a fraction of the mean Hessian diagonal.
    pub damp: f64,
    /// GPTQ act-order with static groups (see [`GptqOptions::act_order`]).
    pub act_order: bool,
    /// Within a layer, calibrate o_proj on q/k/v as compressed, down_proj on gate/up as
    /// compressed (one forward pass of the layer per input group instead of one in all).
    pub true_sequential: bool,
}

impl CalibrationSpec {
    /// The GPTQ reference protocol for decoders: 128 windows of 512 tokens, 1% damping.
    pub fn new(samples: impl Into<PathBuf>) -> Self {
        CalibrationSpec {
            samples: samples.into(),
            windows: 128,
            window: 512,
            skip_chars: 0,
            damp: 0.01,
            act_order: true,
            true_sequential: false,
        }
    }
}

/// One solved tensor.
#[derive(Debug, Clone, Serialize)]
pub struct CalibratedTensor {
    pub name: String,
    pub format: &'static str,
    pub algorithm: &'static str,
    pub loss: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What a calibration run did.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationReport {
    pub spec: CalibrationSpec,
    pub windows_used: usize,
    pub tokens: usize,
    /// Said when the protocol could not be met as asked (a text too short for every window).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub tensors: Vec<CalibratedTensor>,
    /// Bytes of the hidden states held between layers.
    pub hidden_bytes: u64,
    /// Bytes of the largest layer's Hessians.
    pub peak_hessian_bytes: u64,
    pub seconds: f64,
}

/// Calibrates the plan's GPTQ tensors of the decoder in `model_dir` on `spec`'s text, layer by
/// layer, and returns their codes for the export (`CompressOptions::solver`).
pub fn calibrate(
    model_dir: &Path,
    plan: &Plan,
    spec: &CalibrationSpec,
    ctx: &JobContext,
) -> Result<(Arc<SolvedCodes>, CalibrationReport)> {
    let started = Instant::now();
    if plan.calibrated().any(|t| t.action.algorithm != Algorithm::Gptq) {
        return Err(invalid("only gptq is calibrated in this build"));
    }
    if spec.window < 2 || spec.windows == 0 {
        return Err(invalid("a calibration protocol needs at least one window of 2 or more tokens"));
    }
    let mut model = LlamaModel::load(model_dir, &Device::Cpu)?;
    if spec.window > model.config().max_position_embeddings {
        return Err(invalid(&format!(
            "calibration windows of {} tokens exceed the model's {} positions",
            spec.window,
            model.config().max_position_embeddings
        )));
    }
    let text = match load_samples(&spec.samples, &SampleOptions::default())? {
        SampleSet::Text(t) => t,
        other => {
            return Err(EvalError::SampleFormat {
                path: spec.samples.clone(),
                message: format!("a decoder is calibrated on plain text, not on {}", other.kind()),
            }
            .into());
        }
    };
    let text: String = text.chars().skip(spec.skip_chars).collect();
    let tokenizer = load_tokenizer(&weights::tokenizer_path(model_dir, None)?)?;
    let per_window = spec.window - 1;
    let tokens = tokenize_up_to(&tokenizer, &text, spec.windows * per_window)?;
    let windows_used = (tokens.len() / per_window).min(spec.windows);
    if windows_used == 0 {
        return Err(EvalError::SampleFormat {
            path: spec.samples.clone(),
            message: format!(
                "{} tokens after skipping {} characters: too short for one calibration window of {} tokens",
                tokens.len(),
                spec.skip_chars,
                spec.window
            ),
        }
        .into());
    }
    let mut notes = Vec::new();
    if windows_used < spec.windows {
        notes.push(format!(
            "the text gives {windows_used} windows of {} tokens, not the {} asked for",
            spec.window, spec.windows
        ));
    }
    let bos = model.config().bos();
    let mut hidden = Vec::with_capacity(windows_used);
    for chunk in tokens.chunks_exact(per_window).take(windows_used) {
        let mut ids = Vec::with_capacity(spec.window);
        ids.push(bos);
        ids.extend_from_slice(chunk);
        let ids = Tensor::new(ids.as_slice(), &Device::Cpu).map_err(eval_err)?.unsqueeze(0).map_err(eval_err)?;
        hidden.push(model.embed(&ids)?);
    }
    let hidden_bytes = hidden.iter().map(|h| (h.elem_count() * h.dtype().size_in_bytes()) as u64).sum();

    let codes = Arc::new(SolvedCodes::new(Algorithm::Gptq));
    let mut tensors = Vec::new();
    let mut peak_hessian_bytes = 0;
    let options = GptqOptions { damp: spec.damp, act_order: spec.act_order, ..GptqOptions::default() };
    ctx.progress.stage("calibration (gptq, layer by layer)", model.num_layers() as u64);
    for li in 0..model.num_layers() {
        // One pass collects every input of the layer, unless each group of linears sharing an
        // input is to be calibrated on inputs computed with the groups before it compressed.
        let mut whole = HessianSink::default();
        if !spec.true_sequential {
            for h in &hidden {
                ctx.checkpoint()?;
                model.run_layer(li, h, Some(&mut whole))?;
            }
            if let Some(e) = whole.error.take() {
                return Err(e);
            }
            peak_hessian_bytes = peak_hessian_bytes.max(whole.bytes());
        }
        for group in model.linear_groups(li) {
            let planned: Vec<_> = group
                .iter()
                .filter_map(|name| {
                    let pt =
                        plan.get(&format!("{name}.weight")).filter(|t| !t.action.drop && t.action.format.is_some())?;
                    Some((name.clone(), pt))
                })
                .collect();
            if planned.is_empty() {
                continue;
            }
            let mut own = HessianSink { only: group.first().cloned(), ..HessianSink::default() };
            if spec.true_sequential && planned.iter().any(|(_, pt)| pt.action.algorithm == Algorithm::Gptq) {
                for h in &hidden {
                    ctx.checkpoint()?;
                    model.run_layer(li, h, Some(&mut own))?;
                }
                if let Some(e) = own.error.take() {
                    return Err(e);
                }
                peak_hessian_bytes = peak_hessian_bytes.max(own.bytes());
            }
            let sink = if spec.true_sequential { &own } else { &whole };
            // The linears of a group read one input: one factorisation serves them all.
            let mut factor: Option<std::result::Result<GptqFactor, SolveError>> = None;
            for (name, pt) in planned {
                ctx.checkpoint()?;
                let weight_name = format!("{name}.weight");
                let fmt = pt.action.format.map(pareto_formats::lookup).transpose().map_err(core_fmt)?;
                let Some(fmt) = fmt else { continue };
                if pt.shape != pt.source_shape || pt.action.prune.is_some() {
                    return Err(invalid(&format!(
                        "`{weight_name}`: gptq calibrates the model as loaded; combine it with structured cuts or pruning in a later build"
                    )));
                }
                let Some(w) = model.linear_weight(&name).cloned() else { continue };
                let (rows, cols) = w.dims2().map_err(eval_err)?;
                let values: Vec<f32> =
                    w.to_dtype(DType::F32).and_then(|t| t.flatten_all()?.to_vec1()).map_err(eval_err)?;
                let solved = if pt.action.algorithm == Algorithm::Gptq {
                    if factor.is_none() {
                        let hessian = sink.of(&name).ok_or_else(|| invalid(&format!("no inputs reached `{name}`")))?;
                        factor = Some(GptqFactor::new(hessian, &options));
                    }
                    let factor = factor.as_ref().ok_or_else(|| invalid("no factor"))?;
                    solve_one(&values, rows, cols, fmt, factor, &options, &weight_name)?
                } else {
                    // Round to nearest, so later layers see this tensor as the export writes it.
                    let q = fmt.quantize(&values, rows, cols).map_err(core_fmt)?;
                    Solved { codes: q, loss: None, notes: Vec::new() }
                };
                let decoded = fmt.dequantize(&solved.codes).map_err(core_fmt)?;
                let t = Tensor::from_vec(decoded, (rows, cols), &Device::Cpu)
                    .and_then(|t| t.to_dtype(w.dtype()))
                    .map_err(eval_err)?;
                model.set_linear_weight(&name, t)?;
                if pt.action.algorithm == Algorithm::Gptq {
                    tensors.push(CalibratedTensor {
                        name: weight_name.clone(),
                        format: fmt.id,
                        algorithm: pt.action.algorithm.label(),
                        loss: solved.loss,
                        notes: solved.notes.clone(),
                    });
                    codes.insert(&weight_name, fmt.id, solved);
                }
            }
        }
        for h in hidden.iter_mut() {
            ctx.checkpoint()?;
            *h = model.run_layer(li, h, None)?;
        }
        ctx.progress.advance(1, &format!("layer {li}"));
    }
    let missing: Vec<&str> = plan
        .calibrated()
        .filter(|t| !tensors.iter().any(|c| c.name == t.source_name))
        .map(|t| t.source_name.as_str())
        .collect();
    if let Some(first) = missing.first() {
        return Err(invalid(&format!(
            "{} tensor(s) planned for gptq are not linear layers of a decoder block (e.g. `{first}`); target the blocks' projections only",
            missing.len()
        )));
    }
    let report = CalibrationReport {
        spec: spec.clone(),
        windows_used,
        tokens: windows_used * spec.window,
        notes,
        tensors,
        hidden_bytes,
        peak_hessian_bytes,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((codes, report))
}

/// GPTQ on one tensor; a Hessian that stays singular with raised damping falls back to round to
/// nearest for this tensor, said by name.
fn solve_one(
    values: &[f32],
    rows: usize,
    cols: usize,
    fmt: &'static pareto_formats::Format,
    factor: &std::result::Result<GptqFactor, SolveError>,
    options: &GptqOptions,
    name: &str,
) -> Result<Solved> {
    match factor.as_ref().map_err(Clone::clone).and_then(|f| f.solve(values, rows, cols, fmt)) {
        Ok(r) => {
            let mut notes = Vec::new();
            if r.damp != options.damp {
                notes.push(format!("gptq: damping raised to {}% to factor the Hessian", r.damp * 100.0));
            }
            if r.dead_columns > 0 {
                notes
                    .push(format!("gptq: {} input column(s) never active in calibration, set to zero", r.dead_columns));
            }
            Ok(Solved { codes: r.codes, loss: Some(r.loss), notes })
        }
        Err(SolveError::NotPositiveDefinite { damp_percent }) => {
            let q = fmt.quantize(values, rows, cols).map_err(core_fmt)?;
            Ok(Solved {
                codes: q,
                loss: None,
                notes: vec![format!(
                    "gptq: Hessian of `{name}` not positive definite even at {damp_percent}% damping; rounded to nearest"
                )],
            })
        }
        Err(e) => Err(invalid(&format!("gptq on `{name}`: {e}"))),
    }
}

/// Accumulates XᵀX per distinct input of one layer (keyed by every linear that reads it), with
/// the Gram matrix of each batch computed by candle's GEMM.
#[derive(Default)]
struct HessianSink {
    /// Keep only the input whose first consumer is this linear (`None`: every input).
    only: Option<String>,
    inputs: BTreeMap<String, Hessian>,
    owners: BTreeMap<String, String>,
    error: Option<RunError>,
}

impl HessianSink {
    fn of(&self, linear: &str) -> Option<&Hessian> {
        self.inputs.get(self.owners.get(linear)?)
    }

    fn bytes(&self) -> u64 {
        self.inputs.values().map(|h| (h.cols() * h.cols() * 8) as u64).sum()
    }

    fn add(&mut self, input: LinearInput<'_>) -> Result<()> {
        let key = input.linears.first().cloned().unwrap_or_default();
        if self.only.as_ref().is_some_and(|o| *o != key) {
            return Ok(());
        }
        for l in input.linears {
            self.owners.insert(l.clone(), key.clone());
        }
        let x = Tensor::from_slice(input.data, (input.rows, input.cols), &Device::Cpu).map_err(eval_err)?;
        let gram: Vec<f32> = x.t().and_then(|t| t.matmul(&x)?.flatten_all()?.to_vec1()).map_err(eval_err)?;
        let h = self.inputs.entry(key).or_insert_with(|| Hessian::new(input.cols));
        h.add_gram(&gram, input.rows).map_err(|e| match e {
            SolveError::NonFinite => invalid(&format!(
                "calibration activations of {:?} hold NaN or Inf (layer {})",
                input.linears, input.layer
            )),
            other => invalid(&other.to_string()),
        })
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

fn invalid(message: &str) -> RunError {
    RunError::Calibration(message.to_string())
}

fn eval_err(e: pareto_eval::candle_core::Error) -> RunError {
    RunError::Eval(EvalError::Candle { context: "calibration".into(), source: e })
}

fn core_fmt(e: pareto_formats::FormatError) -> RunError {
    RunError::Core(pareto_core::Error::Format(e))
}
