//! Interventions: what a hook point does to the activation flowing through it.
//!
//! An [`Intervention`] is an operation ([`Op`]) and a [`Selection`] of batch rows, positions and
//! heads it applies to (everything by default). [`Hooks`] gathers the points to capture and the
//! interventions of one run.

use std::collections::HashSet;
use std::sync::Arc;

use candle_core::Tensor;

use crate::cache::ActivationCache;
use crate::error::{Error, Result};
use crate::hooks::{HookKind, HookPoint};

/// What the intervention function of an [`Op::Custom`] is told about where it runs.
#[derive(Debug, Clone)]
pub struct HookContext {
    pub point: HookPoint,
    /// Absolute position of the tensor's first position (non-zero on KV-cached generation steps).
    pub pos_offset: usize,
}

/// A user function `(activation, context) -> new activation` of the same shape.
pub type CustomFn = Arc<dyn Fn(&Tensor, &HookContext) -> candle_core::Result<Tensor> + Send + Sync>;

/// The operation an intervention performs on the selected part of an activation.
#[derive(Clone)]
pub enum Op {
    /// Replace by this tensor (broadcast to the activation's shape).
    Replace(Tensor),
    /// Add this tensor, e.g. a steering vector of shape `[d_model]`.
    Add(Tensor),
    /// Multiply by alpha.
    Scale(f64),
    /// Set to zero.
    Zero,
    /// Replace by a mean activation (broadcast), e.g. `cache.mean_over_batch(point)`.
    Mean(Tensor),
    /// Replace by the same point of another run (same shape; on generation steps the source's
    /// positions are matched by absolute position).
    Patch(Tensor),
    /// Anything else.
    Custom(CustomFn),
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Replace(t) => write!(f, "Replace({:?})", t.shape()),
            Op::Add(t) => write!(f, "Add({:?})", t.shape()),
            Op::Scale(a) => write!(f, "Scale({a})"),
            Op::Zero => f.write_str("Zero"),
            Op::Mean(t) => write!(f, "Mean({:?})", t.shape()),
            Op::Patch(t) => write!(f, "Patch({:?})", t.shape()),
            Op::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// Where an intervention applies; `None` means every index on that axis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub batch: Option<Vec<usize>>,
    /// Absolute token positions (query positions at `hook_pattern`/`hook_attn_scores`).
    pub positions: Option<Vec<usize>>,
    /// Heads (KV heads at `hook_k`/`hook_v`/`hook_rot_k`).
    pub heads: Option<Vec<usize>>,
}

impl Selection {
    fn is_all(&self) -> bool {
        self.batch.is_none() && self.positions.is_none() && self.heads.is_none()
    }
}

/// An operation and where it applies.
#[derive(Debug, Clone)]
pub struct Intervention {
    pub op: Op,
    pub selection: Selection,
}

impl Intervention {
    pub fn new(op: Op) -> Self {
        Intervention {
            op,
            selection: Selection::default(),
        }
    }
    pub fn replace(value: Tensor) -> Self {
        Self::new(Op::Replace(value))
    }
    pub fn add(vector: Tensor) -> Self {
        Self::new(Op::Add(vector))
    }
    pub fn scale(alpha: f64) -> Self {
        Self::new(Op::Scale(alpha))
    }
    pub fn zero() -> Self {
        Self::new(Op::Zero)
    }
    pub fn mean(mean: Tensor) -> Self {
        Self::new(Op::Mean(mean))
    }
    pub fn patch(source: Tensor) -> Self {
        Self::new(Op::Patch(source))
    }
    pub fn custom(
        f: impl Fn(&Tensor, &HookContext) -> candle_core::Result<Tensor> + Send + Sync + 'static,
    ) -> Self {
        Self::new(Op::Custom(Arc::new(f)))
    }
    /// Restricts to these batch rows.
    pub fn rows(mut self, rows: impl Into<Vec<usize>>) -> Self {
        self.selection.batch = Some(rows.into());
        self
    }
    /// Restricts to these positions.
    pub fn positions(mut self, positions: impl Into<Vec<usize>>) -> Self {
        self.selection.positions = Some(positions.into());
        self
    }
    /// Restricts to these heads.
    pub fn heads(mut self, heads: impl Into<Vec<usize>>) -> Self {
        self.selection.heads = Some(heads.into());
        self
    }

