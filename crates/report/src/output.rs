//! Where reports are written: atomically, and never over a file Pareto did not write or over one
//! of the run records the report is made from.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{ReportError, Result};

/// Writes `text` to `path` atomically (temp file + rename): a report is never half-written.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| ReportError::Io { path: dir.to_path_buf(), source: e })?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ReportError::Io { path: tmp.clone(), source: e }
    })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ReportError::Io { path: path.to_path_buf(), source: e }
    })
}

/// [`write_atomic`], refusing to replace one of `inputs` or an existing file that is not a report
/// Pareto wrote (recognised by its first bytes).
pub fn write_report(path: &Path, text: &str, inputs: &[PathBuf]) -> Result<()> {
    let refuse = |what: &str| ReportError::WouldOverwrite { path: path.to_path_buf(), what: what.to_string() };
    if let Ok(target) = path.canonicalize() {
        if inputs.iter().any(|i| i.canonicalize().is_ok_and(|i| i == target)) {
            return Err(refuse("one of the run records the report is made from"));
        }
        let meta = std::fs::metadata(&target).map_err(|e| ReportError::Io { path: path.to_path_buf(), source: e })?;
        if !meta.is_file() {
            return Err(refuse("not a regular file"));
        }
        let mut head = Vec::with_capacity(HEAD);
        std::fs::File::open(&target)
            .and_then(|f| f.take(HEAD as u64).read_to_end(&mut head))
            .map_err(|e| ReportError::Io { path: path.to_path_buf(), source: e })?;
        if !is_pareto_report(&head) {
            return Err(refuse("a file Pareto did not write"));
        }
    }
    write_atomic(path, text)
}

/// Bytes read from an existing file to recognise a report.
const HEAD: usize = 4096;

/// Whether `head` (a file's first bytes) starts a report of `render_html`, `render_markdown` or the
/// JSON report.
pub fn is_pareto_report(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let t = text.trim_start();
    (t.starts_with("<!DOCTYPE html>") && t.contains("<title>Pareto report</title>"))
        || t.starts_with(crate::markdown::HEADING)
        || (t.starts_with('{') && t[1..].trim_start().starts_with("\"comparison\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_replace_reports_only() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("review.md");
        write_report(&md, "### Pareto: 1 variant(s) of `m`\n", &[]).unwrap();
        write_report(&md, "### Pareto: 2 variant(s) of `m`\n", &[]).unwrap();
        assert!(std::fs::read_to_string(&md).unwrap().contains("2 variant"));
        let notes = dir.path().join("notes.md");
        std::fs::write(&notes, "my notes").unwrap();
        let err = write_report(&notes, "### Pareto: x", &[]).unwrap_err();
        assert!(matches!(err, ReportError::WouldOverwrite { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes");
        let record = dir.path().join("run.json");
        std::fs::write(&record, "{\"schema_version\": 1}").unwrap();
        let err = write_report(&record, "{}", &[dir.path().join("./run.json")]).unwrap_err();
        assert!(err.to_string().contains("run records"), "{err}");
        assert!(is_pareto_report(b"{\n  \"comparison\": {"));
        assert!(is_pareto_report(b"<!DOCTYPE html><html lang=\"en\"><head><title>Pareto report</title>"));
        assert!(!is_pareto_report(b"<!DOCTYPE html><title>Mine</title>"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3, "no temporary files left");
    }
}
