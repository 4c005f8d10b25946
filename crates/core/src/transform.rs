//! Per-tensor work of `compress`: read, slice (structured), prune, quantize, compare, write.

use std::collections::BTreeMap;

use crate::accel::Accelerator;
use crate::compress::TensorReport;
use crate::error::{Error, Result};
use crate::export::safetensors::Writer;
use crate::job::JobContext;
use crate::metrics::{Sums, WeightMetrics};
use crate::prune::global::Threshold;
use crate::prune::structured::{self as st, Selection};
use crate::prune::{prune_below, prune_magnitude, prune_n_m};
use crate::quantize::{Rewrite, TensorQuantizer};
use crate::recipe::resolve::{Cut, cut_of, rows_cols};
use crate::recipe::{PlannedTensor, PruneScope, PruneSpec, StructuredPlan, layer_index};
use crate::source::SourceReader;
use crate::store::{self, DType, Model, TensorInfo};

/// Rows written per chunk: bounds the extra memory of comparing and encoding to a few MB.
const CHUNK_ELEMS: usize = 1 << 20;

fn decode(t: &TensorInfo, raw: &[u8]) -> Result<Vec<f32>> {
    store::decode_f32(t.dtype, raw).ok_or_else(|| Error::NotAFloatTensor { tensor: t.name.clone(), dtype: t.dtype })
}

/// The first NaN/Inf element of little-endian float bytes, found on the bit patterns (all-ones
/// exponent) without converting to f32; `None` for integer dtypes and for FP8 E4M3/E8M0, whose NaN
/// encodings the decode path checks.
fn first_non_finite_raw(dtype: DType, raw: &[u8]) -> Option<usize> {
    match dtype {
        DType::F32 => {
            raw.chunks_exact(4).position(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & 0x7F80_0000 == 0x7F80_0000)
        }
        DType::F16 => raw.chunks_exact(2).position(|c| u16::from_le_bytes([c[0], c[1]]) & 0x7C00 == 0x7C00),
        DType::BF16 => raw.chunks_exact(2).position(|c| u16::from_le_bytes([c[0], c[1]]) & 0x7F80 == 0x7F80),
        DType::F64 => raw.chunks_exact(8).position(|c| {
            u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) & 0x7FF0_0000_0000_0000
                == 0x7FF0_0000_0000_0000
        }),
        d if d.is_float() => raw
            .chunks_exact(d.size_bytes().max(1) as usize)
            .position(|c| store::decode_f32(d, c).and_then(|v| v.first().copied()).is_some_and(|x| !x.is_finite())),
        _ => None,
    }
}

/// The tensor as f32 after a calibrated rewrite (AWQ, SparseGPT) and structured slicing (what pruning and
/// quantization act on).
pub fn load_transformed(
    reader: &SourceReader,
    t: &TensorInfo,
    pt: &PlannedTensor,
    sel: Option<&Selection>,
    rewrite: Option<&Rewrite>,
) -> Result<Vec<f32>> {
    let mut w = reader.read_f32(t)?;
    if let Some(r) = rewrite {
        r.apply(&mut w).map_err(|detail| Error::Solver {
            algorithm: "calibrated rewrite",
            tensor: t.name.clone(),
            detail,
        })?;
    }
    Ok(slice_structured(w, t, pt, sel))
}

