//! Activation patching: run the corrupted prompt, splice in the clean run's activation at one
//! place (a layer, a position, a head, or a combination), and measure how much of the clean
//! behaviour comes back.
//!
//! [`patch_sweep`] is the fast method: the corrupted run's residual stream and keys/values are
//! cached once, and for each layer the patch variants run together in batches that *resume at
//! the patched layer and position*: the blocks below the patch are never recomputed, nor are
//! the positions before it (a causal model leaves them as they were; their keys and values come
//! from the corrupted run's cache), and only the last position is unembedded.
//! [`patch_sweep_naive`] is one full forward per patch (the TransformerLens way); the two agree
//! (`tests/attribution.rs`).

use candle_core::{DType, Tensor};
use lantern_engine::{
    finite, Batch, Error, HookKind, HookPoint, Hooks, Input, Intervention, Logits, Model, Result,
    RunOptions, Segment,
};
use serde::Serialize;

/// Which activation is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchTarget {
    ResidPre,
    ResidMid,
    ResidPost,
    AttnOut,
    MlpOut,
    /// Per head: `attn.hook_z`.
    HeadZ,
    HeadQ,
    /// Per KV head under GQA.
    HeadK,
    HeadV,
    /// Per head: `attn.hook_pattern` (positions are query positions).
    HeadPattern,
}

impl PatchTarget {
    pub fn kind(self) -> HookKind {
        match self {
            Self::ResidPre => HookKind::ResidPre,
            Self::ResidMid => HookKind::ResidMid,
            Self::ResidPost => HookKind::ResidPost,
            Self::AttnOut => HookKind::AttnOut,
            Self::MlpOut => HookKind::MlpOut,
            Self::HeadZ => HookKind::AttnZ,
            Self::HeadQ => HookKind::AttnQ,
            Self::HeadK => HookKind::AttnK,
            Self::HeadV => HookKind::AttnV,
            Self::HeadPattern => HookKind::AttnPattern,
        }
    }
}

impl std::str::FromStr for PatchTarget {
    type Err = Error;
    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "resid_pre" => Self::ResidPre,
            "resid_mid" => Self::ResidMid,
            "resid_post" => Self::ResidPost,
            "attn_out" => Self::AttnOut,
            "mlp_out" => Self::MlpOut,
            "z" | "head_z" => Self::HeadZ,
            "q" | "head_q" => Self::HeadQ,
            "k" | "head_k" => Self::HeadK,
            "v" | "head_v" => Self::HeadV,
            "pattern" | "head_pattern" => Self::HeadPattern,
            other => return Err(Error::invalid(format!("unknown patch target `{other}` (resid_pre, resid_mid, resid_post, attn_out, mlp_out, z, q, k, v, pattern)"))),
        })
    }
}

/// How the patches are indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchGrid {
    /// One patch per layer, all positions (and heads).
    Layer,
    /// Layer × position.
    LayerPosition,
    /// Layer × head, all positions.
    LayerHead,
    /// Head × position within one layer.
    HeadPosition { layer: usize },
}

impl PatchGrid {
    pub fn parse(name: &str, layer: Option<usize>) -> Result<Self> {
        Ok(match name {
            "layer" => Self::Layer,
            "layer_pos" | "layer_position" => Self::LayerPosition,
            "layer_head" => Self::LayerHead,
            "head_pos" | "head_position" => Self::HeadPosition {
                layer: layer.ok_or_else(|| Error::invalid("the head_pos grid needs a layer"))?,
            },
            other => {
                return Err(Error::invalid(format!(
                    "unknown patch grid `{other}` (layer, layer_pos, layer_head, head_pos)"
                )))
            }
        })
    }
}

/// What a patched run is scored by, from its last-position logits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// `logit(target) - logit(versus)`.
    LogitDiff { target: u32, versus: u32 },
    /// `p(token)`.
    Prob { token: u32 },
    /// `(m - m_corrupted) / (m_clean - m_corrupted)` of the logit difference: 0 = corrupted,
    /// 1 = clean.
    Normalized { target: u32, versus: u32 },
}

