//! Readers for the safetensors-based packed exports (compressed-tensors and GPTQ v1): unpack each
//! quantized layer back into the registry's [`QTensor`] so the reference codec dequantizes it —
//! `dequantize(read(write(q))) == Format::dequantize(q)` is what the round-trip tests check.
//! Every length and value read from the files is checked; errors name the file and the tensor.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use half::f16;
use pareto_formats::{Format, QTensor};
use serde_json::Value;

use super::gptq;
use super::pack::{le_words, transpose, unpack_along_cols, unpack_along_rows};
use crate::error::{Error, Result};
use crate::store::{DType, Model, TensorInfo};

/// One tensor as read back from an export.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadTensor {
    /// A quantized Linear weight, under its original `.weight` name.
    Quantized { name: String, format: &'static str, q: QTensor },
    /// A dense float tensor, widened to f32.
    Dense { name: String, dtype: DType, shape: Vec<usize>, values: Vec<f32> },
    /// A non-float buffer, bytes as stored.
    Raw { name: String, dtype: DType, shape: Vec<usize>, bytes: Vec<u8> },
}

impl ReadTensor {
    pub fn name(&self) -> &str {
        match self {
            ReadTensor::Quantized { name, .. } | ReadTensor::Dense { name, .. } | ReadTensor::Raw { name, .. } => name,
        }
    }

    /// The values as f32: the reference codec for quantized weights.
    pub fn dequantize(&self) -> Result<Vec<f32>> {
        match self {
            ReadTensor::Quantized { name, format, q } => {
                pareto_formats::lookup(format)?.dequantize(q).map_err(|e| Error::Format(e).for_tensor(name))
            }
            ReadTensor::Dense { values, .. } => Ok(values.clone()),
            ReadTensor::Raw { name, dtype, .. } => Err(Error::NotAFloatTensor { tensor: name.clone(), dtype: *dtype }),
        }
    }
}

struct Ctx<'a> {
    model: &'a Model,
    path: PathBuf,
    format: &'static str,
}

impl Ctx<'_> {
    fn bad(&self, problem: impl Into<String>) -> Error {
        Error::ArtifactInvalid { path: self.path.clone(), format: self.format, problem: problem.into() }
    }

    fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.model.tensor(name).map_err(|_| self.bad(format!("tensor `{name}` is missing")))
    }

    fn expect(&self, t: &TensorInfo, dtype: DType, shape: &[usize]) -> Result<()> {
        if t.dtype != dtype || t.shape != shape {
            return Err(
                self.bad(format!("tensor `{}` is {} {:?}, expected {} {:?}", t.name, t.dtype, t.shape, dtype, shape))
            );
        }
        Ok(())
    }

    fn words(&self, t: &TensorInfo) -> Result<Vec<u32>> {
        let raw = self.model.raw_bytes(t)?;
        le_words(raw).ok_or_else(|| self.bad(format!("`{}`: {} bytes is not whole 32-bit words", t.name, raw.len())))
    }

    fn f16s(&self, t: &TensorInfo) -> Result<Vec<f16>> {
        let raw = self.model.raw_bytes(t)?;
        Ok(raw.chunks_exact(2).map(|c| f16::from_bits(u16::from_le_bytes([c[0], c[1]]))).collect())
    }

    fn quant_config(&self) -> Result<&Value> {
        self.model
            .config()
            .and_then(|c| c.raw.get("quantization_config"))
            .ok_or_else(|| self.bad("config.json has no quantization_config"))
    }

    fn plain(&self, t: &TensorInfo) -> Result<ReadTensor> {
        if t.dtype.is_float() {
            Ok(ReadTensor::Dense {
                name: t.name.clone(),
                dtype: t.dtype,
                shape: t.shape.clone(),
                values: self.model.read_f32(t)?,
            })
        } else {
            Ok(ReadTensor::Raw {
                name: t.name.clone(),
                dtype: t.dtype,
                shape: t.shape.clone(),
                bytes: self.model.raw_bytes(t)?.to_vec(),
            })
        }
    }
}

/// Signed codes from unsigned stored values minus `offset`, refusing values outside `bits`.
fn signed(v: &[u32], offset: i32) -> Vec<i8> {
    v.iter().map(|&u| (u as i32 - offset) as i8).collect()
}

/// The registry format a compressed-tensors `weights` args object describes.
fn ct_format_id(args: &Value) -> Option<String> {
    let bits = args.get("num_bits")?.as_u64()?;
    let kind = args.get("type")?.as_str()?;
    let strategy = args.get("strategy")?.as_str()?;
    let sym = args.get("symmetric").and_then(Value::as_bool).unwrap_or(true);
    match (kind, bits, strategy) {
        ("float", 8, "channel") => Some("fp8_e4m3".into()),
        ("float", 8, "tensor") => Some("fp8_e4m3_tensor".into()),
        ("int", 8, "channel") if sym => Some("int8_channel".into()),
        ("int", 4, "group") => {
            let g = args.get("group_size")?.as_u64()?;
            Some(format!("int4_g{g}_{}", if sym { "sym" } else { "asym" }))
        }
        _ => None,
    }
}

