//! Conditional-independence (CI) tests `X ⊥ Y | Z`.
//!
//! * [`ParCorr`]: partial correlation. `X` and `Y` are regressed on `Z` (plus an intercept)
//!   by least squares ([`crate::linalg::Qr`]); the statistic is the Pearson correlation `r`
//!   of the residuals and the two-sided p-value comes from Student's t with
//!   `dof = n − |Z| − 2`, `t = r √(dof / (1 − r²))`, where `|Z|` is the numerical rank of
//!   the conditioning set (duplicated columns count once). This is the `ParCorr` test of
//!   Runge et al. (2019) and the default of Lee et al. (2025).
//! * [`RankParCorr`]: Spearman partial correlation — every variable is replaced by its
//!   ranks first, then [`ParCorr`] is applied. It detects monotone nonlinear dependencies
//!   (e.g. `tanh` links) and is robust to outliers; its p-value uses the same t
//!   approximation.
//!
//! Degenerate cases never yield NaN: when a residual has (numerically) zero variance —
//! `X` or `Y` is a linear function of `Z` — no dependence can be detected and the result
//! is `statistic = 0, p_value = 1`.

use serde::{Deserialize, Serialize};

use crate::error::{CausalError, Result};
use crate::linalg::Qr;
use crate::stats::{ranks, student_t_two_sided_p};

/// A per-column data transform (see [`CiTest::column_transform`]).
pub type ColumnTransform = fn(&[f64]) -> Vec<f64>;

/// Outcome of one conditional-independence test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CiResult {
    /// Test statistic (for the partial-correlation tests: the partial correlation, in `[-1, 1]`).
    pub statistic: f64,
    /// Two-sided p-value in `[0, 1]` (small = evidence of dependence).
    pub p_value: f64,
    /// Residual degrees of freedom used.
    pub dof: usize,
}

/// A conditional-independence test `X ⊥ Y | Z` on paired samples.
///
/// Implementors must return finite statistics and p-values in `[0, 1]` for finite inputs.
///
/// ```
/// use lantern_causal::ci::{CiTest, ParCorr};
/// let z: Vec<f64> = (0..50).map(|i| (i as f64 * 0.37).sin()).collect();
/// let x: Vec<f64> = z.iter().enumerate().map(|(i, v)| v + 0.1 * ((i * 7 % 11) as f64 - 5.0)).collect();
/// let y: Vec<f64> = z.iter().enumerate().map(|(i, v)| v + 0.1 * ((i * 5 % 13) as f64 - 6.0)).collect();
/// let marginal = ParCorr.test(&x, &y, &[]).unwrap();
/// let partial = ParCorr.test(&x, &y, &[&z]).unwrap();
/// assert!(marginal.p_value < 1e-6);   // x and y share the common cause z ...
/// assert!(partial.statistic.abs() < marginal.statistic.abs()); // ... which explains them
/// ```
pub trait CiTest: std::fmt::Debug + Send + Sync {
    /// Short name for reports.
    fn name(&self) -> &'static str;

    /// Tests `x ⊥ y | z`; every slice has the same length `n`.
    fn test(&self, x: &[f64], y: &[f64], z: &[&[f64]]) -> Result<CiResult>;

    /// Minimum number of samples for a conditioning set of size `cond_dim`.
    fn min_samples(&self, cond_dim: usize) -> usize {
        cond_dim + 3
    }

    /// If this test equals a partial-correlation test on per-column transformed data,
    /// that transform. Discovery then precomputes one [`CorrelationMatrix`] of the
    /// transformed columns and answers every test from it (much faster, same results).
    /// Default `None`: [`CiTest::test`] is called for every test.
    fn column_transform(&self) -> Option<ColumnTransform> {
        None
    }
}

/// Which built-in CI test to use (serialisable, for configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CiTestKind {
    /// [`ParCorr`] (linear-Gaussian).
    #[default]
    ParCorr,
    /// [`RankParCorr`] (monotone nonlinear).
    RankParCorr,
}

