#![allow(clippy::unwrap_used)]
//! Comparison logic, rendering and the record schema.

use pareto_report::*;

fn record(name: &str, bytes: u64, ppl: Option<f64>, usd: Option<f64>, model_hash: &str) -> RunRecord {
    RunRecord {
        schema_version: SCHEMA_VERSION,
        id: format!("id-{name}"),
        tool: ToolInfo { name: "pareto".into(), version: "0.1.0".into() },
        started_at: "2026-11-28T10:00:00Z".into(),
        finished_at: "2026-11-28T10:01:00Z".into(),
        device: "cpu".into(),
        source: SourceModel {
            path: "models/m".into(),
            architecture: Some("llama".into()),
            parameters: 1000,
            bytes: 4000,
            files: vec![FileHash { name: "model.safetensors".into(), bytes: 4100, sha256: model_hash.into() }],
            config: None,
        },
        recipe: RecipeInfo { name: name.into(), description: String::new(), toml: format!("name = \"{name}\"\n") },
        totals: Totals {
            tensors: 2,
            quantized: 1,
            pruned: 0,
            kept: 1,
            dropped: 0,
            params_before: 1000,
            params_after: 1000,
            source_bytes: 4000,
            planned_bytes: bytes,
        },
        tensors: vec![TensorRecord {
            name: "model.layers.0.mlp.up_proj.weight".into(),
            layer: Some(0),
            role: "mlp".into(),
            action: name.into(),
            format: Some(name.into()),
            source_bytes: 4000,
            planned_bytes: bytes,
            rel_error: Some(0.01),
            snr_db: Some(40.0),
            cosine: Some(0.999),
            sparsity: Some(0.0),
        }],
        artifact: None,
        validation: ppl.map(|p| Validation {
            task: "perplexity".into(),
            samples: SampleSet { path: "s.txt".into(), sha256: "ab".repeat(32), rows: 100, description: "test".into() },
            primary: "perplexity".into(),
            metrics: vec![Metric {
                name: "perplexity".into(),
                unit: "ppl".into(),
                original: Some(4.0),
                compressed: Some(p),
                higher_is_better: false,
                stderr: None,
            }],
            speed: vec![],
        }),
        projection: usd.map(|u| ProjectionRecord {
            device_id: "l4".into(),
            device_name: "NVIDIA L4".into(),
            scenario: "high-volume-api".into(),
            original: PlanCost {
                weights_bytes: 4000.0,
                kv_cache_bytes: Some(100.0),
                overhead_bytes: 10.0,
                total_memory_bytes: 4110.0,
                fits: true,
                decode_tok_s_batch1: Some(10.0),
                usd_month: Some(1000.0),
                usd_per_1m_requests: Some(3.0),
                cost_by_category: vec![("compute".into(), 1000.0)],
                cost_by_team: vec![],
            },
            compressed: PlanCost {
                weights_bytes: bytes as f64,
                kv_cache_bytes: Some(100.0),
                overhead_bytes: 10.0,
                total_memory_bytes: bytes as f64 + 110.0,
                fits: true,
                decode_tok_s_batch1: Some(20.0),
                usd_month: Some(u),
                usd_per_1m_requests: Some(u / 300.0),
                cost_by_category: vec![("compute".into(), u)],
                cost_by_team: vec![("search".into(), u * 0.75), ("ads".into(), u * 0.25)],
            },
            tiers: vec![TierFit { device_id: "l4".into(), fits: true, slo: "met".into(), usd_month: Some(u) }],
            assumptions: vec![Assumption {
                name: "η_bw".into(),
                value: "0.75".into(),
                formula: "bytes/(η·BW)".into(),
                sources: vec!["PROJECTION.md".into()],
            }],
        }),
    }
}

