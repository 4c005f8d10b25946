//! The shapes the UI sees. Every type here derives `ts_rs::TS`; `cargo test -p pareto-app` writes the
//! TypeScript declarations to `ui/src/api/gen/` (committed, and checked in CI by regenerating and
//! diffing). Large integers are emitted as `number`: byte counts stay far below 2^53.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// An error as the UI shows it: the message and the chain of causes beneath it.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
pub struct ApiError {
    pub message: String,
    pub causes: Vec<String>,
}

impl ApiError {
    pub fn new(message: impl Into<String>) -> Self {
        ApiError { message: message.into(), causes: Vec::new() }
    }

    /// Prefixes the message with what was being done, keeping the original as the first cause.
    pub fn context(self, what: impl Into<String>) -> Self {
        let mut causes = vec![self.message];
        causes.extend(self.causes);
        ApiError { message: what.into(), causes }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        for c in &self.causes {
            write!(f, ": {c}")?;
        }
        Ok(())
    }
}

impl From<pareto_core::Error> for ApiError {
    fn from(e: pareto_core::Error) -> Self {
        from_std(&e)
    }
}

impl From<pareto_projection::ProjectionError> for ApiError {
    fn from(e: pareto_projection::ProjectionError) -> Self {
        from_std(&e)
    }
}

/// Message plus `source()` chain.
pub fn from_std(e: &dyn std::error::Error) -> ApiError {
    let mut causes = Vec::new();
    let mut src = e.source();
    while let Some(s) = src {
        causes.push(s.to_string());
        src = s.source();
    }
    ApiError { message: e.to_string(), causes }
}

pub type ApiResult<T> = Result<T, ApiError>;

