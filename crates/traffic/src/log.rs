//! A query log, read as a stream: one record at a time, so a log larger than memory never is held.
//!
//! Layouts, chosen by the extension:
//! - `.txt`, `.log` or none: one query per line (blank lines are skipped and counted);
//! - `.tsv` (no quoting) and `.csv` (RFC 4180 quoting, newlines inside quotes): a header row naming
//!   the columns;
//! - `.jsonl` / `.ndjson`: one object per line.
//!
//! Columns (header names or JSON keys, case-insensitive; others are ignored): the query
//! (`query`, `prompt`, `text`, `question` — required), `timestamp` (`time`, `ts`; RFC 3339 or Unix
//! seconds), `tenant` (`team`), `input_tokens` (`prompt_tokens`), `output_tokens`
//! (`completion_tokens`). Timestamps, when the log has them, must not go backwards.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Result, TrafficError};

/// Longest query accepted, in bytes: a longer "query" is a sign of a wrong column or a binary file.
pub const MAX_QUERY_BYTES: usize = 1 << 20;

/// One request of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// 1-based line the record starts on.
    pub line: usize,
    pub text: String,
    /// Milliseconds since the Unix epoch.
    pub time_ms: Option<i64>,
    pub tenant: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Lines,
    Tsv,
    Csv,
    Jsonl,
}

/// Column positions of a delimited log.
#[derive(Debug, Clone, Default)]
struct Columns {
    query: usize,
    time: Option<usize>,
    tenant: Option<usize>,
    input: Option<usize>,
    output: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Query,
    Time,
    Tenant,
    Input,
    Output,
}

fn field_of(name: &str) -> Option<Field> {
    match name.trim().to_ascii_lowercase().as_str() {
        "query" | "prompt" | "text" | "question" => Some(Field::Query),
        "timestamp" | "time" | "ts" => Some(Field::Time),
        "tenant" | "team" => Some(Field::Tenant),
        "input_tokens" | "prompt_tokens" => Some(Field::Input),
        "output_tokens" | "completion_tokens" => Some(Field::Output),
        _ => None,
    }
}

/// Streams the records of a query log.
pub struct LogReader {
    path: PathBuf,
    input: BufReader<File>,
    layout: Layout,
    columns: Columns,
    line: usize,
    bytes_read: u64,
    total_bytes: u64,
    blank_lines: usize,
    previous_time: Option<(i64, String)>,
    /// Whether the log carries timestamps (decided by the header or the first record).
    timed: Option<bool>,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader").field("path", &self.path).field("line", &self.line).finish_non_exhaustive()
    }
}

