//! Memory: exact weight bytes, GQA-aware KV cache, activation workspace, runtime overhead, and
//! fit against the usable fraction of device memory.

use serde::{Deserialize, Serialize};

use crate::catalog::{Device, DeviceKind, GIB};
use crate::model::{ModelShape, PlanSummary};
use crate::quantity::{Quantity, n};
use crate::scenario::Scenario;

/// Runtime overhead per device kind, bytes, with its source.
pub fn runtime_overhead(kind: DeviceKind) -> (f64, &'static str) {
    match kind {
        DeviceKind::Gpu => {
            (650e6, "gpu_poor README: 650 MB CUDA context overhead (\"around 500 MB-1 GB\"); PROJECTION.md §2.1")
        }
        DeviceKind::Cpu | DeviceKind::Edge => {
            (100e6, "ASSUMPTION: ~100 MB inference process and buffers on CPU / unified-memory devices")
        }
        DeviceKind::Mcu => {
            (0.0, "bare-metal MCU: runtime code lives in flash; the tensor arena is counted as activations")
        }
    }
}

/// Memory figures in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryNumbers {
    pub weights: f64,
    pub kv_per_token: Option<f64>,
    /// KV of one sequence at full context (input + output).
    pub kv_per_seq: Option<f64>,
    /// KV at the configured batch (`batching.max_batch` sequences).
    pub kv_at_max_batch: Option<f64>,
    pub activations: Option<f64>,
    pub overhead: f64,
    /// Weights + KV at max batch + activations + overhead.
    pub total: f64,
    pub usable: f64,
    /// Most sequences whose KV fits beside weights, activations and overhead.
    pub max_seqs: Option<f64>,
    /// Whether weights, workspace, overhead and one full sequence fit.
    pub fits: bool,
}

/// Whether the scenario/model pair has a decode phase.
pub fn is_decoder(shape: Option<&ModelShape>, scenario: &Scenario) -> bool {
    match shape.map(|s| s.family) {
        Some(crate::model::Family::Encoder) => false,
        _ => scenario.output_tokens > 0.0,
    }
}

/// Computes the memory figures. Without a shape, KV and activations are unknown (`None`).
pub fn memory(plan: &PlanSummary, shape: Option<&ModelShape>, device: &Device, sc: &Scenario) -> MemoryNumbers {
    let decoder = is_decoder(shape, sc);
    let (overhead, _) = runtime_overhead(device.kind);
    let usable = device.mem_bytes() * sc.memory_utilisation;
    let batch = f64::from(sc.batching.max_batch);
    let seq = sc.input_tokens + sc.output_tokens;
    let kv_per_token = shape.filter(|_| decoder).map(|s| s.kv_elems_per_token() * sc.kv_dtype.bytes());
    let kv_per_seq = kv_per_token.map(|k| k * seq);
    let activations = shape.map(|s| activation_bytes(s, sc, decoder));
    let fixed = plan.stored_bytes + activations.unwrap_or(0.0) + overhead;
    let kv_at_max_batch = kv_per_seq.map(|k| k * batch);
    let total = fixed + kv_at_max_batch.unwrap_or(0.0);
    let max_seqs = kv_per_seq.map(|k| ((usable - fixed) / k).floor().max(0.0));
    let fits = fixed + kv_per_seq.unwrap_or(0.0) <= usable;
    MemoryNumbers {
        weights: plan.stored_bytes,
        kv_per_token,
        kv_per_seq,
        kv_at_max_batch,
        activations,
        overhead,
        total,
        usable,
        max_seqs,
        fits,
    }
}

/// The most weight bytes that fit on `device` beside what serving the scenario needs there: the
/// runtime overhead, the activation workspace and the KV cache of `batching.max_batch` sequences
/// of input + output tokens, within the usable fraction of memory. `None` when those alone do not
/// fit. The same arithmetic as [`memory`], solved for the weights.
pub fn weight_budget(shape: Option<&ModelShape>, device: &Device, sc: &Scenario) -> Option<f64> {
    let empty = PlanSummary {
        label: String::new(),
        n_tensors: 0,
        total_params: 0.0,
        stored_bytes: 0.0,
        bytes_per_step: 0.0,
        matmul_params: [0.0; 3],
        tied_embeddings: false,
        formats: Vec::new(),
    };
    let m = memory(&empty, shape, device, sc);
    let room = m.usable - m.total;
    (room > 0.0).then_some(room)
}

/// Activation workspace estimate. Decoders: one prefill chunk of `max_batched_tokens` tokens
/// holding ~(4·hidden + 2·intermediate) FP16 values each, plus FP32 logits for `max_batch`
/// sequences. Encoders: `max_batch` sentences × `input_tokens` tokens the same way plus the FP16
/// attention scores (batch × heads × N²).
fn activation_bytes(s: &ModelShape, sc: &Scenario, decoder: bool) -> f64 {
    let per_token = (4 * s.hidden + 2 * s.intermediate) as f64 * 2.0;
    let batch = f64::from(sc.batching.max_batch);
    if decoder {
        let chunk = f64::from(sc.batching.max_batched_tokens);
        chunk * per_token + batch * s.vocab as f64 * 4.0
    } else {
        let tokens = batch * sc.input_tokens;
        tokens * per_token + batch * s.n_heads as f64 * sc.input_tokens * sc.input_tokens * 2.0
    }
}

