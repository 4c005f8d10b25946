//! An output folder that appears under its final name only when complete.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

use sha2::{Digest, Sha256};

use super::manifest::FileRecord;
use super::protect::{Existing, SourcePaths, resolve};
use crate::error::{Error, Result};

/// A file being written: `Write` plus a durable flush.
pub trait FileSink: Write + Send {
    fn sync(&mut self) -> io::Result<()>;
}

impl FileSink for io::BufWriter<fs::File> {
    fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        self.get_ref().sync_all()
    }
}

/// A buffered output file that asks the kernel to start writing each 32 MiB to disk as soon as it
/// is written, so the fsync before the rename finds most of the file already on disk instead of
/// waiting for all of it while the cores sit idle (Linux `sync_file_range`; elsewhere the plain
/// fsync at the end).
pub struct EagerFile {
    out: io::BufWriter<fs::File>,
    written: u64,
    started: u64,
}

/// How much is written before its writeback is started.
const WRITEBACK_STEP: u64 = 32 << 20;

impl EagerFile {
    pub fn create(path: &Path) -> io::Result<EagerFile> {
        Ok(EagerFile { out: io::BufWriter::with_capacity(8 << 20, fs::File::create(path)?), written: 0, started: 0 })
    }

    fn start_writeback(&mut self) -> io::Result<()> {
        self.out.flush()?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let (fd, len) = (self.out.get_ref().as_raw_fd(), self.written - self.started);
            let (offset, len) = (i64::try_from(self.started).unwrap_or(i64::MAX), i64::try_from(len).unwrap_or(0));
            // SAFETY: fd is this open file's descriptor; the call only schedules writeback of the
            // range and reads no memory of ours. A failure is only a lost optimisation.
            #[allow(unsafe_code)]
            let _ = unsafe { libc::sync_file_range(fd, offset, len, libc::SYNC_FILE_RANGE_WRITE) };
        }
        self.started = self.written;
        Ok(())
    }
}

impl Write for EagerFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITEBACK_STEP {
            self.start_writeback()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl FileSink for EagerFile {
    fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()
    }
}

/// Opens output files. Swappable so tests can simulate a full disk.
pub type Opener = Arc<dyn Fn(&Path) -> io::Result<Box<dyn FileSink>> + Send + Sync>;

pub fn default_opener() -> Opener {
    Arc::new(|path: &Path| Ok(Box::new(EagerFile::create(path)?) as Box<dyn FileSink>))
}

const DISK_FULL_HINT: &str = " (is the disk full?)";

pub(crate) fn write_error(path: &Path, source: io::Error) -> Error {
    let hint = if source.kind() == io::ErrorKind::StorageFull { DISK_FULL_HINT } else { "" };
    Error::Write { path: path.to_path_buf(), source, hint }
}

/// A temporary folder beside `final_path`; removed on drop unless committed.
///
/// While the job runs, the folder holds [`LOCK_NAME`], locked: a later run that finds a
/// `.NAME.pareto-tmp-*` folder whose lock it can take knows its writer is gone (killed, crashed,
/// power cut) and removes it.
pub struct OutputDir {
    given: PathBuf,
    final_path: PathBuf,
    tmp_path: PathBuf,
    force: bool,
    opener: Opener,
    files: Vec<FileRecord>,
    committed: bool,
    lock: Option<fs::File>,
    stale_removed: Vec<PathBuf>,
}

/// The lock file inside a temporary output folder (removed before the folder is renamed).
const LOCK_NAME: &str = ".pareto-lock";
/// Marks Pareto's temporary folders: `.NAME.pareto-tmp-PID-N`.
const TMP_MARK: &str = ".pareto-tmp-";
/// A temporary folder without a lock file (an older version, or a writer killed before it took
/// the lock) is taken for stale once it is this old.
const UNLOCKED_STALE_SECS: u64 = 600;

/// Temporary folders of this process's running jobs, removed by [`remove_live_temp_folders`]
/// when the process must exit at once (a second Ctrl-C, SIGTERM after a cancel).
static LIVE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
static NEXT_TMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Removes the temporary folders of every job still running in this process. For a process
/// that is about to exit without unwinding; best effort.
pub fn remove_live_temp_folders() {
    let live = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    for path in live {
        // A writer thread may still add a file while the folder is emptied: try again.
        for _ in 0..5 {
            if fs::remove_dir_all(&path).is_ok() || !path.exists() {
                break;
            }
        }
    }
}

