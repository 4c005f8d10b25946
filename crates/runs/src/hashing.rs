//! Content addresses: a variant is identified by what it was made from, so a sweep restarted
//! after an interruption recognises the variants it already finished.

use std::path::Path;

use pareto_report::FileHash;
use sha2::{Digest, Sha256};

use crate::error::Result;

/// sha256 of each file (streamed, or from the file-hash cache when the file is unchanged).
pub fn hash_files(paths: &[&Path]) -> Result<Vec<FileHash>> {
    let never = std::sync::atomic::AtomicBool::new(false);
    paths.iter().map(|p| Ok(file_hash(pareto_core::file_hash::sha256_file(p, &never)?))).collect()
}

/// sha256 of each of the model's weight files (its shards), in shard order.
pub fn model_files(model: &pareto_core::Model) -> Result<Vec<FileHash>> {
    let paths: Vec<&Path> = model.shards().iter().map(|s| s.path.as_path()).collect();
    hash_files(&paths)
}

/// A manifest's file record as a run record's file hash (how the digest was obtained is the
/// manifest's business; the record keeps the digest).
pub fn file_hash(r: pareto_core::export::FileRecord) -> FileHash {
    FileHash { name: r.name, bytes: r.bytes, sha256: r.sha256 }
}

/// The id of a variant: model file hashes + recipe TOML + everything else that changes results.
pub fn variant_id(model_files: &[FileHash], recipe_toml: &str, extra: &[&str]) -> String {
    let mut hashes: Vec<&str> = model_files.iter().map(|f| f.sha256.as_str()).collect();
    hashes.sort_unstable();
    let mut h = Sha256::new();
    for x in hashes.iter().copied().chain(std::iter::once(recipe_toml)).chain(extra.iter().copied()) {
        h.update((x.len() as u64).to_le_bytes());
        h.update(x.as_bytes());
    }
    hex::encode(h.finalize()).chars().take(16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_every_input_and_not_on_file_order() {
        let a = FileHash { name: "a".into(), bytes: 1, sha256: "aa".into() };
        let b = FileHash { name: "b".into(), bytes: 1, sha256: "bb".into() };
        let id = variant_id(&[a.clone(), b.clone()], "r", &["s"]);
        assert_eq!(id, variant_id(&[b.clone(), a.clone()], "r", &["s"]));
        assert_ne!(id, variant_id(&[a.clone(), b.clone()], "r2", &["s"]));
        assert_ne!(id, variant_id(&[a, b], "r", &["t"]));
        assert_eq!(id.len(), 16);
    }
}