/// The memory section of a projection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryProjection {
    pub weights: Quantity,
    pub kv_per_token: Option<Quantity>,
    pub kv_cache: Option<Quantity>,
    pub activations: Option<Quantity>,
    pub runtime_overhead: Quantity,
    pub total: Quantity,
    pub usable: Quantity,
    pub headroom: Quantity,
    pub max_concurrent_sequences: Option<Quantity>,
    pub fits: bool,
    pub verdict: String,
}

fn gib(b: f64) -> String {
    format!("{:.3} GiB", b / GIB)
}

/// Builds the memory section with formulas and sources.
pub fn memory_projection(
    m: &MemoryNumbers,
    plan: &PlanSummary,
    shape: Option<&ModelShape>,
    device: &Device,
    sc: &Scenario,
) -> MemoryProjection {
    let (_, overhead_src) = runtime_overhead(device.kind);
    let weights =
        Quantity::exact(m.weights, "B", format!("Σ stored_bytes over {} tensors ({})", plan.n_tensors, gib(m.weights)))
            .src("per-tensor sizes of the plan's storage formats");
    let kv_per_token = match (m.kv_per_token, shape) {
        (Some(k), Some(s)) => Some(
            Quantity::exact(
                k,
                "B/token",
                format!(
                    "2 × {} layers × {} kv_heads × {} head_dim × {} B ({:?})",
                    s.n_layers,
                    s.n_kv_heads,
                    s.head_dim,
                    n(sc.kv_dtype.bytes()),
                    sc.kv_dtype
                ),
            )
            .src("llm-analysis get_memory_kv_cache_per_layer (GQA-aware); PROJECTION.md §2.1"),
        ),
        _ => None,
    };
    let kv_cache = m.kv_at_max_batch.map(|kv| {
        Quantity::exact(
            kv,
            "B",
            format!(
                "kv_per_token × ({} in + {} out) tokens × {} sequences = {}",
                n(sc.input_tokens),
                n(sc.output_tokens),
                sc.batching.max_batch,
                gib(kv)
            ),
        )
        .src("scenario batching.max_batch, input_tokens, output_tokens")
    });
    let activations = m.activations.map(|a| {
        Quantity::estimate(a, "B", format!("workspace for one {}-token step ≈ tokens × (4·hidden + 2·intermediate) × 2 B + logits = {}", sc.batching.max_batched_tokens, gib(a)))
            .src("vLLM profiles a forward pass at max_num_batched_tokens to size activations (PROJECTION.md §2.1); tensor count is an estimate")
    });
    let runtime_overhead =
        Quantity::estimate(m.overhead, "B", format!("{:?} runtime overhead", device.kind)).src(overhead_src);
    let total = Quantity::estimate(
        m.total,
        "B",
        format!(
            "weights {} + KV {} + activations {} + overhead {} = {}",
            gib(m.weights),
            m.kv_at_max_batch.map_or("unknown".to_owned(), gib),
            m.activations.map_or("unknown".to_owned(), gib),
            gib(m.overhead),
            gib(m.total)
        ),
    );
    let usable = Quantity::exact(
        m.usable,
        "B",
        format!("{} GiB × {} memory_utilisation", n(device.mem_gib), n(sc.memory_utilisation)),
    )
    .src(device.spec_cite())
    .src("vLLM gpu_memory_utilization 0.9 / TensorRT-LLM free_gpu_memory_fraction 0.9 (PROJECTION.md §2.1)");
    let headroom = Quantity::estimate(m.usable - m.total, "B", format!("usable − total = {}", gib(m.usable - m.total)));
    let max_concurrent_sequences = m.max_seqs.map(|s| {
        Quantity::estimate(
            s,
            "sequences",
            format!(
                "⌊(usable − weights − activations − overhead) / KV per sequence⌋ = ⌊{} / {}⌋",
                gib(m.usable - m.weights - m.activations.unwrap_or(0.0) - m.overhead),
                gib(m.kv_per_seq.unwrap_or(1.0))
            ),
        )
    });
    let verdict = fit_verdict(m, device);
    MemoryProjection {
        weights,
        kv_per_token,
        kv_cache,
        activations,
        runtime_overhead,
        total,
        usable,
        headroom,
        max_concurrent_sequences,
        fits: m.fits,
        verdict,
    }
}

