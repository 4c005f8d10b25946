//! What each command does, as plain functions over [`AppState`] so tests call them without a window.
//! Each is a few lines of glue: DTO in → pareto crate → DTO out. Conversions live in `convert`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use pareto_core::recipe::{Action, PRESETS, PruneScope, PruneSpec, QuantizeSpec, Rule};
use pareto_core::{CompressOptions, Model, Recipe};
use pareto_projection::{Catalog, Scenario};

use crate::convert;
use crate::dto::*;
use crate::jobs::ChannelProgress;
pub use crate::jobs::Sink;
use crate::state::{AppState, RunRecord};

/// Tensors larger than this are not histogrammed (two f32 copies would not fit comfortably).
pub const HISTOGRAM_MAX_ELEMENTS: u64 = 256 * 1024 * 1024;

pub fn open_model(state: &AppState, path: &str) -> ApiResult<ModelView> {
    open_model_from(state, path, &pareto_core::job::JobContext::silent())
}

/// [`open_model`] with progress and cancel: a GGUF is converted first (once; then cached), which
/// takes a while for a large file.
pub fn open_model_from(state: &AppState, path: &str, ctx: &pareto_core::job::JobContext) -> ApiResult<ModelView> {
    let started = Instant::now();
    let path = state.access().check(path, "the model")?;
    let path = path.to_str().ok_or_else(|| ApiError::new(format!("{} is not valid UTF-8", path.display())))?;
    let could_not = |e: pareto_core::Error| ApiError::from(e).context(format!("could not open {path}"));
    let gguf = pareto_core::import::is_gguf(std::path::Path::new(path));
    let folder = if gguf {
        pareto_core::import::open_cached(std::path::Path::new(path), ctx).map_err(could_not)?
    } else {
        std::path::PathBuf::from(path)
    };
    let model = Model::open(&folder).map_err(could_not)?;
    let mut view = convert::model_view(&model);
    state.set_model(Arc::new(model));
    // A GGUF opens through its cached conversion; the user's file is what Recent lists.
    state.remember_model(if gguf { path } else { &view.summary.root });
    view.open_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(view)
}

/// Opens a model as a job: progress events while a GGUF converts, then `Opened` (or `Failed`,
/// `Cancelled`).
pub fn start_open_model(state: &Arc<AppState>, path: String, sink: Sink) -> ApiResult<u32> {
    let state_after = Arc::clone(state);
    crate::jobs::spawn(state, "open", sink, move |ctx| {
        Ok(JobEvent::Opened { model: Box::new(open_model_from(&state_after, &path, ctx)?) })
    })
}

pub fn list_presets() -> Vec<PresetInfo> {
    PRESETS
        .iter()
        .map(|p| PresetInfo {
            name: p.name.to_string(),
            description: Recipe::from_toml(p.toml, p.name).map(|r| r.description).unwrap_or_default(),
            toml: p.toml.to_string(),
        })
        .collect()
}

pub fn list_formats() -> Vec<FormatInfo> {
    pareto_formats::registry()
        .iter()
        .map(|f| FormatInfo {
            id: f.id.to_string(),
            bits_per_weight: f.bits_per_weight,
            description: f.description.to_string(),
            scan_default: pareto_runs::scan::DEFAULT_FORMATS.iter().position(|d| *d == f.id).map(|i| i as u32),
        })
        .collect()
}

/// A preset name or a path to a recipe TOML file → its text.
pub fn load_recipe(state: &AppState, preset_or_path: &str) -> ApiResult<String> {
    let key = &state.access().check_recipe(preset_or_path)?;
    let recipe = Recipe::load(key)?;
    match pareto_core::recipe::preset(key) {
        // The preset's own text (comments and layout) rather than a re-serialisation.
        Some(p) => Ok(p.toml.to_string()),
        None => std::fs::read_to_string(key)
            .map_err(|e| from_std(&e).context(format!("could not read {key}")))
            .or_else(|_| Ok(recipe.to_toml()?)),
    }
}

/// Writes the recipe where the user chose (a file beside it first, then renamed over the name, so
/// a failed write never leaves half a file there).
pub fn save_recipe(state: &AppState, path: &str, toml: &str) -> ApiResult<()> {
    let path = state.access().check(path, "where to save the recipe")?;
    Recipe::from_toml(toml, &path.display().to_string())?;
    let name = path.file_name().ok_or_else(|| ApiError::new(format!("{} names no file", path.display())))?;
    let tmp = path.with_file_name(format!(".{}.pareto-tmp", name.to_string_lossy()));
    std::fs::write(&tmp, toml).and_then(|()| std::fs::rename(&tmp, &path)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        from_std(&e).context(format!("could not write the recipe to {}", path.display()))
    })
}

