//! `pareto report`: compare run records and write an offline HTML page, Markdown or JSON.

use std::path::PathBuf;

use anyhow::Context;
use pareto_report::{RunRecord, compare_on, render_html, render_markdown, write_report};

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
    /// The accuracy axis of the frontier and the recommendation: a validation metric by name
    /// ("perplexity", "KL divergence", "top-1 agreement", "STS Spearman", ...) or
    /// "weight error (proxy)". Default: each record's primary metric.
    #[arg(long)]
    pub metric: Option<String>,
}

pub fn run(args: &ReportArgs, json: bool) -> anyhow::Result<()> {
    let records: Vec<RunRecord> = args.records.iter().map(|p| RunRecord::load(p)).collect::<Result<_, _>>()?;
    let cmp = compare_on(&records, args.metric.as_deref())?;
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
