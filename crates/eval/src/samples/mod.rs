//! Sample sets: plain text (perplexity), sentence pairs with gold scores (STS) and labelled texts,
//! read strictly from TXT, TSV, CSV or JSONL with declared or detected columns, within size limits,
//! then sampled (first N / random N with a seed).

mod columns;
mod delimited;
mod jsonl;
mod limits;
mod text;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use columns::{Column, Columns, detect_from_names};
pub use delimited::{Delimiter, Record, Table, parse_delimited};
pub use jsonl::read_jsonl;
pub use limits::{SampleLimits, Selection};
pub use text::read_text;

use crate::error::{EvalError, Result};

/// A sentence pair with its gold similarity score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredPair {
    /// 1-based line in the source file.
    pub line: usize,
    pub sentence1: String,
    pub sentence2: String,
    pub score: f64,
}

/// A text with a class label (kept as written: `"1"`, `"positive"`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelledText {
    pub line: usize,
    pub text: String,
    pub label: String,
}

/// A loaded sample set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "items")]
pub enum SampleSet {
    Text(String),
    Pairs(Vec<ScoredPair>),
    Labelled(Vec<LabelledText>),
}

impl SampleSet {
    /// `"text"`, `"pairs"` or `"labelled"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Pairs(_) => "pairs",
            Self::Labelled(_) => "labelled",
        }
    }

    /// Characters for text, records otherwise.
    pub fn len(&self) -> usize {
        match self {
            Self::Text(t) => t.chars().count(),
            Self::Pairs(p) => p.len(),
            Self::Labelled(l) => l.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The file format of a sample set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleFormat {
    Text,
    Delimited(Delimiter),
    Jsonl,
}

/// How to read a sample file. `Default` detects everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleOptions {
    pub limits: SampleLimits,
    pub selection: Selection,
    /// Forced format; detected from the extension (and, for `.csv`, the first line) when `None`.
    pub format: Option<SampleFormat>,
    /// Declared columns; detected when `None`.
    pub columns: Option<Columns>,
    /// Whether a delimited file has a header row; detected when `None`.
    pub header: Option<bool>,
    /// For plain text: keep the first N Unicode characters.
    pub max_chars: Option<usize>,
}

/// Detects the format from the file name and, for `.csv`/`.tsv`, the separator on the first line
/// (the STS-B `sts-dev.csv` is really tab-separated).
pub fn detect_format(path: &Path, text_head: &str) -> Result<SampleFormat> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let first_line = text_head.lines().next().unwrap_or_default();
    match ext.as_deref() {
        None | Some("txt" | "text" | "md") => Ok(SampleFormat::Text),
        Some("jsonl" | "ndjson") => Ok(SampleFormat::Jsonl),
        Some("tsv" | "tab") => Ok(SampleFormat::Delimited(Delimiter::Tab)),
        Some("csv") => {
            Ok(SampleFormat::Delimited(if first_line.contains('\t') { Delimiter::Tab } else { Delimiter::Comma }))
        }
        // Binary or structured containers that are not read: named, never scored as text.
        Some(
            other @ ("parquet" | "arrow" | "feather" | "json" | "gz" | "zip" | "bz2" | "xz" | "zst" | "xlsx" | "pdf"),
        ) => Err(EvalError::SampleFormat {
            path: path.to_path_buf(),
            message: format!(
                "unknown sample file extension `.{other}`: use plain text (any other extension, e.g. \
                     wiki.test.raw), .tsv, .csv or .jsonl, or name the format with --sample-format"
            ),
        }),
        // Anything else is plain text (llama.cpp's wiki.test.raw); a binary file then fails as
        // invalid UTF-8 with the line and byte it stopped at.
        Some(_) => Ok(SampleFormat::Text),
    }
}

impl SampleFormat {
    /// `--sample-format`: text, tsv, csv or jsonl.
    pub fn parse(s: &str) -> Option<SampleFormat> {
        match s {
            "text" | "txt" => Some(SampleFormat::Text),
            "tsv" => Some(SampleFormat::Delimited(Delimiter::Tab)),
            "csv" => Some(SampleFormat::Delimited(Delimiter::Comma)),
            "jsonl" => Some(SampleFormat::Jsonl),
            _ => None,
        }
    }
}

