//! AWQ in the sequential loop: for one decoder layer, search each input's scales on the layer's
//! statistics, fold them into the op that feeds the input, clip, and leave the model holding the
//! weights the export will round, so the next layer calibrates on this one as compressed.
//!
//! Every tensor touched gets one [`Rewrite`], applied to its original values by the same function
//! the export applies to the source, so the calibration and the artifact agree bit for bit.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use pareto_core::quantize::{Clip, Rewrite};
use pareto_core::recipe::{Algorithm, Plan};
use pareto_eval::candle_core::{DType, Device, Tensor};
use pareto_eval::llama::{Feeder, LlamaModel};
use pareto_solve::awq::{ScaledLinear, search_clip, search_scales};
use pareto_solve::{AwqOptions, OutputError};

use super::sink::{HessianSink, Moments};
use super::{core_fmt, eval_err, invalid};
use crate::error::Result;

/// What AWQ decided for one layer: the rewrite of every tensor it touched (by source tensor
/// name), and what it did to each scaled linear.
#[derive(Debug, Default)]
pub(super) struct AwqLayer {
    pub rewrites: BTreeMap<String, Rewrite>,
    pub solved: BTreeMap<String, AwqTensor>,
}

/// One linear's outcome: its output error, what the searches chose (for the report), and what
/// departed from the method (said to the user).
#[derive(Debug, Default)]
pub(super) struct AwqTensor {
    pub loss: f64,
    pub detail: Vec<String>,
    pub notes: Vec<String>,
    /// Its input has no per-channel op to fold a scale into: clipped and rounded only.
    pub unscaled_input: bool,
}

/// The search as the reference runs it (20 grid points, duo scaling, clipping up to half a range).
pub(super) fn options() -> AwqOptions {
    let mut o = AwqOptions::default();
    if std::env::var("AWQ_NOCLIP").is_ok() {
        o.clip = false;
    }
    if std::env::var("AWQ_NODUO").is_ok() {
        o.duo_scaling = false;
    }
    o
}

/// A linear AWQ scales: its input's scales (`None`: unscaled), format, and input statistics.
struct Member {
    name: String,
    scales: Option<Arc<[f32]>>,
    format: &'static pareto_formats::Format,
    moments: Rc<Moments>,
}

/// Whether layer `li` holds a linear planned for AWQ.
pub(super) fn has_awq(model: &LlamaModel, li: usize, plan: &Plan) -> bool {
    model.linear_groups(li).iter().flatten().any(|n| is_awq(plan, n))
}

fn is_awq(plan: &Plan, linear: &str) -> bool {
    plan.get(&format!("{linear}.weight")).is_some_and(|t| !t.action.drop && t.action.algorithm == Algorithm::Awq)
}

/// A tensor's values, shape and dtype as the model holds it (a linear by module name, a norm by
/// tensor name).
struct Held {
    values: Vec<f32>,
    dims: Vec<usize>,
    dtype: DType,
}

fn held(model: &LlamaModel, feeder: &Feeder) -> Result<Held> {
    let t = match feeder {
        Feeder::Norm(name) => model.norm_weight(name).cloned(),
        Feeder::Linear(name) => model.linear_weight(name)?,
    };
    let name = feeder_name(feeder);
    let t = t.ok_or_else(|| invalid(&format!("awq: `{name}` is not a dense tensor of the loaded model")))?;
    let values = t.to_dtype(DType::F32).and_then(|t| t.flatten_all()?.to_vec1()).map_err(eval_err)?;
    Ok(Held { values, dims: t.dims().to_vec(), dtype: t.dtype() })
}

fn store(model: &mut LlamaModel, feeder: &Feeder, h: &Held, values: Vec<f32>) -> Result<()> {
    let t = Tensor::from_vec(values, h.dims.as_slice(), &Device::Cpu)
        .and_then(|t| t.to_dtype(h.dtype))
        .map_err(eval_err)?;
    match feeder {
        Feeder::Norm(name) => model.set_norm_weight(name, t)?,
        Feeder::Linear(name) => model.set_linear_weight(name, t)?,
    }
    Ok(())
}

