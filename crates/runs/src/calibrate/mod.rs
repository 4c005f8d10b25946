//! Sequential calibration for GPTQ, AWQ and Wanda: layer k is calibrated on the outputs of layers
//! 0..k-1 as already compressed, as the GPTQ reference does.
//!
//! Memory ([`predicted_peak`], checked against the memory available before anything is read):
//! the hidden states of the calibration set for one layer (windows × window × hidden × 4 bytes);
//! that layer's input Hessians (f64, one per distinct input: q/k/v share one, gate/up share one),
//! each factored in its own storage and freed once its group is solved (the widest first); one
//! linear's F32 weights at a time (the model is streamed: a linear is read from its file at each
//! use, and only the decoded replacements of solved linears stay); the keep masks of calibrated
//! pruning (a bit a weight). GPTQ's codes and SparseGPT's values wait in an unnamed temporary file
//! for the export, so nothing held grows with the model's depth.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use pareto_core::cache::CacheFolder;
use pareto_core::job::JobContext;
use pareto_core::prune::wanda::keep_mask;
use pareto_core::prune::{prune_magnitude, prune_n_m};
use pareto_core::quantize::{Rewrite, Solved};
use pareto_core::recipe::{Algorithm, Plan, PlannedTensor, PruneScope, PruneSpec};
use pareto_eval::candle_core::{DType, Device, Tensor};
use pareto_eval::llama::{LlamaConfig, LlamaModel};
use pareto_eval::perplexity::{load_tokenizer, tokenize_up_to};
use pareto_eval::samples::{SampleOptions, SampleSet, load_samples};
use pareto_eval::{EvalError, weights};
use pareto_solve::{GptqFactor, GptqOptions, Hessian, SolveError, SolvedCodes};
use serde::{Deserialize, Serialize};

use crate::error::{Result, RunError};

mod awq;
mod kept;
mod sink;

use sink::HessianSink;

/// What the calibration set is and how it is fed: `windows` windows of `window` tokens (BOS
/// first), cut in file order from the text after its first `skip_chars` characters.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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

/// One tensor a calibration set decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibratedTensor {
    pub name: String,
    pub format: Option<String>,
    /// The plan's label: `int4_g32_sym gptq`, `wanda 50%`, `wanda 2:4 + int8_channel`.
    pub method: String,
    pub loss: Option<f64>,
    /// What the solver chose (AWQ's α and clipping), for the report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<String>,
    /// Where the tensor departed from its method (a fallback, a raised damping), said to the user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What a calibration run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    pub spec: CalibrationSpec,
    pub windows_used: usize,
    pub tokens: usize,
    /// Said when the protocol could not be met as asked (a text too short for every window).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub tensors: Vec<CalibratedTensor>,
    /// Bytes of the hidden states held between layers.
    pub hidden_bytes: u64,
    /// Bytes of the largest layer's Hessians.
    pub peak_hessian_bytes: u64,
    /// What the run was predicted to hold at its peak, checked against the memory available
    /// before anything was loaded.
    pub predicted_peak: PeakMemory,
    /// Solved codes and values that waited in the spill file for the export.
    pub spilled_bytes: u64,
    /// Wall time of the calibration (of the run that computed it, when reused).
    pub seconds: f64,
    /// The cache entry this result was read from, when an earlier run had computed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused: Option<PathBuf>,
}

/// The parts of a calibration run's peak memory (bytes). The largest moment is a layer's feed
/// (its Hessians being summed, a linear read for each window) or the first solve after it (the
/// widest input's factor built in its Hessian's own storage, that linear's weights beside it).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PeakMemory {
    /// The calibration set's hidden states, F32.
    pub hidden: u64,
    /// Weights beside the Hessians: the largest linear's F32 twice (read from the file, and its
    /// values being solved; streamed linears are read per use), or all of the layer's decoded
    /// linears once its Hessians are freed, whichever is larger.
    pub weights: u64,
    /// The input Hessians summed at once (all of a layer's, or the largest group's with
    /// true-sequential), f64, plus one band of the Gram being added.
    pub hessians: u64,
    /// One window's activations inside the layer (the MLP's three intermediate products).
    pub activations: u64,
    /// What waits in memory for the export: the keep masks of calibrated pruning (a bit a weight;
    /// GPTQ's codes and SparseGPT's values wait in a spill file, see `SolvedCodes`).
    pub held: u64,
    /// The process beside it: tokenizer, embedding rows, code.
    pub margin: u64,
}

