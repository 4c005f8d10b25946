//! `config.json`: the architecture family and the dimensions recipes, projections and evaluation
//! need, plus a check that the config agrees with the tensor shapes actually stored (a config
//! that lies about shapes would make every later step compute nonsense).

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::tensor::TensorInfo;
use crate::error::{Error, Result};

/// Model family, from `model_type` (preferred) or the first entry of `architectures`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Architecture {
    Llama,
    Mistral,
    Qwen2,
    /// Qwen2's layout without Q/K/V biases, with RMSNorm on each head's queries and keys.
    Qwen3,
    /// LLaMA's layout with q/k/v fused into `qkv_proj` (rows q, k, v) and gate/up into
    /// `gate_up_proj` (gate rows first).
    Phi3,
    /// LLaMA's projections with Gemma 2's sandwich norms (1 + w), GeGLU, a scaled embedding and
    /// soft-capped attention and output logits.
    Gemma2,
    Bert,
    /// Anything else, named as the config names it.
    Unknown(String),
}

impl Architecture {
    /// Decoders with the LLaMA layout (RMSNorm, rotary, q/k/v/o + gate/up/down projections).
    pub fn is_llama_style(&self) -> bool {
        matches!(
            self,
            Architecture::Llama
                | Architecture::Mistral
                | Architecture::Qwen2
                | Architecture::Qwen3
                | Architecture::Phi3
                | Architecture::Gemma2
        )
    }

    /// Whether a structured cut (FFN channels, KV heads, layers) is built for this layout: not for
    /// fused projections (rows inside one tensor, Phi-3) nor Gemma 2 (its extra norms).
    pub fn supports_structured(&self) -> bool {
        self.is_llama_style() && !matches!(self, Architecture::Phi3 | Architecture::Gemma2)
    }

