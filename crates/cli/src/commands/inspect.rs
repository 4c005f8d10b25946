//! `pareto inspect`: what a model is made of, from its headers alone.

use std::path::PathBuf;

use anyhow::Context;
use pareto_core::Model;

use crate::output;

#[derive(clap::Args)]
pub struct InspectArgs {
    /// A model folder (single or sharded safetensors) or a .safetensors file.
    pub path: PathBuf,
    /// Rows of the per-tensor table to print (all with --json).
    #[arg(long, default_value_t = 40)]
    pub limit: usize,
}

pub fn run(args: &InspectArgs, json: bool) -> anyhow::Result<()> {
    let model = Model::open(&args.path).with_context(|| format!("opening {}", args.path.display()))?;
    let summary = model.summary();
    if json {
        return output::json(&serde_json::json!({ "summary": summary, "tensors": model.tensors() }));
    }
    eprintln!("{}", serde_json::to_string_pretty(&summary)?);
    let rows: Vec<Vec<String>> = model
        .tensors()
        .iter()
        .take(args.limit)
        .map(|t| {
            vec![
                t.name.clone(),
                t.dtype.as_str().to_string(),
                format!("{:?}", t.shape),
                output::bytes(t.nbytes),
                format!("{:?}", t.role).to_lowercase(),
            ]
        })
        .collect();
    output::table(&["tensor", "dtype", "shape", "bytes", "role"], &rows);
    if model.tensors().len() > args.limit {
        eprintln!("… {} more tensors (--limit N, or --json for all)", model.tensors().len() - args.limit);
    }
    Ok(())
}