fn set_live(path: &Path, live: bool) {
    if let Ok(mut l) = LIVE.lock() {
        l.retain(|p| p != path);
        if live {
            l.push(path.to_path_buf());
        }
    }
}

impl OutputDir {
    /// Refuses an output that is, contains or lies inside the source, and one whose path holds
    /// anything but nothing, an empty folder or (with `force`) an earlier Pareto output; the
    /// replacement happens only at commit. Removes stale temporary folders of killed runs beside it.
    /// Whether [`OutputDir::create`] would accept `final_path` now (not the source, not something
    /// Pareto did not write, not existing without `force`), so a long job can refuse before it works.
    pub fn preflight(final_path: &Path, source: &SourcePaths, force: bool) -> Result<PathBuf> {
        let out = resolve(final_path);
        source.check(final_path, &out)?;
        Existing::of(&out).allow(final_path, force)?;
        Ok(out)
    }

    pub fn create(final_path: &Path, source: &SourcePaths, force: bool, opener: Opener) -> Result<OutputDir> {
        let out = Self::preflight(final_path, source, force)?;
        let parent = out.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        fs::create_dir_all(&parent).map_err(|e| write_error(&parent, e))?;
        let stale_removed = remove_stale_temp_folders(&parent);
        let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let n = NEXT_TMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp_path = parent.join(format!(".{name}{TMP_MARK}{}-{n}", std::process::id()));
        if tmp_path.exists() {
            fs::remove_dir_all(&tmp_path).map_err(|e| write_error(&tmp_path, e))?;
        }
        fs::create_dir(&tmp_path).map_err(|e| write_error(&tmp_path, e))?;
        set_live(&tmp_path, true);
        let lock_path = tmp_path.join(LOCK_NAME);
        let lock = fs::File::create(&lock_path).and_then(|f| f.lock().map(|()| f));
        let lock = match lock {
            Ok(f) => Some(f),
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp_path);
                set_live(&tmp_path, false);
                return Err(write_error(&lock_path, e));
            }
        };
        Ok(OutputDir {
            given: final_path.to_path_buf(),
            final_path: out,
            tmp_path,
            force,
            opener,
            files: Vec::new(),
            committed: false,
            lock,
            stale_removed,
        })
    }

    pub fn tmp_path(&self) -> &Path {
        &self.tmp_path
    }

    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Temporary folders of killed runs that this one found beside its output and removed.
    pub fn stale_removed(&self) -> &[PathBuf] {
        &self.stale_removed
    }

    /// Opens `rel` inside the temporary folder for writing; bytes are hashed as they go.
    pub fn create_file(&self, rel: &str) -> Result<HashingFile> {
        let path = self.tmp_path.join(rel);
        // A companion in a subfolder (a sentence-transformers module's config).
        if let Some(parent) = path.parent().filter(|p| *p != self.tmp_path) {
            fs::create_dir_all(parent).map_err(|e| write_error(parent, e))?;
        }
        let sink = (self.opener)(&path).map_err(|e| write_error(&path, e))?;
        Ok(HashingFile::spawn(rel.to_string(), path, sink))
    }

    /// Writes a whole small file at once.
    pub fn write_file(&mut self, rel: &str, contents: &[u8]) -> Result<()> {
        let mut f = self.create_file(rel)?;
        f.write_all_checked(contents)?;
        let rec = f.finish()?;
        self.files.push(rec);
        Ok(())
    }

    /// Copies a file from the source folder, streaming it (companions can be large).
    pub fn copy_file(&mut self, src: &Path, rel: &str) -> Result<()> {
        use std::io::Read;
        let mut from = fs::File::open(src).map_err(|e| Error::io(src, e))?;
        let mut f = self.create_file(rel)?;
        let mut buf = vec![0u8; COALESCE_BYTES];
        loop {
            let n = from.read(&mut buf).map_err(|e| Error::io(src, e))?;
            if n == 0 {
                break;
            }
            f.write_all_checked(buf.get(..n).unwrap_or_default())?;
        }
        let rec = f.finish()?;
        self.files.push(rec);
        Ok(())
    }

    pub fn record(&mut self, rec: FileRecord) {
        self.files.push(rec);
    }

    /// Files written so far, sorted by name.
    pub fn files(&self) -> Vec<FileRecord> {
        let mut f = self.files.clone();
        f.sort_by(|a, b| a.name.cmp(&b.name));
        f
    }

    /// Renames the finished folder into place. What lies at the final path is checked again (it
    /// may have appeared while the job ran) and replaced only if it is an empty folder or, when
    /// forced, an earlier Pareto output; if installing fails, the earlier output is put back.
    pub fn commit(mut self) -> Result<PathBuf> {
        let existing = Existing::of(&self.final_path);
        existing.allow(&self.given, self.force)?;
        // The lock file must not become part of the output.
        drop(self.lock.take());
        let lock_path = self.tmp_path.join(LOCK_NAME);
        fs::remove_file(&lock_path).map_err(|e| write_error(&lock_path, e))?;
        match existing {
            Existing::Nothing => self.install()?,
            Existing::EmptyFolder => {
                fs::remove_dir(&self.final_path).map_err(|e| write_error(&self.final_path, e))?;
                self.install()?;
            }
            _ => {
                // The earlier output moves aside under a temporary name (a killed run's
                // leftovers are then swept like any other), and comes back if installing fails.
                let old = PathBuf::from(format!("{}.old", self.tmp_path.display()));
                set_live(&old, true);
                let replaced = fs::rename(&self.final_path, &old)
                    .map_err(|e| write_error(&self.final_path, e))
                    .and_then(|()| self.install().inspect_err(|_| drop(fs::rename(&old, &self.final_path))));
                // Installed; an earlier output that cannot be removed now is swept by a later run.
                if replaced.is_ok() {
                    let _ = fs::remove_dir_all(&old);
                }
                set_live(&old, false);
                replaced?;
            }
        }
        self.committed = true;
        set_live(&self.tmp_path, false);
        Ok(self.final_path.clone())
    }

    fn install(&self) -> Result<()> {
        fs::rename(&self.tmp_path, &self.final_path).map_err(|e| write_error(&self.final_path, e))
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a failed job must not leave its partial files behind.
            drop(self.lock.take());
            let _ = fs::remove_dir_all(&self.tmp_path);
            set_live(&self.tmp_path, false);
        }
    }
}