fn slice_structured(w: Vec<f32>, t: &TensorInfo, pt: &PlannedTensor, sel: Option<&Selection>) -> Vec<f32> {
    let (Some(sel), Some(layer)) = (sel, layer_index(&t.name)) else { return w };
    if pt.shape == pt.source_shape {
        return w;
    }
    let (_, cols) = rows_cols(&pt.source_shape);
    let cols = if pt.source_shape.len() == 1 { 1 } else { cols };
    let ffn = sel.ffn.get(&layer);
    let kv = sel.kv_groups.get(&layer);
    let head_dim = sel.head_dim;
    let group = sel.group;
    match cut_of(&t.name) {
        Cut::FfnRows => ffn.map_or(w.clone(), |k| st::take_rows(&w, cols, k)),
        Cut::FfnCols => ffn.map_or(w.clone(), |k| st::take_cols(&w, cols, k)),
        Cut::QRows => kv.map_or(w.clone(), |g| st::take_rows(&w, cols, &st::expand(g, group * head_dim))),
        Cut::KvRows => kv.map_or(w.clone(), |g| st::take_rows(&w, cols, &st::expand(g, head_dim))),
        Cut::OCols => kv.map_or(w.clone(), |g| st::take_cols(&w, cols, &st::expand(g, group * head_dim))),
        Cut::None => w,
    }
}

/// A kept, unreshaped, not rewritten tensor written in its source dtype: its bytes are copied unchanged.
pub(crate) fn is_verbatim(pipe: &Pipeline, t: &TensorInfo, pt: &PlannedTensor, out: DType) -> bool {
    pt.action.is_keep() && pt.shape == pt.source_shape && out == t.dtype && pipe.rewrite(pt).is_none()
}

/// Processes one tensor and streams it into `writer`.
pub fn write_tensor(
    pipe: &mut Pipeline,
    t: &TensorInfo,
    pt: &PlannedTensor,
    writer: &mut Writer,
) -> Result<TensorReport> {
    let reader = pipe.reader;
    let reshaped = pt.shape != pt.source_shape;
    let mut report = TensorReport {
        name: pt.name.clone(),
        source_name: pt.source_name.clone(),
        action: pt.action.label(),
        format: pt.action.format,
        dtype: pt.out_dtype.as_str(),
        shape: pt.shape.clone(),
        source_bytes: pt.source_bytes,
        planned_bytes: pt.planned_bytes,
        written_bytes: 0,
        notes: pt.notes.clone(),
        metrics: None,
        calib_loss: None,
    };
    if is_verbatim(pipe, t, pt, pt.out_dtype) {
        // Untouched: copy the bytes exactly, checking floats for NaN/Inf on the way.
        report.written_bytes = copy_verbatim(reader, t, pt, writer)?;
        return Ok(report);
    }
    let (rows, cols) = rows_cols(&pt.shape);
    let rewrite = pipe.rewrite(pt);
    let mut w = load_transformed(reader, t, pt, pipe.selection, rewrite.as_ref())?;
    // Structured cuts and calibrated rewrites change what "the original" is; compare against
    // the sliced or rewritten original then.
    let sliced_original = (reshaped || rewrite.is_some()).then(|| w.clone());
    apply_prune(&mut w, pt, pipe.thresholds, &mut pipe.ties, pipe.solver)?;
    if let Some(id) = pt.action.format {
        let fmt = pareto_formats::lookup(id)?;
        // The dense file holds the chosen codes decoded by the reference codec.
        let (loss, notes) = pipe.quantize_in_place(pt, fmt, &mut w, rows, cols)?;
        report.calib_loss = loss;
        report.notes.extend(notes);
    }
    // Compare and encode in chunks; the original comes from a re-read of the source bytes.
    let mut acc = MetricsAcc::default();
    let elem = t.dtype.size_bytes() as usize;
    let mut buf = Vec::with_capacity(CHUNK_ELEMS * pt.out_dtype.size_bytes() as usize);
    for (i, chunk) in w.chunks(CHUNK_ELEMS).enumerate() {
        let start = i * CHUNK_ELEMS;
        let original: Vec<f32> = match &sliced_original {
            Some(o) => o[start..start + chunk.len()].to_vec(),
            None => {
                let raw = reader.read(t, (start * elem) as u64, chunk.len() * elem)?;
                decode(t, &raw)?
            }
        };
        acc.add(&original, chunk);
        buf.clear();
        encode_f32(chunk, pt.out_dtype, &mut buf);
        writer.write_tensor_chunk(&pt.name, &buf)?;
        report.written_bytes += buf.len() as u64;
    }
    writer.end_tensor(&pt.name)?;
    reader.recycle(w);
    report.metrics = Some(acc.finish());
    Ok(report)
}