    /// Applies to `x`, the activation at `ctx.point`.
    pub(crate) fn apply(&self, x: &Tensor, ctx: &HookContext) -> Result<Tensor> {
        let err = |message: String| Error::Intervention {
            hook: ctx.point.name(),
            message,
        };
        let shape = x.dims().to_vec();
        let cast = |t: &Tensor| -> Result<Tensor> {
            t.to_dtype(x.dtype())?.to_device(x.device())?.broadcast_as(shape.as_slice()).map_err(|e| {
                err(format!("a tensor of shape {:?} does not broadcast to the activation's shape {:?} ({e})", t.dims(), shape))
            })
        };
        let new = match &self.op {
            Op::Replace(v) | Op::Mean(v) => cast(v)?,
            Op::Add(v) => (x + cast(v)?)?,
            Op::Scale(alpha) => x.affine(*alpha, 0.0)?,
            Op::Zero => x.zeros_like()?,
            Op::Patch(src) => {
                let axes = ctx.point.kind.axes();
                let src = if src.dims() == x.dims() && ctx.pos_offset == 0 {
                    src.clone()
                } else {
                    let t = x.dim(axes.pos)?;
                    if src.rank() != x.rank() || src.dim(axes.pos)? < ctx.pos_offset + t {
                        return Err(err(format!("patch source of shape {:?} does not cover the activation's shape {:?} at position {}", src.dims(), x.dims(), ctx.pos_offset)));
                    }
                    src.narrow(axes.pos, ctx.pos_offset, t)?
                };
                cast(&src)?
            }
            Op::Custom(f) => {
                let y = f(x, ctx)?;
                if y.dims() != x.dims() {
                    return Err(err(format!(
                        "the custom function returned shape {:?} for an input of shape {:?}",
                        y.dims(),
                        x.dims()
                    )));
                }
                y
            }
        };
        if self.selection.is_all() {
            return Ok(new);
        }
        let mask = self.mask(x, ctx)?;
        Ok(mask.where_cond(&new, x)?)
    }

    /// A 0/1 mask with the activation's rank, full size on the batch/position/head axes and 1 elsewhere.
    fn mask(&self, x: &Tensor, ctx: &HookContext) -> Result<Tensor> {
        let axes = ctx.point.kind.axes();
        let dims = x.dims();
        let (n_batch, n_pos) = (dims[axes.batch], dims[axes.pos]);
        let n_head = axes.head.map(|h| dims[h]).unwrap_or(1);
        let sel = &self.selection;
        let head_what = if ctx.point.kind.is_kv() {
            "KV head"
        } else {
            "head"
        };
        if let Some(rows) = &sel.batch {
            rows.iter()
                .try_for_each(|&b| crate::error::check_index("batch row", b, n_batch))?;
        }
        if let Some(heads) = &sel.heads {
            if axes.head.is_none() {
                return Err(Error::Intervention {
                    hook: ctx.point.name(),
                    message: "a head was selected but this point has no head axis".into(),
                });
            }
            heads
                .iter()
                .try_for_each(|&h| crate::error::check_index(head_what, h, n_head))?;
        }
        if let (Some(positions), 0) = (&sel.positions, ctx.pos_offset) {
            positions
                .iter()
                .try_for_each(|&p| crate::error::check_index("position", p, n_pos))?;
        }
        let member =
            |set: &Option<Vec<usize>>, i: usize| set.as_ref().is_none_or(|s| s.contains(&i));
        let mut mask_dims = vec![1usize; dims.len()];
        mask_dims[axes.batch] = n_batch;
        mask_dims[axes.pos] = n_pos;
        if let Some(h) = axes.head {
            mask_dims[h] = n_head;
        }
        // Enumerate in the order the axes appear in memory.
        let mut order = vec![(axes.batch, n_batch, 0usize), (axes.pos, n_pos, 1)];
        if let Some(h) = axes.head {
            order.push((h, n_head, 2));
        }
        order.sort();
        let mut values = Vec::with_capacity(n_batch * n_pos * n_head);
        let mut idx = [0usize; 3];
        let total: usize = order.iter().map(|o| o.1).product();
        for flat in 0..total {
            let mut rem = flat;
            for &(_, size, role) in order.iter().rev() {
                idx[role] = rem % size;
                rem /= size;
            }
            let on = member(&sel.batch, idx[0])
                && member(&sel.positions, idx[1] + ctx.pos_offset)
                && member(&sel.heads, idx[2]);
            values.push(u8::from(on));
        }
        let mask = Tensor::from_vec(values, mask_dims, x.device())?;
        Ok(mask.broadcast_as(dims)?)
    }
}

/// The captures and interventions of one run (or of every step of a generation).
///
/// ```no_run
/// # use lantern_engine::*;
/// # fn demo(model: &Model) -> Result<()> {
/// let z = HookPoint::attn(3, HookKind::AttnZ);
/// let mut hooks = Hooks::new()
///     .capture_pattern(model.config(), "blocks.*.hook_resid_post")?
///     .intervene(z, Intervention::zero().heads([5]));
/// # Ok(()) }
/// ```
#[derive(Default, Clone)]
pub struct Hooks {
    capture: HashSet<HookPoint>,
    interventions: Vec<(HookPoint, Intervention)>,
    active: HashSet<HookPoint>,
    /// What the run captured.
    pub cache: ActivationCache,
}

