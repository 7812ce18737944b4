//! Comparing the fitted graph's predictions with measured steering effects.
//!
//! The engine steers a parent state at step `t` (adds `delta` to it) and measures the
//! average change of a child state at `t + 1`; those numbers come in here as plain
//! [`ObservedEffect`]s. The prediction is the model's total one-step effect
//! ([`LinearModel::predict_effect`]): the direct lag-1 weight plus paths through
//! contemporaneous links at `t` and `t + 1`. `delta` and `observed` must be in the model's
//! units — standard deviations for the default standardised fit, raw units otherwise.

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
    /// `sign(predicted) == sign(observed)` (0 counts as its own sign).
    pub sign_agrees: bool,
}

/// Agreement between predicted and observed effects. Statistics that are undefined
/// (too few pairs, zero variance) are `None` (JSON `null`), never NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterventionCheck {
    /// One row per observed effect.
    pub comparisons: Vec<EffectComparison>,
    /// Share of rows whose signs agree.
    pub sign_agreement: Option<f64>,
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
///     ObservedEffect { from: "a".into(), to: "b".into(), delta: 1.0, observed: 0.5 },
///     ObservedEffect { from: "b".into(), to: "a".into(), delta: 1.0, observed: 0.0 },
/// ];
/// let c = check_interventions(&m, &obs).unwrap();
/// assert_eq!(c.sign_agreement, Some(1.0));
/// assert!((c.comparisons[0].predicted - 0.6).abs() < 1e-12);
/// assert!(c.comparisons[0].has_edge && !c.comparisons[1].has_edge);
/// ```
pub fn check_interventions(
    model: &LinearModel,
    observed: &[ObservedEffect],
) -> Result<InterventionCheck> {
    let mut comparisons = Vec::with_capacity(observed.len());
    for o in observed {
        if !o.observed.is_finite() {
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
            sign_agrees: sign(predicted) == sign(o.observed),
        });
    }
    let n = comparisons.len();
    let pred: Vec<f64> = comparisons.iter().map(|c| c.predicted).collect();
    let obs: Vec<f64> = comparisons.iter().map(|c| c.observed).collect();
    let (sign_agreement, mean_abs_error) = if n == 0 {
        (None, None)
    } else {
        (
            Some(comparisons.iter().filter(|c| c.sign_agrees).count() as f64 / n as f64),
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
        pearson: pearson(&pred, &obs),
        spearman: pearson(&ranks(&pred), &ranks(&obs)),
        mean_abs_error,
        comparisons,
    })
}
