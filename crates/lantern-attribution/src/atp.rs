//! Attribution patching: every cell of a patching map estimated from one forward and one
//! backward pass (Nanda 2023, "Attribution patching: activation patching at industrial scale";
//! AtP* in Kramár, Lieberum, Shah & Nanda 2024, arXiv 2403.00745).
//!
//! Lantern's exact patching ([`crate::patching`]) runs the *corrupted* prompt with the *clean*
//! activation spliced in. AtP is the first-order Taylor expansion of exactly that run around the
//! corrupted run:
//!
//! `m(patched) ≈ m_corrupted + Σ_cell (a_clean − a_corrupted) · ∂m/∂a |_corrupted`
//!
//! so [`atp_sweep`]'s map is in the same units as [`crate::patch_sweep`]'s (the estimated metric
//! of each patched run; normalised the same way) and the two compare cell by cell.
//!
//! AtP* corrections:
//! - **QK fix** (`AtpOptions::qk_fix`, on by default): for query and key cells the attention
//!   pattern of the patched head is recomputed exactly (softmax of the patched scores) and only
//!   the pattern's effect on the metric is linearised: `Σ (A_patched − A_corrupted) · ∂m/∂A`.
//!   It applies where a cell acts through a softmax of its own: `q` and `k`. Value, `z`,
//!   `pattern`, residual, `attn_out` and `mlp_out` cells act linearly on the head's output, so
//!   their estimate is plain AtP (the saturation of *later* heads is not corrected, as in AtP*).
//! - **GradDrop** (`AtpOptions::grad_drop`): for each layer `l`, the backward pass is rerun with
//!   the gradient through layer `l`'s attention and MLP outputs dropped (residual path only), and
//!   a cell's score is `1/(L−1) Σ_l |AtP_l(cell)|`. It guards against false negatives from
//!   cancelling paths; it is a magnitude (no sign), reported beside the signed estimate, and
//!   costs `L` more forward + backward passes.
//!
//! Gradients come from candle's autograd: a zero [`Var`] is added at each hook point of interest,
//! so the graph downstream of it is tracked and the gradient with respect to the zero is the
//! gradient with respect to the activation (through every later path, other hooks included).

use std::sync::{Arc, Mutex};

use candle_core::{DType, Tensor, Var, D};
use lantern_engine::{
    finite, Batch, Error, HookKind, HookPoint, Hooks, Intervention, Logits, Model, Output, Result,
    RunOptions,
};
use serde::Serialize;

use crate::patching::{self, Cell, Metric, PatchGrid, PatchResult, PatchTarget};

/// Options of [`atp_sweep`].
#[derive(Debug, Clone, Copy)]
pub struct AtpOptions {
    /// Recompute the attention softmax for `q`/`k` cells (AtP*'s QK fix). Default on.
    pub qk_fix: bool,
    /// Also compute AtP*'s GradDrop magnitudes (`L` more forward + backward passes).
    pub grad_drop: bool,
}

impl Default for AtpOptions {
    fn default() -> Self {
        AtpOptions {
            qk_fix: true,
            grad_drop: false,
        }
    }
}

/// An attribution-patching map.
#[derive(Debug, Clone, Serialize)]
pub struct AtpResult {
    /// The estimated metric of each patched run, in the units of [`crate::patch_sweep`]'s map
    /// (`clean`/`corrupted` are the exact baselines).
    pub estimate: PatchResult,
    /// Whether the QK fix was applied (only `q`/`k` targets have one).
    pub qk_fix_applied: bool,
    /// AtP*'s GradDrop score of each cell, `1/(L−1) Σ_l |AtP_l|`, in units of the metric's
    /// change (normalised like the map); `None` unless asked for.
    pub grad_drop: Option<Vec<Vec<f64>>>,
    /// Forward + backward passes run (the clean forward not counted).
    pub backward_passes: usize,
}

/// A scalar function of a run's output that gradients are taken of (must stay on the graph:
/// candle ops only).
pub type ScalarFn<'a> = &'a dyn Fn(&Output) -> Result<Tensor>;

/// [`hook_gradients`]' result, aligned with the points asked for.
#[derive(Debug, Clone)]
pub struct HookGradients {
    /// The metric's value on this run.
    pub metric: f64,
    /// The activation at each point, `[1, ...]` (detached).
    pub activations: Vec<Tensor>,
    /// `∂metric/∂activation` at each point, same shape (zeros where the metric does not depend
    /// on it).
    pub gradients: Vec<Tensor>,
    /// The run's output (logits as `logits` asked).
    pub output: Output,
}

