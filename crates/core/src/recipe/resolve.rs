//! `Recipe::resolve`: the per-tensor plan and its projected sizes, computed from headers and the
//! config alone, so sizes and projections can update on every edit without touching weights.

use std::collections::BTreeMap;

use serde::Serialize;

use super::target::{Target, layer_index};
use super::{Action, Algorithm, PruneSpec, Recipe, StructuredSpec};
use crate::error::{Error, Result};
use crate::store::{DType, Model, Role};

/// Why a tensor got its action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Reason {
    Ignored(String),
    Rule(usize),
    Default,
    /// 0-D/1-D tensors (biases, norms) and non-float tensors are carried through untouched.
    NotAMatrix,
    NotFloat,
    /// Removed by structured layer pruning.
    LayerDropped,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedAction {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneSpec>,
    /// The format actually applied, after any shape fallback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'static str>,
    /// The format the recipe asked for, when a fallback replaced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_format: Option<String>,
    /// How the codes are chosen; `rtn` unless the recipe asks for a calibrated algorithm and the
    /// applied format supports it.
    #[serde(skip_serializing_if = "Algorithm::is_rtn")]
    pub algorithm: Algorithm,
    pub drop: bool,
}

impl PlannedAction {
    fn keep() -> Self {
        PlannedAction { prune: None, format: None, requested_format: None, algorithm: Algorithm::Rtn, drop: false }
    }
    /// Whether a calibration set decides this tensor (GPTQ codes, a Wanda mask).
    pub fn needs_calibration(&self) -> bool {
        !self.drop
            && (self.algorithm.needs_calibration() || self.prune.as_ref().is_some_and(PruneSpec::needs_calibration))
    }

