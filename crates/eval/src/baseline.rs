//! The original decoder's side of an evaluation, computed once per (weights, tokens, protocol) and
//! kept in the cache folder, so every variant of a sweep — and every later session — compares
//! against it without running the original again.
//!
//! What is kept is the original's last-layer output at every position of every window (plus its
//! perplexity and greedy continuation). KL divergence needs the original's whole next-token
//! distribution at every position; kept as such it would take vocabulary × positions floats
//! (6 GB for SmolLM2-135M on the default protocol), while the hidden states take hidden ×
//! positions (72 MB there) and the original's head — read alone from its file — turns them back
//! into the same logits, bit for bit. The layers, most of the original's cost, are not run again.
//!
//! The original always runs in a pass of its own before the compressed model is loaded, so the two
//! models are never in memory together; without a cache the hidden states wait in an unnamed
//! temporary file. A cache entry that cannot be read is computed again, never trusted.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use pareto_core::job::JobContext;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{EvalError, Result};
use crate::llama::{LlamaModel, LmHead, LoadAs};
use crate::perplexity::{PerplexityProtocol, PerplexityResult, original_pass};

/// Where an evaluation keeps the original's side (`<cache folder>/baselines` by default).
pub use pareto_core::cache::CacheFolder as BaselineCache;

/// What a file being written is named after (see [`pareto_core::cache::temporary_path`]).
const TMP_PREFIX: &str = ".baseline.pareto-tmp-";
/// Bumped when what an entry holds changes.
const BASELINE_VERSION: u32 = 1;
const MAGIC: &[u8; 16] = b"PARETO-BASELINE\n";
/// A header larger than this is not a header of ours.
const HEADER_CAP: u64 = 1 << 20;

/// Everything the original's hidden states depend on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Key {
    pareto_eval_baseline: u32,
    /// [`pareto_core::cache::build_stamp`].
    build: String,
    /// sha256 of the weight files, sorted, and of config.json.
    weights: Vec<String>,
    config: String,
    /// sha256 of the token ids (little-endian u32) the windows are cut from.
    tokens: String,
    protocol: PerplexityProtocol,
    greedy_steps: usize,
    device: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    /// `None` for a pass kept for this evaluation only (no cache folder).
    key: Option<Key>,
    windows: usize,
    /// Input positions per window.
    positions: usize,
    hidden: usize,
    result: PerplexityResult,
    greedy: Vec<u32>,
}

impl Header {
    fn data_bytes(&self) -> Option<u64> {
        (self.windows as u64).checked_mul(self.positions as u64)?.checked_mul(self.hidden as u64)?.checked_mul(4)
    }
}

/// The original's side, ready to compare against.
pub struct Baseline {
    header: Header,
    file: File,
    data_offset: u64,
    head: LmHead,
    /// Reused from an earlier run rather than computed now.
    pub reused: bool,
    /// What happened to the cache (a damaged entry replaced, a folder that cannot be written).
    pub notes: Vec<String>,
}

impl std::fmt::Debug for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Baseline").field("reused", &self.reused).field("windows", &self.header.windows).finish()
    }
}

impl Baseline {
    /// The original's perplexity on the windows (its wall time is that of the run that computed it).
    pub fn result(&self) -> PerplexityResult {
        self.header.result
    }

    /// The original's greedy continuation from BOS.
    pub fn greedy(&self) -> &[u32] {
        &self.header.greedy
    }

    pub fn head(&self) -> &LmHead {
        &self.head
    }

    /// Hidden states `[n, positions, hidden]` of windows `first .. first + n`.
    pub fn hidden(&mut self, first: usize, n: usize, device: &Device) -> Result<Tensor> {
        let (p, h) = (self.header.positions, self.header.hidden);
        if first + n > self.header.windows {
            return Err(EvalError::InvalidArgument(format!(
                "windows {first}..{} asked of a baseline of {}",
                first + n,
                self.header.windows
            )));
        }
        // Read straight into the floats (the file is in this machine's byte order: entries are
        // written and read by the same kind of machine, and the key names the device).
        let mut values = vec![0f32; n * p * h];
        let at = self.data_offset + (first * p * h * 4) as u64;
        self.file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.read_exact(bytemuck::cast_slice_mut(&mut values)))
            .map_err(|e| EvalError::io("the kept hidden states of the original", e))?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(EvalError::InvalidArgument(
                "the kept hidden states of the original hold a NaN or Inf: the cache entry is damaged (delete it, or run with the cache off)".into(),
            ));
        }
        Ok(Tensor::from_vec(values, (n, p, h), device)?)
    }
}

