//! Multivariate time series of representational states, split into independent sessions.
//!
//! A [`TimeSeries`] holds `N` named states observed over one or more [`Session`]s (e.g. one
//! session per prompt/conversation). Each session is a `T × N` matrix (one row per step).
//! Lagged dependencies are only ever formed *within* a session: the first steps of every
//! session cannot serve as targets of lagged links.
//!
//! CSV input (see [`TimeSeries::from_csv_str`]): a header naming the states, one row per
//! step, and an optional `session` column (at any position) whose value groups rows into
//! sessions. Rows of one session need not be contiguous; sessions keep the order of their
//! first appearance and rows keep file order within a session.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{CausalError, Result};

/// One independent stretch of observations: `values[t][i]` is state `i` at step `t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Session label (the value of the CSV `session` column, or `"0"`).
    pub label: String,
    /// `T × N` observations, one row per step.
    pub values: Vec<Vec<f64>>,
}

impl Session {
    /// Creates a session from its rows.
    pub fn new(label: impl Into<String>, values: Vec<Vec<f64>>) -> Self {
        Self {
            label: label.into(),
            values,
        }
    }

    /// Number of steps `T`.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the session has no steps.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Named states observed over independent sessions.
///
/// ```
/// use lantern_causal::TimeSeries;
/// let csv = "session,fear,sad\na,0.1,0.3\na,0.4,0.2\nb,1.0,0.0\nb,0.5,0.9\n";
/// let ts = TimeSeries::from_csv_str(csv).unwrap();
/// assert_eq!(ts.names, vec!["fear", "sad"]);
/// assert_eq!(ts.sessions.len(), 2);
/// assert_eq!(ts.n_steps(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSeries {
    /// State names, one per column.
    pub names: Vec<String>,
    /// Independent sessions; no lag crosses a session boundary.
    pub sessions: Vec<Session>,
}

/// Options for [`TimeSeries::from_csv_str_with`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsvOptions {
    /// Name of the column that separates sessions (matched case-insensitively after
    /// trimming). Default `"session"`; if absent from the header, all rows form one session.
    pub session_column: String,
    /// Further columns to ignore (e.g. `"step"`), matched case-insensitively.
    pub ignore_columns: Vec<String>,
    /// Field delimiter, default `,`.
    pub delimiter: char,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            session_column: "session".to_string(),
            ignore_columns: Vec::new(),
            delimiter: ',',
        }
    }
}

impl TimeSeries {
    /// Builds a series, checking names and row lengths (not values; see [`Self::validate`]).
    ///
    /// ```
    /// use lantern_causal::{Session, TimeSeries};
    /// let s = Session::new("0", vec![vec![1.0, 2.0], vec![2.0, 1.0]]);
    /// let ts = TimeSeries::new(vec!["a".into(), "b".into()], vec![s]).unwrap();
    /// assert_eq!(ts.n_vars(), 2);
    /// assert!(TimeSeries::new(vec!["a".into(), "a".into()], vec![]).is_err());
    /// ```
    pub fn new(names: Vec<String>, sessions: Vec<Session>) -> Result<Self> {
        check_names(&names)?;
        for s in &sessions {
            for (t, row) in s.values.iter().enumerate() {
                if row.len() != names.len() {
                    return Err(CausalError::RaggedSession {
                        session: s.label.clone(),
                        step: t,
                        expected: names.len(),
                        found: row.len(),
                    });
                }
            }
        }
        Ok(Self { names, sessions })
    }

    /// Number of states `N`.
    pub fn n_vars(&self) -> usize {
        self.names.len()
    }

    /// Total number of steps over all sessions.
    pub fn n_steps(&self) -> usize {
        self.sessions.iter().map(Session::len).sum()
    }

    /// Index of a state by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Number of target samples available when every session loses its first `window` steps.
    pub fn usable_samples(&self, window: usize) -> usize {
        self.sessions
            .iter()
            .map(|s| s.len().saturating_sub(window))
            .sum()
    }

    /// Checks that every value is finite and that no state is constant over all sessions.
    ///
    /// Errors name the offending state (and session/step for non-finite values).
    pub fn validate(&self) -> Result<()> {
        self.check_finite()?;
        if let Some(i) = self.constant_states().first() {
            return Err(CausalError::ConstantSeries {
                state: self.names[*i].clone(),
            });
        }
        Ok(())
    }

