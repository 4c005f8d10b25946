//! GPTQ v1 checkpoints (AutoGPTQ / GPTQModel `checkpoint_format: "gptq"`), loadable by
//! transformers/optimum, vLLM and TGI.
//!
//! Followed: AutoGPTQ auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py (`QuantLinear` buffers and
//! `pack`: `qweight` I32 `[in·b/32, out]` packed along the input dim, `qzeros` I32
//! `[groups, out·b/32]` packed along the output dim storing `zero − 1`, `scales` F16
//! `[groups, out]`, `g_idx` I32 `[in]` = i // group_size) and auto_gptq/quantization/config.py
//! (`quantize_config.json`). Codes are unsigned: q = signed code + 2^(b−1), so a symmetric 4-bit
//! layer's `qzeros` words are all 0x77777777. GPTQModel notes (gptqmodel/utils/model.py) that an
//! asymmetric zero point of 0 underflows in v1; this writer refuses it instead of storing a value
//! loaders would misread.

use pareto_formats::{Format, Kind, PER_ROW, QTensor};
use serde_json::{Value, json};

use super::pack::{pack_along_cols, pack_along_rows, per_word, transpose, words_le};
use super::packed::{Scheme, cast_dtype};
use super::safetensors::Entry;
use crate::error::{Error, Result};
use crate::recipe::resolve::rows_cols;
use crate::recipe::{Plan, PlannedTensor};
use crate::store::DType;

pub const TARGET: &str = "GPTQ";
pub const SUPPORTED: &str = "int4_g32/g64/g128 _sym and _asym and int8_channel (8-bit, group_size -1), \
    one format for every Linear layer of the decoder blocks";

/// Bits and group size (−1 = one group per row) of a GPTQ-storable format.
pub fn bits_group(fmt: &Format) -> Option<(u8, i64)> {
    if fmt.kind != Kind::IntGrid {
        return None;
    }
    if fmt.id == "int8_channel" {
        return Some((8, -1));
    }
    (fmt.block != PER_ROW).then_some((4, fmt.block as i64))
}

/// The single GPTQ format of the plan, after checking that every decoder-block Linear weight uses
/// it and nothing outside the blocks is quantized.
pub fn check(plan: &Plan) -> Result<&'static Format> {
    let mut chosen: Option<&'static Format> = None;
    let unsupported = |pt: &PlannedTensor, format: String| Error::ExportFormatUnsupported {
        target: TARGET,
        tensor: pt.name.clone(),
        format,
        supported: SUPPORTED,
    };
    for pt in plan.tensors.iter().filter(|p| !p.action.drop) {
        let fmt = match pt.action.format {
            Some(id) => {
                let f = pareto_formats::lookup(id)?;
                if cast_dtype(f).is_some() { None } else { Some(f) }
            }
            None => None,
        };
        let linear = pt.layer.is_some() && pt.shape.len() == 2 && pt.name.ends_with(".weight");
        match (fmt, linear) {
            (Some(f), true) => {
                if bits_group(f).is_none() {
                    return Err(unsupported(pt, f.id.to_string()));
                }
                match chosen {
                    Some(c) if c.id != f.id => {
                        return Err(unsupported(pt, format!("{} (the other layers use {})", f.id, c.id)));
                    }
                    _ => chosen = Some(f),
                }
            }
            (Some(f), false) => {
                return Err(unsupported(pt, format!("{} (outside the decoder blocks; GPTQ keeps it dense)", f.id)));
            }
            (None, true) => {
                return Err(unsupported(pt, "no quantization (GPTQ loaders quantize every block Linear)".into()));
            }
            (None, false) => {}
        }
    }
    chosen.ok_or(Error::ExportConfig { target: TARGET, problem: "the recipe quantizes no Linear layer".into() })
}

/// `quantize_config.json`, also embedded as config.json's `quantization_config`.
pub fn quantize_config(fmt: &Format) -> Value {
    let (bits, group) = bits_group(fmt).unwrap_or((4, -1));
    json!({
        "bits": bits, "group_size": group, "damp_percent": 0.01, "desc_act": false, "static_groups": false,
        "sym": !fmt.id.ends_with("_asym"), "true_sequential": true, "model_name_or_path": null,
        "model_file_base_name": "model", "quant_method": "gptq", "checkpoint_format": "gptq"
    })
}

