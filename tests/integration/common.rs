//! Shared fixtures: paths to the bundled models and a small safetensors writer (the `safetensors`
//! crate, an independent implementation from Pareto's own writer).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

pub fn stories() -> PathBuf {
    repo_root().join("models/stories260K")
}

/// all-MiniLM-L6-v2 is installed by scripts/fetch-models.sh (the test command runs it).
pub fn minilm() -> PathBuf {
    let p = repo_root().join("models/all-MiniLM-L6-v2");
    assert!(
        p.join("model.safetensors").exists(),
        "all-MiniLM-L6-v2 is missing: run scripts/fetch-models.sh (scripts/test.sh does)"
    );
    p
}

/// A copy of the named stories260K files in `dir/m` (a source the test may damage or guard).
pub fn stories_copy(dir: &Path, files: &[&str]) -> PathBuf {
    let src = dir.join("m");
    std::fs::create_dir(&src).expect("create the copy's folder");
    for f in files {
        std::fs::copy(stories().join(f), src.join(f)).expect("copy a stories260K file");
    }
    src
}

/// Writes `tensors` (name, shape, f32 values) as an F32 safetensors file.
pub fn write_f32_model(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| (n.to_string(), s.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, TensorView)> =
        bytes.iter().map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).expect("view"))).collect();
    safetensors::tensor::serialize_to_file(views, None::<HashMap<String, String>>, path).expect("write fixture");
}

/// Reads every tensor of a safetensors file as (dtype, shape, raw bytes) with the `safetensors`
/// crate, so outputs are checked by a reader that is not Pareto's.
pub fn read_all(path: &Path) -> HashMap<String, (Dtype, Vec<usize>, Vec<u8>)> {
    let data = std::fs::read(path).expect("read output");
    let st = safetensors::SafeTensors::deserialize(&data).expect("valid safetensors");
    st.tensors().into_iter().map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec()))).collect()
}

pub fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Copies the stories260K folder into `dir`, splitting its weights over two shards with an index.
pub fn sharded_stories(dir: &Path) {
    let src = read_all(&stories().join("model.safetensors"));
    let mut names: Vec<&String> = src.keys().collect();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (i, part) in [a, b].iter().enumerate() {
        let file = format!("model-{:05}-of-00002.safetensors", i + 1);
        let tensors: Vec<(&str, Vec<usize>, Vec<f32>)> =
            part.iter().map(|n| (n.as_str(), src[*n].1.clone(), f32s(&src[*n].2))).collect();
        write_f32_model(&dir.join(&file), &tensors);
        for n in part.iter() {
            weight_map.insert((*n).clone(), serde_json::Value::String(file.clone()));
        }
    }
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    std::fs::write(dir.join("model.safetensors.index.json"), serde_json::to_vec_pretty(&index).unwrap()).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(stories().join(f), dir.join(f)).unwrap();
    }
}

/// A file that accepts a shared budget of bytes across all files, then fails like a full disk.
struct FullDisk {
    left: std::sync::Arc<std::sync::atomic::AtomicU64>,
    inner: Box<dyn pareto_core::export::FileSink>,
}

impl std::io::Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::sync::atomic::Ordering;
        if self.left.load(Ordering::SeqCst) < buf.len() as u64 {
            return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device"));
        }
        self.left.fetch_sub(buf.len() as u64, Ordering::SeqCst);
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl pareto_core::export::FileSink for FullDisk {
    fn sync(&mut self) -> std::io::Result<()> {
        self.inner.sync()
    }
}

/// An opener whose files together take `budget` bytes before the "disk" is full.
pub fn full_disk_opener(budget: u64) -> pareto_core::export::Opener {
    let left = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(budget));
    let real = pareto_core::export::default_opener();
    std::sync::Arc::new(move |p: &Path| {
        Ok(Box::new(FullDisk { left: left.clone(), inner: real(p)? }) as Box<dyn pareto_core::export::FileSink>)
    })
}

/// A progress sink that cancels the job once `after` units are done.
pub struct CancelAfter {
    pub after: u64,
    pub done: std::sync::atomic::AtomicU64,
    pub token: pareto_core::job::CancelToken,
}

impl pareto_core::job::Progress for CancelAfter {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self, n: u64, _: &str) {
        if self.done.fetch_add(n, std::sync::atomic::Ordering::SeqCst) + n >= self.after {
            self.token.cancel();
        }
    }
    fn log(&self, _: &str) {}
}
