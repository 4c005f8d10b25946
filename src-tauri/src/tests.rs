//! Every command function, called directly on the bundled stories260K model (no window), plus one
//! round trip through Tauri's mock runtime to prove the IPC wiring and the capability file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::dto::*;
use crate::ops;
use crate::state::AppState;

fn stories() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/stories260K").display().to_string()
}

/// A session in which the user has chosen the checkout (models, bundled samples) and the temporary
/// folder the tests write into.
fn app_state(config_dir: Option<PathBuf>) -> (AppState, Option<ApiError>) {
    let (state, warning) = AppState::new(config_dir);
    state.access().grant(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    state.access().grant(&std::env::temp_dir());
    (state, warning)
}

fn opened() -> Arc<AppState> {
    let (state, warning) = app_state(None);
    assert!(warning.is_none());
    let state = Arc::new(state);
    ops::open_model(&state, &stories()).expect("open stories260K");
    state
}

fn preset(name: &str) -> String {
    ops::load_recipe(&AppState::default(), name).expect("preset")
}

/// Runs a compression to completion and returns the events it streamed.
fn compress(state: &Arc<AppState>, toml: &str, out: &Path) -> Vec<JobEvent> {
    compress_calibrated(state, toml, out, None)
}

fn compress_calibrated(
    state: &Arc<AppState>,
    toml: &str,
    out: &Path,
    calibration: Option<CalibrationInput>,
) -> Vec<JobEvent> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink_events = Arc::clone(&events);
    let sink: ops::Sink = Arc::new(move |e| sink_events.lock().expect("lock").push(e));
    ops::start_compress(state, toml, &out.display().to_string(), false, None, calibration, sink).expect("start");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = events
            .lock()
            .expect("lock")
            .iter()
            .any(|e| matches!(e, JobEvent::Finished { .. } | JobEvent::Failed { .. } | JobEvent::Cancelled));
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "compression did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
    events.lock().expect("lock").clone()
}

/// Starts a job with `start`, collecting its events, and waits up to `secs` for its last event to
/// be the one `pick` takes (a `Failed` event panics with its error); returns that and every event.
fn await_job<T>(
    what: &str,
    secs: u64,
    start: impl FnOnce(ops::Sink) -> ApiResult<u32>,
    pick: impl Fn(&JobEvent) -> Option<T>,
) -> (T, Vec<JobEvent>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink_events = Arc::clone(&events);
    start(Arc::new(move |e| sink_events.lock().expect("lock").push(e))).expect("start");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let last = events.lock().expect("lock").last().cloned();
        if let Some(JobEvent::Failed { error }) = &last {
            panic!("{error}");
        }
        if let Some(found) = last.as_ref().and_then(&pick) {
            return (found, events.lock().expect("lock").clone());
        }
        assert!(Instant::now() < deadline, "{what} did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finished(events: &[JobEvent]) -> RunView {
    match events.last() {
        Some(JobEvent::Finished { run }) => run.as_ref().clone(),
        other => panic!("expected Finished, got {other:?}"),
    }
}

#[test]
fn open_model_lists_tensors_and_config() {
    let (state, _) = app_state(None);
    let view = ops::open_model(&state, &stories()).expect("open");
    assert_eq!(view.summary.architecture.as_deref(), Some("llama"));
    assert_eq!(view.tensors.len(), view.summary.tensor_count);
    assert!(view.tensors.iter().any(|t| t.name.contains("q_proj") && t.role == "attention" && t.layer == Some(0)));
    assert!(view.summary.config.as_ref().is_some_and(|c| c.num_layers > 0));
    assert_eq!(state.settings().recent_models.first(), Some(&view.summary.root));
}

/// A GGUF opens as a job: the conversion streams progress, then the model view arrives; the file
/// the user chose (not the cache folder) is what Recent remembers.
#[test]
fn a_gguf_opens_as_a_job_with_progress() {
    let cache = tempfile::tempdir().expect("tmp");
    // SAFETY (test-only): this is the only test of this binary that converts a GGUF, and every
    // reader of the variable is in the conversion it starts.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PARETO_CACHE_DIR", cache.path());
    }
    let (state, _) = app_state(None);
    let state = Arc::new(state);
    let gguf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/gguf/stories260K.gguf").display().to_string();
    let (view, events) = await_job(
        "open",
        120,
        |sink| ops::start_open_model(&state, gguf.clone(), sink),
        |e| match e {
            JobEvent::Opened { model } => Some(model.clone()),
            _ => None,
        },
    );
    assert_eq!(view.tensors.len(), 48);
    assert!(events.iter().any(|e| matches!(e, JobEvent::Stage { name, .. } if name == "converting tensors")));
    assert!(state.model().expect("model").root().starts_with(cache.path()));
    assert_eq!(state.settings().recent_models.first(), Some(&gguf));
}

#[test]
fn open_model_errors_name_the_path_and_cause() {
    let (state, _) = app_state(None);
    let missing = std::env::temp_dir().join("pareto-nonexistent/model").display().to_string();
    let err = ops::open_model(&state, &missing).expect_err("must fail");
    assert!(err.message.contains(&missing), "{err}");
    assert!(!err.causes.is_empty(), "{err:?}");
    let err = ops::open_model(&state, "  ").expect_err("empty");
    assert!(err.message.contains("no path given for the model"), "{err}");
}