impl std::str::FromStr for CiTestKind {
    type Err = CausalError;
    /// `parcorr` (linear) or `rank` (Spearman, monotone nonlinear).
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "parcorr" => Ok(CiTestKind::ParCorr),
            "rank" => Ok(CiTestKind::RankParCorr),
            other => Err(CausalError::InvalidConfig(format!(
                "unknown conditional-independence test `{other}` (parcorr, rank)"
            ))),
        }
    }
}

impl CiTestKind {
    /// Instantiates the test.
    pub fn build(self) -> Box<dyn CiTest> {
        match self {
            CiTestKind::ParCorr => Box::new(ParCorr),
            CiTestKind::RankParCorr => Box::new(RankParCorr),
        }
    }
}

/// Partial-correlation test (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct ParCorr;

/// Spearman rank partial-correlation test (see the module docs).
///
/// ```
/// use lantern_causal::ci::{CiTest, RankParCorr};
/// let x: Vec<f64> = (0..40).map(|i| i as f64 / 10.0 - 2.0).collect();
/// let y: Vec<f64> = x.iter().map(|v| (3.0 * v).tanh()).collect(); // monotone, nonlinear
/// assert!(RankParCorr.test(&x, &y, &[]).unwrap().statistic > 0.99);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RankParCorr;

impl CiTest for ParCorr {
    fn name(&self) -> &'static str {
        "par_corr"
    }

    fn test(&self, x: &[f64], y: &[f64], z: &[&[f64]]) -> Result<CiResult> {
        partial_correlation(x, y, z)
    }

    fn column_transform(&self) -> Option<ColumnTransform> {
        Some(|c| c.to_vec())
    }
}

impl CiTest for RankParCorr {
    fn name(&self) -> &'static str {
        "rank_par_corr"
    }

    fn test(&self, x: &[f64], y: &[f64], z: &[&[f64]]) -> Result<CiResult> {
        let rz: Vec<Vec<f64>> = z.iter().map(|c| ranks(c)).collect();
        let rz_refs: Vec<&[f64]> = rz.iter().map(Vec::as_slice).collect();
        partial_correlation(&ranks(x), &ranks(y), &rz_refs)
    }

    fn column_transform(&self) -> Option<ColumnTransform> {
        Some(ranks)
    }
}

fn partial_correlation(x: &[f64], y: &[f64], z: &[&[f64]]) -> Result<CiResult> {
    let n = x.len();
    if y.len() != n || z.iter().any(|c| c.len() != n) {
        return Err(CausalError::Dimension(
            "CI test inputs have different lengths".into(),
        ));
    }
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return Err(CausalError::Numerical("non-finite value in CI test".into()));
    }
    let needed = z.len() + 3;
    if n < needed {
        return Err(CausalError::TooFewSamples {
            available: n,
            needed,
            cond_dim: z.len(),
            lost_per_session: 0,
        });
    }
    let mut cols = Vec::with_capacity(z.len() + 1);
    cols.push(vec![1.0; n]);
    cols.extend(z.iter().map(|c| c.to_vec()));
    let qr = Qr::new(&cols)?;
    let rx = qr.residuals(x)?;
    let ry = qr.residuals(y)?;
    let dof = n.saturating_sub(qr.rank() + 1);
    let null = CiResult {
        statistic: 0.0,
        p_value: 1.0,
        dof,
    };
    let ss = |v: &[f64]| v.iter().map(|t| t * t).sum::<f64>();
    let centred_ss = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / n as f64;
        v.iter().map(|t| (t - m) * (t - m)).sum::<f64>()
    };
    let (sxx, syy) = (ss(&rx), ss(&ry));
    let (tx, ty) = (centred_ss(x), centred_ss(y));
    if dof == 0 || sxx <= 1e-20 * tx || syy <= 1e-20 * ty || tx == 0.0 || ty == 0.0 {
        return Ok(null);
    }
    let sxy: f64 = rx.iter().zip(&ry).map(|(a, b)| a * b).sum();
    Ok(result_from_r(sxy / (sxx.sqrt() * syy.sqrt()), dof))
}

