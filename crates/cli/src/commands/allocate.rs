//! `pareto allocate`: the per-tensor formats that minimise the predicted KL divergence (the sum of
//! the scan's single-tensor measurements) within a size budget, written as a recipe every exporter
//! accepts, with the whole predicted frontier.

use std::path::{Path, PathBuf};

use pareto_core::Recipe;
use pareto_core::export::write_small_file;
use pareto_core::recipe::allocate::{Knapsack, allocated_recipe};
use pareto_runs::Scan;
use pareto_runs::scan::{groups, model_key};
use serde_json::json;

use crate::commands::scan::{ScanArgs, measure, save};
use crate::output;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("budget").required(true).args(["max_bytes", "bpw", "like", "fits"])))]
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
    /// With --fits: the traffic scenario (preset or .toml) whose batch and context set the KV cache.
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

/// How the description of every allocated recipe begins (also how `--force` recognises one).
const MARK: &str = "Allocated by pareto allocate";

fn load_scan(path: &Path, model: &pareto_core::Model) -> anyhow::Result<Scan> {
    let bytes = pareto_core::bounded::read(path, pareto_core::bounded::SCAN_CAP, "sensitivity scan")?;
    let s: Scan =
        serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{}: not a pareto scan: {e}", path.display()))?;
    if s.model_key != model_key(model)? {
        anyhow::bail!(
            "{} was measured on other weights than {}: scan this model again",
            path.display(),
            model.root().display()
        );
    }
    Ok(s)
}

/// The weight bytes that fit on `device` beside the scenario's serving memory (projection crate).
fn fits_budget(
    model: &pareto_core::Model,
    device: &str,
    scenario: &str,
    concurrent: Option<u32>,
) -> anyhow::Result<u64> {
    use pareto_projection::{Catalog, ModelShape, Scenario, weight_budget};
    let catalog = Catalog::builtin()?;
    let dev = catalog.get(device)?;
    let mut sc = Scenario::load(scenario)?;
    if let Some(n) = concurrent {
        sc.batching.max_batch = n;
    }
    let shape = model.config().map(|c| ModelShape::from_hf_config(&c.raw)).transpose()?;
    let seqs = sc.batching.max_batch;
    let tokens = sc.input_tokens + sc.output_tokens;
    match weight_budget(shape.as_ref(), dev, &sc) {
        Some(b) => {
            eprintln!(
                "budget: {} of weights fit on {} beside KV cache for {seqs} sequences of {tokens} tokens, activations and runtime overhead",
                output::bytes(b as u64),
                dev.name
            );
            Ok(b as u64)
        }
        None => anyhow::bail!(
            "{} cannot hold even the KV cache for {seqs} sequences of {tokens} tokens with activations and runtime overhead: choose a larger device or fewer --concurrent sequences",
            dev.name
        ),
    }
}