/// Parses `toml`, resolves it against the open model and returns the per-tensor plan. No weights
/// are read, so this runs on every keystroke.
pub fn plan(state: &AppState, toml: &str) -> ApiResult<PlanView> {
    let started = Instant::now();
    let model = state.model()?;
    let recipe = Recipe::from_toml(toml, "the recipe editor")?;
    let plan = recipe.resolve(&model)?;
    let doc = convert::recipe_doc(&recipe, toml.to_string(), Vec::new());
    let mut view = convert::plan_view(&plan, doc);
    view.plan_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(view)
}

fn action_of(edit: &ActionEdit) -> Action {
    match edit {
        ActionEdit::Keep => Action::default(),
        ActionEdit::Quantize { format } => Action {
            prune: None,
            quantize: Some(QuantizeSpec { format: format.clone(), algorithm: Default::default() }),
        },
        ActionEdit::Prune { sparsity } => Action {
            prune: Some(PruneSpec::Magnitude { sparsity: *sparsity, scope: PruneScope::Tensor }),
            quantize: None,
        },
        ActionEdit::Sparse24 => Action { prune: Some(PruneSpec::NM { n: 2, m: 4 }), quantize: None },
    }
}

/// Escapes a tensor name into an exact-match regex target.
fn exact_target(name: &str) -> String {
    let mut s = String::from("re:^");
    for c in name.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('$');
    s
}

/// Applies a structured edit to the recipe text and returns the new document.
pub fn edit_recipe(state: &AppState, toml: &str, edit: &RecipeEdit) -> ApiResult<RecipeDoc> {
    let mut recipe = Recipe::from_toml(toml, "the recipe editor")?;
    let mut selection: Vec<String> = Vec::new();
    match edit {
        RecipeEdit::SetDefault { action } => recipe.default = action_of(action),
        RecipeEdit::Override { tensors, action } => {
            if tensors.is_empty() {
                return Err(ApiError::new("select at least one tensor to override"));
            }
            selection.clone_from(tensors);
            let targets = tensors.iter().map(|t| exact_target(t)).collect();
            recipe.rules.insert(0, Rule { targets, layers: None, with_imatrix: false, action: action_of(action) });
        }
        RecipeEdit::RemoveRule { index } => {
            if *index >= recipe.rules.len() {
                return Err(ApiError::new(format!(
                    "rule {} does not exist (the recipe has {})",
                    index + 1,
                    recipe.rules.len()
                )));
            }
            recipe.rules.remove(*index);
        }
    }
    recipe.validate()?;
    let text = recipe.to_toml()?;
    let mut ignored = Vec::new();
    if !selection.is_empty()
        && let Ok(model) = state.model()
    {
        let plan = recipe.resolve(&model)?;
        ignored = plan
            .tensors
            .iter()
            .filter(|t| {
                matches!(t.reason, pareto_core::recipe::Reason::Ignored(_)) && selection.contains(&t.source_name)
            })
            .map(|t| t.source_name.clone())
            .collect();
    }
    Ok(convert::recipe_doc(&recipe, text, ignored))
}