/// A [`Metric`] by name, before its tokens are known (`normalized`, `logit_diff`, `prob`): what a
/// command line or a config file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Normalized,
    LogitDiff,
    Prob,
}

impl MetricKind {
    /// The metric on `target` and `versus` (`prob` scores `target` alone).
    pub fn with_tokens(self, target: u32, versus: u32) -> Metric {
        match self {
            Self::Normalized => Metric::Normalized { target, versus },
            Self::LogitDiff => Metric::LogitDiff { target, versus },
            Self::Prob => Metric::Prob { token: target },
        }
    }
}

impl std::str::FromStr for MetricKind {
    type Err = Error;
    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "normalized" => Self::Normalized,
            "logit_diff" => Self::LogitDiff,
            "prob" => Self::Prob,
            other => {
                return Err(Error::invalid(format!(
                    "unknown metric `{other}` (normalized, logit_diff, prob)"
                )))
            }
        })
    }
}

impl Metric {
    fn raw(&self, logits: &Tensor) -> Result<Vec<f64>> {
        let logits = logits.to_dtype(DType::F32)?;
        let rows = logits.to_vec2::<f32>()?;
        Ok(match *self {
            Metric::LogitDiff { target, versus } | Metric::Normalized { target, versus } => rows
                .iter()
                .map(|r| f64::from(r[target as usize]) - f64::from(r[versus as usize]))
                .collect(),
            Metric::Prob { token } => {
                let p = candle_nn::ops::softmax_last_dim(&logits)?.to_vec2::<f32>()?;
                p.iter().map(|r| f64::from(r[token as usize])).collect()
            }
        })
    }
    fn check(&self, vocab: usize) -> Result<()> {
        let ids = match *self {
            Metric::LogitDiff { target, versus } | Metric::Normalized { target, versus } => {
                vec![target, versus]
            }
            Metric::Prob { token } => vec![token],
        };
        ids.iter()
            .try_for_each(|&id| lantern_engine::error::check_index("token id", id as usize, vocab))
    }
}

/// A patching map.
#[derive(Debug, Clone, Serialize)]
pub struct PatchResult {
    pub target: PatchTarget,
    pub grid: PatchGrid,
    pub metric: Metric,
    pub row_labels: Vec<String>,
    pub col_labels: Vec<String>,
    /// `[row][col]`, the metric of each patched run.
    pub values: Vec<Vec<f64>>,
    pub clean: f64,
    pub corrupted: f64,
    /// Patched forward passes run.
    pub patches: usize,
}

/// One patch: a layer, and optionally a position and a head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell {
    pub(crate) layer: usize,
    pub(crate) pos: Option<usize>,
    pub(crate) head: Option<usize>,
    pub(crate) row: usize,
    pub(crate) col: usize,
}

pub(crate) fn cells(
    model: &Model,
    target: PatchTarget,
    grid: PatchGrid,
    t: usize,
) -> Result<(Vec<Cell>, Vec<String>, Vec<String>)> {
    let cfg = model.config();
    let kind = target.kind();
    let per_head = kind.axes().head.is_some();
    let n_heads = if kind.is_kv() {
        cfg.n_kv_heads
    } else {
        cfg.n_heads
    };
    let layers: Vec<String> = (0..cfg.n_layers).map(|l| format!("L{l}")).collect();
    let positions: Vec<String> = (0..t).map(|p| p.to_string()).collect();
    let heads: Vec<String> = (0..n_heads).map(|h| format!("H{h}")).collect();
    let mut out = Vec::new();
    let (rows, cols) = match grid {
        PatchGrid::Layer => {
            out.extend((0..cfg.n_layers).map(|l| Cell {
                layer: l,
                pos: None,
                head: None,
                row: l,
                col: 0,
            }));
            (layers, vec!["all".to_string()])
        }
        PatchGrid::LayerPosition => {
            for l in 0..cfg.n_layers {
                out.extend((0..t).map(|p| Cell {
                    layer: l,
                    pos: Some(p),
                    head: None,
                    row: l,
                    col: p,
                }));
            }
            (layers, positions)
        }
        PatchGrid::LayerHead | PatchGrid::HeadPosition { .. } if !per_head => {
            return Err(Error::invalid(format!(
                "{target:?} has no head axis; use the layer or layer_pos grid"
            )));
        }
        PatchGrid::LayerHead => {
            for l in 0..cfg.n_layers {
                out.extend((0..n_heads).map(|h| Cell {
                    layer: l,
                    pos: None,
                    head: Some(h),
                    row: l,
                    col: h,
                }));
            }
            (layers, heads)
        }
        PatchGrid::HeadPosition { layer } => {
            lantern_engine::error::check_index("layer", layer, cfg.n_layers)?;
            for h in 0..n_heads {
                out.extend((0..t).map(|p| Cell {
                    layer,
                    pos: Some(p),
                    head: Some(h),
                    row: h,
                    col: p,
                }));
            }
            (heads, positions)
        }
    };
    Ok((out, rows, cols))
}

