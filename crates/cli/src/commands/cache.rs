//! `pareto cache`: exact and semantic cache hit rates measured on the user's own query log, with
//! the estimated wrong-answer share of semantic hits and each tenant's share of the use; `--out`
//! saves the estimate for `pareto project --cache-from`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use pareto_traffic::estimate::{CacheEstimate, EstimateSpec, SearchChoice, bundled_encoder, bundled_pairs};
use pareto_traffic::scenario::{pct, pick_row};
use pareto_traffic::{Cadence, estimate};

use crate::{output, progress};

#[derive(clap::Args)]
pub struct CacheArgs {
    /// The query log: .txt (one query per line), .tsv/.csv with a header (query, timestamp, tenant,
    /// input_tokens, output_tokens), or .jsonl with those keys. Read as a stream, never modified.
    pub log: PathBuf,
    /// A BERT-style sentence encoder folder; default: the bundled all-MiniLM-L6-v2.
    #[arg(long, value_name = "DIR")]
    pub encoder: Option<PathBuf>,
    /// Where the encoder runs: cpu, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Cosine-similarity thresholds for a semantic hit, each in [-1, 1].
    #[arg(long, value_delimiter = ',', default_value = "0.80,0.85,0.90,0.95", allow_hyphen_values = true)]
    pub thresholds: Vec<f32>,
    /// Cache capacities in entries (least recently used evicted).
    #[arg(long, value_delimiter = ',', default_value = "100000")]
    pub capacity: Vec<usize>,
    /// Times to live: seconds, or with a unit (90s, 30m, 12h, 7d); `none` for no expiry. Needs timestamps.
    #[arg(long, value_delimiter = ',', default_value = "none")]
    pub ttl: Vec<String>,
    /// Model-update cadences that empty the cache: never, daily, weekly, monthly (30 days),
    /// quarterly (91 days), or release dates joined by + (2026-01-05+2026-02-01). Needs timestamps.
    #[arg(long, value_delimiter = ',', default_value = "never")]
    pub updates: Vec<String>,
    /// Labelled sentence pairs (sentence1, sentence2, score) for the wrong-answer estimate;
    /// default: the bundled STS-B dev set.
    #[arg(long, value_name = "FILE")]
    pub pairs: Option<PathBuf>,
    /// No wrong-answer estimate.
    #[arg(long, conflicts_with = "pairs")]
    pub no_pairs: bool,
    /// Gold score at or above which a labelled pair asks the same thing (STS-B 0–5: 4.0; a 0/1
    /// duplicate label: 1).
    #[arg(long, default_value_t = 4.0)]
    pub same_at: f64,
    /// Neighbour search: auto (exact up to 20,000 distinct queries, then HNSW), exact or hnsw.
    #[arg(long, default_value = "auto", value_parser = ["auto", "exact", "hnsw"])]
    pub search: String,
    /// Run exact search beside HNSW and report HNSW's pair recall (quadratic: a check, not for large logs).
    #[arg(long)]
    pub check_recall: bool,
    /// Save the estimate (JSON) for `pareto project --cache-from`.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Replace an earlier estimate at `--out` (never any other file).
    #[arg(long)]
    pub force: bool,
    /// Also write a scenario file with the measured rates and tenants, for `--scenario FILE` in
    /// `project`, `sweep` and the studio.
    #[arg(long, value_name = "FILE")]
    pub scenario_out: Option<PathBuf>,
    /// With --scenario-out: the scenario the measured rates go into.
    #[arg(long, default_value = "high-volume-api", requires = "scenario_out")]
    pub base: String,
    /// With --scenario-out: the threshold whose rates are used (default: the highest).
    #[arg(long, requires = "scenario_out")]
    pub use_threshold: Option<f32>,
    /// With --scenario-out: the capacity whose rates are used (default: the only one).
    #[arg(long, requires = "scenario_out")]
    pub use_capacity: Option<usize>,
}