#[test]
fn commands_needing_a_model_say_so() {
    let (state, _) = app_state(None);
    let err = ops::plan(&state, &preset("w8")).expect_err("no model");
    assert!(err.message.contains("no model is open"), "{err}");
}

#[test]
fn presets_formats_and_plan() {
    let state = opened();
    let presets = ops::list_presets();
    assert!(presets.iter().any(|p| p.name == "w8" && !p.description.is_empty()));
    let formats = ops::list_formats();
    assert!(formats.iter().any(|f| f.id == "q8_0"));
    // The studio's scan candidates are the CLI's, in its order, from the registry listing.
    let mut ranked: Vec<_> = formats.iter().filter_map(|f| Some((f.scan_default?, f.id.as_str()))).collect();
    ranked.sort();
    let ids: Vec<&str> = ranked.iter().map(|r| r.1).collect();
    assert_eq!(ids, pareto_runs::scan::DEFAULT_FORMATS);
    let plan = ops::plan(&state, &preset("w8")).expect("plan");
    assert_eq!(plan.rows.len(), state.model().expect("model").tensors().len());
    assert!(plan.totals.quantized > 0);
    assert!(plan.totals.planned_bytes < plan.totals.source_bytes);
    assert!(plan.rows.iter().any(|r| r.reason.starts_with("ignored")));
    let err = ops::plan(&state, "[default]\nquantize = { format = \"q3_z\" }\n").expect_err("bad format");
    assert!(err.to_string().contains("q3_z"), "{err}");
}

#[test]
fn edits_change_the_plan() {
    let state = opened();
    let base = preset("w8");
    let doc = ops::edit_recipe(
        &state,
        &base,
        &RecipeEdit::SetDefault { action: ActionEdit::Quantize { format: "q4_0".into() } },
    )
    .expect("set default");
    assert_eq!(doc.default_action, "q4_0");
    let model = state.model().expect("model");
    let q = model.tensors().iter().find(|t| t.name.contains("q_proj")).expect("q_proj").name.clone();
    let emb = model.tensors().iter().find(|t| t.name.contains("embed")).expect("embed").name.clone();
    let doc = ops::edit_recipe(
        &state,
        &doc.toml,
        &RecipeEdit::Override { tensors: vec![q.clone(), emb.clone()], action: ActionEdit::Keep },
    )
    .expect("override");
    assert_eq!(doc.rules.len(), 1);
    assert_eq!(doc.ignored_in_selection, vec![emb]);
    let plan = ops::plan(&state, &doc.toml).expect("plan");
    let row = plan.rows.iter().find(|r| r.name == q).expect("row");
    assert_eq!(row.action, "keep");
    assert_eq!(row.reason, "rule 1");
    let doc = ops::edit_recipe(&state, &doc.toml, &RecipeEdit::RemoveRule { index: 0 }).expect("remove");
    assert!(doc.rules.is_empty());
    assert!(ops::edit_recipe(&state, &doc.toml, &RecipeEdit::RemoveRule { index: 3 }).is_err());
}

#[test]
fn recipe_save_and_load_round_trip() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("r.toml").display().to_string();
    let (state, _) = app_state(None);
    ops::save_recipe(&state, &path, &preset("nf4")).expect("save");
    let text = ops::load_recipe(&state, &path).expect("load");
    assert!(text.contains("nf4"));
    assert!(ops::save_recipe(&state, &path, "nonsense = [").is_err());
    assert_eq!(ops::load_recipe(&state, &path).expect("load"), text, "a refused recipe leaves the file as it was");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
}

/// The path allow-list: a command handed a path the user did not choose (pick, drop, Recent,
/// `--open`, or a typed path they allowed in the native prompt) refuses it by name and touches
/// nothing; the page cannot make a path chosen through the saved settings either.
#[test]
fn commands_refuse_paths_the_user_did_not_choose() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("cfg");
    let (state, _) = AppState::new(Some(cfg.clone()));
    let state = Arc::new(state);
    let refused = |r: ApiError| assert!(r.message.contains("was not chosen"), "{}", r.message);
    refused(ops::open_model(&state, &stories()).unwrap_err());
    state.access().grant(Path::new(&stories()));
    ops::open_model(&state, &stories()).expect("a chosen model opens");

    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let recipe = elsewhere.join("r.toml");
    refused(ops::save_recipe(&state, recipe.to_str().unwrap(), &preset("w8")).unwrap_err());
    std::fs::write(&recipe, preset("w8")).unwrap();
    refused(ops::load_recipe(&state, recipe.to_str().unwrap()).unwrap_err());
    let out = elsewhere.join("out");
    let sink: ops::Sink = Arc::new(|_| {});
    refused(
        ops::start_compress(&state, &preset("w8"), out.to_str().unwrap(), false, None, None, sink.clone()).unwrap_err(),
    );
    // Inside the chosen model folder, but climbing out of it.
    let climb = format!("{}/../../{}", stories(), "x");
    refused(ops::start_compress(&state, &preset("w8"), &climb, false, None, None, sink.clone()).unwrap_err());
    let scan = ScanRequest {
        samples: recipe.display().to_string(),
        windows: 1,
        window: 16,
        skip_chars: 0,
        formats: vec!["q8_0".into()],
        predict_from: None,
    };
    refused(crate::allocate::start_scan(&state, scan, sink).unwrap_err());
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 1, "nothing written where the user did not choose");

    // Settings from the page may reorder or drop Recent entries, never add one.
    let mut s = state.settings();
    s.recent_models.push(elsewhere.display().to_string());
    state.save_settings(s).unwrap();
    let (restarted, _) = AppState::new(Some(cfg));
    assert_eq!(restarted.settings().recent_models.len(), 1);
    assert!(restarted.access().allows(Path::new(&stories())), "Recent stays chosen across restarts");
    assert!(!restarted.access().allows(&elsewhere));
}