/// The gradient of `metric(output)` with respect to the activation at each of `points` on the
/// run of `batch`, from one forward and one backward pass. `drop_layer`: GradDrop's variant,
/// with no gradient through that layer's attention and MLP outputs.
pub fn hook_gradients(
    model: &Model,
    batch: &Batch,
    points: &[HookPoint],
    extra_captures: &[HookPoint],
    metric: ScalarFn,
    logits: Logits,
    drop_layer: Option<usize>,
) -> Result<(HookGradients, lantern_engine::ActivationCache)> {
    if let Some(p) = points.iter().find(|p| !has_gradient(p.kind)) {
        return Err(Error::invalid(format!(
            "{p} has no gradient: the forward pass records it but computes on with its own copy (the norm divides by the scale it computed), so attribution patching cannot be taken there"
        )));
    }
    let mut hooks = Hooks::new().capture_all(extra_captures.iter().copied());
    if let Some(l) = drop_layer {
        // Inserted before the zero-adds below, so a point of layer `l` itself keeps its own
        // gradient (only what flows *through* the block to earlier points is dropped).
        for kind in [HookKind::AttnOut, HookKind::MlpOut] {
            hooks = hooks.intervene(
                HookPoint::block(l, kind),
                Intervention::custom(|x, _| Ok(x.detach())),
            );
        }
    }
    type Slot = Arc<Mutex<Option<(Tensor, Var)>>>;
    let mut slots: Vec<Slot> = Vec::with_capacity(points.len());
    for &p in points {
        let slot: Slot = Arc::new(Mutex::new(None));
        let s = slot.clone();
        hooks = hooks.intervene(
            p,
            Intervention::custom(move |x, _| {
                let zero = Var::zeros(x.shape(), x.dtype(), x.device())?;
                let out = x.add(zero.as_tensor())?;
                *s.lock().expect("one run at a time") = Some((x.detach(), zero));
                Ok(out)
            }),
        );
        slots.push(slot);
    }
    let out = model.run(batch, &mut hooks, RunOptions::default().logits(logits))?;
    if out.logits.is_some() {
        finite::ensure_finite(model, batch, &Hooks::new(), &out.last_logits()?)?;
    }
    let m = metric(&out)?;
    let value = f64::from(m.to_dtype(DType::F32)?.to_scalar::<f32>()?);
    let grads = m.backward()?;
    let mut activations = Vec::with_capacity(points.len());
    let mut gradients = Vec::with_capacity(points.len());
    for (p, slot) in points.iter().zip(&slots) {
        let taken = slot.lock().expect("the run is over").take();
        let (act, zero) = taken.ok_or_else(|| {
            Error::invalid(format!(
                "the run never passed through {p}, so it has no gradient"
            ))
        })?;
        let g = match grads.get(zero.as_tensor()) {
            Some(g) => g.detach(),
            None => act.zeros_like()?,
        };
        activations.push(act);
        gradients.push(g);
    }
    let cache = hooks.take_cache();
    Ok((
        HookGradients {
            metric: value,
            activations,
            gradients,
            output: out,
        },
        cache,
    ))
}

/// Whether the metric can have a gradient with respect to a hook point: false for the norm
/// scales (`ln1/ln2/ln_final.hook_scale`), which the forward pass records but does not read
/// back, so an intervention there changes nothing downstream.
pub fn has_gradient(kind: HookKind) -> bool {
    !matches!(
        kind,
        HookKind::Ln1Scale | HookKind::Ln2Scale | HookKind::LnFinalScale
    )
}

/// The metric of a patching map as a differentiable scalar of last-position logits (the raw
/// metric: a logit difference or a probability; normalisation is applied to the estimates).
pub fn metric_scalar(metric: Metric) -> impl Fn(&Output) -> Result<Tensor> {
    move |out: &Output| {
        let logits = out
            .logits
            .as_ref()
            .ok_or_else(|| Error::invalid("this run computed no logits"))?;
        let t = logits.dim(1)?;
        let last = logits
            .narrow(1, t - 1, 1)?
            .flatten_all()?
            .to_dtype(DType::F32)?; // [V]
        Ok(match metric {
            Metric::LogitDiff { target, versus } | Metric::Normalized { target, versus } => {
                (last.get(target as usize)? - last.get(versus as usize)?)?
            }
            Metric::Prob { token } => {
                candle_nn::ops::softmax(&last, D::Minus1)?.get(token as usize)?
            }
        })
    }
}