/// The raw metric (before normalisation) of each row of last-position logits `[B, V]`.
/// Options of a sweep.
pub struct SweepOptions<'a> {
    /// Patched runs per forward batch (default 32).
    pub batch_size: usize,
    pub progress: Option<&'a mut dyn FnMut(usize, usize)>,
}

impl Default for SweepOptions<'_> {
    fn default() -> Self {
        SweepOptions {
            batch_size: 32,
            progress: None,
        }
    }
}

pub(crate) fn check_pair(
    model: &Model,
    clean: &Batch,
    corrupted: &Batch,
    metric: &Metric,
) -> Result<()> {
    if clean.len() != 1 || corrupted.len() != 1 {
        return Err(Error::invalid(
            "patching takes one clean and one corrupted prompt",
        ));
    }
    if clean.seq_len() != corrupted.seq_len() {
        return Err(Error::invalid(format!(
            "the clean prompt is {} tokens and the corrupted one {}: patching by position needs equal lengths",
            clean.seq_len(),
            corrupted.seq_len()
        )));
    }
    metric.check(model.config().vocab_size)
}

/// The clean run: its metric and its activations at `points`. A NaN in a baseline would make
/// every patch's score NaN, so it is named at its source instead.
pub(crate) fn clean_run(
    model: &Model,
    clean: &Batch,
    metric: &Metric,
    points: impl IntoIterator<Item = HookPoint>,
) -> Result<(f64, Hooks)> {
    let mut hooks = Hooks::new().capture_all(points);
    let logits = model
        .run(
            clean,
            &mut hooks,
            RunOptions::default().logits(Logits::Last),
        )?
        .last_logits()?;
    finite::ensure_finite(model, clean, &Hooks::new(), &logits)?;
    Ok((metric.raw(&logits)?[0], hooks))
}

/// Clean and corrupted metrics, the clean activations at the target and the corrupted run's
/// residual stream (`resid_pre`) of each of `layers`.
fn baselines(
    model: &Model,
    clean: &Batch,
    corrupted: &Batch,
    target: PatchTarget,
    metric: &Metric,
    layers: &[usize],
) -> Result<(f64, f64, Hooks, Hooks)> {
    let (m_clean, clean_hooks) = clean_run(
        model,
        clean,
        metric,
        layers.iter().map(|&l| HookPoint::block(l, target.kind())),
    )?;
    let mut corrupted_hooks =
        Hooks::new().capture_all(layers.iter().map(|&l| HookPoint::resid_pre(l)));
    let corrupted_logits = model
        .run(
            corrupted,
            &mut corrupted_hooks,
            RunOptions::default().logits(Logits::Last),
        )?
        .last_logits()?;
    finite::ensure_finite(model, corrupted, &Hooks::new(), &corrupted_logits)?;
    let m_corrupted = metric.raw(&corrupted_logits)?[0];
    if matches!(metric, Metric::Normalized { .. }) && (m_clean - m_corrupted).abs() < 1e-9 {
        return Err(Error::invalid("the clean and corrupted runs have the same logit difference, so the normalised score is undefined; use the logit_diff metric"));
    }
    Ok((m_clean, m_corrupted, clean_hooks, corrupted_hooks))
}