/// Starts compressing the open model with `toml` into `out` on a worker thread and returns the job
/// id at once; progress, the result or the error arrive as [`JobEvent`]s on `sink`.
pub fn start_compress(
    state: &Arc<AppState>,
    toml: &str,
    out: &str,
    overwrite: bool,
    device: Option<&str>,
    calibration: Option<CalibrationInput>,
    sink: Sink,
) -> ApiResult<u32> {
    let model = state.model()?;
    let recipe = Recipe::from_toml(toml, "the recipe editor")?;
    let plan = recipe.resolve(&model)?;
    if out.trim().is_empty() {
        return Err(ApiError::new("choose an output folder for the compressed model"));
    }
    let out = state.access().check(out, "the output folder")?;
    let mut opts = CompressOptions::new(&out);
    opts.force = overwrite;
    opts.accelerator = crate::validate::accelerator(device)?;
    // A calibrated recipe: the set is checked and the output folder vetted now, before the long
    // calibration runs on the worker.
    let calibration = match (plan.totals.calibrated, calibration) {
        (0, _) => None,
        (n, None) => {
            return Err(ApiError::new(format!(
                "{n} tensors of this recipe are decided by a calibration set (GPTQ or Wanda): choose a text file under \"Calibration text\""
            )));
        }
        (_, Some(c)) if c.samples.trim().is_empty() => {
            return Err(ApiError::new(
                "choose a calibration text file (plain text the model has not been evaluated on)",
            ));
        }
        (_, Some(c)) => Some(pareto_runs::CalibrationSpec {
            windows: c.windows,
            window: c.window,
            skip_chars: c.skip_chars,
            ..pareto_runs::CalibrationSpec::new(state.access().check(&c.samples, "the calibration text")?)
        }),
    };
    if calibration.is_some() {
        pareto_core::compress::check_output(&model, &opts)?;
    }
    let (id, cancel) = state.new_job();
    let state = Arc::clone(state);
    let toml = toml.to_string();
    std::thread::Builder::new()
        .name(format!("compress-{id}"))
        .spawn(move || {
            let progress = Arc::new(ChannelProgress::new(Arc::clone(&sink)));
            let ctx = pareto_core::job::JobContext::new(progress.clone(), cancel);
            // Leave one core to the webview so the window keeps painting during long runs.
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1));
            let work = || -> Result<pareto_core::CompressReport, Box<pareto_runs::RunError>> {
                let mut opts = opts;
                if let Some(spec) = &calibration {
                    opts.solver = Some(pareto_runs::calibrate(model.root(), &plan, spec, &ctx).map_err(Box::new)?.0);
                }
                pareto_core::compress(&model, &plan, &opts, &ctx).map_err(|e| Box::new(e.into()))
            };
            let result = match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
                Ok(pool) => pool.install(work),
                Err(_) => work(),
            };
            progress.flush();
            state.finish_job(id);
            let event = match result {
                Ok(report) => {
                    let run = convert::run_view(id, &report, &toml, &recipe.name);
                    state.add_run(RunRecord { view: run.clone(), report: Arc::new(report) });
                    JobEvent::Finished { run: Box::new(run) }
                }
                Err(e) if matches!(*e, pareto_runs::RunError::Core(pareto_core::Error::Cancelled)) => {
                    JobEvent::Cancelled
                }
                Err(e) => JobEvent::Failed { error: from_std(&*e).context("compression failed") },
            };
            sink(event);
        })
        .map_err(|e| from_std(&e).context("could not start a worker thread"))?;
    Ok(id)
}

pub fn cancel_job(state: &AppState, id: u32) -> bool {
    state.cancel_job(id)
}

pub fn runs(state: &AppState) -> Vec<RunView> {
    state.runs().iter().map(|r| r.view.clone()).collect()
}

/// Before/after histograms of one tensor of a run, over a shared range.
pub fn tensor_histogram(state: &AppState, run_id: u32, tensor: &str, bins: usize) -> ApiResult<Histogram> {
    let run = state.run(run_id)?;
    let source = Model::open(&run.report.source)?;
    let output = Model::open(&run.report.output)?;
    let before_info = source.tensor(tensor)?;
    let after_info = output.tensor(tensor).or_else(|_| {
        // Structured cuts keep names; a renamed layer is looked up by its output name.
        let out_name = run.view.tensors.iter().find(|t| t.name == tensor).map(|t| t.name.clone());
        output.tensor(out_name.as_deref().unwrap_or(tensor))
    })?;
    for info in [before_info, after_info] {
        if info.numel() > HISTOGRAM_MAX_ELEMENTS {
            return Err(ApiError::new(format!(
                "{} has {} elements; histograms are drawn for tensors up to {} elements",
                info.name,
                info.numel(),
                HISTOGRAM_MAX_ELEMENTS
            )));
        }
    }
    let before = source.read_f32(before_info)?;
    let after = output.read_f32(after_info)?;
    Ok(convert::histogram(&before, &after, bins.clamp(8, 512)))
}

fn scenario_with(query: &ProjectionQuery) -> ApiResult<Scenario> {
    let mut scenario = Scenario::load(&query.scenario)?;
    if let Some(v) = query.traffic.requests_per_day {
        scenario.requests_per_day = v;
    }
    if let Some(v) = query.traffic.input_tokens {
        scenario.input_tokens = v;
    }
    if let Some(v) = query.traffic.output_tokens {
        scenario.output_tokens = v;
    }
    if let Some(e) = query.traffic.engine.as_deref().filter(|e| !e.is_empty()) {
        scenario.engine = Some(e.to_owned());
    }
    if let Some(c) = &query.traffic.cache {
        scenario.cache.exact_hit_rate = c.exact_hit_rate;
        scenario.cache.semantic_hit_rate = c.semantic_hit_rate;
        scenario.cache.measured_by = Some(c.source.clone());
    }
    scenario.validate()?;
    Ok(scenario)
}