/// Removes `.NAME.pareto-tmp-*` folders in `dir` whose writer is gone: their lock can be taken,
/// or (no lock file) they are older than [`UNLOCKED_STALE_SECS`]. Returns what was removed.
pub fn remove_stale_temp_folders(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !name.starts_with('.') || !name.contains(TMP_MARK) || !is_dir || is_live(&path) {
            continue;
        }
        let stale = match fs::File::open(path.join(LOCK_NAME)) {
            Ok(f) => f.try_lock().is_ok(),
            Err(_) => entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() >= UNLOCKED_STALE_SECS),
        };
        if stale && fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

fn is_live(path: &Path) -> bool {
    LIVE.lock().is_ok_and(|l| l.iter().any(|p| p == path || path.starts_with(p)))
}

/// Small writes are gathered up to this size before they go to the writer thread.
const COALESCE_BYTES: usize = 1 << 20;

/// A file in an [`OutputDir`] that hashes what it writes.
///
/// Hashing and the write system calls run on threads of their own, so they overlap with the
/// quantization of the next tensor. Each hand-off queues at most one buffer, so at most four
/// encoded tensors are in flight beside the one being prepared (bounded memory, and slack for
/// tensors of uneven size).
pub struct HashingFile {
    rel: String,
    path: PathBuf,
    pending: Vec<u8>,
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    worker: Option<thread::JoinHandle<io::Result<(String, u64)>>>,
    abort: Arc<AtomicBool>,
}