    pub fn name(&self) -> &str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Mistral => "mistral",
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
            Architecture::Phi3 => "phi3",
            Architecture::Gemma2 => "gemma2",
            Architecture::Bert => "bert",
            Architecture::Unknown(s) => s,
        }
    }

    fn from_model_type(model_type: &str) -> Option<Architecture> {
        match model_type {
            "llama" => Some(Architecture::Llama),
            "mistral" => Some(Architecture::Mistral),
            "qwen2" => Some(Architecture::Qwen2),
            "qwen3" => Some(Architecture::Qwen3),
            "phi3" => Some(Architecture::Phi3),
            "gemma2" => Some(Architecture::Gemma2),
            "bert" => Some(Architecture::Bert),
            _ => None,
        }
    }

    fn from_class_name(class: &str) -> Option<Architecture> {
        [
            ("LlamaFor", Architecture::Llama),
            ("MistralFor", Architecture::Mistral),
            ("Qwen2For", Architecture::Qwen2),
            ("Qwen3For", Architecture::Qwen3),
            ("Phi3For", Architecture::Phi3),
            ("Gemma2For", Architecture::Gemma2),
            ("Bert", Architecture::Bert),
        ]
        .into_iter()
        .find(|(prefix, _)| class.starts_with(prefix))
        .map(|(_, arch)| arch)
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Architecture {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The parts of `config.json` the engine uses; `raw` keeps the whole document so exporters and
/// structured pruning can edit and rewrite it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub model_type: String,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    /// Equals `num_heads` when the config does not use grouped-query attention.
    pub num_kv_heads: usize,
    /// `head_dim` when given, else `hidden_size / num_heads`.
    pub head_dim: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: Option<usize>,
    pub rms_norm_eps: Option<f64>,
    pub layer_norm_eps: Option<f64>,
    pub rope_theta: Option<f64>,
    pub tie_word_embeddings: bool,
    pub torch_dtype: Option<String>,
    pub raw: Value,
}

impl ModelConfig {
    /// Interprets a parsed `config.json` (`path` is for messages). Core dimensions are required for
    /// every family: without them nothing downstream can size or evaluate the model.
    pub fn from_json(path: &Path, raw: Value) -> Result<ModelConfig> {
        let invalid = |problem: String| Error::ConfigInvalid { path: path.to_path_buf(), problem };
        if !raw.is_object() {
            return Err(invalid("expected a JSON object".to_string()));
        }
        let fields = Fields { raw: &raw, path };

        let model_type = fields.string(&["model_type"])?.unwrap_or_default();
        let class = raw
            .get("architectures")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let architecture = Architecture::from_model_type(&model_type)
            .or_else(|| Architecture::from_class_name(&class))
            .unwrap_or_else(|| Architecture::Unknown(if model_type.is_empty() { class } else { model_type.clone() }));

        let hidden_size = fields.required(&["hidden_size", "n_embd", "d_model", "dim"])?;
        let num_layers = fields.required(&["num_hidden_layers", "n_layer", "num_layers", "n_layers"])?;
        let num_heads = fields.required(&["num_attention_heads", "n_head", "num_heads", "n_heads"])?;
        let num_kv_heads = fields.usize(&["num_key_value_heads", "n_kv_heads", "num_kv_heads"])?.unwrap_or(num_heads);
        let intermediate_size = fields.required(&["intermediate_size", "n_inner", "ffn_dim", "d_ff", "hidden_dim"])?;
        let vocab_size = fields.required(&["vocab_size"])?;
        let max_position_embeddings = fields.usize(&["max_position_embeddings", "n_positions"])?;
        fields.dims_in_range(&[
            ("hidden_size", Some(hidden_size)),
            ("num_hidden_layers", Some(num_layers)),
            ("num_attention_heads", Some(num_heads)),
            ("num_key_value_heads", Some(num_kv_heads)),
            ("intermediate_size", Some(intermediate_size)),
            ("vocab_size", Some(vocab_size)),
            ("max_position_embeddings", max_position_embeddings),
            ("head_dim", fields.usize(&["head_dim"])?),
        ])?;
        // Epsilons are added to a variance: a non-positive one divides by zero or flips signs.
        let rms_norm_eps = fields.f64_in(&["rms_norm_eps"], |v| v > 0.0 && v < 1.0, "(0, 1)")?;
        let layer_norm_eps =
            fields.f64_in(&["layer_norm_eps", "layer_norm_epsilon"], |v| v > 0.0 && v < 1.0, "(0, 1)")?;
        // The RoPE base is raised to fractional powers and divided by: it must be > 1.
        let rope_theta = fields.f64_in(&["rope_theta"], |v| v > 1.0 && v <= 1e12, "(1, 1e12]")?;
        check_rope_scaling(&raw, path)?;
        let head_dim = match fields.usize(&["head_dim"])? {
            Some(d) => d,
            None if hidden_size % num_heads == 0 => hidden_size / num_heads,
            None => {
                return Err(invalid(format!(
                    "no head_dim, and hidden_size {hidden_size} is not a multiple of {num_heads} heads"
                )));
            }
        };
        if num_heads % num_kv_heads != 0 {
            return Err(invalid(format!("{num_heads} attention heads are not a multiple of {num_kv_heads} kv heads")));
        }
        // transformers' own defaults when the key is absent: LLaMA-family configs untie, the
        // base PretrainedConfig (BERT and the rest) ties.
        // transformers' defaults: tied for BERT and Gemma, untied for the LLaMA family.
        let tie_word_embeddings = fields
            .bool(&["tie_word_embeddings"])?
            .unwrap_or(!architecture.is_llama_style() || architecture == Architecture::Gemma2);

        Ok(ModelConfig {
            max_position_embeddings,
            rms_norm_eps,
            layer_norm_eps,
            rope_theta,
            torch_dtype: fields.string(&["torch_dtype", "dtype"])?,
            architecture,
            model_type,
            hidden_size,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            intermediate_size,
            vocab_size,
            tie_word_embeddings,
            raw,
        })
    }
}

/// Typed lookups over alternative key names; a present key of the wrong type is an error, a
/// null counts as absent.
struct Fields<'a> {
    raw: &'a Value,
    path: &'a Path,
}

