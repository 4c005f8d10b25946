//! The native dialogs the backend opens itself, so the page never decides which paths are chosen:
//! the file picker behind every Browse… button and the prompt for a typed path.

use std::path::Path;

use tauri_plugin_dialog::{DialogExt, MessageDialogButtons, MessageDialogKind};

use crate::dto::{ApiError, ApiResult, PickRequest, from_std};
use crate::state::AppState;

/// Shows the open/save dialog `req` describes; the picked path becomes chosen (`access`).
pub fn pick<R: tauri::Runtime>(
    app: &tauri::AppHandle<R>,
    state: &AppState,
    req: &PickRequest,
) -> ApiResult<Option<String>> {
    let mut dialog = app.dialog().file().set_title(&req.title);
    for f in &req.filters {
        let extensions: Vec<&str> = f.extensions.iter().map(String::as_str).collect();
        dialog = dialog.add_filter(&f.name, &extensions);
    }
    let picked = match (req.save, req.directory) {
        (true, _) => dialog.blocking_save_file(),
        (false, true) => dialog.blocking_pick_folder(),
        (false, false) => dialog.blocking_pick_file(),
    };
    let Some(picked) = picked else { return Ok(None) };
    let path = picked.into_path().map_err(|e| from_std(&e).context("the dialog returned no local path"))?;
    state.access().grant(&path);
    path.to_str()
        .map(|s| Some(s.to_string()))
        .ok_or_else(|| ApiError::new(format!("{} is not valid UTF-8", path.display())))
}

/// The prompt for a path the user typed rather than picked: `true` when they allow it.
pub fn confirm_typed<R: tauri::Runtime>(app: &tauri::AppHandle<R>, path: &Path) -> bool {
    app.dialog()
        .message(format!(
            "The studio was asked to use\n\n{}\n\nwhich was typed rather than chosen with Browse…. Allow the studio to read and write it for this session?",
            path.display()
        ))
        .title("Allow access to a typed path?")
        .kind(MessageDialogKind::Warning)
        .buttons(MessageDialogButtons::OkCancelCustom("Allow".into(), "Refuse".into()))
        .blocking_show()
}
