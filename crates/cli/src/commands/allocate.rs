//! `pareto allocate`: the per-tensor formats that minimise the predicted KL divergence (the sum of
//! the scan's single-tensor measurements) within a size budget, written as a recipe every exporter
//! accepts, with the whole predicted frontier.

use std::path::PathBuf;

use pareto_core::Recipe;
use pareto_core::export::write_small_file;
use pareto_core::plan_projection;
use pareto_core::recipe::allocate::Knapsack;
use pareto_projection::{Catalog, Scenario};
use pareto_runs::allocate::{Allocated, Budget, Problem, Target, is_allocated_recipe, load_scan};
use serde_json::json;

use crate::commands::scan::{ScanArgs, measure, save};
use crate::output;

#[derive(clap::Args)]
#[command(group(
    clap::ArgGroup::new("budget").required(true).args(["max_bytes", "bpw", "like", "fits", "max_usd_month", "min_decode_tok_s"])
))]
pub struct AllocateArgs {
    /// The source model (a LLaMA-style decoder folder); never modified.
    pub path: PathBuf,
    /// Budget: total stored bytes of the model's tensors.
    #[arg(long, value_name = "BYTES")]
    pub max_bytes: Option<u64>,
    /// Budget: bits per weight over all of the model's parameters (stored bytes × 8 / parameters).
    #[arg(long, value_name = "BITS")]
    pub bpw: Option<f64>,
    /// Budget: the size this recipe or preset gives the model (e.g. gguf-q4_k_m).
    #[arg(long, value_name = "RECIPE")]
    pub like: Option<String>,
    /// Budget: what fits on this catalog device (`pareto project --list-devices`) beside the
    /// scenario's KV cache, activations and runtime overhead.
    #[arg(long, value_name = "DEVICE")]
    pub fits: Option<String>,
    /// Budget: projected serving cost at most this many $/month on --device under --scenario (the
    /// most accurate allocation whose projection meets it).
    #[arg(long, value_name = "USD")]
    pub max_usd_month: Option<f64>,
    /// Budget: projected batch-1 decode of at least this many tokens/s on --device.
    #[arg(long, value_name = "TOK_S")]
    pub min_decode_tok_s: Option<f64>,
    /// With --max-usd-month or --min-decode-tok-s: the catalog device (default: the scenario's).
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    /// With --fits, --max-usd-month or --min-decode-tok-s: the traffic scenario (preset or .toml)
    /// whose batch and context set the KV cache, and whose traffic sets the cost.
    #[arg(long, default_value = "high-volume-api", value_name = "SCENARIO")]
    pub scenario: String,
    /// With --fits: concurrent sequences to hold KV cache for (default: the scenario's max batch).
    #[arg(long, value_name = "N")]
    pub concurrent: Option<u32>,
    /// A saved `pareto scan` to allocate from, instead of measuring now.
    #[arg(long, value_name = "FILE", conflicts_with = "samples")]
    pub scan: Option<PathBuf>,
    #[command(flatten)]
    pub measure: ScanArgs,
    /// Also save the measured scan here (for more budgets without measuring again).
    #[arg(long, value_name = "FILE")]
    pub save_scan: Option<PathBuf>,
    /// What the tensors the scan does not cover get (embeddings, norms, a tied head), and the rules
    /// the allocation is put in front of.
    #[arg(long, default_value = "gguf-q4_k_m", value_name = "RECIPE")]
    pub base: String,
    /// Let q/k/v and gate/up take different formats (GGUF allows it; vLLM's fused layers do not).
    #[arg(long)]
    pub no_fuse: bool,
    /// Points of the predicted frontier to print.
    #[arg(long, default_value_t = 12, value_name = "N")]
    pub frontier: usize,
    /// Where to write the recipe (TOML; `pareto compress --recipe` takes it).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Replace an earlier allocated recipe at `--out` (never any other file).
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &AllocateArgs, json: bool) -> anyhow::Result<()> {
    let model = output::open_model(&args.path)?;
    let base = Recipe::load(&args.base)?;
    let scan = match &args.scan {
        Some(p) => load_scan(p, &model)?,
        None => {
            let s = measure(model.root(), &args.measure)?;
            if let Some(p) = &args.save_scan {
                save(&s, p, args.force, &model.source_paths())?;
            }
            s
        }
    };
    let problem = Problem::new(&scan, &model, &base, !args.no_fuse)?;
    let ks = Knapsack::new(&problem.groups)?;
    let target = match (args.max_usd_month, args.min_decode_tok_s) {
        (Some(usd), _) => Some(Target::UsdMonth(usd)),
        (_, Some(tok_s)) => Some(Target::DecodeTokS(tok_s)),
        _ => None,
    };
    let (budget, chosen) = if let Some(target) = target {
        let scenario = Scenario::load(&args.scenario)?;
        let catalog = Catalog::builtin()?;
        let (chosen, value) =
            problem.solve_for_target(&ks, &scan, &model, target, &catalog, &scenario, args.device.as_deref())?;
        crate::note!(
            "target: {} on {} ({}); the chosen allocation projects {}",
            target.show(target.limit()),
            plan_projection::device_id(&scenario, args.device.as_deref()),
            args.scenario,
            target.show(value)
        );
        (chosen.bytes, chosen)
    } else {
        let budget = match (args.max_bytes, args.bpw, &args.like, &args.fits) {
            (Some(b), ..) => Budget::Bytes(b),
            (_, Some(bits), ..) => Budget::Bpw(bits),
            (_, _, Some(r), _) => Budget::Like(r.clone()),
            (.., Some(device)) => {
                Budget::Fits { device: device.clone(), scenario: args.scenario.clone(), concurrent: args.concurrent }
            }
            _ => anyhow::bail!(
                "give one budget: --max-bytes, --bpw, --like, --fits, --max-usd-month or --min-decode-tok-s"
            ),
        };
        let budget = problem.budget_bytes(&model, &budget)?;
        if args.fits.is_some() {
            crate::note!(
                "budget: {} of weights fit on {} beside the scenario's KV cache, activations and runtime overhead",
                output::bytes(budget),
                args.fits.as_deref().unwrap_or("")
            );
        }
        (budget, problem.solve(&ks, budget, &scan)?)
    };
    // The recipe must give what was solved: re-plan it and check the size.
    let planned = chosen.recipe.resolve(&model)?.totals.planned_bytes;
    if planned != chosen.bytes {
        anyhow::bail!("internal: the allocated recipe plans {planned} bytes, the solver counted {}", chosen.bytes);
    }
    let toml = chosen.recipe.to_toml()?;
    let written = write_small_file(
        &args.out,
        toml.as_bytes(),
        args.force,
        &model.source_paths(),
        "a recipe pareto allocate wrote",
        &is_allocated_recipe,
    )?;
    let frontier = problem.frontier(&ks, args.frontier, &scan);
    if json {
        return output::json(&json!({
            "recipe": written, "budget_bytes": budget, "bytes": chosen.bytes, "bpw": chosen.bpw,
            "predicted_kl": chosen.predicted_kl, "groups": problem.groups.len(), "frontier": frontier,
            "proxy_spearman": scan.proxy_spearman,
        }));
    }
    println!("predicted frontier (sum of single-tensor KLs; validate the chosen point with pareto eval):");
    let mut points: Vec<(&Allocated, &str)> = frontier.iter().map(|a| (a, "")).collect();
    points.push((&chosen, "← chosen"));
    points.sort_by_key(|p| p.0.bytes);
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|(a, mark)| {
            vec![output::bytes(a.bytes), format!("{:.2}", a.bpw), output::sig(a.predicted_kl), mark.to_string()]
        })
        .collect();
    output::table(&["size", "bits/weight", "predicted KL", ""], &rows);
    let mut used: Vec<(String, usize)> = Vec::new();
    for rule in chosen.recipe.rules.iter().take(chosen.recipe.rules.len() - base.rules.len()) {
        if let Some(q) = &rule.action.quantize {
            used.push((q.format.clone(), rule.targets.len()));
        }
    }
    let mix: Vec<String> = used.iter().map(|(f, n)| format!("{f} ×{n}")).collect();
    println!(
        "chosen: {} ({:.2} bits/weight, budget {}): {}",
        output::bytes(chosen.bytes),
        chosen.bpw,
        output::bytes(budget),
        mix.join(", ")
    );
    println!(
        "wrote {} (pareto compress {} --recipe {} --format gguf --out ...)",
        written.display(),
        args.path.display(),
        written.display()
    );
    Ok(())
}
