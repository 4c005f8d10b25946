//! `pareto formats`: the quant-format registry and the recipe presets.

use crate::output;

#[derive(clap::Args)]
pub struct FormatsArgs {}

pub fn run(_args: &FormatsArgs, json: bool) -> anyhow::Result<()> {
    let formats: Vec<serde_json::Value> = pareto_formats::registry()
        .iter()
        .map(|f| {
            serde_json::json!({
                "id": f.id, "block": f.block, "bits_per_weight": f.bits_per_weight,
                "needs_calibration": f.needs_calibration, "fallback": f.fallback,
                "ggml_type": f.ggml_type, "description": f.description,
            })
        })
        .collect();
    let presets: Vec<serde_json::Value> = pareto_core::recipe::PRESETS
        .iter()
        .map(|p| {
            let desc = pareto_core::Recipe::load(p.name).map(|r| r.description).unwrap_or_default();
            serde_json::json!({ "name": p.name, "description": desc })
        })
        .collect();
    if json {
        return output::json(&serde_json::json!({ "formats": formats, "presets": presets }));
    }
    let rows: Vec<Vec<String>> = pareto_formats::registry()
        .iter()
        .map(|f| vec![f.id.to_string(), format!("{:.4}", f.bits_per_weight), f.description.to_string()])
        .collect();
    output::table(&["format", "bits/weight", "description"], &rows);
    println!();
    let rows: Vec<Vec<String>> = presets
        .iter()
        .map(|p| {
            vec![p["name"].as_str().unwrap_or("").to_string(), p["description"].as_str().unwrap_or("").to_string()]
        })
        .collect();
    output::table(&["preset", "description"], &rows);
    Ok(())
}