impl PeakMemory {
    pub fn total(&self) -> u64 {
        self.hidden + self.weights + self.hessians + self.activations + self.held + self.margin
    }
}

/// [`PeakMemory`] of calibrating `plan` on `windows` windows (the formula BENCHMARKS.md checks
/// against a measurement).
pub fn predicted_peak(config: &LlamaConfig, plan: &Plan, spec: &CalibrationSpec, windows: usize) -> PeakMemory {
    let (h, ff) = (config.hidden_size as u64, config.intermediate_size as u64);
    let attn = (config.num_attention_heads * config.head_dim()) as u64;
    let kv = (config.kv_heads() * config.head_dim()) as u64;
    let layer_weights = 4 * (h * (attn + 2 * kv) + attn * h + 3 * h * ff);
    // Phi-3's fused projections are one linear each: q/k/v together, gate and up together.
    let largest = if config.fused() { 4 * (2 * h * ff).max(h * (attn + 2 * kv)) } else { 4 * (h * ff).max(h * attn) };
    let full = plan.calibrated().any(|t| {
        matches!(t.action.algorithm, Algorithm::Gptq | Algorithm::Awq)
            || t.action.prune.as_ref().is_some_and(PruneSpec::is_sparsegpt)
    });
    // Inputs: q/k/v and gate/up read `h` columns, o_proj `attn`, down_proj `ff`.
    let inputs = [h, attn, h, ff];
    let hessians = if !full {
        8 * inputs.iter().sum::<u64>()
    } else if spec.true_sequential {
        8 * inputs.iter().map(|c| c * c).max().unwrap_or(0)
    } else {
        8 * inputs.iter().map(|c| c * c).sum::<u64>()
    };
    let band = 2 * 4 * sink::GRAM_BAND as u64 * inputs.iter().max().copied().unwrap_or(0);
    let held = plan
        .calibrated()
        .filter(|t| t.action.prune.is_some())
        .map(|t| t.shape.iter().map(|&d| d as u64).product::<u64>().div_ceil(8))
        .sum();
    let hessians = hessians + if full { band } else { 0 };
    PeakMemory {
        hidden: 4 * (windows * spec.window) as u64 * h,
        weights: (2 * largest).max(layer_weights.saturating_sub(hessians)),
        hessians,
        activations: 4 * spec.window as u64 * (3 * ff + 4 * h),
        held,
        margin: 256 << 20,
    }
}

/// Calibrates the plan's calibrated tensors of the decoder in `model_dir` on `spec`'s text, layer
/// by layer, and returns their codes for the export (`CompressOptions::solver`) — or the result an
/// earlier run kept in the cache folder for the same weights, text, protocol and blocks' recipe.
pub fn calibrate(
    model_dir: &Path,
    plan: &Plan,
    spec: &CalibrationSpec,
    ctx: &JobContext,
) -> Result<(Arc<SolvedCodes>, CalibrationReport)> {
    calibrate_with(model_dir, plan, spec, &CacheFolder::Default, ctx)
}

/// [`calibrate`], keeping results in `cache` (`<cache folder>/calibrations` by default).
pub fn calibrate_with(
    model_dir: &Path,
    plan: &Plan,
    spec: &CalibrationSpec,
    cache: &CacheFolder,
    ctx: &JobContext,
) -> Result<(Arc<SolvedCodes>, CalibrationReport)> {
    ctx.checkpoint()?;
    let Some(folder) = cache.folder("calibrations") else { return compute(model_dir, plan, spec, ctx) };
    let key = kept::key_of(model_dir, plan, spec, ctx)?;
    let path = folder.join(kept::file_name(&key));
    let mut notes = Vec::new();
    if path.exists() {
        match kept::open(&path, &key) {
            Ok((codes, mut report)) => {
                ctx.progress.log(&format!(
                    "calibration: reused the result kept in {} (same weights, text, protocol and blocks' recipe; it took {:.1} s)",
                    path.display(),
                    report.seconds
                ));
                report.spec = spec.clone();
                report.reused = Some(path);
                return Ok((codes, report));
            }
            Err(why) => {
                notes.push(format!("the kept calibration {} was not used ({why}); computed again", path.display()))
            }
        }
    }
    let (codes, mut report) = compute(model_dir, plan, spec, ctx)?;
    if let Err(e) = kept::keep(&path, &key, &codes, &report) {
        notes.push(format!(
            "the calibration could not be kept in {} ({e}); the next run computes it again",
            folder.display()
        ));
    }
    report.notes.extend(notes);
    Ok((codes, report))
}