/// What the original is run on: the token stream, the windows cut from it, and the greedy
/// continuation's length.
#[derive(Debug, Clone, Copy)]
pub struct Pass<'a> {
    pub tokens: &'a [u32],
    pub protocol: &'a PerplexityProtocol,
    pub greedy_steps: usize,
}

/// The original's side of an evaluation of `tokens` under `protocol`: read from the cache when an
/// earlier run of the same weights, tokens and protocol left it there, else computed (the original
/// loaded `how`, its pass run, its greedy continuation of `greedy_steps` taken) and kept. Only a
/// dense original is kept across runs (a GGUF's stored blocks are not hashed here).
pub fn obtain(
    model: &Path,
    how: &LoadAs,
    device: &Device,
    pass: Pass<'_>,
    cache: &BaselineCache,
    ctx: &JobContext,
) -> Result<Baseline> {
    let Pass { tokens, protocol, greedy_steps } = pass;
    let folder = match how {
        LoadAs::Dense => cache.folder("baselines"),
        _ => None,
    };
    let key = match &folder {
        Some(_) => Some(key_of(model, tokens, protocol, greedy_steps, device, ctx)?),
        None => None,
    };
    let mut notes = Vec::new();
    let entry = folder.as_ref().zip(key.as_ref()).map(|(dir, key)| dir.join(file_name(key)));
    if let (Some(path), Some(key)) = (&entry, &key)
        && path.exists()
    {
        match open_entry(path, key) {
            Ok((header, file, data_offset)) => {
                let head = LlamaModel::load_head(model, device)?;
                // Touched, so an eviction by age keeps what is used.
                let _ = file.set_modified(std::time::SystemTime::now());
                return Ok(Baseline { header, file, data_offset, head, reused: true, notes });
            }
            Err(why) => notes.push(format!(
                "the kept evaluation of the original {} was not used ({why}); computed again",
                path.display()
            )),
        }
    }

    // Computed: the original's pass into a temporary file, renamed into the cache when complete.
    // Layout: magic, the windows' hidden states (f32, native byte order), the JSON header, its
    // length.
    let original = LlamaModel::load_as(model, device, how)?;
    let config = original.config().clone();
    let (mut file, tmp_path) = temporary(folder.as_deref(), &mut notes)?;
    let shown = tmp_path.clone().unwrap_or_else(std::env::temp_dir);
    let io = |e: std::io::Error| EvalError::io(&shown, e);
    let computed = (|| -> Result<Header> {
        let mut out = BufWriter::with_capacity(1 << 20, &mut file);
        out.write_all(MAGIC).map_err(io)?;
        let mut shape = (0usize, 0usize, 0usize);
        let result = original_pass(
            &original,
            tokens,
            protocol,
            &mut |x: &Tensor| {
                let (n, p, h) = x.dims3()?;
                shape = (shape.0 + n, p, h);
                let v: Vec<f32> = x.flatten_all()?.to_vec1()?;
                out.write_all(bytemuck::cast_slice(&v)).map_err(io)
            },
            ctx,
        )?;
        let steps = greedy_steps.min(config.max_position_embeddings.saturating_sub(1));
        let header = Header {
            key: key.clone(),
            windows: shape.0,
            positions: shape.1,
            hidden: shape.2,
            result,
            greedy: original.greedy(&[config.bos()], steps)?,
        };
        let json = serde_json::to_vec(&header).map_err(|e| io(std::io::Error::other(e)))?;
        pareto_core::cache::write_entry_header(&mut out, &json).map_err(io)?;
        out.flush().map_err(io)?;
        Ok(header)
    })();
    let header = match computed {
        Ok(h) => h,
        Err(e) => {
            discard(tmp_path.as_deref());
            return Err(e);
        }
    };
    let head = original.lm_head()?;
    drop(original);
    if let (Some(t), Some(final_path)) = (tmp_path, entry) {
        match file.sync_all().and_then(|()| std::fs::rename(&t, &final_path)) {
            Ok(()) => evict(final_path.parent().unwrap_or(Path::new(".")), &final_path),
            Err(e) => {
                // Still usable through the open handle for this evaluation.
                discard(Some(&t));
                notes.push(format!(
                    "the evaluation of the original could not be kept in {} ({e})",
                    final_path.display()
                ));
            }
        }
    }
    Ok(Baseline { header, file, data_offset: MAGIC.len() as u64, head, reused: false, notes })
}