pub(crate) fn finish(metric: &Metric, m_clean: f64, m_corrupted: f64, v: f64) -> f64 {
    match metric {
        Metric::Normalized { .. } => (v - m_corrupted) / (m_clean - m_corrupted),
        _ => v,
    }
}

/// The fast sweep: batched patches resumed from the patched layer.
pub fn patch_sweep(
    model: &Model,
    clean: &Batch,
    corrupted: &Batch,
    target: PatchTarget,
    grid: PatchGrid,
    metric: Metric,
    opts: SweepOptions,
) -> Result<PatchResult> {
    let mut cells_done: Vec<(usize, usize, f64)> = Vec::new();
    let mut result = patch_sweep_blocks(
        model,
        clean,
        corrupted,
        target,
        grid,
        metric,
        opts,
        BlockOptions {
            select: &|_| true,
            max_cache_bytes: None,
            on_block: &mut |_, cells| {
                cells_done.extend(cells.iter().map(|c| (c.row, c.col, c.value)));
                Ok(())
            },
        },
    )?;
    for (row, col, v) in cells_done {
        result.values[row][col] = v;
    }
    Ok(result)
}

/// One patched cell's score, as handed to [`BlockOptions::on_block`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellValue {
    pub row: usize,
    pub col: usize,
    pub value: f64,
}

/// The sweep's blocks: the patches of one layer, `batch_size` at a time, layer after layer.
/// A block is the unit a sharded sweep hands out: each of its patches runs in the same forward
/// batch whichever process runs it, so a sharded sweep's scores are bit-identical to one run's.
/// Returns `(row, col)` of every cell of every block, and the map's row and column labels.
pub fn patch_blocks(
    model: &Model,
    target: PatchTarget,
    grid: PatchGrid,
    seq_len: usize,
    batch_size: usize,
) -> Result<PatchBlocks> {
    let (cells, rows, cols) = cells(model, target, grid, seq_len)?;
    let blocks = layer_blocks(&cells, model.config().n_layers, batch_size)
        .into_iter()
        .map(|b| b.iter().map(|c| (c.row, c.col)).collect())
        .collect();
    Ok(PatchBlocks {
        blocks,
        row_labels: rows,
        col_labels: cols,
    })
}

/// See [`patch_blocks`].
#[derive(Debug, Clone)]
pub struct PatchBlocks {
    /// `(row, col)` of each cell, block by block.
    pub blocks: Vec<Vec<(usize, usize)>>,
    pub row_labels: Vec<String>,
    pub col_labels: Vec<String>,
}

/// Cells grouped by layer, then in chunks of `batch_size`: the sweep's blocks, in order.
fn layer_blocks(cells: &[Cell], n_layers: usize, batch_size: usize) -> Vec<Vec<Cell>> {
    let mut out = Vec::new();
    for layer in 0..n_layers {
        let at_layer: Vec<Cell> = cells.iter().copied().filter(|c| c.layer == layer).collect();
        out.extend(at_layer.chunks(batch_size.max(1)).map(<[Cell]>::to_vec));
    }
    out
}

/// What part of a sweep runs and where its scores go ([`patch_sweep_blocks`]).
pub struct BlockOptions<'a> {
    /// Whether block `b` (numbered as [`patch_blocks`] lists them) is run.
    pub select: &'a dyn Fn(usize) -> bool,
    /// The most bytes of captured activations (the clean run's at the patched point and the
    /// corrupted run's residual stream) held at once; above it the layers are swept in groups,
    /// each with its own baseline runs, instead of caching every layer first. `None`: no limit.
    /// The scores do not depend on it.
    pub max_cache_bytes: Option<usize>,
    /// Called with each block's number and scores when it is done.
    pub on_block: &'a mut dyn FnMut(usize, &[CellValue]) -> Result<()>,
}

