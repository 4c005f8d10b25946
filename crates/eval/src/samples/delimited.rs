//! Strict delimited-text parsing. TSV has no quoting at all (a `"` is an ordinary character, as in
//! the STS-B and SST-2 files); CSV follows RFC 4180 (quoted fields, doubled quotes, newlines inside
//! quotes). Every error names the line and the field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::limits::SampleLimits;
use crate::error::{EvalError, Result};

/// The field separator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delimiter {
    /// Tab-separated, no quoting.
    Tab,
    /// Comma-separated, RFC 4180 quoting.
    Comma,
}

/// One data row: the 1-based line it starts on and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: usize,
    pub fields: Vec<String>,
}

/// A parsed file: optional header and the data records (blank final line dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub path: PathBuf,
    pub header: Option<Vec<String>>,
    pub records: Vec<Record>,
}

/// Splits `text` into records. The header, when `has_header`, is the first record. Field counts are
/// not checked here (the column layout decides what is allowed); empty lines inside the file are
/// errors, a missing final newline is not.
pub fn parse_delimited(
    path: &Path,
    text: &str,
    delimiter: Delimiter,
    has_header: bool,
    limits: &SampleLimits,
) -> Result<Table> {
    let mut records = match delimiter {
        Delimiter::Tab => split_tsv(path, text)?,
        Delimiter::Comma => split_csv(path, text)?,
    };
    for r in &records {
        for (i, f) in r.fields.iter().enumerate() {
            limits.check_field(path, r.line, i + 1, f)?;
        }
    }
    let header = if has_header && !records.is_empty() { Some(records.remove(0).fields) } else { None };
    limits.check_rows(path, records.len())?;
    Ok(Table { path: path.to_path_buf(), header, records })
}

fn sample_err(path: &Path, line: usize, column: usize, message: impl Into<String>) -> EvalError {
    EvalError::Sample { path: path.to_path_buf(), line, column, message: message.into() }
}

fn split_tsv(path: &Path, text: &str) -> Result<Vec<Record>> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return Ok(Vec::new());
    }
    body.split('\n')
        .enumerate()
        .map(|(i, raw)| {
            let line = i + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.is_empty() {
                return Err(sample_err(path, line, 0, "empty line"));
            }
            Ok(Record { line, fields: raw.split('\t').map(str::to_string).collect() })
        })
        .collect()
}

fn split_csv(path: &Path, text: &str) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1usize;
    let mut record_line = 1usize;
    // State: at the start of a field, inside an unquoted field, inside quotes, or just after a
    // closing quote.
    #[derive(PartialEq)]
    enum S {
        Start,
        Plain,
        Quoted,
        AfterQuote,
    }
    let mut state = S::Start;
    let mut quote_line = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let column = fields.len() + 1;
        match (&state, c) {
            (S::Quoted, '"') => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    state = S::AfterQuote;
                }
            }
            (S::Quoted, ch) => {
                if ch == '\n' {
                    line += 1;
                }
                field.push(ch);
            }
            (S::Start, '"') => {
                state = S::Quoted;
                quote_line = line;
            }
            (S::Plain, '"') => {
                return Err(sample_err(
                    path,
                    line,
                    column,
                    "a quote inside an unquoted field (quote the whole field and double the quote)",
                ));
            }
            (_, ',') => {
                fields.push(std::mem::take(&mut field));
                state = S::Start;
            }
            (_, '\r') if chars.peek() == Some(&'\n') => {}
            (_, '\n') => {
                if fields.is_empty() && field.is_empty() && state == S::Start {
                    return Err(sample_err(path, line, 0, "empty line"));
                }
                fields.push(std::mem::take(&mut field));
                records.push(Record { line: record_line, fields: std::mem::take(&mut fields) });
                line += 1;
                record_line = line;
                state = S::Start;
            }
            (S::AfterQuote, ch) => {
                return Err(sample_err(path, line, column, format!("unexpected {ch:?} after a closing quote")));
            }
            (_, ch) => {
                field.push(ch);
                state = S::Plain;
            }
        }
    }
    if state == S::Quoted {
        return Err(sample_err(path, quote_line, fields.len() + 1, "quoted field is never closed"));
    }
    if !fields.is_empty() || !field.is_empty() || state == S::AfterQuote {
        fields.push(field);
        records.push(Record { line: record_line, fields });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("t")
    }

    #[test]
    fn tsv_keeps_quotes_verbatim_and_counts_lines() {
        let t = parse_delimited(p(), "a\t\"b\tc\n1\t2\t3\n", Delimiter::Tab, true, &SampleLimits::default()).unwrap();
        assert_eq!(t.header.unwrap(), vec!["a", "\"b", "c"]);
        assert_eq!(t.records.len(), 1);
        assert_eq!(t.records[0].line, 2);
        assert_eq!(t.records[0].fields, vec!["1", "2", "3"]);
    }

    #[test]
    fn tsv_empty_line_inside_is_an_error_with_its_line() {
        let err = parse_delimited(p(), "a\tb\n\nc\td\n", Delimiter::Tab, false, &SampleLimits::default())
            .unwrap_err()
            .to_string();
        assert_eq!(err, "t:2: column 0: empty line");
    }

    #[test]
    fn csv_quotes_commas_newlines_and_doubled_quotes() {
        let t = parse_delimited(
            p(),
            "x,y\r\n\"a, \"\"b\"\"\",\"multi\nline\"\nlast,1",
            Delimiter::Comma,
            true,
            &SampleLimits::default(),
        )
        .unwrap();
        assert_eq!(t.records[0].fields, vec!["a, \"b\"", "multi\nline"]);
        assert_eq!(t.records[1].line, 4);
        assert_eq!(t.records[1].fields, vec!["last", "1"]);
    }

    #[test]
    fn csv_errors_name_line_and_column() {
        let lim = SampleLimits::default();
        let e = parse_delimited(p(), "a,b\nc,d\"e\n", Delimiter::Comma, false, &lim).unwrap_err();
        assert!(e.to_string().starts_with("t:2: column 2: a quote inside"), "{e}");
        let e = parse_delimited(p(), "a,\"b\nc\n", Delimiter::Comma, false, &lim).unwrap_err();
        assert_eq!(e.to_string(), "t:1: column 2: quoted field is never closed");
        let e = parse_delimited(p(), "\"a\"x,b\n", Delimiter::Comma, false, &lim).unwrap_err();
        assert!(e.to_string().starts_with("t:1: column 1: unexpected 'x'"), "{e}");
    }

    #[test]
    fn limits_on_rows_and_fields() {
        let lim = SampleLimits { max_rows: 1, ..SampleLimits::default() };
        let e = parse_delimited(p(), "a\nb\n", Delimiter::Tab, false, &lim).unwrap_err();
        assert!(matches!(e, EvalError::SampleLimit { got: 2, limit: 1, .. }), "{e}");
        let lim = SampleLimits { max_field_chars: 3, ..SampleLimits::default() };
        let e = parse_delimited(p(), "ab\tabcd\n", Delimiter::Tab, false, &lim).unwrap_err();
        assert!(e.to_string().starts_with("t:1: column 2: field has 4 characters"), "{e}");
    }
}
