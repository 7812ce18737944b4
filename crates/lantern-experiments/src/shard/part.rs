//! The part file: a header line, then one record per unit of work, appended block by block.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ShardSpec;

/// The part file format's version, the header's `lantern_part`.
pub const PART_FORMAT: u32 = 1;

/// A part file's first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub lantern_part: u32,
    /// The command that wrote it (`patch`, `shapley`, `scale`, `sessions`).
    pub command: String,
    /// Where the model was loaded from (it may differ between machines; the sha256 may not).
    pub model: String,
    pub model_sha256: String,
    /// The options that change the result, by name.
    pub options: Value,
    /// What merge needs besides the units (labels, baselines), the same in every part.
    pub context: Value,
    pub shard: usize,
    pub shards: usize,
    /// Blocks and units of the whole sweep.
    pub blocks: usize,
    pub units: usize,
}

impl Header {
    pub fn new(
        command: &str,
        model: &str,
        options: Value,
        context: Value,
        shard: ShardSpec,
        block_sizes: &[usize],
    ) -> Result<Self> {
        Ok(Header {
            lantern_part: PART_FORMAT,
            command: command.into(),
            model: model.into(),
            model_sha256: super::model_sha256(model)?,
            options,
            context,
            shard: shard.index,
            shards: shard.count,
            blocks: block_sizes.len(),
            units: block_sizes.iter().sum(),
        })
    }

    /// How `other` differs from this header as a part of the same sweep (the shard index and
    /// the model's path may differ), or `None`.
    pub fn difference(&self, other: &Header) -> Option<String> {
        let show = |v: &Value| {
            let s = v.to_string();
            if s.len() > 80 {
                format!(
                    "{}…",
                    &s[..s.char_indices().nth(77).map_or(s.len(), |(i, _)| i)]
                )
            } else {
                s
            }
        };
        if self.lantern_part != other.lantern_part {
            return Some(format!(
                "part format {} vs {}",
                self.lantern_part, other.lantern_part
            ));
        }
        if self.command != other.command {
            return Some(format!(
                "different commands: `{}` vs `{}`",
                self.command, other.command
            ));
        }
        if self.model_sha256 != other.model_sha256 {
            return Some(format!(
                "different models: {} (sha256 {}) vs {} (sha256 {})",
                self.model, self.model_sha256, other.model, other.model_sha256
            ));
        }
        for (what, a, b) in [
            ("option", &self.options, &other.options),
            ("context", &self.context, &other.context),
        ] {
            if a != b {
                let (ma, mb) = (as_map(a), as_map(b));
                let key = ma
                    .keys()
                    .chain(mb.keys())
                    .find(|k| ma.get(*k) != mb.get(*k))
                    .cloned()
                    .unwrap_or_default();
                let get = |m: &BTreeMap<String, Value>| m.get(&key).map_or("(absent)".into(), show);
                return Some(format!(
                    "different {what} `{key}`: {} vs {}",
                    get(&ma),
                    get(&mb)
                ));
            }
        }
        if self.shards != other.shards {
            return Some(format!(
                "different shard counts: {} vs {}",
                self.shards, other.shards
            ));
        }
        if (self.blocks, self.units) != (other.blocks, other.units) {
            return Some(format!(
                "different plans: {} blocks of {} units vs {} of {}",
                self.blocks, self.units, other.blocks, other.units
            ));
        }
        None
    }
}

fn as_map(v: &Value) -> BTreeMap<String, Value> {
    match v {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        other => [(String::new(), other.clone())].into_iter().collect(),
    }
}

/// One unit of work and its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub block: usize,
    /// The unit's name, unique in the sweep (`L3/5` for a patch cell, a coalition's bits).
    pub unit: String,
    pub value: Value,
}

/// A part file read back whole.
#[derive(Debug, Clone)]
pub struct Part {
    pub path: PathBuf,
    pub header: Header,
    pub records: Vec<Record>,
}

/// Reads a finished part for merging: a torn or corrupted line is an error naming it.
pub fn read_part(path: &Path) -> Result<Part> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading part file {}", path.display()))?;
    let (header, records, tail) = parse(path, &text, false)?;
    if let Some(line) = tail {
        bail!(
            "{} line {line} is torn (the shard was killed while writing it); rerun that shard's command to finish the part, then merge",
            path.display()
        );
    }
    Ok(Part {
        path: path.to_path_buf(),
        header,
        records,
    })
}

