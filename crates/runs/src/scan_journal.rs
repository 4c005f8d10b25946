//! The scan's journal: each measured (tensor, format) KL is appended as soon as it is measured,
//! in the cache folder, under a key of everything the measurement depends on (the weights, the
//! sample text, the windows, the build). A cancelled or killed scan resumes where it
//! stopped, a second scan of the same model and text (more formats, `--predict-from`) measures
//! only what is missing, and the studio and the CLI share what either measured.
//!
//! The journal is a convenience, never a reason to fail: one that cannot be read or written is a
//! note in the scan and the scan measures everything.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bumped when what a journal line means changes (then older journals are not read).
const JOURNAL_VERSION: u32 = 1;

/// A journal larger than this is not read (a scan of a 70B model with six formats is ~1 MB).
const JOURNAL_CAP: u64 = 64 << 20;

/// What the measurements depend on; the first line of a journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalKey {
    pub pareto_scan_journal: u32,
    /// [`pareto_core::cache::build_stamp`].
    pub build: String,
    /// Sorted sha256 of the model's weight files.
    pub model_key: String,
    pub samples_sha256: String,
    pub skip_chars: usize,
    /// The windows actually measured (fewer than asked on a short text) and their length.
    pub windows: usize,
    pub window: usize,
}

impl JournalKey {
    pub fn new(model_key: &str, samples_sha256: &str, skip_chars: usize, windows: usize, window: usize) -> Self {
        JournalKey {
            pareto_scan_journal: JOURNAL_VERSION,
            build: pareto_core::cache::build_stamp(),
            model_key: model_key.to_string(),
            samples_sha256: samples_sha256.to_string(),
            skip_chars,
            windows,
            window,
        }
    }

    /// The journal's file name: a digest of the key.
    fn file_name(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        format!("{}.jsonl", &hex::encode(Sha256::digest(text.as_bytes()))[..32])
    }
}

/// KL by (tensor, format).
type Measured = HashMap<(String, String), f64>;

#[derive(Debug, Serialize, Deserialize)]
struct Line {
    tensor: String,
    format: String,
    kl: f64,
}

/// Earlier measurements of the same scan, and where new ones are appended.
#[derive(Debug)]
pub struct Journal {
    path: Option<PathBuf>,
    file: Option<File>,
    known: Measured,
    reused: usize,
    recorded: usize,
    notes: Vec<String>,
}

impl Journal {
    /// No journal: everything is measured, nothing is kept.
    pub fn off() -> Self {
        Journal { path: None, file: None, known: HashMap::new(), reused: 0, recorded: 0, notes: Vec::new() }
    }

    /// The journal of `key` in `dir` (created when missing). `fresh`: earlier measurements are
    /// discarded and the journal starts again.
    pub fn open(dir: &Path, key: &JournalKey, fresh: bool) -> Self {
        let path = dir.join(key.file_name());
        let mut journal = Journal { path: Some(path.clone()), ..Journal::off() };
        let clean = if fresh || !path.exists() {
            false
        } else {
            match read(&path, key) {
                Ok((known, whole)) => {
                    journal.known = known;
                    whole
                }
                Err(why) => {
                    journal
                        .notes
                        .push(format!("the scan journal {} was not used ({why}); it is started again", path.display()));
                    false
                }
            }
        };
        // A journal with a torn last line (a killed scan) or none at all is rewritten whole, so
        // appended lines always start on a line of their own.
        let opened = if clean { append(&path) } else { rewrite(&path, key, &journal.known) };
        match opened {
            Ok(f) => journal.file = Some(f),
            Err(e) => journal.notes.push(format!(
                "the scan journal {} cannot be written ({e}); this scan will not resume if interrupted",
                path.display()
            )),
        }
        journal
    }

    /// The KL an earlier run measured for `tensor` in `format`.
    pub fn get(&mut self, tensor: &str, format: &str) -> Option<f64> {
        let kl = self.known.get(&(tensor.to_string(), format.to_string())).copied();
        self.reused += usize::from(kl.is_some());
        kl
    }

    /// Appends one measurement (one line, one write, flushed).
    pub fn record(&mut self, tensor: &str, format: &str, kl: f64) {
        let Some(f) = self.file.as_mut() else { return };
        let line = Line { tensor: tensor.to_string(), format: format.to_string(), kl };
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        match f.write_all(&bytes).and_then(|()| f.flush()) {
            Ok(()) => self.recorded += 1,
            Err(e) => {
                self.notes.push(format!(
                    "writing the scan journal {} failed ({e}); later measurements are not kept",
                    self.path.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default()
                ));
                self.file = None;
            }
        }
    }

