//! Where each new position sits: rotary and learned-position indices and the additive attention
//! masks (causal, left padding, sliding windows, packed segments), built once per forward pass and
//! shared by every layer.
//!
//! Shapes: B batch, T new positions, K key positions (cache + new).

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use crate::config::ModelConfig;
use crate::error::{Error, Result};

/// One continuation in a packed run ([`RunOptions::packed`](crate::RunOptions::packed)): positions
/// `start..start + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub start: usize,
    pub len: usize,
}

/// Per-forward position data shared by every layer.
pub(crate) struct SeqCtx {
    /// Rotary angles' positions, `[B, T, 1]` f32.
    pub(crate) positions: Tensor,
    /// Learned-position indices, `[B * T]` u32.
    pub(crate) pos_ids: Tensor,
    /// Additive masks `[B, 1, T, K]` (f32, 0 or -inf) by sliding window.
    pub(crate) masks: HashMap<Option<usize>, Tensor>,
    pub(crate) pos_offset: usize,
}

impl SeqCtx {
    /// Positions and causal masks of `t` new positions after `past` cached ones, for rows with
    /// this left padding (positions count from each row's first real token).
    pub(crate) fn padded(
        cfg: &ModelConfig,
        device: &Device,
        pad_left: &[usize],
        past: usize,
        t: usize,
    ) -> Result<SeqCtx> {
        let b = pad_left.len();
        let k = past + t;
        let mut positions = Vec::with_capacity(b * t);
        for &pad in pad_left {
            let real = k.saturating_sub(pad);
            if real > cfg.max_positions {
                return Err(Error::PromptTooLong {
                    len: real,
                    max: cfg.max_positions,
                });
            }
            positions.extend((past..k).map(|i| i.saturating_sub(pad) as u32));
        }
        let pos_ids = Tensor::from_vec(positions.clone(), b * t, device)?;
        let positions = Tensor::from_vec(
            positions.iter().map(|&p| p as f32).collect::<Vec<_>>(),
            (b, t, 1),
            device,
        )?;
        let mut masks = HashMap::new();
        for window in cfg.sliding_window.iter().copied() {
            if masks.contains_key(&window) {
                continue;
            }
            let mut m = vec![0f32; b * t * k];
            for (row, &pad) in pad_left.iter().enumerate() {
                for qi in 0..t {
                    let q = past + qi;
                    for key in 0..k {
                        let visible = key <= q && key >= pad && window.is_none_or(|w| q - key < w);
                        // A padding query sees itself only, so its (unused) row stays finite.
                        let visible = visible || (q < pad && key == q);
                        if !visible {
                            m[(row * t + qi) * k + key] = f32::NEG_INFINITY;
                        }
                    }
                }
            }
            masks.insert(window, Tensor::from_vec(m, (b, 1, t, k), device)?);
        }
        Ok(SeqCtx {
            positions,
            pos_ids,
            masks,
            pos_offset: past,
        })
    }

    /// Positions and masks of packed segments after `past` cached positions (see
    /// [`RunOptions::packed`](crate::RunOptions::packed)): keys are the cached positions, then
    /// the packed tokens.
    pub(crate) fn packed(
        cfg: &ModelConfig,
        device: &Device,
        segments: &[Segment],
        past: usize,
    ) -> Result<SeqCtx> {
        // Per packed token: its segment and absolute position.
        let mut seg_of = Vec::new();
        let mut positions = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            let end = s.start + s.len;
            if end > cfg.max_positions {
                return Err(Error::PromptTooLong {
                    len: end,
                    max: cfg.max_positions,
                });
            }
            seg_of.extend(std::iter::repeat_n(i, s.len));
            positions.extend((s.start..end).map(|p| p as u32));
        }
        let n = positions.len();
        let k = past + n;
        let mut masks = HashMap::new();
        for window in cfg.sliding_window.iter().copied() {
            if masks.contains_key(&window) {
                continue;
            }
            let near = |q: u32, key: u32| window.is_none_or(|w| ((q - key) as usize) < w);
            let mut m = vec![f32::NEG_INFINITY; n * k];
            for qi in 0..n {
                let (seg, q) = (&segments[seg_of[qi]], positions[qi]);
                let row = &mut m[qi * k..(qi + 1) * k];
                for (key, v) in row.iter_mut().enumerate().take(seg.start) {
                    if near(q, key as u32) {
                        *v = 0.0;
                    }
                }
                // Own segment, up to and including this token.
                let first = qi - (q as usize - seg.start);
                for kj in first..=qi {
                    if near(q, positions[kj]) {
                        row[past + kj] = 0.0;
                    }
                }
            }
            masks.insert(window, Tensor::from_vec(m, (1, 1, n, k), device)?);
        }
        Ok(SeqCtx {
            positions: Tensor::from_vec(
                positions.iter().map(|&p| p as f32).collect::<Vec<_>>(),
                (1, n, 1),
                device,
            )?,
            pos_ids: Tensor::from_vec(positions, n, device)?,
            masks,
            pos_offset: 0,
        })
    }
}