/// `90`, `90s`, `30m`, `12h`, `7d` → seconds; `none` → no expiry.
fn parse_ttl(s: &str) -> anyhow::Result<Option<f64>> {
    let s = s.trim();
    if s == "none" {
        return Ok(None);
    }
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let scale = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => anyhow::bail!("--ttl `{s}`: use seconds or a unit of s, m, h or d (e.g. 12h), or none"),
    };
    let v: f64 = num.parse().with_context(|| format!("--ttl `{s}` is not a number"))?;
    Ok(Some(v * scale))
}

pub fn spec(args: &CacheArgs) -> anyhow::Result<EstimateSpec> {
    let encoder = match &args.encoder {
        Some(e) => e.clone(),
        None => bundled_encoder().context(
            "the bundled all-MiniLM-L6-v2 was not found (scripts/fetch-models.sh fetches it); give --encoder DIR",
        )?,
    };
    let pairs = match (&args.pairs, args.no_pairs) {
        (_, true) => None,
        (Some(p), false) => Some(p.clone()),
        (None, false) => bundled_pairs(),
    };
    Ok(EstimateSpec {
        device: args.device.parse()?,
        thresholds: args.thresholds.clone(),
        capacities: args.capacity.clone(),
        ttls: args.ttl.iter().map(|t| parse_ttl(t)).collect::<anyhow::Result<_>>()?,
        updates: args.updates.iter().map(|u| Cadence::parse(u)).collect::<Result<_, _>>()?,
        pairs,
        same_at: args.same_at,
        search: match args.search.as_str() {
            "exact" => SearchChoice::Exact,
            "hnsw" => SearchChoice::Hnsw,
            _ => SearchChoice::Auto,
        },
        check_recall: args.check_recall,
        ..EstimateSpec::new(&args.log, &encoder)
    })
}

pub fn run(args: &CacheArgs, json: bool) -> anyhow::Result<()> {
    let spec = spec(args)?;
    let sources = pareto_core::export::SourcePaths {
        folders: vec![spec.encoder.clone()],
        files: std::iter::once(spec.log.clone()).chain(spec.pairs.clone()).collect(),
    };
    // Refused before the run, not after minutes of embedding.
    for out in args.out.iter().chain(&args.scenario_out) {
        if out.exists() && !args.force {
            anyhow::bail!(
                "{} exists; give --force to replace an earlier output of `pareto cache`, or another path",
                out.display()
            );
        }
    }
    let mut base = match &args.scenario_out {
        Some(_) => Some(pareto_projection::Scenario::load(&args.base)?),
        None => None,
    };
    let ctx = progress::bar_context();
    let est = estimate(&spec, &ctx)?;
    drop(ctx);
    let written = match &args.out {
        Some(out) => {
            let text = serde_json::to_vec_pretty(&est)?;
            let is_estimate = |p: &Path| {
                std::fs::read(p).ok().and_then(|b| serde_json::from_slice::<CacheEstimate>(&b).ok()).is_some()
            };
            Some(pareto_core::export::write_small_file(
                out,
                &text,
                args.force,
                &sources,
                "a pareto cache estimate",
                &is_estimate,
            )?)
        }
        None => None,
    };
    let scenario_written = match (&args.scenario_out, base.as_mut()) {
        (Some(path), Some(sc)) => {
            let row = pick_row(&est, args.use_threshold, args.use_capacity)?;
            let used = pareto_traffic::scenario::apply(&est, row, sc, &est.log)?;
            sc.name = format!("{}-measured", sc.name);
            sc.description = format!("{} — {used}", sc.description);
            let is_scenario =
                |p: &Path| pareto_projection::Scenario::from_file(p).is_ok_and(|s| s.cache.measured_by.is_some());
            Some(pareto_core::export::write_small_file(
                path,
                sc.to_toml()?.as_bytes(),
                args.force,
                &sources,
                "a measured scenario",
                &is_scenario,
            )?)
        }
        _ => None,
    };
    if json {
        return output::json(&est);
    }
    print_estimate(&est);
    if let Some(w) = scenario_written {
        println!("wrote {} (use it with `--scenario {}`)", w.display(), w.display());
    }
    if let Some(w) = written {
        println!("wrote {} (use it with `pareto project --cache-from`)", w.display());
    }
    Ok(())
}

