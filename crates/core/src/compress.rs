//! `compress`: applies a resolved [`Plan`] tensor by tensor and writes the chosen artifact: a
//! dense safetensors model (fake-quantized values and/or pruned zeros, structured cuts as real
//! shape reductions) that any engine loads and validation runs on, or a packed serving format
//! (compressed-tensors, GGUF, GPTQ v1; see [`crate::export`]). The read → slice → prune →
//! quantize pipeline is shared; only the writer differs.
//!
//! Memory: one tensor at a time. A tensor is read with positional reads (not kept mapped, so the
//! page cache — not this process — holds the source), decoded to f32, pruned and quantized in
//! place, then compared with the original and written out in row chunks that re-read the source
//! bytes, so peak memory is about one f32 copy of the largest transformed tensor.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::export::manifest::{MANIFEST_NAME, Manifest, content_hash};
use crate::export::packed::{self, Written};
use crate::export::safetensors::{Entry, Layout, Writer};
use crate::export::{ExportFormat, FileRecord, Opener, OutputDir, compressed_tensors, default_opener, gguf, gptq};
use crate::job::JobContext;
use crate::metrics::WeightMetrics;
use crate::prune::structured::Selection;
use crate::prune::{self, GlobalThreshold};
use crate::recipe::{Plan, PlanTotals, PlannedTensor, PruneScope, PruneSpec};
use crate::source::SourceReader;
use crate::store::{Model, TensorInfo};
use crate::transform::{self, Pipeline};

pub struct CompressOptions {
    pub out: PathBuf,
    /// Replace an existing output folder (only once the new one is complete).
    pub force: bool,
    /// How output files are opened; tests swap in a sink that simulates a full disk.
    pub opener: Opener,
    /// The artifact written (dense safetensors by default).
    pub format: ExportFormat,
    /// Weight-space error metrics for packed formats (a dequantize per tensor; the dense writer
    /// always has them).
    pub metrics: bool,
    /// Runs the codecs it implements on another device (a GPU); `None`: the CPU codecs.
    pub accelerator: Option<std::sync::Arc<dyn crate::accel::Accelerator>>,
    /// Chooses the codes of tensors the plan gives to a calibrated algorithm (GPTQ); a plan with
    /// such tensors and no solver serving them is refused before any work.
    pub solver: Option<std::sync::Arc<dyn crate::quantize::TensorQuantizer>>,
    /// A llama.cpp importance matrix: the ggml types whose scale search takes importance weights
    /// (every ggml type but q8_0) quantize with them, byte-identical to `llama-quantize --imatrix`.
    pub imatrix: Option<std::sync::Arc<crate::export::gguf::imatrix::Imatrix>>,
    /// Tensors above this size as f32 are not read ahead, and GGUF quantizes them a few rows at a
    /// time where nothing needs whole rows of others (bounds peak memory by the largest tensor's
    /// codes, not its f32 copy). Default [`crate::source::LARGE_TENSOR_BYTES`]; a tensor several
    /// times the model's mean size (a vocabulary-sized embedding or head) is large below it too.
    pub large_tensor_bytes: u64,
    /// Write a GGUF without a tokenizer when the model has none (llama.cpp cannot run it; for
    /// benchmarks and tensor inspection). Without it such an export is refused.
    pub gguf_weights_only: bool,
}

impl CompressOptions {
    pub fn new(out: impl Into<PathBuf>) -> Self {
        CompressOptions {
            out: out.into(),
            force: false,
            opener: default_opener(),
            format: ExportFormat::Safetensors,
            metrics: true,
            accelerator: None,
            solver: None,
            imatrix: None,
            large_tensor_bytes: crate::source::LARGE_TENSOR_BYTES,
            gguf_weights_only: false,
        }
    }

