//! The self-contained HTML report: inline CSS and SVG only, no scripts, fonts or network, so it
//! opens offline and can be attached to a review as one file.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::compare::Comparison;
use crate::record::RunRecord;
use crate::svg::{Heat, esc, frontier, heatmap, human_bytes, stacked_bars};
use crate::teams::{TEAM_NOTE, TeamCosts};

const NOT_MEASURED: &str = r#"<span class="nm">not measured</span>"#;

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1100px;color:#111;padding:0 1rem}\
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;font-size:.9rem;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:right}\
td:first-child,th:first-child{text-align:left}tr.dominated td{color:#999}tr.pick td{background:#eef6ff;font-weight:600}\
.banner{background:#fff3cd;border:1px solid #e0c060;padding:.6rem 1rem;margin:1rem 0}.rec{background:#eef6ff;border:1px solid #9cc3ea;padding:.6rem 1rem}\
.nm{color:#a00;font-style:italic}.chart{width:100%;max-width:760px;height:auto}pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:.8rem}\
.est{color:#666;font-size:.85rem}.scroll{overflow-x:auto}.diff{color:#b35900;font-weight:600}";

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| NOT_MEASURED.to_string(), f)
}

pub fn render_html(records: &[RunRecord], cmp: &Comparison) -> String {
    let mut s = String::new();
    let generated = records.iter().map(|r| r.finished_at.as_str()).max().unwrap_or("");
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"><title>Pareto report</title><style>{STYLE}</style></head><body>"
    );
    let source = records.first().map_or("", |r| r.source.path.as_str());
    let _ = write!(s, "<h1>Pareto report: {} variant(s) of {}</h1>", records.len(), esc(source));
    let _ = write!(
        s,
        "<p class=\"est\">Latest run finished {}. Projected costs and latencies are estimates; their assumptions and sources are listed at the end.</p>",
        esc(generated)
    );
    for w in &cmp.warnings {
        let _ = write!(s, "<div class=\"banner\" role=\"alert\">⚠ {}</div>", esc(w));
    }
    let _ = write!(
        s,
        "<h2>Recommendation</h2><div class=\"rec\"><p><strong>{}</strong></p><ul>",
        esc(&cmp.recommendation.headline)
    );
    for r in &cmp.recommendation.reasons {
        let _ = write!(s, "<li>{}</li>", esc(r));
    }
    s.push_str("</ul></div>");
    summary_table(&mut s, records, cmp);
    let _ = write!(s, "<h2>Accuracy vs {}</h2>", esc(&cmp.cost_axis));
    s.push_str("<p class=\"est\">Blue: on the Pareto frontier. Grey: dominated (another variant is cheaper and at least as accurate).</p>");
    let _ = write!(s, "<p class=\"est\">Accuracy axis: {}.</p>", esc(&cmp.accuracy_axis));
    s.push_str(&frontier(&cmp.rows, cmp.cost_axis.contains('$'), &short_axis(&cmp.metric)));
    memory_section(&mut s, records);
    team_section(&mut s, records);
    heatmap_section(&mut s, records);
    sensitivity_section(&mut s, cmp);
    recipe_diff(&mut s, records);
    validation_section(&mut s, records);
    assumptions(&mut s, records);
    s.push_str("</body></html>\n");
    s
}

/// The chart's vertical label: the metric's name and how its change is shown.
fn short_axis(metric: &str) -> String {
    format!("{metric} change (up is better)")
}

fn summary_table(s: &mut String, records: &[RunRecord], cmp: &Comparison) {
    let mut tiers: Vec<String> = Vec::new();
    for r in records {
        for t in r.projection.iter().flat_map(|p| &p.tiers) {
            if !tiers.contains(&t.device_id) {
                tiers.push(t.device_id.clone());
            }
        }
    }
    s.push_str("<h2>Variants</h2><div class=\"scroll\"><table class=\"summary\"><thead><tr><th>variant</th><th>weights</th><th>of original</th><th>accuracy metric</th><th>value</th><th>change</th><th>$/month</th><th>$/1M requests</th><th>decode tok/s (batch 1)</th>");
    for t in &tiers {
        let _ = write!(s, "<th>{}</th>", esc(t));
    }
    s.push_str("</tr></thead><tbody>");
    for (i, (row, rec)) in cmp.rows.iter().zip(records).enumerate() {
        let class = if cmp.recommendation.pick == Some(i) {
            "pick"
        } else if row.dominated {
            "dominated"
        } else {
            ""
        };
        let _ = write!(
            s,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{:.1}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(&row.name),
            human_bytes(row.planned_bytes as f64),
            row.size_ratio * 100.0,
            row.metric.as_deref().map_or_else(|| NOT_MEASURED.to_string(), esc),
            row.value_text().unwrap_or_else(|| NOT_MEASURED.to_string()),
            row.change_text().unwrap_or_else(|| NOT_MEASURED.to_string()),
            opt(row.usd_month, |v| format!("${v:.0}")),
            opt(row.usd_per_1m_requests, |v| format!("${v:.2}")),
            opt(row.decode_tok_s_batch1, |v| format!("{v:.1}")),
        );
        for t in &tiers {
            let cell = rec.projection.iter().flat_map(|p| &p.tiers).find(|x| &x.device_id == t).map_or_else(
                || NOT_MEASURED.to_string(),
                |x| if x.fits { format!("fits ({})", esc(&x.slo)) } else { "does not fit".into() },
            );
            let _ = write!(s, "<td>{cell}</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
}

fn memory_section(s: &mut String, records: &[RunRecord]) {
    s.push_str("<h2>Memory breakdown</h2><p class=\"est\">Weights at the exact bytes of each tensor's format.</p>");
    let bars: Vec<(String, Vec<(String, f64)>)> = records
        .iter()
        .map(|r| {
            let mut by_format: BTreeMap<String, f64> = BTreeMap::new();
            for t in &r.tensors {
                let key = t.format.clone().unwrap_or_else(|| "unchanged".into());
                *by_format.entry(format!("weights {key}")).or_default() += t.planned_bytes as f64;
            }
            (r.recipe.name.clone(), by_format.into_iter().collect())
        })
        .collect();
    s.push_str(&stacked_bars("memory breakdown", &bars, &human_bytes));
    // Serving memory is more than weights; kept as a table so small weights stay visible above.
    s.push_str("<table><thead><tr><th>variant</th><th>weights</th><th>KV cache</th><th>runtime overhead</th><th>total</th><th>fits</th></tr></thead><tbody>");
    for r in records {
        match &r.projection {
            Some(p) => {
                let c = &p.compressed;
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&r.recipe.name),
                    human_bytes(c.weights_bytes),
                    opt(c.kv_cache_bytes, human_bytes),
                    human_bytes(c.overhead_bytes),
                    human_bytes(c.total_memory_bytes),
                    if c.fits { format!("yes ({})", esc(&p.device_id)) } else { format!("no ({})", esc(&p.device_id)) }
                );
            }
            None => {
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td colspan=\"5\">{NOT_MEASURED}: no projection ran</td></tr>",
                    esc(&r.recipe.name)
                );
            }
        }
    }
    s.push_str("</tbody></table>");
}

/// Each variant's monthly cost split by team (measured traffic share), when the scenario has teams.
fn team_section(s: &mut String, records: &[RunRecord]) {
    let Some(split) = TeamCosts::of(records) else { return };
    let _ = write!(s, "<h2>Cost by team</h2><p class=\"est\">{}</p>", esc(TEAM_NOTE));
    let bars: Vec<(String, Vec<(String, f64)>)> =
        split.rows.iter().map(|(r, t)| (r.recipe.name.clone(), t.to_vec())).collect();
    s.push_str(&stacked_bars("cost by team", &bars, &|v| format!("${v:.0}")));
    s.push_str("<table><thead><tr><th>variant</th>");
    for t in &split.teams {
        let _ = write!(s, "<th>{} $/month</th>", esc(t));
    }
    s.push_str("</tr></thead><tbody>");
    for (r, t) in &split.rows {
        let _ = write!(s, "<tr><td>{}</td>", esc(&r.recipe.name));
        for team in &split.teams {
            let cell = TeamCosts::cell(t, team).map_or("–".into(), |v| format!("{v:.2}"));
            let _ = write!(s, "<td>{cell}</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
}

fn heatmap_section(s: &mut String, records: &[RunRecord]) {
    let layers = records.iter().flat_map(|r| r.tensors.iter().filter_map(|t| t.layer)).max().map_or(0, |m| m + 1);
    if layers == 0 {
        return;
    }
    s.push_str("<h2>Per-layer weight error</h2><p class=\"est\">Mean relative weight error of each layer's compressed tensors (a proxy for accuracy, available for any model).</p>");
    let names: Vec<String> = records.iter().map(|r| r.recipe.name.clone()).collect();
    let cells: Vec<Vec<Option<f64>>> = records
        .iter()
        .map(|r| {
            (0..layers)
                .map(|l| {
                    let errs: Vec<f64> =
                        r.tensors.iter().filter(|t| t.layer == Some(l)).filter_map(|t| t.rel_error).collect();
                    (!errs.is_empty()).then(|| errs.iter().sum::<f64>() / errs.len() as f64)
                })
                .collect()
        })
        .collect();
    let rows: Vec<&[Option<f64>]> = cells.iter().map(Vec::as_slice).collect();
    let columns: Vec<String> = (0..layers).map(|l| l.to_string()).collect();
    s.push_str(&heatmap(&Heat {
        rows: &names,
        columns: &columns,
        cells: &rows,
        what: "mean relative error",
        column_prefix: "layer ",
        missing: "untouched",
        label: "per-layer error heatmap",
        column_labels: false,
    }));
}

/// The sensitivity scan: one heatmap per format (rows = layers, columns = tensor kinds, so a
/// layer's row reads across its linears), and the most sensitive tensors listed.
fn sensitivity_section(s: &mut String, cmp: &Comparison) {
    let Some(sens) = &cmp.sensitivity else { return };
    let _ = write!(s, "<h2>Sensitivity scan</h2><p class=\"est\">{}</p>", esc(&sens.caption()));
    for (f, format) in sens.formats.iter().enumerate() {
        let predicted = if sens.predicted(f) { " (predicted from the anchor format and the proxies)" } else { "" };
        let _ = write!(s, "<h3>{}{}</h3>", esc(format), esc(predicted));
        s.push_str(&heatmap(&Heat {
            rows: &sens.layers,
            columns: &sens.kinds,
            cells: &sens.grid(f),
            what: "KL",
            column_prefix: "",
            missing: "not a candidate",
            label: &format!("sensitivity to {format} by layer and tensor"),
            column_labels: true,
        }));
    }
    s.push_str("<table><thead><tr><th>most sensitive</th><th>format</th><th>KL (nats/token)</th></tr></thead><tbody>");
    for (format, row, kind, kl) in sens.most_sensitive(8) {
        let _ = write!(s, "<tr><td>{} {}</td><td>{}</td><td>{kl:.5}</td></tr>", esc(row), esc(kind), esc(format));
    }
    s.push_str("</tbody></table>");
    for n in &sens.notes {
        let _ = write!(s, "<p class=\"est\">{}</p>", esc(n));
    }
}

fn recipe_diff(s: &mut String, records: &[RunRecord]) {
    s.push_str("<h2>Recipe differences</h2>");
    let mut names: Vec<&str> = Vec::new();
    for r in records {
        for t in &r.tensors {
            if !names.contains(&t.name.as_str()) {
                names.push(&t.name);
            }
        }
    }
    let action = |r: &RunRecord, n: &str| {
        r.tensors.iter().find(|t| t.name == n).map_or("absent".to_string(), |t| t.action.clone())
    };
    let differing: Vec<&str> = names
        .into_iter()
        .filter(|n| records.iter().map(|r| action(r, n)).collect::<std::collections::BTreeSet<_>>().len() > 1)
        .collect();
    if differing.is_empty() {
        s.push_str("<p>Every variant applies the same action to every tensor.</p>");
    } else {
        let _ = write!(
            s,
            "<p>{} tensor(s) are treated differently across variants.</p><table><thead><tr><th>tensor</th>",
            differing.len()
        );
        for r in records {
            let _ = write!(s, "<th>{}</th>", esc(&r.recipe.name));
        }
        s.push_str("</tr></thead><tbody>");
        for n in differing.iter().take(200) {
            let _ = write!(s, "<tr><td>{}</td>", esc(n));
            for r in records {
                let _ = write!(s, "<td>{}</td>", esc(&action(r, n)));
            }
            s.push_str("</tr>");
        }
        s.push_str("</tbody></table>");
        if differing.len() > 200 {
            let _ = write!(s, "<p class=\"est\">… {} more (see the JSON records).</p>", differing.len() - 200);
        }
    }
    for r in records {
        let _ = write!(
            s,
            "<details><summary>recipe {}</summary><pre>{}</pre></details>",
            esc(&r.recipe.name),
            esc(&r.recipe.toml)
        );
    }
}

fn validation_section(s: &mut String, records: &[RunRecord]) {
    s.push_str("<h2>Validation</h2>");
    for r in records {
        let _ = write!(s, "<h3>{}</h3>", esc(&r.recipe.name));
        let Some(v) = &r.validation else {
            let _ = write!(s, "<p>{NOT_MEASURED}: no validation ran for this variant.</p>");
            continue;
        };
        let _ = write!(
            s,
            "<p>{} on <code>{}</code> ({} rows, sha256 {}…): {}</p><table><thead><tr><th>metric</th><th>original</th><th>compressed</th><th>delta</th></tr></thead><tbody>",
            esc(&v.task),
            esc(&v.samples.path),
            v.samples.rows,
            esc(v.samples.sha256.get(..12).unwrap_or("")),
            esc(&v.samples.description)
        );
        for m in v.metrics.iter().chain(&v.speed) {
            let _ = write!(
                s,
                "<tr><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&m.name),
                esc(&m.unit),
                opt(m.original, |x| format!("{x:.4}")),
                opt(m.compressed, |x| crate::compare::with_error(x, m.stderr, false)),
                opt(m.delta(), |x| format!("{x:+.4}"))
            );
        }
        s.push_str("</tbody></table>");
    }
}

fn assumptions(s: &mut String, records: &[RunRecord]) {
    s.push_str("<h2>Projection assumptions and sources</h2>");
    let Some(p) = records.iter().find_map(|r| r.projection.as_ref()) else {
        let _ = write!(s, "<p>{NOT_MEASURED}: no projection ran.</p>");
        return;
    };
    let _ = write!(
        s,
        "<p>Device <strong>{}</strong> ({}), scenario <strong>{}</strong>.</p><table><thead><tr><th>quantity</th><th>value</th><th>formula</th><th>sources</th></tr></thead><tbody>",
        esc(&p.device_name),
        esc(&p.device_id),
        esc(&p.scenario)
    );
    for a in &p.assumptions {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.name),
            esc(&a.value),
            esc(&a.formula),
            esc(&a.sources.join("; "))
        );
    }
    s.push_str("</tbody></table>");
}
