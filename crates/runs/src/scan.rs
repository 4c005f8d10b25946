//! Sensitivity scan: for the embedding and every linear weight of a decoder, and every candidate
//! format, the measured effect of compressing that tensor alone — the mean KL divergence of the
//! model's next-token distribution from the original's on a sample set — beside a cheap proxy (the
//! weight error weighted by each input channel's mean x², as an importance matrix weighs it; by
//! token frequency for the embedding).
//!
//! The original's inputs to every layer are kept for the sample set, so compressing a tensor of
//! layer k re-runs layers k.. only, on every window at once. Memory: (layers + 1) × tokens × hidden
//! floats of hidden states and tokens × vocabulary floats of the original's probabilities, besides
//! the model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pareto_core::job::JobContext;
use pareto_eval::calibration::ChannelStats;
use pareto_eval::candle_core::{DType, Device, Tensor};
use pareto_eval::llama::LlamaModel;
use pareto_eval::logits::Reference;
use pareto_eval::metrics::spearman;
use serde::{Deserialize, Serialize};

use crate::calibrate::{CalibrationSpec, calibration_tokens};
use crate::error::{Result, RunError};
use crate::hashing::hash_files;
use crate::scan_journal::{Journal, JournalKey};

/// The scan's sample protocol and candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanSpec {
    pub samples: PathBuf,
    pub windows: usize,
    pub window: usize,
    pub skip_chars: usize,
    /// Candidate format ids; a format a tensor's shape does not allow follows the registry's
    /// fallback chain (as the export does) and is measured as what it becomes.
    pub formats: Vec<String>,
    /// Measure the KL of this format only (per tensor, after its fallback chain) and predict the
    /// other candidates' from the proxy: KL(f) ≈ KL(anchor) × proxy(f) / proxy(anchor). One
    /// measurement per tensor instead of one per format. `None`: measure every candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predict_from: Option<String>,
}

/// The GGUF block types of the registry and F16 as the lossless top rung: Q4_0 first (the studio's
/// quick scan measures the first format and predicts the rest, and Q4_0 holds any row a 32-weight
/// block divides), then by size. Rows a k-quant's 256-weight block does not divide fall back to the
/// 32-weight types, so small models still get six rungs (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, F16).
pub const DEFAULT_FORMATS: &[&str] = &["q4_0", "q3_k", "q4_k", "q4_1", "q5_0", "q5_k", "q5_1", "q6_k", "q8_0", "f16"];

/// The fewest scored tokens a KL estimate is trusted on (below it the ranking of candidates is
/// mostly noise on small models).
pub const MIN_SCAN_TOKENS: usize = 1024;