#[test]
fn compress_streams_progress_then_histogram_heatmap_export() {
    let state = opened();
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let events = compress(&state, &preset("w4-g32"), &out);
    assert!(events.iter().any(|e| matches!(e, JobEvent::Stage { name, .. } if name == "compress")));
    assert!(events.iter().any(|e| matches!(e, JobEvent::Advance { .. })));
    let run = finished(&events);
    assert!(out.join("model.safetensors").is_file());
    assert!(run.mean_rel_error > 0.0 && run.mean_rel_error < 0.5);
    assert!(!run.heatmap.layers.is_empty() && !run.heatmap.kinds.is_empty());
    assert_eq!(run.heatmap.cells.len(), run.heatmap.layers.len() * run.heatmap.kinds.len());
    assert_eq!(ops::runs(&state).len(), 1);

    let tensor = run.tensors.iter().find(|t| t.metrics.is_some()).expect("a transformed tensor").name.clone();
    let h = ops::tensor_histogram(&state, run.id, &tensor, 64).expect("histogram");
    assert_eq!(h.before.len(), 64);
    assert_eq!(h.before.iter().map(|&c| u64::from(c)).sum::<u64>(), h.elements);
    assert_ne!(h.before, h.after);

    let target = dir.path().join("export");
    let formats = ops::export_formats();
    assert!(formats.iter().all(|f| f.available));
    let req = ExportRequest {
        run_id: run.id,
        format: "safetensors".into(),
        target: target.display().to_string(),
        overwrite: false,
    };
    let res = ops::export_run(&state, &req).expect("export");
    for f in [
        "model.safetensors",
        "pareto-manifest.json",
        "report.json",
        "report.md",
        "report.html",
        "pareto-run.json",
        "config.json",
    ] {
        assert!(target.join(f).is_file(), "{f} missing: {:?}", res.files);
    }
    // The exported run record is the same versioned record `pareto sweep` writes.
    let record = pareto_report::RunRecord::load(&target.join("pareto-run.json")).expect("a valid run record");
    assert_eq!(record.tensors.len(), 48);
    assert!(record.projection.is_some() && record.validation.is_none());
    assert!(std::fs::read_to_string(target.join("report.md")).unwrap().contains("not measured"));
    let again = ops::export_run(&state, &req).expect_err("exists");
    assert!(again.message.contains("already exists"));
    ops::export_run(&state, &ExportRequest { overwrite: true, ..req.clone() }).expect("overwrite");
    // "overwrite" replaces an earlier export only: a folder of the user's stays as it was, and
    // nothing is written into the run's output or the source model.
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).expect("mkdir");
    std::fs::write(mine.join("notes.txt"), "keep").expect("write");
    let at = |p: &std::path::Path| ExportRequest { target: p.display().to_string(), overwrite: true, ..req.clone() };
    let err = ops::export_run(&state, &at(&mine)).expect_err("a foreign folder");
    assert!(err.message.contains("replaces only its own"), "{err}");
    assert_eq!(std::fs::read_to_string(mine.join("notes.txt")).expect("kept"), "keep");
    for inside in [out.join("export"), std::path::PathBuf::from(&run.source).join("export")] {
        let err = ops::export_run(&state, &at(&inside)).expect_err("inside a source");
        assert!(err.message.contains("lies inside"), "{}: {err}", inside.display());
        assert!(!inside.exists());
    }
    // Packed formats re-run the recipe through their writer; a format that cannot express the recipe
    // is refused with a readable reason, and nothing is left at the target.
    let mut packed_ok = 0;
    for f in formats.iter().filter(|f| f.id != "safetensors") {
        let t = dir.path().join(format!("export-{}", f.id));
        match ops::export_run(
            &state,
            &ExportRequest { format: f.id.clone(), target: t.display().to_string(), ..req.clone() },
        ) {
            Ok(res) => {
                packed_ok += 1;
                assert!(t.join("pareto-manifest.json").is_file() && t.join("report.json").is_file(), "{:?}", res.files);
            }
            Err(e) => {
                assert!(!e.message.is_empty());
                assert!(!t.exists(), "{} left a partial export", f.id);
            }
        }
    }
    assert!(packed_ok > 0, "no packed format exported w4-g32");
    let err = ops::export_run(&state, &ExportRequest { format: "zip".into(), ..req }).expect_err("unknown");
    assert!(err.message.contains("gguf"), "{err}");
}

