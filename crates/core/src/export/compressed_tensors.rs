//! compressed-tensors checkpoints as vLLM, SGLang and transformers load them.
//!
//! Followed: compressed-tensors
//! src/compressed_tensors/compressors/quantized_compressors/pack_quantized.py (`pack_to_int32`:
//! signed codes offset by 2^(b-1), LSB-first along the input dim; zero points packed the same way
//! along the *output* dim; `weight_shape` from `torch.tensor(weight.shape)`, i.e. int64) and
//! `compression_param_info` (shapes); src/compressed_tensors/quantization/quant_args.py and
//! quant_config.py (the `quantization_config` block); vllm
//! model_executor/layers/quantization/compressed_tensors/compressed_tensors.py (every Linear layer
//! must match a group target or the ignore list).
//!
//! - int4 group (sym/asym) and int8 per channel → `pack-quantized`: `weight_packed` I32
//!   `[out, ceil(in·b/32)]`, `weight_scale` F16 `[out, groups]`, `weight_shape` I64 `[2]`, and for
//!   asymmetric formats `weight_zero_point` I32 `[ceil(out·b/32), groups]`.
//! - FP8 E4M3 per channel / per tensor → `float-quantized`: `weight` F8_E4M3 `[out, in]` and
//!   `weight_scale` F32 `[out, 1]` / `[1]`, with dynamic per-token FP8 activations (FP8_DYNAMIC).

use std::collections::BTreeMap;

use pareto_formats::{Format, Kind, PER_ROW, PER_TENSOR, QTensor};
use serde_json::{Value, json};

use super::pack::{pack_along_cols, pack_along_rows, per_word, words_le};
use super::packed::{Scheme, cast_dtype};
use super::safetensors::Entry;
use crate::error::{Error, Result};
use crate::recipe::resolve::rows_cols;
use crate::recipe::{Plan, PlannedTensor};
use crate::store::{DType, Role};

pub const TARGET: &str = "compressed-tensors";

/// The registry formats compressed-tensors stores (pack-quantized integers, float-quantized FP8,
/// float casts), for messages.
pub fn supported() -> String {
    pareto_formats::registry()
        .iter()
        .filter(|f| ct_format(f).is_some() || cast_dtype(f).is_some())
        .map(|f| f.id)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The compressed-tensors version whose layout this writer follows.
pub const CT_VERSION: &str = "0.12.2";

/// The `format` a registry format is stored in, or `None` when compressed-tensors cannot express it.
pub fn ct_format(fmt: &Format) -> Option<&'static str> {
    match fmt.kind {
        Kind::IntGrid => Some("pack-quantized"),
        Kind::FloatGrid => Some("float-quantized"),
        _ => None,
    }
}

/// Quantization args (`QuantizationArgs`) of a registry format, as compressed-tensors writes them.
fn weight_args(fmt: &Format) -> Value {
    let (kind, bits, sym) = match fmt.kind {
        Kind::FloatGrid => ("float", 8, true),
        _ => ("int", if fmt.id == "int8_channel" { 8 } else { 4 }, !fmt.id.ends_with("_asym")),
    };
    let (strategy, group) = match fmt.block {
        PER_ROW => ("channel", Value::Null),
        PER_TENSOR => ("tensor", Value::Null),
        g => ("group", json!(g)),
    };
    json!({
        "num_bits": bits, "type": kind, "symmetric": sym, "group_size": group, "strategy": strategy,
        "block_structure": null, "dynamic": false, "actorder": null, "observer": "minmax", "observer_kwargs": {}
    })
}

/// Dynamic per-token FP8 activations (the FP8_DYNAMIC preset), so no calibration scales are needed.
fn fp8_dynamic_activations() -> Value {
    json!({
        "num_bits": 8, "type": "float", "symmetric": true, "group_size": null, "strategy": "token",
        "block_structure": null, "dynamic": true, "actorder": null, "observer": null, "observer_kwargs": {}
    })
}

/// Refuses plans with formats compressed-tensors cannot store, naming the tensor and what works.
pub fn check(plan: &Plan) -> Result<()> {
    for pt in plan.tensors.iter().filter(|p| !p.action.drop) {
        if let Some(id) = pt.action.format {
            let fmt = pareto_formats::lookup(id)?;
            if cast_dtype(fmt).is_none() && ct_format(fmt).is_none() {
                return Err(Error::ExportFormatUnsupported {
                    target: TARGET,
                    tensor: pt.name.clone(),
                    format: id.to_string(),
                    supported: supported(),
                });
            }
        }
    }
    Ok(())
}

fn module_of(name: &str) -> &str {
    name.strip_suffix(".weight").unwrap_or(name)
}