/// A file for the pass: a named temporary sibling of the cache entry (renamed into place when
/// complete), else an unnamed temporary file that disappears with the evaluation.
fn temporary(folder: Option<&Path>, notes: &mut Vec<String>) -> Result<(File, Option<PathBuf>)> {
    if let Some(dir) = folder {
        pareto_core::cache::remove_stale_temporaries(dir, TMP_PREFIX);
        let path = pareto_core::cache::temporary_path(dir, TMP_PREFIX);
        match std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path))
        {
            Ok(f) => return Ok((f, Some(path))),
            Err(e) => notes.push(format!(
                "the cache folder {} cannot be written ({e}): the original's evaluation is not kept for the next run",
                dir.display()
            )),
        }
    }
    let f = tempfile_in_temp_dir().map_err(|e| {
        EvalError::InvalidArgument(format!(
            "no temporary file for the original's hidden states in {} ({e}): free space there or point TMPDIR elsewhere",
            std::env::temp_dir().display()
        ))
    })?;
    Ok((f, None))
}

/// An unnamed file in the system's temporary folder (created, opened, unlinked).
fn tempfile_in_temp_dir() -> std::io::Result<File> {
    let path = pareto_core::cache::temporary_path(&std::env::temp_dir(), ".pareto-baseline-");
    let f = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
    let _ = std::fs::remove_file(&path);
    Ok(f)
}

fn discard(path: Option<&Path>) {
    if let Some(p) = path {
        let _ = std::fs::remove_file(p);
    }
}

/// Reads and checks an entry's header: the magic, the header's place and size, the key, and a
/// file length that matches the data the header describes exactly.
fn open_entry(path: &Path, key: &Key) -> std::result::Result<(Header, File, u64), String> {
    let mut f = File::open(path).map_err(|e| e.to_string())?;
    let (json, body) = pareto_core::cache::read_entry_header(&mut f, MAGIC, HEADER_CAP, "evaluation")?;
    let header: Header = serde_json::from_slice(&json).map_err(|e| format!("its header is damaged: {e}"))?;
    if header.key.as_ref() != Some(key) {
        return Err("it was kept for other weights, text or settings".into());
    }
    if header.data_bytes() != Some(body) {
        return Err("its length does not match its header (truncated?)".into());
    }
    Ok((header, f, MAGIC.len() as u64))
}

fn file_name(key: &Key) -> String {
    let text = serde_json::to_string(key).unwrap_or_default();
    format!("{}.bin", &hex::encode(Sha256::digest(text.as_bytes()))[..32])
}

fn key_of(
    model: &Path,
    tokens: &[u32],
    protocol: &PerplexityProtocol,
    greedy_steps: usize,
    device: &Device,
    ctx: &JobContext,
) -> Result<Key> {
    let stop = std::sync::atomic::AtomicBool::new(ctx.cancel.is_cancelled());
    let (weights, config) = pareto_core::cache::weights_digest(model, &stop)?;
    let mut h = Sha256::new();
    for t in tokens {
        h.update(t.to_le_bytes());
    }
    Ok(Key {
        pareto_eval_baseline: BASELINE_VERSION,
        build: pareto_core::cache::build_stamp(),
        weights,
        config,
        tokens: hex::encode(h.finalize()),
        protocol: *protocol,
        greedy_steps,
        device: format!("{device:?} {}", std::env::consts::ARCH),
    })
}

