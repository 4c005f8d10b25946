//! sha256 of model files, remembered between runs.
//!
//! Every export records the sha256 of its source files (the same digest the Hugging Face Hub
//! shows for LFS files). Hashing a 16 GB model takes about as long as quantizing it, and the
//! Studio exports many variants of one model, so digests are kept in a small cache keyed by what
//! changes when a file is rewritten: canonical path, size, modification time, status-change time
//! (ctime, ns), device and inode, as git's index does. The mtime alone can be set back (`touch -d`,
//! `cp -p`, `rsync -t`) after a rewrite in place; the ctime cannot — any write or metadata change
//! moves it to the current time — so a rewritten file is always hashed again. Where there is no
//! ctime (non-Unix systems) nothing is cached. Each digest says whether it was computed or came
//! from the cache ([`DigestFrom`]), and manifests carry that. `PARETO_HASH_CACHE=off` turns the
//! cache off, `PARETO_HASH_CACHE=<file>` moves it (default `$XDG_CACHE_HOME/pareto/file-hashes.json`,
//! else `~/.cache/pareto/file-hashes.json`).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::export::FileRecord;
pub use crate::export::manifest::DigestFrom;

/// Entries kept; the oldest-looked-up are dropped beyond this.
const MAX_ENTRIES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    bytes: u64,
    mtime_ns: i128,
    inode: u64,
    /// Absent in caches written before ctimes were kept: such entries never match.
    #[serde(default)]
    ctime_ns: Option<i128>,
    #[serde(default)]
    dev: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    sha256: String,
    /// Seconds since the epoch of the last lookup, for eviction.
    used: u64,
}

/// sha256 of `path`, from the cache when the file is unchanged since it was last hashed.
/// `stop` aborts a running hash (`Error::Cancelled`).
pub fn sha256_file(path: &Path, stop: &AtomicBool) -> Result<FileRecord> {
    sha256_with_cache(path, stop, cache_path())
}

/// Hashes `paths` on a thread of its own, so source hashes cost no wall time beside the
/// quantization work.
pub fn hash_in_background(paths: Vec<PathBuf>) -> BackgroundHash {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle =
        std::thread::spawn(move || paths.iter().map(|path| sha256_file(path, &flag)).collect::<Result<Vec<_>>>());
    BackgroundHash { handle: Some(handle), stop }
}

/// A running hash; dropping it (on error or cancel) stops the thread at its next chunk.
pub struct BackgroundHash {
    handle: Option<std::thread::JoinHandle<Result<Vec<FileRecord>>>>,
    stop: Arc<AtomicBool>,
}

impl BackgroundHash {
    pub fn finish(mut self) -> Result<Vec<FileRecord>> {
        match self.handle.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => Err(Error::WriterMismatch {
                expected: "source hashes".into(),
                got: "the hashing thread panicked".into(),
            }),
        }
    }
}

impl Drop for BackgroundHash {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn sha256_with_cache(path: &Path, stop: &AtomicBool, cache: Option<PathBuf>) -> Result<FileRecord> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf()).to_string_lossy().into_owned();
    let stamp = stamp(path)?;
    if let Some(cache) = &cache {
        let entries = load(cache);
        if let Some(e) = entries.get(&key).filter(|e| stamp.ctime_ns.is_some() && e.stamp == stamp) {
            let sha256 = e.sha256.clone();
            touch(cache, entries, &key, None);
            return Ok(FileRecord { name, bytes: stamp.bytes, sha256, digest: Some(DigestFrom::Cache) });
        }
    }
    let (sha256, bytes) = hash_stream(path, stop)?;
    // A file that changed while it was read is not remembered, nor one without a ctime.
    let unchanged = self::stamp(path).is_ok_and(|s| s == stamp);
    if let Some(cache) = cache.filter(|_| unchanged && stamp.ctime_ns.is_some()) {
        let entries = load(&cache);
        touch(&cache, entries, &key, Some(Entry { stamp, sha256: sha256.clone(), used: 0 }));
    }
    Ok(FileRecord { name, bytes, sha256, digest: Some(DigestFrom::Computed) })
}

fn hash_stream(path: &Path, stop: &AtomicBool) -> Result<(String, u64)> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut bytes = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((hex::encode(h.finalize()), bytes))
}