fn target_matches(target: &str, module: &str) -> bool {
    if let Some(re) = target.strip_prefix("re:") {
        return regex::Regex::new(re).is_ok_and(|r| r.is_match(module));
    }
    // Plain names match exactly; class names (`Linear`) match every quantized layer.
    target == module || !target.contains('.')
}

/// Reads a compressed-tensors export folder written by Pareto (or any `pack-quantized` /
/// `float-quantized` checkpoint with the formats Pareto supports).
pub fn read_compressed_tensors(dir: &Path) -> Result<Vec<ReadTensor>> {
    let model = Model::open(dir)?;
    let cx = Ctx { model: &model, path: dir.to_path_buf(), format: "compressed-tensors" };
    let qc = cx.quant_config()?;
    let mut groups: Vec<(Vec<String>, &'static Format)> = Vec::new();
    for (gname, g) in qc.get("config_groups").and_then(Value::as_object).ok_or_else(|| cx.bad("no config_groups"))? {
        let args = g.get("weights").ok_or_else(|| cx.bad(format!("group {gname} has no weights args")))?;
        let id = ct_format_id(args).ok_or_else(|| cx.bad(format!("group {gname}: unsupported weights args {args}")))?;
        let fmt = pareto_formats::lookup(&id)?;
        let targets = g
            .get("targets")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default();
        groups.push((targets, fmt));
    }
    let format_of = |module: &str| -> Result<&'static Format> {
        groups
            .iter()
            .find(|(targets, _)| targets.iter().any(|t| target_matches(t, module)))
            .map(|(_, f)| *f)
            .ok_or_else(|| cx.bad(format!("layer {module} matches no config group")))
    };
    let mut out = Vec::new();
    let mut consumed = std::collections::BTreeSet::new();
    for t in model.tensors() {
        if let Some(m) = t.name.strip_suffix(".weight_packed") {
            let fmt = format_of(m)?;
            let shape_t = cx.tensor(&format!("{m}.weight_shape"))?;
            let dims: Vec<i64> = model
                .raw_bytes(shape_t)?
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect();
            let (rows, cols) = match dims.as_slice() {
                [r, c] if *r > 0 && *c > 0 => (*r as usize, *c as usize),
                _ => return Err(cx.bad(format!("{m}.weight_shape holds {dims:?}, expected [out, in]"))),
            };
            let bits: u8 = if fmt.id == "int8_channel" { 8 } else { 4 };
            let group = if fmt.block == pareto_formats::PER_ROW { cols } else { fmt.block };
            if !cols.is_multiple_of(group) {
                return Err(cx.bad(format!("{m}: {cols} inputs not a multiple of group {group}")));
            }
            let groups_n = cols / group;
            let offset = 1i32 << (bits - 1);
            cx.expect(t, DType::I32, &[rows, cols.div_ceil(32 / usize::from(bits))])?;
            let codes = unpack_along_cols(&cx.words(t)?, rows, cols, bits)
                .ok_or_else(|| cx.bad(format!("{}: short", t.name)))?;
            let st = cx.tensor(&format!("{m}.weight_scale"))?;
            cx.expect(st, DType::F16, &[rows, groups_n])?;
            let zeros = if fmt.id.ends_with("_asym") {
                let zt = cx.tensor(&format!("{m}.weight_zero_point"))?;
                cx.expect(zt, DType::I32, &[rows.div_ceil(32 / usize::from(bits)), groups_n])?;
                let z = unpack_along_rows(&cx.words(zt)?, rows, groups_n, bits)
                    .ok_or_else(|| cx.bad(format!("{}: short", zt.name)))?;
                consumed.insert(zt.name.clone());
                Some(signed(&z, offset))
            } else {
                None
            };
            let q =
                QTensor::Int { rows, cols, bits, group, codes: signed(&codes, offset), scales: cx.f16s(st)?, zeros };
            consumed.extend([st.name.clone(), shape_t.name.clone()]);
            out.push(ReadTensor::Quantized { name: format!("{m}.weight"), format: fmt.id, q });
        } else if t.dtype == DType::F8E4M3 && t.name.ends_with(".weight") {
            let m = t.name.trim_end_matches(".weight");
            let fmt = format_of(m)?;
            let [rows, cols] = t.shape[..] else { return Err(cx.bad(format!("{}: not 2-D", t.name))) };
            let st = cx.tensor(&format!("{m}.weight_scale"))?;
            let scale_shape = if fmt.id == "fp8_e4m3_tensor" { vec![1] } else { vec![rows, 1] };
            cx.expect(st, DType::F32, &scale_shape)?;
            let scales = model.read_f32(st)?;
            consumed.insert(st.name.clone());
            let codes = model.raw_bytes(t)?.to_vec();
            out.push(ReadTensor::Quantized {
                name: t.name.clone(),
                format: fmt.id,
                q: QTensor::Fp8E4m3 { rows, cols, codes, scales },
            });
        }
    }
    for t in model.tensors() {
        if !consumed.contains(&t.name) && !t.name.ends_with(".weight_packed") && !out.iter().any(|r| r.name() == t.name)
        {
            out.push(cx.plain(t)?);
        }
    }
    Ok(out)
}