impl LogReader {
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| TrafficError::Io { path: path.to_path_buf(), source };
        let layout = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            None | Some("txt" | "log" | "text") => Layout::Lines,
            Some("tsv" | "tab") => Layout::Tsv,
            Some("csv") => Layout::Csv,
            Some("jsonl" | "ndjson") => Layout::Jsonl,
            Some(other) => {
                return Err(TrafficError::Layout {
                    path: path.to_path_buf(),
                    message: format!(
                        "unknown log layout `.{other}`; use .txt (one query per line), .tsv/.csv with a header, or .jsonl"
                    ),
                });
            }
        };
        let file = File::open(path).map_err(io)?;
        let total_bytes = file.metadata().map_err(io)?.len();
        let mut reader = Self {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(1 << 20, file),
            layout,
            columns: Columns::default(),
            line: 0,
            bytes_read: 0,
            total_bytes,
            blank_lines: 0,
            previous_time: None,
            timed: None,
        };
        if matches!(layout, Layout::Tsv | Layout::Csv) {
            reader.read_header()?;
        }
        Ok(reader)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes consumed so far and the file's size (for progress).
    pub fn position(&self) -> (u64, u64) {
        (self.bytes_read, self.total_bytes)
    }

    /// Blank lines skipped in a one-query-per-line log.
    pub fn blank_lines(&self) -> usize {
        self.blank_lines
    }

    fn err(&self, line: usize, message: impl Into<String>) -> TrafficError {
        TrafficError::Record { path: self.path.clone(), line, message: message.into() }
    }

    /// One physical line without its terminator; `None` at the end.
    fn physical_line(&mut self) -> Result<Option<String>> {
        let mut buf = Vec::new();
        let n = self
            .input
            .read_until(b'\n', &mut buf)
            .map_err(|source| TrafficError::Io { path: self.path.clone(), source })?;
        if n == 0 {
            return Ok(None);
        }
        self.bytes_read += n as u64;
        self.line += 1;
        if self.line == 1 && buf.starts_with(b"\xEF\xBB\xBF") {
            // A UTF-8 byte-order mark (spreadsheet exports) is not part of the first field.
            buf.drain(..3);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        if buf.len() > MAX_QUERY_BYTES {
            return Err(
                self.err(self.line, format!("line is {} bytes, over the {MAX_QUERY_BYTES}-byte limit", buf.len()))
            );
        }
        String::from_utf8(buf).map(Some).map_err(|e| self.err(self.line, format!("not UTF-8 text ({e})")))
    }

    /// One logical record of a delimited file (a CSV record may span lines inside quotes).
    fn delimited_record(&mut self) -> Result<Option<(usize, Vec<String>)>> {
        let first = loop {
            let Some(line) = self.physical_line()? else { return Ok(None) };
            if !line.trim().is_empty() {
                break line;
            }
            self.blank_lines += 1;
        };
        let start = self.line;
        if self.layout == Layout::Tsv {
            return Ok(Some((start, first.split('\t').map(str::to_string).collect())));
        }
        let mut text = first;
        while inside_quotes(&text) {
            let Some(next) = self.physical_line()? else {
                return Err(self.err(start, "a quoted field is never closed"));
            };
            text.push('\n');
            text.push_str(&next);
            if text.len() > MAX_QUERY_BYTES {
                return Err(self.err(start, "a quoted field runs past the record size limit"));
            }
        }
        split_csv_record(&text).map(|f| Some((start, f))).map_err(|m| self.err(start, m))
    }

    fn read_header(&mut self) -> Result<()> {
        let Some((line, names)) = self.delimited_record()? else {
            return Err(TrafficError::Layout { path: self.path.clone(), message: "the log is empty".into() });
        };
        let mut cols = Columns::default();
        let mut query = None;
        for (i, name) in names.iter().enumerate() {
            match field_of(name) {
                Some(Field::Query) if query.is_none() => query = Some(i),
                Some(Field::Time) => cols.time = cols.time.or(Some(i)),
                Some(Field::Tenant) => cols.tenant = cols.tenant.or(Some(i)),
                Some(Field::Input) => cols.input = cols.input.or(Some(i)),
                Some(Field::Output) => cols.output = cols.output.or(Some(i)),
                _ => {}
            }
        }
        let Some(q) = query else {
            return Err(self.err(
                line,
                format!(
                    "the header ({}) has no query column; name it `query` (or prompt, text, question)",
                    names.join(", ")
                ),
            ));
        };
        cols.query = q;
        self.timed = Some(cols.time.is_some());
        self.columns = cols;
        Ok(())
    }

    /// The next query, `None` at the end of the log.
    pub fn next_query(&mut self) -> Result<Option<Query>> {
        loop {
            let query = match self.layout {
                Layout::Lines => {
                    let Some(text) = self.physical_line()? else { return Ok(None) };
                    if text.trim().is_empty() {
                        self.blank_lines += 1;
                        continue;
                    }
                    Query {
                        line: self.line,
                        text,
                        time_ms: None,
                        tenant: None,
                        input_tokens: None,
                        output_tokens: None,
                    }
                }
                Layout::Tsv | Layout::Csv => {
                    let Some((line, fields)) = self.delimited_record()? else { return Ok(None) };
                    self.query_of_fields(line, &fields)?
                }
                Layout::Jsonl => {
                    let Some(text) = self.physical_line()? else { return Ok(None) };
                    if text.trim().is_empty() {
                        self.blank_lines += 1;
                        continue;
                    }
                    self.query_of_json(&text)?
                }
            };
            self.check_time(&query)?;
            return Ok(Some(query));
        }
    }

    fn query_of_fields(&self, line: usize, fields: &[String]) -> Result<Query> {
        let c = &self.columns;
        let get = |i: Option<usize>| i.and_then(|i| fields.get(i)).map(String::as_str);
        let Some(text) = get(Some(c.query)) else {
            return Err(self.err(line, format!("{} fields, the query is column {}", fields.len(), c.query + 1)));
        };
        let number = |name: &str, v: Option<&str>| -> Result<Option<u64>> {
            match v.map(str::trim) {
                None | Some("") => Ok(None),
                Some(s) => {
                    s.parse().map(Some).map_err(|_| self.err(line, format!("{name} `{s}` is not a whole number")))
                }
            }
        };
        Ok(Query {
            line,
            text: text.to_string(),
            time_ms: match get(c.time).map(str::trim) {
                None | Some("") if c.time.is_some() => return Err(self.err(line, "the timestamp is empty")),
                None | Some("") => None,
                Some(s) => Some(parse_time(s).map_err(|m| self.err(line, m))?),
            },
            tenant: get(c.tenant).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string),
            input_tokens: number("input_tokens", get(c.input))?,
            output_tokens: number("output_tokens", get(c.output))?,
        })
    }

    fn query_of_json(&self, text: &str) -> Result<Query> {
        let line = self.line;
        let value: Value = serde_json::from_str(text).map_err(|e| self.err(line, format!("not JSON: {e}")))?;
        let Value::Object(map) = value else { return Err(self.err(line, "each line must be a JSON object")) };
        let mut q =
            Query { line, text: String::new(), time_ms: None, tenant: None, input_tokens: None, output_tokens: None };
        // Several query keys: `query` wins, then prompt, question, text (JSON objects are unordered).
        let rank = |key: &str| ["query", "prompt", "question", "text"].iter().position(|k| key.eq_ignore_ascii_case(k));
        let mut found_query: Option<usize> = None;
        for (key, v) in &map {
            let Some(field) = field_of(key) else { continue };
            if v.is_null() {
                continue;
            }
            let wrong = |what: &str| self.err(line, format!("`{key}` must be {what}, found {v}"));
            match field {
                Field::Query => {
                    let r = rank(key.trim()).unwrap_or(usize::MAX);
                    if found_query.is_none_or(|best| r < best) {
                        q.text = v.as_str().ok_or_else(|| wrong("a string"))?.to_string();
                        found_query = Some(r);
                    }
                }
                Field::Time => {
                    q.time_ms = Some(match v {
                        Value::String(s) => parse_time(s).map_err(|m| self.err(line, m))?,
                        Value::Number(n) => {
                            seconds_to_ms(n.as_f64().unwrap_or(f64::NAN)).map_err(|m| self.err(line, m))?
                        }
                        _ => return Err(wrong("an RFC 3339 string or Unix seconds")),
                    })
                }
                Field::Tenant => {
                    q.tenant =
                        Some(v.as_str().ok_or_else(|| wrong("a string"))?.trim().to_string()).filter(|t| !t.is_empty())
                }
                Field::Input => q.input_tokens = Some(v.as_u64().ok_or_else(|| wrong("a whole number"))?),
                Field::Output => q.output_tokens = Some(v.as_u64().ok_or_else(|| wrong("a whole number"))?),
            }
        }
        if found_query.is_none() {
            return Err(self.err(line, "no query key (`query`, `prompt`, `text` or `question`)"));
        }
        Ok(q)
    }

    /// Every record of a timed log has a timestamp, and they never go backwards.
    fn check_time(&mut self, q: &Query) -> Result<()> {
        let timed = *self.timed.get_or_insert(q.time_ms.is_some());
        match (timed, q.time_ms) {
            (true, None) => Err(self.err(q.line, "no timestamp, but earlier records have one")),
            (false, Some(_)) => Err(self.err(q.line, "a timestamp, but earlier records have none")),
            (_, Some(t)) => {
                if let Some((prev, prev_text)) = &self.previous_time
                    && t < *prev
                {
                    return Err(TrafficError::OutOfOrder {
                        path: self.path.clone(),
                        line: q.line,
                        got: format_ms(t),
                        previous: prev_text.clone(),
                    });
                }
                self.previous_time = Some((t, format_ms(t)));
                Ok(())
            }
            (false, None) => Ok(()),
        }
    }
}

