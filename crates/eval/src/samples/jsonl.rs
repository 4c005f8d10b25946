//! JSON Lines: one object per line; columns are keys, declared or detected from the first object.

use std::path::Path;

use serde_json::Value;

use super::columns::{Column, Columns, detect_from_names};
use super::limits::{SampleLimits, read_utf8};
use super::{LabelledText, SampleSet, ScoredPair, parse_score};
use crate::error::{EvalError, Result};

/// Reads a JSONL sample file. Blank lines are skipped; each other line must be a JSON object holding
/// the columns (scores as numbers or numeric strings; labels as strings, integers or booleans).
pub fn read_jsonl(path: &Path, limits: &SampleLimits, declared: Option<&Columns>) -> Result<SampleSet> {
    let text = read_utf8(path, limits)?;
    let err = |line: usize, column: usize, message: String| EvalError::Sample {
        path: path.to_path_buf(),
        line,
        column,
        message,
    };
    let mut rows: Vec<(usize, serde_json::Map<String, Value>)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(raw).map_err(|e| {
            let what = e.to_string();
            let what = what.split(" at line ").next().unwrap_or_default().to_string();
            err(line, e.column(), format!("invalid JSON: {what}"))
        })?;
        let Value::Object(map) = value else {
            return Err(err(line, 1, "expected a JSON object".to_string()));
        };
        rows.push((line, map));
        limits.check_rows(path, rows.len())?;
    }
    let columns = match declared {
        Some(c) => c.clone(),
        None => {
            let keys: Vec<String> = rows.first().map(|(_, m)| m.keys().cloned().collect()).unwrap_or_default();
            detect_from_names(&keys).ok_or_else(|| EvalError::SampleFormat {
                path: path.to_path_buf(),
                message: format!(
                    "cannot tell the columns from keys {keys:?}: expected sentence1/sentence2/score \
                     or text/label (or declare them)"
                ),
            })?
        }
    };
    let key = |c: &Column| -> Result<String> {
        match c {
            Column::Name(n) => Ok(n.clone()),
            Column::Index(i) => Err(EvalError::SampleFormat {
                path: path.to_path_buf(),
                message: format!("JSONL columns are keys, not positions (got #{i})"),
            }),
        }
    };
    let get = |line: usize, map: &serde_json::Map<String, Value>, k: &str| -> Result<String> {
        let v = map.get(k).ok_or_else(|| err(line, 0, format!("missing key `{k}`")))?;
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => return Err(err(line, 0, format!("key `{k}`: expected a string or number, got {other}"))),
        };
        limits.check_field(path, line, 0, &s)?;
        if s.trim().is_empty() {
            return Err(err(line, 0, format!("key `{k}` is empty")));
        }
        Ok(s)
    };
    match columns {
        Columns::Pairs { sentence1, sentence2, score } => {
            let (a, b, s) = (key(&sentence1)?, key(&sentence2)?, key(&score)?);
            rows.iter()
                .map(|(line, m)| {
                    let raw = get(*line, m, &s)?;
                    Ok(ScoredPair {
                        line: *line,
                        sentence1: get(*line, m, &a)?,
                        sentence2: get(*line, m, &b)?,
                        score: parse_score(&raw)
                            .ok_or_else(|| err(*line, 0, format!("key `{s}`: {raw:?} is not a finite number")))?,
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map(SampleSet::Pairs)
        }
        Columns::Labelled { text, label } => {
            let (t, l) = (key(&text)?, key(&label)?);
            rows.iter()
                .map(|(line, m)| Ok(LabelledText { line: *line, text: get(*line, m, &t)?, label: get(*line, m, &l)? }))
                .collect::<Result<Vec<_>>>()
                .map(SampleSet::Labelled)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, body: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pareto-eval-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn detects_keys_and_accepts_numeric_strings() {
        let p = tmp(
            "a.jsonl",
            "{\"sentence1\":\"a\",\"sentence2\":\"b\",\"score\":3.5}\n\n{\"sentence1\":\"c\",\"sentence2\":\"d\",\"score\":\"1\"}\n",
        );
        let SampleSet::Pairs(p) = read_jsonl(&p, &SampleLimits::default(), None).unwrap() else {
            panic!("expected pairs")
        };
        assert_eq!(p.len(), 2);
        assert_eq!((p[1].line, p[1].score), (3, 1.0));

        let p = tmp("b.jsonl", "{\"text\":\"good\",\"label\":1}\n");
        let SampleSet::Labelled(l) = read_jsonl(&p, &SampleLimits::default(), None).unwrap() else {
            panic!("expected labelled")
        };
        assert_eq!(l[0].label, "1");
    }

    #[test]
    fn errors_name_the_line() {
        let lim = SampleLimits::default();
        let p = tmp("c.jsonl", "{\"text\":\"a\",\"label\":1}\n{\"text\":\"b\"}\n");
        let e = read_jsonl(&p, &lim, None).unwrap_err().to_string();
        assert!(e.ends_with(":2: column 0: missing key `label`"), "{e}");
        let p = tmp("d.jsonl", "{\"text\":\"a\",\"label\":1}\n{\"text\": nope}\n");
        let e = read_jsonl(&p, &lim, None).unwrap_err().to_string();
        assert!(e.ends_with(":2: column 11: invalid JSON: expected ident"), "{e}");
        let p = tmp("e.jsonl", "[1]\n");
        let e = read_jsonl(&p, &lim, None).unwrap_err().to_string();
        assert!(e.ends_with(":1: column 1: expected a JSON object"), "{e}");
    }
}