/// Puts an estimate's measured hit rates (and tenants) into a scenario; returns what was used.
pub fn apply(
    scenario: &mut pareto_projection::Scenario,
    file: &Path,
    threshold: Option<f32>,
    capacity: Option<usize>,
) -> anyhow::Result<String> {
    let bytes = pareto_core::bounded::read(file, pareto_core::bounded::SCAN_CAP, "a cache estimate")?;
    let est: CacheEstimate = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a `pareto cache --out` estimate", file.display()))?;
    let row = pick_row(&est, threshold, capacity).with_context(|| file.display().to_string())?;
    Ok(pareto_traffic::scenario::apply(&est, row, scenario, &file.display().to_string())?)
}

fn print_estimate(est: &CacheEstimate) {
    println!(
        "{}: {} requests, {} distinct after normalisation{}",
        est.log,
        est.requests,
        est.distinct_queries,
        match (&est.first_request, &est.last_request) {
            (Some(a), Some(b)) => format!(", {a} to {b}"),
            _ => String::new(),
        }
    );
    let rows: Vec<Vec<String>> = est
        .rows
        .iter()
        .map(|r| {
            vec![
                format!("{:.2}", r.threshold),
                r.capacity.to_string(),
                r.ttl_seconds.map_or("none".into(), |t| format!("{t} s")),
                r.updates.clone(),
                pct(r.exact_hit_rate),
                pct(r.semantic_hit_rate),
                r.wrong_answer_share.map_or("-".into(), pct),
                r.wrong_answer_rate.map_or("-".into(), pct),
            ]
        })
        .collect();
    output::table(
        &[
            "threshold",
            "capacity",
            "ttl",
            "updates",
            "exact hits",
            "semantic hits",
            "wrong (of sem.)",
            "wrong (of all)",
        ],
        &rows,
    );
    if let Some(q) = &est.quality {
        println!(
            "labelled pairs: {} ({} pairs, {} with the same intent at gold ≥ {})",
            q.pairs.source, q.pairs.pairs, q.pairs.same_intent, q.pairs.same_at
        );
        let rows: Vec<Vec<String>> = q
            .thresholds
            .iter()
            .map(|t| {
                vec![
                    format!("{:.2}", t.threshold),
                    t.pairs_above.to_string(),
                    t.precision.map_or("-".into(), pct),
                    pct(t.recall),
                ]
            })
            .collect();
        output::table(&["threshold", "pairs above", "precision", "recall"], &rows);
    }
    if !est.tenants.is_empty() {
        // Each team's hits in the row a projection would use by default (the strictest threshold).
        let row = pareto_traffic::scenario::pick_row(est, None, None).ok().or(est.rows.last());
        let rows: Vec<Vec<String>> = est
            .tenants
            .iter()
            .map(|t| {
                let hits = row.and_then(|r| r.tenants.iter().find(|h| h.name == t.name));
                vec![
                    t.name.clone(),
                    t.requests.to_string(),
                    t.input_tokens.to_string(),
                    t.output_tokens.to_string(),
                    pct(t.share),
                    hits.map_or("-".into(), |h| pct(h.exact_hit_rate)),
                    hits.map_or("-".into(), |h| pct(h.semantic_hit_rate)),
                ]
            })
            .collect();
        if let Some(r) = row {
            println!(
                "tenants (hits at threshold {:.2}, capacity {}, one cache shared by all):",
                r.threshold, r.capacity
            );
        }
        output::table(
            &["tenant", "requests", "input tokens", "output tokens", "share", "exact hits", "semantic hits"],
            &rows,
        );
    }
    let truncated: u64 = est.rows.iter().map(|r| r.truncated_lookups).max().unwrap_or(0);
    if truncated > 0 {
        crate::note!(
            "note: up to {truncated} lookups reached the end of a capped neighbour list; semantic rates are lower bounds by that many requests"
        );
    }
    println!(
        "embedded {} distinct queries in {:.1} s ({:.0}/s on {}); search: {}{}; total {:.1} s",
        est.distinct_queries,
        est.embedding_seconds,
        est.embedded_per_second,
        est.device,
        est.search.used,
        est.search.pair_recall.map_or(String::new(), |r| format!(" (pair recall vs exact {r:.4})")),
        est.seconds
    );
    for m in &est.method {
        crate::note!("method: {m}");
    }
}