/// Reads a GPTQ v1 export folder (`quantize_config.json` or config.json's quantization_config).
pub fn read_gptq(dir: &Path) -> Result<Vec<ReadTensor>> {
    let model = Model::open(dir)?;
    let cx = Ctx { model: &model, path: dir.to_path_buf(), format: "GPTQ" };
    let qc = cx.quant_config()?;
    if qc.get("desc_act").and_then(Value::as_bool).unwrap_or(false) {
        return Err(cx.bad("desc_act (act-order) checkpoints are not supported"));
    }
    let loaded = gptq::LoadedConfig::parse(qc).map_err(|e| cx.bad(e))?;
    let mut out = Vec::new();
    let mut consumed = std::collections::BTreeSet::new();
    for t in model.tensors() {
        let Some(m) = t.name.strip_suffix(".qweight") else { continue };
        let fmt = loaded
            .module_format(m)
            .map_err(|e| cx.bad(e))?
            .ok_or_else(|| cx.bad(format!("{m}: packed, but a dynamic rule keeps it unquantized")))?;
        let gptq::Params { bits, group, sym } =
            gptq::params(fmt).ok_or_else(|| cx.bad(format!("{m}: {} is not GPTQ", fmt.id)))?;
        let pw = 32 / usize::from(bits);
        let offset = 1i32 << (bits - 1);
        let [packed_in, rows] = t.shape[..] else { return Err(cx.bad(format!("{}: not 2-D", t.name))) };
        let cols = packed_in * pw;
        let group_len = if group < 0 { cols } else { group as usize };
        if group_len == 0 || !cols.is_multiple_of(group_len) {
            return Err(cx.bad(format!("{m}: {cols} inputs not a multiple of group {group_len}")));
        }
        let groups = cols / group_len;
        cx.expect(t, DType::I32, &[packed_in, rows])?;
        let qz = cx.tensor(&format!("{m}.qzeros"))?;
        cx.expect(qz, DType::I32, &[groups, rows.div_ceil(pw)])?;
        let sc = cx.tensor(&format!("{m}.scales"))?;
        cx.expect(sc, DType::F16, &[groups, rows])?;
        let gi = cx.tensor(&format!("{m}.g_idx"))?;
        cx.expect(gi, DType::I32, &[cols])?;
        let g_idx = cx.words(gi)?;
        if let Some((i, g)) = g_idx.iter().enumerate().find(|(i, g)| **g as usize != i / group_len) {
            return Err(cx.bad(format!(
                "{m}.g_idx[{i}] = {g}, expected {} (only sequential groups are supported)",
                i / group_len
            )));
        }
        let codes_t =
            unpack_along_rows(&cx.words(t)?, cols, rows, bits).ok_or_else(|| cx.bad(format!("{}: short", t.name)))?;
        let codes = signed(&transpose(&codes_t, cols, rows), offset);
        // Loaders add one to each stored zero point (v1 convention).
        let z_stored = unpack_along_cols(&cx.words(qz)?, groups, rows, bits)
            .ok_or_else(|| cx.bad(format!("{}: short", qz.name)))?;
        let z: Vec<i32> = transpose(&z_stored, groups, rows).iter().map(|&v| v as i32 + 1 - offset).collect();
        let zeros = if sym {
            if let Some(bad) = z.iter().find(|&&v| v != 0) {
                return Err(cx.bad(format!("{m}: symmetric checkpoint with zero point {}", bad + offset)));
            }
            None
        } else {
            Some(z.iter().map(|&v| v as i8).collect())
        };
        let scales = transpose(&cx.f16s(sc)?, groups, rows);
        consumed.extend([qz.name.clone(), sc.name.clone(), gi.name.clone(), t.name.clone()]);
        out.push(ReadTensor::Quantized {
            name: format!("{m}.weight"),
            format: fmt.id,
            q: QTensor::Int { rows, cols, bits, group: group_len, codes, scales, zeros },
        });
    }
    for t in model.tensors() {
        if !consumed.contains(&t.name) {
            out.push(cx.plain(t)?);
        }
    }
    Ok(out)
}

/// Read-back tensors by name.
pub fn by_name(tensors: Vec<ReadTensor>) -> BTreeMap<String, ReadTensor> {
    tensors.into_iter().map(|t| (t.name().to_string(), t)).collect()
}
