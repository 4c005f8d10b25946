//! Recipes: a declarative compression plan, saved as TOML.
//!
//! A recipe has a default action, ordered rules (first match wins) whose `targets` select tensors
//! by glob, regex (`re:`) or role (`role:mlp`), an `ignore` list that always wins, and an optional
//! `[structured]` section for whole-channel/head/layer removal on LLaMA-style models.
//! `resolve` turns a recipe plus a model into a per-tensor [`Plan`] without reading any weights.

pub mod allocate;
mod presets;
pub(crate) mod resolve;
mod target;

use serde::{Deserialize, Serialize};

pub use presets::{PRESETS, Preset, preset};
pub use resolve::{Plan, PlanTotals, PlannedAction, PlannedTensor, Reason, StructuredPlan};
pub use target::{Target, layer_index, tensor_kind};

use crate::error::{Error, Result};

/// Tensors ignored unless a recipe says otherwise: norms, embeddings and the output head are
/// small or sensitive, and serving engines keep them dense.
pub const DEFAULT_IGNORE: &[&str] = &["role:norm", "role:embedding", "role:head", "role:other"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Targets that are never touched. `None` means [`DEFAULT_IGNORE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<String>>,
    /// What happens to a tensor no rule matches.
    #[serde(default)]
    pub default: Action,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured: Option<StructuredSpec>,
}

/// What to do to one tensor. Both parts are optional: neither means keep it as it is; both means
/// prune first, then quantize the survivors (the zeros stay exact zeros in every grid format).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantize: Option<QuantizeSpec>,
}

impl Action {
    pub fn is_keep(&self) -> bool {
        self.prune.is_none() && self.quantize.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Globs on tensor names (`*.mlp.*`), regexes (`re:^model\.layers\.\d+\.`) or roles
    /// (`role:attention`). A tensor matches if any target matches.
    pub targets: Vec<String>,
    /// Only layers chosen by this policy match (absent: every layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<LayerSelector>,
    /// Only when compressing with an importance matrix (`pareto compress --imatrix`): llama.cpp's
    /// Q4_0 / Q5_0 policies move the first eighth of ffn_down to Q4_1 / Q5_1 only then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub with_imatrix: bool,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LayerSelector {
    /// Explicit block indices.
    List(Vec<usize>),
    /// A named policy, e.g. `use_more_bits` (llama.cpp's choice of layers that get more bits in
    /// Q4_K_M: the first and last eighth and every third layer between).
    Policy(LayerPolicy),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerPolicy {
    UseMoreBits,
    /// Layers below `n_layers / 8` (llama.cpp's Q4_K_S ffn_down rule), integer division.
    FirstEighth,
    /// Layers below `n_layers / 16` (llama.cpp's Q3_K_M ffn_down rule), integer division.
    FirstSixteenth,
}

impl LayerSelector {
    pub fn selects(&self, layer: usize, n_layers: usize) -> bool {
        match self {
            LayerSelector::List(list) => list.contains(&layer),
            LayerSelector::Policy(LayerPolicy::UseMoreBits) => use_more_bits(layer, n_layers),
            LayerSelector::Policy(LayerPolicy::FirstEighth) => layer < n_layers / 8,
            LayerSelector::Policy(LayerPolicy::FirstSixteenth) => layer < n_layers / 16,
        }
    }
}

/// llama.cpp's `use_more_bits` (src/llama-quant.cpp): integer arithmetic exactly as there.
pub fn use_more_bits(layer: usize, n_layers: usize) -> bool {
    let eighth = n_layers / 8;
    // `layer >= eighth` holds once the first test fails, so the subtraction cannot underflow.
    layer < eighth || layer >= 7 * n_layers / 8 || (layer - eighth) % 3 == 2
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantizeSpec {
    /// A format id from the registry (`pareto formats` lists them).
    pub format: String,
    #[serde(default)]
    pub algorithm: Algorithm,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Round to nearest: the registry codec applied as is.
    #[default]
    Rtn,
    /// GPTQ (Frantar et al. 2022): codes chosen column by column against the layer's input Hessian
    /// XᵀX from a calibration set, each column's rounding error folded into the columns not yet
    /// quantized. Integer-grid formats (`int4_*`, `int8_channel`).
    Gptq,
    /// AWQ (Lin et al. 2023): per-input-channel scales searched on a calibration set so that the
    /// channels with large activations lose less to rounding, folded into the op that feeds the
    /// input (an RMSNorm, the linear before), so the artifact stays a plain checkpoint of the
    /// format; then each group clipped to the range that keeps the outputs closest. Any format.
    Awq,
}

impl Algorithm {
    pub fn label(self) -> &'static str {
        match self {
            Algorithm::Rtn => "rtn",
            Algorithm::Gptq => "gptq",
            Algorithm::Awq => "awq",
        }
    }

    /// Whether the algorithm reads calibration statistics (and so needs a calibration set).
    pub fn needs_calibration(self) -> bool {
        self != Algorithm::Rtn
    }

    pub fn is_rtn(&self) -> bool {
        *self == Algorithm::Rtn
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum PruneSpec {
    /// Zero the smallest-magnitude weights. `scope = "global"` ranks all targeted tensors together.
    Magnitude {
        sparsity: f64,
        #[serde(default)]
        scope: PruneScope,
    },
    /// N:M semi-structured: in every group of `m` consecutive input weights keep the `n` largest.
    #[serde(rename = "nm")]
    NM { n: usize, m: usize },
    /// Wanda: remove the `sparsity` fraction of each output row with the lowest |W|·‖X‖ (the
    /// weight's magnitude times its input's norm over a calibration set).
    Wanda { sparsity: f64 },
    /// Wanda's score with an N:M pattern.
    #[serde(rename = "wanda_nm")]
    WandaNM { n: usize, m: usize },
    /// SparseGPT: remove the `sparsity` fraction of each row (chosen per block of 128 inputs by
    /// w² / [H⁻¹]ᵢᵢ²) and update the remaining weights to absorb the error, against the inputs'
    /// Hessian; with `algorithm = "gptq"` in the same rule, pruned and quantized jointly.
    #[serde(rename = "sparsegpt")]
    SparseGpt { sparsity: f64 },
    /// SparseGPT with an N:M pattern.
    #[serde(rename = "sparsegpt_nm")]
    SparseGptNM { n: usize, m: usize },
}

impl PruneSpec {
    /// Whether the method reads calibration statistics.
    pub fn needs_calibration(&self) -> bool {
        self.is_sparsegpt() || matches!(self, PruneSpec::Wanda { .. } | PruneSpec::WandaNM { .. })
    }

    /// The pattern a calibrated method (Wanda, SparseGPT) removes.
    pub fn calibrated_pattern(&self) -> Option<crate::prune::wanda::WandaPattern> {
        use crate::prune::wanda::WandaPattern;
        match self {
            PruneSpec::Wanda { sparsity } | PruneSpec::SparseGpt { sparsity } => {
                Some(WandaPattern::Unstructured(*sparsity))
            }
            PruneSpec::WandaNM { n, m } | PruneSpec::SparseGptNM { n, m } => Some(WandaPattern::NM { n: *n, m: *m }),
            _ => None,
        }
    }

    pub fn is_sparsegpt(&self) -> bool {
        matches!(self, PruneSpec::SparseGpt { .. } | PruneSpec::SparseGptNM { .. })
    }

    /// The N:M pattern's group length, if it has one.
    pub fn group(&self) -> Option<usize> {
        match self {
            PruneSpec::NM { m, .. } | PruneSpec::WandaNM { m, .. } | PruneSpec::SparseGptNM { m, .. } => Some(*m),
            _ => None,
        }
    }

    /// Short label for tables: `prune 50%`, `2:4`, `wanda 50%`, `wanda 2:4`, `sparsegpt 50%`.
    pub fn label(&self) -> String {
        match self {
            PruneSpec::Magnitude { sparsity, .. } => format!("prune {:.0}%", sparsity * 100.0),
            PruneSpec::NM { n, m } => format!("{n}:{m}"),
            PruneSpec::Wanda { sparsity } => format!("wanda {:.0}%", sparsity * 100.0),
            PruneSpec::WandaNM { n, m } => format!("wanda {n}:{m}"),
            PruneSpec::SparseGpt { sparsity } => format!("sparsegpt {:.0}%", sparsity * 100.0),
            PruneSpec::SparseGptNM { n, m } => format!("sparsegpt {n}:{m}"),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneScope {
    #[default]
    Tensor,
    Global,
}

/// Structured removal for LLaMA-style decoders: real shape reduction, config.json updated.
/// HF configs hold one head count and one FFN width for all layers, so the same number of
/// channels/heads is removed from every layer, choosing which per layer by weight importance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StructuredSpec {
    /// Fraction of FFN channels removed per layer (0..1).
    #[serde(default)]
    pub ffn_channels: f64,
    /// Fraction of KV head groups removed per layer (each takes its query heads with it).
    #[serde(default)]
    pub kv_heads: f64,
    /// Decoder layers removed, by index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop_layers: Vec<usize>,
}

impl StructuredSpec {
    pub fn is_empty(&self) -> bool {
        self.ffn_channels == 0.0 && self.kv_heads == 0.0 && self.drop_layers.is_empty()
    }
}

impl Recipe {
    /// Parses and validates a recipe from TOML text. Unknown keys are refused by name.
    pub fn from_toml(text: &str, origin: &str) -> Result<Recipe> {
        let recipe: Recipe = toml::from_str(text)
            .map_err(|e| Error::RecipeParse { origin: origin.to_string(), message: e.to_string() })?;
        recipe.validate()?;
        Ok(recipe)
    }

    /// A preset name (`w8`, `w4-g128`, ...) or a path to a TOML file.
    pub fn load(preset_or_path: &str) -> Result<Recipe> {
        if let Some(p) = preset(preset_or_path) {
            return Recipe::from_toml(p.toml, &format!("preset {}", p.name));
        }
        let path = std::path::Path::new(preset_or_path);
        if path.extension().is_some_and(|e| e == "toml") || path.exists() {
            let text = crate::bounded::read_text(path, crate::bounded::RECIPE_CAP, "recipe")?;
            return Recipe::from_toml(&text, &path.display().to_string());
        }
        Err(Error::UnknownPreset {
            name: preset_or_path.to_string(),
            valid: PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", "),
        })
    }

    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self)
            .map_err(|e| Error::RecipeParse { origin: self.name.clone(), message: e.to_string() })
    }

    /// Checks everything that can be checked without a model: format ids, targets, ranges.
    pub fn validate(&self) -> Result<()> {
        for t in self.ignore_targets() {
            Target::parse(&t)?;
        }
        let actions = std::iter::once(("default".to_string(), &self.default))
            .chain(self.rules.iter().enumerate().map(|(i, r)| (format!("rule {}", i + 1), &r.action)));
        for (place, action) in actions {
            validate_action(&place, action)?;
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.targets.is_empty() {
                return Err(Error::RecipeInvalid {
                    place: format!("rule {}", i + 1),
                    message: "`targets` is empty".into(),
                });
            }
            for t in &rule.targets {
                Target::parse(t)?;
            }
        }
        if let Some(s) = &self.structured {
            for (field, v) in [("ffn_channels", s.ffn_channels), ("kv_heads", s.kv_heads)] {
                if !(0.0..1.0).contains(&v) {
                    return Err(Error::RecipeInvalid {
                        place: format!("structured.{field}"),
                        message: format!("must be in [0, 1), got {v}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether any rule asks for a calibrated method (GPTQ, Wanda), so a calibration set is needed.
    pub fn needs_calibration(&self) -> bool {
        std::iter::once(&self.default).chain(self.rules.iter().map(|r| &r.action)).any(|a| {
            a.quantize.as_ref().is_some_and(|q| q.algorithm.needs_calibration())
                || a.prune.as_ref().is_some_and(PruneSpec::needs_calibration)
        })
    }

    pub fn ignore_targets(&self) -> Vec<String> {
        match &self.ignore {
            Some(list) => list.clone(),
            None => DEFAULT_IGNORE.iter().map(|s| s.to_string()).collect(),
        }
    }
}

fn validate_action(place: &str, action: &Action) -> Result<()> {
    if let Some(q) = &action.quantize {
        let format = pareto_formats::lookup(&q.format)?;
        match q.algorithm {
            Algorithm::Rtn => {}
            Algorithm::Gptq if format.int_grid().is_none() => {
                return Err(Error::RecipeInvalid {
                    place: place.to_string(),
                    message: format!(
                        "gptq chooses codes on an integer grid (int4_*, int8_channel); {} is not one",
                        format.id
                    ),
                });
            }
            Algorithm::Gptq if action.prune.as_ref().is_some_and(|p| !p.is_sparsegpt()) => {
                return Err(Error::RecipeInvalid {
                    place: place.to_string(),
                    message: "gptq updates the weights it keeps, which a mask chosen without it would not fit; \
                              prune with method = \"sparsegpt\" (or \"sparsegpt_nm\") to prune and quantize jointly"
                        .into(),
                });
            }
            Algorithm::Gptq => {}
            Algorithm::Awq if action.prune.is_some() => {
                return Err(Error::RecipeInvalid {
                    place: place.to_string(),
                    message: "awq scales weights that pruning would then rank differently; prune in a rule of its own \
                              (rtn or gptq) or quantize with awq without pruning"
                        .into(),
                });
            }
            Algorithm::Awq => {}
        }
    }
    match &action.prune {
        Some(
            PruneSpec::Magnitude { sparsity, .. } | PruneSpec::Wanda { sparsity } | PruneSpec::SparseGpt { sparsity },
        ) if !(0.0..1.0).contains(sparsity) => Err(Error::RecipeInvalid {
            place: place.to_string(),
            message: format!("sparsity must be in [0, 1), got {sparsity}"),
        }),
        Some(PruneSpec::NM { n, m } | PruneSpec::WandaNM { n, m } | PruneSpec::SparseGptNM { n, m })
            if *m == 0 || *n == 0 || n >= m =>
        {
            Err(Error::RecipeInvalid { place: place.to_string(), message: format!("N:M needs 0 < n < m, got {n}:{m}") })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_validates() {
        for p in PRESETS {
            let r = Recipe::load(p.name).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert_eq!(r.name, p.name);
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Recipe::from_toml("[default]\nquantise = { format = \"q8_0\" }\n", "t").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::RecipeParse { .. }), "{msg}");
        assert!(msg.contains("quantise"), "{msg}");
        assert!(msg.contains("quantize"), "message should list valid keys: {msg}");
    }

    #[test]
    fn unknown_format_lists_valid_ids() {
        let err = Recipe::from_toml("[default]\nquantize = { format = \"q3_z\" }\n", "t").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("q3_z") && msg.contains("q8_0") && msg.contains("int8_channel"), "{msg}");
    }

    #[test]
    fn unknown_preset_lists_presets() {
        let err = Recipe::load("w3").unwrap_err();
        assert!(matches!(err, Error::UnknownPreset { .. }));
        assert!(err.to_string().contains("w4-g128"));
    }

    #[test]
    fn bad_ranges_are_refused() {
        let e = Recipe::from_toml("[default]\nprune = { method = \"magnitude\", sparsity = 1.5 }\n", "t");
        assert!(matches!(e, Err(Error::RecipeInvalid { .. })));
        let e = Recipe::from_toml("[default]\nprune = { method = \"nm\", n = 4, m = 4 }\n", "t");
        assert!(matches!(e, Err(Error::RecipeInvalid { .. })));
        let e = Recipe::from_toml("[default]\nquantize = { format = \"q8_0\", algorithm = \"gptq\" }\n", "t");
        assert!(matches!(e, Err(Error::RecipeInvalid { .. })));
    }

    #[test]
    fn use_more_bits_matches_llama_cpp_on_32_layers() {
        // n=32: eighth=4 → layers 0..4, 28..32, and 4+3k+2 = 6, 9, ..., 27.
        let picked: Vec<usize> = (0..32).filter(|&i| use_more_bits(i, 32)).collect();
        assert_eq!(picked, vec![0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
    }

    #[test]
    fn toml_round_trip() {
        let r = Recipe::load("gguf-q4_k_m").unwrap();
        let again = Recipe::from_toml(&r.to_toml().unwrap(), "rt").unwrap();
        assert_eq!(r, again);
    }
}
