//! `pareto convert model.gguf --out folder`: a GGUF back into the Hugging Face folder it came from
//! (config.json, model.safetensors, tokenizer.json), which transformers, candle and every Pareto
//! command load.

use std::path::PathBuf;

use anyhow::Context;
use pareto_core::import::{self, TensorDtype};
use pareto_core::store::DType;

use crate::{output, progress};

#[derive(clap::Args)]
pub struct ConvertArgs {
    /// The GGUF file (v2 or v3) to convert; never modified.
    pub gguf: PathBuf,
    /// The folder to write (created; replaced only with --force when it is an earlier Pareto output).
    #[arg(long)]
    pub out: PathBuf,
    /// Tensor type written: `exact` keeps F32/F16/BF16 tensors as stored and writes dequantized
    /// ones as F32 (nothing rounded); f32, f16 or bf16 writes every tensor in that type.
    #[arg(long, default_value = "exact")]
    pub dtype: String,
    /// Replace an earlier Pareto output at --out.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &ConvertArgs, json: bool) -> anyhow::Result<()> {
    let dtype = match args.dtype.as_str() {
        "exact" => TensorDtype::Exact,
        "f32" => TensorDtype::All(DType::F32),
        "f16" => TensorDtype::All(DType::F16),
        "bf16" => TensorDtype::All(DType::BF16),
        other => anyhow::bail!("--dtype {other:?}: expected exact, f32, f16 or bf16"),
    };
    let ctx = progress::bar_context();
    let report = import::convert(&args.gguf, &args.out, dtype, args.force, &ctx)
        .with_context(|| format!("converting {}", args.gguf.display()))?;
    drop(ctx);
    for note in &report.notes {
        crate::note!("note: {note}");
    }
    if json {
        return output::json(&report);
    }
    let types: Vec<String> = report.source_types.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
    println!(
        "converted {} ({}, {} tensors: {})",
        report.source.display(),
        report.architecture,
        report.tensors,
        types.join(", ")
    );
    for f in &report.files {
        println!("  {:<24} {:>12}  sha256 {}", f.name, output::bytes(f.bytes), f.sha256);
    }
    println!("wrote {}", report.output.display());
    Ok(())
}
