//! Reading source tensors for an export: positional reads of the shards (nothing stays mapped,
//! so memory stays bounded), decoding to f32 with the NaN/Inf check, tensor buffers reused from
//! one tensor to the next, and a read-ahead thread that decodes the next tensor while the current
//! one is quantized.

use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

use pareto_formats::pool::BufferPool;

use crate::compress::open_read;
use crate::error::{Error, Result};
use crate::file_hash::{self, BackgroundHash};
use crate::store::{self, Model, TensorInfo};

/// Elements decoded per read: bounds the raw bytes held beside the f32 tensor to a few MB.
const CHUNK_ELEMS: usize = 1 << 20;
/// Default for [`SourceReader::large_bytes`]: tensors larger than this (as f32) are not read
/// ahead, so a model with two huge neighbours (embedding, output) never holds both decoded at once.
pub const LARGE_TENSOR_BYTES: u64 = 512 << 20;
/// A tensor above this size (as f32) that is also [`OUTLIER_FACTOR`] times the model's mean tensor
/// is large too: vocabulary-sized embeddings and heads would otherwise set the export's peak memory
/// alone (a 1.1B model's 250 MiB embedding beside 44 MiB layers), and row by row they are no slower.
const OUTLIER_FLOOR_BYTES: u64 = 64 << 20;
const OUTLIER_FACTOR: u64 = 4;
/// Tensor buffers kept for reuse (the one being quantized and the one being read ahead).
const KEEP_BUFFERS: usize = 2;

/// The source shards of one export.
pub struct SourceReader {
    shared: Arc<Shared>,
    scratch: Mutex<Scratch>,
    ahead: Mutex<Option<ReadAhead>>,
}

struct Shared {
    files: Vec<(PathBuf, File)>,
    /// f32 size above which a tensor is "large" (see [`SourceReader::is_large`]).
    large_bytes: u64,
    /// Returned tensor buffers: a fresh multi-megabyte allocation per tensor costs a page fault and
    /// a kernel zeroing per 4 KiB page, more than decoding the bytes into it.
    buffers: BufferPool<f32>,
}

/// Per-reader decode scratch: the raw bytes of one chunk.
#[derive(Default)]
struct Scratch {
    raw: Vec<u8>,
}

/// One tensor from the read-ahead thread; `data` is `None` when it was too large to read ahead.
struct Prefetched {
    name: String,
    data: Option<Result<Vec<f32>>>,
}

struct ReadAhead {
    rx: Receiver<Prefetched>,
    /// Received but not yet asked for (a read of another tensor came in between).
    pending: Option<Prefetched>,
}

impl SourceReader {
    /// `large_bytes`: see [`LARGE_TENSOR_BYTES`]; tensors several times the model's mean size are
    /// large below it too (see [`OUTLIER_FACTOR`]).
    pub fn open(model: &Model, large_bytes: u64) -> Result<SourceReader> {
        let files =
            model.shards().iter().map(|s| Ok((s.path.clone(), open_read(&s.path)?))).collect::<Result<Vec<_>>>()?;
        let large_bytes = large_bytes.min(outlier_bytes(model.tensors()));
        Ok(SourceReader {
            shared: Arc::new(Shared { files, large_bytes, buffers: BufferPool::new(KEEP_BUFFERS) }),
            scratch: Mutex::default(),
            ahead: Mutex::default(),
        })
    }

    /// Reads `len` bytes at `offset` within the tensor's data.
    pub fn read(&self, t: &TensorInfo, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.shared.read_into(t, offset, &mut buf)?;
        Ok(buf)
    }

    /// The whole tensor decoded to f32, refusing NaN/Inf with the tensor and element named.
    pub fn read_f32(&self, t: &TensorInfo) -> Result<Vec<f32>> {
        if let Some(found) = self.take_prefetched(t) {
            return found;
        }
        let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        self.shared.decode(t, &mut scratch)
    }

