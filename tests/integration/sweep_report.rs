//! `sweep` end to end on the bundled model: run records that validate against the committed
//! schema, resume after an interruption, and the HTML report rendered by a real browser.

use std::path::{Path, PathBuf};
use std::process::Command;

use pareto_core::job::JobContext;
use pareto_report::{RunRecord, compare, render_html, render_markdown};
use pareto_runs::{LocalExecutor, VariantSpec, hash_files, sweep};

use crate::common::*;

fn jobs(recipes: &[&str]) -> Vec<VariantSpec> {
    recipes.iter().map(|r| VariantSpec::new(stories(), r.to_string(), "edge")).collect()
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo_root().join("assets/schema/run-record.schema.json")).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

#[test]
fn sweep_records_resume_and_render() {
    let out = tempfile::tempdir().unwrap();
    let files = hash_files(&[stories().join("model.safetensors").as_path()]).unwrap();
    let jobs = jobs(&["w8", "gguf-q4_0"]);
    let exec = LocalExecutor { parallelism: 2 };
    let first = sweep(&jobs, &files, out.path(), &exec, &JobContext::silent()).unwrap();
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    assert_eq!(first.records.len(), 2);
    let v = validator();
    for p in &first.record_paths {
        let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        let errors: Vec<String> = v.iter_errors(&value).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", p.display());
    }
    // Real validation numbers: the original's perplexity is the PROVENANCE reference.
    let w8 = &first.records[0];
    let ppl = w8.primary_metric().unwrap();
    assert!((ppl.original.unwrap() - 4.574144).abs() < 0.005, "{:?}", ppl);
    assert!(w8.projection.as_ref().unwrap().tiers.iter().any(|t| t.device_id == "rpi5"));
    assert!(w8.artifact.as_ref().is_some_and(|a| Path::new(&a.path).join("model.safetensors").exists()));

    // Interrupted sweep: one record lost; a restart re-runs only that variant.
    std::fs::remove_file(&first.record_paths[1]).unwrap();
    let second = sweep(&jobs, &files, out.path(), &exec, &JobContext::silent()).unwrap();
    assert_eq!(second.resumed, vec!["w8".to_string()]);
    assert_eq!(second.records.len(), 2);
    assert_eq!(second.records[1].id, first.records[1].id, "content-addressed ids are stable");

    // A record whose artifact was deleted since is not trusted: that variant runs again.
    let artifact = PathBuf::from(&second.records[0].artifact.as_ref().unwrap().path);
    std::fs::remove_dir_all(&artifact).unwrap();
    let third = sweep(&jobs, &files, out.path(), &exec, &JobContext::silent()).unwrap();
    assert_eq!(third.resumed, vec!["gguf-q4_0".to_string()]);
    assert!(third.rerun.len() == 1 && third.rerun[0].1.contains("missing"), "{:?}", third.rerun);
    assert!(artifact.join("model.safetensors").is_file(), "re-created");

    // The report in a real browser: headless Chromium renders the page and the frontier chart.
    let cmp = compare(&second.records).unwrap();
    let html_path = out.path().join("report.html");
    std::fs::write(&html_path, render_html(&second.records, &cmp)).unwrap();
    assert!(render_markdown(&second.records, &cmp).contains("gguf-q4_0 |"));
    let dom = chromium(&html_path, &["--dump-dom"]);
    for needle in ["Pareto report", "Recommendation", "frontier", "gguf-q4_0", "w8", "<svg"] {
        assert!(dom.contains(needle), "rendered DOM lacks {needle}");
    }
    let shot = out.path().join("report.png");
    chromium(&html_path, &["--window-size=1200,1600", &format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 20_000, "a blank page compresses to far less");
    if let Some(dir) = std::env::var_os("PARETO_SCREENSHOTS") {
        std::fs::copy(&shot, PathBuf::from(dir).join("report.png")).unwrap();
    }
    let loaded = RunRecord::load(&third.record_paths[0]).unwrap();
    assert_eq!(loaded, third.records[0]);
}

#[test]
fn sweep_outputs_never_land_in_the_source_or_a_foreign_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let src = stories_copy(tmp.path(), &["model.safetensors", "config.json", "tokenizer.json"]);
    let source = pareto_core::Model::open(&src).unwrap().source_paths();
    for out in [src.clone(), src.join("sweep"), tmp.path().to_path_buf()] {
        let err = pareto_runs::prepare_out(&out, &source).unwrap_err();
        assert!(err.to_string().contains("source model"), "{}: {err}", out.display());
    }
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("report.md"), "my own notes").unwrap();
    let err = pareto_runs::prepare_out(&mine, &source).unwrap_err();
    assert!(err.to_string().contains("did not write"), "{err}");
    assert_eq!(std::fs::read_to_string(mine.join("report.md")).unwrap(), "my own notes");
    // New and empty folders are taken and marked; a marked folder is taken again.
    let fresh = tmp.path().join("fresh");
    pareto_runs::prepare_out(&fresh, &source).unwrap();
    assert!(fresh.join(pareto_runs::SWEEP_MARKER).is_file());
    pareto_runs::prepare_out(&fresh, &source).unwrap();
    let read = |p: PathBuf| std::fs::read(p).unwrap();
    assert_eq!(read(src.join("model.safetensors")), read(stories().join("model.safetensors")));
}

/// Runs Debian's Chromium headless on a local file (scripts/test.sh installs it).
fn chromium(page: &Path, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium is installed (scripts/test.sh installs Debian's chromium package)");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_sweep_calibrates_the_variants_that_need_it_and_says_so_for_those_it_cannot() {
    let out = tempfile::tempdir().unwrap();
    let files = hash_files(&[stories().join("model.safetensors").as_path()]).unwrap();
    let mut jobs = jobs(&["wanda-50", "w4-g32"]);
    for j in &mut jobs {
        j.validate = false;
    }
    let exec = LocalExecutor { parallelism: 1 };
    // No calibration set: the Wanda variant fails with the reason, the RTN one runs.
    let first = sweep(&jobs, &files, &out.path().join("a"), &exec, &JobContext::silent()).unwrap();
    assert_eq!(first.records.len(), 1);
    assert!(first.failed.len() == 1 && first.failed[0].1.contains("calibration set"), "{:?}", first.failed);

    let text = repo_root().join("assets/samples/tinystories/tinystories-valid-excerpt.txt");
    let calibration = pareto_runs::CalibrationSpec {
        windows: 4,
        window: 128,
        skip_chars: 65_536,
        ..pareto_runs::CalibrationSpec::new(text)
    };
    for j in &mut jobs {
        j.calibration = Some(calibration.clone());
    }
    let second = sweep(&jobs, &files, &out.path().join("b"), &exec, &JobContext::silent()).unwrap();
    assert!(second.failed.is_empty(), "{:?}", second.failed);
    assert_eq!(second.records.len(), 2);
    // The calibration set is part of a calibrated variant's address, not of the others'.
    let mut plain = jobs[0].clone();
    plain.calibration = None;
    assert_ne!(second.records[0].id, plain.id(&files).unwrap().1);
    assert_eq!(second.records[1].id, first.records[0].id);
}