    pub fn is_keep(&self) -> bool {
        self.prune.is_none() && self.format.is_none() && !self.drop
    }
    /// A short label for tables: `q4_k`, `2:4 + int8_channel`, `keep`, `drop`.
    pub fn label(&self) -> String {
        if self.drop {
            return "drop".into();
        }
        let prune = self.prune.as_ref().map(PruneSpec::label);
        let format = self.format.map(|f| match self.algorithm {
            Algorithm::Rtn => f.to_string(),
            a => format!("{f} {}", a.label()),
        });
        match (prune, format) {
            (None, None) => "keep".into(),
            (Some(p), None) => p,
            (None, Some(f)) => f,
            (Some(p), Some(f)) => format!("{p} + {f}"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedTensor {
    /// Name in the output (differs from `source_name` when layers were dropped and renumbered).
    pub name: String,
    pub source_name: String,
    pub dtype: DType,
    /// The dtype written by the dense exporter: the source float dtype (F8/F64 widen/narrow to
    /// BF16/F32 so fake-quantized values stay representable).
    pub out_dtype: DType,
    pub source_shape: Vec<usize>,
    /// Shape after structured pruning.
    pub shape: Vec<usize>,
    pub role: Role,
    pub layer: Option<usize>,
    pub action: PlannedAction,
    pub reason: Reason,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub params: u64,
    pub source_bytes: u64,
    /// Bytes as the packed format would store them (codes + scales + zeros), or dense bytes.
    pub planned_bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanTotals {
    pub tensors: usize,
    pub quantized: usize,
    pub pruned: usize,
    pub kept: usize,
    pub dropped: usize,
    pub fallbacks: usize,
    /// Tensors whose codes a calibrated algorithm chooses (they need a calibration set).
    pub calibrated: usize,
    pub params_before: u64,
    pub params_after: u64,
    pub source_bytes: u64,
    pub planned_bytes: u64,
    /// Planned bytes per applied format (`keep:F32` for untouched tensors).
    pub bytes_by_format: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub recipe: Recipe,
    pub tensors: Vec<PlannedTensor>,
    /// Structured pruning as resolved against the config (counts; which channels is decided from
    /// the weights at compress time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured: Option<StructuredPlan>,
    pub totals: PlanTotals,
}

#[derive(Debug, Clone, Serialize)]
pub struct StructuredPlan {
    pub ffn_before: usize,
    pub ffn_after: usize,
    pub kv_heads_before: usize,
    pub kv_heads_after: usize,
    pub heads_before: usize,
    pub heads_after: usize,
    pub head_dim: usize,
    pub layers_before: usize,
    pub dropped_layers: Vec<usize>,
    /// Old layer index → new index for the layers kept.
    pub layer_map: BTreeMap<usize, usize>,
}

impl Plan {
    /// The tensors a calibration set decides (GPTQ codes, Wanda masks).
    pub fn calibrated(&self) -> impl Iterator<Item = &PlannedTensor> {
        self.tensors.iter().filter(|t| t.action.needs_calibration())
    }

    pub fn get(&self, source_name: &str) -> Option<&PlannedTensor> {
        self.tensors.iter().find(|t| t.source_name == source_name)
    }
}

struct CompiledRule<'a> {
    targets: Vec<Target>,
    rule: &'a super::Rule,
}

impl Recipe {
    /// The per-tensor plan, without reading a single weight.
    pub fn resolve(&self, model: &Model) -> Result<Plan> {
        self.resolve_for(model, false)
    }

    /// [`Recipe::resolve`] for a compression with an importance matrix when `imatrix` is true: the
    /// rules marked `with_imatrix` apply too.
    pub fn resolve_for(&self, model: &Model, imatrix: bool) -> Result<Plan> {
        self.validate()?;
        if let Some(evidence) = model.already_compressed() {
            return Err(Error::AlreadyCompressed { path: model.root().to_path_buf(), evidence });
        }
        let ignore: Vec<(String, Target)> =
            self.ignore_targets().into_iter().map(|t| Target::parse(&t).map(|p| (t, p))).collect::<Result<_>>()?;
        let rules: Vec<CompiledRule> = self
            .rules
            .iter()
            .map(|r| {
                Ok(CompiledRule {
                    targets: r.targets.iter().map(|t| Target::parse(t)).collect::<Result<_>>()?,
                    rule: r,
                })
            })
            .collect::<Result<_>>()?;
        let n_layers = model
            .config()
            .map(|c| c.num_layers)
            .unwrap_or_else(|| model.tensors().iter().filter_map(|t| layer_index(&t.name)).max().map_or(0, |m| m + 1));
        let structured = match &self.structured {
            Some(s) if !s.is_empty() => Some(resolve_structured(s, model)?),
            _ => None,
        };

        // A decoder without an output matrix multiplies by its embedding: that tensor is the head
        // too, and `role:head` selects it (as llama.cpp's policies give a GGUF without
        // `output.weight` the output type on `token_embd`).
        let tied_head = model.config().is_some_and(|c| c.tie_word_embeddings)
            && !model.tensors().iter().any(|t| t.role == Role::Head);
        let mut tensors = Vec::with_capacity(model.tensors().len());
        let mut totals = PlanTotals::default();
        for t in model.tensors() {
            let layer = layer_index(&t.name);
            let out_dtype = dense_out_dtype(t.dtype);
            let mut pt = PlannedTensor {
                name: t.name.clone(),
                source_name: t.name.clone(),
                dtype: t.dtype,
                out_dtype,
                source_shape: t.shape.clone(),
                shape: t.shape.clone(),
                role: t.role,
                layer,
                action: PlannedAction::keep(),
                reason: Reason::Default,
                notes: Vec::new(),
                params: t.numel(),
                source_bytes: t.nbytes,
                planned_bytes: 0,
            };
            if let (Some(sp), Some(l)) = (&structured, layer) {
                match sp.layer_map.get(&l) {
                    None => {
                        pt.action.drop = true;
                        pt.reason = Reason::LayerDropped;
                    }
                    Some(&new) => {
                        pt.name = rename_layer(&t.name, l, new);
                        pt.shape = sp.reduced_shape(&t.name, &t.shape);
                    }
                }
            }
            if !pt.action.drop {
                let also_head = tied_head && t.role == Role::Embedding;
                let (action, reason) =
                    choose_action(self, &ignore, &rules, (t.role, also_head), &t.name, (layer, n_layers), imatrix);
                pt.reason = reason;
                if !t.dtype.is_float() {
                    if !action.is_keep() && !matches!(pt.reason, Reason::Ignored(_)) {
                        pt.notes.push(format!("{} tensor carried through untouched", t.dtype.as_str()));
                    }
                    pt.reason = Reason::NotFloat;
                } else if pt.shape.len() < 2 {
                    pt.reason = if action.is_keep() { pt.reason } else { Reason::NotAMatrix };
                } else {
                    apply_action(&mut pt, &action)?;
                }
            }
            pt.params = pt.shape.iter().map(|&d| d as u64).product::<u64>() * u64::from(!pt.action.drop);
            pt.planned_bytes = planned_bytes(&pt)?;
            accumulate(&mut totals, &pt);
            tensors.push(pt);
        }
        Ok(Plan { recipe: self.clone(), tensors, structured, totals })
    }
}

/// F8 and F64 are not good homes for fake-quantized values; everything else keeps its dtype.
pub(crate) fn dense_out_dtype(d: DType) -> DType {
    match d {
        DType::F8E4M3 | DType::F8E5M2 => DType::BF16,
        DType::F64 => DType::F32,
        other => other,
    }
}

fn choose_action(
    recipe: &Recipe,
    ignore: &[(String, Target)],
    rules: &[CompiledRule],
    (role, also_head): (Role, bool),
    name: &str,
    (layer, n_layers): (Option<usize>, usize),
    imatrix: bool,
) -> (Action, Reason) {
    let selects = |t: &Target| t.matches(name, role) || (also_head && t.matches(name, Role::Head));
    if let Some((text, _)) = ignore.iter().find(|(_, t)| selects(t)) {
        return (Action::default(), Reason::Ignored(text.clone()));
    }
    for (i, r) in rules.iter().enumerate() {
        let layer_ok = match (&r.rule.layers, layer) {
            (None, _) => true,
            (Some(sel), Some(l)) => sel.selects(l, n_layers),
            (Some(_), None) => false,
        };
        if layer_ok && (imatrix || !r.rule.with_imatrix) && r.targets.iter().any(selects) {
            return (r.rule.action.clone(), Reason::Rule(i + 1));
        }
    }
    (recipe.default.clone(), Reason::Default)
}

fn apply_action(pt: &mut PlannedTensor, action: &Action) -> Result<()> {
    let (rows, cols) = rows_cols(&pt.shape);
    if let Some(p) = &action.prune {
        if let Some(m) = p.group() {
            if cols % m != 0 {
                pt.notes.push(format!("not pruned: {cols} inputs is not a multiple of {m}"));
            } else {
                pt.action.prune = Some(p.clone());
            }
        } else {
            pt.action.prune = Some(p.clone());
        }
    }
    if let Some(q) = &action.quantize {
        let chain = pareto_formats::fallback_chain(&q.format, rows, cols)?;
        for hop in chain.chain.windows(2) {
            let (from, to) = (hop[0], hop[1]);
            pt.notes.push(format!("{} → {}: {cols} columns not a multiple of {}", from.id, to.id, from.block));
        }
        let Some(fmt) = chain.applied() else {
            let last = chain.chain[chain.chain.len() - 1];
            pt.notes.push(format!("kept: {cols} columns not a multiple of {}'s block {}", last.id, last.block));
            pt.action.requested_format = Some(q.format.clone());
            return Ok(());
        };
        if fmt.id != q.format {
            pt.action.requested_format = Some(q.format.clone());
        }
        pt.action.format = Some(fmt.id);
        pt.action.algorithm = match q.algorithm {
            Algorithm::Gptq if fmt.int_grid().is_none() => {
                pt.notes.push(format!("gptq does not apply to {}: rounded to nearest", fmt.id));
                Algorithm::Rtn
            }
            a => a,
        };
    }
    Ok(())
}

fn planned_bytes(pt: &PlannedTensor) -> Result<u64> {
    if pt.action.drop {
        return Ok(0);
    }
    match pt.action.format {
        Some(id) => {
            let (rows, cols) = rows_cols(&pt.shape);
            Ok(pareto_formats::lookup(id)?.stored_bytes(rows, cols)?)
        }
        None => Ok(pt.params * pt.out_dtype.size_bytes()),
    }
}

fn accumulate(totals: &mut PlanTotals, pt: &PlannedTensor) {
    totals.tensors += 1;
    totals.params_before += pt.source_shape.iter().map(|&d| d as u64).product::<u64>();
    totals.params_after += pt.params;
    totals.source_bytes += pt.source_bytes;
    totals.planned_bytes += pt.planned_bytes;
    if pt.action.drop {
        totals.dropped += 1;
        return;
    }
    if pt.action.format.is_some() {
        totals.quantized += 1;
    }
    if pt.action.prune.is_some() {
        totals.pruned += 1;
    }
    if pt.action.is_keep() {
        totals.kept += 1;
    }
    if pt.action.requested_format.is_some() {
        totals.fallbacks += 1;
    }
    if pt.action.needs_calibration() {
        totals.calibrated += 1;
    }
    let key = match pt.action.format {
        Some(f) => f.to_string(),
        None => format!("keep:{}", pt.out_dtype.as_str()),
    };
    *totals.bytes_by_format.entry(key).or_default() += pt.planned_bytes;
}

/// 2-D view of a shape: the last dim is the row (input) length; the rest fold into rows.
pub(crate) fn rows_cols(shape: &[usize]) -> (usize, usize) {
    match shape.split_last() {
        None => (1, 1),
        Some((&cols, rest)) => (rest.iter().product::<usize>().max(1), cols),
    }
}

fn rename_layer(name: &str, old: usize, new: usize) -> String {
    if old == new {
        return name.to_string();
    }
    let parts: Vec<&str> = name.split('.').collect();
    let mut out = Vec::with_capacity(parts.len());
    let mut done = false;
    for (i, p) in parts.iter().enumerate() {
        let prev_is_key = i > 0 && matches!(parts[i - 1], "layers" | "layer" | "blk" | "h" | "blocks");
        if !done && prev_is_key && *p == old.to_string() {
            out.push(new.to_string());
            done = true;
        } else {
            out.push((*p).to_string());
        }
    }
    out.join(".")
}

fn resolve_structured(spec: &StructuredSpec, model: &Model) -> Result<StructuredPlan> {
    let cfg = model.require_config()?;
    if !cfg.architecture.supports_structured() {
        return Err(Error::StructuredUnsupported { architecture: cfg.model_type.clone() });
    }
    let remove = |n: usize, frac: f64| ((n as f64) * frac).round() as usize;
    let ffn_after = cfg.intermediate_size - remove(cfg.intermediate_size, spec.ffn_channels);
    let kv_removed = remove(cfg.num_kv_heads, spec.kv_heads);
    let kv_after = cfg.num_kv_heads - kv_removed;
    let group = cfg.num_heads / cfg.num_kv_heads.max(1);
    if ffn_after == 0 || kv_after == 0 {
        return Err(Error::RecipeInvalid {
            place: "structured".into(),
            message: "pruning would remove every FFN channel or every KV head".into(),
        });
    }
    if let Some(&bad) = spec.drop_layers.iter().find(|&&l| l >= cfg.num_layers) {
        return Err(Error::RecipeInvalid {
            place: "structured.drop_layers".into(),
            message: format!("layer {bad} does not exist (the model has {})", cfg.num_layers),
        });
    }
    let mut layer_map = BTreeMap::new();
    let mut next = 0;
    for l in 0..cfg.num_layers {
        if !spec.drop_layers.contains(&l) {
            layer_map.insert(l, next);
            next += 1;
        }
    }
    if layer_map.is_empty() {
        return Err(Error::RecipeInvalid {
            place: "structured.drop_layers".into(),
            message: "would drop every layer".into(),
        });
    }
    let mut dropped = spec.drop_layers.clone();
    dropped.sort_unstable();
    dropped.dedup();
    Ok(StructuredPlan {
        ffn_before: cfg.intermediate_size,
        ffn_after,
        kv_heads_before: cfg.num_kv_heads,
        kv_heads_after: kv_after,
        heads_before: cfg.num_heads,
        heads_after: kv_after * group,
        head_dim: cfg.head_dim,
        layers_before: cfg.num_layers,
        dropped_layers: dropped,
        layer_map,
    })
}

/// Which structured cut applies to a LLaMA-style tensor, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// Rows are FFN channels (gate_proj, up_proj).
    FfnRows,
    /// Columns are FFN channels (down_proj).
    FfnCols,
    /// Rows are query heads (q_proj weight/bias).
    QRows,
    /// Rows are KV heads (k_proj, v_proj weight/bias).
    KvRows,
    /// Columns are query heads (o_proj).
    OCols,
    None,
}

pub(crate) fn cut_of(name: &str) -> Cut {
    let module = name.rsplit('.').nth(1).unwrap_or("");
    match module {
        "gate_proj" | "up_proj" => Cut::FfnRows,
        "down_proj" => Cut::FfnCols,
        "q_proj" => Cut::QRows,
        "k_proj" | "v_proj" => Cut::KvRows,
        "o_proj" => Cut::OCols,
        _ => Cut::None,
    }
}

impl StructuredPlan {
    fn reduced_shape(&self, name: &str, shape: &[usize]) -> Vec<usize> {
        let mut s = shape.to_vec();
        let (ffn, q, kv) = (self.ffn_after, self.heads_after * self.head_dim, self.kv_heads_after * self.head_dim);
        match (cut_of(name), s.as_mut_slice()) {
            (Cut::FfnRows, [r, ..]) => *r = ffn,
            (Cut::FfnCols, [_, c]) => *c = ffn,
            (Cut::QRows, [r, ..]) => *r = q,
            (Cut::KvRows, [r, ..]) => *r = kv,
            (Cut::OCols, [_, c]) => *c = q,
            _ => {}
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_only_the_layer_index() {
        assert_eq!(rename_layer("model.layers.3.mlp.up_proj.weight", 3, 2), "model.layers.2.mlp.up_proj.weight");
        assert_eq!(rename_layer("model.layers.3.mlp.3.weight", 3, 1), "model.layers.1.mlp.3.weight");
    }

    #[test]
    fn cuts_by_module() {
        assert_eq!(cut_of("model.layers.0.mlp.down_proj.weight"), Cut::FfnCols);
        assert_eq!(cut_of("model.layers.0.self_attn.k_proj.bias"), Cut::KvRows);
        assert_eq!(cut_of("model.norm.weight"), Cut::None);
    }
}