impl Fields<'_> {
    fn find(&self, keys: &[&str]) -> Option<(String, &Value)> {
        keys.iter().find_map(|k| self.raw.get(*k).filter(|v| !v.is_null()).map(|v| (k.to_string(), v)))
    }

    fn wrong(&self, key: &str, want: &str, got: &Value) -> Error {
        Error::ConfigInvalid {
            path: self.path.to_path_buf(),
            problem: format!("`{key}` should be {want}, found {got}"),
        }
    }

    fn usize(&self, keys: &[&str]) -> Result<Option<usize>> {
        self.find(keys)
            .map(|(k, v)| {
                v.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| self.wrong(&k, "a non-negative integer", v))
            })
            .transpose()
    }

    fn required(&self, keys: &[&str]) -> Result<usize> {
        self.usize(keys)?.ok_or_else(|| Error::ConfigInvalid {
            path: self.path.to_path_buf(),
            problem: format!("missing `{}`", keys.join("` / `")),
        })
    }

    fn f64(&self, keys: &[&str]) -> Result<Option<f64>> {
        self.find(keys).map(|(k, v)| v.as_f64().ok_or_else(|| self.wrong(&k, "a number", v))).transpose()
    }

    /// A number that must be finite and pass `ok`; `range` says which values are allowed.
    fn f64_in(&self, keys: &[&str], ok: impl Fn(f64) -> bool, range: &str) -> Result<Option<f64>> {
        let Some(v) = self.f64(keys)? else { return Ok(None) };
        if v.is_finite() && ok(v) {
            return Ok(Some(v));
        }
        let key = self.find(keys).map(|(k, _)| k).unwrap_or_default();
        Err(out_of_range(self.path, &key, v, range))
    }

    /// Dimensions must be at least 1 and small enough that products of two of them fit in memory
    /// arithmetic (2^24 covers every published model: the largest vocabularies are ~2^18).
    fn dims_in_range(&self, dims: &[(&str, Option<usize>)]) -> Result<()> {
        for &(key, v) in dims {
            if let Some(v) = v.filter(|&v| v == 0 || v > MAX_DIM) {
                return Err(out_of_range(self.path, key, v as f64, &format!("1..={MAX_DIM}")));
            }
        }
        Ok(())
    }

    fn bool(&self, keys: &[&str]) -> Result<Option<bool>> {
        self.find(keys).map(|(k, v)| v.as_bool().ok_or_else(|| self.wrong(&k, "a boolean", v))).transpose()
    }

    fn string(&self, keys: &[&str]) -> Result<Option<String>> {
        self.find(keys)
            .map(|(k, v)| v.as_str().map(str::to_string).ok_or_else(|| self.wrong(&k, "a string", v)))
            .transpose()
    }
}

/// The largest dimension a config may state (see `Fields::dims_in_range`).
const MAX_DIM: usize = 1 << 24;

fn out_of_range(path: &Path, key: &str, value: f64, range: &str) -> Error {
    Error::ConfigInvalid {
        path: path.to_path_buf(),
        problem: format!("`{key}` = {value} is out of range: allowed {range}"),
    }
}

/// `rope_scaling` (or `rope_parameters`): every number a RoPE variant divides by or scales with
/// must be finite and positive, and Llama 3's two frequency factors must differ (its formula
/// divides by their difference).
fn check_rope_scaling(raw: &Value, path: &Path) -> Result<()> {
    let Some((name, params)) =
        ["rope_parameters", "rope_scaling"].iter().find_map(|k| raw.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v)))
    else {
        return Ok(());
    };
    let params = params.get("full_attention").unwrap_or(params);
    if !params.is_object() {
        return Err(Error::ConfigInvalid {
            path: path.to_path_buf(),
            problem: format!("`{name}` should be an object"),
        });
    }
    let positive = [
        "factor",
        "low_freq_factor",
        "high_freq_factor",
        "original_max_position_embeddings",
        "attention_factor",
        "attn_factor",
        "beta_fast",
        "beta_slow",
        "extrapolation_factor",
        "rope_theta",
    ];
    for key in positive {
        let Some(v) = params.get(key).filter(|v| !v.is_null()) else { continue };
        let ok = v.as_f64().filter(|x| x.is_finite() && *x > 0.0);
        if ok.is_none() {
            let shown = v.as_f64().unwrap_or(f64::NAN);
            return Err(out_of_range(path, &format!("{name}.{key}"), shown, "a finite number > 0"));
        }
    }
    let num = |k: &str| params.get(k).and_then(Value::as_f64);
    let kind = params.get("rope_type").or_else(|| params.get("type")).and_then(Value::as_str).unwrap_or("default");
    if kind.eq_ignore_ascii_case("llama3") {
        let (low, high) = (num("low_freq_factor").unwrap_or(1.0), num("high_freq_factor").unwrap_or(4.0));
        if high <= low {
            return Err(Error::ConfigInvalid {
                path: path.to_path_buf(),
                problem: format!(
                    "`{name}.high_freq_factor` = {high} must be greater than `{name}.low_freq_factor` = {low} (Llama 3 RoPE divides by their difference)"
                ),
            });
        }
    }
    Ok(())
}

