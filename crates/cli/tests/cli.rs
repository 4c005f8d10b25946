//! The `pareto` binary end to end: exit codes, one-line errors, `--json` on stdout.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pareto(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pareto")).args(args).current_dir(repo()).output().expect("run pareto")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn inspect_json_describes_stories260k() {
    let out = pareto(&["inspect", "models/stories260K", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    assert_eq!(v["summary"]["parameters"], 292_800);
    assert_eq!(v["tensors"].as_array().unwrap().len(), 48);
}

#[test]
fn compress_writes_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("q");
    let out =
        pareto(&["compress", "models/stories260K", "--recipe", "gguf-q8_0", "--out", dest.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    assert_eq!(v["totals"]["tensors"], 48);
    assert!(v["totals"]["planned_bytes"].as_u64().unwrap() < v["totals"]["source_bytes"].as_u64().unwrap());
    assert!(dest.join("model.safetensors").exists());
    // Human mode prints the table on stderr and nothing on stdout.
    let dest2 = tmp.path().join("q2");
    let out = pareto(&["compress", "models/stories260K", "-r", "w8", "-o", dest2.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("int8_channel"));
}

#[test]
fn failures_exit_non_zero_with_one_line_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("x");
    let d = dest.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["compress", "models/stories260K", "--recipe", "w3", "--out", d], "valid presets"),
        (&["inspect", "models/does-not-exist"], "does-not-exist"),
        (&["compress", "models/stories260K", "--recipe", "w8", "--out", "models/stories260K"], "source"),
        (&["plan", "models/stories260K", "--recipe", "assets/presets/../../Cargo.toml"], "recipe"),
    ];
    for (args, needle) in cases {
        let out = pareto(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{args:?}: {err}"));
        assert!(line.contains(needle), "{args:?}: {line}");
    }
    assert!(!dest.exists());
    let out = pareto(&["inspect", "models/nope", "--json"]);
    assert!(!out.status.success());
    assert!(json(&out)["error"].as_str().unwrap().contains("nope"));
}