pub fn list_hardware() -> ApiResult<Vec<HardwareInfo>> {
    let catalog = Catalog::builtin()?;
    catalog
        .ids()
        .iter()
        .map(|id| {
            let d = catalog.get(id)?;
            Ok(HardwareInfo {
                id: d.id.clone(),
                name: d.name.clone(),
                kind: convert::json_str(&d.kind),
                mem_gib: d.mem_gib,
            })
        })
        .collect()
}

pub fn list_scenarios() -> ApiResult<Vec<ScenarioInfo>> {
    Scenario::preset_ids()
        .into_iter()
        .map(|id| {
            let s = Scenario::preset(id)?;
            Ok(ScenarioInfo {
                id: id.to_string(),
                description: s.description,
                requests_per_day: s.requests_per_day,
                input_tokens: s.input_tokens,
                output_tokens: s.output_tokens,
                default_device: s.default_device,
                engine: s.engine,
            })
        })
        .collect()
}

/// Memory, latency and cost of the open model before (and after, with a recipe) on one device.
pub fn project_plan(state: &AppState, query: &ProjectionQuery) -> ApiResult<ProjectionView> {
    let started = Instant::now();
    let model = state.model()?;
    let catalog = Catalog::builtin()?;
    let scenario = scenario_with(query)?;
    let recipe = match &query.recipe_toml {
        Some(t) => Recipe::from_toml(t, "the recipe editor")?,
        None => Recipe::from_toml("name = \"original\"\n", "original")?,
    };
    let plan = recipe.resolve(&model)?;
    // A speed measured on this machine: its points beside the chosen device's roofline, and its
    // fitted efficiency in the projection when asked for.
    let measured = match state.measured_speed(model.root()) {
        Some(m) => {
            let device = catalog.get(&pareto_core::plan_projection::device_id(&scenario, query.device.as_deref()))?;
            let curve =
                pareto_runs::measured::curve(&m.speed, &model, &plan, device, &m.source).map_err(|e| from_std(&e))?;
            Some((m, curve))
        }
        None => None,
    };
    let efficiency = measured.as_ref().filter(|_| query.calibrate_measured).and_then(|(_, c)| c.efficiency.clone());
    let applied = efficiency.is_some();
    let projection = pareto_core::plan_projection::project_plan_with(
        &model,
        &plan,
        &catalog,
        &scenario,
        query.device.as_deref(),
        query.recipe_toml.is_some(),
        efficiency,
    )?;
    let mut view = convert::projection_view(&projection);
    view.measured = measured.map(|(m, c)| MeasuredSpeedView {
        source: m.source.clone(),
        device: c.device,
        points: c.points,
        said: c.said,
        applied,
    });
    view.project_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(view)
}

/// Every run of this session on (projected cost, accuracy) through the report's comparison, so
/// the studio and `pareto report` draw one frontier. The accuracy axis is the measured metric
/// `metric` names; with none named, the primary metric once any run is validated, else the
/// labelled weight-error proxy. Runs without the chosen measurement are listed as not measured.
pub fn compare(state: &AppState, query: &ProjectionQuery, metric: Option<&str>) -> ApiResult<CompareView> {
    let runs = state.runs();
    let scenario = scenario_with(query)?;
    let mut records = Vec::with_capacity(runs.len());
    let mut models: HashMap<PathBuf, Model> = HashMap::new();
    for r in &runs {
        let model = match models.entry(r.report.source.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(Model::open(&r.report.source)?),
        };
        let model = &*model;
        let recipe = Recipe::from_toml(&r.view.recipe_toml, "the run's recipe")?;
        let plan = recipe.resolve(model)?;
        records.push(run_record(state, r, model, &plan, &recipe, &scenario, query.device.as_deref())?);
    }
    if records.is_empty() {
        return Ok(CompareView::default());
    }
    let any_measured = records.iter().any(|r| r.validation.is_some());
    let metric = metric.or((!any_measured).then_some(pareto_report::WEIGHT_ERROR_PROXY));
    let cmp = pareto_report::compare_on(&records, metric).map_err(|e| from_std(&e))?;
    Ok(convert::compare_view(&runs, &cmp))
}

