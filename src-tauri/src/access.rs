//! Which paths the studio may read or write: only those the user chose. A path is chosen when the
//! user picked it in a native dialog the backend opened (`pick_path`), dropped it on the window,
//! named it on the command line (`--open`), opened it in an earlier session (Recent, kept by the
//! backend, never by the page), listed it in `PARETO_STUDIO_ALLOW`, or typed it and then allowed it
//! in a native prompt the web view cannot answer. Everything under a chosen folder counts as chosen.
//! Every command that receives a path from the web view passes it through [`Access::check`] first,
//! so a page that went wrong (or was made to) cannot read or write anything else.

use std::path::{Path, PathBuf};

/// The path made absolute, symlinks resolved where it exists and `..` lexically where it does not:
/// the engine's own rule for "inside the source" is the studio's rule for "inside a chosen path".
use pareto_core::export::protect::resolve;
use std::sync::Mutex;

use crate::dto::{ApiError, ApiResult};

/// Asks the user whether a typed path may be used (a native prompt); `false` refuses it.
pub type Confirm = Box<dyn Fn(&Path) -> bool + Send + Sync>;

/// The environment variable listing extra chosen paths (`:`-separated, as `PATH`), for scripted
/// sessions such as the WebDriver tests.
pub const ALLOW_ENV: &str = "PARETO_STUDIO_ALLOW";

#[derive(Default)]
pub struct Access {
    roots: Mutex<Vec<PathBuf>>,
    confirm: Option<Confirm>,
}

impl Access {
    /// No path chosen yet; typed paths are put to `confirm` (refused when `None`).
    pub fn new(confirm: Option<Confirm>) -> Access {
        Access { roots: Mutex::new(Vec::new()), confirm }
    }

    /// The same chosen paths, typed paths put to `confirm`.
    pub fn with_confirm(self, confirm: Confirm) -> Access {
        Access { confirm: Some(confirm), ..self }
    }

    /// Marks `path` (and everything under it) as chosen by the user.
    pub fn grant(&self, path: &Path) {
        let p = resolve(path);
        let mut roots = self.roots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !roots.iter().any(|r| p.starts_with(r)) {
            roots.push(p);
        }
    }

    /// The paths in [`ALLOW_ENV`].
    pub fn grant_from_env(&self) {
        if let Some(list) = std::env::var_os(ALLOW_ENV) {
            for p in std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()) {
                self.grant(&p);
            }
        }
    }

    /// Whether `path`, resolved through symlinks and `..`, lies at or under a chosen path.
    pub fn allows(&self, path: &Path) -> bool {
        let p = resolve(path);
        self.roots.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().any(|r| p.starts_with(r))
    }

    /// `raw` (trimmed) when the user chose it, else after the user allows it in the prompt; an
    /// error naming the path otherwise. `what` says what the path is for ("the model", "the output
    /// folder"), for the prompt and the error.
    pub fn check(&self, raw: &str, what: &str) -> ApiResult<PathBuf> {
        let path = PathBuf::from(raw.trim());
        if path.as_os_str().is_empty() {
            return Err(ApiError::new(format!("no path given for {what}")));
        }
        if self.allows(&path) {
            return Ok(path);
        }
        if self.confirm.as_ref().is_some_and(|ask| ask(&path)) {
            self.grant(&path);
            return Ok(path);
        }
        Err(ApiError::new(format!(
            "{} was not chosen in this session, so the studio will not use it as {what}: pick it with Browse…, drop it on the window or open it from Recent",
            path.display()
        )))
    }
}

impl Access {
    /// A built-in preset's name as it is; anything else is a recipe file, checked as a path.
    pub fn check_recipe(&self, preset_or_path: &str) -> ApiResult<String> {
        let key = preset_or_path.trim();
        if pareto_core::recipe::preset(key).is_some() {
            return Ok(key.to_string());
        }
        Ok(self.check(key, "a recipe")?.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_folders_cover_their_contents_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let (chosen, other) = (tmp.path().join("chosen"), tmp.path().join("other"));
        std::fs::create_dir_all(chosen.join("sub")).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let access = Access::new(None);
        access.grant(&chosen);
        assert!(access.allows(&chosen.join("sub/file.txt")));
        assert!(access.allows(&chosen.join("not/yet/made")));
        assert!(!access.allows(&other));
        assert!(!access.allows(&tmp.path().join("chosen-twin")), "a prefix of the name is not the folder");
        // Climbing out, directly or through a link made inside the chosen folder, is not inside.
        assert!(!access.allows(&chosen.join("../other")));
        assert!(!access.allows(&chosen.join("missing/../../other")));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&other, chosen.join("link")).unwrap();
            assert!(!access.allows(&chosen.join("link/x")));
        }
        let e = access.check(other.to_str().unwrap(), "the model").unwrap_err();
        assert!(e.message.contains("was not chosen") && e.message.contains("other"), "{}", e.message);
    }

    #[test]
    fn a_typed_path_is_used_only_when_the_user_allows_it() {
        let tmp = tempfile::tempdir().unwrap();
        let asked = std::sync::Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let allow = tmp.path().join("yes");
        let yes = allow.clone();
        let access = Access::new(Some(Box::new(move |p: &Path| {
            log.lock().unwrap().push(p.to_path_buf());
            p == yes
        })));
        assert!(access.check(tmp.path().join("no").to_str().unwrap(), "the output folder").is_err());
        assert_eq!(access.check(allow.to_str().unwrap(), "the output folder").unwrap(), allow);
        // Allowed once, then chosen: not asked again.
        access.check(allow.join("inside").to_str().unwrap(), "the output folder").unwrap();
        assert_eq!(asked.lock().unwrap().len(), 2);
    }
}
