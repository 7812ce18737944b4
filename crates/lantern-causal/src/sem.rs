//! Linear structural equations fitted on discovered parents.
//!
//! For every state `j` with parents `P_j = {X_i(t − τ)}` (lagged and contemporaneous),
//! `X_j(t) = c_j + Σ_{(i,τ) ∈ P_j} w_{ij}^{(τ)} X_i(t − τ) + ε_j(t)` is fitted by ordinary
//! least squares ([`crate::linalg::Qr`]) on all rows of all sessions (no lag crosses a
//! session). With `standardize = true` (default) every state is first z-scored with its
//! global mean and standard deviation, so weights are standardised coefficients
//! ("a 1 sd rise of the parent predicts a `w` sd rise of the child") and comparable across
//! edges; because the same scaling applies at every lag, the spectral radius of the lag-1
//! weight matrix is unchanged by standardisation. Parents that are exact linear
//! combinations of other parents (e.g. duplicated series) get weight 0 and a warning.

use serde::{Deserialize, Serialize};

use crate::error::{CausalError, Result};
use crate::lagged::LaggedData;
use crate::linalg::Qr;
use crate::series::TimeSeries;

/// One term `weight · source(t − lag)` of a structural equation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// Parent state name.
    pub source: String,
    /// Lag of the parent (0 = contemporaneous).
    pub lag: usize,
    /// Fitted coefficient.
    pub weight: f64,
}

/// `target(t) = intercept + Σ terms + noise`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StructuralEquation {
    /// Target state name.
    pub target: String,
    /// Fitted intercept (≈ 0 when standardised).
    pub intercept: f64,
    /// Parent terms.
    pub terms: Vec<Term>,
    /// Coefficient of determination in `[0, 1]`.
    pub r_squared: f64,
    /// Residual standard deviation (`√(SSR / (n − rank))`).
    pub residual_sd: f64,
}

/// All fitted equations plus the scaling used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SemFit {
    /// Whether states were z-scored before fitting.
    pub standardized: bool,
    /// Global mean of every state.
    pub means: Vec<f64>,
    /// Global standard deviation of every state.
    pub sds: Vec<f64>,
    /// Rows used in the fits.
    pub n_samples: usize,
    /// One equation per state, in state order.
    pub equations: Vec<StructuralEquation>,
    /// Non-fatal issues (dependent parents).
    pub warnings: Vec<String>,
}

/// Fits one equation per state. `parents[j]` lists `(state, lag)` parents of state `j`.
///
/// ```
/// use lantern_causal::{sem::fit_sem, Session, TimeSeries};
/// // y(t) = 2 x(t-1) exactly (raw units).
/// let x = [0.3, -1.0, 0.5, 2.0, -0.7, 0.1, 1.2, -0.4];
/// let rows: Vec<Vec<f64>> = (0..x.len())
///     .map(|t| vec![x[t], if t == 0 { 0.0 } else { 2.0 * x[t - 1] }])
///     .collect();
/// let ts = TimeSeries::new(vec!["x".into(), "y".into()], vec![Session::new("0", rows)]).unwrap();
/// let fit = fit_sem(&ts, &[vec![], vec![(0, 1)]], false).unwrap();
/// assert!((fit.equations[1].terms[0].weight - 2.0).abs() < 1e-10);
/// assert!((fit.equations[1].r_squared - 1.0).abs() < 1e-10);
/// ```
pub fn fit_sem(
    series: &TimeSeries,
    parents: &[Vec<(usize, usize)>],
    standardize: bool,
) -> Result<SemFit> {
    let n_vars = series.n_vars();
    if parents.len() != n_vars {
        return Err(CausalError::Dimension(format!(
            "{} parent lists for {n_vars} states",
            parents.len()
        )));
    }
    if parents.iter().flatten().any(|&(i, _)| i >= n_vars) {
        return Err(CausalError::Dimension("parent index out of range".into()));
    }
    series.check_finite()?;
    let window = parents.iter().flatten().map(|p| p.1).max().unwrap_or(0);
    let (means, sds) = series.moments();
    let (zero, one) = (vec![0.0; n_vars], vec![1.0; n_vars]);
    let affine = if standardize {
        (means.as_slice(), sds.as_slice())
    } else {
        (zero.as_slice(), one.as_slice())
    };
    let data = LaggedData::new(series, window, Some(affine));
    let n = data.n;
    if n < 2 {
        return Err(CausalError::TooFewSamples {
            available: n,
            needed: 2,
            cond_dim: 0,
            lost_per_session: window,
        });
    }
    let mut warnings = Vec::new();
    let mut equations = Vec::with_capacity(n_vars);
    for (j, pj) in parents.iter().enumerate() {
        let mut cols = vec![vec![1.0; n]];
        cols.extend(pj.iter().map(|&p| data.col(p).to_vec()));
        let qr = Qr::new(&cols)?;
        let y = data.col((j, 0));
        let coef = qr.solve(y)?;
        let resid = qr.residuals(y)?;
        for k in qr.dependent_columns().into_iter().filter(|&k| k > 0) {
            let (i, lag) = pj[k - 1];
            warnings.push(format!(
                "parent {}(t-{lag}) of {} is linearly dependent on the other parents; weight set to 0",
                series.names[i], series.names[j]
            ));
        }
        let ssr: f64 = resid.iter().map(|r| r * r).sum();
        let mean_y = y.iter().sum::<f64>() / n as f64;
        let sst: f64 = y.iter().map(|v| (v - mean_y) * (v - mean_y)).sum();
        let r_squared = if sst > 0.0 {
            (1.0 - ssr / sst).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let resid_dof = n.saturating_sub(qr.rank());
        let residual_sd = if resid_dof > 0 {
            (ssr / resid_dof as f64).sqrt()
        } else {
            0.0
        };
        equations.push(StructuralEquation {
            target: series.names[j].clone(),
            intercept: coef[0],
            terms: pj
                .iter()
                .zip(&coef[1..])
                .map(|(&(i, lag), &w)| Term {
                    source: series.names[i].clone(),
                    lag,
                    weight: w,
                })
                .collect(),
            r_squared,
            residual_sd,
        });
    }
    Ok(SemFit {
        standardized: standardize,
        means,
        sds,
        n_samples: n,
        equations,
        warnings,
    })
}
