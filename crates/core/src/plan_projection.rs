//! The bridge from a resolved [`Plan`] to the projection crate's inputs: per-tensor weights at
//! their exact stored bytes, before and after compression, with the compute precision each format
//! runs at in serving engines.

use pareto_projection::{
    Catalog, ComputePrecision, Efficiency, ModelShape, Projection, ProjectionError, ProjectionRequest, Scenario,
    WeightEntry, project,
};

use crate::recipe::Plan;
use crate::store::Model;

/// Projects `plan` on a catalog device under a traffic scenario: the original alone, or original
/// and compressed side by side when `compare`. `device` defaults to the scenario's device.
pub fn project_plan(
    model: &Model,
    plan: &Plan,
    catalog: &Catalog,
    scenario: &Scenario,
    device: Option<&str>,
    compare: bool,
) -> Result<Projection, ProjectionError> {
    project_plan_with(model, plan, catalog, scenario, device, compare, None)
}

/// [`project_plan`] with the decode efficiency given (a local calibration) instead of the
/// scenario engine's fitted figures.
pub fn project_plan_with(
    model: &Model,
    plan: &Plan,
    catalog: &Catalog,
    scenario: &Scenario,
    device: Option<&str>,
    compare: bool,
    efficiency: Option<Efficiency>,
) -> Result<Projection, ProjectionError> {
    let device_id = device_id(scenario, device);
    let shape = model.config().map(|c| ModelShape::from_hf_config(&c.raw)).transpose()?;
    let (original, compressed) = (original_weights(plan), compressed_weights(plan));
    project(&ProjectionRequest {
        shape: shape.as_ref(),
        original: &original,
        compressed: compare.then_some(compressed.as_slice()),
        device: catalog.get(&device_id)?,
        scenario,
        catalog: Some(catalog),
        efficiency: efficiency.unwrap_or_else(|| Efficiency::for_engine(scenario.engine.as_deref())),
    })
}

/// The device a projection runs on: the one asked for, else the scenario's default, else an H100.
pub fn device_id(scenario: &Scenario, device: Option<&str>) -> String {
    device.map(str::to_string).or_else(|| scenario.default_device.clone()).unwrap_or_else(|| "h100_sxm".into())
}

/// How a format's matmuls run in serving: FP8 weights run W8A8 on hardware with FP8 tensor cores
/// (vLLM compressed-tensors `float-quantized`); every other format here is weight-only and
/// dequantizes to FP16 for the matmul (W4A16 / W8A16, GGUF k-quants), so it saves bytes, not FLOPs.
pub fn compute_precision(format: &str) -> ComputePrecision {
    if format.starts_with("fp8") { ComputePrecision::Fp8 } else { ComputePrecision::Fp16 }
}

/// The source model's weights as stored.
pub fn original_weights(plan: &Plan) -> Vec<WeightEntry> {
    plan.tensors
        .iter()
        .filter(|t| t.dtype.is_float())
        .map(|t| WeightEntry {
            name: t.source_name.clone(),
            params: t.source_shape.iter().map(|&d| d as u64).product(),
            stored_bytes: t.source_bytes,
            format: t.dtype.as_str().to_lowercase(),
            compute: ComputePrecision::Fp16,
        })
        .collect()
}

/// The compressed model's weights at the bytes the packed formats store (dropped tensors gone).
pub fn compressed_weights(plan: &Plan) -> Vec<WeightEntry> {
    plan.tensors
        .iter()
        .filter(|t| t.dtype.is_float() && !t.action.drop)
        .map(|t| {
            let format = t.action.format.map_or_else(|| t.out_dtype.as_str().to_lowercase(), str::to_string);
            WeightEntry {
                name: t.name.clone(),
                params: t.params,
                stored_bytes: t.planned_bytes,
                compute: compute_precision(&format),
                format,
            }
        })
        .collect()
}
