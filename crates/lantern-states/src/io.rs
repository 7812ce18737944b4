//! Loading labelled text.

use std::path::Path;

use crate::error::{Result, StatesError};

/// Read `(text, label)` pairs from a file chosen by extension:
/// * `.csv` — header row containing `text` and `label` columns (any order, other columns
///   ignored), RFC-4180 quoting;
/// * `.jsonl` / `.ndjson` — one JSON object `{"text": "...", "label": "..."}` per line
///   (blank lines skipped).
///
/// Errors carry the 1-based line number; empty texts or labels are errors.
pub fn read_labelled_text(path: impl AsRef<Path>) -> Result<Vec<(String, String)>> {
    let path = path.as_ref();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let text = std::fs::read_to_string(path).map_err(|source| StatesError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let perr = |line: usize, message: String| StatesError::Parse {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut out = Vec::new();
    match ext.as_str() {
        "csv" => {
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(false)
                .from_reader(text.as_bytes());
            let headers = rdr
                .headers()
                .map_err(|e| perr(1, format!("bad header: {e}")))?
                .clone();
            let col = |name: &str| {
                headers
                    .iter()
                    .position(|h| h.trim().eq_ignore_ascii_case(name))
            };
            let (Some(ti), Some(li)) = (col("text"), col("label")) else {
                return Err(perr(
                    1,
                    format!(
                        "header must contain 'text' and 'label' columns, got {:?}",
                        headers.iter().collect::<Vec<_>>()
                    ),
                ));
            };
            for rec in rdr.records() {
                let rec = rec.map_err(|e| {
                    let line = e.position().map_or(0, |p| p.line() as usize);
                    perr(line, format!("malformed CSV record: {e}"))
                })?;
                let line = rec.position().map_or(0, |p| p.line() as usize);
                let t = rec.get(ti).unwrap_or("").to_string();
                let l = rec.get(li).unwrap_or("").trim().to_string();
                if t.trim().is_empty() {
                    return Err(perr(line, "empty text".into()));
                }
                if l.is_empty() {
                    return Err(perr(line, "empty label".into()));
                }
                out.push((t, l));
            }
        }
        "jsonl" | "ndjson" => {
            for (i, raw) in text.lines().enumerate() {
                let line = i + 1;
                if raw.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(raw)
                    .map_err(|e| perr(line, format!("invalid JSON: {e}")))?;
                let field = |name: &str| -> Result<String> {
                    match v.get(name) {
                        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
                        Some(serde_json::Value::String(_)) => {
                            Err(perr(line, format!("empty '{name}'")))
                        }
                        Some(other) => Err(perr(
                            line,
                            format!("'{name}' must be a string, got {other}"),
                        )),
                        None => Err(perr(line, format!("missing '{name}' field"))),
                    }
                };
                out.push((field("text")?, field("label")?.trim().to_string()));
            }
        }
        other => {
            return Err(perr(
                0,
                format!("unsupported extension '{other}' (expected .csv or .jsonl)"),
            ))
        }
    }
    if out.is_empty() {
        return Err(StatesError::EmptyData(format!(
            "{}: no records",
            path.display()
        )));
    }
    Ok(out)
}

/// Turn label strings into `(indices, names)`, names in order of first appearance
/// (ready for [`crate::Dataset`]).
pub fn encode_labels<S: AsRef<str>>(labels: &[S]) -> (Vec<usize>, Vec<String>) {
    let mut names: Vec<String> = Vec::new();
    let idx = labels
        .iter()
        .map(|l| {
            let l = l.as_ref();
            match names.iter().position(|n| n == l) {
                Some(i) => i,
                None => {
                    names.push(l.to_string());
                    names.len() - 1
                }
            }
        })
        .collect();
    (idx, names)
}
