//! pareto-report: the versioned run record (the source of truth for one compression run), the
//! N-way comparison with its accuracy-vs-cost frontier and recommendation, and the renderers:
//! JSON, Markdown for pull-request comments, and a self-contained offline HTML page whose charts
//! are inline SVG.

mod compare;
mod error;
mod html;
mod markdown;
mod record;
mod svg;

pub use compare::{Comparison, Recommendation, VariantRow, compare};
pub use error::{ReportError, Result};
pub use html::render_html;
pub use markdown::render_markdown;
pub use record::*;

/// Writes `text` to `path` atomically (temp file + rename): a report is never half-written.
pub fn write_atomic(path: &std::path::Path, text: &str) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| ReportError::Io { path: dir.to_path_buf(), source: e })?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| ReportError::Io { path: tmp.clone(), source: e })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ReportError::Io { path: path.to_path_buf(), source: e }
    })
}