    /// What the scan says about its journal.
    pub fn into_notes(self) -> Vec<String> {
        let mut notes = self.notes;
        if let Some(path) = &self.path
            && self.reused > 0
        {
            notes.push(format!(
                "{} of {} measurements reused from an earlier run of the same scan ({}; `pareto scan --fresh` measures again)",
                self.reused,
                self.reused + self.recorded,
                path.display()
            ));
        }
        notes
    }
}

/// The measurements of a journal, and whether it ended on a whole line. A journal of another key,
/// or whose first line is not a key, is refused.
fn read(path: &Path, key: &JournalKey) -> Result<(Measured, bool), String> {
    let bytes = pareto_core::bounded::read(path, JOURNAL_CAP, "scan journal").map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.split('\n');
    let head: JournalKey = lines
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| "its first line is not a scan journal key".to_string())?;
    if &head != key {
        return Err("it was written for another model, text or build".to_string());
    }
    let mut known = HashMap::new();
    let mut whole = text.ends_with('\n');
    for l in lines.filter(|l| !l.is_empty()) {
        match serde_json::from_str::<Line>(l) {
            Ok(m) if m.kl.is_finite() => {
                known.insert((m.tensor, m.format), m.kl);
            }
            // A torn or damaged line: skipped, and the journal rewritten without it.
            _ => whole = false,
        }
    }
    Ok((known, whole))
}

fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().append(true).open(path)
}

/// Writes the key and `known` to a temporary sibling, renames it over `path`, and opens it for
/// appending.
fn rewrite(path: &Path, key: &JournalKey, known: &Measured) -> std::io::Result<File> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut text = serde_json::to_string(key).map_err(std::io::Error::other)?;
    text.push('\n');
    let mut entries: Vec<_> = known.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for ((tensor, format), &kl) in entries {
        let line = Line { tensor: tensor.clone(), format: format.clone(), kl };
        text.push_str(&serde_json::to_string(&line).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.pareto-tmp-{}", std::process::id()));
    let written = File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.and_then(|()| append(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> JournalKey {
        JournalKey::new("m", "s", 0, 8, 256)
    }

    #[test]
    fn measurements_survive_a_torn_line_and_other_keys_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), &key(), false);
        assert_eq!(j.get("a", "q4_0"), None);
        j.record("a", "q4_0", 0.125);
        j.record("b", "q8_0", 1e-7);
        drop(j);
        let path = dir.path().join(key().file_name());
        // A scan killed in the middle of a line.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"tensor\":\"c\",\"for").unwrap();
        let mut j = Journal::open(dir.path(), &key(), false);
        assert_eq!((j.get("a", "q4_0"), j.get("b", "q8_0"), j.get("c", "q4_0")), (Some(0.125), Some(1e-7), None));
        j.record("c", "q4_0", 0.5);
        drop(j);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("0.5}\n") && text.lines().count() == 4, "the torn line is gone: {text}");
        let mut j = Journal::open(dir.path(), &key(), false);
        assert_eq!(j.get("c", "q4_0"), Some(0.5));
        assert!(j.into_notes()[0].starts_with("1 of 1 measurements reused"));

        // Another text: another journal; `fresh` forgets.
        let mut other = Journal::open(dir.path(), &JournalKey::new("m", "t", 0, 8, 256), false);
        assert_eq!(other.get("a", "q4_0"), None);
        let mut j = Journal::open(dir.path(), &key(), true);
        assert_eq!(j.get("a", "q4_0"), None);

        // A file of another key under this key's name (or garbage) is started again, with a note.
        std::fs::write(&path, "not json\n{\"tensor\":\"a\",\"format\":\"q4_0\",\"kl\":9}\n").unwrap();
        let mut j = Journal::open(dir.path(), &key(), false);
        assert_eq!(j.get("a", "q4_0"), None);
        assert!(j.into_notes()[0].contains("first line is not a scan journal key"));
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("{\"pareto_scan_journal\":1"));
    }

    #[test]
    fn an_unwritable_folder_is_a_note_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let mut j = Journal::open(&blocker.join("scans"), &key(), false);
        j.record("a", "q4_0", 1.0);
        let notes = j.into_notes();
        assert!(notes[0].contains("cannot be written"), "{notes:?}");
    }
}
