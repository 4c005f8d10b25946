//! A small RFC 4180 reader (quoted fields, doubled quotes, `#` comment lines) for the catalog,
//! override and reference-point files. Quoted fields may not span lines in these files.

use crate::error::{ProjectionError, Result};

/// One parsed data row with its 1-based line number.
pub(crate) struct Row {
    pub line: usize,
    pub fields: Vec<String>,
}

/// Parses `text` into a header and rows. Blank lines and lines starting with `#` are skipped.
pub(crate) fn parse(text: &str, what: &str) -> Result<(Vec<String>, Vec<Row>)> {
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim_end_matches('\r');
        if trimmed.trim().is_empty() || trimmed.trim_start().starts_with('#') {
            continue;
        }
        let fields =
            split_line(trimmed).map_err(|message| ProjectionError::Csv { what: what.to_owned(), line, message })?;
        match &header {
            None => header = Some(fields.into_iter().map(|f| f.trim().to_owned()).collect()),
            Some(h) => {
                if fields.len() != h.len() {
                    return Err(ProjectionError::Csv {
                        what: what.to_owned(),
                        line,
                        message: format!("expected {} fields, got {}", h.len(), fields.len()),
                    });
                }
                rows.push(Row { line, fields });
            }
        }
    }
    let header = header.ok_or_else(|| ProjectionError::Csv {
        what: what.to_owned(),
        line: 0,
        message: "no header row".to_owned(),
    })?;
    Ok((header, rows))
}

fn split_line(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut in_quotes = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' {
            if !cur.trim().is_empty() {
                return Err("quote inside an unquoted field".to_owned());
            }
            cur.clear();
            in_quotes = true;
            was_quoted = true;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
            was_quoted = false;
        } else if was_quoted && !c.is_whitespace() {
            return Err("text after a closing quote".to_owned());
        } else {
            cur.push(c);
        }
    }
    if in_quotes {
        return Err("unterminated quoted field".to_owned());
    }
    out.push(cur);
    Ok(out)
}

/// Parses an optional float cell: empty means `None`.
pub(crate) fn opt_f64(cell: &str, column: &str, what: &str, line: usize) -> Result<Option<f64>> {
    let t = cell.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
        _ => Err(ProjectionError::Csv {
            what: what.to_owned(),
            line,
            message: format!("column `{column}`: `{t}` is not a non-negative number"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_with_commas_and_quotes() -> Result<()> {
        let (h, rows) = parse("# c\na,b,c\n1,\"x, \"\"y\"\"\",3\n\n", "t")?;
        assert_eq!(h, vec!["a", "b", "c"]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].fields[1], "x, \"y\"");
        assert_eq!(rows[0].line, 3);
        Ok(())
    }

    #[test]
    fn wrong_field_count_reports_line() {
        let err = parse("a,b\n1,2,3\n", "t").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("t, line 2: expected 2 fields, got 3"));
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert!(parse("a,b\n1,\"2\n", "t").is_err());
    }
}
