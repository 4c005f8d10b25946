//! The `#[tauri::command]`s: each takes DTOs, runs the matching `ops` function off the main thread
//! and returns DTOs. Nothing else lives here.

use std::sync::Arc;

use tauri::State;
use tauri::ipc::Channel;

use crate::dto::*;
use crate::ops;
use crate::state::AppState;

type S<'a> = State<'a, Arc<AppState>>;

/// Runs `f` on the blocking pool so the webview's event loop never waits on file I/O.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tauri::async_runtime::spawn_blocking(f).await.map_err(|e| ApiError::new(format!("worker failed: {e}")))?
}

#[tauri::command]
pub async fn startup(state: S<'_>) -> ApiResult<Startup> {
    Ok(Startup {
        open: crate::startup_model(),
        demo: state.demo(),
        settings: state.settings(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

#[tauri::command]
pub async fn save_settings(state: S<'_>, settings: Settings) -> ApiResult<()> {
    let state = Arc::clone(&state);
    blocking(move || state.save_settings(settings)).await
}

#[tauri::command]
pub async fn open_model(state: S<'_>, path: String) -> ApiResult<ModelView> {
    let state = Arc::clone(&state);
    blocking(move || ops::open_model(&state, &path)).await
}

/// Opens a model as a cancellable job with progress (what the studio uses for a GGUF).
#[tauri::command]
pub async fn start_open_model(state: S<'_>, path: String, on_event: Channel<JobEvent>) -> ApiResult<u32> {
    let sink: ops::Sink = Arc::new(move |e: JobEvent| {
        let _ = on_event.send(e);
    });
    ops::start_open_model(&state, path, sink)
}

#[tauri::command]
pub async fn list_presets() -> ApiResult<Vec<PresetInfo>> {
    Ok(ops::list_presets())
}

#[tauri::command]
pub async fn list_formats() -> ApiResult<Vec<FormatInfo>> {
    Ok(ops::list_formats())
}

#[tauri::command]
pub async fn load_recipe(state: S<'_>, preset_or_path: String) -> ApiResult<String> {
    let state = Arc::clone(&state);
    blocking(move || ops::load_recipe(&state, &preset_or_path)).await
}

#[tauri::command]
pub async fn save_recipe(state: S<'_>, path: String, toml: String) -> ApiResult<()> {
    let state = Arc::clone(&state);
    blocking(move || ops::save_recipe(&state, &path, &toml)).await
}

/// The native open/save dialog, run by the backend so that what the user picks becomes a chosen
/// path (`access`); `None` when the dialog was dismissed.
#[tauri::command]
pub async fn pick_path<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    state: S<'_>,
    request: PickRequest,
) -> ApiResult<Option<String>> {
    let state = Arc::clone(&state);
    blocking(move || crate::dialogs::pick(&app, &state, &request)).await
}

#[tauri::command]
pub async fn plan(state: S<'_>, toml: String) -> ApiResult<PlanView> {
    let state = Arc::clone(&state);
    blocking(move || ops::plan(&state, &toml)).await
}

#[tauri::command]
pub async fn edit_recipe(state: S<'_>, toml: String, edit: RecipeEdit) -> ApiResult<RecipeDoc> {
    let state = Arc::clone(&state);
    blocking(move || ops::edit_recipe(&state, &toml, &edit)).await
}

#[tauri::command]
pub async fn start_compress(
    state: S<'_>,
    toml: String,
    out: String,
    overwrite: bool,
    device: Option<String>,
    calibration: Option<CalibrationInput>,
    on_event: Channel<JobEvent>,
) -> ApiResult<u32> {
    let sink: ops::Sink = Arc::new(move |e: JobEvent| {
        // A closed window drops the channel; the job still finishes and is recorded.
        let _ = on_event.send(e);
    });
    ops::start_compress(&state, &toml, &out, overwrite, device.as_deref(), calibration, sink)
}

#[tauri::command]
pub async fn cancel_job(state: S<'_>, id: u32) -> ApiResult<bool> {
    Ok(ops::cancel_job(&state, id))
}

#[tauri::command]
pub async fn list_runs(state: S<'_>) -> ApiResult<Vec<RunView>> {
    Ok(ops::runs(&state))
}

#[tauri::command]
pub async fn tensor_histogram(state: S<'_>, run_id: u32, tensor: String, bins: usize) -> ApiResult<Histogram> {
    let state = Arc::clone(&state);
    blocking(move || ops::tensor_histogram(&state, run_id, &tensor, bins)).await
}

#[tauri::command]
pub async fn list_hardware() -> ApiResult<Vec<HardwareInfo>> {
    ops::list_hardware()
}

#[tauri::command]
pub async fn list_scenarios() -> ApiResult<Vec<ScenarioInfo>> {
    ops::list_scenarios()
}

#[tauri::command]
pub async fn project_plan(state: S<'_>, query: ProjectionQuery) -> ApiResult<ProjectionView> {
    let state = Arc::clone(&state);
    blocking(move || ops::project_plan(&state, &query)).await
}

#[tauri::command]
pub async fn compare_runs(state: S<'_>, query: ProjectionQuery, metric: Option<String>) -> ApiResult<CompareView> {
    let state = Arc::clone(&state);
    blocking(move || ops::compare(&state, &query, metric.as_deref())).await
}

#[tauri::command]
pub async fn export_formats() -> ApiResult<Vec<ExportFormatInfo>> {
    Ok(ops::export_formats())
}

#[tauri::command]
pub async fn export_run(state: S<'_>, request: ExportRequest) -> ApiResult<ExportResult> {
    let state = Arc::clone(&state);
    blocking(move || ops::export_run(&state, &request)).await
}

#[tauri::command]
pub async fn compute_devices() -> ApiResult<Vec<ComputeDevice>> {
    Ok(ops::compute_devices())
}

#[tauri::command]
pub async fn start_validate(state: S<'_>, request: ValidateRequest, on_event: Channel<JobEvent>) -> ApiResult<u32> {
    let sink: ops::Sink = Arc::new(move |e: JobEvent| {
        let _ = on_event.send(e);
    });
    crate::validate::start(&state, request, sink)
}

#[tauri::command]
pub async fn start_scan(state: S<'_>, request: ScanRequest, on_event: Channel<JobEvent>) -> ApiResult<u32> {
    let sink: ops::Sink = Arc::new(move |e: JobEvent| {
        let _ = on_event.send(e);
    });
    crate::allocate::start_scan(&state, request, sink)
}

#[tauri::command]
pub async fn start_cache_estimate(state: S<'_>, request: CacheRequest, on_event: Channel<JobEvent>) -> ApiResult<u32> {
    let sink: ops::Sink = Arc::new(move |e: JobEvent| {
        let _ = on_event.send(e);
    });
    crate::cache::start(&state, request, sink)
}

#[tauri::command]
pub async fn start_sweep(state: S<'_>, request: SweepRequest, on_event: Channel<JobEvent>) -> ApiResult<u32> {
    let sink: ops::Sink = Arc::new(move |e: JobEvent| {
        let _ = on_event.send(e);
    });
    crate::sweep::start(&state, request, sink)
}

#[tauri::command]
pub async fn allocate(state: S<'_>, query: BudgetQuery) -> ApiResult<AllocationView> {
    let state = Arc::clone(&state);
    blocking(move || crate::allocate::allocate(&state, &query)).await
}
