//! Where Pareto keeps what it can compute again (converted GGUFs, scan journals, the original
//! model's evaluations), and the stamp that ties a kept result to the build that computed it.

use std::path::PathBuf;

/// `$PARETO_CACHE_DIR`, else `$XDG_CACHE_HOME/pareto`, else `~/.cache/pareto`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PARETO_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("pareto")
}

/// The version, and the running executable's size and modification time: a computed result kept
/// by one build is not trusted by another (a development build whose arithmetic changed keeps its
/// version number). An installed binary keeps its stamp, so its cache lasts.
pub fn build_stamp() -> String {
    let exe = std::env::current_exe().ok().and_then(|p| std::fs::metadata(p).ok());
    let (len, mtime) = exe.map_or((0, 0), |m| {
        let t = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        (m.len(), t.map_or(0, |d| d.as_nanos()))
    });
    format!("{} {len} {mtime}", env!("CARGO_PKG_VERSION"))
}