    /// Errors on a row of the wrong length or on the first NaN or infinite value.
    pub fn check_finite(&self) -> Result<()> {
        check_names(&self.names)?;
        for s in &self.sessions {
            for (t, row) in s.values.iter().enumerate() {
                if row.len() != self.names.len() {
                    return Err(CausalError::RaggedSession {
                        session: s.label.clone(),
                        step: t,
                        expected: self.names.len(),
                        found: row.len(),
                    });
                }
                if let Some(i) = row.iter().position(|v| !v.is_finite()) {
                    return Err(CausalError::NonFinite {
                        state: self.names.get(i).cloned().unwrap_or_default(),
                        session: s.label.clone(),
                        step: t,
                    });
                }
            }
        }
        Ok(())
    }

    /// Indices of states whose values never change (relative tolerance `1e-12`).
    pub fn constant_states(&self) -> Vec<usize> {
        (0..self.n_vars())
            .filter(|&i| {
                let mut vals = self
                    .sessions
                    .iter()
                    .flat_map(|s| s.values.iter().filter_map(move |r| r.get(i).copied()));
                match vals.next() {
                    None => true,
                    Some(first) => {
                        let tol = 1e-12 * first.abs().max(1.0);
                        vals.all(|v| (v - first).abs() <= tol)
                    }
                }
            })
            .collect()
    }