impl Hooks {
    pub fn new() -> Self {
        Self::default()
    }
    /// Captures one point.
    pub fn capture(mut self, point: HookPoint) -> Self {
        self.capture.insert(point);
        self.active.insert(point);
        self
    }
    /// Captures several points.
    pub fn capture_all(mut self, points: impl IntoIterator<Item = HookPoint>) -> Self {
        for p in points {
            self = self.capture(p);
        }
        self
    }
    /// Captures every point a comma-separated list of names or glob patterns matches.
    pub fn capture_pattern(self, cfg: &crate::ModelConfig, patterns: &str) -> Result<Self> {
        Ok(self.capture_all(crate::hooks::resolve_list(patterns, cfg)?))
    }
    /// Adds an intervention; several at one point apply in the order added.
    pub fn intervene(mut self, point: HookPoint, intervention: Intervention) -> Self {
        self.interventions.push((point, intervention));
        self.active.insert(point);
        self
    }
    /// Whether anything is attached to a point.
    pub fn is_active(&self, point: HookPoint) -> bool {
        self.active.contains(&point)
    }
    /// Whether an intervention (not just a capture) is attached to `point`.
    pub fn intervenes(&self, point: HookPoint) -> bool {
        self.interventions.iter().any(|(p, _)| *p == point)
    }
    pub fn has_any(&self) -> bool {
        !self.active.is_empty()
    }
    pub fn interventions(&self) -> &[(HookPoint, Intervention)] {
        &self.interventions
    }
    pub fn captured_points(&self) -> impl Iterator<Item = &HookPoint> {
        self.capture.iter()
    }
    /// Removes and returns the cache, leaving an empty one.
    pub fn take_cache(&mut self) -> ActivationCache {
        std::mem::take(&mut self.cache)
    }

    /// Checks every attached point against a model before a run.
    pub fn check(&self, cfg: &crate::ModelConfig) -> Result<()> {
        self.active.iter().try_for_each(|p| p.check(cfg))
    }

    /// Runs the interventions at `ctx.point`, then captures. A point with nothing attached
    /// returns `x` untouched (no copy).
    pub(crate) fn run(&mut self, mut x: Tensor, ctx: HookContext) -> Result<Tensor> {
        // No hashing at all on the common no-hook path (about 700 points per decoding step).
        if self.active.is_empty() || !self.is_active(ctx.point) {
            return Ok(x);
        }
        for (p, iv) in &self.interventions {
            if *p == ctx.point {
                x = iv.apply(&x, &ctx)?;
            }
        }
        if self.capture.contains(&ctx.point) {
            self.cache.insert(ctx.point, x.clone());
        }
        Ok(x)
    }

    /// The hooks as one layer of a forward pass sees them (`None`: the points outside the
    /// blocks), so the forward pass names only the kind: `h.at(HookKind::AttnZ, z)`.
    pub(crate) fn at_layer(&mut self, layer: Option<usize>, pos_offset: usize) -> LayerHooks<'_> {
        LayerHooks {
            layer,
            pos_offset,
            hooks: self,
        }
    }
}

/// The hook points of one layer during one forward pass (see [`Hooks::at_layer`]).
pub(crate) struct LayerHooks<'h> {
    layer: Option<usize>,
    pos_offset: usize,
    hooks: &'h mut Hooks,
}

impl LayerHooks<'_> {
    fn point(&self, kind: HookKind) -> HookPoint {
        match self.layer {
            Some(layer) => HookPoint::block(layer, kind),
            None => HookPoint::global(kind),
        }
    }
    /// Passes `x` through the point `kind` of this layer: its interventions, then its capture.
    pub(crate) fn at(&mut self, kind: HookKind, x: Tensor) -> Result<Tensor> {
        let ctx = HookContext {
            point: self.point(kind),
            pos_offset: self.pos_offset,
        };
        self.hooks.run(x, ctx)
    }
    /// Whether anything is attached at `kind` (to skip computing a point nobody reads).
    pub(crate) fn is_active(&self, kind: HookKind) -> bool {
        self.hooks.is_active(self.point(kind))
    }
    /// Whether an intervention (not only a capture) is attached at `kind`.
    pub(crate) fn intervenes(&self, kind: HookKind) -> bool {
        self.hooks.intervenes(self.point(kind))
    }
}