/// Reads `dir/config.json` if present.
pub(crate) fn load(dir: &Path) -> Result<Option<ModelConfig>> {
    let path = dir.join("config.json");
    if !path.exists() {
        return Ok(None);
    }
    let bytes = crate::bounded::read(&path, crate::bounded::CONFIG_CAP, "config.json")?;
    let raw: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::ConfigInvalid { path: path.clone(), problem: format!("not valid JSON: {e}") })?;
    ModelConfig::from_json(&path, raw).map(Some)
}

/// Checks the config's dimensions against the stored shapes for families whose naming we know.
/// Only float tensors are compared: packed quantized exports store other shapes by design.
pub(crate) fn validate(config: &ModelConfig, tensors: &[TensorInfo]) -> Result<()> {
    let rules = if config.architecture.is_llama_style() {
        llama_rules(config)
    } else if config.architecture == Architecture::Bert {
        bert_rules(config)
    } else {
        return Ok(());
    };
    for t in tensors.iter().filter(|t| t.dtype.is_float()) {
        let rule = rules.iter().find(|r| matches_suffix(&t.name, r.suffix));
        if let Some(rule) = rule.filter(|r| r.shape != t.shape) {
            return Err(Error::ConfigShapeMismatch {
                tensor: t.name.clone(),
                rule: rule.fields.to_string(),
                expected: rule.shape.clone(),
                got: t.shape.clone(),
            });
        }
    }
    check_layer_count(config, tensors)
}

/// Tensors whose name ends in `suffix` must have `shape`, derived from the config `fields`.
struct Rule {
    suffix: &'static str,
    fields: &'static str,
    shape: Vec<usize>,
}

fn rule(suffix: &'static str, fields: &'static str, shape: Vec<usize>) -> Rule {
    Rule { suffix, fields, shape }
}

fn llama_rules(c: &ModelConfig) -> Vec<Rule> {
    let (h, v, i) = (c.hidden_size, c.vocab_size, c.intermediate_size);
    let q = c.num_heads.saturating_mul(c.head_dim);
    let kv = c.num_kv_heads.saturating_mul(c.head_dim);
    vec![
        rule("embed_tokens.weight", "[vocab_size, hidden_size]", vec![v, h]),
        rule("lm_head.weight", "[vocab_size, hidden_size]", vec![v, h]),
        rule("self_attn.q_proj.weight", "[num_heads*head_dim, hidden_size]", vec![q, h]),
        rule("self_attn.q_proj.bias", "[num_heads*head_dim]", vec![q]),
        rule("self_attn.k_proj.weight", "[num_kv_heads*head_dim, hidden_size]", vec![kv, h]),
        rule("self_attn.k_proj.bias", "[num_kv_heads*head_dim]", vec![kv]),
        rule("self_attn.v_proj.weight", "[num_kv_heads*head_dim, hidden_size]", vec![kv, h]),
        rule("self_attn.v_proj.bias", "[num_kv_heads*head_dim]", vec![kv]),
        rule("self_attn.o_proj.weight", "[hidden_size, num_heads*head_dim]", vec![h, q]),
        rule("self_attn.q_norm.weight", "[head_dim]", vec![c.head_dim]),
        rule("self_attn.k_norm.weight", "[head_dim]", vec![c.head_dim]),
        rule("mlp.gate_proj.weight", "[intermediate_size, hidden_size]", vec![i, h]),
        rule("mlp.up_proj.weight", "[intermediate_size, hidden_size]", vec![i, h]),
        rule("mlp.down_proj.weight", "[hidden_size, intermediate_size]", vec![h, i]),
        // Phi-3's fused projections.
        rule("self_attn.qkv_proj.weight", "[(num_heads+2*num_kv_heads)*head_dim, hidden_size]", vec![q + 2 * kv, h]),
        rule("mlp.gate_up_proj.weight", "[2*intermediate_size, hidden_size]", vec![i.saturating_mul(2), h]),
        rule("input_layernorm.weight", "[hidden_size]", vec![h]),
        rule("post_attention_layernorm.weight", "[hidden_size]", vec![h]),
        // Gemma 2's norms around the MLP.
        rule("pre_feedforward_layernorm.weight", "[hidden_size]", vec![h]),
        rule("post_feedforward_layernorm.weight", "[hidden_size]", vec![h]),
        rule("model.norm.weight", "[hidden_size]", vec![h]),
    ]
}