/// The `quantization_config` block for config.json: one group per format, exact module names as
/// targets, and every other Linear layer (2-D weight that is not an embedding) in `ignore`.
pub fn quantization_config(plan: &Plan) -> Result<Value> {
    let mut groups: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut ignore = Vec::new();
    for pt in plan.tensors.iter().filter(|p| !p.action.drop && p.shape.len() == 2 && p.name.ends_with(".weight")) {
        let packed = match pt.action.format {
            Some(id) => {
                let fmt = pareto_formats::lookup(id)?;
                ct_format(fmt).map(|_| fmt.id)
            }
            None => None,
        };
        match packed {
            Some(id) => groups.entry(id).or_default().push(module_of(&pt.name).to_string()),
            None if pt.role != Role::Embedding => ignore.push(module_of(&pt.name).to_string()),
            None => {}
        }
    }
    let formats: Vec<&'static str> = groups
        .keys()
        .map(|id| pareto_formats::lookup(id).map(|f| ct_format(f).unwrap_or("dense")))
        .collect::<std::result::Result<_, _>>()?;
    let mixed = formats.windows(2).any(|w| w[0] != w[1]);
    let mut config_groups = serde_json::Map::new();
    for (i, ((id, targets), format)) in groups.iter().zip(&formats).enumerate() {
        let fmt = pareto_formats::lookup(id)?;
        let acts = if fmt.kind == Kind::FloatGrid { fp8_dynamic_activations() } else { Value::Null };
        let mut g = json!({
            "targets": targets, "weights": weight_args(fmt), "input_activations": acts, "output_activations": null
        });
        if mixed {
            g["format"] = json!(format);
        }
        config_groups.insert(format!("group_{i}"), g);
    }
    let format = match (mixed, formats.first()) {
        (true, _) => "mixed-precision",
        (false, Some(f)) => f,
        (false, None) => "dense",
    };
    Ok(json!({
        "config_groups": config_groups,
        "format": format,
        "global_compression_ratio": null,
        "ignore": ignore,
        "kv_cache_scheme": null,
        "quant_method": "compressed-tensors",
        "quantization_status": "compressed",
        "sparsity_config": {},
        "transform_config": {},
        "version": CT_VERSION,
    }))
}

pub(crate) struct CompressedTensors;

impl Scheme for CompressedTensors {
    fn target(&self) -> &'static str {
        TARGET
    }

    fn entries(&self, pt: &PlannedTensor, fmt: &'static Format) -> Result<Vec<Entry>> {
        let (rows, cols) = rows_cols(&pt.shape);
        let m = module_of(&pt.name);
        let e = |suffix: &str, dtype, shape: Vec<usize>| Entry { name: format!("{m}.{suffix}"), dtype, shape };
        if pt.shape.len() != 2 || !pt.name.ends_with(".weight") {
            return Err(Error::ExportTensor {
                target: TARGET,
                tensor: pt.name.clone(),
                problem: format!("only 2-D `.weight` tensors of Linear layers can be quantized (shape {:?})", pt.shape),
            });
        }
        match fmt.kind {
            Kind::FloatGrid => {
                let scale_shape = if fmt.block == PER_TENSOR { vec![1] } else { vec![rows, 1] };
                Ok(vec![e("weight", DType::F8E4M3, vec![rows, cols]), e("weight_scale", DType::F32, scale_shape)])
            }
            Kind::IntGrid => {
                let bits: u8 = if fmt.id == "int8_channel" { 8 } else { 4 };
                let groups = if fmt.block == PER_ROW { 1 } else { cols / fmt.block };
                let mut v = vec![
                    e("weight_packed", DType::I32, vec![rows, cols.div_ceil(per_word(bits))]),
                    e("weight_scale", DType::F16, vec![rows, groups]),
                ];
                if fmt.id.ends_with("_asym") {
                    v.push(e("weight_zero_point", DType::I32, vec![rows.div_ceil(per_word(bits)), groups]));
                }
                v.push(e("weight_shape", DType::I64, vec![2]));
                Ok(v)
            }
            _ => Err(Error::ExportFormatUnsupported {
                target: TARGET,
                tensor: pt.name.clone(),
                format: fmt.id.to_string(),
                supported: supported(),
            }),
        }
    }

    fn encode(&self, pt: &PlannedTensor, q: &QTensor) -> Result<Vec<Vec<u8>>> {
        match q {
            QTensor::Fp8E4m3 { codes, scales, .. } => {
                Ok(vec![codes.clone(), scales.iter().flat_map(|s| s.to_le_bytes()).collect()])
            }
            QTensor::Int { rows, cols, bits, codes, scales, zeros, .. } => {
                let offset = 1i32 << (bits - 1);
                let unsigned = |c: &[i8]| c.iter().map(|&v| (i32::from(v) + offset) as u32).collect::<Vec<u32>>();
                let mut out = vec![
                    words_le(&pack_along_cols(&unsigned(codes), *rows, *cols, *bits)),
                    scales.iter().flat_map(|s| s.to_bits().to_le_bytes()).collect(),
                ];
                if let Some(z) = zeros {
                    let groups = z.len() / (*rows).max(1);
                    out.push(words_le(&pack_along_rows(&unsigned(z), *rows, groups, *bits)));
                }
                out.push([*rows as i64, *cols as i64].iter().flat_map(|v| v.to_le_bytes()).collect());
                Ok(out)
            }
            other => Err(Error::ExportTensor {
                target: TARGET,
                tensor: pt.name.clone(),
                problem: format!("codec produced a {} tensor, which this target does not pack", other.variant()),
            }),
        }
    }
}
