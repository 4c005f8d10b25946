//! Where Pareto keeps what it can compute again (converted GGUFs, scan journals, the original
//! model's evaluations), and the stamp that ties a kept result to the build that computed it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a computation keeps what the next one can reuse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheFolder {
    /// A subfolder of [`cache_dir`] named by the computation.
    #[default]
    Default,
    /// This folder (a sweep's shared folder, so a cluster's tasks share it; a test's own).
    In(PathBuf),
    /// Computed for this use only.
    Off,
}

impl CacheFolder {
    /// The folder, `default` naming the subfolder of the cache directory.
    pub fn folder(&self, default: &str) -> Option<PathBuf> {
        match self {
            CacheFolder::Default => Some(cache_dir().join(default)),
            CacheFolder::In(dir) => Some(dir.clone()),
            CacheFolder::Off => None,
        }
    }
}

/// What a kept result computed from the model in `dir` depends on of it: the sha256 of each
/// weight file (sorted, from the file-hash cache when a file is unchanged) and of config.json
/// (empty when there is none).
pub fn weights_digest(dir: &Path, stop: &std::sync::atomic::AtomicBool) -> crate::Result<(Vec<String>, String)> {
    use sha2::{Digest, Sha256};
    let source = crate::Model::open(dir)?;
    let mut weights = Vec::new();
    for shard in source.shards() {
        weights.push(crate::file_hash::sha256_file(&shard.path, stop)?.sha256);
    }
    weights.sort_unstable();
    let config = match std::fs::read(dir.join("config.json")) {
        Ok(bytes) => hex::encode(Sha256::digest(&bytes)),
        Err(_) => String::new(),
    };
    Ok((weights, config))
}

/// A kept entry's layout: a 16-byte magic, a body, a JSON header, the header's length (u64, little
/// endian). Reads and checks the magic and the header's place and size; returns the header's
/// bytes and the body's length (between the magic and the header). `what` names the entry kind in
/// the message for a file that is not one.
pub fn read_entry_header(
    f: &mut std::fs::File,
    magic: &[u8; 16],
    cap: u64,
    what: &str,
) -> std::result::Result<(Vec<u8>, u64), String> {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let fixed = magic.len() as u64;
    if len < fixed + 8 {
        return Err("too short".into());
    }
    let mut found = [0u8; 16];
    f.seek(SeekFrom::Start(0)).and_then(|_| f.read_exact(&mut found)).map_err(|e| e.to_string())?;
    if &found != magic {
        return Err(format!("not a kept {what}"));
    }
    let mut word = [0u8; 8];
    f.seek(SeekFrom::Start(len - 8)).and_then(|_| f.read_exact(&mut word)).map_err(|e| e.to_string())?;
    let json_len = u64::from_le_bytes(word);
    if json_len > cap || json_len + 8 + fixed > len {
        return Err("its header is damaged".into());
    }
    let mut json = vec![0u8; json_len as usize];
    f.seek(SeekFrom::Start(len - 8 - json_len)).and_then(|_| f.read_exact(&mut json)).map_err(|e| e.to_string())?;
    Ok((json, len - 8 - json_len - fixed))
}

/// Ends an entry [`read_entry_header`] reads: the header's JSON, then its length.
pub fn write_entry_header(out: &mut impl std::io::Write, json: &[u8]) -> std::io::Result<()> {
    out.write_all(json)?;
    out.write_all(&(json.len() as u64).to_le_bytes())
}

/// A new temporary file name in `dir` for an entry being written: `{prefix}{pid}-{n}`, which
/// [`remove_stale_temporaries`] recognises once its process is gone.
pub fn temporary_path(dir: &Path, prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    dir.join(format!("{prefix}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// Removes the temporary files `{prefix}{pid}-{n}` that a process killed while writing an entry left
/// in `dir`: those whose process is gone (Linux: no `/proc/{pid}`), elsewhere those a day old.
pub fn remove_stale_temporaries(dir: &Path, prefix: &str) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    for entry in read.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(prefix)).and_then(|r| r.split('-').next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        let gone = if cfg!(target_os = "linux") {
            pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(86_400))
        };
        if gone {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A folder's byte budget: `$var` in MiB when set and numeric, else `default` bytes.
pub fn budget(var: &str, default: u64) -> u64 {
    std::env::var(var).ok().and_then(|v| v.parse::<u64>().ok()).map_or(default, |m| m << 20)
}

/// Removes the folder's entries (files ending in `.ext`), least recently used first, until they
/// fit in `budget` bytes — never `keep`, never a file that is not an entry. Readers touch an
/// entry's modification time when they use it, so the age is the age of the last use.
pub fn evict_to(dir: &Path, keep: &Path, ext: &str, budget: u64) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = read
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            Some((m.modified().ok()?, m.len(), p))
        })
        .collect();
    let mut total: u64 = entries.iter().map(|e| e.1).sum();
    entries.sort();
    for (_, len, path) in entries {
        if total <= budget {
            break;
        }
        if path != keep && std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_keeps_to_its_budget_newest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let old = tmp.path().join("a.bin");
        let keep = tmp.path().join("b.bin");
        std::fs::write(&old, vec![0u8; 4096]).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1))
            .unwrap();
        std::fs::write(&keep, vec![0u8; 4096]).unwrap();
        std::fs::write(tmp.path().join("notes.txt"), b"not an entry").unwrap();
        evict_to(tmp.path(), &keep, "bin", 5000);
        assert!(!old.exists() && keep.exists() && tmp.path().join("notes.txt").exists());
        evict_to(tmp.path(), &keep, "bin", 0);
        assert!(keep.exists(), "the entry just written is never removed");
    }

    #[test]
    fn a_killed_writer_s_temporary_is_removed_and_a_live_one_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let ours = tmp.path().join(format!(".x.pareto-tmp-{}-0", std::process::id()));
        // Pids are below 2^22 on Linux: this one belongs to no process.
        let dead = tmp.path().join(".x.pareto-tmp-4194305-3");
        let other = tmp.path().join("entry.bin");
        for p in [&ours, &dead, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        remove_stale_temporaries(tmp.path(), ".x.pareto-tmp-");
        assert!(ours.exists() && other.exists());
        assert_eq!(!dead.exists(), cfg!(target_os = "linux"));
    }
}
