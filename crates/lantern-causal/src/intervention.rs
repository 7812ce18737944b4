//! Comparing the fitted graph's predictions with measured steering effects.
//!
//! The engine steers a parent state at step `t` (adds `delta` to it) and measures the
//! average change of a child state at `t + 1`; those numbers come in here as plain
//! [`ObservedEffect`]s. The prediction is the model's total one-step effect
//! ([`LinearModel::predict_effect`]): the direct lag-1 weight plus paths through
//! contemporaneous links at `t` and `t + 1`. `delta` and `observed` must be in the model's
//! units — standard deviations for the default standardised fit, raw units otherwise.
//!
//! Edges (a direct lag-1 link `from → to`) and non-edges are scored apart: for an edge the
//! question is whether the observed change has the predicted sign and whether its interval
//! over sessions excludes 0; for a non-edge whose prediction is 0, whether the interval
//! contains 0. Sign agreement is only defined where the prediction is non-zero (a zero
//! prediction has no sign to agree with).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::simulate::LinearModel;
use crate::stats::{pearson, ranks};

/// A measured effect of steering `from` by `delta` at `t` on `to` at `t + 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedEffect {
    /// Steered state.
    pub from: String,
    /// Observed state.
    pub to: String,
    /// Size of the steering perturbation.
    pub delta: f64,
    /// Observed average change of `to` at `t + 1`.
    pub observed: f64,
    /// The change in each session (its mean is `observed`); empty when unknown. Gives the
    /// 95% interval over sessions.
    #[serde(default)]
    pub per_session: Vec<f64>,
}

/// Prediction vs observation for one steered pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectComparison {
    /// Steered state.
    pub from: String,
    /// Observed state.
    pub to: String,
    /// Whether the model has a direct lag-1 link `from → to`.
    pub has_edge: bool,
    /// Model-predicted change.
    pub predicted: f64,
    /// Observed change.
    pub observed: f64,
    /// 95% Student-t interval of the observed change over sessions (`None` with fewer than
    /// two sessions).
    pub interval: Option<(f64, f64)>,
    /// `sign(predicted) == sign(observed)`; `None` where the prediction is 0.
    pub sign_agrees: Option<bool>,
}

/// Scores of one group of comparisons (edges or non-edges).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupScore {
    /// Comparisons in the group.
    pub n: usize,
    /// Share of non-zero predictions whose sign the observation shares (`None` if none).
    pub sign_agreement: Option<f64>,
    /// Comparisons with an interval.
    pub n_with_interval: usize,
    /// Intervals that exclude 0 (an effect was seen).
    pub n_interval_excludes_zero: usize,
    /// Intervals that contain the prediction.
    pub n_interval_contains_prediction: usize,
    /// Mean `|observed|`.
    pub mean_abs_observed: Option<f64>,
    /// Mean `|predicted − observed|`.
    pub mean_abs_error: Option<f64>,
}

impl GroupScore {
    fn of<'a>(rows: impl Iterator<Item = &'a EffectComparison>) -> Self {
        let rows: Vec<&EffectComparison> = rows.collect();
        let n = rows.len();
        let signed: Vec<bool> = rows.iter().filter_map(|c| c.sign_agrees).collect();
        let with: Vec<(&EffectComparison, (f64, f64))> = rows
            .iter()
            .filter_map(|c| c.interval.map(|i| (*c, i)))
            .collect();
        let mean = |f: &dyn Fn(&EffectComparison) -> f64| {
            (n > 0).then(|| rows.iter().map(|c| f(c)).sum::<f64>() / n as f64)
        };
        Self {
            n,
            sign_agreement: (!signed.is_empty())
                .then(|| signed.iter().filter(|&&b| b).count() as f64 / signed.len() as f64),
            n_with_interval: with.len(),
            n_interval_excludes_zero: with
                .iter()
                .filter(|(_, (lo, hi))| *lo > 0.0 || *hi < 0.0)
                .count(),
            n_interval_contains_prediction: with
                .iter()
                .filter(|(c, (lo, hi))| *lo <= c.predicted && c.predicted <= *hi)
                .count(),
            mean_abs_observed: mean(&|c| c.observed.abs()),
            mean_abs_error: mean(&|c| (c.predicted - c.observed).abs()),
        }
    }
}

