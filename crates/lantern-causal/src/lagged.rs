//! Lagged sample matrix: one column per `(state, lag)` pair, rows = target time points.
//!
//! For a window `W`, every session of length `T ≥ W + 1` contributes the target steps
//! `t = W..T`; column `(i, τ)` holds `x_i(t − τ)` for `τ = 0..=W`. Using the same rows for
//! every test keeps all tests of one run on an identical sample (as tigramite does by
//! cutting `2·τ_max` leading steps). No row mixes two sessions.

use crate::series::TimeSeries;

/// A variable in the time-unrolled graph: state `var` at time `t − lag`.
pub(crate) type Node = (usize, usize);

#[derive(Debug, Clone)]
pub(crate) struct LaggedData {
    pub n_vars: usize,
    pub window: usize,
    pub n: usize,
    cols: Vec<Vec<f64>>,
}

impl LaggedData {
    /// Builds the lagged columns. With `affine = Some((means, sds))` every state is mapped
    /// to `(x − mean) / sd` (sds of 0 are left unscaled); otherwise each column is
    /// z-scored on its own (CI tests are affine invariant, this only aids conditioning).
    pub fn new(series: &TimeSeries, window: usize, affine: Option<(&[f64], &[f64])>) -> Self {
        let n_vars = series.n_vars();
        let mut cols = vec![Vec::new(); n_vars * (window + 1)];
        for s in &series.sessions {
            for t in window..s.values.len() {
                for lag in 0..=window {
                    let row = &s.values[t - lag];
                    for (var, &v) in row.iter().enumerate().take(n_vars) {
                        cols[lag * n_vars + var].push(v);
                    }
                }
            }
        }
        let n = cols.first().map_or(0, Vec::len);
        match affine {
            Some((means, sds)) => {
                for (k, col) in cols.iter_mut().enumerate() {
                    let var = k % n_vars.max(1);
                    let sd = if sds[var] > 0.0 { sds[var] } else { 1.0 };
                    col.iter_mut().for_each(|v| *v = (*v - means[var]) / sd);
                }
            }
            None => {
                for col in &mut cols {
                    let m = col.iter().sum::<f64>() / n.max(1) as f64;
                    let var = col.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n.max(1) as f64;
                    let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
                    col.iter_mut().for_each(|v| *v = (*v - m) / sd);
                }
            }
        }
        Self {
            n_vars,
            window,
            n,
            cols,
        }
    }

    /// Index of node `(var, lag)` in [`Self::columns`].
    pub fn index(&self, (var, lag): Node) -> usize {
        lag * self.n_vars + var
    }

    /// Column of state `var` at lag `lag` (`lag <= window`).
    pub fn col(&self, node: Node) -> &[f64] {
        &self.cols[self.index(node)]
    }

    /// All columns, ordered by `lag * n_vars + var`.
    pub fn columns(&self) -> &[Vec<f64>] {
        &self.cols
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Session;

    #[test]
    fn lags_never_cross_sessions() {
        let s1 = Session::new("a", vec![vec![1.0], vec![2.0], vec![3.0]]);
        let s2 = Session::new("b", vec![vec![10.0], vec![20.0]]);
        let ts = TimeSeries::new(vec!["x".into()], vec![s1, s2]).unwrap();
        let d = LaggedData::new(&ts, 1, Some((&[0.0], &[1.0])));
        assert_eq!(d.n, 3);
        assert_eq!(d.col((0, 0)), &[2.0, 3.0, 20.0]);
        assert_eq!(d.col((0, 1)), &[1.0, 2.0, 10.0]);
    }
}