/// [`patch_sweep`] over the blocks `select` picks, handing each block's scores to `on_block`;
/// the returned map carries the baselines and labels, with zeros as its values.
#[allow(clippy::too_many_arguments)]
pub fn patch_sweep_blocks(
    model: &Model,
    clean: &Batch,
    corrupted: &Batch,
    target: PatchTarget,
    grid: PatchGrid,
    metric: Metric,
    mut opts: SweepOptions,
    blocks: BlockOptions,
) -> Result<PatchResult> {
    check_pair(model, clean, corrupted, &metric)?;
    let t = clean.seq_len();
    let (cells, row_labels, col_labels) = cells(model, target, grid, t)?;
    let n_layers = model.config().n_layers;
    let plan = layer_blocks(&cells, n_layers, opts.batch_size);
    let chosen: Vec<usize> = (0..plan.len()).filter(|&b| (blocks.select)(b)).collect();
    let total: usize = chosen.iter().map(|&b| plan[b].len()).sum();
    let layers_needed: Vec<usize> = {
        let mut l: Vec<usize> = chosen.iter().map(|&b| plan[b][0].layer).collect();
        l.dedup();
        l
    };
    // The baselines on every layer (one group), or, under a cache budget, layer groups sized
    // from what one layer's captures take.
    let mut groups: Vec<Vec<usize>> = vec![layers_needed.clone()];
    let mut first_group = None;
    if let Some(budget) = blocks.max_cache_bytes {
        if let Some(&l0) = layers_needed.first() {
            let b = baselines(model, clean, corrupted, target, &metric, &[l0])?;
            let per_layer = b.2.cache.nbytes() + b.3.cache.nbytes();
            if per_layer > budget {
                return Err(Error::invalid(format!(
                    "--max-cache-bytes {budget} is below what one layer's activations take ({per_layer} bytes)"
                )));
            }
            let per_group = (budget / per_layer).max(1);
            groups = std::iter::once(vec![l0])
                .chain(layers_needed[1..].chunks(per_group).map(<[usize]>::to_vec))
                .collect();
            first_group = Some(b);
        }
    }
    let (mut m_clean, mut m_corrupted) = (f64::NAN, f64::NAN);
    if layers_needed.is_empty() {
        // No block here (a shard with nothing to do): the baselines still label the result.
        let b = baselines(model, clean, corrupted, target, &metric, &[])?;
        (m_clean, m_corrupted) = (b.0, b.1);
    }
    let values = vec![vec![0.0; col_labels.len()]; row_labels.len()];
    let mut done = 0;
    let kind = target.kind();
    // Patches at one position run packed: each as the positions from its own on, sharing the
    // corrupted run's keys and values before it (points with a key axis are patched unpacked).
    let packable = !matches!(kind, HookKind::AttnScores | HookKind::AttnPattern)
        && cells.iter().any(|c| c.pos.is_some());
    let mut corrupted_kv = model.new_kv_cache(&corrupted.pad_left);
    if packable && total > 0 {
        model.run(
            Input::Tokens(&corrupted.ids_tensor(model.device())?),
            &mut Hooks::new(),
            RunOptions::default()
                .cache(&mut corrupted_kv)
                .logits(Logits::None),
        )?;
    }
    for group in &groups {
        if group.is_empty() {
            continue;
        }
        let (c, k, clean_hooks, corrupted_hooks) = match first_group.take() {
            Some(b) => b,
            None => baselines(model, clean, corrupted, target, &metric, group)?,
        };
        (m_clean, m_corrupted) = (c, k);
        for &b in chosen
            .iter()
            .filter(|&&b| group.contains(&plan[b][0].layer))
        {
            let chunk = &plan[b];
            let layer = chunk[0].layer;
            let point = HookPoint::block(layer, kind);
            let source = clean_hooks.cache.require(point)?;
            let resid_pre = corrupted_hooks.cache.require(HookPoint::resid_pre(layer))?;
            let k = chunk.len();
            let logits = if packable && chunk.iter().all(|c| c.pos.is_some()) {
                let segments: Vec<Segment> = chunk
                    .iter()
                    .map(|c| {
                        let start = c.pos.expect("checked");
                        Segment {
                            start,
                            len: t - start,
                        }
                    })
                    .collect();
                let at: Vec<u32> = segments
                    .iter()
                    .flat_map(|s| (s.start..s.start + s.len).map(|p| p as u32))
                    .collect();
                let at = Tensor::new(at.as_slice(), source.device())?;
                let source_packed = source.index_select(&at, 1)?;
                let mask = packed_mask(&source_packed, kind, chunk, t)?;
                let patch = Intervention::custom(move |x, _| mask.where_cond(&source_packed, x));
                let mut hooks = Hooks::new().intervene(point, patch);
                let resid = resid_pre.index_select(&at, 1)?;
                model
                    .run(
                        Input::Resid(&resid),
                        &mut hooks,
                        RunOptions::from_layer(layer)
                            .packed(&segments, &corrupted_kv)
                            .logits(Logits::Last),
                    )?
                    .last_logits()?
            } else {
                let source_k = repeat_rows(source, k)?;
                let mask = cell_mask(source, kind, chunk)?;
                let patch = Intervention::custom(move |x, _| mask.where_cond(&source_k, x));
                let mut hooks = Hooks::new().intervene(point, patch);
                let resid = repeat_rows(resid_pre, k)?;
                let batch = Batch::from_ids(vec![corrupted.ids[0].clone(); k])?;
                model
                    .run(
                        Input::Resid(&resid),
                        &mut hooks,
                        RunOptions::from_layer(layer)
                            .padding(&batch.pad_left)
                            .logits(Logits::Last),
                    )?
                    .last_logits()?
            };
            let scores: Vec<CellValue> = chunk
                .iter()
                .zip(metric.raw(&logits)?)
                .map(|(cell, v)| CellValue {
                    row: cell.row,
                    col: cell.col,
                    value: finish(&metric, m_clean, m_corrupted, v),
                })
                .collect();
            (blocks.on_block)(b, &scores)?;
            done += k;
            if let Some(p) = opts.progress.as_mut() {
                p(done, total);
            }
        }
    }
    Ok(PatchResult {
        target,
        grid,
        metric,
        row_labels,
        col_labels,
        values,
        clean: m_clean,
        corrupted: m_corrupted,
        patches: cells.len(),
    })
}