fn bert_rules(c: &ModelConfig) -> Vec<Rule> {
    let (h, v, i) = (c.hidden_size, c.vocab_size, c.intermediate_size);
    let mut rules = vec![
        rule("embeddings.word_embeddings.weight", "[vocab_size, hidden_size]", vec![v, h]),
        rule("attention.self.query.weight", "[hidden_size, hidden_size]", vec![h, h]),
        rule("attention.self.key.weight", "[hidden_size, hidden_size]", vec![h, h]),
        rule("attention.self.value.weight", "[hidden_size, hidden_size]", vec![h, h]),
        rule("attention.self.query.bias", "[hidden_size]", vec![h]),
        rule("attention.self.key.bias", "[hidden_size]", vec![h]),
        rule("attention.self.value.bias", "[hidden_size]", vec![h]),
        rule("attention.output.dense.weight", "[hidden_size, hidden_size]", vec![h, h]),
        // After attention.output.dense: first match wins, so this only sees the layer output.
        rule("output.dense.weight", "[hidden_size, intermediate_size]", vec![h, i]),
        rule("intermediate.dense.weight", "[intermediate_size, hidden_size]", vec![i, h]),
        rule("intermediate.dense.bias", "[intermediate_size]", vec![i]),
        rule("LayerNorm.weight", "[hidden_size]", vec![h]),
        rule("LayerNorm.bias", "[hidden_size]", vec![h]),
    ];
    if let Some(p) = c.max_position_embeddings {
        rules.push(rule("embeddings.position_embeddings.weight", "[max_position_embeddings, hidden_size]", vec![p, h]));
    }
    rules
}

/// `suffix` matches whole dotted segments at the end of `name` (so `model.norm.weight` does not
/// match `model.layers.0.input_layernorm.weight`).
fn matches_suffix(name: &str, suffix: &str) -> bool {
    name == suffix || name.strip_suffix(suffix).is_some_and(|head| head.ends_with('.'))
}