/// Estimates every cell of a patching map by attribution patching (see the module docs).
pub fn atp_sweep(
    model: &Model,
    clean: &Batch,
    corrupted: &Batch,
    target: PatchTarget,
    grid: PatchGrid,
    metric: Metric,
    opts: AtpOptions,
) -> Result<AtpResult> {
    patching::check_pair(model, clean, corrupted, &metric)?;
    let cfg = model.config();
    let t = clean.seq_len();
    let (cells, row_labels, col_labels) = patching::cells(model, target, grid, t)?;
    let kind = target.kind();
    let mut layers: Vec<usize> = cells.iter().map(|c| c.layer).collect();
    layers.dedup();
    let points: Vec<HookPoint> = layers.iter().map(|&l| HookPoint::block(l, kind)).collect();
    let qk = opts.qk_fix && matches!(target, PatchTarget::HeadQ | PatchTarget::HeadK);
    // The rotated queries/keys (what the scores are made of) where the model has rotary.
    let (q_kind, k_kind) = if cfg.rope.is_some() {
        (HookKind::AttnRotQ, HookKind::AttnRotK)
    } else {
        (HookKind::AttnQ, HookKind::AttnK)
    };
    let qk_points = |l: usize| {
        [
            HookPoint::block(l, q_kind),
            HookPoint::block(l, k_kind),
            HookPoint::block(l, HookKind::AttnScores),
        ]
    };

    // The clean run: its activations at the target (and its rotated q/k for the QK fix).
    let mut clean_capture = points.clone();
    if qk {
        clean_capture.extend(layers.iter().flat_map(|&l| qk_points(l)));
    }
    let (m_clean, clean_hooks) = patching::clean_run(model, clean, &metric, clean_capture)?;

    // The corrupted run, forward and backward. With the QK fix the gradient is taken at the
    // pattern of each layer (not at q/k) and the run's q/k/scores are captured.
    let grad_points: Vec<HookPoint> = if qk {
        layers
            .iter()
            .map(|&l| HookPoint::block(l, HookKind::AttnPattern))
            .collect()
    } else {
        points.clone()
    };
    let extra: Vec<HookPoint> = if qk {
        layers.iter().flat_map(|&l| qk_points(l)).collect()
    } else {
        Vec::new()
    };
    let f = metric_scalar(metric);
    let estimate_with = |drop_layer: Option<usize>| -> Result<(f64, Vec<f64>)> {
        let (g, cache) = hook_gradients(
            model,
            corrupted,
            &grad_points,
            &extra,
            &f,
            Logits::Last,
            drop_layer,
        )?;
        let mut per_cell = vec![0.0; cells.len()];
        for (i, &layer) in layers.iter().enumerate() {
            let at_layer = cells.iter().enumerate().filter(|(_, c)| c.layer == layer);
            if qk {
                let fix = QkFix::new(
                    model,
                    clean_hooks.cache.require(qk_points(layer)[0])?,
                    clean_hooks.cache.require(qk_points(layer)[1])?,
                    cache.require(qk_points(layer)[0])?,
                    cache.require(qk_points(layer)[1])?,
                    cache.require(qk_points(layer)[2])?,
                    &g.activations[i],
                    &g.gradients[i],
                )?;
                for (ci, cell) in at_layer {
                    per_cell[ci] = if target == PatchTarget::HeadQ {
                        fix.query_cell(cell)
                    } else {
                        fix.key_cell(cell, cfg.n_heads / cfg.n_kv_heads)
                    };
                }
            } else {
                let clean_act = clean_hooks.cache.require(points[i])?;
                let table = contributions(kind, clean_act, &g.activations[i], &g.gradients[i])?;
                for (ci, cell) in at_layer {
                    per_cell[ci] = table.cell(cell);
                }
            }
        }
        Ok((g.metric, per_cell))
    };

    let (m_corrupted, per_cell) = estimate_with(None)?;
    if matches!(metric, Metric::Normalized { .. }) && (m_clean - m_corrupted).abs() < 1e-9 {
        return Err(Error::invalid("the clean and corrupted runs have the same logit difference, so the normalised score is undefined; use the logit_diff metric"));
    }
    let mut values = vec![vec![0.0; col_labels.len()]; row_labels.len()];
    for (cell, d) in cells.iter().zip(&per_cell) {
        values[cell.row][cell.col] =
            patching::finish(&metric, m_clean, m_corrupted, m_corrupted + d);
    }
    let mut passes = 1;
    let grad_drop = if opts.grad_drop {
        let n = cfg.n_layers;
        let mut gd = vec![vec![0.0; col_labels.len()]; row_labels.len()];
        for l in 0..n {
            let (_, dropped) = estimate_with(Some(l))?;
            passes += 1;
            for (cell, d) in cells.iter().zip(&dropped) {
                let scaled = patching::finish(&metric, m_clean, m_corrupted, m_corrupted + d)
                    - patching::finish(&metric, m_clean, m_corrupted, m_corrupted);
                gd[cell.row][cell.col] += scaled.abs() / (n.max(2) - 1) as f64;
            }
        }
        Some(gd)
    } else {
        None
    };
    Ok(AtpResult {
        estimate: PatchResult {
            target,
            grid,
            metric,
            row_labels,
            col_labels,
            values,
            clean: m_clean,
            corrupted: m_corrupted,
            patches: 0,
        },
        qk_fix_applied: qk,
        grad_drop,
        backward_passes: passes,
    })
}