/// The calibration itself (see [`calibrate`]).
fn compute(
    model_dir: &Path,
    plan: &Plan,
    spec: &CalibrationSpec,
    ctx: &JobContext,
) -> Result<(Arc<SolvedCodes>, CalibrationReport)> {
    let started = Instant::now();
    // Streamed: one decoder layer's weights in memory at a time.
    let mut model = LlamaModel::load_streamed(model_dir, &Device::Cpu)?;
    if model.config().gemma() && plan.calibrated().any(|t| t.action.algorithm == Algorithm::Awq) {
        return Err(invalid(
            "awq on Gemma 2 is not built: its RMSNorms scale by 1 + w, which folding AWQ's scales into them does not account for yet; use gptq",
        ));
    }
    let (tokens, windows_used, notes) = calibration_tokens(&model, spec)?;
    let memory = predicted_peak(model.config(), plan, spec, windows_used);
    if let Some(available) = pareto_eval::compare::available_memory()
        && memory.total() > available
    {
        return Err(RunError::Eval(EvalError::WouldNotFit { needs: memory.total(), available }));
    }
    let per_window = spec.window - 1;
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

    let codes = Arc::new(SolvedCodes::new(&[Algorithm::Gptq, Algorithm::Awq]).map_err(spill_err)?);
    let mut tensors = Vec::new();
    let mut peak_hessian_bytes = 0;
    let options = GptqOptions { damp: spec.damp, act_order: spec.act_order, ..GptqOptions::default() };
    let uses = |a: Algorithm| plan.calibrated().any(|t| t.action.algorithm == a);
    let mut awq_unscaled = 0;
    let sparsegpt = plan.calibrated().any(|t| t.action.prune.as_ref().is_some_and(PruneSpec::is_sparsegpt));
    let (full, abs) = (uses(Algorithm::Gptq) || uses(Algorithm::Awq) || sparsegpt, uses(Algorithm::Awq));
    ctx.progress.stage("calibration (layer by layer)", model.num_layers() as u64);
    for li in 0..model.num_layers() {
        ctx.checkpoint()?;
        model.load_layer(li)?;
        let awq_here = awq::has_awq(&model, li, plan);
        // One pass collects every input of the layer, unless each group of linears sharing an
        // input is to be calibrated on inputs computed with the groups before it compressed
        // (AWQ searches every input of the layer on one pass).
        let mut whole = HessianSink::new(None, full, abs);
        if !spec.true_sequential || awq_here {
            feed(&model, li, &hidden, &mut whole, ctx)?;
            peak_hessian_bytes = peak_hessian_bytes.max(whole.bytes());
        }
        let mut awq_solved = BTreeMap::new();
        if awq_here {
            if let Some(other) = model.linear_groups(li).iter().flatten().find_map(|n| {
                plan.get(&format!("{n}.weight"))
                    .filter(|t| t.action.needs_calibration() && t.action.algorithm != Algorithm::Awq)
            }) {
                return Err(invalid(&format!(
                    "layer {li} mixes awq with {} (`{}`): awq rewrites the layer's inputs, which the other method's statistics would no longer describe; use one calibrated method per layer",
                    other.action.label(),
                    other.source_name
                )));
            }
            ctx.checkpoint()?;
            let layer = awq::awq_layer(&mut model, li, plan, &whole, &awq::options())?;
            for (name, r) in layer.rewrites {
                codes.insert_rewrite(&name, r).map_err(spill_err)?;
            }
            awq_solved = layer.solved;
        }
        // With the layer's statistics from one pass, the groups are independent: the widest input
        // (down_proj's) is solved first, while no decoded weight of the layer is held yet. The
        // report keeps the layer's order.
        let mut groups: Vec<(usize, Vec<String>)> = model.linear_groups(li).into_iter().enumerate().collect();
        if !spec.true_sequential || awq_here {
            groups.sort_by_key(|(_, g)| std::cmp::Reverse(whole.of(&g[0]).map_or(0, Hessian::cols)));
        }
        let mut layer_tensors: Vec<(usize, CalibratedTensor)> = Vec::new();
        for (gi, group) in groups {
            let planned: Vec<_> = group
                .iter()
                .filter_map(|name| {
                    let pt = plan.get(&format!("{name}.weight")).filter(|t| !t.action.drop && !t.action.is_keep())?;
                    Some((name.clone(), pt))
                })
                .collect();
            if planned.is_empty() {
                drop(whole.take(&group[0]));
                continue;
            }
            let mut own = HessianSink::new(group.first().cloned(), full, false);
            if spec.true_sequential && !awq_here && planned.iter().any(|(_, pt)| pt.action.needs_calibration()) {
                feed(&model, li, &hidden, &mut own, ctx)?;
                peak_hessian_bytes = peak_hessian_bytes.max(own.bytes());
            }
            let sink = if spec.true_sequential && !awq_here { &mut own } else { &mut whole };
            // The group's Hessian goes into the one factor that needs it, factored in its own
            // storage, unless another solve or Wanda's norms read it too.
            let wants = |f: &dyn Fn(&PlannedTensor) -> bool| planned.iter().any(|(_, pt)| f(pt));
            let sparse = wants(&|pt| pt.action.prune.as_ref().is_some_and(PruneSpec::is_sparsegpt));
            let gptq_only = wants(&|pt| {
                pt.action.algorithm == Algorithm::Gptq && !pt.action.prune.as_ref().is_some_and(PruneSpec::is_sparsegpt)
            });
            let wanda = wants(&|pt| {
                pt.action.prune.as_ref().is_some_and(|p| !p.is_sparsegpt() && p.calibrated_pattern().is_some())
            });
            let consume = sparse != gptq_only && !wanda;
            // The linears of a group read one input: one factorisation serves them all (one in
            // natural column order for SparseGPT, whose masks cover runs of columns).
            let mut factor: Option<std::result::Result<GptqFactor, SolveError>> = None;
            let mut natural: Option<GptqFactor> = None;
            // A factor that takes the Hessian is built before any weight of the group is read:
            // the widest input's f64 matrix then shares memory with no weights. (When one is, it
            // is the only factor the group needs, so the loop below builds its factors from a
            // copy, never consuming.)
            if consume {
                let first = &planned[0].0;
                if gptq_only {
                    factor = Some(factor_of(sink, first, true, &options)?);
                } else {
                    let opts = GptqOptions { act_order: false, ..options };
                    let f = factor_of(sink, first, true, &opts)?;
                    natural = Some(f.map_err(|e| invalid(&format!("sparsegpt on `{first}`: {e}")))?);
                }
            }
            for (name, pt) in planned {
                ctx.checkpoint()?;
                let weight_name = format!("{name}.weight");
                if pt.shape != pt.source_shape {
                    return Err(invalid(&format!(
                        "`{weight_name}`: calibration runs on the model as loaded; structured cuts and calibrated methods cannot be combined yet"
                    )));
                }
                let Some(w) = model.linear_weight(&name)? else { continue };
                let (rows, cols) = w.dims2().map_err(eval_err)?;
                let mut values: Vec<f32> =
                    w.to_dtype(DType::F32).and_then(|t| t.flatten_all()?.to_vec1()).map_err(eval_err)?;
                let dtype = w.dtype();
                drop(w);
                let mut notes = Vec::new();
                let fmt = pt.action.format.map(pareto_formats::lookup).transpose().map_err(core_fmt)?;
                let gptq = pt.action.algorithm == Algorithm::Gptq;
                let (mut sparse_loss, mut joint) = (None, None);
                let mask = match (&pt.action.prune, pt.action.prune.as_ref().and_then(PruneSpec::calibrated_pattern)) {
                    (Some(p), Some(pattern)) if p.is_sparsegpt() => {
                        if natural.is_none() {
                            let opts = GptqOptions { act_order: false, ..options };
                            natural = Some(
                                factor_of(sink, &name, false, &opts)?
                                    .map_err(|e| invalid(&format!("sparsegpt on `{name}`: {e}")))?,
                            );
                        }
                        let f = natural.as_ref().ok_or_else(|| invalid("no factor"))?;
                        let r = f
                            .solve_sparse(&values, rows, cols, pattern, fmt.filter(|_| gptq))
                            .map_err(|e| invalid(&format!("sparsegpt on `{name}`: {e}")))?;
                        sparse_loss = Some(r.loss);
                        if f.damp() != options.damp {
                            notes.push(format!(
                                "sparsegpt: damping raised to {}% to factor the Hessian",
                                f.damp() * 100.0
                            ));
                        }
                        match (r.codes, r.values) {
                            (Some(q), _) => joint = Some(q),
                            (None, Some(v)) => {
                                values = v;
                                let rewrite = Rewrite { values: Some(values.clone().into()), ..Rewrite::default() };
                                codes.insert_rewrite(&weight_name, rewrite).map_err(spill_err)?;
                            }
                            (None, None) => return Err(invalid(&format!("sparsegpt on `{name}` returned nothing"))),
                        }
                        Some(r.keep)
                    }
                    (Some(p), _) => prune(&mut values, cols, p, sink.norms(&name).as_deref(), &mut notes)
                        .ok_or_else(|| invalid(&format!("no inputs reached `{name}`")))?,
                    (None, _) => None,
                };
                let solved = match fmt {
                    // Pruned and quantized jointly by SparseGPT.
                    Some(fmt) if joint.is_some() => {
                        let q = joint.take().ok_or_else(|| invalid("no codes"))?;
                        Some((fmt, Solved { codes: q, loss: sparse_loss, notes: Vec::new() }))
                    }
                    Some(fmt) if gptq => {
                        if factor.is_none() {
                            factor = Some(factor_of(sink, &name, false, &options)?);
                        }
                        let factor = factor.as_ref().ok_or_else(|| invalid("no factor"))?;
                        Some((fmt, solve_one(&values, rows, cols, fmt, factor, &options, &weight_name)?))
                    }
                    // Round to nearest, so later layers see this tensor as the export writes it.
                    Some(fmt) => {
                        let q = fmt.quantize(&values, rows, cols).map_err(core_fmt)?;
                        Some((fmt, Solved { codes: q, loss: None, notes: Vec::new() }))
                    }
                    None => None,
                };
                let decoded = match &solved {
                    Some((fmt, s)) => fmt.dequantize(&s.codes).map_err(core_fmt)?,
                    None => values,
                };
                let t = Tensor::from_vec(decoded, (rows, cols), &Device::Cpu)
                    .and_then(|t| t.to_dtype(dtype))
                    .map_err(eval_err)?;
                model.set_linear_weight(&name, t)?;
                if !pt.action.needs_calibration() {
                    continue;
                }
                let mut entry = CalibratedTensor {
                    name: weight_name.clone(),
                    format: pt.action.format.map(str::to_string),
                    method: pt.action.label(),
                    loss: None,
                    detail: Vec::new(),
                    notes,
                };
                if let Some(keep) = mask {
                    codes.insert_mask(&weight_name, &keep);
                }
                match solved {
                    Some((fmt, s)) if pt.action.algorithm == Algorithm::Gptq => {
                        entry.loss = s.loss;
                        entry.notes.extend(s.notes.iter().cloned());
                        codes.insert(&weight_name, fmt.id, s).map_err(spill_err)?;
                    }
                    Some((fmt, _)) if pt.action.algorithm == Algorithm::Awq => {
                        let t = awq_solved.remove(&weight_name).unwrap_or_default();
                        awq_unscaled += usize::from(t.unscaled_input);
                        entry.loss = Some(t.loss);
                        entry.notes.extend(t.notes.iter().cloned());
                        let said = t.detail.iter().chain(&t.notes).cloned().collect();
                        codes.insert_rounded(&weight_name, fmt.id, Some(t.loss), said);
                        entry.detail = t.detail;
                    }
                    _ => {}
                }
                entry.loss = entry.loss.or(sparse_loss);
                layer_tensors.push((gi, entry));
            }
            // The group's statistics are spent (when no factor took them).
            drop(sink.take(&group[0]));
        }
        layer_tensors.sort_by_key(|(gi, _)| *gi);
        tensors.extend(layer_tensors.into_iter().map(|(_, t)| t));
        for h in hidden.iter_mut() {
            ctx.checkpoint()?;
            *h = model.run_layer(li, h, None)?;
        }
        model.release_layer(li)?;
        ctx.progress.advance(1, &format!("layer {li}"));
    }
    let missing: Vec<&str> = plan
        .calibrated()
        .filter(|t| !tensors.iter().any(|c| c.name == t.source_name))
        .map(|t| t.source_name.as_str())
        .collect();
    if let Some(first) = missing.first() {
        return Err(invalid(&format!(
            "{} tensor(s) planned for a calibrated method are not linear layers of a decoder block (e.g. `{first}`); target the blocks' projections only",
            missing.len()
        )));
    }
    let mut notes = notes;
    if awq_unscaled > 0 {
        notes.push(format!(
            "awq: {awq_unscaled} tensor(s) read an input no per-channel op feeds (o_proj under grouped-query attention or after a biased v_proj, o_proj and down_proj after a fused projection as in Phi-3): clipped and rounded only"
        ));
    }
    let report = CalibrationReport {
        spec: spec.clone(),
        windows_used,
        tokens: windows_used * spec.window,
        notes,
        tensors,
        hidden_bytes,
        peak_hessian_bytes,
        predicted_peak: memory,
        spilled_bytes: codes.spilled_bytes(),
        seconds: started.elapsed().as_secs_f64(),
        reused: None,
    };
    Ok((codes, report))
}