fn stamp(path: &Path) -> Result<Stamp> {
    let m = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mtime_ns = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    #[cfg(unix)]
    let (inode, dev, ctime_ns) = {
        use std::os::unix::fs::MetadataExt;
        (m.ino(), m.dev(), Some(i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec())))
    };
    #[cfg(not(unix))]
    let (inode, dev, ctime_ns) = (0, 0, None);
    Ok(Stamp { bytes: m.len(), mtime_ns, inode, ctime_ns, dev })
}

fn cache_path() -> Option<PathBuf> {
    match std::env::var_os("PARETO_HASH_CACHE") {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| Path::new(&h).join(".cache")))
            .map(|d| d.join("pareto").join("file-hashes.json")),
    }
}

/// The cache's entries; an unreadable or corrupt cache is treated as empty.
fn load(cache: &Path) -> BTreeMap<String, Entry> {
    fs::read(cache).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Marks `key` used (inserting `new` if given) and writes the cache back atomically. Failing to
/// write a cache never fails the hash.
fn touch(cache: &Path, mut entries: BTreeMap<String, Entry>, key: &str, new: Option<Entry>) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if let Some(e) = new {
        entries.insert(key.to_string(), e);
    }
    if let Some(e) = entries.get_mut(key) {
        e.used = now;
    }
    while entries.len() > MAX_ENTRIES {
        let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| k.clone()) else { break };
        entries.remove(&oldest);
    }
    let Some(dir) = cache.parent() else { return };
    let Ok(json) = serde_json::to_vec(&entries) else { return };
    let tmp = dir.join(format!(".file-hashes.{}.tmp", std::process::id()));
    let written = fs::create_dir_all(dir).is_ok() && fs::write(&tmp, json).is_ok() && fs::rename(&tmp, cache).is_ok();
    if !written {
        let _ = fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_hit_when_unchanged_and_rehash_when_rewritten_or_off() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Some(dir.path().join("hashes.json"));
        let f = dir.path().join("w.bin");
        fs::write(&f, b"abc").unwrap();
        let stop = AtomicBool::new(false);
        let hash = |c: &Option<PathBuf>| sha256_with_cache(&f, &stop, c.clone()).unwrap().sha256;
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hash(&cache), abc);
        let json = || fs::read_to_string(cache.as_ref().unwrap()).unwrap();
        assert!(json().contains(abc), "remembered");

        // A forged entry with the right stamp is believed: proof that a hit skips reading.
        fs::write(cache.as_ref().unwrap(), json().replace(abc, &"0".repeat(64))).unwrap();
        assert_eq!(hash(&cache), "0".repeat(64));

        // Rewriting the file changes its stamp: hashed again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&f, b"abd").unwrap();
        let abd = hash(&cache);
        assert!(abd != abc && abd != "0".repeat(64));

        // No cache: always hashed.
        fs::write(cache.as_ref().unwrap(), json().replace(&abd, &"1".repeat(64))).unwrap();
        assert_eq!(hash(&None), abd);

        // A corrupt cache is ignored and rewritten.
        fs::write(cache.as_ref().unwrap(), b"{ not json").unwrap();
        assert_eq!(hash(&cache), abd);
        assert!(json().contains(&abd));

        stop.store(true, Ordering::Relaxed);
        assert!(matches!(sha256_with_cache(&f, &stop, None), Err(Error::Cancelled)));
    }

    #[cfg(unix)]
    #[test]
    fn a_rewrite_in_place_with_the_mtime_set_back_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Some(dir.path().join("hashes.json"));
        let f = dir.path().join("w.bin");
        fs::write(&f, b"old weights").unwrap();
        let stop = AtomicBool::new(false);
        let first = sha256_with_cache(&f, &stop, cache.clone()).unwrap();
        assert_eq!(first.digest, Some(DigestFrom::Computed));
        let again = sha256_with_cache(&f, &stop, cache.clone()).unwrap();
        assert_eq!((again.digest, &again.sha256), (Some(DigestFrom::Cache), &first.sha256));

        // Same size, same inode, mtime restored: only the ctime tells.
        let before = fs::metadata(&f).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut w = fs::OpenOptions::new().write(true).open(&f).unwrap();
        std::io::Write::write_all(&mut w, b"new weights").unwrap();
        w.set_modified(before.modified().unwrap()).unwrap();
        drop(w);
        let after = fs::metadata(&f).unwrap();
        assert_eq!((after.len(), after.modified().unwrap()), (before.len(), before.modified().unwrap()));
        let rehashed = sha256_with_cache(&f, &stop, cache).unwrap();
        assert_eq!(rehashed.digest, Some(DigestFrom::Computed));
        assert_ne!(rehashed.sha256, first.sha256);
    }
}
