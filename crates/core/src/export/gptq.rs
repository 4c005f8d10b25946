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

use std::collections::BTreeMap;

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

/// The registry formats GPTQ stores and where, for messages.
pub fn supported() -> String {
    let ids: Vec<&str> = pareto_formats::registry().iter().filter(|f| params(f).is_some()).map(|f| f.id).collect();
    format!(
        "{} for the Linear layers of the decoder blocks and lm_head; q/k/v and gate/up share one format (vLLM fuses them)",
        ids.join(", ")
    )
}

/// How GPTQ describes a format: bits, group size (−1 = one group per row), symmetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub bits: u8,
    pub group: i64,
    pub sym: bool,
}

/// The GPTQ parameters of a GPTQ-storable format.
pub fn params(fmt: &Format) -> Option<Params> {
    if fmt.kind != Kind::IntGrid {
        return None;
    }
    let sym = !fmt.id.ends_with("_asym");
    if fmt.id == "int8_channel" {
        return Some(Params { bits: 8, group: -1, sym });
    }
    (fmt.block != PER_ROW).then_some(Params { bits: 4, group: fmt.block as i64, sym })
}

/// The registry format of GPTQ parameters (the inverse of [`params`]).
pub fn format_of(p: Params) -> Option<&'static Format> {
    let id = match (p.bits, p.group, p.sym) {
        (8, -1, true) => "int8_channel".to_string(),
        (4, g, s) if g > 0 => format!("int4_g{g}_{}", if s { "sym" } else { "asym" }),
        _ => return None,
    };
    pareto_formats::lookup(&id).ok().filter(|f| params(f) == Some(p))
}

/// What a GPTQ export declares: the base format (the one holding most weights) and, for modules
/// that differ from it, GPTQModel's `dynamic` rules, which vLLM also applies
/// (vllm/model_executor/layers/quantization/utils/gptq_utils.py `get_dynamic_override`: the first
/// rule whose regex `re.match`es the module name wins; `-:` keeps the module dense, `+:` overrides
/// bits / group_size / sym). Loaders without `dynamic` support (AutoGPTQ, optimum) only read
/// uniform exports, which carry no rules.
#[derive(Debug)]
pub struct GptqLayout {
    pub base: &'static Format,
    pub dynamic: serde_json::Map<String, Value>,
    pub lm_head: bool,
}

/// vLLM loads q/k/v as one `qkv_proj` and gate/up as one `gate_up_proj` layer: a rule must name
/// the fused module as well, and the members must agree.
fn fusion_group(module: &str) -> (String, &'static [&'static str]) {
    const QKV: &[&str] = &["q_proj", "k_proj", "v_proj", "qkv_proj"];
    const GATE_UP: &[&str] = &["gate_proj", "up_proj", "gate_up_proj"];
    let (parent, leaf) = module.rsplit_once('.').unwrap_or(("", module));
    match leaf {
        "q_proj" | "k_proj" | "v_proj" => (format!("{parent}.qkv"), QKV),
        "gate_proj" | "up_proj" => (format!("{parent}.gate_up"), GATE_UP),
        _ => (module.to_string(), &[]),
    }
}

/// The rule pattern for a module (and its fused siblings).
fn pattern(module: &str, fused: &[&str]) -> String {
    if fused.is_empty() {
        return format!("^{}$", regex::escape(module));
    }
    let parent = module.rsplit_once('.').map_or("", |(p, _)| p);
    format!("^{}\\.(?:{})$", regex::escape(parent), fused.join("|"))
}

/// Both dimensions must fill whole int32 words: `qweight` packs the inputs, `qzeros` the outputs.
fn packable(pt: &PlannedTensor, bits: u8) -> Result<()> {
    let (rows, cols) = rows_cols(&pt.shape);
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
    Ok(())
}

/// The per-format settings of a config or `dynamic` rule.
fn settings(fmt: &Format) -> serde_json::Map<String, Value> {
    let p = params(fmt).unwrap_or(Params { bits: 4, group: -1, sym: true });
    let mut m = serde_json::Map::new();
    m.insert("bits".into(), p.bits.into());
    m.insert("group_size".into(), p.group.into());
    m.insert("sym".into(), p.sym.into());
    m.insert("desc_act".into(), false.into());
    m
}