    /// Rows `first..first + rows` of a `[_, cols]` tensor, decoded and checked (for tensors
    /// processed a few rows at a time). Consumes the tensor's place in the read-ahead stream.
    pub fn read_rows_f32(&self, t: &TensorInfo, first: usize, rows: usize, cols: usize) -> Result<Vec<f32>> {
        if first == 0
            && let Some(Ok(w)) = self.take_prefetched(t)
        {
            self.recycle(w);
        }
        let overflow = || Error::SizeOverflow { tensor: t.name.clone() };
        let start = first.checked_mul(cols).ok_or_else(overflow)?;
        let len = rows.checked_mul(cols).ok_or_else(overflow)?;
        if start.checked_add(len).is_none_or(|end| end > numel(t).unwrap_or(0)) {
            return Err(overflow());
        }
        let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        self.shared.decode_range(t, start, len, &mut scratch)
    }

    /// Whether a tensor is too large to read ahead or hold twice (it is then best processed a
    /// few rows at a time where the work allows it).
    pub fn is_large(&self, t: &TensorInfo) -> bool {
        self.shared.is_large(t)
    }

    /// Bytes of f32 worth processing per step when a large tensor goes a few rows at a time.
    pub fn step_bytes(&self) -> usize {
        usize::try_from(self.shared.large_bytes / 8).unwrap_or(usize::MAX).min(64 << 20)
    }

    /// Hands a tensor buffer back for the next `read_f32`.
    pub fn recycle(&self, w: Vec<f32>) {
        self.shared.recycle(w);
    }

    /// Starts decoding `order` on a thread of its own, one tensor ahead of the reads: `read_f32`
    /// of the next tensor in `order` then finds it ready. Reads of other tensors in between still
    /// work (read directly). Replaces any earlier read-ahead.
    pub fn read_ahead(&self, order: Vec<TensorInfo>) {
        let (tx, rx) = sync_channel(0);
        let shared = self.shared.clone();
        std::thread::spawn(move || read_ahead_thread(&shared, order, &tx));
        *self.ahead.lock().unwrap_or_else(PoisonError::into_inner) = Some(ReadAhead { rx, pending: None });
    }

    /// Starts hashing every source shard on a thread of its own.
    pub fn hash_in_background(&self) -> BackgroundHash {
        file_hash::hash_in_background(self.shared.files.iter().map(|(p, _)| p.clone()).collect())
    }

    fn take_prefetched(&self, t: &TensorInfo) -> Option<Result<Vec<f32>>> {
        let mut guard = self.ahead.lock().unwrap_or_else(PoisonError::into_inner);
        let ahead = guard.as_mut()?;
        if ahead.pending.is_none() {
            ahead.pending = ahead.rx.recv().ok();
        }
        if ahead.pending.as_ref().is_some_and(|p| p.name == t.name) {
            return ahead.pending.take().and_then(|p| p.data);
        }
        None
    }
}

/// The f32 size above which a tensor stands out from the model's others (see [`OUTLIER_FACTOR`]).
fn outlier_bytes(tensors: &[TensorInfo]) -> u64 {
    let total = tensors.iter().map(|t| t.numel().saturating_mul(4)).fold(0u64, u64::saturating_add);
    let mean = total / (tensors.len() as u64).max(1);
    mean.saturating_mul(OUTLIER_FACTOR).max(OUTLIER_FLOOR_BYTES)
}

fn numel(t: &TensorInfo) -> Result<usize> {
    usize::try_from(t.nbytes / t.dtype.size_bytes().max(1)).map_err(|_| Error::SizeOverflow { tensor: t.name.clone() })
}

fn read_ahead_thread(shared: &Shared, order: Vec<TensorInfo>, tx: &SyncSender<Prefetched>) {
    let mut scratch = Scratch::default();
    for t in order {
        let data = (!shared.is_large(&t)).then(|| shared.decode(&t, &mut scratch));
        let failed = matches!(data, Some(Err(_)));
        // A closed channel: the export finished, failed or was cancelled.
        if tx.send(Prefetched { name: t.name, data }).is_err() || failed {
            return;
        }
    }
}

impl Shared {
    fn is_large(&self, t: &TensorInfo) -> bool {
        self.is_large_len(t.nbytes / t.dtype.size_bytes().max(1))
    }

    /// Whether `len` elements as f32 exceed the large-tensor size.
    fn is_large_len(&self, len: u64) -> bool {
        len.saturating_mul(4) > self.large_bytes
    }

    fn read_into(&self, t: &TensorInfo, offset: u64, buf: &mut [u8]) -> Result<()> {
        let (path, file) = self.files.get(t.shard).ok_or_else(|| Error::TensorNotFound { name: t.name.clone() })?;
        read_exact_at(file, buf, t.offset + offset).map_err(|e| Error::io(path, e))
    }

