//! Prints a full projection as JSON: Llama-3-8B BF16 vs int4 (weight-only) on one device.
//! `cargo run --release -p pareto-projection --example project_json -- h100_sxm high-volume-api`

use pareto_projection::*;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let device = args.get(1).map_or("h100_sxm", String::as_str);
    let preset = args.get(2).map_or("high-volume-api", String::as_str);
    let catalog = Catalog::builtin()?;
    let scenario = Scenario::load(preset)?;
    let shape = ModelShape::llama3_8b();
    let original = llama3_8b_weights("bf16", 16.0, ComputePrecision::Fp16);
    let int4 = llama3_8b_weights("int4_g128_sym", 4.25, ComputePrecision::Fp16);
    let weights_only = args.iter().any(|a| a == "--weights-only");
    let p = project(&ProjectionRequest {
        shape: (!weights_only).then_some(&shape),
        original: &original,
        compressed: Some(&int4),
        device: catalog.get(device)?,
        scenario: &scenario,
        catalog: Some(&catalog),
        efficiency: Efficiency::default(),
    })?;
    println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
    Ok(())
}