pub fn run(args: &AllocateArgs, json: bool) -> anyhow::Result<()> {
    let model = output::open_model(&args.path)?;
    let base = Recipe::load(&args.base)?;
    let base_plan = base.resolve(&model)?;
    let scan = match &args.scan {
        Some(p) => load_scan(p, &model)?,
        None => {
            let s = measure(&args.path, &args.measure)?;
            if let Some(p) = &args.save_scan {
                save(&s, p, args.force, &model.source_paths())?;
            }
            s
        }
    };
    // The scan decides the tensors the base recipe compresses; the rest are fixed by the base.
    let scanned: Vec<&str> = scan.tensors.iter().map(|t| t.name.as_str()).collect();
    let (mut names, mut fixed) = (Vec::new(), 0u64);
    for t in &base_plan.tensors {
        if t.action.format.is_some() && !t.action.drop && scanned.contains(&t.source_name.as_str()) {
            names.push(t.source_name.clone());
        } else {
            fixed += t.planned_bytes;
        }
    }
    let params = base_plan.totals.params_before;
    let budget = match (args.max_bytes, args.bpw, &args.like, &args.fits) {
        (Some(b), ..) => b,
        (_, Some(bits), ..) => (bits * params as f64 / 8.0).floor() as u64,
        (_, _, Some(r), _) => Recipe::load(r)?.resolve(&model)?.totals.planned_bytes,
        (.., Some(device)) => fits_budget(&model, device, &args.scenario, args.concurrent)?,
        _ => anyhow::bail!("give one budget: --max-bytes, --bpw, --like or --fits"),
    };
    let groups = groups(&scan, &names, !args.no_fuse);
    let ks = Knapsack::new(&groups)?;
    let Some(for_groups) = budget.checked_sub(fixed) else {
        anyhow::bail!(
            "the budget of {budget} bytes is below the {fixed} bytes the base recipe's other tensors take alone (embeddings, norms): raise it or choose a smaller --base"
        );
    };
    let alloc = ks.solve(for_groups).map_err(|e| match e {
        pareto_core::Error::BudgetInfeasible { minimum, .. } => anyhow::anyhow!(
            "the budget of {budget} bytes is below the smallest allocation, {} bytes ({fixed} fixed by the base recipe + {minimum} with every scanned tensor at its cheapest candidate): raise it or add a smaller format",
            fixed + minimum
        ),
        e => e.into(),
    })?;
    let total = fixed + alloc.bytes;
    let bpw = |bytes: u64| bytes as f64 * 8.0 / params as f64;
    let description = format!(
        "{MARK} within {budget} bytes ({:.2} bits/weight): {} tensors in {} groups{}, predicted KL {:.5} nats/token (sum of single-tensor KLs measured on {} tokens of {}); other tensors as {}.",
        bpw(budget),
        names.len(),
        groups.len(),
        if args.no_fuse { "" } else { " (q/k/v and gate/up kept on one format)" },
        alloc.predicted_loss,
        scan.tokens,
        scan.spec.samples.display(),
        base.name
    );
    let recipe = allocated_recipe(&base, &groups, &alloc, &format!("auto-{:.2}bpw", bpw(total)), &description);
    // The recipe must give what was solved: re-plan it and check the size.
    let planned = recipe.resolve(&model)?.totals.planned_bytes;
    if planned != total {
        anyhow::bail!("internal: the allocated recipe plans {planned} bytes, the solver counted {total}");
    }
    let toml = recipe.to_toml()?;
    let is_ours = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|t| Recipe::from_toml(&t, "").ok())
            .is_some_and(|r| r.description.starts_with(MARK))
    };
    let written = write_small_file(
        &args.out,
        toml.as_bytes(),
        args.force,
        &model.source_paths(),
        "a recipe pareto allocate wrote",
        &is_ours,
    )?;
    let frontier = ks.frontier(args.frontier);
    if json {
        let points: Vec<_> = frontier
            .iter()
            .map(|a| json!({ "bytes": fixed + a.bytes, "bpw": bpw(fixed + a.bytes), "predicted_kl": a.predicted_loss }))
            .collect();
        return output::json(&json!({
            "recipe": written, "budget_bytes": budget, "bytes": total, "bpw": bpw(total),
            "predicted_kl": alloc.predicted_loss, "groups": groups.len(), "frontier": points,
            "proxy_spearman": scan.proxy_spearman,
        }));
    }
    println!("predicted frontier (sum of single-tensor KLs; validate the chosen point with pareto eval):");
    let mut points: Vec<(u64, f64, &str)> = frontier.iter().map(|a| (fixed + a.bytes, a.predicted_loss, "")).collect();
    points.push((total, alloc.predicted_loss, "← chosen"));
    points.sort_by_key(|p| p.0);
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|&(b, kl, mark)| vec![output::bytes(b), format!("{:.2}", bpw(b)), output::sig(kl), mark.to_string()])
        .collect();
    output::table(&["size", "bits/weight", "predicted KL", ""], &rows);
    let mut used: Vec<(String, usize)> = Vec::new();
    for (g, &k) in groups.iter().zip(&alloc.picks) {
        let f = g.choices[k].format.clone();
        match used.iter_mut().find(|(x, _)| *x == f) {
            Some((_, n)) => *n += g.tensors.len(),
            None => used.push((f, g.tensors.len())),
        }
    }
    used.sort();
    let mix: Vec<String> = used.iter().map(|(f, n)| format!("{f} ×{n}")).collect();
    println!(
        "chosen: {} ({:.2} bits/weight, budget {}): {}",
        output::bytes(total),
        bpw(total),
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