/// The header and records of `text`. With `lenient`, a last line that is unfinished or does
/// not parse is returned as torn (its line number) instead of an error; without, only an
/// unfinished last line is.
fn parse(path: &Path, text: &str, lenient: bool) -> Result<(Header, Vec<Record>, Option<usize>)> {
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut torn = None;
    if lines.last().is_some_and(|l| !l.ends_with('\n')) {
        torn = Some(lines.len());
        lines.pop();
    }
    let Some(first) = lines.first() else {
        bail!(
            "{} has no header line: not a finished part file",
            path.display()
        );
    };
    let header: Header = serde_json::from_str(first).with_context(|| {
        format!(
            "{} line 1 is not a part header (is this a part file written by `--out PART.jsonl`?)",
            path.display()
        )
    })?;
    if header.lantern_part != PART_FORMAT {
        bail!(
            "{}: part format {} (this lantern reads {PART_FORMAT})",
            path.display(),
            header.lantern_part
        );
    }
    let mut records = Vec::with_capacity(lines.len());
    let n = lines.len();
    for (i, line) in lines.iter().enumerate().skip(1) {
        match serde_json::from_str::<Record>(line) {
            Ok(r) if r.block < header.blocks => records.push(r),
            Ok(r) => bail!(
                "{} line {}: block {} is beyond the sweep's {} blocks",
                path.display(),
                i + 1,
                r.block,
                header.blocks
            ),
            Err(_) if lenient && i + 1 == n && torn.is_none() => torn = Some(i + 1),
            Err(e) => bail!(
                "{} line {} is corrupted ({e}); delete the file and rerun its shard",
                path.display(),
                i + 1
            ),
        }
    }
    Ok((header, records, torn))
}

/// Appends a shard's blocks to its part file, resuming one a killed run left.
pub struct PartWriter {
    file: File,
    path: PathBuf,
}

impl PartWriter {
    /// Opens `path` for `header`'s shard. A new (or empty) file gets the header. An existing
    /// file must have the same header; its torn last line and the records of unfinished blocks
    /// (fewer than `block_sizes[b]` units) are dropped (the file is rewritten atomically), and
    /// the finished blocks are returned so that the caller skips them.
    pub fn open(path: &Path, header: &Header, block_sizes: &[usize]) -> Result<(Self, Vec<bool>)> {
        let mut done = vec![false; block_sizes.len()];
        let header_line = format!("{}\n", serde_json::to_string(header)?);
        let existing = match std::fs::read_to_string(path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        // A file with no finished header line (killed before its first write) starts afresh.
        let existing = existing.filter(|t| t.contains('\n'));
        let rewrite = match existing {
            None => Some(header_line.clone()),
            Some(text) => {
                let (old, records, torn) = parse(path, &text, true)?;
                if old != *header {
                    let why = header.difference(&old).unwrap_or_else(|| {
                        format!(
                            "shard {}/{} vs {}/{}",
                            old.shard, old.shards, header.shard, header.shards
                        )
                    });
                    bail!(
                        "{} holds another sweep's part ({why}); remove it or choose another --out",
                        path.display()
                    );
                }
                let mut count = vec![0usize; block_sizes.len()];
                for r in &records {
                    count[r.block] += 1;
                }
                for (b, d) in done.iter_mut().enumerate() {
                    *d = count[b] == block_sizes[b];
                }
                let kept: Vec<&Record> = records.iter().filter(|r| done[r.block]).collect();
                if torn.is_some() || kept.len() != records.len() {
                    let mut out = header_line.clone();
                    for r in kept {
                        out.push_str(&serde_json::to_string(r)?);
                        out.push('\n');
                    }
                    Some(out)
                } else {
                    None
                }
            }
        };
        if let Some(bytes) = rewrite {
            lantern_io::write_atomic(path, bytes.as_bytes())
                .with_context(|| format!("writing part file {}", path.display()))?;
        }
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening part file {}", path.display()))?;
        Ok((
            PartWriter {
                file,
                path: path.to_path_buf(),
            },
            done,
        ))
    }

    /// Appends one finished block's records in one write, synced to disk.
    pub fn write_block(&mut self, records: &[Record]) -> Result<()> {
        let mut out = String::new();
        for r in records {
            out.push_str(&serde_json::to_string(r)?);
            out.push('\n');
        }
        self.file
            .write_all(out.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("appending to part file {}", self.path.display()))
    }
}
