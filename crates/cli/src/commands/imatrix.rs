//! `pareto imatrix`: llama.cpp importance matrices — compute one, or check one against a model.

use std::path::PathBuf;

use pareto_core::export::gguf::imatrix::{Imatrix, write_file};
use pareto_runs::{CalibrationSpec, compute_imatrix, imatrix_targets};
use serde_json::json;

use crate::{output, progress};

#[derive(clap::Args)]
pub struct ImatrixArgs {
    /// The source model (a LLaMA-style decoder folder); never modified.
    pub path: PathBuf,
    /// Plain-text calibration set the statistics are collected on.
    #[arg(long, required_unless_present = "check", value_name = "FILE")]
    pub samples: Option<PathBuf>,
    /// Where to write the matrix (`.gguf`, or llama.cpp's legacy format with `--dat`).
    #[arg(long, short, required_unless_present = "check")]
    pub out: Option<PathBuf>,
    /// Write llama.cpp's legacy `.dat` format instead of GGUF.
    #[arg(long)]
    pub dat: bool,
    /// Replace an existing importance matrix at `--out` (never any other file).
    #[arg(long)]
    pub force: bool,
    /// Windows of calibration text (llama-imatrix's chunks).
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub windows: usize,
    /// Tokens per window, BOS included (llama-imatrix's `-c`).
    #[arg(long, default_value_t = 512, value_name = "TOKENS")]
    pub window: usize,
    /// Characters skipped at the start of the samples file.
    #[arg(long, default_value_t = 0, value_name = "CHARS")]
    pub skip: usize,
    /// Instead of computing: read this imatrix (GGUF or .dat, e.g. from llama-imatrix) and check it
    /// against the model (tensor names and column counts).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["samples", "out"])]
    pub check: Option<PathBuf>,
}

pub fn run(args: &ImatrixArgs, json: bool) -> anyhow::Result<()> {
    let model = output::open_model(&args.path)?;
    let targets = imatrix_targets(&model);
    if let Some(file) = &args.check {
        let m = Imatrix::read(file)?;
        let uncovered = m.check_against(file, &targets)?;
        if json {
            return output::json(&json!({
                "file": file, "entries": m.entries.len(), "chunk_count": m.chunk_count, "chunk_size": m.chunk_size,
                "datasets": m.datasets, "uncovered": uncovered,
            }));
        }
        println!(
            "{}: {} entries for this model ({} chunks of {} tokens, datasets {:?})",
            file.display(),
            m.entries.len(),
            m.chunk_count,
            m.chunk_size,
            m.datasets
        );
        if !uncovered.is_empty() {
            println!(
                "{} linear weights have no entry (they would be quantized without importance): {}",
                uncovered.len(),
                uncovered.join(", ")
            );
        }
        return Ok(());
    }
    let (Some(samples), Some(out)) = (&args.samples, &args.out) else {
        anyhow::bail!("give --samples FILE and --out FILE (or --check FILE)");
    };
    let spec = CalibrationSpec {
        windows: args.windows,
        window: args.window,
        skip_chars: args.skip,
        ..CalibrationSpec::new(samples)
    };
    let ctx = progress::bar_context();
    let (m, notes) = compute_imatrix(model.root(), &spec, &ctx)?;
    drop(ctx);
    for note in &notes {
        crate::note!("note: {note}");
    }
    let bytes = if args.dat { m.to_dat() } else { m.to_gguf() };
    let written = write_file(out, &bytes, args.force, &model.source_paths())?;
    if json {
        return output::json(&json!({
            "file": written, "entries": m.entries.len(), "chunk_count": m.chunk_count, "chunk_size": m.chunk_size,
            "format": if args.dat { "dat" } else { "gguf" },
        }));
    }
    println!(
        "wrote {} ({} entries, {} chunks of {} tokens; llama-quantize --imatrix reads it)",
        written.display(),
        m.entries.len(),
        m.chunk_count,
        m.chunk_size
    );
    Ok(())
}
