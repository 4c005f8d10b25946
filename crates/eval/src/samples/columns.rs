//! Column layouts: declared by the user (by name or 0-based index) or detected from a header, from
//! JSON keys, or from the STS-B file layout.

use serde::{Deserialize, Serialize};

/// A column named by header/key name or by 0-based position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Column {
    Index(usize),
    Name(String),
}

impl Column {
    /// Parses `"3"` as an index and anything else as a name.
    pub fn parse(s: &str) -> Self {
        s.parse::<usize>().map_or_else(|_| Self::Name(s.to_string()), Self::Index)
    }

    /// Resolves to a 0-based position given an optional header.
    pub(crate) fn position(&self, header: Option<&[String]>) -> Option<usize> {
        match self {
            Self::Index(i) => Some(*i),
            Self::Name(n) => header?.iter().position(|h| h.trim().eq_ignore_ascii_case(n)),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Index(i) => format!("#{i}"),
            Self::Name(n) => format!("`{n}`"),
        }
    }
}

/// What the rows of a sample set hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Columns {
    /// Sentence pairs with a gold similarity score (STS).
    Pairs { sentence1: Column, sentence2: Column, score: Column },
    /// Texts with a class label (e.g. SST-2).
    Labelled { text: Column, label: Column },
}

impl Columns {
    /// The STS-B layout: `genre, filename, year, id, score, sentence1, sentence2[, license, license]`.
    pub fn stsb() -> Self {
        Self::Pairs { sentence1: Column::Index(5), sentence2: Column::Index(6), score: Column::Index(4) }
    }
}

const SENTENCE1: &[&str] = &["sentence1", "sentence_1", "text1", "text_1", "s1", "premise"];
const SENTENCE2: &[&str] = &["sentence2", "sentence_2", "text2", "text_2", "s2", "hypothesis"];
const SCORE: &[&str] = &["score", "similarity", "gold", "relatedness_score"];
const TEXT: &[&str] = &["sentence", "text", "content", "review"];
const LABEL: &[&str] = &["label", "labels", "class", "sentiment"];

fn find(names: &[String], wanted: &[&str]) -> Option<String> {
    names.iter().find(|n| wanted.iter().any(|w| n.trim().eq_ignore_ascii_case(w))).cloned()
}

/// Detects a layout from column names (a header row or the keys of a JSON object).
pub fn detect_from_names(names: &[String]) -> Option<Columns> {
    if let (Some(a), Some(b), Some(s)) =
        (find(names, SENTENCE1), find(names, SENTENCE2), find(names, SCORE).or_else(|| find(names, LABEL)))
    {
        return Some(Columns::Pairs { sentence1: Column::Name(a), sentence2: Column::Name(b), score: Column::Name(s) });
    }
    match (find(names, TEXT), find(names, LABEL)) {
        (Some(t), Some(l)) => Some(Columns::Labelled { text: Column::Name(t), label: Column::Name(l) }),
        _ => None,
    }
}

/// Whether a header-less first row looks like a column header (every field is a known name).
pub(crate) fn looks_like_header(fields: &[String]) -> bool {
    detect_from_names(fields).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn detects_pairs_and_labelled() {
        assert_eq!(
            detect_from_names(&names(&["Sentence1", "sentence2", "score"])),
            Some(Columns::Pairs {
                sentence1: Column::Name("Sentence1".into()),
                sentence2: Column::Name("sentence2".into()),
                score: Column::Name("score".into()),
            })
        );
        assert_eq!(
            detect_from_names(&names(&["sentence", "label"])),
            Some(Columns::Labelled { text: Column::Name("sentence".into()), label: Column::Name("label".into()) })
        );
        assert_eq!(detect_from_names(&names(&["a", "b"])), None);
    }

    #[test]
    fn column_parse() {
        assert_eq!(Column::parse("4"), Column::Index(4));
        assert_eq!(Column::parse("score"), Column::Name("score".into()));
    }
}
