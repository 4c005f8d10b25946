//! Markdown for pull-request comments: the recommendation, a compact table and the warnings.

use std::fmt::Write;

use crate::compare::Comparison;
use crate::record::RunRecord;
use crate::svg::human_bytes;
use crate::teams::{TEAM_NOTE, TeamCosts};

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "_not measured_".to_string(), f)
}

/// How every Markdown report begins (also how an existing one is recognised).
pub(crate) const HEADING: &str = "### Pareto: ";

pub fn render_markdown(records: &[RunRecord], cmp: &Comparison) -> String {
    let mut s = String::new();
    let source = records.first().map_or("", |r| r.source.path.as_str());
    let _ = writeln!(s, "{HEADING}{} variant(s) of `{source}`\n", records.len());
    for w in &cmp.warnings {
        let _ = writeln!(s, "> **Warning:** {w}\n");
    }
    let _ = writeln!(s, "**{}**\n", cmp.recommendation.headline);
    for r in &cmp.recommendation.reasons {
        let _ = writeln!(s, "- {r}");
    }
    let _ = writeln!(
        s,
        "\n| variant | weights | of original | metric | change | $/month | $/1M req | frontier |\n|---|---:|---:|---|---:|---:|---:|:---:|"
    );
    for (i, row) in cmp.rows.iter().enumerate() {
        let name = if cmp.recommendation.pick == Some(i) { format!("**{}**", row.name) } else { row.name.clone() };
        let _ = writeln!(
            s,
            "| {name} | {} | {:.1}% | {} | {} | {} | {} | {} |",
            human_bytes(row.planned_bytes as f64),
            row.size_ratio * 100.0,
            row.metric.as_deref().unwrap_or("_not measured_"),
            row.change_text().unwrap_or_else(|| "_not measured_".to_string()),
            opt(row.usd_month, |v| format!("${v:.0}")),
            opt(row.usd_per_1m_requests, |v| format!("${v:.2}")),
            if row.on_frontier {
                "✓"
            } else if row.dominated {
                "dominated"
            } else {
                "–"
            }
        );
    }
    if let Some(split) = TeamCosts::of(records) {
        let _ = writeln!(s, "\n**Cost by team** ($/month). {TEAM_NOTE}\n");
        let _ = writeln!(s, "| variant | {} |", split.teams.join(" | "));
        let _ = writeln!(s, "|---|{}", "---:|".repeat(split.teams.len()));
        for (r, t) in &split.rows {
            let cells: Vec<String> = split
                .teams
                .iter()
                .map(|team| TeamCosts::cell(t, team).map_or("–".into(), |v| format!("${v:.2}")))
                .collect();
            let _ = writeln!(s, "| {} | {} |", r.recipe.name, cells.join(" | "));
        }
    }
    if let Some(sens) = &cmp.sensitivity {
        let _ = writeln!(s, "\n**Sensitivity scan.** {}\n", sens.caption());
        let _ = writeln!(s, "| most sensitive | format | KL (nats/token) |\n|---|---|---:|");
        for (format, row, kind, kl) in sens.most_sensitive(8) {
            let _ = writeln!(s, "| {row} {kind} | {format} | {kl:.5} |");
        }
        let _ = writeln!(s, "\n_Every layer × tensor × format cell is in the HTML report's heatmaps._");
    }
    let _ = writeln!(s, "\n_Costs are projections ({}); see the HTML report for formulas and sources._", cmp.cost_axis);
    s
}
