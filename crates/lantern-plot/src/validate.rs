//! Input validation shared by the figure functions.

use crate::error::{PlotError, Result};

pub(crate) fn non_empty(what: &str, len: usize) -> Result<()> {
    if len == 0 {
        return Err(PlotError::Empty(format!("{what} is empty")));
    }
    Ok(())
}

pub(crate) fn same_len(what: impl Into<String>, expected: usize, actual: usize) -> Result<()> {
    if expected != actual {
        return Err(PlotError::LengthMismatch {
            what: what.into(),
            expected,
            actual,
        });
    }
    Ok(())
}

/// Every value must be finite; `what` names the collection (e.g. "ys of series \"a\"").
pub(crate) fn finite(what: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(PlotError::NonFinite {
            location: format!("{what} at index {i}"),
            value: values[i],
        }),
        None => Ok(()),
    }
}

pub(crate) fn non_negative(what: &str, values: &[f64]) -> Result<()> {
    if let Some(i) = values.iter().position(|&v| v < 0.0) {
        return Err(PlotError::InvalidInput(format!(
            "{what} at index {i} is negative ({}); error magnitudes must be >= 0",
            values[i]
        )));
    }
    Ok(())
}

/// Labels as owned strings, or indices `0..n` when `labels` is empty.
pub(crate) fn labels_or_indices<S: AsRef<str>>(
    what: &str,
    labels: &[S],
    n: usize,
) -> Result<Vec<String>> {
    if labels.is_empty() {
        return Ok((0..n).map(|i| i.to_string()).collect());
    }
    same_len(what, n, labels.len())?;
    Ok(labels.iter().map(|s| sanitize(s.as_ref())).collect())
}

/// Make control characters visible (token strings often contain "\n").
pub(crate) fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}
