//! Size limits and sampling (first N / random N with a seed) shared by every sample reader.

use std::path::Path;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// Caps that keep a hostile or mistaken sample file from exhausting memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleLimits {
    /// Largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Most data rows (records) accepted in a table or JSONL file.
    pub max_rows: usize,
    /// Longest single field, in Unicode characters.
    pub max_field_chars: usize,
}

impl Default for SampleLimits {
    fn default() -> Self {
        Self { max_bytes: 256 << 20, max_rows: 1_000_000, max_field_chars: 100_000 }
    }
}

impl SampleLimits {
    pub(crate) fn check_rows(&self, path: &Path, rows: usize) -> Result<()> {
        if rows > self.max_rows {
            return Err(EvalError::SampleLimit {
                path: path.to_path_buf(),
                what: "number of rows",
                got: rows as u64,
                limit: self.max_rows as u64,
            });
        }
        Ok(())
    }

    pub(crate) fn check_field(&self, path: &Path, line: usize, column: usize, field: &str) -> Result<()> {
        let chars = field.chars().count();
        if chars > self.max_field_chars {
            return Err(EvalError::Sample {
                path: path.to_path_buf(),
                line,
                column,
                message: format!("field has {chars} characters, over the limit of {}", self.max_field_chars),
            });
        }
        Ok(())
    }
}

/// Which records of a sample set to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Selection {
    #[default]
    All,
    /// The first `n` records in file order.
    First { n: usize },
    /// `n` records drawn without replacement with a seeded generator, kept in file order.
    /// The same seed and file give the same records.
    Random { n: usize, seed: u64 },
}

impl Selection {
    /// Applies the selection; asking for more records than exist keeps them all.
    pub fn apply<T>(&self, items: Vec<T>) -> Vec<T> {
        match *self {
            Self::All => items,
            Self::First { n } => items.into_iter().take(n).collect(),
            Self::Random { n, seed } => {
                if n >= items.len() {
                    return items;
                }
                let mut rng = StdRng::seed_from_u64(seed);
                let mut keep = rand::seq::index::sample(&mut rng, items.len(), n).into_vec();
                keep.sort_unstable();
                let mut flags = vec![false; items.len()];
                for i in keep {
                    if let Some(f) = flags.get_mut(i) {
                        *f = true;
                    }
                }
                items.into_iter().zip(flags).filter_map(|(item, keep)| keep.then_some(item)).collect()
            }
        }
    }
}

/// Reads a whole file as UTF-8 within `limits`, dropping a leading byte-order mark. Invalid UTF-8 is
/// reported with its line and column.
pub(crate) fn read_utf8(path: &Path, limits: &SampleLimits) -> Result<String> {
    use pareto_core::bounded::{Capped, read_capped};
    let bytes = match read_capped(path, limits.max_bytes).map_err(|e| EvalError::io(path, e))? {
        Capped::Within(bytes) => bytes,
        Capped::Over(got) => {
            return Err(EvalError::SampleLimit {
                path: path.to_path_buf(),
                what: "file size in bytes",
                got,
                limit: limits.max_bytes,
            });
        }
    };
    match String::from_utf8(bytes) {
        Ok(mut s) => {
            if s.starts_with('\u{feff}') {
                s.drain(..'\u{feff}'.len_utf8());
            }
            Ok(s)
        }
        Err(err) => {
            let valid = err.utf8_error().valid_up_to();
            let bytes = err.as_bytes();
            let head = bytes.get(..valid).unwrap_or_default();
            let line = 1 + head.iter().filter(|&&b| b == b'\n').count();
            let line_start = head.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            let column = 1 + String::from_utf8_lossy(head.get(line_start..).unwrap_or_default()).chars().count();
            Err(EvalError::Sample {
                path: path.to_path_buf(),
                line,
                column,
                message: format!("invalid UTF-8 at byte offset {valid} (character {column})"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_n_and_all() {
        let v: Vec<u32> = (0..10).collect();
        assert_eq!(Selection::First { n: 3 }.apply(v.clone()), vec![0, 1, 2]);
        assert_eq!(Selection::All.apply(v.clone()), v);
        assert_eq!(Selection::First { n: 30 }.apply(v.clone()).len(), 10);
    }

    #[test]
    fn random_n_is_seeded_ordered_and_distinct() {
        let v: Vec<u32> = (0..1000).collect();
        let a = Selection::Random { n: 50, seed: 7 }.apply(v.clone());
        let b = Selection::Random { n: 50, seed: 7 }.apply(v.clone());
        let c = Selection::Random { n: 50, seed: 8 }.apply(v.clone());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 50);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "kept in file order, no repeats");
    }
}