/// RFC 3339 (`2026-03-01T12:00:00Z`, an offset, or a space for the `T`) or Unix seconds.
pub fn parse_time(s: &str) -> std::result::Result<i64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return seconds_to_ms(secs);
    }
    let normalised =
        if s.len() > 10 && s.as_bytes()[10] == b' ' { format!("{}T{}", &s[..10], &s[11..]) } else { s.into() };
    normalised
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("timestamp `{s}` is neither RFC 3339 (with a Z or an offset) nor Unix seconds ({e})"))
}

fn seconds_to_ms(secs: f64) -> std::result::Result<i64, String> {
    // 1e11 s is the year 5138: a larger number is milliseconds (or not a time at all).
    if secs.is_finite() && secs.abs() < 1e11 {
        Ok((secs * 1000.0).round() as i64)
    } else {
        Err(format!("timestamp {secs} is not a Unix time in seconds (milliseconds? divide by 1000)"))
    }
}

/// A timestamp for messages, RFC 3339 in UTC.
pub fn format_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| format!("{ms} ms"), |t| t.to_string())
}

/// Whether a CSV record's text ends inside a quoted field (so the record continues on the next
/// line). A quote opens a field only at its start; inside, `""` is a quote and `"` closes it.
fn inside_quotes(text: &str) -> bool {
    let (mut quoted, mut at_start) = (false, true);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, _) => {}
            (false, ',') => at_start = true,
            (false, '"') if at_start => {
                quoted = true;
                at_start = false;
            }
            (false, _) => at_start = false,
        }
    }
    quoted
}