fn human(b: f64) -> String {
    if b >= GIB {
        format!("{:.2} GiB", b / GIB)
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

fn fit_verdict(m: &MemoryNumbers, device: &Device) -> String {
    let need = m.weights + m.activations.unwrap_or(0.0) + m.overhead + m.kv_per_seq.unwrap_or(0.0);
    if !m.fits {
        let mut s = format!(
            "does not fit: needs {} (weights {}{}), {} has {} usable — short by {}",
            human(need),
            human(m.weights),
            if m.kv_per_seq.is_some() { " + one sequence of KV + workspace" } else { "" },
            device.id,
            human(m.usable),
            human(need - m.usable)
        );
        if device.kind == DeviceKind::Mcu {
            s.push_str("; on-chip SRAM/flash is a hard ceiling of ~1-2 MB without external QSPI/SDRAM");
        }
        return s;
    }
    match m.max_seqs {
        Some(seqs) => format!(
            "fits: {} of {} usable, room for {} concurrent sequences at full context",
            human(need),
            human(m.usable),
            n(seqs)
        ),
        None => format!(
            "weights fit: {} of {} usable (KV cache and activations unknown without a model config)",
            human(need),
            human(m.usable)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::error::Result;
    use crate::model::{ComputePrecision, llama3_8b_weights};

    #[test]
    fn llama3_8b_fp16_fits_h100_not_l4() -> Result<()> {
        let cat = Catalog::builtin()?;
        let sc = Scenario::preset("high-volume-api")?;
        let shape = ModelShape::llama3_8b();
        let plan = PlanSummary::from_weights("o", &llama3_8b_weights("bf16", 16.0, ComputePrecision::Fp16), true)?;
        let h = memory(&plan, Some(&shape), cat.get("h100_sxm")?, &sc);
        assert!(h.fits);
        assert_eq!(h.kv_per_token, Some(131_072.0));
        // (72 GiB usable − 16.06 GB weights − 0.32 GB workspace − 0.65 GB) / (800 tokens × 128 KiB) ≈ 574.
        let seqs = h.max_seqs.unwrap_or(0.0);
        assert!((570.0..580.0).contains(&seqs), "{seqs}");
        let l4 = memory(&plan, Some(&shape), cat.get("l4")?, &sc);
        assert!(l4.fits, "16 GB of weights fit 24 GiB × 0.9");
        let t4 = memory(&plan, Some(&shape), cat.get("t4")?, &sc);
        assert!(!t4.fits);
        assert!(fit_verdict(&t4, cat.get("t4")?).starts_with("does not fit"));
        Ok(())
    }

    #[test]
    fn weight_budget_is_what_memory_leaves_for_weights() -> Result<()> {
        let cat = Catalog::builtin()?;
        let mut sc = Scenario::preset("high-volume-api")?;
        let shape = ModelShape::llama3_8b();
        let h100 = cat.get("h100_sxm")?;
        let budget = weight_budget(Some(&shape), h100, &sc).unwrap_or(0.0);
        assert!(budget > 16e9, "{budget}");
        // Weights of exactly that size fill the device at the scenario's batch: it still fits, with
        // no room for more sequences than the batch.
        let plan = PlanSummary::from_weights("o", &llama3_8b_weights("bf16", 16.0, ComputePrecision::Fp16), true)?;
        let sized = PlanSummary { stored_bytes: budget, ..plan };
        let m = memory(&sized, Some(&shape), h100, &sc);
        assert!((m.total - m.usable).abs() < 1.0, "{} vs {}", m.total, m.usable);
        assert!(m.fits);
        // More concurrent sequences leave less for the weights; far too many leave nothing.
        sc.batching.max_batch *= 2;
        assert!(weight_budget(Some(&shape), h100, &sc).unwrap_or(0.0) < budget);
        sc.batching.max_batch = 100_000;
        assert_eq!(weight_budget(Some(&shape), h100, &sc), None);
        Ok(())
    }

    #[test]
    fn fp8_kv_halves_kv_bytes() -> Result<()> {
        let cat = Catalog::builtin()?;
        let mut sc = Scenario::preset("high-volume-api")?;
        let shape = ModelShape::llama3_8b();
        let plan = PlanSummary::from_weights("o", &llama3_8b_weights("bf16", 16.0, ComputePrecision::Fp16), true)?;
        let a = memory(&plan, Some(&shape), cat.get("h100_sxm")?, &sc);
        sc.kv_dtype = crate::scenario::KvDtype::Fp8;
        let b = memory(&plan, Some(&shape), cat.get("h100_sxm")?, &sc);
        assert_eq!(b.kv_at_max_batch.map(|x| x * 2.0), a.kv_at_max_batch);
        assert!(b.max_seqs > a.max_seqs);
        Ok(())
    }

    #[test]
    fn mcu_fits_a_260k_int8_model_but_not_an_8b() -> Result<()> {
        let cat = Catalog::builtin()?;
        let mcu = cat.get("cortex_m7_stm32h743")?;
        let sc = Scenario::preset("edge")?;
        let tiny = vec![crate::model::WeightEntry {
            name: "w".into(),
            params: 260_000,
            stored_bytes: 260_000,
            format: "int8".into(),
            compute: ComputePrecision::Int8,
        }];
        let p = PlanSummary::from_weights("tiny", &tiny, false)?;
        assert!(memory(&p, None, mcu, &sc).fits);
        let big = PlanSummary::from_weights("8b", &llama3_8b_weights("q4", 4.5, ComputePrecision::Fp16), true)?;
        let m = memory(&big, None, mcu, &sc);
        assert!(!m.fits);
        assert!(fit_verdict(&m, mcu).contains("hard ceiling"));
        Ok(())
    }
}