/// Loads a sample set: format and columns declared or detected, strict parsing, limits, selection.
pub fn load_samples(path: &Path, options: &SampleOptions) -> Result<SampleSet> {
    let format = match options.format {
        Some(f) => f,
        None => detect_format(path, "")?,
    };
    match format {
        SampleFormat::Text => Ok(SampleSet::Text(read_text(path, &options.limits, options.max_chars)?)),
        SampleFormat::Jsonl => {
            let set = read_jsonl(path, &options.limits, options.columns.as_ref())?;
            Ok(select(set, &options.selection))
        }
        SampleFormat::Delimited(d) => {
            let text = limits::read_utf8(path, &options.limits)?;
            let delimiter = match (options.format, d) {
                (None, _) => match detect_format(path, &text)? {
                    SampleFormat::Delimited(d) => d,
                    _ => d,
                },
                (Some(_), d) => d,
            };
            let has_header = match options.header {
                Some(h) => h,
                None => {
                    let probe = parse_delimited(
                        path,
                        text.lines().next().unwrap_or_default(),
                        delimiter,
                        false,
                        &options.limits,
                    )?;
                    probe.records.first().is_some_and(|r| columns::looks_like_header(&r.fields))
                }
            };
            let table = parse_delimited(path, &text, delimiter, has_header, &options.limits)?;
            let set = from_table(&table, options.columns.as_ref())?;
            Ok(select(set, &options.selection))
        }
    }
}

fn select(set: SampleSet, selection: &Selection) -> SampleSet {
    match set {
        SampleSet::Pairs(p) => SampleSet::Pairs(selection.apply(p)),
        SampleSet::Labelled(l) => SampleSet::Labelled(selection.apply(l)),
        SampleSet::Text(t) => SampleSet::Text(t),
    }
}

fn format_err(path: &Path, message: impl Into<String>) -> EvalError {
    EvalError::SampleFormat { path: path.to_path_buf(), message: message.into() }
}

/// Turns a parsed table into typed records. Without a header, every row must have as many fields as
/// the first one, except in the STS-B layout, which allows 7 or 9.
pub fn from_table(table: &Table, declared: Option<&Columns>) -> Result<SampleSet> {
    let path = &table.path;
    let header = table.header.as_deref();
    let first = table.records.first();
    let stsb_shaped = header.is_none()
        && first.is_some_and(|r| {
            matches!(r.fields.len(), 7 | 9) && r.fields.get(4).is_some_and(|s| s.trim().parse::<f64>().is_ok())
        });
    let columns = match (declared, header) {
        (Some(c), _) => c.clone(),
        (None, Some(h)) => detect_from_names(h).ok_or_else(|| {
            format_err(
                path,
                format!(
                    "cannot tell the columns from header {h:?}: expected sentence1/sentence2/score \
                     or sentence/label (or declare them)"
                ),
            )
        })?,
        (None, None) if stsb_shaped => Columns::stsb(),
        (None, None) => {
            return Err(format_err(path, "no header and not the STS-B layout: declare the columns"));
        }
    };
    let allowed: Vec<usize> = match (header, first) {
        (Some(h), _) => vec![h.len()],
        (None, _) if stsb_shaped && columns == Columns::stsb() => vec![7, 9],
        (None, Some(r)) => vec![r.fields.len()],
        (None, None) => Vec::new(),
    };
    let resolve = |c: &Column| -> Result<usize> {
        c.position(header).ok_or_else(|| {
            let problem = match header {
                Some(h) => format!("column {} is not in the header (columns: {})", c.describe(), h.join(", ")),
                None => format!(
                    "column {} is named, but the file has no header row: give columns as 0-based indexes",
                    c.describe()
                ),
            };
            format_err(path, problem)
        })
    };
    let field = |r: &Record, i: usize| -> Result<String> {
        r.fields.get(i).cloned().ok_or_else(|| EvalError::Sample {
            path: path.clone(),
            line: r.line,
            column: i + 1,
            message: format!("missing: the row has only {} fields", r.fields.len()),
        })
    };
    let check_count = |r: &Record| -> Result<()> {
        if allowed.contains(&r.fields.len()) {
            Ok(())
        } else {
            Err(EvalError::Sample {
                path: path.clone(),
                line: r.line,
                column: 0,
                message: format!(
                    "expected {} fields, found {}",
                    allowed.iter().map(usize::to_string).collect::<Vec<_>>().join(" or "),
                    r.fields.len()
                ),
            })
        }
    };
    match &columns {
        Columns::Pairs { sentence1, sentence2, score } => {
            let (a, b, s) = (resolve(sentence1)?, resolve(sentence2)?, resolve(score)?);
            let mut out = Vec::with_capacity(table.records.len());
            for r in &table.records {
                check_count(r)?;
                let raw = field(r, s)?;
                let value = parse_score(&raw).ok_or_else(|| EvalError::Sample {
                    path: path.clone(),
                    line: r.line,
                    column: s + 1,
                    message: format!("score {raw:?} is not a finite number"),
                })?;
                out.push(ScoredPair {
                    line: r.line,
                    sentence1: non_empty(path, r, a, field(r, a)?)?,
                    sentence2: non_empty(path, r, b, field(r, b)?)?,
                    score: value,
                });
            }
            Ok(SampleSet::Pairs(out))
        }
        Columns::Labelled { text, label } => {
            let (t, l) = (resolve(text)?, resolve(label)?);
            let mut out = Vec::with_capacity(table.records.len());
            for r in &table.records {
                check_count(r)?;
                out.push(LabelledText {
                    line: r.line,
                    text: non_empty(path, r, t, field(r, t)?)?,
                    label: non_empty(path, r, l, field(r, l)?)?.trim().to_string(),
                });
            }
            Ok(SampleSet::Labelled(out))
        }
    }
}