/// `(clean − corrupted) · gradient` of one layer, summed within each (position, head):
/// `[T][H]` (`H` = 1 for points without a head axis).
struct Contributions {
    values: Vec<Vec<f64>>,
}

impl Contributions {
    fn cell(&self, cell: &Cell) -> f64 {
        let mut sum = 0.0;
        for (p, row) in self.values.iter().enumerate() {
            if cell.pos.is_some_and(|q| q != p) {
                continue;
            }
            for (h, v) in row.iter().enumerate() {
                if cell.head.is_none_or(|k| k == h) {
                    sum += v;
                }
            }
        }
        sum
    }
}

fn contributions(
    kind: HookKind,
    clean: &Tensor,
    corrupted: &Tensor,
    grad: &Tensor,
) -> Result<Contributions> {
    let f32 = |t: &Tensor| t.to_dtype(DType::F32);
    let prod = ((f32(clean)? - f32(corrupted)?)? * f32(grad)?)?.squeeze(0)?;
    let axes = kind.axes();
    let values: Vec<Vec<f32>> = match (prod.rank(), axes.head) {
        // [T, M]
        (2, None) => prod.sum_keepdim(1)?.to_vec2::<f32>()?.into_iter().collect(),
        // [T, H, D]
        (3, Some(2)) => prod.sum(2)?.to_vec2::<f32>()?,
        // [H, T, K] (pattern / scores): positions are query positions
        (3, Some(1)) => prod.sum(2)?.t()?.to_vec2::<f32>()?,
        _ => {
            return Err(Error::invalid(format!(
                "{kind:?} activations of shape {:?} have no position × head layout",
                prod.dims()
            )))
        }
    };
    Ok(Contributions {
        values: values
            .into_iter()
            .map(|r| r.into_iter().map(f64::from).collect())
            .collect(),
    })
}

/// AtP*'s QK fix for one layer: the corrupted run's scores and pattern, the query/key changes a
/// patch makes, and the gradient at the pattern, as plain `[H][T][K]` arrays (tiny: one prompt).
struct QkFix {
    /// Corrupted scores (mask included, `-inf` above the diagonal).
    scores: Vec<Vec<Vec<f32>>>,
    /// Corrupted pattern and `∂m/∂pattern`.
    pattern: Vec<Vec<Vec<f32>>>,
    grad: Vec<Vec<Vec<f32>>>,
    /// Score change of row (h, t) when query (t, h) is patched: `scale · Δq[t,h] · k[s]`.
    dq_scores: Vec<Vec<Vec<f32>>>,
    /// Score change at (h, t, s) when key s of h's KV head is patched: `scale · q[t,h] · Δk[s]`.
    dk_scores: Vec<Vec<Vec<f32>>>,
}

