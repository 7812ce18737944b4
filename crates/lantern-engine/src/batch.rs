//! Batches of prompts of different lengths, left-padded so every row ends at the last position.
//! Positions (and rotary angles) count from each row's first real token, and padding is masked
//! out of attention, so a padded row computes exactly what it computes alone.

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

/// Token ids of several prompts, left-padded to a common length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// `[B][T]`, padding first.
    pub ids: Vec<Vec<u32>>,
    /// Padding positions at the start of each row.
    pub pad_left: Vec<usize>,
}

impl Batch {
    /// Left-pads token sequences (with id 0; padded positions are masked, so the id is irrelevant).
    pub fn from_ids(rows: Vec<Vec<u32>>) -> Result<Self> {
        if rows.is_empty() {
            return Err(Error::invalid("a batch needs at least one prompt"));
        }
        if rows.iter().any(Vec::is_empty) {
            return Err(Error::EmptyPrompt);
        }
        let t = rows.iter().map(Vec::len).max().unwrap_or(0);
        let pad_left: Vec<usize> = rows.iter().map(|r| t - r.len()).collect();
        let ids = rows
            .into_iter()
            .map(|r| {
                let mut padded = vec![0; t - r.len()];
                padded.extend(r);
                padded
            })
            .collect();
        Ok(Batch { ids, pad_left })
    }

    /// Tokenises prompts (no special tokens added) and pads them.
    pub fn from_prompts<S: AsRef<str>>(tokenizer: &Tokenizer, prompts: &[S]) -> Result<Self> {
        let rows = prompts
            .iter()
            .map(|p| {
                if p.as_ref().is_empty() {
                    return Err(Error::EmptyPrompt);
                }
                tokenizer.encode(p.as_ref())
            })
            .collect::<Result<Vec<_>>>()?;
        Self::from_ids(rows)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    pub fn seq_len(&self) -> usize {
        self.ids.first().map_or(0, Vec::len)
    }
    /// The unpadded tokens of row `b`.
    pub fn row(&self, b: usize) -> &[u32] {
        &self.ids[b][self.pad_left[b]..]
    }
    /// `[B, T]` u32.
    pub fn ids_tensor(&self, device: &Device) -> Result<Tensor> {
        let flat: Vec<u32> = self.ids.iter().flatten().copied().collect();
        Ok(Tensor::from_vec(
            flat,
            (self.len(), self.seq_len()),
            device,
        )?)
    }
}
