//! `pareto project`: memory, latency, throughput and monthly cost before and after compression.

use std::path::PathBuf;

use anyhow::{Context, bail};
use pareto_core::Recipe;
use pareto_core::plan_projection::{device_id, project_plan_with};
use pareto_projection::{Catalog, Efficiency, Quantity, Scenario};

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
    /// The serving engine whose fitted figures the decode speeds use (llama.cpp, vllm,
    /// tensorrt-llm, sglang); default: the scenario's.
    #[arg(long)]
    pub engine: Option<String>,
    /// A .toml or .csv file that adds or overrides hardware rows (prices change).
    #[arg(long)]
    pub hardware: Option<PathBuf>,
    /// Print projected vs measured batch-1 decode for each row of a reference CSV.
    #[arg(long)]
    pub reference_points: Option<PathBuf>,
    /// Fit the decode model to published measurements (the committed set, or a CSV in its schema)
    /// and report its leave-one-source-out error by device class, engine and batch regime.
    #[arg(long, value_name = "CSV", num_args = 0..=1, default_missing_value = "builtin")]
    pub fidelity: Option<PathBuf>,
    /// With --fidelity: list every held-out point, not only those outside ±30 %.
    #[arg(long)]
    pub all_points: bool,
    /// List the hardware catalog and exit.
    #[arg(long)]
    pub list_devices: bool,
    /// Cache hit rates (and tenants' measured shares) from a `pareto cache --out` estimate instead
    /// of the scenario's assumptions.
    #[arg(long, value_name = "ESTIMATE")]
    pub cache_from: Option<PathBuf>,
    /// With --cache-from: the semantic threshold whose rates apply (default: the estimate's highest).
    #[arg(long, requires = "cache_from")]
    pub cache_threshold: Option<f32>,
    /// With --cache-from: the cache capacity whose rates apply (default: the estimate's only one).
    #[arg(long, requires = "cache_from")]
    pub cache_capacity: Option<usize>,
    /// Calibrate the decode model on the device from a `pareto eval --speed [--batches ...] --json`
    /// report measured on it (give the device with --device, and --hardware for a machine the
    /// catalog lacks): bandwidth efficiency from the batch-1 decode speed, per-sequence cost from
    /// the batched sweep.
    #[arg(long, value_name = "EVAL_JSON")]
    pub calibration: Option<PathBuf>,
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
    if let Some(csv) = &args.fidelity {
        return fidelity(csv, args.all_points, json);
    }
    let Some(path) = &args.path else { bail!("give a model path (or --reference-points <csv>)") };
    let model = output::open_model(path)?;
    let mut scenario = Scenario::load(&args.scenario)?;
    if let Some(e) = &args.engine {
        scenario.engine = Some(e.clone());
    }
    if let Some(file) = &args.cache_from {
        let used = crate::commands::cache::apply(&mut scenario, file, args.cache_threshold, args.cache_capacity)?;
        crate::note!("{used}");
    }
    let recipe = match &args.recipe {
        Some(r) => Recipe::load(r)?,
        None => Recipe::from_toml("name = \"original\"\n", "original")?,
    };
    let plan = recipe.resolve(&model)?;
    let efficiency = match &args.calibration {
        Some(file) => {
            let device = catalog.get(&device_id(&scenario, args.device.as_deref()))?;
            Some(calibrate(file, &model, &plan, device, json)?)
        }
        None => None,
    };
    let projection = project_plan_with(
        &model,
        &plan,
        &catalog,
        &scenario,
        args.device.as_deref(),
        args.recipe.is_some(),
        efficiency,
    )?;
    let device = &projection.device;
    if json {
        return output::json(&projection);
    }
    // An estimate with a range reads "value unit (lo–hi)": where 80 % of held-out measurements land.
    let q = |x: Option<&Quantity>| {
        x.map_or("-".to_string(), |q| match q.range {
            Some([lo, hi]) => format!("{} {} ({}–{})", output::sig(q.value), q.unit, output::sig(lo), output::sig(hi)),
            None => format!("{} {}", output::sig(q.value), q.unit),
        })
    };
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
    let priced = projection.compressed.as_ref().unwrap_or(&projection.original);
    if !priced.tenants.is_empty() {
        println!("cost by team ({}; by measured traffic, not headcount):", priced.label);
        let rows: Vec<Vec<String>> = priced
            .tenants
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    format!("{:.1} %", t.traffic_share.value * 100.0),
                    format!("{} {}", output::sig(t.usd_month.value), t.usd_month.unit),
                ]
            })
            .collect();
        output::table(&["team", "traffic share", "$/month"], &rows);
    }
    if let Some(b) = &projection.latency_boundary {
        println!("real-time vs batch: {}", b.verdict);
        crate::note!("note: the batch side assumes {}", b.batch_terms.join("; "));
    }
    for n in &projection.notes {
        crate::note!("note: {n}");
    }
    crate::note!("(--json carries every number with its formula and sources)");
    Ok(())
}