/// Zeroes what the plan's pruning spec removes (per tensor, global threshold, or N:M).
fn apply_prune(
    w: &mut [f32],
    pt: &PlannedTensor,
    thresholds: &BTreeMap<u64, Threshold>,
    ties: &mut BTreeMap<u64, u64>,
    solver: Option<&dyn TensorQuantizer>,
) -> Result<()> {
    let (_, cols) = rows_cols(&pt.shape);
    match &pt.action.prune {
        Some(PruneSpec::Magnitude { sparsity, scope: PruneScope::Tensor }) => {
            prune_magnitude(w, *sparsity);
        }
        Some(PruneSpec::Magnitude { sparsity, scope: PruneScope::Global }) => {
            let key = sparsity.to_bits();
            if let (Some(th), Some(left)) = (thresholds.get(&key), ties.get_mut(&key)) {
                let mut remaining = usize::try_from(*left).unwrap_or(usize::MAX);
                prune_below(w, th.threshold, &mut remaining);
                *left = remaining as u64;
            }
        }
        Some(PruneSpec::NM { n, m }) => {
            prune_n_m(w, cols, *n, *m);
        }
        Some(
            p @ (PruneSpec::Wanda { .. }
            | PruneSpec::WandaNM { .. }
            | PruneSpec::SparseGpt { .. }
            | PruneSpec::SparseGptNM { .. }),
        ) => {
            // The calibration run chose the mask (on the layer's inputs as already compressed);
            // SparseGPT's updated weights came in through the rewrite, zeros included.
            let algorithm = if p.is_sparsegpt() { "sparsegpt" } else { "wanda" };
            let keep = solver.and_then(|s| s.keep_mask(&pt.source_name)).ok_or_else(|| Error::NeedsCalibration {
                algorithm,
                tensors: 1,
                example: pt.source_name.clone(),
            })?;
            if keep.len() != w.len() {
                return Err(Error::Solver {
                    algorithm,
                    tensor: pt.name.clone(),
                    detail: format!("{} mask for {} weights ({})", keep.len(), w.len(), p.label()),
                });
            }
            for (v, k) in w.iter_mut().zip(keep) {
                if !k {
                    *v = 0.0;
                }
            }
        }
        None => {}
    }
    Ok(())
}

/// Shared state of one export run: the source, the structured selection, the global pruning
/// thresholds (with the tie budget that global pruning consumes tensor by tensor) and the
/// accelerator with its tally.
pub struct Pipeline<'a> {
    pub reader: &'a SourceReader,
    pub selection: Option<&'a Selection>,
    pub thresholds: &'a BTreeMap<u64, Threshold>,
    pub ties: BTreeMap<u64, u64>,
    pub accel: Option<&'a dyn Accelerator>,
    /// Chooses the codes of the tensors a calibrated algorithm owns (see [`crate::quantize`]).
    pub solver: Option<&'a dyn TensorQuantizer>,
    /// Importance weights for the ggml types that take them (see [`crate::quantize`]).
    pub imatrix: Option<&'a crate::export::gguf::imatrix::Imatrix>,
    pub device_tensors: usize,
    pub device_notes: Vec<String>,
}

impl Pipeline<'_> {
    /// One tensor after structured slicing and pruning, before quantization: what the packed
    /// writers quantize with the registry codec. Float tensors only; NaN/Inf are refused.
    pub fn prepare(&mut self, t: &TensorInfo, pt: &PlannedTensor) -> Result<Vec<f32>> {
        let mut w = load_transformed(self.reader, t, pt, self.selection, self.rewrite(pt).as_ref())?;
        apply_prune(&mut w, pt, self.thresholds, &mut self.ties, self.solver)?;
        Ok(w)
    }

    /// The raw source bytes of a tensor (non-float buffers are carried through verbatim).
    pub fn raw(&self, t: &TensorInfo) -> Result<Vec<u8>> {
        let len = usize::try_from(t.nbytes).map_err(|_| Error::SizeOverflow { tensor: t.name.clone() })?;
        self.reader.read(t, 0, len)
    }
}