/// Keeps the cache folder to its budget (`PARETO_BASELINE_CACHE_MIB`, default 8 GiB).
fn evict(dir: &Path, keep: &Path) {
    let budget = pareto_core::cache::budget("PARETO_BASELINE_CACHE_MIB", DEFAULT_BUDGET);
    pareto_core::cache::evict_to(dir, keep, "bin", budget);
}

/// What the folder may hold by default (`PARETO_BASELINE_CACHE_MIB` changes it).
const DEFAULT_BUDGET: u64 = 8 << 30;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{Compressed, EvalOptions, evaluate};

    fn stories() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/stories260K")
    }

    fn options(cache: BaselineCache, windows: usize) -> EvalOptions {
        EvalOptions {
            compressed: Some(Compressed::InMemory("q4_0".into())),
            protocol: PerplexityProtocol { max_windows: Some(windows), ..PerplexityProtocol::default() },
            greedy_steps: 20,
            baseline_cache: cache,
            ..EvalOptions::default()
        }
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir).map(|r| r.map(|e| e.unwrap().path()).collect()).unwrap_or_default()
    }

    #[test]
    fn a_kept_evaluation_gives_the_same_numbers_and_a_damaged_one_is_computed_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("baselines");
        let opts = options(BaselineCache::In(dir.clone()), 6);
        let eval = |o: &EvalOptions| evaluate(&stories(), o, &JobContext::silent()).unwrap().decoder.unwrap();
        let first = eval(&opts);
        assert!(!first.original_reused);
        let kept = entries(&dir);
        assert_eq!(kept.len(), 1, "one entry, no temporary file left: {kept:?}");

        // Reused: every number equal (the original's wall time is the first run's).
        let again = eval(&opts);
        assert!(again.original_reused);
        assert_eq!(again.original, first.original);
        let (a, b) = (first.comparison.unwrap(), again.comparison.unwrap());
        assert_eq!((a.mean_kl, a.max_kl, a.top1_agreement), (b.mean_kl, b.max_kl, b.top1_agreement));
        assert_eq!(a.compressed.mean_nll, b.compressed.mean_nll);
        assert!(a.mean_kl > 0.0);
        assert_eq!(first.greedy.original, again.greedy.original);
        assert_eq!(first.greedy.original.len(), 21);

        // The same as without any cache.
        let off = eval(&options(BaselineCache::Off, 6));
        assert_eq!(off.comparison.unwrap().mean_kl, a.mean_kl);
        assert_eq!(off.original.mean_nll, first.original.mean_nll);

        // Truncated: not trusted, computed again and replaced.
        let len = std::fs::metadata(&kept[0]).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&kept[0]).unwrap().set_len(len - 100).unwrap();
        let repaired = eval(&opts);
        assert!(!repaired.original_reused);
        assert_eq!(repaired.comparison.unwrap().mean_kl, a.mean_kl);
        assert!(eval(&opts).original_reused, "the entry was replaced by a whole one");
        // Garbage under the entry's name: the same.
        std::fs::write(&kept[0], b"PARETO-BASELINE\n not ours").unwrap();
        assert!(!eval(&opts).original_reused);
        assert!(eval(&opts).original_reused);

        // Another protocol is another entry.
        eval(&options(BaselineCache::In(dir.clone()), 4));
        assert_eq!(entries(&dir).len(), 2);
    }

    #[test]
    fn a_cancelled_pass_keeps_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("baselines");
        // Cancelled after the first of the original's six batches.
        struct CancelOnAdvance(pareto_core::job::CancelToken);
        impl pareto_core::job::Progress for CancelOnAdvance {
            fn stage(&self, _: &str, _: u64) {}
            fn advance(&self, _: u64, _: &str) {
                self.0.cancel();
            }
            fn log(&self, _: &str) {}
        }
        let token = pareto_core::job::CancelToken::new();
        let ctx = JobContext::new(std::sync::Arc::new(CancelOnAdvance(token.clone())), token);
        let mut opts = options(BaselineCache::In(dir.clone()), 6);
        opts.protocol.batch = 1;
        let err = evaluate(&stories(), &opts, &ctx).unwrap_err();
        assert!(matches!(err, EvalError::Cancelled), "{err}");
        assert_eq!(entries(&dir), Vec::<PathBuf>::new());
    }
}
