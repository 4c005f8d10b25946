//! The run record: one versioned JSON document per compression run. Every optional section is
//! `None` when that step did not run, so readers show "not measured" — never a zero.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{ReportError, Result};

/// Bumped on any change a reader of older records could misread.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    pub schema_version: u32,
    /// Content address of the variant: derived from the source model hashes and the recipe TOML,
    /// so a re-run of the same variant has the same id (sweeps resume on it).
    pub id: String,
    pub tool: ToolInfo,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub finished_at: String,
    /// Where the work ran, e.g. "cpu (x86_64, 2 threads)".
    pub device: String,
    pub source: SourceModel,
    pub recipe: RecipeInfo,
    pub totals: Totals,
    pub tensors: Vec<TensorRecord>,
    pub artifact: Option<Artifact>,
    pub validation: Option<Validation>,
    pub projection: Option<ProjectionRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceModel {
    pub path: String,
    pub architecture: Option<String>,
    pub parameters: u64,
    pub bytes: u64,
    /// sha256 of each weight file; together they identify the model.
    pub files: Vec<FileHash>,
    pub config: Option<ConfigSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileHash {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigSummary {
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipeInfo {
    pub name: String,
    pub description: String,
    /// The recipe exactly as applied, re-loadable with `--recipe`.
    pub toml: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    pub tensors: usize,
    pub quantized: usize,
    pub pruned: usize,
    pub kept: usize,
    pub dropped: usize,
    pub params_before: u64,
    pub params_after: u64,
    pub source_bytes: u64,
    /// Bytes as the packed formats store them.
    pub planned_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TensorRecord {
    pub name: String,
    pub layer: Option<usize>,
    pub role: String,
    pub action: String,
    pub format: Option<String>,
    pub source_bytes: u64,
    pub planned_bytes: u64,
    /// Weight-space error vs the original (a proxy for accuracy); `None` when untouched.
    pub rel_error: Option<f64>,
    pub snr_db: Option<f64>,
    pub cosine: Option<f64>,
    pub sparsity: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub path: String,
    /// safetensors (dense), compressed-tensors, gguf, gptq.
    pub format: String,
    pub bytes: u64,
    /// The manifest's content hash: the cache/version key of the compressed model.
    pub content_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    /// e.g. "perplexity", "sts", "weights-only proxy".
    pub task: String,
    pub samples: SampleSet,
    /// The metric the frontier and the recommendation use.
    pub primary: String,
    pub metrics: Vec<Metric>,
    /// Measured speed on the local device (original vs compressed).
    pub speed: Vec<Metric>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleSet {
    pub path: String,
    pub sha256: String,
    pub rows: u64,
    /// Where the set comes from and how it was sampled.
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub name: String,
    pub unit: String,
    pub original: Option<f64>,
    pub compressed: Option<f64>,
    pub higher_is_better: bool,
    /// Standard error of `compressed` where the sample gives one (KL divergence: from the spread
    /// of the windows' means), so a reader can tell a real difference between variants from the
    /// sample's noise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<f64>,
}

impl Metric {
    pub fn delta(&self) -> Option<f64> {
        Some(self.compressed? - self.original?)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectionRecord {
    pub device_id: String,
    pub device_name: String,
    pub scenario: String,
    pub original: PlanCost,
    pub compressed: PlanCost,
    /// Fit and cost of the compressed model on each catalog device (hardware right-sizing).
    pub tiers: Vec<TierFit>,
    /// The inputs and constants behind the numbers, each with its source.
    pub assumptions: Vec<Assumption>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanCost {
    pub weights_bytes: f64,
    pub kv_cache_bytes: Option<f64>,
    pub overhead_bytes: f64,
    pub total_memory_bytes: f64,
    pub fits: bool,
    pub decode_tok_s_batch1: Option<f64>,
    pub usd_month: Option<f64>,
    pub usd_per_1m_requests: Option<f64>,
    /// (category, $/month): compute, memory, I/O, network.
    pub cost_by_category: Vec<(String, f64)>,
    /// (team, $/month) by measured traffic, when the scenario names tenants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cost_by_team: Vec<(String, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierFit {
    pub device_id: String,
    pub fits: bool,
    pub slo: String,
    pub usd_month: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assumption {
    pub name: String,
    pub value: String,
    pub formula: String,
    pub sources: Vec<String>,
}

/// The largest run record read (a 70B model's per-tensor table is well under 16 MiB).
pub const RECORD_CAP: u64 = 64 << 20;

impl RunRecord {
    /// The primary validation metric, if measured.
    pub fn primary_metric(&self) -> Option<&Metric> {
        let v = self.validation.as_ref()?;
        v.metrics.iter().find(|m| m.name == v.primary)
    }

    /// A stable key for "same source model": the sorted weight-file hashes.
    pub fn model_key(&self) -> String {
        let mut h: Vec<&str> = self.source.files.iter().map(|f| f.sha256.as_str()).collect();
        h.sort_unstable();
        h.join(",")
    }

    /// Reads a record, checking the schema version before anything else so an old or newer
    /// record gets a clear message instead of a field-by-field parse error.
    pub fn load(path: &Path) -> Result<RunRecord> {
        let io = |e| ReportError::Io { path: path.to_path_buf(), source: e };
        // Records are a few hundred KiB; the cap keeps a wrong path (a device, a huge file) from
        // exhausting memory.
        let file = std::fs::File::open(path).map_err(io)?;
        let bytes = file.metadata().map_err(io)?.len();
        if bytes > RECORD_CAP {
            return Err(ReportError::TooLarge { path: path.to_path_buf(), bytes, cap: RECORD_CAP });
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, RECORD_CAP + 1), &mut text).map_err(io)?;
        if text.len() as u64 > RECORD_CAP {
            return Err(ReportError::TooLarge { path: path.to_path_buf(), bytes: text.len() as u64, cap: RECORD_CAP });
        }
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ReportError::NotARecord { path: path.to_path_buf(), message: e.to_string() })?;
        match value.get("schema_version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(found) => {
                return Err(ReportError::SchemaVersion { path: path.to_path_buf(), found, supported: SCHEMA_VERSION });
            }
            None => {
                return Err(ReportError::NotARecord {
                    path: path.to_path_buf(),
                    message: "no schema_version field".into(),
                });
            }
        }
        serde_json::from_value(value)
            .map_err(|e| ReportError::NotARecord { path: path.to_path_buf(), message: e.to_string() })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The JSON Schema of [`RunRecord`], as committed in assets/schema/run-record.schema.json.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(RunRecord);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}
