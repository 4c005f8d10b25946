//! Bad input at the engine level: each case asserts the exact error and that nothing was left
//! under the output name, and the source is unchanged.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use pareto_core::job::{CancelToken, JobContext};
use pareto_core::{CompressOptions, Error, Model, Recipe, compress};

use crate::common::*;

fn sha(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn no_leftovers(dir: &Path) {
    let names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.contains("pareto-tmp") && n != "out"), "left behind: {names:?}");
}

#[test]
fn nan_weights_are_reported_and_never_written() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("nan");
    std::fs::create_dir(&src).unwrap();
    let mut w = vec![0.5f32; 64];
    w[37] = f32::NAN;
    write_f32_model(&src.join("model.safetensors"), &[("layers.0.mlp.up_proj.weight", vec![2, 32], w)]);
    let before = sha(&src.join("model.safetensors"));
    let model = Model::open(&src).unwrap();
    for preset in ["w8", "sparse-2of4"] {
        let plan = Recipe::load(preset).unwrap().resolve(&model).unwrap();
        let err =
            compress(&model, &plan, &CompressOptions::new(tmp.path().join("out")), &JobContext::silent()).unwrap_err();
        match err {
            Error::NonFinite { tensor, index, value } => {
                assert_eq!(tensor, "layers.0.mlp.up_proj.weight");
                assert_eq!(index, 37);
                assert!(value.is_nan());
            }
            other => panic!("{preset}: expected NonFinite, got {other}"),
        }
        no_leftovers(tmp.path());
    }
    // Kept tensors are checked too: a NaN is never copied silently.
    let keep = Recipe::from_toml("name = \"keep\"\n", "t").unwrap().resolve(&model).unwrap();
    let err =
        compress(&model, &keep, &CompressOptions::new(tmp.path().join("out")), &JobContext::silent()).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 37, .. }), "{err}");
    assert_eq!(sha(&src.join("model.safetensors")), before, "source untouched");
}

#[test]
fn disk_full_leaves_nothing_under_the_final_name() {
    let tmp = tempfile::tempdir().unwrap();
    let model = Model::open(stories()).unwrap();
    let plan = Recipe::load("w8").unwrap().resolve(&model).unwrap();
    let mut opts = CompressOptions::new(tmp.path().join("out"));
    opts.opener = full_disk_opener(300_000);
    let err = compress(&model, &plan, &opts, &JobContext::silent()).unwrap_err();
    match &err {
        Error::Write { source, .. } => assert_eq!(source.kind(), io::ErrorKind::StorageFull),
        other => panic!("expected Write, got {other}"),
    }
    assert!(err.to_string().contains("disk full"), "{err}");
    no_leftovers(tmp.path());
}

#[test]
fn cancel_mid_job_stops_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let model = Model::open(stories()).unwrap();
    let plan = Recipe::load("gguf-q4_k_m").unwrap().resolve(&model).unwrap();
    let token = CancelToken::new();
    let progress = Arc::new(CancelAfter { after: 5, done: AtomicU64::new(0), token: token.clone() });
    let ctx = JobContext::new(progress.clone(), token);
    let err = compress(&model, &plan, &CompressOptions::new(tmp.path().join("out")), &ctx).unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert_eq!(progress.done.load(Ordering::SeqCst), 5, "stopped right after the cancel");
    no_leftovers(tmp.path());
}