#[test]
fn a_gptq_recipe_asks_for_its_calibration_set_then_runs_it() {
    let state = opened();
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("gptq");
    let toml = preset("gptq-w4-g32");
    let plan = ops::plan(&state, &toml).expect("plan");
    assert_eq!(plan.totals.calibrated, 30);
    let sink: ops::Sink = Arc::new(|_| {});
    let e = ops::start_compress(&state, &toml, &out.display().to_string(), false, None, None, sink).unwrap_err();
    assert!(e.message.contains("Calibration text"), "{e}");
    assert!(!out.exists());

    let text = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/samples/tinystories/tinystories-valid-excerpt.txt");
    let calibration =
        CalibrationInput { samples: text.display().to_string(), windows: 8, window: 128, skip_chars: 65_536 };
    let events = compress_calibrated(&state, &toml, &out, Some(calibration));
    assert!(
        events.iter().any(|e| matches!(e, JobEvent::Stage { name, .. } if name.starts_with("calibration"))),
        "calibration progress is streamed"
    );
    let run = finished(&events);
    let gptq: Vec<_> = run.tensors.iter().filter(|t| t.action.ends_with("gptq")).collect();
    assert_eq!(gptq.len(), 30);
    assert!(gptq.iter().all(|t| t.calib_loss.is_some_and(|l| l.is_finite())));
}