#[test]
fn frontier_and_recommendation() {
    let recs = vec![
        record("w8", 2000, Some(4.01), Some(600.0), "h"),
        record("w4", 1100, Some(4.02), Some(400.0), "h"),
        record("bad", 1200, Some(4.5), Some(450.0), "h"), // costlier and worse than w4: dominated
        record("q2", 700, Some(5.0), Some(300.0), "h"),   // cheapest but loses 25%
    ];
    let cmp = compare(&recs).unwrap();
    let dominated: Vec<&str> = cmp.rows.iter().filter(|r| r.dominated).map(|r| r.name.as_str()).collect();
    assert_eq!(dominated, vec!["bad"]);
    assert_eq!(cmp.cost_axis, "projected $/month");
    // w4 loses 0.5% (within 1%) and is cheaper than w8; q2 loses more than the budget.
    assert_eq!(cmp.recommendation.pick, Some(1), "{:?}", cmp.recommendation);
    assert!(cmp.recommendation.reasons.iter().any(|r| r.contains("q2")));
    assert!(cmp.warnings.is_empty());
}

#[test]
fn missing_metrics_are_not_measured_never_zero() {
    let recs = vec![record("w8", 2000, Some(4.01), None, "h"), record("w4", 1000, None, None, "h")];
    let cmp = compare(&recs).unwrap();
    assert_eq!(cmp.cost_axis, "stored weight bytes");
    assert!(cmp.warnings.iter().any(|w| w.contains("not measured") && w.contains("w4")));
    assert!(!cmp.rows[1].dominated && !cmp.rows[1].on_frontier);
    let html = render_html(&recs, &cmp);
    let md = render_markdown(&recs, &cmp);
    assert!(html.contains("not measured"));
    assert!(md.contains("_not measured_"));
    // The unmeasured row shows no numeric accuracy or cost cell.
    let w4_row = md.lines().find(|l| l.starts_with("| w4")).unwrap();
    assert!(!w4_row.contains("$0") && !w4_row.contains("+0.00%"), "{w4_row}");
}

#[test]
fn different_models_get_a_banner() {
    let recs = vec![record("a", 2000, Some(4.0), None, "h1"), record("b", 1000, Some(4.0), None, "h2")];
    let cmp = compare(&recs).unwrap();
    assert!(cmp.warnings.iter().any(|w| w.contains("different source models")));
    assert!(render_html(&recs, &cmp).contains("class=\"banner\""));
    // Nothing is recommended, and nothing is "dominated", across two models.
    assert_eq!(cmp.recommendation.pick, None, "{:?}", cmp.recommendation);
    assert!(cmp.rows.iter().all(|r| !r.dominated && !r.on_frontier));
    assert!(matches!(compare(&[]), Err(ReportError::NoRecords)));
}

#[test]
fn html_is_self_contained() {
    let recs = vec![record("w8", 2000, Some(4.01), Some(600.0), "h"), record("w4", 1100, Some(4.02), Some(400.0), "h")];
    let html = render_html(&recs, &compare(&recs).unwrap());
    for banned in ["<script", "http://", "https://", "<link", "@import", "url("] {
        assert!(!html.contains(banned), "report must work offline: found {banned}");
    }
    for needed in
        ["<svg", "frontier", "Memory breakdown", "Per-layer weight error", "Recipe differences", "assumptions"]
    {
        assert!(html.contains(needed), "missing {needed}");
    }
}

#[test]
fn schema_version_mismatch_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("r.json");
    let mut v: serde_json::Value = serde_json::from_str(&record("w8", 1, None, None, "h").to_json()).unwrap();
    v["schema_version"] = 99.into();
    std::fs::write(&p, v.to_string()).unwrap();
    let err = RunRecord::load(&p).unwrap_err();
    assert!(matches!(err, ReportError::SchemaVersion { found: 99, supported: 1, .. }), "{err}");
    std::fs::write(&p, "{\"hello\": 1}").unwrap();
    assert!(matches!(RunRecord::load(&p), Err(ReportError::NotARecord { .. })));
}

/// A record path that is an endless stream (or a file over the cap) stops at the cap, by name.
#[test]
fn an_endless_or_oversized_record_is_refused_at_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.json");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let err = RunRecord::load(&zero).unwrap_err();
    assert!(matches!(err, ReportError::TooLarge { cap: RECORD_CAP, .. }), "{err}");
    let big = dir.path().join("big.json");
    std::fs::File::create(&big).unwrap().set_len(RECORD_CAP + 1).unwrap();
    let err = RunRecord::load(&big).unwrap_err();
    assert!(matches!(err, ReportError::TooLarge { bytes, .. } if bytes == RECORD_CAP + 1), "{err}");
}

