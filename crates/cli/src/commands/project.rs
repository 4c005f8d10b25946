//! `pareto project`: memory, latency, throughput and monthly cost before and after compression.

use std::path::PathBuf;

use anyhow::{Context, bail};
use pareto_core::Recipe;
use pareto_core::plan_projection::project_plan;
use pareto_projection::{Catalog, Quantity, Scenario};

use crate::output;

#[derive(clap::Args)]
pub struct ProjectArgs {
    /// The model (folder or file). Not needed with --reference-points.
    pub path: Option<PathBuf>,
    /// A preset or recipe file; without it only the original is projected.
    #[arg(long, short)]
    pub recipe: Option<String>,
    /// A hardware catalog id (`pareto project --list-devices`); default: the scenario's.
    #[arg(long)]
    pub device: Option<String>,
    /// A traffic scenario preset (high-volume-api, enterprise-batch, edge, multi-tenant) or .toml file.
    #[arg(long, default_value = "high-volume-api")]
    pub scenario: String,
    /// A .toml or .csv file that adds or overrides hardware rows (prices change).
    #[arg(long)]
    pub hardware: Option<PathBuf>,
    /// Print projected vs measured batch-1 decode for each row of a reference CSV.
    #[arg(long)]
    pub reference_points: Option<PathBuf>,
    /// List the hardware catalog and exit.
    #[arg(long)]
    pub list_devices: bool,
}

pub fn run(args: &ProjectArgs, json: bool) -> anyhow::Result<()> {
    let catalog = match &args.hardware {
        Some(p) => Catalog::with_overrides(p)?,
        None => Catalog::builtin()?,
    };
    if args.list_devices {
        if json {
            return output::json(&catalog.ids());
        }
        for id in catalog.ids() {
            let d = catalog.get(&id)?;
            println!("{id:<24} {}", d.name);
        }
        return Ok(());
    }
    if let Some(csv) = &args.reference_points {
        return reference_points(csv, json);
    }
    let Some(path) = &args.path else { bail!("give a model path (or --reference-points <csv>)") };
    let model = output::open_model(path)?;
    let scenario = Scenario::load(&args.scenario)?;
    let recipe = match &args.recipe {
        Some(r) => Recipe::load(r)?,
        None => Recipe::from_toml("name = \"original\"\n", "original")?,
    };
    let plan = recipe.resolve(&model)?;
    let projection = project_plan(&model, &plan, &catalog, &scenario, args.device.as_deref(), args.recipe.is_some())?;
    let device = &projection.device;
    if json {
        return output::json(&projection);
    }
    let q = |x: Option<&Quantity>| x.map_or("-".to_string(), |q| format!("{} {}", output::sig(q.value), q.unit));
    let mut rows = Vec::new();
    for p in std::iter::once(&projection.original).chain(projection.compressed.as_ref()) {
        rows.push(vec![
            p.label.clone(),
            output::bytes(p.memory.weights.value as u64),
            if p.memory.fits { "fits".into() } else { "does not fit".into() },
            q(p.latency.decode_tok_s_batch1.as_ref()),
            q(p.cost.as_ref().map(|c| &c.total_usd_month)),
            q(p.cost.as_ref().map(|c| &c.usd_per_1m_requests)),
            format!("{:?}", p.slo.verdict),
        ]);
    }
    println!("estimates for {} on {} ({}):", model.root().display(), device.name, args.scenario);
    output::table(&["plan", "weights", "memory", "decode batch 1", "$/month", "$/1M requests", "SLO"], &rows);
    if let Some(c) = &projection.comparison {
        println!("{}", c.summary);
    }
    if let Some(r) = &projection.right_sizing {
        println!("right-sizing: {}", r.verdict);
    }
    for n in &projection.notes {
        eprintln!("note: {n}");
    }
    eprintln!("(--json carries every number with its formula and sources)");
    Ok(())
}

fn reference_points(csv: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let text = pareto_core::bounded::read_text(csv, pareto_core::bounded::INDEX_CAP, "reference-points CSV")
        .with_context(|| format!("reading {}", csv.display()))?;
    let rows = pareto_projection::reference_points(&text)?;
    if json {
        return output::json(&rows);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.batch.to_string(),
                format!("{:.2}", r.measured_tok_s),
                format!("{:.2}", r.projected_tok_s),
                format!("{:.2}", r.ratio),
            ]
        })
        .collect();
    output::table(&["id", "batch", "measured_tok_s", "projected_tok_s", "ratio"], &table);
    Ok(())
}