#[test]
fn compress_failure_is_an_event_with_cause() {
    let state = opened();
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("exists");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("x"), "x").expect("write");
    let events = compress(&state, &preset("w8"), &out);
    match events.last() {
        Some(JobEvent::Failed { error }) => assert!(error.to_string().contains("exists"), "{error}"),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn cancel_stops_a_job_and_leaves_nothing() {
    let state = opened();
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    // Cancel from the first progress event: the engine checks between tensors.
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink_events = Arc::clone(&events);
    let cancel_state = Arc::clone(&state);
    let id_cell = Arc::new(Mutex::new(None::<u32>));
    let id_for_sink = Arc::clone(&id_cell);
    let sink: ops::Sink = Arc::new(move |e| {
        if matches!(e, JobEvent::Stage { .. }) {
            // The id is known once start_compress returns; poll briefly for it.
            for _ in 0..200 {
                if let Some(id) = *id_for_sink.lock().expect("lock") {
                    cancel_state.cancel_job(id);
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        sink_events.lock().expect("lock").push(e);
    });
    let id =
        ops::start_compress(&state, &preset("w8"), &out.display().to_string(), false, None, None, sink).expect("start");
    *id_cell.lock().expect("lock") = Some(id);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !events.lock().expect("lock").iter().any(|e| matches!(e, JobEvent::Cancelled | JobEvent::Finished { .. })) {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(matches!(events.lock().expect("lock").last(), Some(JobEvent::Cancelled)));
    assert!(!out.exists());
    assert!(!ops::cancel_job(&state, id), "a finished job is no longer cancellable");
}

#[test]
fn projection_and_compare() {
    let state = opened();
    assert!(ops::list_hardware().expect("hw").len() > 3);
    let scenarios = ops::list_scenarios().expect("scenarios");
    assert!(scenarios.iter().any(|s| s.id == "edge"));
    let query = ProjectionQuery {
        scenario: "high-volume-api".into(),
        device: None,
        traffic: TrafficOverrides { requests_per_day: Some(1e6), ..Default::default() },
        recipe_toml: Some(preset("w8")),
        calibrate_measured: false,
    };
    let p = ops::project_plan(&state, &query).expect("project");
    // The engine is a projection input: another engine's fitted figures give another speed.
    let trt = ProjectionQuery {
        traffic: TrafficOverrides { engine: Some("tensorrt-llm".into()), ..query.traffic.clone() },
        ..query.clone()
    };
    let pt = ops::project_plan(&state, &trt).expect("project with tensorrt-llm");
    assert!(pt.notes.iter().any(|n| n.contains("tensorrt-llm")), "{:?}", pt.notes);
    let bad = ProjectionQuery {
        traffic: TrafficOverrides { engine: Some("deepspeed".into()), ..query.traffic.clone() },
        ..query.clone()
    };
    assert!(ops::project_plan(&state, &bad).expect_err("unknown engine").to_string().contains("sglang"));
    let c = p.compressed.as_ref().expect("compressed side");
    let w = |s: &PlanSide| s.memory.iter().find(|(k, _)| k == "weights").map(|(_, q)| q.value).expect("weights");
    assert!(w(c) < w(&p.original));
    assert!(p.original.memory.iter().all(|(_, q)| !q.formula.is_empty()));
    assert!(!p.ranking.is_empty());
    let bad = ProjectionQuery { scenario: "nope".into(), ..query.clone() };
    assert!(ops::project_plan(&state, &bad).expect_err("bad scenario").to_string().contains("high-volume-api"));

    let dir = tempfile::tempdir().expect("tmp");
    finished(&compress(&state, &preset("w8"), &dir.path().join("a")));
    finished(&compress(&state, &preset("gguf-q4_0"), &dir.path().join("b")));
    let cmp = ops::compare(&state, &query, None).expect("compare");
    assert_eq!(cmp.points.len(), 2);
    assert!(cmp.points.iter().any(|p| p.on_frontier));
    // Nothing is validated: the axis is the weight-error proxy, said so, and nothing is recommended.
    assert!(cmp.is_proxy && cmp.accuracy_axis.contains("not a measurement"), "{}", cmp.accuracy_axis);
    assert!(cmp.recommendation.contains("proxy"));
    let e = ops::compare(&state, &query, Some("perplexity")).expect_err("no run is validated");
    assert!(e.message.contains("perplexity"), "{}", e.message);
}

#[test]
fn settings_persist_across_restarts() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("cfg");
    {
        let (state, _) = app_state(Some(cfg.clone()));
        ops::open_model(&state, &stories()).expect("open");
        let mut s = state.settings();
        s.scenario = Some("edge".into());
        s.last_recipe_toml = Some("name = \"x\"\n".into());
        state.save_settings(s).expect("save");
    }
    let (state, warning) = app_state(Some(cfg.clone()));
    assert!(warning.is_none());
    let s = state.settings();
    assert_eq!(s.scenario.as_deref(), Some("edge"));
    assert_eq!(s.recent_models.len(), 1);
    std::fs::write(cfg.join("settings.json"), "{not json").expect("corrupt");
    let (state, warning) = app_state(Some(cfg));
    assert!(warning.is_some());
    assert_eq!(state.settings(), Settings::default());
}

#[test]
fn validate_compares_original_and_compressed() {
    let state = opened();
    let dir = tempfile::tempdir().expect("tmp");
    let run = finished(&compress(&state, &preset("w4-g32"), &dir.path().join("out")));
    let req = ValidateRequest { run_id: run.id, samples: None, limit: Some(2), speed: false, device: "cpu".into() };
    let (result, _) = await_job(
        "validation",
        300,
        |sink| crate::validate::start(&state, req, sink),
        |e| match e {
            JobEvent::Validated { result } => Some(result.clone()),
            _ => None,
        },
    );
    let ppl = result.metrics.iter().find(|m| m.name == "perplexity").expect("perplexity row");
    assert!(ppl.original.is_some_and(|v| v > 1.0) && ppl.compressed.is_some_and(|v| v > 1.0), "{ppl:?}");
    assert!(result.metrics.iter().any(|m| m.name == "top-1 agreement"));

    // A second, unvalidated run: Compare ranks on the measured metric and lists it as not measured.
    finished(&compress(&state, &preset("w8"), &dir.path().join("w8")));
    let query = ProjectionQuery {
        scenario: "high-volume-api".into(),
        device: None,
        traffic: TrafficOverrides::default(),
        recipe_toml: None,
        calibrate_measured: false,
    };
    let cmp = ops::compare(&state, &query, None).expect("compare");
    assert_eq!(cmp.metric, "perplexity");
    assert!(!cmp.is_proxy && cmp.metrics.iter().any(|m| m == "KL divergence"), "{:?}", cmp.metrics);
    let validated = cmp.points.iter().find(|p| p.run_id == run.id).expect("validated point");
    let worse = ppl.compressed.unwrap() > ppl.original.unwrap();
    assert_eq!(validated.accuracy.is_some_and(|a| a < 0.0), worse, "{validated:?}");
    assert!(validated.change_text.as_deref().is_some_and(|t| t.contains(if worse { "worse" } else { "better" })));
    let other = cmp.points.iter().find(|p| p.run_id != run.id).expect("unvalidated point");
    assert!(other.accuracy.is_none() && !other.on_frontier, "never placed from the proxy: {other:?}");
    assert!(cmp.warnings.iter().any(|w| w.contains("not measured")));
    let kl = ops::compare(&state, &query, Some("KL divergence")).expect("compare on KL");
    let p = kl.points.iter().find(|p| p.run_id == run.id).expect("point");
    assert!(!p.change_is_relative && p.accuracy.is_some_and(|a| a < 0.0), "{p:?}");
    // The exported record carries the measurement, so the reviewer's report is measured too.
    let target = dir.path().join("export");
    let req = ExportRequest {
        run_id: run.id,
        format: "safetensors".into(),
        target: target.display().to_string(),
        overwrite: false,
    };
    ops::export_run(&state, &req).expect("export");
    let record = pareto_report::RunRecord::load(&target.join("pareto-run.json")).expect("record");
    assert!(record.primary_metric().is_some_and(|m| m.compressed.is_some()), "{:?}", record.validation);
    let bad = ValidateRequest { run_id: run.id, samples: None, limit: None, speed: false, device: "tpu".into() };
    assert!(crate::validate::start(&state, bad, Arc::new(|_| {})).is_err());
}

#[test]
fn a_measured_speed_sits_beside_the_projection_and_can_calibrate_it() {
    let state = opened();
    let dir = tempfile::tempdir().expect("tmp");
    let run = finished(&compress(&state, &preset("w8"), &dir.path().join("out")));
    let query = ProjectionQuery {
        scenario: "high-volume-api".into(),
        device: Some("x86_c7i_8xlarge".into()),
        traffic: TrafficOverrides::default(),
        recipe_toml: None,
        calibrate_measured: true,
    };
    let before = ops::project_plan(&state, &query).expect("project");
    assert!(before.measured.is_none(), "nothing measured yet");
    let req = ValidateRequest { run_id: run.id, samples: None, limit: Some(2), speed: true, device: "cpu".into() };
    await_job(
        "validation",
        300,
        |sink| crate::validate::start(&state, req, sink),
        |e| matches!(e, JobEvent::Validated { .. }).then_some(()),
    );
    let shown = ops::project_plan(&state, &ProjectionQuery { calibrate_measured: false, ..query.clone() }).expect("p");
    let m = shown.measured.as_ref().expect("the measurement beside the projection");
    assert!(!m.applied && m.source.contains(&format!("run #{}", run.id)), "{m:?}");
    assert_eq!(m.points.iter().map(|p| p.batch).collect::<Vec<_>>(), vec![1, 4, 16]);
    assert!(m.points.iter().all(|p| p.measured_tok_s > 0.0 && p.projected_tok_s.is_some_and(|v| v > 0.0)), "{m:?}");
    // Fitted at batch 1: the calibrated roofline lands on the measurement there.
    let p1 = &m.points[0];
    let c1 = p1.calibrated_tok_s.expect("calibrated");
    assert!((c1 / p1.measured_tok_s - 1.0).abs() < 0.05, "{p1:?}");
    let decode = |v: &ProjectionView| v.original.latency.first().map(|(_, q)| q.value).expect("latency");
    let applied = ops::project_plan(&state, &query).expect("calibrated projection");
    assert!(applied.measured.as_ref().is_some_and(|m| m.applied));
    assert_ne!(decode(&applied), decode(&shown), "the fitted efficiency changes the projection");
    assert_eq!(decode(&shown), decode(&before), "unchanged unless asked for");
    // A CPU measurement does not calibrate a GPU: shown beside its roofline, not fitted to it.
    let gpu = ProjectionQuery { device: Some("h100_sxm".into()), ..query.clone() };
    let g = ops::project_plan(&state, &gpu).expect("project on a GPU");
    let m = g.measured.expect("still shown");
    assert!(!m.applied && m.points.iter().all(|p| p.calibrated_tok_s.is_none()), "{m:?}");
    assert!(m.said.contains("ran on a CPU"), "{}", m.said);
}

#[test]
fn compute_devices_always_include_cpu() {
    assert_eq!(ops::compute_devices().first().map(|d| d.id.as_str()), Some("cpu"));
}

/// Invokes commands through the real IPC layer with the mock runtime (no display needed).
#[test]
fn ipc_round_trip_with_mock_runtime() {
    use tauri::test::{INVOKE_KEY, get_ipc_response, mock_builder};
    let app = crate::builder(mock_builder())
        .manage(Arc::new(app_state(None).0))
        .build(tauri::generate_context!())
        .expect("build app");
    let webview = tauri::WebviewWindowBuilder::new(&app, "main", Default::default()).build().expect("webview");
    let call = |cmd: &str, body: serde_json::Value| {
        get_ipc_response(
            &webview,
            tauri::webview::InvokeRequest {
                cmd: cmd.into(),
                callback: tauri::ipc::CallbackFn(0),
                error: tauri::ipc::CallbackFn(1),
                url: "tauri://localhost".parse().expect("url"),
                body: tauri::ipc::InvokeBody::Json(body),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
    };
    let view = call("open_model", serde_json::json!({ "path": stories() }))
        .expect("open_model over IPC")
        .deserialize::<serde_json::Value>()
        .expect("json");
    assert_eq!(view["summary"]["architecture"], "llama");
    let err = call("open_model", serde_json::json!({ "path": "/nope" })).expect_err("must fail");
    assert!(err.to_string().contains("/nope"), "{err}");
    let presets = call("list_presets", serde_json::json!({})).expect("presets");
    assert!(presets.deserialize::<Vec<PresetInfo>>().expect("json").len() > 5);
}

/// Regenerates ui/src/api/gen/ from the DTOs. CI runs this and then `git diff --exit-code`.
#[test]
fn export_typescript_bindings() {
    use ts_rs::TS;
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/api/gen");
    let cfg = ts_rs::Config::new().with_large_int("number").with_out_dir(&dir);
    macro_rules! export {
        ($($t:ty),* $(,)?) => { $( <$t>::export_all(&cfg).expect(stringify!($t)); )* };
    }
    export!(
        ApiError,
        ModelView,
        PresetInfo,
        FormatInfo,
        RecipeEdit,
        RecipeDoc,
        PlanView,
        JobEvent,
        RunView,
        Histogram,
        HardwareInfo,
        ScenarioInfo,
        ProjectionQuery,
        ProjectionView,
        CompareView,
        ExportFormatInfo,
        ExportRequest,
        ExportResult,
        Settings,
        ComputeDevice,
        Startup,
        ValidateRequest,
        ValidationView,
        CalibrationInput,
        ScanRequest,
        CacheRequest,
        SweepRequest,
        SweepSettings,
        BudgetQuery,
        AllocationView,
        PickRequest,
    );
}

#[test]
fn compress_on_a_device_not_compiled_in_is_a_clear_error() {
    assert!(crate::validate::accelerator(None).expect("cpu").is_none());
    assert!(crate::validate::accelerator(Some("cpu")).expect("cpu").is_none());
    if !pareto_eval::DeviceSpec::Cuda(0).compiled_in() {
        let e = crate::validate::accelerator(Some("cuda:0")).err().expect("no cuda in this build");
        assert!(e.message.contains("no cuda support"), "{}", e.message);
    }
    let e = crate::validate::accelerator(Some("tpu")).err().expect("unknown device");
    assert!(e.message.contains("expected `cpu`, `cuda:N` or `metal`"), "{}", e.message);
}

#[test]
fn scan_then_budgets_solve_against_it_and_mark_the_editors_recipe() {
    let state = opened();
    let q = |kind: &str, value: Option<f64>, current: Option<String>| BudgetQuery {
        kind: kind.into(),
        value,
        like: Some("gguf-q4_k_m".into()),
        device: None,
        scenario: None,
        base: "gguf-q4_k_m".into(),
        fuse: true,
        current_toml: current,
    };
    let e = crate::allocate::allocate(&state, &q("bpw", Some(8.0), None)).expect_err("no scan yet");
    assert!(e.message.contains("no sensitivity scan"), "{}", e.message);
    let samples =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/samples/tinystories/tinystories-valid-excerpt.txt");
    let req = ScanRequest {
        samples: samples.display().to_string(),
        windows: 4,
        window: 256,
        skip_chars: 65_536,
        formats: vec!["q4_0".into(), "q5_0".into(), "q8_0".into(), "f16".into()],
        predict_from: None,
    };
    let (view, events) = await_job(
        "scan",
        300,
        |sink| crate::allocate::start_scan(&state, req, sink),
        |e| match e {
            JobEvent::Scanned { result } => Some(result.clone()),
            _ => None,
        },
    );
    assert!(events.iter().any(|e| matches!(e, JobEvent::Stage { name, .. } if name == "sensitivity scan")));
    assert_eq!(view.layers.first().map(String::as_str), Some("embed"));
    assert_eq!(view.cells.len(), view.formats.len() * view.layers.len() * view.kinds.len());
    // Budgets solve at once against the kept scan; the editor's recipe is placed on the same axes.
    let a = crate::allocate::allocate(&state, &q("like", None, Some(preset("gguf-q4_k_m")))).expect("allocate");
    assert!(a.chosen.bytes <= a.budget_bytes);
    let current = a.current.expect("the editor's recipe");
    assert_eq!(current.bytes, a.budget_bytes, "the budget is the preset's size");
    let (chosen, now) = (a.chosen.predicted_kl.expect("kl"), current.predicted_kl.expect("kl"));
    assert!(chosen <= now + 1e-12, "the best allocation is predicted no worse than Q4_K_M: {chosen} vs {now}");
    assert!(ops::plan(&state, &a.recipe_toml).is_ok());
    let w8 = crate::allocate::allocate(&state, &q("bpw", Some(9.0), Some(preset("w8")))).expect("allocate");
    assert!(w8.current.expect("current").predicted_kl.is_none(), "int8_channel was not scanned");
    assert!(w8.notes.iter().any(|n| n.contains("did not measure")));
    let e = crate::allocate::allocate(&state, &q("bpw", Some(0.5), None)).expect_err("infeasible");
    assert!(e.message.contains("smallest allocation") || e.message.contains("other tensors"), "{}", e.message);
    // A serving target on a device: the allocation's projection meets it, a stricter one takes fewer bytes.
    let on_pi = |kind: &str, value: f64| BudgetQuery {
        device: Some("rpi5".into()),
        scenario: Some("edge".into()),
        ..q(kind, Some(value), None)
    };
    let e = crate::allocate::allocate(&state, &on_pi("tok_s", 1e9)).expect_err("out of reach");
    assert!(e.message.contains("even the smallest allocation"), "{}", e.message);
    // Targets from the projection itself (a refit of its constants moves them): half the smallest
    // allocation's speed, which larger and more accurate ones meet, and just under it, which only
    // the smallest meets.
    let fastest: f64 = e
        .message
        .split(" projects ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{}", e.message));
    let (loose, strict) = ((fastest * 5.0).round() / 10.0, ((fastest - 0.5) * 10.0).round() / 10.0);
    let fast = crate::allocate::allocate(&state, &on_pi("tok_s", loose)).expect("allocate");
    let faster = crate::allocate::allocate(&state, &on_pi("tok_s", strict)).expect("allocate");
    assert!(faster.chosen.bytes < fast.chosen.bytes, "{} vs {}", faster.chosen.bytes, fast.chosen.bytes);
    let note = format!("target {loose:.1} tok/s: this allocation projects");
    assert!(fast.notes[0].starts_with(&note), "{:?}", fast.notes);
}

/// The Project screen's cache estimate: a query log replayed as a job, and its measured rates
/// priced by the projection with their source named.
#[test]
fn a_query_log_measures_cache_rates_the_projection_prices() {
    let state = opened();
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("log.tsv");
    let asks = ["How do I reset my password?", "What is the refund policy?", "Where is my order?"];
    let mut body = String::from("timestamp\ttenant\tquery\n");
    for (i, q) in asks.iter().cycle().take(9).enumerate() {
        body.push_str(&format!("{}\t{}\t{q}\n", 1_767_225_600 + 60 * i, if i % 3 == 0 { "ads" } else { "search" }));
    }
    std::fs::write(&log, body).expect("log");
    let req = CacheRequest {
        log: log.display().to_string(),
        thresholds: vec![0.9, 0.99],
        capacity: 1000,
        ttl_seconds: None,
        updates: "never".into(),
        encoder: None,
    };
    let (view, events) = await_job(
        "cache",
        300,
        |sink| crate::cache::start(&state, req.clone(), sink),
        |e| match e {
            JobEvent::CacheEstimated { result } => Some(result.clone()),
            _ => None,
        },
    );
    assert!(events.iter().any(|e| matches!(e, JobEvent::Stage { name, .. } if name == "replaying the log")));
    assert_eq!((view.requests, view.distinct_queries, view.rows.len()), (9, 3, 2));
    let strict = &view.rows[1];
    assert!((strict.exact_hit_rate - 6.0 / 9.0).abs() < 1e-12, "{strict:?}");
    assert!(strict.precision.is_some(), "the bundled STS-B pairs estimate precision");
    assert_eq!(view.tenants.first().map(|t| t.0.as_str()), Some("search"));

    let query = |cache: Option<MeasuredCache>| ProjectionQuery {
        scenario: "high-volume-api".into(),
        device: None,
        traffic: TrafficOverrides { cache, ..Default::default() },
        recipe_toml: None,
        calibrate_measured: false,
    };
    let saves = |p: &ProjectionView| p.original.cost.iter().find(|(k, _)| k == "caching saves").map(|(_, q)| q.clone());
    let measured = MeasuredCache {
        exact_hit_rate: strict.exact_hit_rate,
        semantic_hit_rate: strict.semantic_hit_rate,
        source: "measured on log.tsv at 0.99".into(),
    };
    let p = ops::project_plan(&state, &query(Some(measured))).expect("project");
    let q = saves(&p).expect("caching saves");
    assert!(q.formula.contains("66.667% exact + 0% semantic"), "{q:?}");
    assert!(serde_json::to_string(&q).expect("json").contains("measured on log.tsv at 0.99"));
    let assumed = ops::project_plan(&state, &query(None)).expect("project");
    assert!(!serde_json::to_string(&saves(&assumed)).expect("json").contains("measured on"));

    let elsewhere = CacheRequest { log: "/nowhere-chosen/log.txt".into(), ..req };
    let e = crate::cache::start(&state, elsewhere, Arc::new(|_| {})).expect_err("a path the user did not choose");
    assert!(e.to_string().contains("/nowhere-chosen/log.txt"), "{e}");
}

/// The studio's sweep writes what `pareto sweep` writes (records, reports), resumes a folder, and
/// on Slurm (CI's one-node cluster) streams the scheduler's task states and records the same.
#[test]
fn a_sweep_from_the_studio_records_resumes_and_runs_on_slurm() {
    let state = opened();
    let tmp = tempfile::tempdir().expect("tempdir");
    let request = |out: &Path, executor: &str| SweepRequest {
        recipes: vec!["w8".into(), "gguf-q4_0".into()],
        out: out.display().to_string(),
        executor: executor.into(),
        scenario: "high-volume-api".into(),
        validate: true,
        validation_windows: None,
        detach: false,
        partition: None,
        gres: None,
        time: None,
        account: None,
    };
    let swept = |e: &JobEvent| match e {
        JobEvent::Swept { result } => Some(result.as_ref().clone()),
        _ => None,
    };
    let local = tmp.path().join("local");
    let (view, _) = await_job("sweep", 300, |sink| crate::sweep::start(&state, request(&local, "local"), sink), swept);
    let states: Vec<&str> = view.variants.iter().map(|v| v.state.as_str()).collect();
    assert_eq!(states, ["recorded", "recorded"], "{view:?}");
    assert!(view.recommendation.is_some() && Path::new(view.report_html.as_deref().expect("html")).is_file());
    assert_eq!(std::fs::read_dir(local.join("runs")).expect("runs").count(), 2);

    let (again, _) = await_job("sweep", 300, |sink| crate::sweep::start(&state, request(&local, "local"), sink), swept);
    assert!(again.variants.iter().all(|v| v.state == "resumed"), "{again:?}");

    let e = crate::sweep::start(&state, SweepRequest { recipes: vec![], ..request(&local, "local") }, Arc::new(|_| {}))
        .expect_err("no recipe");
    assert!(e.to_string().contains("at least one recipe"), "{e}");
    let one = SweepRequest { validation_windows: Some(1), ..request(&local, "local") };
    let e = crate::sweep::start(&state, one, Arc::new(|_| {})).expect_err("one window");
    assert!(e.to_string().contains("2 or more windows"), "{e}");

    // Validated on the first 3 windows: other variants (their address includes it), each KL with
    // its standard error.
    let quick = tmp.path().join("quick");
    let req = SweepRequest { validation_windows: Some(3), ..request(&quick, "local") };
    let (view, _) = await_job("sweep", 300, |sink| crate::sweep::start(&state, req, sink), swept);
    assert!(view.variants.iter().all(|v| v.state == "recorded"), "{view:?}");
    let record = std::fs::read_dir(quick.join("runs")).expect("runs").next().expect("a record").expect("entry").path();
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(record).expect("read")).expect("json");
    assert!(record["validation"]["samples"]["description"].as_str().is_some_and(|d| d.contains("(3 windows)")));
    assert!(
        record["validation"]["metrics"].as_array().expect("metrics").iter().any(|m| m["stderr"].as_f64().is_some())
    );

    let slurm_up = std::process::Command::new("sinfo").arg("-h").output().is_ok_and(|o| o.status.success());
    if std::env::var_os("PARETO_TEST_SLURM").is_none() && !slurm_up {
        eprintln!("skipped the Slurm half: no Slurm here (bash scripts/slurm-local.sh start)");
        return;
    }
    let on_slurm = tmp.path().join("slurm");
    let (view, events) =
        await_job("sweep", 300, |sink| crate::sweep::start(&state, request(&on_slurm, "slurm"), sink), swept);
    assert!(view.variants.iter().all(|v| v.state == "recorded"), "{view:?}");
    let logs: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            JobEvent::Log { line } => Some(line.as_str()),
            _ => None,
        })
        .collect();
    assert!(logs.iter().any(|l| l.starts_with("submitted 2 variant(s) as Slurm array job")), "{logs:?}");
    assert_eq!(
        std::fs::read(local.join("report.md")).expect("md"),
        std::fs::read(on_slurm.join("report.md")).expect("md"),
        "the same records give the same report"
    );
}