// ---------------------------------------------------------------- model

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct Tally {
    pub key: String,
    pub tensors: usize,
    pub elements: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ConfigView {
    pub architecture: String,
    pub model_type: String,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: Option<usize>,
    pub torch_dtype: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ModelSummaryView {
    pub root: String,
    pub architecture: Option<String>,
    pub parameters: u64,
    pub tensor_count: usize,
    pub bytes: u64,
    pub file_bytes: u64,
    pub shards: usize,
    pub by_dtype: Vec<Tally>,
    pub by_role: Vec<Tally>,
    pub config: Option<ConfigView>,
}

/// One row of the tensor table (model order).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct TensorRow {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
    pub role: String,
    pub layer: Option<usize>,
    pub params: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ModelView {
    pub summary: ModelSummaryView,
    pub tensors: Vec<TensorRow>,
    /// Milliseconds spent opening (headers, config) and building this view.
    pub open_ms: f64,
}

// ---------------------------------------------------------------- recipe and plan

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct PresetInfo {
    pub name: String,
    pub description: String,
    pub toml: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct FormatInfo {
    pub id: String,
    pub bits_per_weight: f64,
    pub description: String,
    /// Place in the scan's default candidates (`pareto scan`'s default too), cheapest first; none
    /// when the format is not one of them.
    pub scan_default: Option<u32>,
}

/// The action an edit applies.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionEdit {
    Keep,
    Quantize { format: String },
    Prune { sparsity: f64 },
    Sparse24,
}

/// A structured edit of the recipe TOML (the TOML stays the source of truth).
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecipeEdit {
    /// What tensors no rule matches get.
    SetDefault { action: ActionEdit },
    /// A first-priority rule for exactly these tensors.
    Override { tensors: Vec<String>, action: ActionEdit },
    /// Removes rule `index` (0-based).
    RemoveRule { index: usize },
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct RuleView {
    pub targets: Vec<String>,
    pub action: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct RecipeDoc {
    pub name: String,
    pub description: String,
    pub toml: String,
    pub default_action: String,
    pub ignore: Vec<String>,
    pub rules: Vec<RuleView>,
    /// Selected tensors an override cannot reach because the ignore list wins.
    pub ignored_in_selection: Vec<String>,
}

/// A tensor's planned action, aligned with the model's tensor order.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct PlanRow {
    pub name: String,
    pub action: String,
    pub format: Option<String>,
    pub requested_format: Option<String>,
    pub reason: String,
    pub notes: Vec<String>,
    pub out_shape: Vec<usize>,
    pub source_bytes: u64,
    pub planned_bytes: u64,
    pub dropped: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct PlanTotalsView {
    pub tensors: usize,
    pub quantized: usize,
    pub pruned: usize,
    pub kept: usize,
    pub dropped: usize,
    pub fallbacks: usize,
    /// Tensors a calibration set decides (GPTQ codes, Wanda masks): the run needs one.
    pub calibrated: usize,
    pub params_before: u64,
    pub params_after: u64,
    pub source_bytes: u64,
    pub planned_bytes: u64,
    pub bytes_by_format: Vec<Tally>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct PlanView {
    pub recipe: RecipeDoc,
    pub rows: Vec<PlanRow>,
    pub totals: PlanTotalsView,
    /// Server-side time to parse, resolve and build this view.
    pub plan_ms: f64,
}

// ---------------------------------------------------------------- jobs

/// Streamed over a Channel while a job runs.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobEvent {
    Stage {
        name: String,
        total: u64,
    },
    /// `done` units so far in this stage; `items` finished since the last event.
    Advance {
        done: u64,
        items: Vec<String>,
    },
    Log {
        line: String,
    },
    Finished {
        run: Box<RunView>,
    },
    Validated {
        result: Box<ValidationView>,
    },
    Scanned {
        result: Box<ScanView>,
    },
    /// A query log replayed through simulated caches.
    CacheEstimated {
        result: Box<CacheView>,
    },
    /// A sweep finished here or on the cluster, or was submitted to it.
    Swept {
        result: Box<SweepView>,
    },
    /// A model opened by a job (a GGUF, converted first).
    Opened {
        model: Box<ModelView>,
    },
    Failed {
        error: ApiError,
    },
    Cancelled,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct MetricsView {
    pub rel_error: f64,
    pub snr_db: Option<f64>,
    pub cosine: f64,
    pub max_abs_error: f64,
    pub sparsity: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct TensorResult {
    pub name: String,
    pub action: String,
    pub format: Option<String>,
    pub shape: Vec<usize>,
    pub source_bytes: u64,
    pub planned_bytes: u64,
    pub notes: Vec<String>,
    pub metrics: Option<MetricsView>,
    /// GPTQ's Hessian-weighted loss for this tensor.
    pub calib_loss: Option<f64>,
}

/// The calibration set of a run whose recipe has GPTQ or Wanda rules: plain text, fed as
/// `windows` windows of `window` tokens after skipping `skip_chars` characters.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct CalibrationInput {
    pub samples: String,
    pub windows: usize,
    pub window: usize,
    pub skip_chars: usize,
}

/// Per-layer error: `cells[layer_index * kinds.len() + kind_index]` is the relative error.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct Heatmap {
    pub layers: Vec<usize>,
    pub kinds: Vec<String>,
    pub cells: Vec<Option<f64>>,
}

/// A finished compression run (a variant of this session).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct RunView {
    pub id: u32,
    pub recipe_name: String,
    pub recipe_toml: String,
    pub source: String,
    pub output: String,
    pub seconds: f64,
    pub source_bytes: u64,
    pub planned_bytes: u64,
    pub written_bytes: u64,
    /// Parameter-weighted mean relative weight error over transformed tensors (an accuracy proxy).
    pub mean_rel_error: f64,
    pub content_hash: String,
    pub tensors: Vec<TensorResult>,
    pub heatmap: Heatmap,
    pub files: Vec<FileView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct FileView {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct Histogram {
    pub min: f64,
    pub max: f64,
    pub before: Vec<u32>,
    pub after: Vec<u32>,
    pub zeros_before: u64,
    pub zeros_after: u64,
    pub elements: u64,
}

// ---------------------------------------------------------------- validation

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ValidateRequest {
    pub run_id: u32,
    /// A sample file (TSV/CSV/JSONL/text); absent: the bundled set for the model family.
    pub samples: Option<String>,
    /// At most this many samples (perplexity windows for decoders).
    pub limit: Option<usize>,
    /// Also measure load time, throughput and peak memory of both models.
    pub speed: bool,
    /// `cpu`, `cuda:0`, `metal`.
    pub device: String,
}

/// One metric for the original and the compressed model. `better` is `lower` or `higher`.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct MetricRow {
    pub name: String,
    pub unit: String,
    pub original: Option<f64>,
    pub compressed: Option<f64>,
    pub better: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ValidationView {
    pub run_id: u32,
    pub family: String,
    pub samples: Option<String>,
    pub sample_kind: Option<String>,
    pub device: String,
    pub metrics: Vec<MetricRow>,
    pub speed: Vec<MetricRow>,
    pub notes: Vec<String>,
    pub seconds: f64,
}

// ---------------------------------------------------------------- projection

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct QuantityView {
    pub value: f64,
    pub unit: String,
    pub formula: String,
    pub sources: Vec<String>,
    pub estimate: bool,
    /// Where 80 % of measurements land, by the decode model's held-out error (estimates only).
    pub range: Option<[f64; 2]>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct HardwareInfo {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub mem_gib: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ScenarioInfo {
    pub id: String,
    pub description: String,
    pub requests_per_day: f64,
    pub input_tokens: f64,
    pub output_tokens: f64,
    pub default_device: Option<String>,
    pub engine: Option<String>,
}

/// Traffic controls on top of a scenario preset (absent fields keep the preset's value).
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
pub struct TrafficOverrides {
    pub requests_per_day: Option<f64>,
    pub input_tokens: Option<f64>,
    pub output_tokens: Option<f64>,
    /// The serving engine (llama.cpp, vllm, tensorrt-llm, sglang); absent: the scenario's.
    pub engine: Option<String>,
    /// Cache hit rates measured on a query log; absent: the scenario's assumptions.
    pub cache: Option<MeasuredCache>,
}

/// Hit rates of one simulated cache, measured on the user's query log.
#[derive(Debug, Clone, Serialize, Deserialize, TS, PartialEq)]
pub struct MeasuredCache {
    pub exact_hit_rate: f64,
    pub semantic_hit_rate: f64,
    /// What was measured, on which log (shown as the projection's source).
    pub source: String,
}

/// A sweep of the open model: several recipes compressed, validated and projected into run
/// records in one folder, here or as Slurm array tasks (`pareto sweep` does the same).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct SweepRequest {
    /// Presets or recipe files.
    pub recipes: Vec<String>,
    /// The sweep folder (new, empty, or an earlier sweep's: finished variants are resumed).
    pub out: String,
    /// `local` or `slurm`.
    pub executor: String,
    pub scenario: String,
    pub validate: bool,
    /// Validate decoders on the protocol's first N windows only (quicker; each KL divergence
    /// carries its standard error); every window when `None`.
    #[serde(default)]
    pub validation_windows: Option<u32>,
    /// Slurm: submit and return; running the same sweep again follows it.
    pub detach: bool,
    pub partition: Option<String>,
    /// Slurm generic resources per task, e.g. `gpu:1`.
    pub gres: Option<String>,
    /// Slurm time limit per task, e.g. `02:00:00`.
    pub time: Option<String>,
    pub account: Option<String>,
}

/// One variant of a sweep and how it stands.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct SweepVariantView {
    pub recipe: String,
    /// `recorded` (ran now), `resumed` (recorded earlier), `failed`, `queued`.
    pub state: String,
    /// The record's path, the error, or the Slurm job holding it.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct SweepView {
    pub out: String,
    pub variants: Vec<SweepVariantView>,
    /// The reviewer report's headline; absent while variants are still queued.
    pub recommendation: Option<String>,
    pub report_html: Option<String>,
    pub report_md: Option<String>,
}

/// A query log to replay through simulated caches.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct CacheRequest {
    pub log: String,
    pub thresholds: Vec<f32>,
    pub capacity: u64,
    pub ttl_seconds: Option<f64>,
    /// never, daily, weekly, monthly, quarterly, or release dates joined by `+`.
    pub updates: String,
    /// A sentence-encoder folder; absent: the bundled all-MiniLM-L6-v2.
    pub encoder: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct CacheRowView {
    pub threshold: f32,
    pub exact_hit_rate: f64,
    pub semantic_hit_rate: f64,
    /// Estimated share of the semantic hits that answered a different question.
    pub wrong_answer_share: Option<f64>,
    /// On the labelled pairs: of the pairs at or above the threshold, the share with the same intent.
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct CacheView {
    pub log: String,
    pub requests: u64,
    pub distinct_queries: u64,
    pub capacity: u64,
    pub ttl_seconds: Option<f64>,
    pub updates: String,
    pub rows: Vec<CacheRowView>,
    /// Tenant and share of the use (tokens when the log counts them, else requests).
    pub tenants: Vec<(String, f64)>,
    pub embedded_per_second: f64,
    pub seconds: f64,
    pub search: String,
    pub method: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ProjectionQuery {
    pub scenario: String,
    /// A catalog id; absent: the scenario's default device.
    pub device: Option<String>,
    pub traffic: TrafficOverrides,
    /// Recipe TOML for the compressed side; absent: only the original is projected.
    pub recipe_toml: Option<String>,
    /// Project with the decode efficiency fitted to this machine's measured speed (the chosen
    /// hardware being this machine), when there is a measurement.
    #[serde(default)]
    pub calibrate_measured: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct PlanSide {
    pub label: String,
    pub fits: bool,
    pub memory: Vec<(String, QuantityView)>,
    pub latency: Vec<(String, QuantityView)>,
    pub cost: Vec<(String, QuantityView)>,
    pub total_usd_month: Option<QuantityView>,
    pub usd_per_1m_requests: Option<QuantityView>,
    pub slo: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct RankRow {
    pub rank: Option<usize>,
    pub device_id: String,
    pub device_name: String,
    pub fits: bool,
    pub slo: String,
    pub instances: Option<f64>,
    pub usd_month: Option<QuantityView>,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ProjectionView {
    pub device: String,
    pub scenario: String,
    pub mode: String,
    pub original: PlanSide,
    pub compressed: Option<PlanSide>,
    pub summary: Option<String>,
    pub ranking: Vec<RankRow>,
    pub ranking_verdict: Option<String>,
    /// What the latency SLO costs: the cheapest within it vs queued spot batch work.
    pub latency_verdict: Option<String>,
    pub latency_premium: Option<QuantityView>,
    pub batch_terms: Vec<String>,
    pub unknowns: Vec<String>,
    pub notes: Vec<String>,
    pub project_ms: f64,
    /// Decode measured on this machine beside this device's projection, when a validation
    /// measured it.
    pub measured: Option<MeasuredSpeedView>,
}

/// Decode throughput measured on this machine (Validate → "measure speed": batch 1, 4, 16) beside
/// the roofline for the chosen hardware, with its defaults and fitted to the measurement.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct MeasuredSpeedView {
    /// Which validation measured it, on what.
    pub source: String,
    /// The catalog device it is compared with (the chosen hardware).
    pub device: String,
    pub points: Vec<pareto_runs::measured::MeasuredPoint>,
    /// What the fit found, or why it could not fit.
    pub said: String,
    /// Whether the projection above uses the fitted efficiency.
    pub applied: bool,
}

// ---------------------------------------------------------------- compare

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct VariantPoint {
    pub run_id: u32,
    pub label: String,
    pub weight_bytes: u64,
    /// The chosen metric's change, signed so that up is better (relative when `change_is_relative`);
    /// `None` when the run has no such measurement (never filled in from another metric).
    pub accuracy: Option<f64>,
    pub change_is_relative: bool,
    /// The change as the reviewer reads it, e.g. "+1.20% (worse)".
    pub change_text: Option<String>,
    pub metric_value: Option<f64>,
    pub usd_month: Option<f64>,
    pub on_frontier: bool,
    pub dominated: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
pub struct CompareView {
    pub cost_axis: String,
    /// The metric on the accuracy axis: a measured validation metric, or the weight-error proxy.
    pub metric: String,
    pub accuracy_axis: String,
    /// The accuracy axes the runs offer (measured metrics first, then the proxy).
    pub metrics: Vec<String>,
    pub is_proxy: bool,
    pub warnings: Vec<String>,
    pub recommendation: String,
    pub reasons: Vec<String>,
    pub points: Vec<VariantPoint>,
}

// ---------------------------------------------------------------- budgeted allocation

/// A sensitivity scan to run on the open model (decoders): `windows` × `window` tokens of plain
/// text after `skip_chars` characters, every candidate format in `formats`.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ScanRequest {
    pub samples: String,
    pub windows: u32,
    pub window: u32,
    pub skip_chars: u32,
    pub formats: Vec<String>,
    /// Measure this format only and predict the others from the proxy (one pass per tensor).
    pub predict_from: Option<String>,
}

/// The scan as a heatmap: the report's grid (`pareto_runs::scan::sensitivity`), one type for both.
pub use pareto_report::Sensitivity as ScanView;

/// A budget in the user's terms: `bpw` (bits per weight), `mib` (total MiB), `like` (a preset's
/// size) or `fits` (a catalog device with the session scenario's KV cache).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct BudgetQuery {
    pub kind: String,
    pub value: Option<f64>,
    pub like: Option<String>,
    pub device: Option<String>,
    pub scenario: Option<String>,
    /// What tensors the scan does not decide get (a preset or recipe).
    pub base: String,
    /// q/k/v and gate/up on one format (vLLM's fused layers need it).
    pub fuse: bool,
    /// The editor's recipe, marked on the predicted frontier.
    pub current_toml: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct AllocPoint {
    pub bytes: u64,
    pub bpw: f64,
    pub predicted_kl: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct AllocationView {
    pub budget_bytes: u64,
    pub chosen: AllocPoint,
    pub recipe_toml: String,
    /// The predicted frontier, cheapest first.
    pub frontier: Vec<AllocPoint>,
    pub current: Option<AllocPoint>,
    pub notes: Vec<String>,
}

// ---------------------------------------------------------------- export

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ExportFormatInfo {
    pub id: String,
    pub label: String,
    pub loads_in: String,
    /// False when this build cannot write the format yet (the UI says so).
    pub available: bool,
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ExportRequest {
    pub run_id: u32,
    pub format: String,
    pub target: String,
    pub overwrite: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ExportResult {
    pub target: String,
    pub files: Vec<FileView>,
}

// ---------------------------------------------------------------- app

#[derive(Debug, Clone, Default, Serialize, Deserialize, TS, PartialEq)]
#[serde(default)]
pub struct Settings {
    pub recent_models: Vec<String>,
    pub last_recipe_toml: Option<String>,
    pub scenario: Option<String>,
    pub device: Option<String>,
    pub compute_device: Option<String>,
    /// The last sweep's folder, executor and Slurm options: the configured cluster.
    pub sweep: Option<SweepSettings>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, TS, PartialEq)]
#[serde(default)]
pub struct SweepSettings {
    pub out: String,
    /// `local` or `slurm`.
    pub executor: String,
    pub partition: String,
    pub gres: String,
    pub time: String,
    pub account: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ComputeDevice {
    pub id: String,
    pub label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct Startup {
    /// A model to open at launch (`--open <path>` or `PARETO_OPEN`).
    pub open: Option<String>,
    /// The demo model inside the app bundle, offered on the Open screen.
    pub demo: Option<String>,
    pub settings: Settings,
    pub version: String,
}

/// A native file dialog the backend opens for the page (the user's pick becomes a chosen path).
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct PickRequest {
    pub title: String,
    /// Pick a folder rather than a file.
    pub directory: bool,
    /// A save dialog (a new file name) rather than an open one.
    pub save: bool,
    pub filters: Vec<FileFilter>,
}

#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct FileFilter {
    pub name: String,
    pub extensions: Vec<String>,
}