pub(crate) fn parse_score(raw: &str) -> Option<f64> {
    raw.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

fn non_empty(path: &Path, r: &Record, i: usize, value: String) -> Result<String> {
    if value.trim().is_empty() {
        Err(EvalError::Sample {
            path: path.to_path_buf(),
            line: r.line,
            column: i + 1,
            message: "empty field".to_string(),
        })
    } else {
        Ok(value)
    }
}

/// The bundled sample files, relative to the repository root.
pub mod bundled {
    /// STS-B dev (1,500 pairs, tab-separated, no header).
    pub const STSB_DEV: &str = "assets/samples/stsb/sts-dev.csv";
    /// GLUE SST-2 dev (872 rows, header `sentence<TAB>label`).
    pub const SST2_DEV: &str = "assets/samples/sst2/dev.tsv";
    /// TinyStories validation excerpt (plain text).
    pub const TINYSTORIES: &str = "assets/samples/tinystories/tinystories-valid-excerpt.txt";
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn repo_file(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
    }

    /// An endless stream named like a sample file stops at the byte cap, for every reader, before
    /// the process grows past it.
    #[test]
    fn an_endless_sample_file_stops_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let limits = SampleLimits { max_bytes: 1 << 20, ..SampleLimits::default() };
        for name in ["s.txt", "s.jsonl", "s.csv", "s.tsv"] {
            let link = dir.path().join(name);
            std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
            let options = SampleOptions { limits, ..SampleOptions::default() };
            let err = load_samples(&link, &options).unwrap_err();
            assert!(
                matches!(&err, EvalError::SampleLimit { what: "file size in bytes", limit, .. } if *limit == 1 << 20),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn reads_the_full_stsb_dev_with_its_nine_field_rows() {
        let set = load_samples(&repo_file(bundled::STSB_DEV), &SampleOptions::default()).unwrap();
        let SampleSet::Pairs(pairs) = set else { panic!("expected pairs") };
        assert_eq!(pairs.len(), 1500);
        assert_eq!(pairs[0].score, 5.0);
        assert_eq!(pairs[0].sentence1, "A man with a hard hat is dancing.");
        assert_eq!(pairs[0].sentence2, "A man wearing a hard hat is dancing.");
        assert!(pairs.iter().any(|p| p.sentence1.contains('"')));
        let nine = pairs
            .iter()
            .find(|p| p.sentence1 == "US Supreme Court limits president's recess appointments power")
            .unwrap();
        assert_eq!(nine.score, 5.0);
        assert_eq!(nine.sentence2, "High court checks President's recess appointment power");
    }

    #[test]
    fn reads_sst2_with_its_header() {
        let set = load_samples(&repo_file(bundled::SST2_DEV), &SampleOptions::default()).unwrap();
        let SampleSet::Labelled(rows) = set else { panic!("expected labelled") };
        assert_eq!(rows.len(), 872);
        assert_eq!(rows.iter().filter(|r| r.label == "1").count(), 444);
        assert_eq!(rows.iter().filter(|r| r.label == "0").count(), 428);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].text, "it 's a charming and often affecting journey . ");
    }

    #[test]
    fn selection_applies_after_parsing() {
        let opts = SampleOptions { selection: Selection::Random { n: 100, seed: 1 }, ..SampleOptions::default() };
        let a = load_samples(&repo_file(bundled::STSB_DEV), &opts).unwrap();
        assert_eq!(a.len(), 100);
        assert_eq!(a, load_samples(&repo_file(bundled::STSB_DEV), &opts).unwrap());
    }

    fn tmp(name: &str, body: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pareto-eval-samples-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn strict_errors_carry_line_and_column() {
        let p = tmp("bad-score.tsv", "g\tf\t2012\t1\t4.0\ta\tb\ng\tf\t2012\t2\tfive\tc\td\n");
        let e = load_samples(&p, &SampleOptions::default()).unwrap_err();
        assert!(e.to_string().ends_with(":2: column 5: score \"five\" is not a finite number"), "{e}");

        let p = tmp("bad-count.tsv", "g\tf\t2012\t1\t4.0\ta\tb\ng\tf\t2012\t2\t3\tc\td\te\n");
        let e = load_samples(&p, &SampleOptions::default()).unwrap_err();
        assert!(e.to_string().ends_with(":2: column 0: expected 7 or 9 fields, found 8"), "{e}");

        let p = tmp("hdr.tsv", "sentence\tlabel\nfine\t1\nbroken\n");
        let e = load_samples(&p, &SampleOptions::default()).unwrap_err();
        assert!(e.to_string().ends_with(":3: column 0: expected 2 fields, found 1"), "{e}");

        let p = tmp("empty.tsv", "sentence\tlabel\n \t1\n");
        let e = load_samples(&p, &SampleOptions::default()).unwrap_err();
        assert!(e.to_string().ends_with(":2: column 1: empty field"), "{e}");

        let p = tmp("unknown.tsv", "a\tb\n");
        let e = load_samples(&p, &SampleOptions::default()).unwrap_err();
        assert!(e.to_string().contains("declare the columns"), "{e}");

        let p = tmp("x.parquet", "");
        let e = load_samples(&p, &SampleOptions::default()).unwrap_err();
        assert!(e.to_string().contains("unknown sample file extension `.parquet`"), "{e}");
        // llama.cpp's perplexity file: any other extension is plain text, and can be forced.
        let p = tmp("wiki.test.raw", " = Valkyria Chronicles III = \n");
        assert!(matches!(load_samples(&p, &SampleOptions::default()).unwrap(), SampleSet::Text(_)));
        let forced = SampleOptions { format: SampleFormat::parse("text"), ..SampleOptions::default() };
        let p = tmp("lines.tsv", "not\ta table\n");
        assert!(matches!(load_samples(&p, &forced).unwrap(), SampleSet::Text(_)));
        assert_eq!(SampleFormat::parse("parquet"), None);
    }

    #[test]
    fn declared_columns_by_index_and_csv_quoting() {
        let p = tmp("pairs.csv", "\"a, b\",c,0.5\nd,\"e \"\"f\"\"\",1\n");
        let opts = SampleOptions {
            columns: Some(Columns::Pairs {
                sentence1: Column::Index(0),
                sentence2: Column::Index(1),
                score: Column::Index(2),
            }),
            ..SampleOptions::default()
        };
        let SampleSet::Pairs(p) = load_samples(&p, &opts).unwrap() else { panic!("expected pairs") };
        assert_eq!(p[0].sentence1, "a, b");
        assert_eq!(p[1].sentence2, "e \"f\"");
        assert_eq!(p[1].score, 1.0);
    }

    #[test]
    fn file_size_limit() {
        let p = tmp("big.txt", "0123456789");
        let opts = SampleOptions {
            limits: SampleLimits { max_bytes: 5, ..SampleLimits::default() },
            ..SampleOptions::default()
        };
        let e = load_samples(&p, &opts).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("file size in bytes is 10, over the limit of 5 (pareto eval --max-sample-mib raises it)"),
            "{e}"
        );
    }
}