/// t-test of a (partial) correlation `r` with `dof` residual degrees of freedom.
fn result_from_r(r: f64, dof: usize) -> CiResult {
    if !r.is_finite() || dof == 0 {
        return CiResult {
            statistic: 0.0,
            p_value: 1.0,
            dof,
        };
    }
    let r = r.clamp(-1.0, 1.0);
    let one_minus = 1.0 - r * r;
    let p_value = if one_minus <= 0.0 {
        0.0
    } else {
        let t = r * (dof as f64 / one_minus).sqrt();
        student_t_two_sided_p(t, dof as f64)
    };
    CiResult {
        statistic: r,
        p_value: p_value.clamp(0.0, 1.0),
        dof,
    }
}

/// Variance ratio below which a variable counts as explained by the conditioning set in
/// [`CorrelationMatrix`] (a residual standard deviation of 1e-6 of the original).
pub const GRAM_RANK_TOL: f64 = 1e-12;

/// Correlation matrix of fixed columns, answering partial-correlation tests between them
/// in `O(|Z|³)` instead of `O(n·|Z|²)`.
///
/// Discovery runs every test on the same rows, so for tests that are a partial correlation
/// of per-column transformed data ([`CiTest::column_transform`]: identity for
/// [`ParCorr`], ranks for [`RankParCorr`]) it computes this matrix once. Conditioning
/// variables are eliminated by a pivoted Cholesky (Schur complement) step; a variable
/// whose remaining variance is below [`GRAM_RANK_TOL`] of its own is treated as linearly
/// dependent and skipped. Results equal the regression path up to rounding, except in
/// near-collinear cases between the two tolerances.
///
/// ```
/// use lantern_causal::ci::{CiTest, CorrelationMatrix, ParCorr};
/// let x: Vec<f64> = (0..30).map(|i| ((i * 7) % 11) as f64).collect();
/// let z: Vec<f64> = (0..30).map(|i| ((i * 5) % 13) as f64).collect();
/// let y: Vec<f64> = x.iter().zip(&z).map(|(a, b)| a + 2.0 * b + ((a * b) % 3.0)).collect();
/// let cm = CorrelationMatrix::new(&[x.clone(), y.clone(), z.clone()]).unwrap();
/// let fast = cm.test(0, 1, &[2]).unwrap();
/// let slow = ParCorr.test(&x, &y, &[&z]).unwrap();
/// assert!((fast.statistic - slow.statistic).abs() < 1e-10 && fast.dof == slow.dof);
/// ```
#[derive(Debug, Clone)]
pub struct CorrelationMatrix {
    n: usize,
    corr: Vec<Vec<f64>>,
}

impl CorrelationMatrix {
    /// Computes the (population) correlation matrix; constant columns get zero variance.
    pub fn new(columns: &[Vec<f64>]) -> Result<Self> {
        let n = columns.first().map_or(0, Vec::len);
        if columns.iter().any(|c| c.len() != n) {
            return Err(CausalError::Dimension("columns of unequal length".into()));
        }
        if columns.iter().flatten().any(|v| !v.is_finite()) {
            return Err(CausalError::Numerical("non-finite value in CI test".into()));
        }
        let z: Vec<Vec<f64>> = columns
            .iter()
            .map(|c| {
                let m = c.iter().sum::<f64>() / n.max(1) as f64;
                let ss = c.iter().map(|v| (v - m) * (v - m)).sum::<f64>();
                let sd = (ss / n.max(1) as f64).sqrt();
                let constant = sd.is_nan()
                    || sd <= 1e-300
                    || ss <= 1e-24 * c.iter().map(|v| v * v).sum::<f64>();
                c.iter()
                    .map(|v| if constant { 0.0 } else { (v - m) / sd })
                    .collect()
            })
            .collect();
        let k = z.len();
        let mut corr = vec![vec![0.0; k]; k];
        for a in 0..k {
            for b in a..k {
                let v = z[a].iter().zip(&z[b]).map(|(p, q)| p * q).sum::<f64>() / n.max(1) as f64;
                corr[a][b] = v;
                corr[b][a] = v;
            }
        }
        Ok(Self { n, corr })
    }