/// One full forward pass per patch (reference implementation).
pub fn patch_sweep_naive(
    model: &Model,
    clean: &Batch,
    corrupted: &Batch,
    target: PatchTarget,
    grid: PatchGrid,
    metric: Metric,
) -> Result<PatchResult> {
    check_pair(model, clean, corrupted, &metric)?;
    let (cells, row_labels, col_labels) = cells(model, target, grid, clean.seq_len())?;
    let (m_clean, m_corrupted, scores) =
        patch_each(model, clean, corrupted, target, metric, &cells)?;
    let mut values = vec![vec![0.0; col_labels.len()]; row_labels.len()];
    for (cell, v) in cells.iter().zip(scores) {
        values[cell.row][cell.col] = v;
    }
    Ok(PatchResult {
        target,
        grid,
        metric,
        row_labels,
        col_labels,
        values,
        clean: m_clean,
        corrupted: m_corrupted,
        patches: cells.len(),
    })
}

/// The exact score of chosen cells `(row, col)` of a map (one full forward pass each, as
/// [`patch_sweep_naive`]): what `lantern patch --method atp --verify K` checks the top AtP cells
/// with. Returns the clean and corrupted baselines and the cells' scores in the order given.
#[allow(clippy::too_many_arguments)]
pub fn patch_cells(
    model: &Model,
    clean: &Batch,
    corrupted: &Batch,
    target: PatchTarget,
    grid: PatchGrid,
    metric: Metric,
    chosen: &[(usize, usize)],
) -> Result<(f64, f64, Vec<f64>)> {
    check_pair(model, clean, corrupted, &metric)?;
    let (all, rows, cols) = cells(model, target, grid, clean.seq_len())?;
    let picked = chosen
        .iter()
        .map(|&(r, c)| {
            all.iter()
                .find(|cell| cell.row == r && cell.col == c)
                .copied()
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "no cell ({r}, {c}) in a {} x {} map",
                        rows.len(),
                        cols.len()
                    ))
                })
        })
        .collect::<Result<Vec<Cell>>>()?;
    patch_each(model, clean, corrupted, target, metric, &picked)
}