impl HashingFile {
    fn spawn(rel: String, path: PathBuf, mut sink: Box<dyn FileSink>) -> HashingFile {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(1);
        let abort = Arc::new(AtomicBool::new(false));
        let stop = abort.clone();
        // Two stages, each on its own thread: hashing, then the write system calls (copying into
        // the page cache costs as much as hashing). Buffers pass along in order.
        let (wtx, wrx) = mpsc::sync_channel::<Vec<u8>>(1);
        let writer_stop = abort.clone();
        let writer = thread::spawn(move || {
            for buf in wrx {
                if writer_stop.load(Ordering::Relaxed) {
                    return Err(io::Error::other("export cancelled"));
                }
                sink.write_all(&buf)?;
                pareto_formats::pool::ENCODED.give_back(buf);
            }
            sink.sync()
        });
        let worker = thread::spawn(move || {
            let (mut hasher, mut bytes) = (Sha256::new(), 0u64);
            for buf in rx {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                hasher.update(&buf);
                bytes += buf.len() as u64;
                if wtx.send(buf).is_err() {
                    break; // the writer failed; its error is reported below
                }
            }
            drop(wtx);
            match writer.join() {
                Ok(Ok(())) if stop.load(Ordering::Relaxed) => Err(io::Error::other("export cancelled")),
                Ok(Ok(())) => Ok((hex::encode(hasher.finalize()), bytes)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(io::Error::other("the writer thread panicked")),
            }
        });
        HashingFile { rel, path, pending: Vec::new(), tx: Some(tx), worker: Some(worker), abort }
    }

    pub fn write_all_checked(&mut self, data: &[u8]) -> Result<()> {
        if data.len() >= COALESCE_BYTES {
            return self.write_owned(data.to_vec());
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() >= COALESCE_BYTES { self.flush_pending() } else { Ok(()) }
    }

    /// Hands a whole buffer to the writer thread without copying it.
    pub fn write_owned(&mut self, data: Vec<u8>) -> Result<()> {
        self.flush_pending()?;
        self.send(data)
    }

    fn flush_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.pending);
        self.send(buf)
    }

    fn send(&mut self, buf: Vec<u8>) -> Result<()> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(buf).is_ok());
        if sent {
            return Ok(());
        }
        // The writer thread stopped: it failed, and its error says why.
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(write_error(&self.path, io::Error::other("the writer thread stopped early"))),
        }
    }

    fn join(&mut self) -> Result<(String, u64)> {
        self.tx = None;
        match self.worker.take().map(thread::JoinHandle::join) {
            Some(Ok(Ok(done))) => Ok(done),
            Some(Ok(Err(e))) => Err(write_error(&self.path, e)),
            Some(Err(_)) => Err(write_error(&self.path, io::Error::other("the writer thread panicked"))),
            None => Err(write_error(&self.path, io::Error::other("the file was already closed"))),
        }
    }

    /// Flushes to disk and returns the file's record.
    pub fn finish(mut self) -> Result<FileRecord> {
        self.flush_pending()?;
        let (sha256, bytes) = self.join()?;
        Ok(FileRecord { name: self.rel.clone(), bytes, sha256, digest: None })
    }
}

impl Drop for HashingFile {
    /// An unfinished file (error or cancel): stop the writer after its current buffer and wait,
    /// so the file is closed before the temporary folder is removed.
    fn drop(&mut self) {
        if self.worker.is_some() {
            self.abort.store(true, Ordering::Relaxed);
            let _ = self.join();
        }
    }
}