#[test]
fn output_paths_that_would_touch_the_source_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = stories_copy(tmp.path(), &["model.safetensors", "config.json", "tokenizer.json"]);
    let model = Model::open(&src).unwrap();
    let plan = Recipe::load("w8").unwrap().resolve(&model).unwrap();
    let ctx = JobContext::silent();
    // The folder, a folder holding it, and each of its files (the issue's `--out m/model.safetensors
    // --force`, which once moved the weights aside): refused, nothing touched.
    let before: Vec<(String, Vec<u8>)> = ["model.safetensors", "config.json", "tokenizer.json"]
        .iter()
        .map(|f| (f.to_string(), sha(&src.join(f))))
        .collect();
    let outs =
        [src.clone(), tmp.path().to_path_buf(), src.join("."), src.join("model.safetensors"), src.join("config.json")];
    for out in outs {
        let mut opts = CompressOptions::new(&out);
        opts.force = true;
        let err = compress(&model, &plan, &opts, &ctx).unwrap_err();
        assert!(matches!(err, Error::OutputIsSource { .. }), "{}: {err}", out.display());
    }
    // Inside the source folder, directly or through a symlink to it.
    let link = tmp.path().join("link");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&src, &link).unwrap();
    for out in [src.join("out"), src.join("sub/out"), link.join("out")] {
        let mut opts = CompressOptions::new(&out);
        opts.force = true;
        let err = compress(&model, &plan, &opts, &ctx).unwrap_err();
        assert!(matches!(err, Error::OutputInsideSource { .. }), "{}: {err}", out.display());
    }
    for (f, bytes) in &before {
        assert_eq!(&sha(&src.join(f)), bytes, "{f} changed");
    }
    let names: Vec<String> =
        std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 3, "nothing added to the source folder: {names:?}");

    // An existing folder of the user's is refused, with or without --force, and kept as it was.
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("old.txt"), "old").unwrap();
    for force in [false, true] {
        let mut opts = CompressOptions::new(&out);
        opts.force = force;
        let err = compress(&model, &plan, &opts, &ctx).unwrap_err();
        assert!(matches!(err, Error::OutputNotOurs { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(out.join("old.txt")).unwrap(), "old");
    }
    // So is a regular file.
    let file = tmp.path().join("notes.txt");
    std::fs::write(&file, "mine").unwrap();
    let mut opts = CompressOptions::new(&file);
    opts.force = true;
    assert!(matches!(compress(&model, &plan, &opts, &ctx), Err(Error::OutputNotOurs { .. })));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    // An earlier Pareto output is refused without --force and replaced whole with it.
    std::fs::remove_dir_all(&out).unwrap();
    compress(&model, &plan, &CompressOptions::new(&out), &ctx).unwrap();
    let err = compress(&model, &plan, &CompressOptions::new(&out), &ctx).unwrap_err();
    assert!(matches!(err, Error::OutputExists { .. }), "{err}");
    let mut opts = CompressOptions::new(&out);
    opts.force = true;
    compress(&model, &plan, &opts, &ctx).unwrap();
    assert!(out.join("model.safetensors").exists());
    assert_eq!(sha(&src.join("model.safetensors")), sha(&stories().join("model.safetensors")));
    no_leftovers_beside(tmp.path());
}

/// No temporary folder of Pareto's is left in `dir`.
fn no_leftovers_beside(dir: &Path) {
    let names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.contains("pareto-tmp")), "left behind: {names:?}");
}

#[test]
fn config_lying_about_shapes_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("m");
    std::fs::create_dir(&src).unwrap();
    std::fs::copy(stories().join("model.safetensors"), src.join("model.safetensors")).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stories().join("config.json")).unwrap()).unwrap();
    cfg["intermediate_size"] = 256.into();
    std::fs::write(src.join("config.json"), cfg.to_string()).unwrap();
    let err = Model::open(&src).unwrap_err();
    assert!(matches!(err, Error::ConfigShapeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("172") && err.to_string().contains("256"), "{err}");
}

#[test]
fn missing_config_is_named_when_structured_pruning_needs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("m");
    std::fs::create_dir(&src).unwrap();
    std::fs::copy(stories().join("model.safetensors"), src.join("model.safetensors")).unwrap();
    let model = Model::open(&src).unwrap();
    let err = Recipe::load("ffn-slim-25").unwrap().resolve(&model).unwrap_err();
    assert!(matches!(err, Error::ConfigMissing { .. }), "{err}");
    // Plain quantization needs no config.
    assert!(Recipe::load("w8").unwrap().resolve(&model).is_ok());
}
