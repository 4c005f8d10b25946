//! The per-tensor pipeline shared by the packed writers (compressed-tensors, GPTQ, GGUF): read →
//! structured slice → prune → (row permutation) → quantize with the registry codec, one tensor at
//! a time; plus the streaming driver for the safetensors-based packed targets, whose header is
//! computed from the plan before any weight is read.

use std::collections::BTreeMap;

use pareto_formats::{Format, Kind, QTensor};

use super::OutputDir;
use super::safetensors::{Entry, Layout, Writer};
use crate::compress::TensorReport;
use crate::error::{Error, Result};
use crate::job::JobContext;
use crate::metrics::{Sums, WeightMetrics};
use crate::recipe::PlannedTensor;
use crate::recipe::resolve::rows_cols;
use crate::store::{DType, Model, TensorInfo};
use crate::transform::{Pipeline, copy_verbatim, encode_f32, is_verbatim, load_transformed};

/// A quantized tensor and, when asked for, its weight-space error against the original.
pub(crate) struct Quantized {
    pub q: QTensor,
    pub metrics: Option<WeightMetrics>,
    /// The solver's objective and notes (calibrated algorithms only).
    pub loss: Option<f64>,
    pub notes: Vec<String>,
}

impl Quantized {
    /// Hands the codes to `write` (which returns the bytes it wrote) and gives the tensor's report.
    pub(crate) fn write(
        self,
        pt: &PlannedTensor,
        dtype: &'static str,
        write: impl FnOnce(QTensor) -> Result<u64>,
    ) -> Result<TensorReport> {
        let mut r = report(pt, dtype, write(self.q)?, self.metrics);
        r.calib_loss = self.loss;
        r.notes.extend(self.notes);
        Ok(r)
    }
}

/// Reorders rows in place: afterwards row `i` holds what was row `perm[i]` (`perm` is a
/// permutation). Follows each cycle with one row of scratch, so no second tensor-sized buffer.
pub(crate) fn permute_rows(w: &mut [f32], cols: usize, perm: &[usize]) {
    let mut done = vec![false; perm.len()];
    let mut saved = vec![0f32; cols];
    for start in 0..perm.len() {
        if done[start] || perm[start] == start {
            done[start] = true;
            continue;
        }
        saved.copy_from_slice(&w[start * cols..(start + 1) * cols]);
        let mut i = start;
        loop {
            done[i] = true;
            let from = perm[i];
            if from == start {
                w[i * cols..(i + 1) * cols].copy_from_slice(&saved);
                break;
            }
            w.copy_within(from * cols..(from + 1) * cols, i * cols);
            i = from;
        }
    }
}

/// The prepared (sliced, pruned) tensor with an optional row permutation applied.
pub(crate) fn prepare(
    pipe: &mut Pipeline,
    t: &TensorInfo,
    pt: &PlannedTensor,
    perm: Option<&[usize]>,
) -> Result<Vec<f32>> {
    let mut w = pipe.prepare(t, pt)?;
    if let Some(p) = perm {
        permute_rows(&mut w, rows_cols(&pt.shape).1, p);
    }
    Ok(w)
}

/// Rows' worth of elements decoded per step when measuring a packed tensor's error.
const METRIC_CHUNK: usize = 1 << 20;