/// Splits one RFC 4180 record (quotes balanced by the caller).
fn split_csv_record(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut after_quote = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => {
                quoted = false;
                after_quote = true;
            }
            (true, ch) => field.push(ch),
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                after_quote = false;
            }
            (false, '"') if field.is_empty() && !after_quote => quoted = true,
            (false, ch) if after_quote => {
                return Err(format!("field {} has `{ch}` after its closing quote", fields.len() + 1));
            }
            (false, ch) => field.push(ch),
        }
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(name: &str, body: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join(name);
        std::fs::write(&p, body).expect("write");
        (dir, p)
    }

    fn all(path: &Path) -> Result<Vec<Query>> {
        let mut r = LogReader::open(path)?;
        let mut out = Vec::new();
        while let Some(q) = r.next_query()? {
            out.push(q);
        }
        Ok(out)
    }

    #[test]
    fn csv_records_span_lines_inside_quotes_and_carry_every_column() -> Result<()> {
        let (_d, p) = log(
            "log.csv",
            "ts,Tenant,prompt,extra,completion_tokens\n2026-01-01T00:00:00Z,search,\"hello, \"\"world\"\"\nagain\",x,12\n1767225601,ads,plain,y,\n",
        );
        let q = all(&p)?;
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].text, "hello, \"world\"\nagain");
        assert_eq!(q[0].line, 2);
        assert_eq!(q[0].tenant.as_deref(), Some("search"));
        assert_eq!(q[0].output_tokens, Some(12));
        assert_eq!(q[1].line, 4);
        assert_eq!(q[1].time_ms, Some(1_767_225_601_000));
        assert_eq!(q[0].time_ms, Some(1_767_225_600_000));
        Ok(())
    }

    #[test]
    fn jsonl_and_text_logs_read_and_blank_lines_are_counted() -> Result<()> {
        let (_d, p) =
            log("q.jsonl", "{\"query\":\"a\",\"time\":10,\"input_tokens\":3}\n\n{\"query\":\"b\",\"time\":10.5}\n");
        let q = all(&p)?;
        assert_eq!((q[0].time_ms, q[1].time_ms, q[0].input_tokens), (Some(10_000), Some(10_500), Some(3)));
        let (_d2, p) = log("q.txt", "first\n\n  \nsecond\r\n");
        let mut r = LogReader::open(&p)?;
        assert_eq!(r.next_query()?.map(|q| q.text), Some("first".into()));
        assert_eq!(r.next_query()?.map(|q| (q.line, q.text)), Some((4, "second".into())));
        assert_eq!(r.blank_lines(), 2);
        Ok(())
    }

    #[test]
    fn review_cases_stray_quotes_blank_lines_boms_nulls_and_aliases() -> Result<()> {
        // A quote inside an unquoted field is a character, not the start of a multi-line field.
        let (_d, p) = log("inch.csv", "\u{feff}query,tenant\n5\" screen,a\n\n7\" tv,b\n");
        let mut r = LogReader::open(&p)?;
        let mut got = Vec::new();
        while let Some(q) = r.next_query()? {
            got.push((q.text, q.tenant));
        }
        assert_eq!(got, vec![("5\" screen".to_string(), Some("a".into())), ("7\" tv".to_string(), Some("b".into()))]);
        assert_eq!(r.blank_lines(), 1);
        let (_d, p) =
            log("q.jsonl", "{\"query\":\"Q\",\"text\":\"A\",\"tenant\":null}\n{\"prompt\":\"P\",\"team\":\"\"}\n");
        let q = all(&p)?;
        assert_eq!((q[0].text.as_str(), q[0].tenant.as_deref()), ("Q", None), "`query` wins over `text`");
        assert_eq!((q[1].text.as_str(), q[1].tenant.as_deref()), ("P", None));
        assert!(parse_time("1767225600000").is_err_and(|e| e.contains("milliseconds")));
        Ok(())
    }

    #[test]
    fn bad_records_are_named_with_their_line() {
        let cases = [
            ("a.tsv", "time\tquery\n5\tx\n4\ty\n", "a.tsv:3: timestamp"),
            ("b.tsv", "time\tquery\nnoon\tx\n", "b.tsv:2: timestamp `noon`"),
            ("c.tsv", "who\twhat\nx\ty\n", "b.tsv"),
            ("d.jsonl", "{\"query\":\"a\"}\n[1]\n", "d.jsonl:2: each line must be a JSON object"),
            ("e.csv", "query\n\"never closed\n", "e.csv:2: a quoted field is never closed"),
            ("f.jsonl", "{\"query\":\"a\",\"time\":1}\n{\"query\":\"b\"}\n", "f.jsonl:2: no timestamp"),
            ("g.parquet", "", "unknown log layout `.parquet`"),
        ];
        for (name, body, want) in cases {
            let (_d, p) = log(name, body);
            let got = all(&p).err().map(|e| e.to_string()).unwrap_or_default();
            let want = if name == "c.tsv" { "has no query column" } else { want };
            assert!(got.contains(want), "{name}: {got}");
        }
    }
}