pub(crate) fn copy_verbatim(
    reader: &SourceReader,
    t: &TensorInfo,
    pt: &PlannedTensor,
    writer: &mut Writer,
) -> Result<u64> {
    let elem = t.dtype.size_bytes().max(1) as usize;
    let step = (CHUNK_ELEMS * 4 / elem) * elem;
    let mut offset = 0u64;
    while offset < t.nbytes {
        let len = (t.nbytes - offset).min(step as u64) as usize;
        let raw = reader.read(t, offset, len)?;
        if let Some(i) = first_non_finite_raw(t.dtype, &raw) {
            // Decode only the offending element, for the message.
            let value = decode(t, &raw[i * elem..(i + 1) * elem])?.first().copied().unwrap_or(f32::NAN);
            return Err(Error::NonFinite { tensor: t.name.clone(), index: (offset as usize) / elem + i, value });
        }
        writer.write_tensor_chunk(&pt.name, &raw)?;
        offset += len as u64;
    }
    writer.end_tensor(&pt.name)?;
    Ok(t.nbytes)
}

/// f32 → the output dtype, little-endian, round-to-nearest-even.
pub fn encode_f32(w: &[f32], dtype: DType, out: &mut Vec<u8>) {
    match dtype {
        DType::F16 => out.extend(w.iter().flat_map(|&x| half::f16::from_f32(x).to_bits().to_le_bytes())),
        DType::BF16 => out.extend(w.iter().flat_map(|&x| half::bf16::from_f32(x).to_bits().to_le_bytes())),
        _ => out.extend(w.iter().flat_map(|x| x.to_le_bytes())),
    }
}

/// Streaming version of [`WeightMetrics::compare`]: the same sums, accumulated chunk by chunk.
#[derive(Default)]
struct MetricsAcc {
    parts: Vec<Sums>,
}

impl MetricsAcc {
    fn add(&mut self, original: &[f32], compressed: &[f32]) {
        self.parts.push(Sums::of_par(original, compressed));
    }

    fn finish(self) -> WeightMetrics {
        self.parts.into_iter().fold(Sums::default(), Sums::merge).metrics()
    }
}

