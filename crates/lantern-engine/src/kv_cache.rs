//! The key/value cache of incremental decoding and of resumed or packed runs: per layer, the keys
//! (after rotary) and values of the positions already run.
//!
//! Shapes: B batch, G key/value heads, K cached positions, D d_head.

use candle_core::Tensor;

use crate::error::{Error, Result};

/// Keys and values of past positions, for incremental decoding.
#[derive(Debug)]
pub struct KvCache {
    /// Per layer: `([B, G, K, D], [B, G, K, D])`, keys after rotary. While decoding these are
    /// views of the first K positions of the layer's buffer (below).
    pub(crate) layers: Vec<Option<(Tensor, Tensor)>>,
    /// Left padding of each row (its first real position).
    pub(crate) pad_left: Vec<usize>,
    /// Positions held.
    pub(crate) len: usize,
    /// Per layer: preallocated `[B, G, capacity, D]` storage behind `layers`, so a decoding step
    /// writes its one new position in place instead of copying the whole cache (empty or `None`:
    /// no spare room yet). Owned by this cache alone: a clone or a derived cache starts without
    /// buffers, so two caches never write into the same storage.
    pub(crate) buffers: Vec<Option<(Tensor, Tensor)>>,
}

impl Clone for KvCache {
    fn clone(&self) -> Self {
        KvCache {
            layers: self.layers.clone(),
            pad_left: self.pad_left.clone(),
            len: self.len,
            buffers: Vec::new(),
        }
    }
}

/// Spare positions added when a layer's buffer grows: at least 64, else half the length, so a
/// long generation reallocates O(log n) times.
fn grown_capacity(needed: usize) -> usize {
    needed + (needed / 2).max(64)
}

impl KvCache {
    /// An empty cache of `n_layers` layers for rows with this left padding.
    pub(crate) fn empty(n_layers: usize, pad_left: &[usize]) -> Self {
        KvCache {
            layers: vec![None; n_layers],
            pad_left: pad_left.to_vec(),
            len: 0,
            buffers: Vec::new(),
        }
    }

