//! Export of a finished run: its model files and manifest, `report.json` (the engine's
//! CompressReport), `pareto-run.json` (the versioned run record) and the reviewer's report
//! (`report.html`, `report.md`, rendered by pareto-report). Written through the engine's
//! [`OutputDir`]: a temporary sibling folder renamed into place (a failure never leaves a
//! half-written target), never into the source model or over something Pareto did not write.

use std::path::Path;

use pareto_core::export::{OutputDir, SourcePaths, default_opener};

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
    mut protect: SourcePaths,
    packer: Option<Packer<'_>>,
) -> ApiResult<ExportResult> {
    let source = &run.report.output;
    // The engine's output rules: never into or over the model or the run's own output, and
    // "overwrite" replaces only an earlier Pareto export.
    protect.folders.push(source.clone());
    let out = OutputDir::create(target, &protect, overwrite, default_opener())?;
    fill(run, record, source, out.tmp_path(), packer)?;
    let target = out.commit()?;
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&target)
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
        // The packer writes a complete artifact folder of its own; its files move up into ours.
        let packed = tmp.join(".packed");
        pack(&packed)?;
        let entries =
            std::fs::read_dir(&packed).map_err(io_err(format!("could not read the export {}", packed.display())))?;
        for e in entries {
            let e = e.map_err(io_err(format!("could not read {}", packed.display())))?;
            std::fs::rename(e.path(), tmp.join(e.file_name()))
                .map_err(io_err(format!("could not move {}", e.path().display())))?;
        }
        std::fs::remove_dir(&packed).map_err(io_err(format!("could not remove {}", packed.display())))?;
        return reports(run, record, tmp);
    }
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