/// The calibration text as token ids: `windows_used` windows of `window - 1` tokens (BOS goes in
/// front of each), with a note when the text gave fewer windows than asked.
pub(crate) fn calibration_tokens(model: &LlamaModel, spec: &CalibrationSpec) -> Result<(Vec<u32>, usize, Vec<String>)> {
    if spec.window < 2 || spec.windows == 0 {
        return Err(invalid("a calibration protocol needs at least one window of 2 or more tokens"));
    }
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
    let tokenizer = load_tokenizer(&weights::tokenizer_path(model.dir(), None)?)?;
    let per_window = spec.window - 1;
    let mut tokens = tokenize_up_to(&tokenizer, &text, spec.windows * per_window)?;
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
    tokens.truncate(windows_used * per_window);
    let mut notes = Vec::new();
    if windows_used < spec.windows {
        notes.push(format!(
            "the text gives {windows_used} windows of {} tokens, not the {} asked for",
            spec.window, spec.windows
        ));
    }
    Ok((tokens, windows_used, notes))
}

/// GPTQ's factor of `linear`'s input Hessian: built in the Hessian's own storage when `consume`
/// (the sink forgets it), else from a copy. The inner result is the solver's (a Hessian that will
/// not factor is the caller's to fall back from).
fn factor_of(
    sink: &mut HessianSink,
    linear: &str,
    consume: bool,
    options: &GptqOptions,
) -> Result<std::result::Result<GptqFactor, SolveError>> {
    let missing = || invalid(&format!("no inputs reached `{linear}`"));
    Ok(if consume {
        GptqFactor::from_owned(sink.take(linear).ok_or_else(missing)?, options)
    } else {
        GptqFactor::new(sink.of(linear).ok_or_else(missing)?, options)
    })
}