    /// Number of rows.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Partial-correlation test of columns `x` and `y` given columns `z`.
    pub fn test(&self, x: usize, y: usize, z: &[usize]) -> Result<CiResult> {
        let k = self.corr.len();
        if x >= k || y >= k || z.iter().any(|&c| c >= k) {
            return Err(CausalError::Dimension("column index out of range".into()));
        }
        let d = z.len();
        if self.n < d + 3 {
            return Err(CausalError::TooFewSamples {
                available: self.n,
                needed: d + 3,
                cond_dim: d,
                lost_per_session: 0,
            });
        }
        // Order: z_1..z_d, x, y.
        let idx: Vec<usize> = z.iter().copied().chain([x, y]).collect();
        let mut m: Vec<Vec<f64>> = idx
            .iter()
            .map(|&a| idx.iter().map(|&b| self.corr[a][b]).collect())
            .collect();
        let orig: Vec<f64> = (0..d + 2).map(|a| m[a][a]).collect();
        let mut eliminated = vec![false; d + 2];
        let mut rank = 0;
        loop {
            let pivot = (0..d)
                .filter(|&c| !eliminated[c] && orig[c] > 0.0)
                .map(|c| (c, m[c][c] / orig[c]))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let Some((p, ratio)) = pivot else { break };
            if ratio <= GRAM_RANK_TOL {
                break;
            }
            eliminated[p] = true;
            rank += 1;
            let piv = m[p][p];
            let row_p = m[p].clone();
            for a in (0..d + 2).filter(|&a| !eliminated[a]) {
                let f = m[a][p] / piv;
                if f != 0.0 {
                    for b in (0..d + 2).filter(|&b| !eliminated[b]) {
                        m[a][b] -= f * row_p[b];
                    }
                }
            }
        }
        let dof = self.n.saturating_sub(rank + 2);
        let (sxx, syy, sxy) = (m[d][d], m[d + 1][d + 1], m[d][d + 1]);
        let explained = |s: f64, o: f64| o.is_nan() || o <= 0.0 || s <= GRAM_RANK_TOL * o;
        if explained(sxx, orig[d]) || explained(syy, orig[d + 1]) {
            return Ok(CiResult {
                statistic: 0.0,
                p_value: 1.0,
                dof,
            });
        }
        Ok(result_from_r(sxy / (sxx.sqrt() * syy.sqrt()), dof))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64 uniforms in [-0.5, 0.5).
    fn lcg(n: usize, seed: u64) -> Vec<f64> {
        (0..n as u64)
            .map(|i| {
                let mut z = seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(i.wrapping_mul(0xBF58_476D_1CE4_E5B9));
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                (z >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    #[test]
    fn matches_closed_form_partial_correlation() {
        let n = 200;
        let z = lcg(n, 1);
        let e1 = lcg(n, 2);
        let e2 = lcg(n, 3);
        let x: Vec<f64> = z.iter().zip(&e1).map(|(a, b)| a + b).collect();
        let y: Vec<f64> = z
            .iter()
            .zip(&e2)
            .zip(&e1)
            .map(|((a, b), c)| a + b + 0.5 * c)
            .collect();
        let r = |a: &[f64], b: &[f64]| crate::stats::pearson(a, b).unwrap();
        let (rxy, rxz, ryz) = (r(&x, &y), r(&x, &z), r(&y, &z));
        let expected = (rxy - rxz * ryz) / ((1.0 - rxz * rxz) * (1.0 - ryz * ryz)).sqrt();
        let got = ParCorr.test(&x, &y, &[&z]).unwrap();
        assert!((got.statistic - expected).abs() < 1e-12);
        assert_eq!(got.dof, n - 3);
        let t = expected * ((n - 3) as f64 / (1.0 - expected * expected)).sqrt();
        assert!((got.p_value - student_t_two_sided_p(t, (n - 3) as f64)).abs() < 1e-14);
    }

    #[test]
    fn degenerate_inputs_never_nan() {
        let z = lcg(30, 4);
        // x is a copy of a conditioning column -> zero residual -> p = 1.
        let y = lcg(30, 5);
        let res = ParCorr.test(&z, &y, &[&z, &z]).unwrap();
        assert_eq!((res.statistic, res.p_value), (0.0, 1.0));
        // Perfectly correlated x, y -> p = 0, r = 1.
        let res = ParCorr.test(&y, &y, &[]).unwrap();
        assert!((res.statistic - 1.0).abs() < 1e-12 && res.p_value == 0.0);
        // Constant x.
        let res = RankParCorr.test(&[1.0; 30], &y, &[]).unwrap();
        assert_eq!(res.p_value, 1.0);
        // Too few samples names the minimum.
        let err = ParCorr
            .test(&y[..4], &y[..4], &[&z[..4], &z[..4]])
            .unwrap_err();
        assert!(matches!(err, CausalError::TooFewSamples { needed: 5, .. }));
    }

    #[test]
    fn correlation_matrix_matches_regression_path() {
        let n = 120;
        let a = lcg(n, 20);
        let b = lcg(n, 21);
        let c: Vec<f64> = a
            .iter()
            .zip(lcg(n, 22))
            .map(|(x, e)| x.powi(3) + 0.3 * e)
            .collect();
        let d: Vec<f64> = b
            .iter()
            .zip(&c)
            .map(|(x, y)| x - 2.0 * y + 0.1 * x * y)
            .collect();
        let constant = vec![2.5; n];
        let cols = vec![
            a.clone(),
            b.clone(),
            c.clone(),
            d.clone(),
            a.clone(),
            constant.clone(),
        ];
        let cm = CorrelationMatrix::new(&cols).unwrap();
        let ranked: Vec<Vec<f64>> = cols.iter().map(|c| ranks(c)).collect();
        let cm_rank = CorrelationMatrix::new(&ranked).unwrap();
        let cases: Vec<(usize, usize, Vec<usize>)> = vec![
            (0, 1, vec![]),
            (2, 3, vec![1]),
            (0, 3, vec![1, 2]),
            (2, 3, vec![0, 4, 1]), // duplicated conditioning column
            (0, 3, vec![5, 2]),    // constant conditioning column
            (4, 2, vec![0]),       // x explained by z
            (5, 1, vec![]),        // constant x
        ];
        for (x, y, z) in cases {
            let zc: Vec<&[f64]> = z.iter().map(|&k| cols[k].as_slice()).collect();
            for (test, fast) in [(&ParCorr as &dyn CiTest, &cm), (&RankParCorr, &cm_rank)] {
                let slow = test.test(&cols[x], &cols[y], &zc).unwrap();
                let quick = fast.test(x, y, &z).unwrap();
                assert!(
                    (slow.statistic - quick.statistic).abs() < 1e-9
                        && (slow.p_value - quick.p_value).abs() < 1e-9
                        && slow.dof == quick.dof,
                    "{} x={x} y={y} z={z:?}: {slow:?} vs {quick:?}",
                    test.name()
                );
            }
        }
        assert!(cm.test(0, 9, &[]).is_err());
    }

    #[test]
    fn independence_gives_uniformish_p() {
        // Under independence, p-values should rarely be tiny.
        let mut small = 0;
        for s in 0..200u64 {
            let x = lcg(100, 10 + 2 * s);
            let y = lcg(100, 11 + 2 * s);
            if ParCorr.test(&x, &y, &[]).unwrap().p_value < 0.05 {
                small += 1;
            }
        }
        assert!(small < 25, "{small} of 200 rejections at 5%");
    }
}
