//! Session state: the open model, running jobs, finished runs, and the settings persisted in the
//! app config dir (recent models, last recipe, scenario).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pareto_core::job::CancelToken;
use pareto_core::{CompressReport, Model};

use crate::access::Access;
use crate::dto::{ApiError, ApiResult, RunView, Settings, from_std};

pub const RECENT_LIMIT: usize = 10;
const SETTINGS_FILE: &str = "settings.json";

pub struct RunRecord {
    pub view: RunView,
    pub report: Arc<CompressReport>,
}

#[derive(Default)]
pub struct AppState {
    model: Mutex<Option<Arc<Model>>>,
    jobs: Mutex<HashMap<u32, CancelToken>>,
    runs: Mutex<Vec<Arc<RunRecord>>>,
    /// The latest measured validation of each run (by run id), for Compare and the exported record.
    validations: Mutex<HashMap<u32, pareto_report::Validation>>,
    /// The latest sensitivity scan of the open model (budgets are solved against it).
    scan: Mutex<Option<Arc<pareto_runs::Scan>>>,
    /// The latest decode speed measured on this machine (a validation with "measure speed"), with
    /// the model it was measured on: the Project screen shows it beside the projection.
    measured_speed: Mutex<Option<Arc<MeasuredSpeed>>>,
    next_job: AtomicU32,
    settings: Mutex<Settings>,
    /// Where settings are saved; `None` keeps them in memory (tests).
    config_dir: Option<PathBuf>,
    /// The paths the user chose; every path from the web view is checked against it.
    access: Access,
    /// The demo model shipped inside the app bundle.
    demo: Option<PathBuf>,
}

/// A decoder's speed measured on this machine, and where it came from.
#[derive(Debug)]
pub struct MeasuredSpeed {
    /// The model folder measured (the original of the validated run).
    pub model: PathBuf,
    pub speed: pareto_eval::speed::DecoderSpeed,
    /// "validation of run #3 (cpu, 2 CPUs)".
    pub source: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AppState {
    /// State persisted under `config_dir` (created on first save). Unreadable settings are
    /// replaced by defaults rather than blocking start-up; the error is returned for display.
    pub fn new(config_dir: Option<PathBuf>) -> (AppState, Option<ApiError>) {
        let mut warning = None;
        let settings = match &config_dir {
            Some(dir) => match std::fs::read_to_string(dir.join(SETTINGS_FILE)) {
                Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                    warning = Some(from_std(&e).context("saved settings were unreadable and were reset"));
                    Settings::default()
                }),
                Err(_) => Settings::default(),
            },
            None => Settings::default(),
        };
        let access = Access::default();
        for recent in &settings.recent_models {
            access.grant(std::path::Path::new(recent));
        }
        access.grant_from_env();
        let state = AppState {
            settings: Mutex::new(settings),
            config_dir,
            next_job: AtomicU32::new(1),
            access,
            ..Default::default()
        };
        (state, warning)
    }

    /// The same state asking `confirm` whether a typed path may be used (the app's native prompt).
    pub fn with_confirm(mut self, confirm: crate::access::Confirm) -> AppState {
        let roots = std::mem::take(&mut self.access);
        self.access = roots.with_confirm(confirm);
        self
    }

    pub fn access(&self) -> &Access {
        &self.access
    }

    pub fn set_demo(&mut self, dir: PathBuf) {
        self.demo = Some(dir);
    }

    /// The bundled demo model's folder, when the app ships one.
    pub fn demo(&self) -> Option<String> {
        self.demo.as_ref().map(|d| d.display().to_string())
    }

    pub fn model(&self) -> ApiResult<Arc<Model>> {
        lock(&self.model).clone().ok_or_else(|| ApiError::new("no model is open: open one on the Open screen first"))
    }

    pub fn set_model(&self, model: Arc<Model>) {
        *lock(&self.model) = Some(model);
        *lock(&self.scan) = None;
    }

    pub fn set_scan(&self, scan: Arc<pareto_runs::Scan>) {
        *lock(&self.scan) = Some(scan);
    }

    pub fn scan(&self) -> ApiResult<Arc<pareto_runs::Scan>> {
        lock(&self.scan)
            .clone()
            .ok_or_else(|| ApiError::new("no sensitivity scan yet: run one (Find the best recipe → Scan) first"))
    }

    pub fn set_measured_speed(&self, measured: MeasuredSpeed) {
        *lock(&self.measured_speed) = Some(Arc::new(measured));
    }

    /// The latest speed measurement of the model at `root`, if any.
    pub fn measured_speed(&self, root: &std::path::Path) -> Option<Arc<MeasuredSpeed>> {
        lock(&self.measured_speed).clone().filter(|m| m.model == root)
    }

    pub fn new_job(&self) -> (u32, CancelToken) {
        let id = self.next_job.fetch_add(1, Ordering::SeqCst);
        let token = CancelToken::new();
        lock(&self.jobs).insert(id, token.clone());
        (id, token)
    }

    pub fn finish_job(&self, id: u32) {
        lock(&self.jobs).remove(&id);
    }

    /// True when the job was running and is now asked to stop.
    pub fn cancel_job(&self, id: u32) -> bool {
        match lock(&self.jobs).get(&id) {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    pub fn add_run(&self, run: RunRecord) {
        lock(&self.runs).push(Arc::new(run));
    }

    pub fn runs(&self) -> Vec<Arc<RunRecord>> {
        lock(&self.runs).clone()
    }

    pub fn run(&self, id: u32) -> ApiResult<Arc<RunRecord>> {
        lock(&self.runs)
            .iter()
            .find(|r| r.view.id == id)
            .cloned()
            .ok_or_else(|| ApiError::new(format!("run #{id} is not part of this session")))
    }

    pub fn set_validation(&self, run_id: u32, validation: pareto_report::Validation) {
        lock(&self.validations).insert(run_id, validation);
    }

    pub fn validation(&self, run_id: u32) -> Option<pareto_report::Validation> {
        lock(&self.validations).get(&run_id).cloned()
    }

    pub fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    /// Saves what the page sends, except that it may only reorder or drop Recent entries: the
    /// backend adds them when a model opens, so the page cannot make a path "chosen" this way.
    pub fn save_settings(&self, mut settings: Settings) -> ApiResult<()> {
        let known = lock(&self.settings).recent_models.clone();
        settings.recent_models.retain(|r| known.contains(r));
        *lock(&self.settings) = settings.clone();
        self.persist(&settings)
    }

    /// Moves `root` to the front of the recent list and persists it.
    pub fn remember_model(&self, root: &str) {
        let settings = {
            let mut s = lock(&self.settings);
            s.recent_models.retain(|r| r != root);
            s.recent_models.insert(0, root.to_string());
            s.recent_models.truncate(RECENT_LIMIT);
            s.clone()
        };
        // Failing to persist the recent list must not fail opening a model.
        let _ = self.persist(&settings);
    }

    fn persist(&self, settings: &Settings) -> ApiResult<()> {
        let Some(dir) = &self.config_dir else { return Ok(()) };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let text = serde_json::to_string_pretty(settings).map_err(std::io::Error::other)?;
            let tmp = dir.join(format!("{SETTINGS_FILE}.tmp"));
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, dir.join(SETTINGS_FILE))
        };
        write().map_err(|e| from_std(&e).context(format!("could not save settings in {}", dir.display())))
    }
}
