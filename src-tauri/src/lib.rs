//! pareto-app: the Tauri v2 shell of the Pareto studio. Commands are thin glue over the engine
//! crates (see `ops`); the UI in `ui/` calls them only through `ui/src/api/`.

pub mod access;
pub mod allocate;
pub mod cache;
pub mod commands;
pub mod convert;
pub mod dialogs;
pub mod dto;
pub mod export;
pub mod jobs;
pub mod ops;
pub mod state;
pub mod sweep;
pub mod validate;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use tauri::Manager;

/// The usage text of the studio's command line.
pub const USAGE: &str = "Pareto studio — model compression\n\n\
Usage: pareto-app [--open <model> | <model>]\n\n\
Options:\n  \
  --open <model>  open a model folder, .safetensors or .gguf file at launch (also: PARETO_OPEN;\n                  a bare path, as a file manager passes it, works the same)\n  \
  -h, --help      print this help and exit\n  \
  -V, --version   print the version and exit\n\n\
The headless engine is the `pareto` command-line tool.";

/// What `--help` / `--version` print, when asked (before any window opens, so they work without
/// a display).
pub fn info_request(args: &[String]) -> Option<String> {
    args.iter().find_map(|a| match a.as_str() {
        "-h" | "--help" => Some(USAGE.to_string()),
        "-V" | "--version" => Some(format!("pareto-app {}", env!("CARGO_PKG_VERSION"))),
        _ => None,
    })
}

/// A model to open at launch: `--open <path>` or a bare path on the command line (what a file
/// manager passes for an associated .gguf / .safetensors), else `PARETO_OPEN`.
pub fn startup_model() -> Option<String> {
    model_argument(std::env::args().skip(1))
        .or_else(|| std::env::var("PARETO_OPEN").ok().filter(|s| !s.trim().is_empty()))
}

fn model_argument(mut args: impl Iterator<Item = String>) -> Option<String> {
    while let Some(a) = args.next() {
        if a == "--open" {
            return args.next();
        }
        if let Some(p) = a.strip_prefix("--open=") {
            return Some(p.to_string());
        }
        if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// The builder with every command and plugin registered; `run` and the tests share it.
pub fn builder<R: tauri::Runtime>(base: tauri::Builder<R>) -> tauri::Builder<R> {
    base.plugin(tauri_plugin_dialog::init()).invoke_handler(tauri::generate_handler![
        commands::startup,
        commands::save_settings,
        commands::open_model,
        commands::start_open_model,
        commands::list_presets,
        commands::list_formats,
        commands::load_recipe,
        commands::save_recipe,
        commands::pick_path,
        commands::plan,
        commands::edit_recipe,
        commands::start_compress,
        commands::cancel_job,
        commands::list_runs,
        commands::tensor_histogram,
        commands::list_hardware,
        commands::list_scenarios,
        commands::project_plan,
        commands::compare_runs,
        commands::export_formats,
        commands::export_run,
        commands::compute_devices,
        commands::start_validate,
        commands::start_scan,
        commands::start_cache_estimate,
        commands::start_sweep,
        commands::allocate,
    ])
}

pub fn run() -> anyhow::Result<()> {
    builder(tauri::Builder::default())
        .setup(|app| {
            let dir = app.path().app_config_dir().ok();
            let (state, warning) = state::AppState::new(dir);
            if let Some(w) = warning {
                eprintln!("pareto: {w}");
            }
            let handle = app.handle().clone();
            let mut state = state.with_confirm(Box::new(move |p| dialogs::confirm_typed(&handle, p)));
            if let Some(open) = startup_model() {
                state.access().grant(std::path::Path::new(&open));
            }
            // The bundle's resources (beside a development build, inside an installed one): the
            // bundled sample sets for validation, and a demo model offered on the Open screen.
            if let Ok(dir) = app.path().resource_dir() {
                pareto_eval::compare::set_bundle_root(dir.clone());
                let demo = dir.join("models/stories260K");
                if demo.join("config.json").is_file() {
                    state.access().grant(&demo);
                    state.set_demo(demo);
                }
            }
            app.manage(Arc::new(state));
            Ok(())
        })
        .on_window_event(|window, event| {
            // Files dropped on the window are chosen (the page hears of the drop too and opens them).
            if let tauri::WindowEvent::DragDrop(tauri::DragDropEvent::Drop { paths, .. }) = event {
                let state = window.state::<Arc<state::AppState>>();
                for p in paths {
                    state.access().grant(p);
                }
            }
        })
        .run(tauri::generate_context!())?;
    Ok(())
}

#[cfg(test)]
mod arg_tests {
    #[test]
    fn a_model_is_named_by_open_or_by_a_bare_path() {
        let arg = |v: &[&str]| super::model_argument(v.iter().map(|s| s.to_string()));
        assert_eq!(arg(&["--open", "/m"]).as_deref(), Some("/m"));
        assert_eq!(arg(&["--open=/m"]).as_deref(), Some("/m"));
        assert_eq!(arg(&["/home/u/model.gguf"]).as_deref(), Some("/home/u/model.gguf"));
        assert_eq!(arg(&["--verbose"]), None);
        assert_eq!(arg(&[]), None);
    }
}