    pub fn with_format(mut self, format: ExportFormat) -> Self {
        self.format = format;
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TensorReport {
    pub name: String,
    pub source_name: String,
    pub action: String,
    pub format: Option<&'static str>,
    pub dtype: &'static str,
    pub shape: Vec<usize>,
    pub source_bytes: u64,
    /// Bytes as the packed format would store them.
    pub planned_bytes: u64,
    /// Bytes written to the dense file.
    pub written_bytes: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Weight-space error vs the original (a proxy for accuracy); absent for untouched tensors.
    pub metrics: Option<WeightMetrics>,
    /// The calibrated solver's objective for this tensor (GPTQ's Hessian-weighted loss).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calib_loss: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompressReport {
    pub source: PathBuf,
    pub output: PathBuf,
    pub format: ExportFormat,
    pub recipe: String,
    pub totals: PlanTotals,
    pub written_bytes: u64,
    pub tensors: Vec<TensorReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured: Option<Selection>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub global_thresholds: BTreeMap<String, f32>,
    pub files: Vec<FileRecord>,
    pub content_hash: String,
    pub seconds: f64,
    /// Where the codecs ran: `cpu`, or the accelerator's device (`cuda:0`).
    pub device: String,
    /// Tensors quantized on the accelerator (the rest ran on the CPU codecs).
    pub device_tensors: usize,
    /// Tensors the accelerator handed back to the CPU, and why (out of device memory).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_notes: Vec<String>,
    /// Temporary folders of killed runs found beside the output and removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stale_removed: Vec<PathBuf>,
}

#[derive(Serialize)]
struct ManifestTensor<'a> {
    name: &'a str,
    source_name: &'a str,
    action: &'a str,
    format: Option<&'static str>,
    dtype: &'static str,
    shape: &'a [usize],
    planned_bytes: u64,
    metrics: Option<WeightMetrics>,
    #[serde(skip_serializing_if = "Option::is_none")]
    calib_loss: Option<f64>,
}

/// Runs the plan. On error or cancel nothing appears under `opts.out`. What the target format
/// cannot express is refused before the output folder is created.
pub fn compress(model: &Model, plan: &Plan, opts: &CompressOptions, ctx: &JobContext) -> Result<CompressReport> {
    let started = Instant::now();
    if matches!(opts.format, ExportFormat::CompressedTensors | ExportFormat::Gptq) && model.config().is_none() {
        let dir = model.root().to_path_buf();
        return Err(Error::ExportNeedsConfig { format: opts.format.as_str(), dir });
    }
    let gguf_layout = match opts.format {
        ExportFormat::Gguf => Some(gguf::writer::layout(model, plan, opts.gguf_weights_only)?),
        _ => None,
    };
    let gptq_layout = match opts.format {
        ExportFormat::Gptq => Some(gptq::check(plan)?),
        _ => None,
    };
    if opts.format == ExportFormat::CompressedTensors {
        compressed_tensors::check(plan)?;
    }
    check_solver(plan, opts.solver.as_deref())?;
    if let Some(m) = &opts.imatrix {
        check_imatrix(model, m)?;
    }
    let mut out = OutputDir::create(&opts.out, &model.source_paths(), opts.force, opts.opener.clone())?;
    let reader = SourceReader::open(model, opts.large_tensor_bytes)?;
    let source_hashes = reader.hash_in_background();

    let selection = match &plan.structured {
        Some(sp) => Some(transform::select_structured(model, &reader, sp, ctx)?),
        None => None,
    };
    let thresholds = global_thresholds(model, plan, &reader, selection.as_ref(), ctx)?;
    let mut pipe = Pipeline {
        reader: &reader,
        selection: selection.as_ref(),
        thresholds: &thresholds,
        ties: thresholds.iter().map(|(k, t)| (*k, t.ties)).collect(),
        accel: opts.accelerator.as_deref(),
        solver: opts.solver.as_deref(),
        imatrix: opts.imatrix.as_deref(),
        device_tensors: 0,
        device_notes: Vec::new(),
    };

    let (mut reports, label) = match opts.format {
        ExportFormat::Safetensors => {
            let w = write_dense(model, plan, &mut out, &mut pipe, ctx)?;
            write_side_files(model, plan, &mut out, &w.weight_map, w.files > 1 || model.shards().len() > 1, None)?;
            (w.reports, "safetensors-dense")
        }
        ExportFormat::CompressedTensors => {
            let w = packed::write_safetensors_family(
                model,
                plan,
                &mut out,
                &mut pipe,
                ctx,
                &compressed_tensors::CompressedTensors,
                opts.metrics,
            )?;
            let qc = compressed_tensors::quantization_config(plan)?;
            write_side_files(model, plan, &mut out, &w.weight_map, w.files > 1 || model.shards().len() > 1, Some(qc))?;
            (w.reports, "compressed-tensors")
        }
        ExportFormat::Gptq => {
            let w = packed::write_safetensors_family(model, plan, &mut out, &mut pipe, ctx, &gptq::Gptq, opts.metrics)?;
            let qc = gptq_layout.as_ref().map(gptq::quantize_config).unwrap_or_default();
            out.write_file("quantize_config.json", &to_json(&qc)?)?;
            write_side_files(model, plan, &mut out, &w.weight_map, w.files > 1 || model.shards().len() > 1, Some(qc))?;
            (w.reports, "gptq")
        }
        ExportFormat::Gguf => {
            let layout =
                gguf_layout.ok_or(Error::WriterMismatch { expected: "a GGUF layout".into(), got: "none".into() })?;
            let mut reports = gguf::writer::write(model, plan, &layout, &mut out, &mut pipe, ctx, opts.metrics)?;
            if let (Some(first), false) = (reports.first_mut(), layout.notes().is_empty()) {
                first.notes.extend(layout.notes().iter().cloned());
            }
            write_side_files(model, plan, &mut out, &BTreeMap::new(), false, None)?;
            (reports, "gguf")
        }
    };
    ctx.checkpoint()?;
    // A tensor AWQ rescaled holds other values than its source even where the plan keeps it.
    for r in reports.iter_mut() {
        if opts.solver.as_ref().is_some_and(|s| s.rewrite(&r.source_name).is_some()) {
            r.notes.push(
                "rescaled: calibrated per-channel scales (awq) folded in; metrics against the rescaled values".into(),
            );
        }
    }
    let (device_tensors, device_notes) = (pipe.device_tensors, std::mem::take(&mut pipe.device_notes));

    let source_files = source_hashes.finish()?;
    let files = out.files();
    let hash = content_hash(&files);
    let manifest = Manifest {
        tool: "pareto",
        tool_version: env!("CARGO_PKG_VERSION"),
        format: label.into(),
        source_files,
        source_digests: crate::export::manifest::SOURCE_DIGEST_NOTE,
        recipe: plan.recipe.clone(),
        tensors: reports
            .iter()
            .map(|r| ManifestTensor {
                name: &r.name,
                source_name: &r.source_name,
                action: &r.action,
                format: r.format,
                dtype: r.dtype,
                shape: &r.shape,
                planned_bytes: r.planned_bytes,
                metrics: r.metrics,
                calib_loss: r.calib_loss,
            })
            .collect::<Vec<_>>(),
        files: files.clone(),
        content_hash: hash.clone(),
    };
    out.write_file(MANIFEST_NAME, &to_json(&manifest)?)?;
    ctx.checkpoint()?;
    let stale_removed = out.stale_removed().to_vec();
    let output = out.commit()?;
    Ok(CompressReport {
        source: model.root().to_path_buf(),
        output,
        format: opts.format,
        recipe: plan.recipe.name.clone(),
        totals: plan.totals.clone(),
        written_bytes: files.iter().map(|f| f.bytes).sum(),
        tensors: reports,
        structured: selection,
        global_thresholds: thresholds.iter().map(|(k, t)| (format!("{}", f64::from_bits(*k)), t.threshold)).collect(),
        files,
        content_hash: hash,
        seconds: started.elapsed().as_secs_f64(),
        device: opts.accelerator.as_ref().map_or_else(|| "cpu".to_string(), |a| a.device()),
        device_tensors,
        device_notes,
        stale_removed,
    })
}

/// The checks `compress` makes on the output folder before any work, for callers that run a long
/// step (calibration) first.
pub fn check_output(model: &Model, opts: &CompressOptions) -> Result<()> {
    OutputDir::preflight(&opts.out, &model.source_paths(), opts.force).map(|_| ())
}

/// An importance matrix must belong to this model: every entry names one of its weights (by GGUF
/// name) with that weight's input columns. Returns the weights it has no entry for.
pub fn check_imatrix(model: &Model, m: &crate::export::gguf::imatrix::Imatrix) -> Result<Vec<String>> {
    m.check_against(Path::new(&m.source), &crate::export::gguf::imatrix::weights_of(model))
}

/// A calibrated tensor without a solver for it is refused before the output exists.
fn check_solver(plan: &Plan, solver: Option<&dyn crate::quantize::TensorQuantizer>) -> Result<()> {
    let served = |t: &PlannedTensor| {
        solver.is_some_and(|s| {
            (!t.action.algorithm.needs_calibration() || s.serves(t.action.algorithm))
                && (!t.action.prune.as_ref().is_some_and(PruneSpec::needs_calibration) || s.has_mask(&t.source_name))
        })
    };
    let unserved: Vec<_> = plan.calibrated().filter(|t| !served(t)).collect();
    match unserved.first() {
        None => Ok(()),
        Some(first) => Err(Error::NeedsCalibration {
            algorithm: if first.action.algorithm.needs_calibration() {
                first.action.algorithm.label()
            } else {
                "wanda"
            },
            tensors: unserved.len(),
            example: first.source_name.clone(),
        }),
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v)
        .map_err(|e| Error::WriterMismatch { expected: "serializable JSON".into(), got: e.to_string() })
}

/// The dense writer: one output file per source shard, same names, same membership, dropped
/// tensors removed.
fn write_dense(
    model: &Model,
    plan: &Plan,
    out: &mut OutputDir,
    pipe: &mut Pipeline,
    ctx: &JobContext,
) -> Result<Written> {
    let mut by_shard: BTreeMap<usize, Vec<(&TensorInfo, &PlannedTensor)>> = BTreeMap::new();
    for (t, pt) in model.tensors().iter().zip(&plan.tensors) {
        if !pt.action.drop {
            by_shard.entry(t.shard).or_default().push((t, pt));
        }
    }
    let total = by_shard.values().map(Vec::len).sum::<usize>() as u64;
    ctx.progress.stage("compress", total);
    let decoded = by_shard.values().flatten().filter(|(t, pt)| !transform::is_verbatim(pipe, t, pt, pt.out_dtype));
    pipe.reader.read_ahead(decoded.map(|(t, _)| (*t).clone()).collect());
    let mut written =
        Written { reports: Vec::with_capacity(total as usize), weight_map: BTreeMap::new(), files: by_shard.len() };
    for (shard, items) in &by_shard {
        let file_name = shard_file_name(model, *shard);
        let layout = Layout {
            entries: items
                .iter()
                .map(|(_, pt)| Entry { name: pt.name.clone(), dtype: pt.out_dtype, shape: pt.shape.clone() })
                .collect(),
            metadata: BTreeMap::from([("format".to_string(), "pt".to_string())]),
        };
        let mut writer = Writer::new(out.create_file(&file_name)?, layout)?;
        for (t, pt) in items {
            ctx.checkpoint()?;
            let report = transform::write_tensor(pipe, t, pt, &mut writer)?;
            written.weight_map.insert(pt.name.clone(), file_name.clone());
            ctx.progress.advance(1, &pt.name);
            written.reports.push(report);
        }
        out.record(writer.finish()?);
    }
    ctx.checkpoint()?;
    Ok(written)
}

pub(crate) fn shard_file_name(model: &Model, shard: usize) -> String {
    model
        .shards()
        .get(shard)
        .and_then(|s| s.path.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.safetensors".into())
}

/// Global magnitude pruning: the exact threshold per sparsity level over all tensors that ask
/// for it, in two streaming passes.
fn global_thresholds(
    model: &Model,
    plan: &Plan,
    reader: &SourceReader,
    selection: Option<&Selection>,
    ctx: &JobContext,
) -> Result<BTreeMap<u64, prune::global::Threshold>> {
    let mut groups: BTreeMap<u64, Vec<(&TensorInfo, &PlannedTensor)>> = BTreeMap::new();
    for (t, pt) in model.tensors().iter().zip(&plan.tensors) {
        if let Some(PruneSpec::Magnitude { sparsity, scope: PruneScope::Global }) = &pt.action.prune
            && !pt.action.drop
        {
            groups.entry(sparsity.to_bits()).or_default().push((t, pt));
        }
    }
    let mut out = BTreeMap::new();
    for (key, members) in groups {
        let mut g = GlobalThreshold::new();
        ctx.progress.stage("rank weights (global pruning)", 2 * members.len() as u64);
        for (t, pt) in &members {
            ctx.checkpoint()?;
            g.observe(&transform::load_transformed(reader, t, pt, selection, None)?);
            ctx.progress.advance(1, &pt.name);
        }
        if g.set_sparsity(f64::from_bits(key)) {
            for (t, pt) in &members {
                ctx.checkpoint()?;
                g.refine(&transform::load_transformed(reader, t, pt, selection, None)?);
                ctx.progress.advance(1, &pt.name);
            }
            if let Some(th) = g.finish() {
                out.insert(key, th);
            }
        }
    }
    Ok(out)
}

/// config.json (updated for structured cuts), the shard index, tokenizer and other files.
fn write_side_files(
    model: &Model,
    plan: &Plan,
    out: &mut OutputDir,
    weight_map: &BTreeMap<String, String>,
    sharded: bool,
    quantization_config: Option<serde_json::Value>,
) -> Result<()> {
    if let Some(cfg) = model.config() {
        let mut raw = cfg.raw.clone();
        if let Some(sp) = &plan.structured {
            transform::update_config(&mut raw, sp);
        }
        if let (Some(qc), Some(obj)) = (quantization_config, raw.as_object_mut()) {
            obj.insert("quantization_config".into(), qc);
        }
        out.write_file("config.json", &to_json(&raw)?)?;
    }
    if sharded {
        let total: u64 =
            plan.tensors.iter().filter(|t| !t.action.drop).map(|t| t.params * t.out_dtype.size_bytes()).sum();
        let index = serde_json::json!({ "metadata": { "total_size": total }, "weight_map": weight_map });
        let text = serde_json::to_vec_pretty(&index)
            .map_err(|e| Error::WriterMismatch { expected: "serializable index".into(), got: e.to_string() })?;
        out.write_file("model.safetensors.index.json", &text)?;
    }
    for path in model.other_files() {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
        if name == "config.json" || name == MANIFEST_NAME || name == "quantize_config.json" || !path.is_file() {
            continue;
        }
        out.copy_file(&path, &name)?;
    }
    Ok(())
}

/// Opens a file for positional reads.
pub(crate) fn open_read(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io(path, e))
}
