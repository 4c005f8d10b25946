//! Traffic scenarios: what load the model serves, under which SLO, batching, caching, pricing and
//! energy assumptions. Read from TOML (a user file or a preset from `assets/scenarios/`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ProjectionError, Result};

/// Latency targets (p95). `ttft_ms` is also the request latency target for encoders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub ttft_p95_ms: Option<f64>,
    pub tpot_p95_ms: Option<f64>,
}

/// Batching policy of the serving engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batching {
    /// Most sequences decoded together (vLLM `max_num_seqs`).
    pub max_batch: u32,
    /// Longest a request waits in the queue for a batch slot; added to TTFT.
    pub max_queue_wait_ms: f64,
    /// Tokens processed per prefill step (sizes the activation workspace; vLLM
    /// `max_num_batched_tokens`).
    #[serde(default = "default_batched_tokens")]
    pub max_batched_tokens: u32,
}

fn default_batched_tokens() -> u32 {
    2048
}

/// Response caching in front of the model; hits never reach the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    pub exact_hit_rate: f64,
    pub semantic_hit_rate: f64,
    /// Where measured rates came from (`pareto cache`'s estimate), when they are not assumptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_by: Option<String>,
}

/// Network egress per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub egress_gb_per_request: f64,
    pub usd_per_gb: f64,
}

/// Which price the headline cost uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PricingTier {
    OnDemand,
    Spot,
    Reserved,
}

/// Pricing choices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    pub tier: PricingTier,
    /// Discount of reserved / committed-use capacity off on-demand (0.4 = 40 % off). Enter your quote.
    pub reserved_discount: f64,
    /// Storage for the model artifact per instance (USD per GB-month; the I/O cost category).
    #[serde(default)]
    pub storage_usd_per_gb_month: f64,
    #[serde(default = "default_hours")]
    pub hours_per_month: f64,
}

fn default_hours() -> f64 {
    730.0
}

/// Energy and carbon conversion (codecarbon / Cloud Carbon Footprint methodology).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Energy {
    pub pue: f64,
    pub grid_g_per_kwh: f64,
    pub usd_per_kwh: f64,
    /// Average power as a fraction of TDP when no measurement is available (codecarbon's fallback 0.5).
    #[serde(default = "default_tdp_fraction")]
    pub tdp_fraction: f64,
}

fn default_tdp_fraction() -> f64 {
    0.5
}

/// Data type of the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvDtype {
    Fp32,
    Fp16,
    Bf16,
    Fp8,
    Int8,
    Int4,
}

impl KvDtype {
    /// Bytes per element.
    pub fn bytes(self) -> f64 {
        match self {
            Self::Fp32 => 4.0,
            Self::Fp16 | Self::Bf16 => 2.0,
            Self::Fp8 | Self::Int8 => 1.0,
            Self::Int4 => 0.5,
        }
    }
}

/// One tenant of a shared cluster with its *measured* traffic (over any common window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub name: String,
    pub measured_requests: f64,
    /// Mean input/output tokens of this tenant's requests; default to the scenario's.
    pub input_tokens: Option<f64>,
    pub output_tokens: Option<f64>,
    /// Share of this tenant's requests the response cache answers (measured by `pareto cache`);
    /// default: the scenario's cache hit rates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hit_rate: Option<f64>,
}

/// A traffic scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub requests_per_day: f64,
    pub peak_to_average: f64,
    /// Input tokens per request (per sentence for encoders).
    pub input_tokens: f64,
    /// Output tokens per request (decoders).
    #[serde(default)]
    pub output_tokens: f64,
    /// Sentences per request (encoders).
    #[serde(default = "one")]
    pub sentences_per_request: f64,
    pub slo: Slo,
    pub batching: Batching,
    #[serde(default)]
    pub cache: Cache,
    #[serde(default)]
    pub network: Network,
    pub pricing: Pricing,
    /// Target average load per instance at peak (0..1]; headroom for bursts.
    pub utilisation_target: f64,
    /// Fraction of device memory the engine may use (vLLM `gpu_memory_utilization` 0.9,
    /// TensorRT-LLM `free_gpu_memory_fraction` 0.9).
    #[serde(default = "default_mem_util")]
    pub memory_utilisation: f64,
    #[serde(default = "default_kv")]
    pub kv_dtype: KvDtype,
    pub energy: Energy,
    /// A device to project on when the caller names none.
    #[serde(default)]
    pub default_device: Option<String>,
    /// The serving engine (llama.cpp, vllm, tensorrt-llm, sglang): decode speeds then use the
    /// figures fitted to that engine's published measurements on the device's class; absent, the
    /// roofline defaults.
    #[serde(default)]
    pub engine: Option<String>,
    /// Devices the right-sizing ranking considers; empty = the whole catalog.
    #[serde(default)]
    pub candidates: Vec<String>,
    #[serde(default)]
    pub tenants: Vec<Tenant>,
}