/// The source tensor name of a feeder or linear (`<module>.weight` for a linear).
fn feeder_name(f: &Feeder) -> String {
    match f {
        Feeder::Norm(name) => name.clone(),
        Feeder::Linear(name) => format!("{name}.weight"),
    }
}

/// Runs AWQ on layer `li` of `model` with the statistics in `sink` (full XᵀX and |x| of every
/// input of the layer, from the layer's inputs as the earlier layers were compressed).
pub(super) fn awq_layer(
    model: &mut LlamaModel,
    li: usize,
    plan: &Plan,
    sink: &HessianSink,
    opts: &AwqOptions,
) -> Result<AwqLayer> {
    let mut out = AwqLayer::default();
    let mut originals: BTreeMap<String, (Feeder, Held)> = BTreeMap::new();
    let mut linears: Vec<Member> = Vec::new();
    for (gi, group) in model.linear_groups(li).iter().enumerate() {
        let awq: Vec<&String> = group.iter().filter(|n| is_awq(plan, n)).collect();
        if awq.is_empty() {
            continue;
        }
        if let Some(other) = group.iter().find(|n| !is_awq(plan, n)) {
            let label = plan.get(&format!("{other}.weight")).map_or("nothing".into(), |t| t.action.label());
            return Err(invalid(&format!(
                "awq scales the input `{}` shares with `{other}` (planned {label}); plan every linear that reads it with awq",
                awq[0]
            )));
        }
        let moments = Rc::new(Moments::new(
            sink.of(&group[0]).ok_or_else(|| invalid(&format!("no inputs reached `{}`", group[0])))?,
        )?);
        let x_abs = sink.abs_mean(&group[0]).ok_or_else(|| invalid(&format!("no inputs reached `{}`", group[0])))?;
        let cols = x_abs.len();
        let mut members = Vec::with_capacity(group.len());
        for name in group {
            let f = Feeder::Linear(name.clone());
            let h = held(model, &f)?;
            let pt = plan.get(&feeder_name(&f)).ok_or_else(|| invalid(&format!("`{name}` is not in the plan")))?;
            let fmt = pt.action.format.map(pareto_formats::lookup).transpose().map_err(core_fmt)?;
            let fmt = fmt.ok_or_else(|| invalid(&format!("awq on `{name}` needs a format to quantize to")))?;
            members.push((name.clone(), fmt));
            originals.entry(feeder_name(&f)).or_insert((f, h));
        }
        let scales = match model.input_feeder(li, gi) {
            None => {
                for (name, _) in &members {
                    let t = out.solved.entry(format!("{name}.weight")).or_default();
                    t.unscaled_input = true;
                    t.detail.push(
                        "awq: no per-channel op feeds this input (grouped-query attention or a bias); clipped and rounded only"
                            .into(),
                    );
                }
                None
            }
            Some(feeder) => {
                let fname = feeder_name(&feeder);
                match plan.get(&fname) {
                    None => {
                        return Err(invalid(&format!("awq folds scales into `{fname}`, which the plan does not hold")));
                    }
                    Some(pt) if pt.action.drop || pt.action.prune.is_some() => {
                        return Err(invalid(&format!(
                            "awq folds scales into `{fname}`, which the plan {}; plan it without pruning",
                            if pt.action.drop { "drops" } else { "prunes" }
                        )));
                    }
                    Some(_) => {}
                }
                let weights: Vec<(&str, &'static pareto_formats::Format, &[f32], usize)> = members
                    .iter()
                    .map(|(n, fmt)| {
                        let h = &originals[&format!("{n}.weight")].1;
                        (n.as_str(), *fmt, h.values.as_slice(), h.dims[0])
                    })
                    .collect();
                let group: Vec<ScaledLinear<'_>> = weights
                    .iter()
                    .map(|(_, format, w, rows)| ScaledLinear { weights: w, rows: *rows, format })
                    .collect();
                let found = search_scales(&group, cols, &x_abs, moments.as_ref(), opts)
                    .map_err(|e| invalid(&format!("awq on `{}`: {e}", members[0].0)))?;
                let note = match found.ratio {
                    Some(r) => format!(
                        "awq: input scaled (α = {r:.2}; output error {:.3e} vs {:.3e} unscaled), folded into `{fname}`",
                        found.loss, found.loss_unscaled
                    ),
                    None => "awq: rounding the unscaled weights was best for this input".into(),
                };
                for (name, _) in &members {
                    out.solved.entry(format!("{name}.weight")).or_default().detail.push(note.clone());
                }
                match found.ratio {
                    None => None,
                    Some(_) => {
                        let s: Arc<[f32]> = found.scales.into();
                        if !originals.contains_key(&fname) {
                            let h = held(model, &feeder)?;
                            originals.insert(fname.clone(), (feeder, h));
                        }
                        merge(&mut out.rewrites, &fname, Rewrite { rows: Some(s.clone()), ..Rewrite::default() });
                        for (name, _) in &members {
                            merge(
                                &mut out.rewrites,
                                &format!("{name}.weight"),
                                Rewrite { cols: Some(s.clone()), ..Rewrite::default() },
                            );
                        }
                        Some(s)
                    }
                }
            }
        };
        for (name, format) in members {
            linears.push(Member { name, scales: scales.clone(), format, moments: moments.clone() });
        }
    }
    // The scales of every input applied together, each tensor from its original values.
    for (name, (feeder, h)) in &originals {
        if let Some(r) = out.rewrites.get(name) {
            let mut v = h.values.clone();
            r.apply(&mut v).map_err(|e| invalid(&format!("awq on `{name}`: {e}")))?;
            store(model, feeder, h, v)?;
        }
    }
    // Clipping on the scaled weights (not for q/k, whose errors attention's softmax reshapes, as
    // the reference skips them), then the final values and each linear's output error.
    for Member { name, scales, format: fmt, moments } in &linears {
        let key = format!("{name}.weight");
        let (feeder, h) = &originals[&key];
        let scaled = held(model, feeder)?.values;
        let (rows, cols) = (h.dims[0], h.dims[1]);
        let input_scale: Vec<f32> = match scales {
            Some(s) => s.iter().map(|v| 1.0 / v).collect(),
            None => vec![1.0; cols],
        };
        let fail = |e: pareto_solve::SolveError| invalid(&format!("awq on `{name}`: {e}"));
        let is_qk = name.ends_with("q_proj") || name.ends_with("k_proj");
        if opts.clip && !is_qk {
            let c = search_clip(&scaled, rows, cols, fmt, &input_scale, moments.as_ref(), opts).map_err(fail)?;
            if c.clipped > 0 {
                out.solved.entry(key.clone()).or_default().detail.push(format!(
                    "awq: {} of {} groups clipped",
                    c.clipped,
                    c.max.len()
                ));
                merge(
                    &mut out.rewrites,
                    &key,
                    Rewrite { clip: Some(Clip { group: c.group, max: c.max.into() }), ..Rewrite::default() },
                );
            }
        }
        let mut v = h.values.clone();
        if let Some(r) = out.rewrites.get(&key) {
            r.apply(&mut v).map_err(|e| invalid(&format!("awq on `{name}`: {e}")))?;
        }
        let mut q = v.clone();
        fmt.fake_quantize(&mut q, rows, cols).map_err(core_fmt)?;
        let delta: Vec<f32> = q
            .chunks_exact(cols)
            .zip(scaled.chunks_exact(cols))
            .flat_map(|(q, w)| q.iter().zip(w).zip(&input_scale).map(|((q, w), s)| (q - w) * s))
            .collect();
        out.solved.entry(key.clone()).or_default().loss = moments.total(&delta, rows).map_err(fail)?;
        store(model, feeder, h, v)?;
    }
    Ok(out)
}

fn merge(map: &mut BTreeMap<String, Rewrite>, name: &str, r: Rewrite) {
    let merged = match map.remove(name) {
        Some(old) => old.then(r),
        None => r,
    };
    map.insert(name.to_string(), merged);
}