/// Baselines, then one full forward pass per cell.
fn patch_each(
    model: &Model,
    clean: &Batch,
    corrupted: &Batch,
    target: PatchTarget,
    metric: Metric,
    cells: &[Cell],
) -> Result<(f64, f64, Vec<f64>)> {
    let mut layers: Vec<usize> = cells.iter().map(|c| c.layer).collect();
    layers.sort_unstable();
    layers.dedup();
    let (m_clean, m_corrupted, clean_hooks, _) =
        baselines(model, clean, corrupted, target, &metric, &layers)?;
    let mut scores = Vec::with_capacity(cells.len());
    for cell in cells {
        let point = HookPoint::block(cell.layer, target.kind());
        let mut iv = Intervention::patch(clean_hooks.cache.require(point)?.clone());
        if let Some(p) = cell.pos {
            iv = iv.positions([p]);
        }
        if let Some(h) = cell.head {
            iv = iv.heads([h]);
        }
        let logits = model
            .run(
                corrupted,
                &mut Hooks::new().intervene(point, iv),
                RunOptions::default().logits(Logits::Last),
            )?
            .last_logits()?;
        scores.push(finish(
            &metric,
            m_clean,
            m_corrupted,
            metric.raw(&logits)?[0],
        ));
    }
    Ok((m_clean, m_corrupted, scores))
}

/// `[1, ...] -> [k, ...]` (contiguous).
fn repeat_rows(t: &Tensor, k: usize) -> Result<Tensor> {
    let mut dims = t.dims().to_vec();
    dims[0] = k;
    Ok(t.broadcast_as(dims)?.contiguous()?)
}

/// A u8 mask over a packed `[1, N, ...]` activation (segment `i` is the positions from
/// `chunk[i]`'s on, of `t`) that is 1 at each segment's first token, its patched position, and
/// for per-head points only at `chunk[i]`'s head.
fn packed_mask(packed: &Tensor, kind: HookKind, chunk: &[Cell], t: usize) -> Result<Tensor> {
    let dims = packed.dims().to_vec();
    let per_token: usize = dims[2..].iter().product();
    let n_heads = kind.axes().head.map_or(1, |h| dims[h]);
    let per_head = per_token / n_heads;
    let mut mask = vec![0u8; dims.iter().product()];
    let mut first = 0;
    for cell in chunk {
        let pos = cell.pos.expect("packed cells have a position");
        let token = &mut mask[first * per_token..(first + 1) * per_token];
        match cell.head {
            Some(h) => token[h * per_head..(h + 1) * per_head].fill(1),
            None => token.fill(1),
        }
        first += t - pos;
    }
    Ok(Tensor::from_vec(mask, dims, packed.device())?)
}

/// A u8 mask over `[k, ...]` that is 1 where row `i` patches `chunk[i]`'s position and head.
fn cell_mask(source: &Tensor, kind: HookKind, chunk: &[Cell]) -> Result<Tensor> {
    let axes = kind.axes();
    let mut dims = source.dims().to_vec();
    dims[0] = chunk.len();
    let strides: Vec<usize> = (0..dims.len())
        .map(|i| dims[i + 1..].iter().product())
        .collect();
    let mut mask = vec![0u8; dims.iter().product()];
    for (i, cell) in chunk.iter().enumerate() {
        let row = &mut mask[i * strides[0]..(i + 1) * strides[0]];
        for (flat, m) in row.iter_mut().enumerate() {
            let coord = |axis: usize| (flat / strides[axis]) % dims[axis];
            let pos_ok = cell.pos.is_none_or(|p| coord(axes.pos) == p);
            let head_ok = match (cell.head, axes.head) {
                (Some(h), Some(axis)) => coord(axis) == h,
                _ => true,
            };
            *m = u8::from(pos_ok && head_ok);
        }
    }
    Ok(Tensor::from_vec(mask, dims, source.device())?)
}
