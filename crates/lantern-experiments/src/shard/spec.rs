//! `--shard I/N`, defaulting to a Slurm array task's place.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: usize,
    pub count: usize,
}

impl ShardSpec {
    /// One process does everything.
    pub const WHOLE: ShardSpec = ShardSpec { index: 0, count: 1 };

    /// Parses `I/N`, `0 <= I < N`.
    pub fn parse(s: &str) -> Result<Self> {
        let (i, n) = s
            .split_once('/')
            .with_context(|| format!("--shard `{s}` is not I/N (e.g. 0/4)"))?;
        let num = |x: &str, what: &str| -> Result<usize> {
            x.trim()
                .parse::<usize>()
                .with_context(|| format!("--shard `{s}`: the {what} `{x}` is not a whole number"))
        };
        Self::new(num(i, "shard index")?, num(n, "shard count")?)
            .with_context(|| format!("--shard {s}"))
    }

    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 {
            bail!("the shard count must be at least 1");
        }
        if index >= count {
            bail!(
                "shard index {index} is not below the shard count {count} (shards are numbered 0 to {})",
                count - 1
            );
        }
        Ok(ShardSpec { index, count })
    }

    /// `--shard` if given, else a Slurm array task's place: `SLURM_ARRAY_TASK_ID` minus
    /// `SLURM_ARRAY_TASK_MIN` (0 when unset) of `SLURM_ARRAY_TASK_COUNT`, else the whole sweep.
    pub fn resolve(flag: Option<&str>) -> Result<Self> {
        if let Some(s) = flag {
            return Self::parse(s);
        }
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        match (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT")) {
            (Some(id), Some(count)) => {
                let n = |k: &str, v: &str| -> Result<usize> {
                    v.trim()
                        .parse()
                        .with_context(|| format!("{k}=`{v}` is not a whole number"))
                };
                let min = match var("SLURM_ARRAY_TASK_MIN") {
                    Some(m) => n("SLURM_ARRAY_TASK_MIN", &m)?,
                    None => 0,
                };
                let id = n("SLURM_ARRAY_TASK_ID", &id)?;
                let index = id.checked_sub(min).with_context(|| {
                    format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}")
                })?;
                Self::new(index, n("SLURM_ARRAY_TASK_COUNT", &count)?)
                    .context("the Slurm array task's shard")
            }
            _ => Ok(Self::WHOLE),
        }
    }

    /// Whether block `b` is this shard's.
    pub fn owns(&self, block: usize) -> bool {
        block % self.count == self.index
    }
}

/// Whether `--out` names a part file (`.jsonl`), and the shard it is for: `--shard` without a
/// part file is an error (its work would have nowhere to go).
pub fn part_output(out: Option<&Path>, shard: Option<&str>) -> Result<Option<ShardSpec>> {
    let is_part = out.is_some_and(|p| p.extension().is_some_and(|e| e == "jsonl"));
    if !is_part {
        if let Some(s) = shard {
            bail!("--shard {s} needs --out PART.jsonl (the part file this shard writes)");
        }
        return Ok(None);
    }
    Ok(Some(ShardSpec::resolve(shard)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            ShardSpec::parse("2/4").unwrap(),
            ShardSpec { index: 2, count: 4 }
        );
        let e = format!("{:#}", ShardSpec::parse("5/4").unwrap_err());
        assert!(
            e.contains("5/4") && e.contains("not below the shard count 4"),
            "{e}"
        );
        let e = format!("{:#}", ShardSpec::parse("0/0").unwrap_err());
        assert!(e.contains("at least 1"), "{e}");
        assert!(ShardSpec::parse("1").is_err());
        assert!(ShardSpec::parse("a/2").is_err());
        let s = ShardSpec::parse("1/3").unwrap();
        assert_eq!((0..7).filter(|&b| s.owns(b)).collect::<Vec<_>>(), [1, 4]);
    }
}
