//! Writing results: JSON and CSV files written atomically into a results folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

/// A results folder.
pub struct ResultsDir {
    pub dir: PathBuf,
}

impl ResultsDir {
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating results folder {}", dir.display()))?;
        Ok(ResultsDir {
            dir: dir.to_path_buf(),
        })
    }
    /// Runs `fill` on a staging folder beside `out` and only then moves every file it wrote
    /// into `out` (created if missing; files of the same name replaced, others kept). On error
    /// the staging folder is removed and `out` is untouched: a failed run writes nothing.
    pub fn staged<T>(out: &Path, fill: impl FnOnce(&ResultsDir) -> Result<T>) -> Result<T> {
        let name = out
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} does not name a folder", out.display()))?;
        let stage = out.with_file_name(format!(".{name}.partial"));
        if stage.exists() {
            std::fs::remove_dir_all(&stage)
                .with_context(|| format!("removing stale {}", stage.display()))?;
        }
        let dir = ResultsDir::create(&stage)?;
        let result = fill(&dir).and_then(|v| {
            std::fs::create_dir_all(out)
                .with_context(|| format!("creating results folder {}", out.display()))?;
            for entry in std::fs::read_dir(&stage)? {
                let entry = entry?;
                let to = out.join(entry.file_name());
                std::fs::rename(entry.path(), &to)
                    .with_context(|| format!("moving results into {}", to.display()))?;
            }
            Ok(v)
        });
        let _ = std::fs::remove_dir_all(&stage);
        result
    }
    /// The folder holding the file `path` (`.` for a bare name, not created) and the file's
    /// name: for commands that take an output file rather than a folder.
    pub fn of_file(path: &Path) -> Result<(Self, String)> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} does not name a file", path.display()))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok((ResultsDir { dir }, name.to_string()))
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    /// Writes pretty JSON atomically.
    pub fn json(&self, name: &str, value: &impl Serialize) -> Result<PathBuf> {
        let text = serde_json::to_string_pretty(value)?;
        self.text(name, &text)
    }
    /// Writes CSV rows (first row = header) atomically.
    pub fn csv(&self, name: &str, rows: &[Vec<String>]) -> Result<PathBuf> {
        self.text(name, &csv_text(rows)?)
    }
    pub fn text(&self, name: &str, text: &str) -> Result<PathBuf> {
        let path = self.path(name);
        lantern_io::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// A `[row][col]` grid as CSV rows with labels.
pub fn grid_csv(
    corner: &str,
    rows: &[String],
    cols: &[String],
    values: &[Vec<f64>],
) -> Vec<Vec<String>> {
    let mut out = vec![std::iter::once(corner.to_string())
        .chain(cols.iter().cloned())
        .collect()];
    for (label, row) in rows.iter().zip(values) {
        out.push(
            std::iter::once(label.clone())
                .chain(row.iter().map(|v| format!("{v:.6}")))
                .collect(),
        );
    }
    out
}

/// `rows` as CSV text, as [`ResultsDir::csv`] writes it.
pub fn csv_text(rows: &[Vec<String>]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(r)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?;
    Ok(String::from_utf8(bytes)?)
}
