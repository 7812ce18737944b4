//! Non-finite activations: a NaN or Inf (from a corrupt weight, an overflow, or an intervention)
//! must stop a run with the hook point where it first appears, not flow silently into results.
//!
//! Checking every hook point on every run would cost a scan of every activation, so results are
//! checked where they are made (the logits, or whatever a caller reads) with [`ensure_finite`];
//! only when that finds a non-finite value is the forward pass run again, capturing every hook
//! point, and scanned in forward order by [`first_non_finite`].

use candle_core::{DType, Tensor};

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::hooks::{all_points, HookKind, HookPoint};
use crate::intervention::Hooks;
use crate::model::Model;
use crate::run::{Logits, RunOptions};

/// Where non-finite values first appear in a forward pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonFiniteAt {
    pub point: HookPoint,
    /// Non-finite values at that point, and its size.
    pub count: usize,
    pub total: usize,
    /// Whether any of them is a NaN (else they are all ±Inf).
    pub has_nan: bool,
}

impl std::fmt::Display for NonFiniteAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` ({} of {} values are {})",
            self.point,
            self.count,
            self.total,
            if self.has_nan { "NaN or Inf" } else { "Inf" }
        )
    }
}

/// `(non-finite values, any NaN, size)` of a tensor. At `hook_attn_scores` the causal mask adds
/// -Inf on purpose, so there only NaN and +Inf count.
pub fn count_non_finite(t: &Tensor, kind: HookKind) -> Result<(usize, bool, usize)> {
    let values = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    let masked_ok = kind == HookKind::AttnScores;
    let (mut count, mut nan) = (0, false);
    for v in &values {
        if v.is_nan() {
            count += 1;
            nan = true;
        } else if v.is_infinite() && !(masked_ok && *v < 0.0) {
            count += 1;
        }
    }
    Ok((count, nan, values.len()))
}

/// Runs `batch` once more with `hooks`' interventions, capturing every hook point, and returns the
/// first point in forward order that holds a non-finite value (`None` when all are finite).
pub fn first_non_finite(
    model: &Model,
    batch: &Batch,
    hooks: &Hooks,
) -> Result<Option<NonFiniteAt>> {
    let points = all_points(model.config());
    let mut probe = hooks.clone().capture_all(points.iter().copied());
    probe.take_cache();
    model.run(batch, &mut probe, RunOptions::default())?;
    for point in points {
        let Some(t) = probe.cache.get(point) else {
            continue;
        };
        let (count, has_nan, total) = count_non_finite(t, point.kind)?;
        if count > 0 {
            return Ok(Some(NonFiniteAt {
                point,
                count,
                total,
                has_nan,
            }));
        }
    }
    Ok(None)
}

/// Checks a result tensor computed from `batch` under `hooks` (typically its logits); when it holds
/// a NaN or Inf, fails with [`Error::NonFinite`] naming the first hook point where one appears.
pub fn ensure_finite(model: &Model, batch: &Batch, hooks: &Hooks, result: &Tensor) -> Result<()> {
    if count_non_finite(result, HookKind::Logits)?.0 == 0 {
        return Ok(());
    }
    let first = first_non_finite(model, batch, hooks)?;
    Err(Error::NonFinite(match first {
        Some(at) => format!(
            "first at {at}; a weight feeding that point (or an intervention on it) is likely corrupt"
        ),
        None => "in the result, though every hook point of the forward pass is finite".into(),
    }))
}

/// One forward pass over `batch` with `hooks`, failing with [`Error::NonFinite`] when the logits
/// hold a NaN or Inf: a check before a long sweep whose own runs return no logits.
pub fn check_forward(model: &Model, batch: &Batch, hooks: &Hooks) -> Result<()> {
    let mut probe = hooks.clone();
    probe.take_cache();
    let logits = model
        .run(
            batch,
            &mut probe,
            RunOptions::default().logits(Logits::Last),
        )?
        .logits
        .ok_or_else(|| Error::invalid("the run computed no logits"))?;
    ensure_finite(model, batch, hooks, &logits)
}