/// Runs the layer over every calibration window, feeding its linear inputs to `sink`.
fn feed(model: &LlamaModel, li: usize, hidden: &[Tensor], sink: &mut HessianSink, ctx: &JobContext) -> Result<()> {
    for h in hidden {
        ctx.checkpoint()?;
        model.run_layer(li, h, Some(&mut *sink))?;
    }
    match sink.error.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Zeroes what `spec` removes from `w` (`[rows, cols]`), as the export will. Returns the keep mask
/// of Wanda (from the input norms), `Some(None)` for the uncalibrated methods, and `None` when
/// Wanda has no norms for this input. (SparseGPT is solved by the caller.)
fn prune(
    w: &mut [f32],
    cols: usize,
    spec: &PruneSpec,
    norms: Option<&[f32]>,
    notes: &mut Vec<String>,
) -> Option<Option<Vec<bool>>> {
    let pattern = match spec {
        PruneSpec::Magnitude { sparsity, scope: PruneScope::Tensor } => {
            prune_magnitude(w, *sparsity);
            return Some(None);
        }
        PruneSpec::Magnitude { scope: PruneScope::Global, .. } => {
            notes.push(
                "global magnitude pruning is applied at export; later layers were calibrated on this tensor unpruned"
                    .into(),
            );
            return Some(None);
        }
        PruneSpec::NM { n, m } => {
            prune_n_m(w, cols, *n, *m);
            return Some(None);
        }
        PruneSpec::Wanda { .. }
        | PruneSpec::WandaNM { .. }
        | PruneSpec::SparseGpt { .. }
        | PruneSpec::SparseGptNM { .. } => spec.calibrated_pattern()?,
    };
    let keep = keep_mask(w, cols, norms?, pattern);
    for (v, k) in w.iter_mut().zip(&keep) {
        if !k {
            *v = 0.0;
        }
    }
    Some(Some(keep))
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

fn spill_err(e: std::io::Error) -> RunError {
    invalid(&format!(
        "could not keep solved codes in a temporary file under {} ({e}); free space there or point TMPDIR elsewhere",
        std::env::temp_dir().display()
    ))
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
