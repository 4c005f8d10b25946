//! `pareto report`: compare run records and write an offline HTML page, Markdown or JSON.

use std::path::PathBuf;

use anyhow::Context;
use pareto_report::{
    Comparison, Constraint, ReportError, RunRecord, compare_with, render_html, render_markdown, write_report,
};

use crate::output;

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Run records (JSON) written by `pareto sweep`.
    #[arg(required = true)]
    pub records: Vec<PathBuf>,
    /// Output file; its extension picks the format unless --format is given.
    #[arg(long, short)]
    pub out: PathBuf,
    /// html, md or json.
    #[arg(long)]
    pub format: Option<String>,
    /// A sensitivity scan of the same model (`pareto scan`): its heatmaps and most sensitive
    /// tensors go into the report.
    #[arg(long, value_name = "SCAN.json")]
    pub scan: Option<PathBuf>,
    #[command(flatten)]
    pub recommend: RecommendArgs,
}

/// The accuracy axis and the reviewer's constraint on the recommendation (report and sweep).
#[derive(clap::Args, Clone)]
pub struct RecommendArgs {
    /// The accuracy axis of the frontier and the recommendation: a validation metric by name
    /// ("perplexity", "KL divergence", "top-1 agreement", "STS Spearman", ...) or
    /// "weight error (proxy)". Default: each record's primary metric.
    #[arg(long)]
    pub metric: Option<String>,
    /// Largest accuracy loss the recommendation accepts: percent for relative metrics (2 = 2 %),
    /// the metric's unit for KL divergence (nats/token). Default 1 % / 0.01 nats/token.
    #[arg(long, value_name = "LOSS")]
    pub max_loss: Option<f64>,
    /// Recommend the most accurate frontier variant projected at most this many $/month.
    #[arg(long, value_name = "USD")]
    pub max_usd_month: Option<f64>,
    /// Recommend the most accurate frontier variant whose weights take at most this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_bytes: Option<u64>,
}

impl RecommendArgs {
    /// The comparison with this axis and constraint. A metric no record carries is an error here;
    /// `fallback` turns it into a warning and the primary metric (a sweep must not lose its report).
    pub fn compare(&self, records: &[RunRecord], fallback: bool) -> anyhow::Result<Comparison> {
        let metric = self.metric.as_deref();
        // Percent for relative metrics; KL's budget is already in nats/token.
        let relative = !metric.is_some_and(|m| m.contains("KL"));
        let c = Constraint {
            max_loss: self.max_loss.map(|l| if relative { l / 100.0 } else { l }),
            max_usd_month: self.max_usd_month,
            max_bytes: self.max_bytes,
        };
        match compare_with(records, metric, &c) {
            Err(e @ ReportError::UnknownMetric { .. }) if fallback => {
                eprintln!("warning: {e}; the report uses the primary metric");
                Ok(compare_with(records, None, &c)?)
            }
            other => Ok(other?),
        }
    }
}

pub fn run(args: &ReportArgs, json: bool) -> anyhow::Result<()> {
    let records: Vec<RunRecord> = args.records.iter().map(|p| RunRecord::load(p)).collect::<Result<_, _>>()?;
    let mut cmp = args.recommend.compare(&records, false)?;
    if let Some(scan) = &args.scan {
        cmp.sensitivity = Some(pareto_runs::scan::sensitivity_for(scan, &records)?);
    }
    let format = args
        .format
        .clone()
        .or_else(|| args.out.extension().map(|e| e.to_string_lossy().to_lowercase()))
        .unwrap_or_else(|| "html".into());
    let text = match format.as_str() {
        "html" | "htm" => render_html(&records, &cmp),
        "md" | "markdown" => render_markdown(&records, &cmp),
        "json" => serde_json::to_string_pretty(&serde_json::json!({ "comparison": cmp, "records": records }))?,
        other => anyhow::bail!("unknown report format {other:?}; valid: html, md, json"),
    };
    write_report(&args.out, &text, &args.records).with_context(|| format!("writing {}", args.out.display()))?;
    for w in &cmp.warnings {
        eprintln!("warning: {w}");
    }
    if json {
        output::json(&serde_json::json!({ "out": args.out, "comparison": cmp }))?;
    } else {
        println!("{}", cmp.recommendation.headline);
        println!("wrote {}", args.out.display());
    }
    Ok(())
}
