//! Estimation results and progress reporting.

use serde::Serialize;

/// Shapley values of all players, as produced by every estimator.
///
/// Serialises to JSON with exactly these field names.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShapleyResult {
    /// Player names, in player order.
    pub players: Vec<String>,
    /// Estimated Shapley value of each player.
    pub values: Vec<f64>,
    /// Standard error of each estimate (all `0` for exact results).
    pub std_errors: Vec<f64>,
    /// Worth of the empty coalition `v(∅)`.
    pub v_empty: f64,
    /// Worth of the grand coalition `v(N)`.
    pub v_full: f64,
    /// Distinct coalitions evaluated (model evaluations).
    pub evaluations: usize,
    /// `"exact"`, `"permutation"` or `"kernel"`.
    pub method: String,
}

impl ShapleyResult {
    /// `sum(values) - (v_full - v_empty)`: zero for efficient estimates.
    pub fn efficiency_gap(&self) -> f64 {
        self.values.iter().sum::<f64>() - (self.v_full - self.v_empty)
    }
}

/// Pairwise Shapley interaction indices (Grabisch & Roubens 1999).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InteractionResult {
    /// Player names, in player order.
    pub players: Vec<String>,
    /// `n × n` symmetric matrix: `matrix[i][j]` is the interaction index
    /// `I(i, j)` for `i != j`; the diagonal holds the Shapley value `φ_i`.
    pub matrix: Vec<Vec<f64>>,
    /// Worth of the empty coalition.
    pub v_empty: f64,
    /// Worth of the grand coalition.
    pub v_full: f64,
    /// Distinct coalitions evaluated.
    pub evaluations: usize,
}

/// Optional progress callback: called with `(done, total)` model evaluations
/// after each batch; the last call has `done == total`.
pub type Progress<'a> = Option<&'a mut dyn FnMut(usize, usize)>;

/// Internal helper forwarding to an optional callback.
pub(crate) struct Reporter<'a> {
    cb: Progress<'a>,
    total: usize,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(cb: Progress<'a>, total: usize) -> Self {
        let mut r = Reporter { cb, total };
        r.report(0);
        r
    }

    pub(crate) fn report(&mut self, done: usize) {
        if let Some(cb) = self.cb.as_deref_mut() {
            cb(done.min(self.total), self.total);
        }
    }

    pub(crate) fn finish(&mut self) {
        let t = self.total;
        self.report(t);
    }
}