impl ScanSpec {
    /// 8 windows of 256 tokens over the GGUF types.
    pub fn new(samples: impl Into<PathBuf>) -> Self {
        ScanSpec {
            samples: samples.into(),
            windows: 8,
            window: 256,
            skip_chars: 0,
            formats: DEFAULT_FORMATS.iter().map(|f| f.to_string()).collect(),
            predict_from: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanCandidate {
    pub format: String,
    pub bytes: u64,
    /// Mean KL divergence (nats/token) from the original with only this tensor compressed.
    pub kl: f64,
    /// Importance-weighted relative weight error (Σ m_j (w − ŵ)² / Σ m_j w², m_j = mean x_j²).
    pub proxy: f64,
    /// False when `kl` was predicted from the anchor format's measurement and the proxies.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub measured: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScannedTensor {
    /// Source weight name (`model.layers.0.self_attn.q_proj.weight`).
    pub name: String,
    pub layer: Option<usize>,
    /// Tensors an engine fuses share this key (`layer 0 qkv`, `layer 0 gate_up`); others their name.
    pub fused_group: String,
    pub params: u64,
    pub candidates: Vec<ScanCandidate>,
}

/// A finished scan: what was measured, on what, and how well the proxy ranks like the measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scan {
    /// Sorted sha256 of the model's weight files (a scan is only reused for the same weights).
    pub model_key: String,
    pub samples_sha256: String,
    pub spec: ScanSpec,
    pub tokens: usize,
    pub tensors: Vec<ScannedTensor>,
    /// Spearman rank correlation of the proxy with the measured KL over every (tensor, format).
    pub proxy_spearman: Option<f64>,
    pub seconds: f64,
    pub notes: Vec<String>,
}

/// The column of the whole-model tensors (embedding, head) in [`sensitivity`]'s grid.
pub const WHOLE: &str = "whole tensor";

/// The scan as a grid of rows (`embed`, layers `0`…, `head`) × tensor kinds per format, for the
/// report's heatmaps and the studio's (one grid for both). A candidate that fell back to another
/// format is in that format's column only if it was asked for.
pub fn sensitivity(s: &Scan) -> pareto_report::Sensitivity {
    // Whole-model tensors are rows of their own (`embed`, `head`) sharing one column, so the grid
    // does not spend a column on each.
    let cell_of = |t: &ScannedTensor| match t.layer {
        Some(l) => (l.to_string(), pareto_core::recipe::tensor_kind(&t.name)),
        None if t.name.contains("embed") => ("embed".to_string(), WHOLE.to_string()),
        None => ("head".to_string(), WHOLE.to_string()),
    };
    let (mut layers, mut kinds): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for t in &s.tensors {
        let (row, kind) = cell_of(t);
        if !layers.contains(&row) {
            layers.push(row);
        }
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    let n = s.spec.formats.len() * layers.len() * kinds.len();
    let (mut cells, mut measured) = (vec![None; n], vec![false; n]);
    for t in &s.tensors {
        let (row, kind) = cell_of(t);
        let (Some(r), Some(k)) = (layers.iter().position(|x| *x == row), kinds.iter().position(|x| *x == kind)) else {
            continue;
        };
        for (fi, f) in s.spec.formats.iter().enumerate() {
            if let Some(c) = t.candidates.iter().find(|c| &c.format == f) {
                let at = (fi * layers.len() + r) * kinds.len() + k;
                cells[at] = Some(c.kl);
                measured[at] = c.measured;
            }
        }
    }
    pareto_report::Sensitivity {
        tokens: s.tokens,
        seconds: s.seconds,
        proxy_spearman: s.proxy_spearman,
        formats: s.spec.formats.clone(),
        layers,
        kinds,
        cells,
        measured,
        notes: s.notes.clone(),
    }
}

/// The scan at `path` as the report's sensitivity grid for `records`, refused when it was measured on
/// other weights than their source model.
pub fn sensitivity_for(path: &Path, records: &[pareto_report::RunRecord]) -> Result<pareto_report::Sensitivity> {
    let s = read(path)?;
    for r in records {
        if key_of(r.source.files.iter().map(|f| f.sha256.clone()).collect()) != s.model_key {
            return Err(RunError::Scan(format!(
                "{} was measured on other weights than {} (the source of variant {})",
                path.display(),
                r.source.path,
                r.recipe.name
            )));
        }
    }
    Ok(sensitivity(&s))
}

/// The model key a scan is checked against: the weight files' sha256, sorted.
pub fn model_key(model: &pareto_core::Model) -> Result<String> {
    Ok(key_of(crate::hashing::model_files(model)?.into_iter().map(|h| h.sha256).collect()))
}

/// The model key of these weight-file hashes.
fn key_of(mut hashes: Vec<String>) -> String {
    hashes.sort_unstable();
    hashes.join(",")
}

/// A scan written by `pareto scan` (size-capped read; a file that is not one is named).
pub fn read(path: &Path) -> Result<Scan> {
    let bytes = pareto_core::bounded::read(path, pareto_core::bounded::SCAN_CAP, "sensitivity scan")?;
    serde_json::from_slice(&bytes).map_err(|e| RunError::Scan(format!("{}: not a pareto scan: {e}", path.display())))
}

fn fused_group(name: &str, layer: Option<usize>) -> String {
    let role = if [".q_proj.", ".k_proj.", ".v_proj."].iter().any(|p| name.contains(p)) {
        Some("qkv")
    } else if [".gate_proj.", ".up_proj."].iter().any(|p| name.contains(p)) {
        Some("gate_up")
    } else {
        None
    };
    match (layer, role) {
        (Some(l), Some(r)) => format!("layer {l} {r}"),
        _ => name.to_string(),
    }
}

/// A tensor the scan compresses alone.
enum Target {
    Embedding,
    /// A decoder layer's linear by module name.
    Linear(String, usize),
    /// The LM head when it is a tensor of its own.
    Head(&'static str),
}

impl Target {
    fn module(&self) -> String {
        match self {
            Target::Embedding => "model.embed_tokens".into(),
            Target::Linear(n, _) => n.clone(),
            Target::Head(h) => h.to_string(),
        }
    }

    /// The first decoder layer whose output compressing this tensor changes (`n_layers`: the head).
    fn first_layer(&self, n_layers: usize) -> usize {
        match self {
            Target::Embedding => 0,
            Target::Linear(_, l) => *l,
            Target::Head(_) => n_layers,
        }
    }

    fn layer(&self) -> Option<usize> {
        match self {
            Target::Linear(_, l) => Some(*l),
            _ => None,
        }
    }

    fn set(&self, model: &mut LlamaModel, weight: Tensor) -> Result<()> {
        match self {
            Target::Embedding => model.set_embedding(weight)?,
            Target::Linear(n, _) => model.set_linear_weight(n, weight)?,
            Target::Head(h) => model.set_linear_weight(h, weight)?,
        }
        Ok(())
    }
}

fn candle(e: pareto_eval::candle_core::Error) -> RunError {
    RunError::Eval(e.into())
}

/// Where a scan keeps its journal (see [`crate::scan_journal`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// Reuse and extend the journal in this folder.
    In(PathBuf),
    /// Start the journal in this folder again, measuring everything.
    Fresh(PathBuf),
    /// No journal.
    Off,
}

impl Default for Resume {
    /// The journal in `<cache folder>/scans` (`$PARETO_CACHE_DIR`, else `$XDG_CACHE_HOME/pareto`).
    fn default() -> Self {
        Resume::In(pareto_core::cache::cache_dir().join("scans"))
    }
}

/// Scans the decoder in `model_dir`: the embedding, every linear weight and the LM head when it
/// is a tensor of its own, × every candidate format of `spec`, with progress and cancel. What an
/// earlier run of the same scan measured is reused from the default journal.
pub fn scan(model_dir: &Path, spec: &ScanSpec, ctx: &JobContext) -> Result<Scan> {
    scan_with(model_dir, spec, &Resume::default(), ctx)
}

/// [`scan`] with its journal chosen by `resume`.
pub fn scan_with(model_dir: &Path, spec: &ScanSpec, resume: &Resume, ctx: &JobContext) -> Result<Scan> {
    let started = Instant::now();
    let source = pareto_core::Model::open(model_dir)?;
    let model_key = model_key(&source)?;
    let samples_sha256 =
        hash_files(&[spec.samples.as_path()])?.into_iter().next().map(|h| h.sha256).unwrap_or_default();
    let mut model = LlamaModel::load(model_dir, &Device::Cpu)?;
    let calib = CalibrationSpec {
        windows: spec.windows,
        window: spec.window.min(model.config().max_position_embeddings),
        skip_chars: spec.skip_chars,
        ..CalibrationSpec::new(&spec.samples)
    };
    let (tokens, windows, mut notes) = calibration_tokens(&model, &calib)?;
    let scored = windows * calib.window;
    if scored < MIN_SCAN_TOKENS {
        return Err(RunError::Scan(format!(
            "{} gives {scored} tokens ({windows} windows of {}); a stable KL estimate needs at least {MIN_SCAN_TOKENS}: give a longer text or more windows",
            spec.samples.display(),
            calib.window
        )));
    }
    let bos = model.config().bos();
    let n_layers = model.num_layers();
    let key = JournalKey::new(&model_key, &samples_sha256, spec.skip_chars, windows, calib.window);
    let mut journal = match resume {
        Resume::In(dir) => Journal::open(dir, &key, false),
        Resume::Fresh(dir) => Journal::open(dir, &key, true),
        Resume::Off => Journal::off(),
    };

    // The original's inputs to every layer (and to the head), its next-token distributions, and
    // channel stats.
    ctx.progress.stage("original pass", windows as u64);
    let mut ids_of = Vec::with_capacity(windows);
    let mut inputs: Vec<Vec<Tensor>> = vec![Vec::with_capacity(windows); n_layers + 1];
    let mut original = Vec::with_capacity(windows);
    let mut stats = ChannelStats::default();
    let mut head_sq: Vec<f64> = Vec::new();
    let mut token_count = vec![0.0f64; model.config().vocab_size];
    for chunk in tokens.chunks_exact(calib.window - 1).take(windows) {
        ctx.checkpoint()?;
        let mut ids = Vec::with_capacity(calib.window);
        ids.push(bos);
        ids.extend_from_slice(chunk);
        for &t in &ids {
            if let Some(c) = token_count.get_mut(t as usize) {
                *c += 1.0;
            }
        }
        let ids = Tensor::new(ids.as_slice(), &Device::Cpu).and_then(|t| t.unsqueeze(0)).map_err(candle)?;
        let mut x = model.embed(&ids)?;
        ids_of.push(ids);
        for (li, slot) in inputs.iter_mut().enumerate().take(n_layers) {
            slot.push(x.clone());
            x = model.run_layer(li, &x, Some(&mut stats))?;
        }
        let normed = model.final_norm(&x)?;
        let sq: Vec<f32> = normed.sqr().and_then(|t| t.sum((0, 1))).and_then(|t| t.to_vec1()).map_err(candle)?;
        head_sq.resize(sq.len(), 0.0);
        head_sq.iter_mut().zip(&sq).for_each(|(a, &b)| *a += f64::from(b));
        inputs[n_layers].push(x.clone());
        original.push(Reference::new(&model.head(&x)?)?);
        ctx.progress.advance(1, "");
    }
    // Every window in one batch from here on: each layer's matrix products see all the tokens.
    let ids_of = Tensor::cat(&ids_of, 0).map_err(candle)?;
    let inputs =
        inputs.iter().map(|w| Tensor::cat(w, 0)).collect::<std::result::Result<Vec<_>, _>>().map_err(candle)?;

    // Targets: the embedding, every linear of every layer, and the head when it is its own tensor.
    let mut targets = vec![Target::Embedding];
    for li in 0..n_layers {
        for name in model.linear_groups(li).into_iter().flatten() {
            targets.push(Target::Linear(name, li));
        }
    }
    match model.head_name() {
        Some(h) => targets.push(Target::Head(h)),
        None => notes.push("the LM head is tied to the embedding: scanned with it".into()),
    }

    let total: usize = targets.len() * spec.formats.len();
    ctx.progress.stage("sensitivity scan", total as u64);
    let mut tensors = Vec::with_capacity(targets.len());
    for target in &targets {
        let (name, layer) = (target.module(), target.layer());
        // The proxy's weights: the input channels' mean x² for a linear; for the embedding, whose
        // input is one row per token, how often each token occurs.
        let (w, by_row, m) = match target {
            Target::Embedding => (model.embedding().clone(), true, token_count.clone()),
            Target::Head(_) | Target::Linear(..) => {
                let w = model
                    .linear_weight(&name)?
                    .ok_or_else(|| RunError::Scan(format!("`{name}` is not a dense linear weight in this model")))?;
                let m = match target {
                    Target::Head(_) => Some(head_sq.clone()),
                    _ => stats.inputs.values().find(|s| s.linears.contains(&name)).map(|s| s.mean_sq()),
                };
                (w, false, m.unwrap_or_default())
            }
        };
        let (rows, cols) = w.dims2().map_err(candle)?;
        let values: Vec<f32> =
            w.to_dtype(DType::F32).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1()).map_err(candle)?;
        let weight = |r: usize, c: usize| m.get(if by_row { r } else { c }).copied().unwrap_or(1.0);
        let mut candidates: Vec<ScanCandidate> = Vec::new();
        // The anchor as this shape takes it (its fallback chain applied), when predicting.
        let anchor = match &spec.predict_from {
            Some(a) => {
                let chain = pareto_formats::fallback_chain(a, rows, cols).map_err(|e| RunError::Scan(e.to_string()))?;
                match chain.applied() {
                    Some(f) => Some(f.id.to_string()),
                    None => {
                        // E.g. an embedding under integer formats: nothing to measure it against.
                        notes.push(format!(
                            "`{name}` takes no format of `{a}`'s fallback chain: not scanned (the base recipe decides it)"
                        ));
                        ctx.progress.advance(spec.formats.len() as u64, &name);
                        continue;
                    }
                }
            }
            None => None,
        };
        for id in &spec.formats {
            ctx.checkpoint()?;
            ctx.progress.advance(1, &name);
            // What the export gives this shape when `id` is asked for (the registry's fallback chain).
            let chain = pareto_formats::fallback_chain(id, rows, cols).map_err(|e| RunError::Scan(e.to_string()))?;
            let Some(fmt) = chain.applied() else { continue };
            if candidates.iter().any(|c| c.format == fmt.id) {
                continue;
            }
            let err = |e: pareto_formats::FormatError| RunError::Scan(format!("`{name}` as {}: {e}", fmt.id));
            let mut decoded = values.clone();
            fmt.fake_quantize(&mut decoded, rows, cols).map_err(err)?;
            let (mut num, mut den) = (0.0f64, 0.0f64);
            for (r, (row_w, row_q)) in values.chunks_exact(cols).zip(decoded.chunks_exact(cols)).enumerate() {
                for (c, (&a, &b)) in row_w.iter().zip(row_q).enumerate() {
                    num += weight(r, c) * f64::from(a - b).powi(2);
                    den += weight(r, c) * f64::from(a).powi(2);
                }
            }
            let proxy = if den > 0.0 { num / den } else { 0.0 };
            let bytes = fmt.stored_bytes(rows, cols).map_err(err)?;
            if anchor.as_deref().is_some_and(|a| a != fmt.id) {
                candidates.push(ScanCandidate {
                    format: fmt.id.to_string(),
                    bytes,
                    kl: f64::NAN,
                    proxy,
                    measured: false,
                });
                continue;
            }
            let kl = match journal.get(&name, fmt.id) {
                Some(kl) => kl,
                None => {
                    let kl = measure(&mut model, target, decoded, (rows, cols), &w, &original, &ids_of, &inputs)?;
                    journal.record(&name, fmt.id, kl);
                    kl
                }
            };
            candidates.push(ScanCandidate { format: fmt.id.to_string(), bytes, kl, proxy, measured: true });
        }
        if candidates.is_empty() {
            notes.push(format!(
                "`{name}` takes none of the candidate formats: not scanned (the base recipe decides it)"
            ));
            continue;
        }
        if let Some(a) = &anchor {
            predict_from_anchor(&mut candidates, a, &name)?;
        }
        let weight_name = format!("{name}.weight");
        tensors.push(ScannedTensor {
            fused_group: fused_group(&weight_name, layer),
            name: weight_name,
            layer,
            params: (rows * cols) as u64,
            candidates,
        });
    }
    // Judged on measured KLs only (a predicted one follows its proxy by construction).
    let (proxy, kl): (Vec<f64>, Vec<f64>) =
        tensors.iter().flat_map(|t| t.candidates.iter().filter(|c| c.measured).map(|c| (c.proxy, c.kl))).unzip();
    if let Some(a) = &spec.predict_from {
        notes.push(format!(
            "KL measured for {a} only (per tensor, after its fallback chain); the other candidates' KL is predicted as KL({a}) × proxy / proxy({a})"
        ));
    }
    notes.extend(journal.into_notes());
    Ok(Scan {
        model_key,
        samples_sha256,
        spec: ScanSpec { window: calib.window, ..spec.clone() },
        tokens: scored,
        tensors,
        proxy_spearman: spearman(&proxy, &kl),
        seconds: started.elapsed().as_secs_f64(),
        notes,
    })
}

/// The mean KL of the model with `target` replaced by `decoded` (put back afterwards): only the
/// layers from the tensor's on are run again, from the original's inputs to them (`[windows,
/// window, hidden]`), and the head window by window (its logits are the largest temporaries).
#[allow(clippy::too_many_arguments)]
fn measure(
    model: &mut LlamaModel,
    target: &Target,
    decoded: Vec<f32>,
    shape: (usize, usize),
    original_weight: &Tensor,
    original: &[Reference],
    ids: &Tensor,
    inputs: &[Tensor],
) -> Result<f64> {
    let n_layers = inputs.len() - 1;
    let t = Tensor::from_vec(decoded, shape, &Device::Cpu).map_err(candle)?;
    target.set(model, t)?;
    let start = target.first_layer(n_layers);
    let run = || -> Result<f64> {
        let mut x = match target {
            Target::Embedding => model.embed(ids)?,
            _ => inputs[start].clone(),
        };
        for li in start..n_layers {
            x = model.run_layer(li, &x, None)?;
        }
        let (mut kl, mut positions) = (0.0, 0);
        for (wi, reference) in original.iter().enumerate() {
            let window = x.narrow(0, wi, 1).map_err(candle)?;
            kl += reference.kl_sum(0, &model.head(&window)?)?;
            positions += reference.rows();
        }
        Ok(kl / positions.max(1) as f64)
    };
    let result = run();
    target.set(model, original_weight.clone())?;
    result
}

/// Fills the unmeasured candidates of one tensor from its measured anchor: KL scales with the
/// importance-weighted error while the perturbation is small (KL is second order in it, and so is
/// the proxy), so each candidate gets the anchor's KL per unit of proxy.
fn predict_from_anchor(candidates: &mut [ScanCandidate], anchor: &str, name: &str) -> Result<()> {
    let (kl, proxy) = candidates
        .iter()
        .find(|c| c.format == anchor && c.measured)
        .map(|c| (c.kl, c.proxy))
        .ok_or_else(|| RunError::Scan(format!("`{name}`: the anchor {anchor} was not measured")))?;
    for c in candidates.iter_mut().filter(|c| !c.measured) {
        c.kl = if proxy > 0.0 { kl * c.proxy / proxy } else { 0.0 };
    }
    Ok(())
}

/// The scan as the allocator's groups: tensors an engine fuses share one format when `fuse`;
/// only `names` (the tensors the base recipe compresses) take part. Per group and format, the
/// predicted loss is the sum of its tensors' measured KL.
pub fn groups(scan: &Scan, names: &[String], fuse: bool) -> Vec<pareto_core::recipe::allocate::Group> {
    use pareto_core::recipe::allocate::{Choice, Group};
    let mut by_key: BTreeMap<(Option<usize>, String), Vec<&ScannedTensor>> = BTreeMap::new();
    for t in scan.tensors.iter().filter(|t| names.contains(&t.name)) {
        let key = if fuse { t.fused_group.clone() } else { t.name.clone() };
        by_key.entry((t.layer, key)).or_default().push(t);
    }
    by_key
        .into_values()
        .map(|members| {
            let formats: Vec<&str> = members[0]
                .candidates
                .iter()
                .map(|c| c.format.as_str())
                .filter(|f| members.iter().all(|m| m.candidates.iter().any(|c| c.format == *f)))
                .collect();
            let choices = formats
                .iter()
                .map(|f| {
                    let picked: Vec<&ScanCandidate> =
                        members.iter().filter_map(|m| m.candidates.iter().find(|c| c.format == *f)).collect();
                    Choice {
                        format: f.to_string(),
                        bytes: picked.iter().map(|c| c.bytes).sum(),
                        loss: picked.iter().map(|c| c.kl).sum(),
                    }
                })
                .collect();
            Group { tensors: members.iter().map(|m| m.name.clone()).collect(), choices }
        })
        .collect()
}