    /// Appends one layer's new keys and values `[B, G, T, D]` after the cached ones and returns
    /// all of them, `[B, G, K + T, D]`. The first call of a layer stores them as they are (a
    /// prompt's cache costs no spare memory); later calls write into a buffer with spare room
    /// (allocated on the first append, regrown when full), returning views of it.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        k: Tensor,
        v: Tensor,
    ) -> Result<(Tensor, Tensor)> {
        if self.buffers.len() < self.layers.len() {
            self.buffers.resize(self.layers.len(), None);
        }
        let Some((pk, pv)) = self.layers[layer].as_ref() else {
            self.layers[layer] = Some((k.clone(), v.clone()));
            self.buffers[layer] = None;
            return Ok((k, v));
        };
        let (b, g, len, d) = pk.dims4()?;
        let t = k.dim(2)?;
        let fits = self.buffers[layer]
            .as_ref()
            .is_some_and(|(bk, _)| bk.dim(2).is_ok_and(|cap| cap >= len + t));
        if !fits {
            let cap = grown_capacity(len + t);
            let grow = |old: &Tensor| -> Result<Tensor> {
                let buf = Tensor::zeros((b, g, cap, d), old.dtype(), old.device())?;
                buf.slice_set(&old.contiguous()?, 2, 0)?;
                Ok(buf)
            };
            self.buffers[layer] = Some((grow(pk)?, grow(pv)?));
        }
        let (bk, bv) = self.buffers[layer].as_ref().expect("just ensured");
        bk.slice_set(&k.contiguous()?, 2, len)?;
        bv.slice_set(&v.contiguous()?, 2, len)?;
        let kv = (bk.narrow(2, 0, len + t)?, bv.narrow(2, 0, len + t)?);
        self.layers[layer] = Some(kv.clone());
        Ok(kv)
    }

    /// Errors unless the cache is empty or holds keys and values for every layer from `layer` on.
    pub(crate) fn check_layers_from(&self, layer: usize) -> Result<()> {
        match (layer..self.layers.len()).find(|&l| self.len > 0 && self.layers[l].is_none()) {
            Some(l) => Err(Error::invalid(format!(
                "the cache holds {} positions but no keys and values for layer {l}",
                self.len
            ))),
            None => Ok(()),
        }
    }

    /// Every cached layer's keys and values through `f`.
    fn map_layers(
        &self,
        f: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<Vec<Option<(Tensor, Tensor)>>> {
        self.layers
            .iter()
            .map(|l| l.as_ref().map(|(k, v)| Ok((f(k)?, f(v)?))).transpose())
            .collect()
    }

    /// A one-row cache repeated to `rows` rows (a shared prompt prefix reused across a batch).
    pub fn expand(&self, rows: usize) -> Result<KvCache> {
        if self.pad_left.len() != 1 {
            return Err(Error::invalid(format!(
                "only a one-row cache can be expanded (this one has {} rows)",
                self.pad_left.len()
            )));
        }
        let grow = |t: &Tensor| -> Result<Tensor> {
            let mut dims = t.dims().to_vec();
            dims[0] = rows;
            Ok(t.broadcast_as(dims)?.contiguous()?)
        };
        let layers = self.map_layers(grow)?;
        Ok(KvCache {
            layers,
            pad_left: vec![self.pad_left[0]; rows],
            len: self.len,
            buffers: Vec::new(),
        })
    }

    /// The first `len` positions (keys and values of the positions after are dropped).
    pub fn truncated(&self, len: usize) -> Result<KvCache> {
        if len > self.len {
            return Err(Error::invalid(format!(
                "cannot truncate a cache of {} positions to {len}",
                self.len
            )));
        }
        let cut = |t: &Tensor| Ok(t.narrow(2, 0, len)?);
        let layers = self.map_layers(cut)?;
        Ok(KvCache {
            layers,
            pad_left: self.pad_left.clone(),
            len,
            buffers: Vec::new(),
        })
    }

    /// Row `row`'s first `len` real positions (after its left padding), as a one-row cache.
    /// A view: no keys or values are copied.
    pub fn row(&self, row: usize, len: usize) -> Result<KvCache> {
        crate::error::check_index("cache row", row, self.pad_left.len())?;
        let pad = self.pad_left[row];
        if pad + len > self.len {
            return Err(Error::invalid(format!(
                "row {row} holds {} positions, not {len}",
                self.len - pad
            )));
        }
        let cut = |t: &Tensor| -> Result<Tensor> { Ok(t.narrow(0, row, 1)?.narrow(2, pad, len)?) };
        let layers = self.map_layers(cut)?;
        Ok(KvCache {
            layers,
            pad_left: vec![0],
            len,
            buffers: Vec::new(),
        })
    }

    /// One-row caches of different lengths as one batch, each left-padded to the longest (the
    /// padding is masked and positions count from each row's first real token).
    pub fn stack(rows: &[KvCache]) -> Result<KvCache> {
        let Some(first) = rows.first() else {
            return Err(Error::invalid("no caches to stack"));
        };
        if let Some(r) = rows.iter().find(|r| r.pad_left != [0]) {
            return Err(Error::invalid(format!(
                "only unpadded one-row caches can be stacked (found left padding {:?})",
                r.pad_left
            )));
        }
        let len = rows.iter().map(|r| r.len).max().unwrap_or(0);
        let n_layers = first.layers.len();
        let mut layers = Vec::with_capacity(n_layers);
        for l in 0..n_layers {
            let held: Vec<&(Tensor, Tensor)> = rows
                .iter()
                .filter_map(|r| r.layers.get(l)?.as_ref())
                .collect();
            if held.is_empty() {
                layers.push(None);
                continue;
            }
            if held.len() != rows.len() {
                return Err(Error::invalid(format!(
                    "layer {l} is cached in some rows and not in others"
                )));
            }
            let pad = |t: &Tensor| -> Result<Tensor> {
                let (b, g, k, d) = t.dims4()?;
                if k == len {
                    return Ok(t.clone());
                }
                let zeros = Tensor::zeros((b, g, len - k, d), t.dtype(), t.device())?;
                Ok(Tensor::cat(&[&zeros, t], 2)?)
            };
            let ks = held
                .iter()
                .map(|(k, _)| pad(k))
                .collect::<Result<Vec<_>>>()?;
            let vs = held
                .iter()
                .map(|(_, v)| pad(v))
                .collect::<Result<Vec<_>>>()?;
            layers.push(Some((Tensor::cat(&ks, 0)?, Tensor::cat(&vs, 0)?)));
        }
        Ok(KvCache {
            layers,
            pad_left: rows.iter().map(|r| len - r.len).collect(),
            len,
            buffers: Vec::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
