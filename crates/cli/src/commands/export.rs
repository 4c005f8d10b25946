//! `pareto export`: write a recorded run's artifact again, in any format — the CLI's counterpart of
//! the studio's Export screen. The run record names the source model (by path and by the sha256 of
//! its weight files) and the exact recipe; the model found is checked against those digests, so an
//! export is never made from different weights than the run measured.

use std::path::PathBuf;

use anyhow::Context;
use pareto_core::Recipe;
use pareto_report::RunRecord;

use crate::commands::compress::{WriteArgs, write};
use crate::output;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// A run record (`runs/*.json` of a sweep, or `pareto-run.json` of a studio export).
    pub record: PathBuf,
    /// The source model, when it has moved since the run (default: the path in the record).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub output: WriteArgs,
}

pub fn run(args: &ExportArgs, json: bool) -> anyhow::Result<()> {
    let record = RunRecord::load(&args.record)?;
    let source = args.model.clone().unwrap_or_else(|| PathBuf::from(&record.source.path));
    let model = output::open_model(&source)?;
    let found = pareto_runs::model_files(&model)?;
    for want in &record.source.files {
        match found.iter().find(|f| f.name == want.name) {
            Some(f) if f.sha256 == want.sha256 => {}
            Some(f) => anyhow::bail!(
                "{} is not the model this run was made from: {} has sha256 {}, the record says {}",
                source.display(),
                f.name,
                f.sha256,
                want.sha256
            ),
            None => anyhow::bail!(
                "{} is not the model this run was made from: it has no weight file {} (pass --model)",
                source.display(),
                want.name
            ),
        }
    }
    let origin = format!("run record {}", args.record.display());
    let recipe = Recipe::from_toml(&record.recipe.toml, &origin).with_context(|| origin.clone())?;
    write(&model, &recipe, &args.output, json)
}