#[test]
fn committed_schema_is_current_and_records_validate() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/schema/run-record.schema.json");
    let generated = schema_json();
    if std::env::var_os("PARETO_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).expect("schema file (PARETO_UPDATE_SCHEMA=1 regenerates it)");
    assert_eq!(
        committed, generated,
        "assets/schema/run-record.schema.json is stale: rerun with PARETO_UPDATE_SCHEMA=1"
    );
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for r in [record("w8", 2000, Some(4.01), Some(600.0), "h"), record("w4", 1000, None, None, "h")] {
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
    let mut bad: serde_json::Value = serde_json::from_str(&record("w8", 1, None, None, "h").to_json()).unwrap();
    bad["totals"]["planned_bytes"] = "many".into();
    assert!(!validator.is_valid(&bad));
}

/// Issue 15's defect: a perplexity that rose 10 % was shown as "−10.00 %" beside "+0.00 %", which
/// reads as an improvement. Every change is signed as the metric moved and says its direction.
#[test]
fn changes_are_signed_as_the_metric_moved_and_say_better_or_worse() {
    let recs = vec![
        record("same", 2000, Some(4.0), None, "h"),
        record("worse", 1000, Some(4.4), None, "h"),
        record("better", 1500, Some(3.9), None, "h"),
    ];
    let cmp = compare(&recs).unwrap();
    let text: Vec<String> = cmp.rows.iter().map(|r| r.change_text().unwrap()).collect();
    assert_eq!(text, ["+0.00% (unchanged)", "+10.00% (worse)", "-2.50% (better)"]);
    let md = render_markdown(&recs, &cmp);
    let html = render_html(&recs, &cmp);
    for t in &text {
        assert!(md.contains(t.as_str()) && html.contains(t.as_str()), "{t}");
    }
    assert!(!md.contains("-10.00%"), "{md}");
}

/// A record whose validation also carries KL divergence (original 0) and top-1 agreement.
fn with_kl(name: &str, bytes: u64, ppl: f64, kl: f64, rel_error: f64) -> RunRecord {
    let mut r = record(name, bytes, Some(ppl), None, "h");
    r.tensors[0].rel_error = Some(rel_error);
    let v = r.validation.as_mut().unwrap();
    v.metrics.push(Metric {
        name: "KL divergence".into(),
        unit: "nats/token".into(),
        original: Some(0.0),
        compressed: Some(kl),
        higher_is_better: false,
        stderr: None,
    });
    r
}

#[test]
fn the_user_picks_the_measured_metric_and_kl_changes_are_absolute() {
    // By perplexity a is cheaper and as good as b; by KL, b is strictly more faithful.
    let recs = vec![with_kl("a", 1000, 4.02, 0.030, 0.05), with_kl("b", 1500, 4.02, 0.004, 0.02)];
    let cmp = compare_on(&recs, Some("KL divergence")).unwrap();
    assert_eq!(cmp.metric, "KL divergence");
    assert_eq!(cmp.metrics, vec!["perplexity", "KL divergence", WEIGHT_ERROR_PROXY]);
    assert!(cmp.rows.iter().all(|r| r.on_frontier), "{:?}", cmp.rows);
    assert!(!cmp.rows[0].change_is_relative);
    // KL starts at 0: the change is shown in its unit, never as "+0.00%".
    assert_eq!(cmp.rows[0].change_text().unwrap(), "+0.0300 nats/token (worse)");
    // Only b is within the 0.01 nats/token budget.
    assert_eq!(cmp.recommendation.pick, Some(1), "{:?}", cmp.recommendation);
    assert!(cmp.recommendation.reasons.iter().any(|r| r.contains("0.01 nats/token")), "{:?}", cmp.recommendation);
    let md = render_markdown(&recs, &cmp);
    assert!(md.contains("| KL divergence | +0.0300 nats/token (worse) |"), "{md}");
    let html = render_html(&recs, &cmp);
    assert!(html.contains("KL divergence change (up is better)"), "axis label");

    // A measured standard error travels with the value and the change.
    let mut noisy = recs.clone();
    for (r, e) in noisy.iter_mut().zip([0.002, 0.0004]) {
        r.validation.as_mut().unwrap().metrics.last_mut().unwrap().stderr = Some(e);
    }
    let cmp = compare_on(&noisy, Some("KL divergence")).unwrap();
    assert_eq!(cmp.rows[0].change_text().unwrap(), "+0.0300 ± 0.0020 nats/token (worse)");
    assert_eq!(cmp.rows[1].value_text().unwrap(), "0.00400 ± 0.00040");
    let html = render_html(&noisy, &cmp);
    assert!(html.contains("<td>0.0300 ± 0.0020</td>"), "the comparison table");
    assert!(html.contains("0.00400 ± 0.00040"), "the validation table");
    assert!(render_markdown(&noisy, &cmp).contains("| KL divergence | +0.0300 ± 0.0020 nats/token (worse) |"));
    // Small errors keep two digits rather than rounding to zero.
    assert_eq!(with_error(0.00031, Some(0.000042), true), "+0.000310 ± 0.000042");
    assert_eq!(with_error(0.25757, Some(0.0047), false), "0.2576 ± 0.0047");
    assert_eq!(with_error(0.5, Some(0.0), false), "0.5000");

    let by_ppl = compare(&recs).unwrap();
    assert_eq!(by_ppl.metric, "perplexity");
    assert_eq!(by_ppl.rows.iter().map(|r| r.dominated).collect::<Vec<_>>(), vec![false, true]);
}

#[test]
fn weight_error_is_a_labelled_proxy_and_never_recommends() {
    let recs = vec![with_kl("a", 1000, 4.02, 0.03, 0.05), record("unvalidated", 800, None, None, "h")];
    let cmp = compare_on(&recs, Some(WEIGHT_ERROR_PROXY)).unwrap();
    assert!(cmp.accuracy_axis.contains("not a measurement"), "{}", cmp.accuracy_axis);
    assert!(cmp.rows.iter().all(|r| r.metric_change.is_some()), "the proxy exists for every run");
    assert_eq!(cmp.recommendation.pick, None);
    assert!(cmp.warnings.iter().any(|w| w.contains("proxy")));
    // On a measured metric the unvalidated run is not measured: never filled in from the proxy.
    let cmp = compare_on(&recs, Some("KL divergence")).unwrap();
    assert!(cmp.rows[1].metric_change.is_none() && !cmp.rows[1].on_frontier && !cmp.rows[1].dominated);
    assert!(cmp.warnings.iter().any(|w| w.contains("not measured") && w.contains("unvalidated")));
    let e = compare_on(&recs, Some("BLEU")).unwrap_err().to_string();
    assert!(e.contains("BLEU") && e.contains("KL divergence"), "{e}");
}

#[test]
fn the_reviewers_constraint_picks_the_frontier_point() {
    let recs = vec![
        record("w8", 2000, Some(4.01), Some(600.0), "h"),
        record("w4", 1100, Some(4.02), Some(400.0), "h"),
        record("q2", 700, Some(5.0), Some(300.0), "h"),
    ];
    // A cost cap: the most accurate variant that costs at most $450/month.
    let c = Constraint { max_usd_month: Some(450.0), ..Default::default() };
    let cmp = compare_with(&recs, None, &c).unwrap();
    assert_eq!(cmp.recommendation.pick, Some(1), "{:?}", cmp.recommendation);
    assert!(cmp.recommendation.reasons.iter().any(|r| r.contains("$450/month")));
    // A tighter cap leaves only the lossy variant: picked, with a warning, not hidden.
    let c = Constraint { max_usd_month: Some(350.0), ..Default::default() };
    let cmp = compare_with(&recs, None, &c).unwrap();
    assert_eq!(cmp.recommendation.pick, Some(2));
    assert!(cmp.recommendation.reasons.iter().any(|r| r.starts_with("Warning") && r.contains("budget")));
    // A looser loss budget makes the cheapest acceptable; a cap nothing meets says so.
    let c = Constraint { max_loss: Some(0.3), ..Default::default() };
    assert_eq!(compare_with(&recs, None, &c).unwrap().recommendation.pick, Some(2));
    let c = Constraint { max_bytes: Some(10), ..Default::default() };
    let cmp = compare_with(&recs, None, &c).unwrap();
    assert_eq!(cmp.recommendation.pick, None);
    assert!(cmp.recommendation.reasons[0].contains("10 bytes"), "{:?}", cmp.recommendation);
}

#[test]
fn the_report_splits_each_variants_cost_by_team() {
    let recs = vec![record("w8", 2000, Some(4.01), Some(300.0), "h"), record("w4", 1000, Some(4.2), Some(150.0), "h")];
    let cmp = compare(&recs).unwrap();
    let html = render_html(&recs, &cmp);
    assert!(html.contains("<h2>Cost by team</h2>"), "the section appears when the scenario has teams");
    assert!(
        html.contains("<th>search $/month</th>") && html.contains("<td>225.00</td>") && html.contains("<td>37.50</td>")
    );
    // Records without teams (older runs, scenarios without tenants) have no such section, and their
    // JSON has no such field.
    let mut plain = recs.clone();
    for r in &mut plain {
        if let Some(p) = r.projection.as_mut() {
            p.compressed.cost_by_team.clear();
        }
    }
    assert!(!render_html(&plain, &cmp).contains("Cost by team"));
    assert!(!render_markdown(&plain, &cmp).contains("Cost by team"));
    assert!(!serde_json::to_string(&plain[0]).unwrap().contains("cost_by_team"));
    // The Markdown for PRs carries the same split, teams as columns in the same order.
    let md = render_markdown(&recs, &cmp);
    assert!(md.contains("| variant | ads | search |"), "{md}");
    assert!(md.contains("| w4 | $37.50 | $112.50 |"), "{md}");
}

#[test]
fn the_sensitivity_scan_is_drawn_per_format_and_its_worst_tensors_listed() {
    let records = vec![record("a", 100, Some(5.0), None, "m"), record("b", 50, Some(5.5), None, "m")];
    let mut cmp = compare(&records).unwrap();
    let html_without = render_html(&records, &cmp);
    assert!(!html_without.contains("Sensitivity scan"));
    // Two formats × rows embed, 0, 1 × kinds q, down: q4_0's layer-1 down is the worst, q8_0 is predicted.
    let q4 = [Some(0.01), None, Some(0.02), Some(0.03), Some(0.004), Some(0.09)];
    let q8 = [Some(0.001), None, Some(0.002), Some(0.003), Some(0.0004), Some(0.009)];
    cmp.sensitivity = Some(pareto_report::Sensitivity {
        tokens: 2048,
        seconds: 3.0,
        proxy_spearman: Some(0.91),
        formats: vec!["q4_0".into(), "q8_0".into()],
        layers: vec!["embed".into(), "0".into(), "1".into()],
        kinds: vec!["self_attn.q_proj".into(), "mlp.down_proj".into()],
        cells: q4.iter().chain(&q8).copied().collect(),
        measured: [true; 6].into_iter().chain([false; 6]).collect(),
        notes: vec!["KL measured for q4_0 only".into()],
    });
    let html = render_html(&records, &cmp);
    assert!(html.contains("<h2>Sensitivity scan</h2>") && html.contains("measured on 2048 tokens"));
    assert!(html.contains(r#"aria-label="sensitivity to q4_0 by layer and tensor""#));
    assert!(html.contains("<h3>q8_0 (predicted from the anchor format and the proxies)</h3>"));
    assert!(html.contains("<h3>q4_0</h3>"), "q4_0 was measured");
    assert!(html.contains("<title>1, mlp.down_proj: KL 0.09000</title>"), "hover text names the cell");
    assert!(html.contains("<title>embed, mlp.down_proj: not a candidate</title>"));
    // Worst first: q4_0 layer 1 down, then q4_0 layer 0 down.
    let worst = html.find("<td>1 mlp.down_proj</td><td>q4_0</td>").unwrap();
    assert!(worst < html.find("<td>0 mlp.down_proj</td><td>q4_0</td>").unwrap());
    let md = render_markdown(&records, &cmp);
    assert!(md.contains("**Sensitivity scan.**") && md.contains("Spearman 0.91"));
    let rows: Vec<&str> =
        md.lines().filter(|l| l.starts_with("| 1 mlp.down_proj") || l.starts_with("| 0 mlp.down_proj")).collect();
    assert_eq!(rows[0], "| 1 mlp.down_proj | q4_0 | 0.09000 |");
}