pub(crate) struct Gptq;

fn module_of(name: &str) -> &str {
    name.strip_suffix(".weight").unwrap_or(name)
}

impl Scheme for Gptq {
    fn target(&self) -> &'static str {
        TARGET
    }

    fn entries(&self, pt: &PlannedTensor, fmt: &'static Format) -> Result<Vec<Entry>> {
        let (rows, cols) = rows_cols(&pt.shape);
        let Some((bits, _)) = bits_group(fmt) else {
            return Err(Error::ExportFormatUnsupported {
                target: TARGET,
                tensor: pt.name.clone(),
                format: fmt.id.to_string(),
                supported: SUPPORTED,
            });
        };
        let pw = per_word(bits);
        for (dim, what) in [(cols, "input features"), (rows, "output features")] {
            if !dim.is_multiple_of(pw) {
                return Err(Error::ExportTensor {
                    target: TARGET,
                    tensor: pt.name.clone(),
                    problem: format!("{dim} {what} is not a multiple of {pw}, which {bits}-bit int32 packing needs"),
                });
            }
        }
        let groups = if fmt.block == PER_ROW { 1 } else { cols / fmt.block };
        let m = module_of(&pt.name);
        let e = |suffix: &str, dtype, shape: Vec<usize>| Entry { name: format!("{m}.{suffix}"), dtype, shape };
        Ok(vec![
            e("qweight", DType::I32, vec![cols / pw, rows]),
            e("qzeros", DType::I32, vec![groups, rows / pw]),
            e("scales", DType::F16, vec![groups, rows]),
            e("g_idx", DType::I32, vec![cols]),
        ])
    }

    fn encode(&self, pt: &PlannedTensor, q: &QTensor) -> Result<Vec<Vec<u8>>> {
        let QTensor::Int { rows, cols, bits, group, codes, scales, zeros } = q else {
            return Err(Error::ExportTensor {
                target: TARGET,
                tensor: pt.name.clone(),
                problem: format!("codec produced a {} tensor, not integer codes", q.variant()),
            });
        };
        let (rows, cols, bits) = (*rows, *cols, *bits);
        let offset = 1i32 << (bits - 1);
        let groups = scales.len() / rows.max(1);
        let group_len = if *group == 0 { cols } else { *group };
        // Codes as unsigned [in, out], packed along the input dim.
        let unsigned: Vec<u32> = codes.iter().map(|&c| (i32::from(c) + offset) as u32).collect();
        let qweight = pack_along_rows(&transpose(&unsigned, rows, cols), cols, rows, bits);
        // Zero points as unsigned [groups, out], stored minus one, packed along the output dim.
        let mut stored = Vec::with_capacity(groups * rows);
        for g in 0..groups {
            for r in 0..rows {
                let z = offset + zeros.as_ref().and_then(|z| z.get(r * groups + g)).map_or(0, |&z| i32::from(z));
                if z == 0 {
                    return Err(Error::ExportTensor {
                        target: TARGET,
                        tensor: pt.name.clone(),
                        problem: format!(
                            "row {r}, group {g}: zero point 0 cannot be stored in GPTQ v1 (it stores zero − 1 \
                             unsigned); use a symmetric format or --format compressed-tensors"
                        ),
                    });
                }
                stored.push((z - 1) as u32);
            }
        }
        let qzeros = pack_along_cols(&stored, groups, rows, bits);
        let scales_t = transpose(scales, rows, groups);
        let g_idx: Vec<u8> = (0..cols).flat_map(|i| ((i / group_len) as i32).to_le_bytes()).collect();
        Ok(vec![
            words_le(&qweight),
            words_le(&qzeros),
            scales_t.iter().flat_map(|s| s.to_bits().to_le_bytes()).collect(),
            g_idx,
        ])
    }
}