    fn decode(&self, t: &TensorInfo, scratch: &mut Scratch) -> Result<Vec<f32>> {
        let numel = numel(t)?;
        self.decode_range(t, 0, numel, scratch)
    }

    /// Elements `start..start + len` of the tensor (row-major), decoded and checked.
    fn decode_range(&self, t: &TensorInfo, start: usize, len: usize, scratch: &mut Scratch) -> Result<Vec<f32>> {
        let elem = t.dtype.size_bytes().max(1);
        let mut w = self.buffer(len);
        for (i, out) in w.chunks_mut(CHUNK_ELEMS).enumerate() {
            let first = start + i * CHUNK_ELEMS;
            scratch.raw.resize(out.len() * elem as usize, 0);
            self.read_into(t, first as u64 * elem, &mut scratch.raw)?;
            match store::decode_f32_into(t.dtype, &scratch.raw, out) {
                None => return Err(Error::NotAFloatTensor { tensor: t.name.clone(), dtype: t.dtype }),
                Some(false) => return Err(non_finite(&t.name, out, first)),
                Some(true) => {}
            }
        }
        Ok(w)
    }

    /// A buffer of `len` elements (contents unspecified: the caller overwrites all of them).
    fn buffer(&self, len: usize) -> Vec<f32> {
        let w = self.buffers.take(len);
        if self.is_large_len(len as u64) {
            // A tensor too large to read ahead is processed alone: spare buffers would only add
            // to the peak it sets.
            self.buffers.clear();
        }
        w
    }

    fn recycle(&self, w: Vec<f32>) {
        self.buffers.give_back(w);
    }
}

/// The error for a chunk the decode found a NaN/Inf in: its first such element.
fn non_finite(tensor: &str, w: &[f32], base: usize) -> Error {
    let i = w.iter().position(|x| !x.is_finite()).unwrap_or(0);
    Error::NonFinite { tensor: tensor.to_string(), index: base + i, value: w.get(i).copied().unwrap_or(f32::NAN) }
}

/// Positional read of exactly `buf.len()` bytes (shared by every reader of model files).
#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_read(buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DType, Role};

    fn tensor(name: &str, shape: &[usize]) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            dtype: DType::F16,
            shape: shape.to_vec(),
            shard: 0,
            offset: 0,
            nbytes: shape.iter().product::<usize>() as u64 * 2,
            role: Role::Other,
        }
    }

    /// The tensors of a LLaMA-shaped model: (vocab, hidden, kv width, ffn, layers).
    fn llama(vocab: usize, hidden: usize, kv: usize, ffn: usize, layers: usize) -> Vec<TensorInfo> {
        let mut t = vec![tensor("embed", &[vocab, hidden]), tensor("head", &[vocab, hidden])];
        for l in 0..layers {
            for (n, rows) in
                [("q", hidden), ("k", kv), ("v", kv), ("o", hidden), ("gate", ffn), ("up", ffn), ("down", ffn)]
            {
                t.push(tensor(&format!("{l}.{n}"), &[rows, hidden]));
            }
            t.push(tensor(&format!("{l}.norm"), &[hidden]));
        }
        t
    }

    #[test]
    fn vocabulary_sized_tensors_stand_out_but_layers_of_a_large_model_do_not() {
        // TinyLlama-1.1B shapes: the 32000×2048 embedding and head are large, the layers are not.
        let limit = outlier_bytes(&llama(32000, 2048, 256, 5632, 22));
        assert!(32000 * 2048 * 4 > limit && 5632 * 2048 * 4 < limit, "{limit}");
        // Llama-3-8B shapes: the 224 MiB MLP tensors stay whole (read ahead), the embedding does not.
        let limit = outlier_bytes(&llama(128256, 4096, 1024, 14336, 32));
        assert!(14336 * 4096 * 4 < limit && 128256 * 4096 * 4 > limit.min(LARGE_TENSOR_BYTES), "{limit}");
        // A model of small tensors only: the floor keeps them all whole.
        assert_eq!(outlier_bytes(&[tensor("a", &[64, 64]), tensor("b", &[4])]), OUTLIER_FLOOR_BYTES);
        assert_eq!(outlier_bytes(&[]), OUTLIER_FLOOR_BYTES);
    }
}