/// Quantizes one tensor with `fmt`; metrics compare the dequantized codes with the original
/// (sliced, unpruned) values, so they include pruning error as the dense path's do.
pub(crate) fn quantize(
    pipe: &mut Pipeline,
    t: &TensorInfo,
    pt: &PlannedTensor,
    fmt: &'static Format,
    perm: Option<&[usize]>,
    metrics: bool,
) -> Result<Quantized> {
    let (rows, cols) = rows_cols(&pt.shape);
    let w = prepare(pipe, t, pt, perm)?;
    // Measured by the encoder as it goes when the error is against `w` itself (not pruned).
    let (solved, measured) = if metrics && pt.action.prune.is_none() {
        pipe.quantize_measured(pt, fmt, &w, rows, cols)?
    } else {
        (pipe.quantize(pt, fmt, &w, rows, cols)?, None)
    };
    let metrics = if let Some(sums) = measured {
        Some(sums.metrics())
    } else if metrics {
        let original = if pt.action.prune.is_some() {
            let mut o = load_transformed(pipe.reader, t, pt, pipe.selection, pipe.rewrite(pt).as_ref())?;
            if let Some(p) = perm {
                permute_rows(&mut o, cols, p);
            }
            Some(o)
        } else {
            None
        };
        let original = original.as_deref().unwrap_or(&w);
        // The codes that are written, decoded a few rows at a time: right for any algorithm that
        // chose them, without a second full-size copy of the tensor.
        let step = (METRIC_CHUNK / cols.max(1)).max(1);
        let mut acc = Sums::default();
        for first in (0..rows).step_by(step) {
            let n = step.min(rows - first);
            let part = solved.codes.row_range(first, n).ok_or_else(|| Error::WriterMismatch {
                expected: format!("{rows} rows of codes for {}", pt.name),
                got: format!("{} rows", solved.codes.rows()),
            })?;
            let deq = fmt.dequantize(&part).map_err(|e| Error::Format(e).for_tensor(&pt.name))?;
            acc = acc.merge(Sums::of_par(&original[first * cols..(first + n) * cols], &deq));
        }
        Some(acc.metrics())
    } else {
        None
    };
    pipe.reader.recycle(w);
    Ok(Quantized { q: solved.codes, metrics, loss: solved.loss, notes: solved.notes })
}

/// The report row of one written tensor.
pub(crate) fn report(
    pt: &PlannedTensor,
    dtype: &'static str,
    written: u64,
    metrics: Option<WeightMetrics>,
) -> TensorReport {
    TensorReport {
        name: pt.name.clone(),
        source_name: pt.source_name.clone(),
        action: pt.action.label(),
        format: pt.action.format,
        dtype,
        shape: pt.shape.clone(),
        source_bytes: pt.source_bytes,
        planned_bytes: pt.planned_bytes,
        written_bytes: written,
        notes: pt.notes.clone(),
        metrics,
        calib_loss: None,
    }
}

/// The dtype a plain float cast format writes (`f16`, `bf16`, `f32`), if `fmt` is one.
pub(crate) fn cast_dtype(fmt: &Format) -> Option<DType> {
    match (fmt.kind, fmt.id) {
        (Kind::Float, "f16") => Some(DType::F16),
        (Kind::Float, "bf16") => Some(DType::BF16),
        (Kind::Float, "f32") => Some(DType::F32),
        _ => None,
    }
}