/// Agreement between predicted and observed effects. Statistics that are undefined
/// (too few pairs, zero variance) are `None` (JSON `null`), never NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterventionCheck {
    /// One row per observed effect.
    pub comparisons: Vec<EffectComparison>,
    /// Share of rows with a non-zero prediction whose signs agree.
    pub sign_agreement: Option<f64>,
    /// Direct lag-1 edges `from → to`, scored alone.
    pub edges: GroupScore,
    /// Pairs without a direct lag-1 edge, scored alone.
    pub non_edges: GroupScore,
    /// Pearson correlation of predicted and observed.
    pub pearson: Option<f64>,
    /// Spearman correlation of predicted and observed.
    pub spearman: Option<f64>,
    /// Mean absolute error.
    pub mean_abs_error: Option<f64>,
}

/// Compares model predictions with observed steering effects.
///
/// ```
/// use lantern_causal::{check_interventions, LinearModel, ObservedEffect};
/// let names = vec!["a".to_string(), "b".to_string()];
/// let a1 = vec![vec![0.0, 0.0], vec![0.6, 0.0]]; // a(t-1) -> b(t)
/// let m = LinearModel::new(names, vec![vec![0.0; 2]; 2], vec![a1], vec![1.0; 2]).unwrap();
/// let obs = vec![
///     ObservedEffect { from: "a".into(), to: "b".into(), delta: 1.0, observed: 0.5,
///                      per_session: vec![0.4, 0.5, 0.6] },
///     ObservedEffect { from: "b".into(), to: "a".into(), delta: 1.0, observed: 0.0,
///                      per_session: vec![-0.1, 0.0, 0.1] },
/// ];
/// let c = check_interventions(&m, &obs).unwrap();
/// // Only the edge has a non-zero prediction, so only it has a sign to agree with.
/// assert_eq!(c.sign_agreement, Some(1.0));
/// assert_eq!(c.comparisons[1].sign_agrees, None);
/// assert_eq!((c.edges.n_interval_excludes_zero, c.non_edges.n_interval_excludes_zero), (1, 0));
/// assert!((c.comparisons[0].predicted - 0.6).abs() < 1e-12);
/// assert!(c.comparisons[0].has_edge && !c.comparisons[1].has_edge);
/// ```
pub fn check_interventions(
    model: &LinearModel,
    observed: &[ObservedEffect],
) -> Result<InterventionCheck> {
    let mut comparisons = Vec::with_capacity(observed.len());
    for o in observed {
        if !o.observed.is_finite() || o.per_session.iter().any(|v| !v.is_finite()) {
            return Err(crate::error::CausalError::InvalidConfig(format!(
                "observed effect {} -> {} is not finite",
                o.from, o.to
            )));
        }
        let predicted = model.predict_effect(&o.from, &o.to, o.delta)?;
        let (i, j) = (model.index_of(&o.from)?, model.index_of(&o.to)?);
        let has_edge = model.lagged.first().is_some_and(|a| a[j][i] != 0.0);
        let sign = |v: f64| {
            if v > 0.0 {
                1
            } else if v < 0.0 {
                -1
            } else {
                0
            }
        };
        comparisons.push(EffectComparison {
            from: o.from.clone(),
            to: o.to.clone(),
            has_edge,
            predicted,
            observed: o.observed,
            interval: crate::stats::mean_interval(&o.per_session, 0.95).1,
            sign_agrees: (sign(predicted) != 0).then(|| sign(predicted) == sign(o.observed)),
        });
    }
    let n = comparisons.len();
    let pred: Vec<f64> = comparisons.iter().map(|c| c.predicted).collect();
    let obs: Vec<f64> = comparisons.iter().map(|c| c.observed).collect();
    let (sign_agreement, mean_abs_error) = if n == 0 {
        (None, None)
    } else {
        (
            GroupScore::of(comparisons.iter()).sign_agreement,
            Some(
                pred.iter()
                    .zip(&obs)
                    .map(|(p, o)| (p - o).abs())
                    .sum::<f64>()
                    / n as f64,
            ),
        )
    };
    Ok(InterventionCheck {
        sign_agreement,
        edges: GroupScore::of(comparisons.iter().filter(|c| c.has_edge)),
        non_edges: GroupScore::of(comparisons.iter().filter(|c| !c.has_edge)),
        pearson: pearson(&pred, &obs),
        spearman: pearson(&ranks(&pred), &ranks(&obs)),
        mean_abs_error,
        comparisons,
    })
}
