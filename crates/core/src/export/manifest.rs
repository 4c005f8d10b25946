//! `pareto-manifest.json`: what an artifact is made of and a content hash serving caches can key
//! on (a compressed model is a new model version; results cached for the old one are invalid).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
    /// How a source file's digest was obtained; absent for files this run wrote (hashed as written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestFrom>,
}

/// Where a source file's sha256 came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DigestFrom {
    /// Read and hashed by this run.
    Computed,
    /// Remembered from an earlier run for a file with the same path, size, mtime, ctime, device and
    /// inode (see `pareto_core::file_hash`).
    Cache,
}

/// Said in every manifest next to the source digests.
pub const SOURCE_DIGEST_NOTE: &str = "sha256 of each source file: `computed` = read and hashed by this run; `cache` = \
     remembered from an earlier hash of the same path with unchanged size, mtime, ctime, device and inode (a rewrite \
     in place always changes the ctime, even when the mtime is set back)";

#[derive(Debug, Clone, Serialize)]
pub struct Manifest<T: Serialize> {
    pub tool: &'static str,
    pub tool_version: &'static str,
    pub format: String,
    pub source_files: Vec<FileRecord>,
    /// How the source digests were obtained ([`SOURCE_DIGEST_NOTE`]).
    pub source_digests: &'static str,
    pub recipe: crate::recipe::Recipe,
    /// Writer-specific per-tensor records.
    pub tensors: T,
    pub files: Vec<FileRecord>,
    pub content_hash: String,
}

pub const MANIFEST_NAME: &str = "pareto-manifest.json";

/// sha256 over the sorted (name, sha256) list of the artifact's files, the manifest excluded.
pub fn content_hash(files: &[FileRecord]) -> String {
    let mut sorted: Vec<&FileRecord> = files.iter().filter(|f| f.name != MANIFEST_NAME).collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = Sha256::new();
    for f in sorted {
        h.update(f.name.as_bytes());
        h.update([0]);
        h.update(f.sha256.as_bytes());
        h.update([b'\n']);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_ignores_order_and_manifest() {
        let a = FileRecord { name: "a".into(), bytes: 1, sha256: "11".into(), digest: None };
        let b = FileRecord { name: "b".into(), bytes: 1, sha256: "22".into(), digest: None };
        let m = FileRecord { name: MANIFEST_NAME.into(), bytes: 1, sha256: "33".into(), digest: None };
        assert_eq!(content_hash(&[a.clone(), b.clone()]), content_hash(&[b.clone(), m, a.clone()]));
        let b2 = FileRecord { sha256: "23".into(), ..b };
        assert_ne!(content_hash(std::slice::from_ref(&a)), content_hash(&[a, b2]));
    }
}