/// Every layer index 0..num_layers must be present and none beyond.
fn check_layer_count(config: &ModelConfig, tensors: &[TensorInfo]) -> Result<()> {
    let marker: &[&str] = if config.architecture.is_llama_style() { &["layers"] } else { &["layer"] };
    let indices: BTreeSet<usize> = tensors
        .iter()
        .filter_map(|t| {
            let parts: Vec<&str> = t.name.split('.').collect();
            parts.windows(2).find_map(|w| match w {
                [m, n] if marker.contains(m) => n.parse::<usize>().ok(),
                _ => None,
            })
        })
        .collect();
    let highest = indices.last().copied();
    let contiguous = highest.map_or(0, |h| h + 1) == indices.len();
    if indices.len() != config.num_layers || !contiguous {
        return Err(Error::ConfigLayerCountMismatch { expected: config.num_layers, found: indices.len(), highest });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::{DType, Role};

    fn parse(v: Value) -> Result<ModelConfig> {
        ModelConfig::from_json(Path::new("config.json"), v)
    }

    fn base(extra: Value) -> Value {
        let mut v = json!({"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
                           "intermediate_size": 16, "vocab_size": 10});
        if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), extra) {
            obj.extend(extra);
        }
        v
    }

    #[test]
    fn families_from_model_type_or_class() {
        let arch = |v: Value| parse(base(v)).map(|c| c.architecture).ok();
        assert_eq!(arch(json!({"model_type": "qwen2"})), Some(Architecture::Qwen2));
        assert_eq!(arch(json!({"architectures": ["Qwen3ForCausalLM"]})), Some(Architecture::Qwen3));
        assert_eq!(arch(json!({"architectures": ["MistralForCausalLM"]})), Some(Architecture::Mistral));
        assert_eq!(arch(json!({"architectures": ["BertForMaskedLM"]})), Some(Architecture::Bert));
        assert_eq!(arch(json!({"model_type": "gpt2"})), Some(Architecture::Unknown("gpt2".into())));
        assert!(Architecture::Qwen2.is_llama_style() && !Architecture::Bert.is_llama_style());
        assert_eq!(serde_json::to_string(&Architecture::Mistral).ok().as_deref(), Some("\"mistral\""));
    }

    #[test]
    fn derived_fields_and_defaults() {
        let c = parse(base(json!({"model_type": "llama", "rope_theta": 1e6}))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.head_dim, c.num_kv_heads, c.tie_word_embeddings), (4, 2, false));
        assert_eq!(c.rope_theta, Some(1e6));
        let c = parse(base(json!({"model_type": "bert", "layer_norm_eps": 1e-12, "head_dim": null})))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.head_dim, c.tie_word_embeddings, c.layer_norm_eps), (4, true, Some(1e-12)));
        // GPT-2 style key names.
        let c = parse(json!({"model_type": "gpt2", "n_embd": 8, "n_layer": 2, "n_head": 2, "n_inner": 32,
                             "vocab_size": 5, "n_positions": 64}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.hidden_size, c.num_layers, c.intermediate_size, c.max_position_embeddings), (8, 2, 32, Some(64)));
    }

    #[test]
    fn missing_or_mistyped_fields() {
        let e = parse(json!({"model_type": "llama"})).err();
        assert!(matches!(&e, Some(Error::ConfigInvalid { problem, .. }) if problem.contains("hidden_size")), "{e:?}");
        let e = parse(base(json!({"rms_norm_eps": "small"}))).err();
        assert!(matches!(&e, Some(Error::ConfigInvalid { problem, .. }) if problem.contains("rms_norm_eps")), "{e:?}");
        let e = parse(base(json!({"hidden_size": 9}))).err();
        assert!(matches!(&e, Some(Error::ConfigInvalid { problem, .. }) if problem.contains("multiple")), "{e:?}");
        assert!(parse(json!([1])).is_err());
    }

    fn t(name: &str, shape: &[usize]) -> TensorInfo {
        TensorInfo {
            name: name.to_string(),
            dtype: DType::F32,
            shape: shape.to_vec(),
            shard: 0,
            offset: 0,
            nbytes: 0,
            role: Role::Other,
        }
    }

    #[test]
    fn qwen2_biases_are_checked() {
        // 2 heads of 4, 1 kv head: q is 8 wide, k/v 4 wide, each with a bias.
        let c = parse(base(json!({"model_type": "qwen2", "num_key_value_heads": 1}))).unwrap_or_else(|e| panic!("{e}"));
        let good = [
            t("model.layers.0.self_attn.q_proj.bias", &[8]),
            t("model.layers.0.self_attn.k_proj.bias", &[4]),
            t("model.layers.0.self_attn.v_proj.weight", &[4, 8]),
        ];
        assert!(validate(&c, &good).is_ok());
        let bad = [t("model.layers.0.self_attn.k_proj.bias", &[8])];
        let e = validate(&c, &bad).err();
        assert!(
            matches!(&e, Some(Error::ConfigShapeMismatch { expected, got, .. }) if expected == &[4] && got == &[8]),
            "{e:?}"
        );
        // Packed (non-float) tensors are not held to float shapes.
        let mut packed = t("model.layers.0.self_attn.k_proj.weight", &[1, 1]);
        packed.dtype = DType::I32;
        assert!(validate(&c, &[packed, t("model.layers.0.input_layernorm.weight", &[8])]).is_ok());
    }

    #[test]
    fn bert_shapes_are_checked() {
        let c =
            parse(base(json!({"model_type": "bert", "max_position_embeddings": 4}))).unwrap_or_else(|e| panic!("{e}"));
        let ok = [
            t("embeddings.word_embeddings.weight", &[10, 8]),
            t("embeddings.position_embeddings.weight", &[4, 8]),
            t("encoder.layer.0.attention.output.dense.weight", &[8, 8]),
            t("encoder.layer.0.output.dense.weight", &[8, 16]),
            t("encoder.layer.0.intermediate.dense.weight", &[16, 8]),
        ];
        assert!(validate(&c, &ok).is_ok());
        let e = validate(&c, &[t("encoder.layer.0.attention.self.query.weight", &[8, 4])]).err();
        assert!(matches!(&e, Some(Error::ConfigShapeMismatch { tensor, .. }) if tensor.ends_with("query.weight")));
        // Layers 0 and 2 but not 1: a gap is a mismatch even if the count were right.
        let c2 = parse(base(json!({"model_type": "bert", "num_hidden_layers": 2}))).unwrap_or_else(|e| panic!("{e}"));
        let e = validate(
            &c2,
            &[t("encoder.layer.0.output.dense.bias", &[8]), t("encoder.layer.2.output.dense.bias", &[8])],
        )
        .err();
        assert!(
            matches!(e, Some(Error::ConfigLayerCountMismatch { expected: 2, found: 2, highest: Some(2) })),
            "{e:?}"
        );
    }
}