/// A safetensors-based packed target: which tensors replace a quantized weight, and their bytes.
pub(crate) trait Scheme {
    /// Target name for messages (`compressed-tensors`, `GPTQ`).
    fn target(&self) -> &'static str;
    /// Output entries replacing the quantized weight `pt` (names, dtypes, shapes), in write order.
    fn entries(&self, pt: &PlannedTensor, fmt: &'static Format) -> Result<Vec<Entry>>;
    /// The bytes of each entry, same order, from the codec's output.
    fn encode(&self, pt: &PlannedTensor, q: &QTensor) -> Result<Vec<Vec<u8>>>;
}

/// How one planned tensor is written by a safetensors-based packed target.
enum Plan<'a> {
    /// Non-float buffer: source bytes unchanged.
    Raw,
    /// Dense float (kept, pruned only, or a float cast format) in `DType`.
    Dense(DType),
    Packed(&'a Format, Vec<Entry>),
}

/// What the safetensors-family driver wrote.
pub(crate) struct Written {
    pub reports: Vec<TensorReport>,
    pub weight_map: BTreeMap<String, String>,
    pub files: usize,
}

/// Streams every kept tensor into one output file per source shard (same file names), each
/// file's header computed up front from the plan.
pub(crate) fn write_safetensors_family(
    model: &Model,
    plan: &crate::recipe::Plan,
    out: &mut OutputDir,
    pipe: &mut Pipeline,
    ctx: &JobContext,
    scheme: &dyn Scheme,
    metrics: bool,
) -> Result<Written> {
    let mut by_shard: BTreeMap<usize, Vec<(&TensorInfo, &PlannedTensor, Plan)>> = BTreeMap::new();
    for (t, pt) in model.tensors().iter().zip(&plan.tensors) {
        if pt.action.drop {
            continue;
        }
        let how = if !t.dtype.is_float() {
            Plan::Raw
        } else {
            match pt.action.format.map(pareto_formats::lookup).transpose()? {
                None => Plan::Dense(pt.out_dtype),
                Some(f) => match cast_dtype(f) {
                    Some(d) => Plan::Dense(d),
                    None => Plan::Packed(f, scheme.entries(pt, f)?),
                },
            }
        };
        by_shard.entry(t.shard).or_default().push((t, pt, how));
    }
    let total = by_shard.values().map(Vec::len).sum::<usize>() as u64;
    ctx.progress.stage(scheme.target(), total);
    let decoded = by_shard.values().flatten().filter(|(t, pt, how)| match how {
        Plan::Raw => false,
        Plan::Dense(d) => !is_verbatim(pipe, t, pt, *d),
        Plan::Packed(..) => true,
    });
    pipe.reader.read_ahead(decoded.map(|(t, _, _)| (*t).clone()).collect());
    let mut written = Written { reports: Vec::new(), weight_map: BTreeMap::new(), files: by_shard.len() };
    for (shard, items) in &by_shard {
        let file_name = crate::compress::shard_file_name(model, *shard);
        let mut entries = Vec::new();
        for (t, pt, how) in items {
            match how {
                Plan::Raw => entries.push(Entry { name: pt.name.clone(), dtype: t.dtype, shape: pt.shape.clone() }),
                Plan::Dense(d) => entries.push(Entry { name: pt.name.clone(), dtype: *d, shape: pt.shape.clone() }),
                Plan::Packed(_, e) => entries.extend(e.iter().cloned()),
            }
        }
        let layout = Layout { entries, metadata: BTreeMap::from([("format".to_string(), "pt".to_string())]) };
        let mut writer = Writer::new(out.create_file(&file_name)?, layout)?;
        for (t, pt, how) in items {
            ctx.checkpoint()?;
            let rep = match how {
                Plan::Raw => {
                    let raw = pipe.raw(t)?;
                    writer.write_tensor(&pt.name, &raw)?;
                    report(pt, t.dtype.as_str(), raw.len() as u64, None)
                }
                Plan::Dense(d) if is_verbatim(pipe, t, pt, *d) => {
                    // Untouched: stream the source bytes (NaN/Inf checked), never a decoded copy.
                    let bytes = copy_verbatim(pipe.reader, t, pt, &mut writer)?;
                    report(pt, d.as_str(), bytes, None)
                }
                Plan::Dense(d) => {
                    let w = pipe.prepare(t, pt)?;
                    let mut bytes = 0;
                    let mut buf = Vec::new();
                    for chunk in w.chunks(1 << 20) {
                        buf.clear();
                        encode_f32(chunk, *d, &mut buf);
                        writer.write_tensor_chunk(&pt.name, &buf)?;
                        bytes += buf.len() as u64;
                    }
                    writer.end_tensor(&pt.name)?;
                    pipe.reader.recycle(w);
                    report(pt, d.as_str(), bytes, None)
                }
                Plan::Packed(fmt, entries) => {
                    let qz = quantize(pipe, t, pt, fmt, None, metrics)?;
                    qz.write(pt, "packed", |q| {
                        let mut bytes = 0;
                        for (e, data) in entries.iter().zip(&scheme.encode(pt, &q)?) {
                            writer.write_tensor(&e.name, data)?;
                            written.weight_map.insert(e.name.clone(), file_name.clone());
                            bytes += data.len() as u64;
                        }
                        Ok(bytes)
                    })?
                }
            };
            written.weight_map.insert(pt.name.clone(), file_name.clone());
            ctx.progress.advance(1, &pt.name);
            written.reports.push(rep);
        }
        out.record(writer.finish()?);
    }
    // Packed tensors are listed by their stored names only.
    for (_, pt, how) in by_shard.values().flatten() {
        if matches!(how, Plan::Packed(..)) {
            written.weight_map.remove(&pt.name);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::permute_rows;

    #[test]
    fn in_place_row_permutation_equals_gathering_the_rows() {
        let cols = 3;
        for perm in [vec![0, 1, 2, 3, 4, 5], vec![5, 4, 3, 2, 1, 0], vec![1, 2, 0, 4, 5, 3], vec![3, 0, 4, 1, 5, 2]] {
            let w: Vec<f32> = (0..perm.len() * cols).map(|i| i as f32).collect();
            let expected: Vec<f32> = perm.iter().flat_map(|&r| w[r * cols..(r + 1) * cols].to_vec()).collect();
            let mut got = w.clone();
            permute_rows(&mut got, cols, &perm);
            assert_eq!(got, expected, "{perm:?}");
        }
    }
}