/// Checks what GPTQ can express and lays out its config: every quantized tensor a block Linear or
/// lm_head in a GPTQ-storable format, fused groups in one format.
pub fn check(plan: &Plan) -> Result<GptqLayout> {
    let unsupported = |pt: &PlannedTensor, format: String| Error::ExportFormatUnsupported {
        target: TARGET,
        tensor: pt.name.clone(),
        format,
        supported: supported(),
    };
    // fusion group → (its first module, the fused names, its format)
    let mut groups: BTreeMap<String, (String, &'static [&'static str], Option<&'static Format>)> = BTreeMap::new();
    let mut by_params: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut lm_head = None;
    for pt in plan.tensors.iter().filter(|p| !p.action.drop) {
        let fmt = match pt.action.format {
            Some(id) => {
                let f = pareto_formats::lookup(id)?;
                if cast_dtype(f).is_some() { None } else { Some(f) }
            }
            None => None,
        };
        if let Some(f) = fmt {
            let p = params(f).ok_or_else(|| unsupported(pt, f.id.to_string()))?;
            packable(pt, p.bits)?;
            *by_params.entry(f.id).or_default() += pt.params;
        }
        let linear = pt.layer.is_some() && pt.shape.len() == 2 && pt.name.ends_with(".weight");
        if pt.name == "lm_head.weight" {
            lm_head = fmt;
            continue;
        }
        if !linear {
            if let Some(f) = fmt {
                return Err(unsupported(pt, format!("{} (outside the decoder blocks; GPTQ keeps it dense)", f.id)));
            }
            continue;
        }
        let module = module_of(&pt.name);
        let (key, fused) = fusion_group(module);
        match groups.get(&key) {
            Some((first, _, other)) if other.map(|f| f.id) != fmt.map(|f| f.id) => {
                let name = |f: Option<&Format>| f.map_or("no quantization", |f| f.id).to_string();
                return Err(unsupported(
                    pt,
                    format!("{} while {first} has {} (vLLM fuses them into one layer)", name(fmt), name(*other)),
                ));
            }
            Some(_) => {}
            None => {
                groups.insert(key, (module.to_string(), fused, fmt));
            }
        }
    }
    let base = by_params
        .iter()
        .max_by_key(|(id, n)| (**n, std::cmp::Reverse(**id)))
        .and_then(|(id, _)| pareto_formats::lookup(id).ok())
        .ok_or(Error::ExportConfig { target: TARGET, problem: "the recipe quantizes no Linear layer".into() })?;
    let mut dynamic = serde_json::Map::new();
    for (module, fused, fmt) in groups.values() {
        match fmt {
            Some(f) if f.id == base.id => {}
            Some(f) => {
                dynamic.insert(format!("+:{}", pattern(module, fused)), Value::Object(settings(f)));
            }
            None => {
                dynamic.insert(format!("-:{}", pattern(module, fused)), json!({}));
            }
        }
    }
    if let Some(f) = lm_head.filter(|f| f.id != base.id) {
        dynamic.insert(format!("+:{}", pattern("lm_head", &[])), Value::Object(settings(f)));
    }
    Ok(GptqLayout { base, dynamic, lm_head: lm_head.is_some() })
}

/// `quantize_config.json`, also embedded as config.json's `quantization_config`.
pub fn quantize_config(layout: &GptqLayout) -> Value {
    let mut qc = settings(layout.base);
    let fixed = [
        ("damp_percent", json!(0.01)),
        ("static_groups", json!(false)),
        ("true_sequential", json!(true)),
        ("model_name_or_path", Value::Null),
        ("model_file_base_name", json!("model")),
        ("quant_method", json!("gptq")),
        ("checkpoint_format", json!("gptq")),
        ("lm_head", json!(layout.lm_head)),
    ];
    qc.extend(fixed.into_iter().map(|(k, v)| (k.to_string(), v)));
    if !layout.dynamic.is_empty() {
        qc.insert("dynamic".into(), Value::Object(layout.dynamic.clone()));
    }
    Value::Object(qc)
}

/// A GPTQ `quantization_config` as loaders apply it: the base parameters, then the first
/// `dynamic` rule that matches a module (regexes compiled once, not per module).
pub struct LoadedConfig {
    base: Params,
    /// `(keeps the module dense, pattern anchored as re.match, overrides)`.
    rules: Vec<(bool, regex::Regex, Value)>,
}

impl LoadedConfig {
    pub fn parse(qc: &Value) -> std::result::Result<Self, String> {
        let bits = qc.get("bits").and_then(Value::as_u64).ok_or("quantization_config.bits missing")?;
        let group = qc.get("group_size").and_then(Value::as_i64).ok_or("group_size missing")?;
        let sym = qc.get("sym").and_then(Value::as_bool).unwrap_or(true);
        let bits = u8::try_from(bits).map_err(|_| format!("bits {bits}"))?;
        let base = Params { bits, group, sym };
        format_of(base).ok_or_else(|| format!("bits {bits}, group_size {group}, sym {sym} has no registry format"))?;
        let mut rules = Vec::new();
        for (key, over) in qc.get("dynamic").and_then(Value::as_object).into_iter().flatten() {
            let (skip, re) = match key.strip_prefix("-:") {
                Some(re) => (true, re),
                None => (false, key.strip_prefix("+:").unwrap_or(key)),
            };
            let re = regex::Regex::new(&format!("^(?:{re})")).map_err(|e| format!("dynamic rule {key:?}: {e}"))?;
            rules.push((skip, re, over.clone()));
        }
        Ok(Self { base, rules })
    }

    /// The format loaders give `module`; `Ok(None)` when a `-:` rule keeps it dense.
    pub fn module_format(&self, module: &str) -> std::result::Result<Option<&'static Format>, String> {
        let mut p = self.base;
        if let Some((skip, _, over)) = self.rules.iter().find(|(_, re, _)| re.is_match(module)) {
            if *skip {
                return Ok(None);
            }
            let bits = over.get("bits").and_then(Value::as_u64).map_or(Ok(p.bits), u8::try_from);
            p.bits = bits.map_err(|_| format!("{module}: bits out of range"))?;
            p.group = over.get("group_size").and_then(Value::as_i64).unwrap_or(p.group);
            p.sym = over.get("sym").and_then(Value::as_bool).unwrap_or(p.sym);
        }
        format_of(p).map(Some).ok_or_else(|| {
            format!("{module}: bits {}, group_size {}, sym {} has no registry format", p.bits, p.group, p.sym)
        })
    }
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
        let Some(Params { bits, .. }) = params(fmt) else {
            return Err(Error::ExportFormatUnsupported {
                target: TARGET,
                tensor: pt.name.clone(),
                format: fmt.id.to_string(),
                supported: supported(),
            });
        };
        packable(pt, bits)?;
        let pw = per_word(bits);
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
