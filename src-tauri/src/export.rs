//! Export of a finished run: its model files and manifest, `report.json` (the engine's
//! CompressReport), `pareto-run.json` (the versioned run record) and the reviewer's report
//! (`report.html`, `report.md`, rendered by pareto-report). Written into a temporary sibling folder
//! and renamed into place, so a failure never leaves a half-written target.

use std::path::Path;

use crate::dto::{ApiError, ApiResult, ExportResult, FileView, from_std};
use crate::state::RunRecord;

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> ApiError {
    move |e| from_std(&e).context(what)
}

/// Writes the artifact into `dir` (which must not exist yet) instead of copying the run's output.
pub type Packer<'a> = &'a dyn Fn(&Path) -> ApiResult<()>;

pub fn write(
    run: &RunRecord,
    record: &pareto_report::RunRecord,
    target: &Path,
    overwrite: bool,
    packer: Option<Packer<'_>>,
) -> ApiResult<ExportResult> {
    let source = &run.report.output;
    if target == source.as_path() {
        return Err(ApiError::new("the target is the run's own output folder; choose another folder"));
    }
    if target.exists() && !overwrite {
        return Err(ApiError::new(format!("{} already exists (tick “overwrite” to replace it)", target.display())));
    }
    let name = target.file_name().ok_or_else(|| ApiError::new(format!("{} is not a folder path", target.display())))?;
    let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err(format!("could not create {}", parent.display())))?;
    let tmp = parent.join(format!(".{}.pareto-export", name.to_string_lossy()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(format!("could not clear {}", tmp.display())))?;
    }
    let result = fill(run, record, source, &tmp, packer);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if target.exists() {
        std::fs::remove_dir_all(target).map_err(io_err(format!("could not replace {}", target.display())))?;
    }
    std::fs::rename(&tmp, target).map_err(io_err(format!("could not move the export into {}", target.display())))?;
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(target)
        .map_err(io_err(format!("could not list {}", target.display())))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let bytes = e.metadata().map(|m| m.len()).unwrap_or(0);
        let name = e.file_name().to_string_lossy().into_owned();
        let sha256 = run.report.files.iter().find(|f| f.name == name).map(|f| f.sha256.clone()).unwrap_or_default();
        files.push(FileView { path: name, bytes, sha256 });
    }
    Ok(ExportResult { target: target.display().to_string(), files })
}

fn fill(
    run: &RunRecord,
    record: &pareto_report::RunRecord,
    source: &Path,
    tmp: &Path,
    packer: Option<Packer<'_>>,
) -> ApiResult<()> {
    if let Some(pack) = packer {
        pack(tmp)?;
        return reports(run, record, tmp);
    }
    std::fs::create_dir_all(tmp).map_err(io_err(format!("could not create {}", tmp.display())))?;
    let entries =
        std::fs::read_dir(source).map_err(io_err(format!("could not read the run output {}", source.display())))?;
    for e in entries {
        let e = e.map_err(io_err(format!("could not read {}", source.display())))?;
        if e.file_type().map(|t| t.is_file()).unwrap_or(false) {
            let to = tmp.join(e.file_name());
            std::fs::copy(e.path(), &to).map_err(io_err(format!("could not copy {}", e.path().display())))?;
        }
    }
    reports(run, record, tmp)
}

fn reports(run: &RunRecord, record: &pareto_report::RunRecord, tmp: &Path) -> ApiResult<()> {
    let json = serde_json::to_vec_pretty(run.report.as_ref())
        .map_err(|e| from_std(&e).context("could not serialise the report"))?;
    std::fs::write(tmp.join("report.json"), json).map_err(io_err("could not write report.json".into()))?;
    std::fs::write(tmp.join("pareto-run.json"), record.to_json())
        .map_err(io_err("could not write pareto-run.json".into()))?;
    let records = std::slice::from_ref(record);
    let cmp = pareto_report::compare(records).map_err(|e| from_std(&e).context("comparing the run"))?;
    std::fs::write(tmp.join("report.html"), pareto_report::render_html(records, &cmp))
        .map_err(io_err("could not write report.html".into()))?;
    std::fs::write(tmp.join("report.md"), pareto_report::render_markdown(records, &cmp))
        .map_err(io_err("could not write report.md".into()))?;
    Ok(())
}