impl QkFix {
    #[allow(clippy::too_many_arguments)]
    fn new(
        model: &Model,
        q_clean: &Tensor,
        k_clean: &Tensor,
        q_corrupted: &Tensor,
        k_corrupted: &Tensor,
        scores: &Tensor,
        pattern: &Tensor,
        grad: &Tensor,
    ) -> Result<Self> {
        let cfg = model.config();
        let rep = cfg.n_heads / cfg.n_kv_heads;
        // [1, T, H|G, D] -> [H, T, D] (keys repeated to query heads).
        let heads = |x: &Tensor, repeat: usize| -> Result<Tensor> {
            let x = x.to_dtype(DType::F32)?.squeeze(0)?.transpose(0, 1)?; // [G, T, D]
            let (g, t, d) = x.dims3()?;
            Ok(x.unsqueeze(1)?
                .broadcast_as((g, repeat, t, d))?
                .reshape((g * repeat, t, d))?
                .contiguous()?)
        };
        let (qc, qr) = (heads(q_clean, 1)?, heads(q_corrupted, 1)?);
        let (kc, kr) = (heads(k_clean, rep)?, heads(k_corrupted, rep)?);
        let scale = cfg.attn_scale;
        let dq = (qc - &qr)?.matmul(&kr.t()?)?.affine(scale, 0.0)?;
        let dk = qr.matmul(&(kc - &kr)?.t()?)?.affine(scale, 0.0)?;
        let arr = |x: &Tensor| -> Result<Vec<Vec<Vec<f32>>>> {
            Ok(x.to_dtype(DType::F32)?.squeeze(0)?.to_vec3::<f32>()?)
        };
        Ok(QkFix {
            scores: arr(scores)?,
            pattern: arr(pattern)?,
            grad: arr(grad)?,
            dq_scores: dq.to_vec3::<f32>()?,
            dk_scores: dk.to_vec3::<f32>()?,
        })
    }

    /// `Σ_s (softmax(scores + add)[s] − A[s]) · ∂m/∂A[s]` for row (h, t).
    fn row_effect(&self, h: usize, t: usize, add: impl Fn(usize) -> f32) -> f64 {
        let row: Vec<f32> = self.scores[h][t]
            .iter()
            .enumerate()
            .map(|(s, &x)| x + add(s))
            .collect();
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f64> = row.iter().map(|&x| f64::from(x - max).exp()).collect();
        let total: f64 = exps.iter().sum();
        exps.iter()
            .enumerate()
            .map(|(s, e)| {
                (e / total - f64::from(self.pattern[h][t][s])) * f64::from(self.grad[h][t][s])
            })
            .sum()
    }

    /// A query cell: its (position, head) rows get the clean query; rows are independent.
    fn query_cell(&self, cell: &Cell) -> f64 {
        let mut sum = 0.0;
        for h in 0..self.scores.len() {
            if cell.head.is_some_and(|k| k != h) {
                continue;
            }
            for t in 0..self.scores[h].len() {
                if cell.pos.is_some_and(|p| p != t) {
                    continue;
                }
                sum += self.row_effect(h, t, |s| self.dq_scores[h][t][s]);
            }
        }
        sum
    }

    /// A key cell (heads are KV heads): every query row of the heads reading the patched KV head
    /// sees the clean key at the patched positions.
    fn key_cell(&self, cell: &Cell, rep: usize) -> f64 {
        let mut sum = 0.0;
        for h in 0..self.scores.len() {
            if cell.head.is_some_and(|g| g != h / rep) {
                continue;
            }
            for t in 0..self.scores[h].len() {
                sum += self.row_effect(h, t, |s| {
                    if cell.pos.is_none_or(|p| p == s) {
                        self.dk_scores[h][t][s]
                    } else {
                        0.0
                    }
                });
            }
        }
        sum
    }
}

/// Ranks a map's cells by the size of their effect, `|value − corrupted|`, largest first:
/// `(row, col, value)`.
pub fn rank_cells(result: &PatchResult) -> Vec<(usize, usize, f64)> {
    let base = patching::finish(
        &result.metric,
        result.clean,
        result.corrupted,
        result.corrupted,
    );
    let mut all: Vec<(usize, usize, f64)> = result
        .values
        .iter()
        .enumerate()
        .flat_map(|(r, row)| row.iter().enumerate().map(move |(c, &v)| (r, c, v)))
        .collect();
    all.sort_by(|a, b| {
        (b.2 - base)
            .abs()
            .total_cmp(&(a.2 - base).abs())
            .then(a.0.cmp(&b.0))
            .then(a.1.cmp(&b.1))
    });
    all
}
