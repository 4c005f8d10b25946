//! `pareto plan`: the per-tensor plan of a recipe and its projected sizes, without doing the work.

use std::path::PathBuf;

use pareto_core::Recipe;
use pareto_core::compress::check_imatrix;
use pareto_core::export::gguf::imatrix::Imatrix;

use crate::output;

#[derive(clap::Args)]
pub struct PlanArgs {
    pub path: PathBuf,
    /// A preset name (see `pareto formats`) or a recipe .toml file.
    #[arg(long, short)]
    pub recipe: String,
    #[arg(long, default_value_t = 40)]
    pub limit: usize,
    /// The importance matrix `pareto compress --imatrix` will be given: the plan then applies the
    /// rules that hold only with one (llama.cpp's Q4_0/Q5_0 guard of the first ffn_down layers) and
    /// checks that the matrix belongs to this model.
    #[arg(long, value_name = "FILE")]
    pub imatrix: Option<PathBuf>,
}

pub fn run(args: &PlanArgs, json: bool) -> anyhow::Result<()> {
    let model = output::open_model(&args.path)?;
    let recipe = Recipe::load(&args.recipe)?;
    // (entries, weights without one): every entry names a weight of the model once checked.
    let coverage = match &args.imatrix {
        Some(path) => {
            let m = Imatrix::read(path)?;
            Some((m.entries.len(), check_imatrix(&model, &m)?.len()))
        }
        None => None,
    };
    let plan = recipe.resolve_for(&model, args.imatrix.is_some())?;
    if json {
        return output::json(&plan);
    }
    let rows: Vec<Vec<String>> = plan
        .tensors
        .iter()
        .take(args.limit)
        .map(|t| {
            vec![
                t.name.clone(),
                format!("{:?}", t.shape),
                t.action.label(),
                output::bytes(t.source_bytes),
                output::bytes(t.planned_bytes),
                t.notes.join("; "),
            ]
        })
        .collect();
    output::table(&["tensor", "shape", "action", "before", "after", "notes"], &rows);
    print_totals(&plan.totals);
    if let (Some(path), Some((covered, uncovered))) = (&args.imatrix, coverage) {
        println!(
            "importance matrix {}: {covered} weights covered, {uncovered} without an entry (quantized without it)",
            path.display()
        );
    }
    Ok(())
}

pub fn print_totals(t: &pareto_core::recipe::PlanTotals) {
    let ratio = if t.source_bytes == 0 { 0.0 } else { t.planned_bytes as f64 / t.source_bytes as f64 };
    println!(
        "{} tensors: {} quantized, {} pruned, {} kept, {} dropped, {} fallbacks",
        t.tensors, t.quantized, t.pruned, t.kept, t.dropped, t.fallbacks
    );
    println!(
        "weights: {} → {} ({:.1}% of the original) as the packed formats store them",
        output::bytes(t.source_bytes),
        output::bytes(t.planned_bytes),
        ratio * 100.0
    );
}
