//! An output folder that appears under its final name only when complete.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

use sha2::{Digest, Sha256};

use super::manifest::FileRecord;
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

/// Opens output files. Swappable so tests can simulate a full disk.
pub type Opener = Arc<dyn Fn(&Path) -> io::Result<Box<dyn FileSink>> + Send + Sync>;

pub fn default_opener() -> Opener {
    Arc::new(|path: &Path| {
        let f = fs::File::create(path)?;
        Ok(Box::new(io::BufWriter::with_capacity(8 << 20, f)) as Box<dyn FileSink>)
    })
}

const DISK_FULL_HINT: &str = " (is the disk full?)";

fn write_error(path: &Path, source: io::Error) -> Error {
    let hint = if source.kind() == io::ErrorKind::StorageFull { DISK_FULL_HINT } else { "" };
    Error::Write { path: path.to_path_buf(), source, hint }
}

/// A temporary folder beside `final_path`; removed on drop unless committed.
pub struct OutputDir {
    final_path: PathBuf,
    tmp_path: PathBuf,
    force: bool,
    opener: Opener,
    files: Vec<FileRecord>,
    committed: bool,
}

impl OutputDir {
    /// Refuses an output that is, or contains, the source folder, and an existing output unless
    /// `force` (then it is replaced only at commit time).
    pub fn create(final_path: &Path, source_root: &Path, force: bool, opener: Opener) -> Result<OutputDir> {
        let abs = |p: &Path| -> PathBuf {
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
            };
            // Canonicalize what exists so symlinks and `..` cannot hide the source.
            p.canonicalize().unwrap_or(p)
        };
        let (out, src) = (abs(final_path), abs(source_root));
        if src.starts_with(&out) {
            return Err(Error::OutputIsSource { output: final_path.to_path_buf() });
        }
        if out.exists() && !force {
            return Err(Error::OutputExists { path: final_path.to_path_buf() });
        }
        let parent = out.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        fs::create_dir_all(&parent).map_err(|e| write_error(&parent, e))?;
        let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let tmp_path = parent.join(format!(".{name}.pareto-tmp-{}", std::process::id()));
        if tmp_path.exists() {
            fs::remove_dir_all(&tmp_path).map_err(|e| write_error(&tmp_path, e))?;
        }
        fs::create_dir(&tmp_path).map_err(|e| write_error(&tmp_path, e))?;
        Ok(OutputDir { final_path: out, tmp_path, force, opener, files: Vec::new(), committed: false })
    }

    pub fn tmp_path(&self) -> &Path {
        &self.tmp_path
    }

    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Opens `rel` inside the temporary folder for writing; bytes are hashed as they go.
    pub fn create_file(&self, rel: &str) -> Result<HashingFile> {
        let path = self.tmp_path.join(rel);
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

    /// Copies a file from the source folder.
    pub fn copy_file(&mut self, src: &Path, rel: &str) -> Result<()> {
        let data = fs::read(src).map_err(|e| Error::io(src, e))?;
        self.write_file(rel, &data)
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

    /// Renames the finished folder into place (replacing an old one when forced).
    pub fn commit(mut self) -> Result<PathBuf> {
        if self.final_path.exists() {
            if !self.force {
                return Err(Error::OutputExists { path: self.final_path.clone() });
            }
            let old = self.tmp_path.with_extension("old");
            fs::rename(&self.final_path, &old).map_err(|e| write_error(&self.final_path, e))?;
            fs::rename(&self.tmp_path, &self.final_path).map_err(|e| write_error(&self.final_path, e))?;
            fs::remove_dir_all(&old).map_err(|e| write_error(&old, e))?;
        } else {
            fs::rename(&self.tmp_path, &self.final_path).map_err(|e| write_error(&self.final_path, e))?;
        }
        self.committed = true;
        Ok(self.final_path.clone())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: a failed job must not leave its partial files behind.
            let _ = fs::remove_dir_all(&self.tmp_path);
        }
    }
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
        Ok(FileRecord { name: self.rel.clone(), bytes, sha256 })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_renames_and_drop_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir(&src).unwrap();
        let out = dir.path().join("out");
        {
            let mut o = OutputDir::create(&out, &src, false, default_opener()).unwrap();
            o.write_file("a.txt", b"hello").unwrap();
            assert!(!out.exists());
        }
        assert!(!out.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "temp folder removed");
        let mut o = OutputDir::create(&out, &src, false, default_opener()).unwrap();
        o.write_file("a.txt", b"hello").unwrap();
        o.commit().unwrap();
        assert_eq!(fs::read(out.join("a.txt")).unwrap(), b"hello");
        assert!(matches!(OutputDir::create(&out, &src, false, default_opener()), Err(Error::OutputExists { .. })));
        assert!(matches!(OutputDir::create(&src, &src, true, default_opener()), Err(Error::OutputIsSource { .. })));
        assert!(matches!(
            OutputDir::create(dir.path(), &src, true, default_opener()),
            Err(Error::OutputIsSource { .. })
        ));
    }
}