fn one() -> f64 {
    1.0
}
fn default_mem_util() -> f64 {
    0.9
}
fn default_kv() -> KvDtype {
    KvDtype::Fp16
}

/// Built-in presets (id, TOML text).
pub const PRESETS: [(&str, &str); 4] = [
    ("high-volume-api", include_str!("../../../assets/scenarios/high-volume-api.toml")),
    ("enterprise-batch", include_str!("../../../assets/scenarios/enterprise-batch.toml")),
    ("edge", include_str!("../../../assets/scenarios/edge.toml")),
    ("multi-tenant", include_str!("../../../assets/scenarios/multi-tenant.toml")),
];

impl Scenario {
    /// A built-in preset by id; the error lists the valid ids.
    pub fn preset(id: &str) -> Result<Self> {
        let (_, text) = PRESETS.iter().find(|(p, _)| *p == id).ok_or_else(|| ProjectionError::UnknownPreset {
            id: id.to_owned(),
            valid: PRESETS.iter().map(|(p, _)| (*p).to_owned()).collect(),
        })?;
        Self::from_toml_str(text, &format!("preset {id}"))
    }

    /// Ids of the built-in presets.
    pub fn preset_ids() -> Vec<&'static str> {
        PRESETS.iter().map(|(p, _)| *p).collect()
    }

    /// A preset id or a path to a TOML file (anything ending in `.toml` or containing a path
    /// separator is read as a file).
    pub fn load(preset_or_path: &str) -> Result<Self> {
        if preset_or_path.ends_with(".toml")
            || preset_or_path.contains(std::path::MAIN_SEPARATOR)
            || preset_or_path.contains('/')
        {
            Self::from_file(Path::new(preset_or_path))
        } else {
            Self::preset(preset_or_path)
        }
    }

    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ProjectionError::Io { path: path.to_owned(), source })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `what` names the source in errors.
    pub fn from_toml_str(text: &str, what: &str) -> Result<Self> {
        let s: Self = toml::from_str(text)
            .map_err(|e| ProjectionError::Toml { what: format!("scenario {what}"), message: e.to_string() })?;
        s.validate()?;
        Ok(s)
    }

    /// The scenario as a TOML file every command reads back (`--scenario FILE`).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self)
            .map_err(|e| ProjectionError::Toml { what: format!("scenario {}", self.name), message: e.to_string() })
    }

    /// Checks every field's range; traffic must be positive.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, value: f64, reason: &'static str| {
            Err(ProjectionError::InvalidScenario { field: field.to_owned(), value, reason })
        };
        if let Some(e) = &self.engine
            && crate::fidelity::engine_index(e).is_none()
        {
            return Err(ProjectionError::UnknownEngine { engine: e.clone(), valid: crate::fidelity::ENGINE_NAMES });
        }
        let positive = [
            ("requests_per_day", self.requests_per_day),
            ("input_tokens", self.input_tokens),
            ("sentences_per_request", self.sentences_per_request),
            ("utilisation_target", self.utilisation_target),
            ("memory_utilisation", self.memory_utilisation),
            ("pricing.hours_per_month", self.pricing.hours_per_month),
            ("energy.tdp_fraction", self.energy.tdp_fraction),
        ];
        for (f, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return bad(f, v, "must be a positive number");
            }
        }
        let non_negative = [
            ("output_tokens", self.output_tokens),
            ("batching.max_queue_wait_ms", self.batching.max_queue_wait_ms),
            ("network.egress_gb_per_request", self.network.egress_gb_per_request),
            ("network.usd_per_gb", self.network.usd_per_gb),
            ("pricing.storage_usd_per_gb_month", self.pricing.storage_usd_per_gb_month),
            ("energy.grid_g_per_kwh", self.energy.grid_g_per_kwh),
            ("energy.usd_per_kwh", self.energy.usd_per_kwh),
        ];
        for (f, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return bad(f, v, "must be zero or a positive number");
            }
        }
        let fractions = [
            ("cache.exact_hit_rate", self.cache.exact_hit_rate),
            ("cache.semantic_hit_rate", self.cache.semantic_hit_rate),
            ("pricing.reserved_discount", self.pricing.reserved_discount),
        ];
        for (f, v) in fractions {
            if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                return bad(f, v, "must be in [0, 1)");
            }
        }
        if self.cache.exact_hit_rate + self.cache.semantic_hit_rate >= 1.0 {
            return bad(
                "cache.exact_hit_rate + cache.semantic_hit_rate",
                self.cache.exact_hit_rate + self.cache.semantic_hit_rate,
                "must be below 1 (some requests must reach the model)",
            );
        }
        if self.utilisation_target > 1.0 {
            return bad("utilisation_target", self.utilisation_target, "must be at most 1");
        }
        if self.memory_utilisation > 1.0 {
            return bad("memory_utilisation", self.memory_utilisation, "must be at most 1");
        }
        if self.energy.tdp_fraction > 1.0 {
            return bad("energy.tdp_fraction", self.energy.tdp_fraction, "must be at most 1");
        }
        if !(self.peak_to_average.is_finite() && self.peak_to_average >= 1.0) {
            return bad("peak_to_average", self.peak_to_average, "must be at least 1");
        }
        if !(self.energy.pue.is_finite() && self.energy.pue >= 1.0) {
            return bad("energy.pue", self.energy.pue, "must be at least 1");
        }
        if self.batching.max_batch == 0 {
            return bad("batching.max_batch", 0.0, "must be at least 1");
        }
        if self.batching.max_batched_tokens == 0 {
            return bad("batching.max_batched_tokens", 0.0, "must be at least 1");
        }
        for (f, v) in [("slo.ttft_p95_ms", self.slo.ttft_p95_ms), ("slo.tpot_p95_ms", self.slo.tpot_p95_ms)] {
            if let Some(x) = v
                && !(x.is_finite() && x > 0.0)
            {
                return bad(f, x, "must be a positive number of milliseconds");
            }
        }
        for t in &self.tenants {
            let field = format!("tenants[{}].measured_requests", t.name);
            if !(t.measured_requests.is_finite() && t.measured_requests >= 0.0) {
                return Err(ProjectionError::InvalidScenario {
                    field,
                    value: t.measured_requests,
                    reason: "must be zero or positive",
                });
            }
            for v in [t.input_tokens, t.output_tokens].into_iter().flatten() {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(ProjectionError::InvalidScenario {
                        field: format!("tenants[{}] tokens", t.name),
                        value: v,
                        reason: "must be zero or positive",
                    });
                }
            }
        }
        for t in &self.tenants {
            if let Some(h) = t.cache_hit_rate
                && !(0.0..=1.0).contains(&h)
            {
                return Err(ProjectionError::InvalidScenario {
                    field: format!("tenants[{}].cache_hit_rate", t.name),
                    value: h,
                    reason: "must be between 0 and 1",
                });
            }
        }
        if !self.tenants.is_empty() && self.tenants.iter().all(|t| t.measured_requests == 0.0) {
            return bad("tenants.measured_requests", 0.0, "at least one tenant needs measured traffic");
        }
        Ok(())
    }

    /// Requests per second reaching the model (after cache hits), on average and at peak.
    pub fn model_rps(&self) -> (f64, f64) {
        let miss = 1.0 - self.cache.exact_hit_rate - self.cache.semantic_hit_rate;
        let avg = self.requests_per_day / 86_400.0 * miss;
        (avg, avg * self.peak_to_average)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_validates() -> Result<()> {
        for id in Scenario::preset_ids() {
            let s = Scenario::preset(id)?;
            assert_eq!(s.name, id);
        }
        assert_eq!(Scenario::preset("multi-tenant")?.tenants.len(), 3);
        assert_eq!(Scenario::preset("enterprise-batch")?.pricing.tier, PricingTier::Spot);
        Ok(())
    }

    #[test]
    fn every_preset_round_trips_through_toml() -> Result<()> {
        for id in Scenario::preset_ids() {
            let mut s = Scenario::preset(id)?;
            s.cache.measured_by = Some("measured".into());
            let back = Scenario::from_toml_str(&s.to_toml()?, id)?;
            assert_eq!(back, s, "{id}");
        }
        Ok(())
    }

    #[test]
    fn unknown_preset_lists_valid_ids() {
        let e = Scenario::preset("nope").err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            e,
            "unknown scenario preset `nope`; valid presets: high-volume-api, enterprise-batch, edge, multi-tenant"
        );
    }

    #[test]
    fn zero_and_negative_traffic_are_rejected() -> Result<()> {
        let mut s = Scenario::preset("high-volume-api")?;
        s.requests_per_day = 0.0;
        let e = s.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(e, "invalid scenario field `requests_per_day` = 0: must be a positive number");
        s.requests_per_day = -5.0;
        assert!(s.validate().is_err());
        s.requests_per_day = 10.0;
        s.output_tokens = -1.0;
        assert!(s.validate().is_err());
        s.output_tokens = 10.0;
        s.cache.exact_hit_rate = 0.6;
        s.cache.semantic_hit_rate = 0.5;
        assert!(s.validate().is_err());
        Ok(())
    }

    #[test]
    fn unknown_toml_field_is_an_error() {
        let text = include_str!("../../../assets/scenarios/edge.toml").replace("peak_to_average", "peak_to_avg");
        assert!(Scenario::from_toml_str(&text, "t").is_err());
    }

    #[test]
    fn cache_hits_reduce_model_traffic() -> Result<()> {
        let s = Scenario::preset("high-volume-api")?;
        let (avg, peak) = s.model_rps();
        let miss = 1.0 - s.cache.exact_hit_rate - s.cache.semantic_hit_rate;
        assert!((avg - 1e7 / 86_400.0 * miss).abs() < 1e-9);
        assert!((peak / avg - s.peak_to_average).abs() < 1e-12);
        Ok(())
    }
}
