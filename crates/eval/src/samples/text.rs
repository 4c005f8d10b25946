//! Plain text for perplexity: the whole file, optionally cut to its first N Unicode characters.

use std::path::Path;

use super::limits::{SampleLimits, read_utf8};
use crate::error::Result;

/// Reads a UTF-8 text file and keeps its first `max_chars` code points (all when `None`).
pub fn read_text(path: &Path, limits: &SampleLimits, max_chars: Option<usize>) -> Result<String> {
    let text = read_utf8(path, limits)?;
    Ok(match max_chars {
        Some(n) => match text.char_indices().nth(n) {
            Some((byte, _)) => text.get(..byte).unwrap_or(&text).to_string(),
            None => text,
        },
        None => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_by_code_points_not_bytes() {
        let dir = std::env::temp_dir().join(format!("pareto-eval-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("t.txt");
        std::fs::write(&f, "\u{feff}héllo wörld").unwrap();
        let lim = SampleLimits::default();
        assert_eq!(read_text(&f, &lim, Some(4)).unwrap(), "héll");
        assert_eq!(read_text(&f, &lim, Some(100)).unwrap(), "héllo wörld");
        std::fs::write(&f, b"ok\nab\xffc").unwrap();
        let e = read_text(&f, &lim, None).unwrap_err().to_string();
        assert!(e.ends_with(":2: column 3: invalid UTF-8 at byte offset 5 (character 3)"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