/// Writes a small single-file output (an importance matrix, a recipe, a scan) atomically: a
/// temporary sibling synced and renamed over `path`. Never onto a source file; an existing file is
/// replaced only with `force` and only when `is_ours` recognises it as `what` (so `--force` never
/// replaces a user's unrelated file).
pub fn write_small_file(
    path: &Path,
    bytes: &[u8],
    force: bool,
    sources: &SourcePaths,
    what: &str,
    is_ours: &dyn Fn(&Path) -> bool,
) -> Result<PathBuf> {
    let target = resolve(path);
    if sources.files.iter().any(|f| resolve(f) == target) || sources.folders.iter().any(|d| resolve(d) == target) {
        return Err(Error::OutputIsSource { output: path.to_path_buf() });
    }
    if target.exists() {
        if !force {
            return Err(Error::OutputExists { path: path.to_path_buf() });
        }
        if target.is_dir() || !is_ours(&target) {
            return Err(Error::OutputNotOurs { path: path.to_path_buf(), what: format!("not {what}") });
        }
    }
    let dir = target.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "output".into());
    let tmp = dir.join(format!(".{name}.pareto-tmp-{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .map_err(|e| write_error(&tmp, e))
        .and_then(|()| std::fs::rename(&tmp, &target).map_err(|e| write_error(&target, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(dir: &Path) -> SourcePaths {
        SourcePaths { folders: vec![dir.to_path_buf()], files: Vec::new() }
    }

    #[test]
    fn eager_writeback_keeps_every_byte_in_order() {
        // Past two writeback steps, in writes of uneven size: the file holds exactly what was written.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = EagerFile::create(&path).unwrap();
        let mut want = Vec::new();
        let mut k = 0u32;
        while (want.len() as u64) < 2 * WRITEBACK_STEP + 12345 {
            let chunk: Vec<u8> = (0..(1 << 20) + k as usize * 977).map(|i| (i as u32 ^ k) as u8).collect();
            f.write_all(&chunk).unwrap();
            want.extend_from_slice(&chunk);
            k += 1;
        }
        assert!(f.started >= 2 * WRITEBACK_STEP, "writeback was started along the way");
        f.sync().unwrap();
        assert_eq!(fs::read(&path).unwrap(), want);
    }

    #[test]
    fn commit_renames_and_drop_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir(&src).unwrap();
        let out = dir.path().join("out");
        {
            let mut o = OutputDir::create(&out, &source(&src), false, default_opener()).unwrap();
            o.write_file("a.txt", b"hello").unwrap();
            assert!(!out.exists());
        }
        assert!(!out.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "temp folder removed");
        let mut o = OutputDir::create(&out, &source(&src), false, default_opener()).unwrap();
        o.write_file("a.txt", b"hello").unwrap();
        o.commit().unwrap();
        assert_eq!(fs::read(out.join("a.txt")).unwrap(), b"hello");
        assert!(!out.join(LOCK_NAME).exists(), "the lock file is not part of the output");
        // Not a Pareto output (no manifest): refused even when forced.
        let err = OutputDir::create(&out, &source(&src), true, default_opener()).err();
        assert!(matches!(err, Some(Error::OutputNotOurs { .. })), "{err:?}");
        for p in [&src, dir.path()] {
            let err = OutputDir::create(p, &source(&src), true, default_opener()).err();
            assert!(matches!(err, Some(Error::OutputIsSource { .. })), "{err:?}");
        }
    }

    #[test]
    fn forced_replacement_of_an_earlier_output_and_foreign_paths_appearing_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let write = |force: bool, text: &[u8]| -> Result<PathBuf> {
            let mut o = OutputDir::create(&out, &SourcePaths::none(), force, default_opener())?;
            o.write_file("a.txt", text)?;
            o.write_file(super::super::manifest::MANIFEST_NAME, br#"{"tool": "pareto"}"#)?;
            o.commit()
        };
        write(false, b"one").unwrap();
        assert!(matches!(write(false, b"two"), Err(Error::OutputExists { .. })));
        write(true, b"two").unwrap();
        assert_eq!(fs::read(out.join("a.txt")).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "the earlier output was removed");
        // Something foreign appears at the final path while the job runs: the job fails, the
        // foreign file stays as it was.
        let other = dir.path().join("other");
        let o = OutputDir::create(&other, &SourcePaths::none(), true, default_opener()).unwrap();
        fs::write(&other, b"not ours").unwrap();
        assert!(matches!(o.commit(), Err(Error::OutputNotOurs { .. })));
        assert_eq!(fs::read(&other).unwrap(), b"not ours");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2, "temporary folder removed");
    }

    #[test]
    fn stale_temporary_folders_are_removed_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A killed run's folder: a lock file nobody holds.
        let stale = dir.path().join(".x.pareto-tmp-99999-0");
        fs::create_dir(&stale).unwrap();
        fs::write(stale.join(LOCK_NAME), b"").unwrap();
        fs::write(stale.join("model.safetensors"), b"partial").unwrap();
        // A running job's folder, locked by another open file description.
        let running = dir.path().join(".y.pareto-tmp-99998-0");
        fs::create_dir(&running).unwrap();
        let held = fs::File::create(running.join(LOCK_NAME)).unwrap();
        held.lock().unwrap();
        // A fresh folder without a lock file (its writer may be about to take it), and a user's
        // hidden folder that only looks similar.
        let fresh = dir.path().join(".z.pareto-tmp-99997-0");
        fs::create_dir(&fresh).unwrap();
        let users = dir.path().join(".notes");
        fs::create_dir(&users).unwrap();
        let o = OutputDir::create(&dir.path().join("out"), &SourcePaths::none(), false, default_opener()).unwrap();
        assert_eq!(o.stale_removed(), std::slice::from_ref(&stale));
        assert!(!stale.exists() && running.exists() && fresh.exists() && users.exists());
        // This process's own live folder is never taken for stale.
        assert!(remove_stale_temp_folders(dir.path()).is_empty());
        assert!(o.tmp_path().exists());
        drop(o);
        drop(held);
        assert_eq!(remove_stale_temp_folders(dir.path()), vec![running.clone()]);
    }
}
