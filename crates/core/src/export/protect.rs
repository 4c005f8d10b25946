//! What an output may replace: never the source model (its folder, any file it was read from,
//! through symlinks too), never a file or folder that Pareto did not write.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::manifest::MANIFEST_NAME;
use crate::error::{Error, Result};

/// The paths a job reads its model from: an output may not be, contain or lie inside them.
#[derive(Debug, Clone, Default)]
pub struct SourcePaths {
    /// Folders nothing is written into: the model folder when the user opened a folder (or a
    /// shard index), not when a single weight file was opened from a folder holding other things.
    pub folders: Vec<PathBuf>,
    /// Every file the model was read from (weights, index, config.json, tokenizer and other
    /// companions).
    pub files: Vec<PathBuf>,
}

impl SourcePaths {
    /// No source (generated data): only the rules about replacing foreign files apply.
    pub fn none() -> SourcePaths {
        SourcePaths::default()
    }

    /// Refuses an output (`given` as the user wrote it, `out` resolved) that is, contains or lies
    /// inside the source.
    pub fn check(&self, given: &Path, out: &Path) -> Result<()> {
        let hits_source = |p: &PathBuf| resolve(p).starts_with(out);
        if self.folders.iter().chain(&self.files).any(hits_source) {
            return Err(Error::OutputIsSource { output: given.to_path_buf() });
        }
        for folder in &self.folders {
            let folder = resolve(folder);
            if out.starts_with(&folder) {
                return Err(Error::OutputInsideSource { output: given.to_path_buf(), source_dir: folder });
            }
        }
        Ok(())
    }
}

/// `path` made absolute, with symlinks resolved in the part that exists and `.`/`..` resolved
/// lexically in the part that does not exist yet (no links can hide there).
pub fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    };
    let mut existing = abs.as_path();
    let mut tail = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            let mut out = canonical;
            for part in tail.iter().rev() {
                match part {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::CurDir => {}
                    other => out.push(other.as_os_str()),
                }
            }
            return out;
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                tail.push(last);
                existing = parent;
            }
            _ => return abs,
        }
    }
}

/// What lies at an output path before a job writes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    Nothing,
    /// An empty folder: replacing it loses nothing.
    EmptyFolder,
    /// A folder holding a manifest Pareto wrote: an earlier output, which `--force` may replace.
    ParetoOutput,
    /// Anything else; the text says what it is.
    Foreign(String),
}

impl Existing {
    pub fn of(path: &Path) -> Existing {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(_) => return Existing::Nothing,
        };
        if meta.file_type().is_symlink() {
            return Existing::Foreign("a symbolic link".into());
        }
        if !meta.is_dir() {
            return Existing::Foreign("a file, not an output folder".into());
        }
        match fs::read_dir(path).map(|mut entries| entries.next().is_none()) {
            Ok(true) => return Existing::EmptyFolder,
            Ok(false) => {}
            Err(e) => return Existing::Foreign(format!("a folder that cannot be listed ({e})")),
        }
        if pareto_manifest(path).is_some() {
            Existing::ParetoOutput
        } else {
            Existing::Foreign(format!("a folder without a Pareto {MANIFEST_NAME}"))
        }
    }

    /// Whether a job may write here: nothing or an empty folder always, an earlier Pareto output
    /// only with `force`, anything else never.
    pub fn allow(&self, given: &Path, force: bool) -> Result<()> {
        match self {
            Existing::Nothing | Existing::EmptyFolder => Ok(()),
            Existing::ParetoOutput if force => Ok(()),
            Existing::ParetoOutput => Err(Error::OutputExists { path: given.to_path_buf() }),
            Existing::Foreign(what) => Err(Error::OutputNotOurs { path: given.to_path_buf(), what: what.clone() }),
        }
    }
}

/// The manifest of a Pareto output in `dir`, if there is one (a missing, oversized or foreign
/// file is `None`).
pub fn pareto_manifest(dir: &Path) -> Option<serde_json::Value> {
    let path = dir.join(MANIFEST_NAME);
    if !path.is_file() {
        return None;
    }
    crate::bounded::read(&path, crate::bounded::MANIFEST_CAP, "manifest")
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(|v| v.get("tool").and_then(|t| t.as_str()) == Some("pareto"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_follows_links_in_the_existing_part_only() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        let base = dir.path().canonicalize().unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
            assert_eq!(resolve(&dir.path().join("link/new/x")), base.join("real/new/x"));
        }
        assert_eq!(resolve(&dir.path().join("real/a/../b/./c")), base.join("real/b/c"));
        assert_eq!(resolve(&dir.path().join("real/..")), base);
    }

    #[test]
    fn source_paths_refuse_the_source_its_files_and_its_inside() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m");
        fs::create_dir(&m).unwrap();
        fs::write(m.join("model.safetensors"), b"x").unwrap();
        let src = SourcePaths { folders: vec![m.clone()], files: vec![m.join("model.safetensors")] };
        let check = |p: PathBuf| src.check(&p, &resolve(&p));
        assert!(matches!(check(m.clone()), Err(Error::OutputIsSource { .. })));
        assert!(matches!(check(dir.path().to_path_buf()), Err(Error::OutputIsSource { .. })));
        assert!(matches!(check(m.join("model.safetensors")), Err(Error::OutputIsSource { .. })));
        assert!(matches!(check(m.join("out")), Err(Error::OutputInsideSource { .. })));
        assert!(check(dir.path().join("out")).is_ok());
        // A single file opened from a shared folder: outputs beside it are fine, the file is not.
        let single = SourcePaths { folders: Vec::new(), files: vec![m.join("model.safetensors")] };
        let p = m.join("out");
        assert!(single.check(&p, &resolve(&p)).is_ok());
        let p = m.join("model.safetensors");
        assert!(matches!(single.check(&p, &resolve(&p)), Err(Error::OutputIsSource { .. })));
    }

    #[test]
    fn only_earlier_pareto_outputs_may_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        assert_eq!(Existing::of(&p), Existing::Nothing);
        fs::create_dir(&p).unwrap();
        assert_eq!(Existing::of(&p), Existing::EmptyFolder);
        fs::write(p.join("notes.txt"), b"mine").unwrap();
        assert!(matches!(Existing::of(&p), Existing::Foreign(_)));
        fs::write(p.join(MANIFEST_NAME), br#"{"tool": "other"}"#).unwrap();
        assert!(matches!(Existing::of(&p), Existing::Foreign(_)));
        fs::write(p.join(MANIFEST_NAME), br#"{"tool": "pareto", "files": []}"#).unwrap();
        assert_eq!(Existing::of(&p), Existing::ParetoOutput);
        assert!(matches!(Existing::of(&p).allow(&p, false), Err(Error::OutputExists { .. })));
        assert!(Existing::of(&p).allow(&p, true).is_ok());
        let f = dir.path().join("file");
        fs::write(&f, b"x").unwrap();
        assert!(matches!(Existing::of(&f).allow(&f, true), Err(Error::OutputNotOurs { .. })));
    }
}