pub fn export_formats() -> Vec<ExportFormatInfo> {
    use pareto_core::export::ExportFormat;
    ExportFormat::ALL
        .iter()
        .map(|f| {
            let (label, loads_in, note) = match f {
                ExportFormat::Safetensors => (
                    "Dense safetensors",
                    "transformers, vLLM, candle, any safetensors loader",
                    "full-size dense weights with the compression applied; copies the run's output",
                ),
                ExportFormat::CompressedTensors => (
                    "compressed-tensors",
                    "vLLM, SGLang, transformers",
                    "packed; re-runs the recipe into the packed writer",
                ),
                ExportFormat::Gguf => {
                    ("GGUF", "llama.cpp, Ollama, LM Studio", "packed; re-runs the recipe into the GGUF writer")
                }
                ExportFormat::Gptq => {
                    ("GPTQ v1", "AutoGPTQ / GPTQModel, vLLM, TGI", "packed; re-runs the recipe into the GPTQ writer")
                }
            };
            ExportFormatInfo {
                id: f.as_str().to_string(),
                label: label.to_string(),
                loads_in: loads_in.to_string(),
                available: true,
                note: note.to_string(),
            }
        })
        .collect()
}

/// The run as a versioned run record (the same one `pareto sweep` writes), projected on the
/// session's scenario and hardware; source hashes come from the run's manifest.
fn run_record(
    state: &AppState,
    run: &RunRecord,
    model: &Model,
    plan: &pareto_core::Plan,
    recipe: &Recipe,
    scenario: &Scenario,
    device: Option<&str>,
) -> ApiResult<pareto_report::RunRecord> {
    let manifest = run.report.output.join("pareto-manifest.json");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| from_std(&e).context(format!("reading {}", manifest.display())))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| from_std(&e).context(format!("parsing {}", manifest.display())))?;
    let records: Vec<pareto_core::export::FileRecord> = serde_json::from_value(value["source_files"].clone())
        .map_err(|e| from_std(&e).context("the manifest's source_files"))?;
    let files: Vec<pareto_report::FileHash> = records.into_iter().map(pareto_runs::file_hash).collect();
    let projection =
        pareto_core::plan_projection::project_plan(model, plan, &Catalog::builtin()?, scenario, device, true)?;
    let toml = recipe.to_toml()?;
    let id = pareto_runs::variant_id(&files, &toml, &[run.report.content_hash.as_str()]);
    let started = pareto_runs::rfc3339(std::time::SystemTime::now());
    let validation = state.validation(run.view.id);
    pareto_runs::assemble(model, plan, recipe, &run.report, &files, id, started, validation, Some(&projection))
        .map_err(|e| from_std(&e).context("assembling the run record"))
}

/// Writes a run's artifact to `target` with its manifest, plus `report.json` and `report.md`.
/// Dense: the run's own output is copied. Packed formats: the run's recipe is applied again through
/// that format's writer (same plan, same source). Built in a temporary sibling folder and renamed
/// into place.
pub fn export_run(state: &AppState, req: &ExportRequest) -> ApiResult<ExportResult> {
    use pareto_core::export::ExportFormat;
    let run = state.run(req.run_id)?;
    let format = ExportFormat::parse(&req.format).ok_or_else(|| {
        ApiError::new(format!(
            "unknown export format {:?} (valid: {})",
            req.format,
            ExportFormat::ALL.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
        ))
    })?;
    if req.target.trim().is_empty() {
        return Err(ApiError::new("choose a target folder"));
    }
    let target = state.access().check(&req.target, "the export folder")?;
    let model = Model::open(&run.report.source)?;
    let recipe = Recipe::from_toml(&run.view.recipe_toml, "the run's recipe")?;
    let plan = recipe.resolve(&model)?;
    let settings = state.settings();
    let scenario = Scenario::load(settings.scenario.as_deref().unwrap_or("high-volume-api"))?;
    let record = run_record(state, &run, &model, &plan, &recipe, &scenario, settings.device.as_deref())?;
    if format == ExportFormat::Safetensors {
        return crate::export::write(&run, &record, &target, req.overwrite, model.source_paths(), None);
    }
    let protect = model.source_paths();
    let packer = move |dir: &Path| -> ApiResult<()> {
        let opts = CompressOptions::new(dir).with_format(format);
        pareto_core::compress(&model, &plan, &opts, &pareto_core::job::JobContext::silent())
            .map(|_| ())
            .map_err(|e| ApiError::from(e).context(format!("{} export failed", format.as_str())))
    };
    crate::export::write(&run, &record, &target, req.overwrite, protect, Some(&packer))
}

pub fn compute_devices() -> Vec<ComputeDevice> {
    crate::validate::devices()
}