/// Chooses the FFN channels and KV groups kept in every layer from weight magnitudes.
pub fn select_structured(
    model: &Model,
    reader: &SourceReader,
    sp: &StructuredPlan,
    ctx: &JobContext,
) -> Result<Selection> {
    let cfg = model.require_config()?;
    let group = cfg.num_heads / cfg.num_kv_heads.max(1);
    let mut sel = Selection { head_dim: sp.head_dim, group, ..Selection::default() };
    let kept_layers: Vec<usize> = sp.layer_map.keys().copied().collect();
    ctx.progress.stage("score channels (structured pruning)", kept_layers.len() as u64);
    let find = |layer: usize, module: &str| -> Result<&TensorInfo> {
        model
            .tensors()
            .iter()
            .find(|t| layer_index(&t.name) == Some(layer) && t.name.ends_with(&format!("{module}.weight")))
            .ok_or_else(|| Error::TensorNotFound { name: format!("layer {layer} {module}.weight") })
    };
    for &layer in &kept_layers {
        ctx.checkpoint()?;
        if sp.ffn_after < sp.ffn_before {
            let gate = find(layer, "gate_proj")?;
            let up = find(layer, "up_proj")?;
            let down = find(layer, "down_proj")?;
            let g = st::row_sq_norms(&reader.read_f32(gate)?, rows_cols(&gate.shape).1);
            let u = st::row_sq_norms(&reader.read_f32(up)?, rows_cols(&up.shape).1);
            let d = st::col_sq_norms(&reader.read_f32(down)?, rows_cols(&down.shape).1);
            sel.ffn.insert(layer, st::top_indices(&st::ffn_scores(&g, &u, &d), sp.ffn_after));
        }
        if sp.kv_heads_after < sp.kv_heads_before {
            let q = find(layer, "q_proj")?;
            let k = find(layer, "k_proj")?;
            let v = find(layer, "v_proj")?;
            let o = find(layer, "o_proj")?;
            let scores = st::kv_group_scores(
                &st::row_sq_norms(&reader.read_f32(q)?, rows_cols(&q.shape).1),
                &st::row_sq_norms(&reader.read_f32(k)?, rows_cols(&k.shape).1),
                &st::row_sq_norms(&reader.read_f32(v)?, rows_cols(&v.shape).1),
                &st::col_sq_norms(&reader.read_f32(o)?, rows_cols(&o.shape).1),
                sp.kv_heads_before,
                group,
                sp.head_dim,
            );
            sel.kv_groups.insert(layer, st::top_indices(&scores, sp.kv_heads_after));
        }
        ctx.progress.advance(1, &format!("layer {layer}"));
    }
    Ok(sel)
}

/// Rewrites config.json fields for the reduced shapes, so loaders build matching modules.
pub fn update_config(raw: &mut serde_json::Value, sp: &StructuredPlan) {
    let Some(obj) = raw.as_object_mut() else { return };
    obj.insert("intermediate_size".into(), sp.ffn_after.into());
    if sp.kv_heads_after != sp.kv_heads_before {
        obj.insert("num_attention_heads".into(), sp.heads_after.into());
        obj.insert("num_key_value_heads".into(), sp.kv_heads_after.into());
        // hidden_size / heads no longer gives the head size: state it explicitly.
        obj.insert("head_dim".into(), sp.head_dim.into());
    }
    obj.insert("num_hidden_layers".into(), sp.layer_map.len().into());
    if let Some(serde_json::Value::Array(types)) = obj.get_mut("layer_types") {
        let kept: Vec<serde_json::Value> =
            types.iter().enumerate().filter(|(i, _)| sp.layer_map.contains_key(i)).map(|(_, v)| v.clone()).collect();
        *types = kept;
    }
}

#[cfg(test)]
mod raw_check_tests {
    use super::*;

    #[test]
    fn non_finite_found_on_bit_patterns() {
        let f16 = |x: f32| half::f16::from_f32(x).to_bits().to_le_bytes();
        let raw: Vec<u8> = [1.0, -2.0, f32::INFINITY, 3.0].iter().flat_map(|&x| f16(x)).collect();
        assert_eq!(first_non_finite_raw(DType::F16, &raw), Some(2));
        let bf: Vec<u8> =
            [0.5f32, f32::NAN].iter().flat_map(|&x| half::bf16::from_f32(x).to_bits().to_le_bytes()).collect();
        assert_eq!(first_non_finite_raw(DType::BF16, &bf), Some(1));
        let f32s: Vec<u8> = [f32::MAX, -0.0, f32::NEG_INFINITY].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(first_non_finite_raw(DType::F32, &f32s), Some(2));
        // E4M3 has no infinity; 0x7F is NaN and 0x7E (448) is finite.
        assert_eq!(first_non_finite_raw(DType::F8E4M3, &[0x7E, 0x00, 0x7F]), Some(2));
        assert_eq!(first_non_finite_raw(DType::I32, &[0xFF; 8]), None);
        let fine: Vec<u8> = [65504.0f32, -65504.0].iter().flat_map(|&x| f16(x)).collect();
        assert_eq!(first_non_finite_raw(DType::F16, &fine), None);
    }
}
