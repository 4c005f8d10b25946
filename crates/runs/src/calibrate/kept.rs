//! Calibration results kept in the cache folder, so the export of a run already calibrated (the
//! sweep's chosen variant through `pareto export`, the studio's Export screen, a second
//! `compress`), or of a recipe that differs only outside the decoder blocks, does not calibrate
//! again.
//!
//! In sequential mode a layer's statistics depend on every earlier layer as compressed, so what
//! is reusable is the whole result for one plan of the blocks: the key is the weights, the
//! calibration text's bytes, the protocol and every planned tensor of the decoder blocks (the
//! embedding, final norm and head are not read by a calibration, so their formats are not in
//! it), and the build. The entry is the spill file's arrays and an index of them; it is read in
//! place. An entry that cannot be read is computed again, never trusted.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pareto_core::job::JobContext;
use pareto_core::recipe::Plan;
use pareto_solve::SolvedCodes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{CalibrationReport, CalibrationSpec};
use crate::error::Result;

/// What a file being written is named after (see [`pareto_core::cache::temporary_path`]).
const TMP_PREFIX: &str = ".calibration.pareto-tmp-";
/// Bumped when what an entry holds changes.
const VERSION: u32 = 1;
const MAGIC: &[u8; 16] = b"PARETO-CALIBRATE";
/// An index larger than this is not one of ours.
const HEADER_CAP: u64 = 64 << 20;
/// What the folder may hold by default (`PARETO_CALIBRATION_CACHE_MIB` changes it): two
/// calibrations of an 8B model's GPTQ codes (a byte a weight).
const DEFAULT_BUDGET: u64 = 16 << 30;

/// Everything a calibration's result depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Key {
    pareto_calibration: u32,
    /// [`pareto_core::cache::build_stamp`].
    build: String,
    weights: Vec<String>,
    config: String,
    /// sha256 of the calibration text file, and of the tokenizer that cuts it into tokens.
    samples: String,
    tokenizer: String,
    /// The protocol, its file path left out (the bytes above stand for it).
    protocol: CalibrationSpec,
    /// sha256 of the decoder blocks' planned tensors (name, shapes, action) and any structured cut.
    blocks: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    key: Key,
    /// Bytes of arrays after the magic.
    body: u64,
    /// sha256 of the arrays and then the index: a flipped bit anywhere in what is read back is
    /// caught before the codes are used.
    digest: String,
    /// [`SolvedCodes::keep`]'s index.
    index: String,
    report: CalibrationReport,
}

pub(super) fn key_of(model_dir: &Path, plan: &Plan, spec: &CalibrationSpec, ctx: &JobContext) -> Result<Key> {
    let stop = std::sync::atomic::AtomicBool::new(ctx.cancel.is_cancelled());
    let (weights, config) = pareto_core::cache::weights_digest(model_dir, &stop)?;
    let samples = pareto_core::file_hash::sha256_file(&spec.samples, &stop)?.sha256;
    let tokenizer = pareto_eval::weights::tokenizer_path(model_dir, None)?;
    let tokenizer = pareto_core::file_hash::sha256_file(&tokenizer, &stop)?.sha256;
    let blocks: Vec<_> = plan
        .tensors
        .iter()
        .filter(|t| t.layer.is_some())
        .map(|t| (&t.source_name, &t.source_shape, &t.shape, &t.action))
        .collect();
    let text = serde_json::to_vec(&(blocks, &plan.structured)).map_err(|e| super::invalid(&e.to_string()))?;
    Ok(Key {
        pareto_calibration: VERSION,
        build: pareto_core::cache::build_stamp(),
        weights,
        config,
        samples,
        tokenizer,
        protocol: CalibrationSpec { samples: PathBuf::new(), ..spec.clone() },
        blocks: hex::encode(Sha256::digest(&text)),
    })
}

pub(super) fn file_name(key: &Key) -> String {
    let text = serde_json::to_string(key).unwrap_or_default();
    format!("{}.calibration", &hex::encode(Sha256::digest(text.as_bytes()))[..32])
}

/// The kept result at `path`, checked against `key`.
pub(super) fn open(path: &Path, key: &Key) -> std::result::Result<(Arc<SolvedCodes>, CalibrationReport), String> {
    let mut f = File::open(path).map_err(|e| e.to_string())?;
    let (json, body) = pareto_core::cache::read_entry_header(&mut f, MAGIC, HEADER_CAP, "calibration")?;
    let header: Header = serde_json::from_slice(&json).map_err(|e| format!("its header is damaged: {e}"))?;
    if &header.key != key {
        return Err("it was kept for other weights, text, settings or recipe".into());
    }
    if header.body != body {
        return Err("its length does not match its header (truncated?)".into());
    }
    if digest_of(&mut f, MAGIC.len() as u64, body, header.index.as_bytes()).map_err(|e| e.to_string())? != header.digest
    {
        return Err("its arrays do not match their digest (damaged)".into());
    }
    // Touched, so an eviction by age keeps what is used.
    let _ = f.set_modified(std::time::SystemTime::now());
    let codes =
        SolvedCodes::open_kept(f, MAGIC.len() as u64, body, header.index.as_bytes()).map_err(|e| e.to_string())?;
    Ok((Arc::new(codes), header.report))
}

/// Writes `codes` and `report` under `path` (a temporary sibling renamed into place when whole),
/// then keeps the folder to its budget. Not kept when the disk would be left with less than the
/// entry's size free.
pub(super) fn keep(path: &Path, key: &Key, codes: &SolvedCodes, report: &CalibrationReport) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let needs = 2 * codes.spilled_bytes() + (64 << 20);
    if pareto_core::disk::available_bytes(dir).is_some_and(|free| free < needs) {
        return Err(std::io::Error::other(format!("{needs} bytes would not leave room on that disk")));
    }
    pareto_core::cache::remove_stale_temporaries(dir, TMP_PREFIX);
    let tmp = pareto_core::cache::temporary_path(dir, TMP_PREFIX);
    let written = (|| -> std::io::Result<()> {
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(MAGIC)?;
        let mut counted = Counted { inner: &mut out, bytes: 0, hash: Sha256::new() };
        let index = codes.keep(&mut counted)?;
        let body = counted.bytes;
        counted.hash.update(&index);
        let digest = hex::encode(counted.hash.finalize());
        let index = String::from_utf8(index).map_err(std::io::Error::other)?;
        let header = Header { key: key.clone(), body, digest, index, report: report.clone() };
        let json = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
        pareto_core::cache::write_entry_header(&mut out, &json)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    let budget = pareto_core::cache::budget("PARETO_CALIBRATION_CACHE_MIB", DEFAULT_BUDGET);
    pareto_core::cache::evict_to(dir, path, "calibration", budget);
    Ok(())
}

/// sha256 of the `len` bytes at `at` in `f`, then of `index` (see [`Header::digest`]).
fn digest_of(f: &mut File, at: u64, len: u64, index: &[u8]) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    f.seek(SeekFrom::Start(at))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 8 << 20];
    let mut left = len;
    while left > 0 {
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        f.read_exact(&mut buf[..n])?;
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    hash.update(index);
    Ok(hex::encode(hash.finalize()))
}

/// A writer that counts and hashes what passes through it.
struct Counted<'a, W: Write> {
    inner: &'a mut W,
    bytes: u64,
    hash: Sha256,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
