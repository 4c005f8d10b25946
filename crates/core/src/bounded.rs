//! Reads of files that should be small (configs, indexes, recipes, tokenizers), each with a cap:
//! a wrong path — a device such as `/dev/zero`, a FIFO, a multi-gigabyte file — is refused with the
//! cap in the message instead of growing the process until it runs out of memory.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// config.json, generation configs, tokenizer_config.json (chat templates included): well under 1 MiB.
pub const CONFIG_CAP: u64 = 16 << 20;
/// A shard index lists every tensor once: a few hundred KiB for the largest models.
pub const INDEX_CAP: u64 = 64 << 20;
/// A manifest lists an artifact's tensors once, with their metrics.
pub const MANIFEST_CAP: u64 = 64 << 20;
/// A recipe is a page of TOML.
pub const RECIPE_CAP: u64 = 4 << 20;
/// A sensitivity scan: a few hundred bytes per tensor and format (a 70B model's is under 4 MiB).
pub const SCAN_CAP: u64 = 64 << 20;
/// tokenizer.json of the largest vocabularies (256k entries with merges) is ~35 MiB.
pub const TOKENIZER_CAP: u64 = 512 << 20;

/// What a capped read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Capped {
    /// The whole file, at most the cap.
    Within(Vec<u8>),
    /// Over the cap: the file's size, or the bytes read before stopping (a stream).
    Over(u64),
}

/// The whole of `path` when it holds at most `cap` bytes. Reads at most `cap + 1` bytes, so
/// endless streams (devices, pipes, whose size reads as 0) stop too. The one capped reader: each
/// caller maps [`Capped::Over`] to its own named error.
pub fn read_capped(path: &Path, cap: u64) -> std::io::Result<Capped> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > cap {
        return Ok(Capped::Over(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    Ok(if bytes.len() as u64 > cap { Capped::Over(bytes.len() as u64) } else { Capped::Within(bytes) })
}

/// The whole of `path`, or [`Error::InputTooLarge`] past `cap` bytes.
pub fn read(path: &Path, cap: u64, what: &'static str) -> Result<Vec<u8>> {
    match read_capped(path, cap).map_err(|e| Error::io(path, e))? {
        Capped::Within(bytes) => Ok(bytes),
        Capped::Over(bytes) => Err(Error::InputTooLarge { path: path.to_path_buf(), what, bytes, cap }),
    }
}

/// [`read`] as UTF-8 text.
pub fn read_text(path: &Path, cap: u64, what: &'static str) -> Result<String> {
    String::from_utf8(read(path, cap, what)?)
        .map_err(|e| Error::io(path, std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_for_files_and_endless_streams() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.json");
        std::fs::write(&f, vec![b' '; 100]).unwrap();
        assert_eq!(read(&f, 100, "config").unwrap().len(), 100);
        let e = read(&f, 99, "config").unwrap_err();
        assert!(matches!(e, Error::InputTooLarge { bytes: 100, cap: 99, .. }), "{e}");
        assert!(e.to_string().contains("99-byte cap"), "{e}");
        #[cfg(target_os = "linux")]
        {
            let e = read(Path::new("/dev/zero"), 1 << 20, "config").unwrap_err();
            assert!(matches!(e, Error::InputTooLarge { .. }), "{e}");
        }
    }
}
