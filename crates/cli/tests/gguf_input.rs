//! A GGUF as the input model, end to end through the binary: SmolLM2-135M-Instruct (Q4_1, fetched
//! by scripts/fetch-models.sh) inspected from its header, converted to a Hugging Face folder,
//! compressed to a GGUF again (through the cached conversion) and converted back with the same
//! tokenizer; the quantized source is flagged.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SMOL: &str = "models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pareto(cache: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_pareto"))
        .args(args)
        .env("PARETO_CACHE_DIR", cache)
        .current_dir(repo())
        .output()
        .expect("run pareto");
    assert!(out.status.success(), "pareto {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn smollm2_gguf_inspects_converts_compresses_and_round_trips_its_tokenizer() {
    assert!(repo().join(SMOL).is_file(), "{SMOL} is installed by scripts/fetch-models.sh");
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let s = |p: &Path| p.to_str().unwrap().to_string();

    let v = json(&pareto(&cache, &["inspect", SMOL, "--json"]));
    assert_eq!(v["architecture"], "llama");
    assert_eq!(v["tokenizer"]["pre"], "smollm");
    assert_eq!(v["parameters"], 134_515_008u64);
    assert_eq!(v["quantized"], true);

    let hf = tmp.path().join("hf");
    let v = json(&pareto(&cache, &["convert", SMOL, "--out", &s(&hf), "--json"]));
    assert_eq!(v["tensors"], 272);
    assert_eq!(v["source_types"]["Q4_1"], 210);
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(hf.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        (config["num_key_value_heads"].as_u64(), config["tie_word_embeddings"].as_bool()),
        (Some(3), Some(true))
    );

    // Compress straight from the GGUF: the plan says the source was quantized.
    let q8 = tmp.path().join("q8");
    let out = pareto(&cache, &["compress", SMOL, "--recipe", "gguf-q8_0", "--format", "gguf", "--out", &s(&q8)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already quantized (Q4_1 ×210, Q8_0 ×1)"), "{stderr}");
    let exported = q8.join("model.gguf");
    let v = json(&pareto(&cache, &["inspect", &s(&exported), "--json"]));
    assert_eq!(
        (v["tokenizer"]["pre"].as_str(), v["tokenizer"]["tokens"].as_u64(), v["tokenizer"]["merges"].as_u64()),
        (Some("smollm"), Some(49152), Some(48900))
    );

    // Back to a folder: the same tokenizer.json as from the original file.
    let back = tmp.path().join("back");
    pareto(&cache, &["convert", &s(&exported), "--out", &s(&back)]);
    let tj = |d: &Path| {
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(d.join("tokenizer.json")).unwrap()).unwrap()
    };
    assert_eq!(tj(&hf), tj(&back));
}

/// The commands that hand the model to the evaluation engine (scan, allocate, sweep) read a GGUF's
/// conversion too, not the file itself.
#[test]
fn scan_allocate_and_sweep_take_a_gguf() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let g = "models/gguf/stories260K.gguf";
    let text = "assets/samples/tinystories/tinystories-valid-excerpt.txt";
    let scan = tmp.path().join("scan.json");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    pareto(
        &cache,
        &[
            "scan",
            g,
            "--samples",
            text,
            "--skip",
            "65536",
            "--windows",
            "4",
            "--formats",
            "q8_0,q4_0",
            "--out",
            &s(&scan),
        ],
    );
    let recipe = tmp.path().join("auto.toml");
    pareto(&cache, &["allocate", g, "--scan", &s(&scan), "--bpw", "9", "--out", &s(&recipe)]);
    let sweep = tmp.path().join("sweep");
    let out = pareto(
        &cache,
        &["sweep", g, "--recipes", "gguf-q8_0", "--validation-windows", "3", "--scenario", "edge", "--out", &s(&sweep)],
    );
    assert!(sweep.join("report.md").is_file(), "{}", String::from_utf8_lossy(&out.stderr));
    // Validated on the protocol's first three windows, the KL with its standard error.
    let runs: Vec<_> = std::fs::read_dir(sweep.join("runs")).unwrap().map(|e| e.unwrap().path()).collect();
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&runs[0]).unwrap()).unwrap();
    let v = &record["validation"];
    assert!(v["samples"]["description"].as_str().unwrap().contains("(3 windows)"), "{v}");
    let kl = v["metrics"].as_array().unwrap().iter().find(|m| m["name"] == "KL divergence").unwrap();
    let (mean, se) = (kl["compressed"].as_f64().unwrap(), kl["stderr"].as_f64().unwrap());
    assert!(mean > 0.0 && se > 0.0 && se < mean, "{kl}");
}