/// The decoder speed report in `file` (`pareto eval --speed --json`), measured on `device`: the
/// efficiency fitted to it (`pareto_runs::measured::fit`), and its points beside the projection,
/// printed unless `json`.
fn calibrate(
    file: &std::path::Path,
    model: &pareto_core::Model,
    plan: &pareto_core::recipe::Plan,
    device: &pareto_projection::Device,
    json: bool,
) -> anyhow::Result<Efficiency> {
    let bytes = pareto_core::bounded::read(file, pareto_core::bounded::SCAN_CAP, "a speed report")?;
    let report: pareto_eval::EvalReport = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a `pareto eval --speed --json` report", file.display()))?;
    let Some(pareto_eval::compare::SpeedReport::Decoder { original, .. }) = &report.speed else {
        bail!(
            "{} has no decoder speed measurement: run `pareto eval MODEL --speed --json` on the device",
            file.display()
        );
    };
    let source = file.display().to_string();
    let (eff, said) = pareto_runs::measured::fit(original, model, plan, device, &source)?;
    crate::note!("{said}");
    if !json {
        let points = pareto_runs::measured::points(original, model, plan, device, Some(&eff))?;
        let tok = |v: Option<f64>| v.map_or("-".into(), |v| format!("{} tok/s", output::sig(v)));
        let rows: Vec<Vec<String>> = points
            .iter()
            .map(|p| {
                vec![
                    p.batch.to_string(),
                    format!("{} tok/s", output::sig(p.measured_tok_s)),
                    tok(p.projected_tok_s),
                    tok(p.calibrated_tok_s),
                ]
            })
            .collect();
        println!("decode measured on this machine vs projected for {} (F32 weights, as measured):", device.name);
        output::table(&["batch", "measured", "projected (defaults)", "projected (calibrated)"], &rows);
    }
    Ok(eff)
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

fn fidelity(csv: &std::path::Path, all: bool, json: bool) -> anyhow::Result<()> {
    use pareto_projection::fidelity::{MEASUREMENTS_CSV, leave_one_source_out, parse};
    let text = if csv.as_os_str() == "builtin" {
        MEASUREMENTS_CSV.to_string()
    } else {
        pareto_core::bounded::read_text(csv, pareto_core::bounded::INDEX_CAP, "measurements CSV")
            .with_context(|| format!("reading {}", csv.display()))?
    };
    let data = parse(&text)?;
    let v = leave_one_source_out(&data);
    if json {
        return output::json(&v);
    }
    let pct = |x: f64| format!("{:+.0}%", x * 100.0);
    let abs = |x: f64| format!("{:.0}%", x * 100.0);
    let rows: Vec<Vec<String>> = std::iter::once(&v.in_sample)
        .chain(std::iter::once(&v.overall))
        .chain(&v.by_class)
        .chain(&v.by_engine)
        .chain(&v.by_regime)
        .map(|s| {
            vec![
                s.group.clone(),
                s.points.to_string(),
                abs(s.median_abs),
                abs(s.p90_abs),
                format!("{:.0}%", s.within_30 * 100.0),
                pct(s.median_signed),
                abs(s.default_median_abs),
                pct(s.default_median_signed),
            ]
        })
        .collect();
    println!(
        "leave-one-source-out on {} measurements from {} sources (+ = projected too optimistic):",
        data.len(),
        v.sources()
    );
    output::table(
        &[
            "group",
            "points",
            "median |err|",
            "p90 |err|",
            "within ±30%",
            "median err",
            "defaults |err|",
            "defaults err",
        ],
        &rows,
    );
    let shown: Vec<Vec<String>> = v
        .points
        .iter()
        .filter(|p| all || p.error().abs() > 0.3)
        .map(|p| {
            vec![
                p.id.clone(),
                p.device.clone(),
                p.engine.to_string(),
                p.regime.to_string(),
                format!("{} {}", p.model, p.format),
                output::sig(p.measured),
                output::sig(p.projected),
                pct(p.error()),
                p.source_id.clone(),
            ]
        })
        .collect();
    if !shown.is_empty() {
        println!(
            "\n{}:",
            if all { "every held-out point" } else { "held-out points outside ±30 % (not explained by the model)" }
        );
        output::table(
            &["id", "device", "engine", "regime", "model", "measured", "projected", "error", "source"],
            &shown,
        );
    }
    if !v.inconsistent.is_empty() {
        println!("\nleft out, no roofline can explain them:");
        for (id, source, why) in &v.inconsistent {
            println!("  {id} ({source}): {why}");
        }
    }
    println!("\nfitted on all points: {}", serde_json::to_string(&v.fitted)?);
    Ok(())
}