    /// Returns a copy without the given states (indices into `names`). Missing cells of
    /// ragged rows become NaN, which [`Self::check_finite`] rejects.
    pub fn without_states(&self, drop: &[usize]) -> TimeSeries {
        let keep: Vec<usize> = (0..self.n_vars()).filter(|i| !drop.contains(i)).collect();
        TimeSeries {
            names: keep.iter().map(|&i| self.names[i].clone()).collect(),
            sessions: self
                .sessions
                .iter()
                .map(|s| Session {
                    label: s.label.clone(),
                    values: s
                        .values
                        .iter()
                        .map(|r| {
                            keep.iter()
                                .map(|&i| r.get(i).copied().unwrap_or(f64::NAN))
                                .collect()
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// A copy with every session normalised on its own (see
    /// [`crate::SessionNormalization`]). A state constant within a session (relative tolerance
    /// `1e-12`) becomes exactly 0 there, so a state that varies only between sessions turns
    /// into a constant state after centring.
    ///
    /// ```
    /// use lantern_causal::{Session, SessionNormalization, TimeSeries};
    /// let a = Session::new("a", vec![vec![1.0], vec![3.0]]);
    /// let b = Session::new("b", vec![vec![10.0], vec![10.0]]);
    /// let ts = TimeSeries::new(vec!["x".into()], vec![a, b]).unwrap();
    /// let c = ts.normalized_per_session(SessionNormalization::Center);
    /// assert_eq!(c.sessions[0].values, vec![vec![-1.0], vec![1.0]]);
    /// assert_eq!(c.sessions[1].values, vec![vec![0.0], vec![0.0]]);
    /// let z = ts.normalized_per_session(SessionNormalization::Standardize);
    /// assert_eq!(z.sessions[0].values, vec![vec![-1.0], vec![1.0]]);
    /// ```
    pub fn normalized_per_session(&self, mode: crate::SessionNormalization) -> TimeSeries {
        use crate::SessionNormalization as N;
        if mode == N::None {
            return self.clone();
        }
        let n = self.n_vars();
        let sessions = self
            .sessions
            .iter()
            .map(|s| {
                let len = s.len().max(1) as f64;
                let mut values = s.values.clone();
                for i in 0..n {
                    // Ragged rows (rejected by `check_finite`) keep their missing cells missing.
                    let col = || s.values.iter().filter_map(move |r| r.get(i).copied());
                    let mean = col().sum::<f64>() / len;
                    let tol = 1e-12 * mean.abs().max(1.0);
                    let constant = col().all(|v| (v - mean).abs() <= tol);
                    let sd = (col().map(|v| (v - mean).powi(2)).sum::<f64>() / len).sqrt();
                    for cell in values.iter_mut().filter_map(|row| row.get_mut(i)) {
                        *cell = if constant {
                            0.0
                        } else if mode == N::Standardize {
                            (*cell - mean) / sd
                        } else {
                            *cell - mean
                        };
                    }
                }
                Session {
                    label: s.label.clone(),
                    values,
                }
            })
            .collect();
        TimeSeries {
            names: self.names.clone(),
            sessions,
        }
    }

    /// Global mean and standard deviation (population) of every state over all steps.
    pub fn moments(&self) -> (Vec<f64>, Vec<f64>) {
        let n = self.n_vars();
        let count = self.n_steps().max(1) as f64;
        let mut mean = vec![0.0; n];
        for row in self.sessions.iter().flat_map(|s| s.values.iter()) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= count);
        let mut var = vec![0.0; n];
        for row in self.sessions.iter().flat_map(|s| s.values.iter()) {
            for ((acc, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *acc += (v - m) * (v - m);
            }
        }
        let sd = var.iter().map(|v| (v / count).sqrt()).collect();
        (mean, sd)
    }

    /// Reads a CSV file with default [`CsvOptions`].
    pub fn from_csv_path(path: impl AsRef<Path>) -> Result<Self> {
        let text = std::fs::read_to_string(path.as_ref())
            .map_err(|e| CausalError::Io(format!("{}: {e}", path.as_ref().display())))?;
        Self::from_csv_str(&text)
    }

    /// Reads CSV from any reader with default [`CsvOptions`].
    pub fn from_csv_reader(mut reader: impl Read) -> Result<Self> {
        let mut text = String::new();
        reader.read_to_string(&mut text)?;
        Self::from_csv_str(&text)
    }

    /// Parses CSV text with default [`CsvOptions`] (session column `session`).
    pub fn from_csv_str(text: &str) -> Result<Self> {
        Self::from_csv_str_with(text, &CsvOptions::default())
    }

    /// Parses CSV text.
    ///
    /// ```
    /// use lantern_causal::{CsvOptions, TimeSeries};
    /// let opts = CsvOptions { ignore_columns: vec!["step".into()], ..Default::default() };
    /// let ts = TimeSeries::from_csv_str_with("step,x,y\n0,1,2\n1,3,4\n", &opts).unwrap();
    /// assert_eq!(ts.names, vec!["x", "y"]);
    /// let err = TimeSeries::from_csv_str("x,y\n1,oops\n").unwrap_err();
    /// assert!(err.to_string().contains("line 2"));
    /// ```
    pub fn from_csv_str_with(text: &str, opts: &CsvOptions) -> Result<Self> {
        let records = parse_csv(text, opts.delimiter)?;
        let mut iter = records.into_iter().filter(|(_, cells)| {
            // Skip blank lines.
            !(cells.len() == 1 && cells[0].trim().is_empty())
        });
        let (_, header) = iter
            .next()
            .ok_or_else(|| CausalError::EmptyCsv("no header line".into()))?;
        let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
        let lower = |s: &str| s.trim().to_lowercase();
        let session_col = header
            .iter()
            .position(|h| lower(h) == lower(&opts.session_column));
        let ignored: Vec<String> = opts.ignore_columns.iter().map(|c| lower(c)).collect();
        let state_cols: Vec<usize> = (0..header.len())
            .filter(|&c| Some(c) != session_col && !ignored.contains(&lower(&header[c])))
            .collect();
        if state_cols.is_empty() {
            return Err(CausalError::NoStateColumns { header });
        }
        let names: Vec<String> = state_cols.iter().map(|&c| header[c].clone()).collect();
        check_names(&names)?;

        let mut order: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<Vec<f64>>> = HashMap::new();
        let mut n_rows = 0usize;
        for (line, cells) in iter {
            if cells.len() != header.len() {
                return Err(CausalError::RaggedRow {
                    line,
                    found: cells.len(),
                    expected: header.len(),
                });
            }
            let mut row = Vec::with_capacity(state_cols.len());
            for &c in &state_cols {
                let cell = cells[c].trim();
                let v: f64 = cell.parse().map_err(|_| CausalError::NonNumeric {
                    line,
                    column: header[c].clone(),
                    value: cell.to_string(),
                })?;
                row.push(v);
            }
            let key = session_col
                .map(|c| cells[c].trim().to_string())
                .unwrap_or_else(|| "0".to_string());
            if !groups.contains_key(&key) {
                order.push(key.clone());
            }
            groups.entry(key).or_default().push(row);
            n_rows += 1;
        }
        if n_rows == 0 {
            return Err(CausalError::EmptyCsv("header but no data rows".into()));
        }
        let sessions = order
            .into_iter()
            .map(|label| {
                let values = groups.remove(&label).unwrap_or_default();
                Session { label, values }
            })
            .collect();
        Ok(Self { names, sessions })
    }
}

fn check_names(names: &[String]) -> Result<()> {
    for (i, n) in names.iter().enumerate() {
        if n.trim().is_empty() {
            return Err(CausalError::InvalidNames(format!(
                "state {i} has an empty name"
            )));
        }
        if names[..i].contains(n) {
            return Err(CausalError::InvalidNames(format!(
                "duplicate state name {n:?}"
            )));
        }
    }
    Ok(())
}

/// Minimal RFC 4180 reader: quoted fields (with `""` escapes and embedded newlines),
/// `\n` or `\r\n` line ends. Returns `(1-based line of record start, cells)`.
fn parse_csv(text: &str, delim: char) -> Result<Vec<(usize, Vec<String>)>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut cells: Vec<String> = Vec::new();
    let mut cell = String::new();
    let mut in_quotes = false;
    let mut line = 1usize;
    let mut record_line = 1usize;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    cell.push(c);
                }
                _ => cell.push(c),
            }
            continue;
        }
        match c {
            '"' if cell.trim().is_empty() => {
                cell.clear();
                in_quotes = true;
            }
            '"' => {
                return Err(CausalError::MalformedCsv {
                    line,
                    message: "quote inside an unquoted field".into(),
                })
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                cells.push(std::mem::take(&mut cell));
                records.push((record_line, std::mem::take(&mut cells)));
                line += 1;
                record_line = line;
                any = false;
            }
            c if c == delim => cells.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
    }
    if in_quotes {
        return Err(CausalError::MalformedCsv {
            line,
            message: "unterminated quoted field".into(),
        });
    }
    if any {
        cells.push(cell);
        records.push((record_line, cells));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_and_crlf() {
        let r = parse_csv("\"a,b\",c\r\n1,\"x\"\"y\"\r\n", ',').unwrap();
        assert_eq!(r[0].1, vec!["a,b", "c"]);
        assert_eq!(r[1].1, vec!["1", "x\"y"]);
        assert_eq!(r[1].0, 2);
    }

    #[test]
    fn session_column_groups_non_contiguous_rows() {
        let csv = "x,session,y\n1,b,2\n3,a,4\n5,b,6\n";
        let ts = TimeSeries::from_csv_str(csv).unwrap();
        assert_eq!(ts.names, vec!["x", "y"]);
        assert_eq!(ts.sessions[0].label, "b");
        assert_eq!(ts.sessions[0].values, vec![vec![1.0, 2.0], vec![5.0, 6.0]]);
        assert_eq!(ts.sessions[1].values, vec![vec![3.0, 4.0]]);
    }

    #[test]
    fn csv_errors_are_specific() {
        assert!(matches!(
            TimeSeries::from_csv_str(""),
            Err(CausalError::EmptyCsv(_))
        ));
        assert!(matches!(
            TimeSeries::from_csv_str("x,y\n"),
            Err(CausalError::EmptyCsv(_))
        ));
        assert!(matches!(
            TimeSeries::from_csv_str("session\na\n"),
            Err(CausalError::NoStateColumns { .. })
        ));
        assert_eq!(
            TimeSeries::from_csv_str("x,y\n1,2\n3\n").unwrap_err(),
            CausalError::RaggedRow {
                line: 3,
                found: 1,
                expected: 2
            }
        );
        assert_eq!(
            TimeSeries::from_csv_str("x,y\n1,2\n3,abc\n").unwrap_err(),
            CausalError::NonNumeric {
                line: 3,
                column: "y".into(),
                value: "abc".into()
            }
        );
        assert!(matches!(
            TimeSeries::from_csv_str("x,x\n1,2\n"),
            Err(CausalError::InvalidNames(_))
        ));
    }

    #[test]
    fn validation_names_states() {
        let ts = TimeSeries::from_csv_str("a,b\n1,5\n2,5\n3,5\n").unwrap();
        assert_eq!(
            ts.validate().unwrap_err(),
            CausalError::ConstantSeries { state: "b".into() }
        );
        let ts = TimeSeries::from_csv_str("a,b\n1,5\n2,NaN\n").unwrap();
        assert!(matches!(
            ts.validate(),
            Err(CausalError::NonFinite { state, step: 1, .. }) if state == "b"
        ));
        let mut ragged = TimeSeries::from_csv_str("a,b\n1,5\n2,6\n").unwrap();
        ragged.sessions[0].values[1].pop();
        assert!(matches!(
            ragged.check_finite(),
            Err(CausalError::RaggedSession { step: 1, .. })
        ));
        let dropped = TimeSeries::from_csv_str("a,b\n1,5\n2,5\n")
            .unwrap()
            .without_states(&[1]);
        assert_eq!(dropped.names, vec!["a"]);
    }
}
