//! Deterministic forward simulation of the fitted structural equations.
//!
//! A [`LinearModel`] is the noise-free linear system
//! `x(t) = B x(t) + Σ_τ A_τ x(t − τ)` in deviations from the baseline (intercepts drop
//! out of responses to perturbations). `B` (contemporaneous weights) must be acyclic; it is
//! evaluated in topological order, lagged terms from previous steps (zero before `t = 0`).
//!
//! The *reduced form* is `x(t) = Σ_τ M_τ x(t − τ)` with `M_τ = (I − B)⁻¹ A_τ`; its
//! companion-matrix spectral radius ρ decides whether perturbations die out (ρ < 1) or
//! persist/grow (ρ ≥ 1) — the "self-sustaining" regime of Lee et al. (2025).
//!
//! [`LinearModel::simulate_spread`] clamps one state to `magnitude` standard deviations
//! for `hold_steps` steps (a do-intervention: the state's own equation is cut while held)
//! and lets the rest evolve.

use serde::{Deserialize, Serialize};

use crate::error::{CausalError, Result};
use crate::linalg::spectral_radius;
use crate::sem::StructuralEquation;

/// Noise-free linear structural model (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    /// State names.
    pub names: Vec<String>,
    /// `B[to][from]`: contemporaneous weights (acyclic).
    pub contemporaneous: Vec<Vec<f64>>,
    /// `lagged[τ − 1][to][from]`: weights of lag `τ`.
    pub lagged: Vec<Vec<Vec<f64>>>,
    /// Size of one standard deviation of each state in model units (1 for standardised
    /// fits, the state's sd for raw fits).
    pub scales: Vec<f64>,
    /// Topological order of `B`.
    pub order: Vec<usize>,
}

impl LinearModel {
    /// Builds a model, checking shapes, finiteness and acyclicity of `contemporaneous`.
    ///
    /// ```
    /// use lantern_causal::LinearModel;
    /// let names = vec!["a".to_string(), "b".to_string()];
    /// let b = vec![vec![0.0, 0.0], vec![0.5, 0.0]]; // a(t) -> b(t)
    /// let a1 = vec![vec![0.0, 0.9], vec![0.0, 0.0]]; // b(t-1) -> a(t)
    /// let m = LinearModel::new(names, b, vec![a1], vec![1.0, 1.0]).unwrap();
    /// // Reduced form: a(t) = 0.9 b(t-1) = 0.45 a(t-1); radius 0.45.
    /// assert!((m.reduced_form_spectral_radius().unwrap() - 0.45).abs() < 1e-12);
    /// ```
    pub fn new(
        names: Vec<String>,
        contemporaneous: Vec<Vec<f64>>,
        lagged: Vec<Vec<Vec<f64>>>,
        scales: Vec<f64>,
    ) -> Result<Self> {
        let n = names.len();
        let square = |m: &Vec<Vec<f64>>| m.len() == n && m.iter().all(|r| r.len() == n);
        if !square(&contemporaneous) || !lagged.iter().all(square) || scales.len() != n {
            return Err(CausalError::Dimension(format!(
                "model matrices must be {n} x {n} with {n} scales"
            )));
        }
        let finite = contemporaneous
            .iter()
            .chain(lagged.iter().flatten())
            .flatten()
            .chain(&scales)
            .all(|v| v.is_finite());
        if !finite {
            return Err(CausalError::Numerical("non-finite model weight".into()));
        }
        let order = topological_order(&contemporaneous).ok_or_else(|| {
            CausalError::Numerical("contemporaneous weights contain a cycle".into())
        })?;
        Ok(Self {
            names,
            contemporaneous,
            lagged,
            scales: scales
                .into_iter()
                .map(|s| if s > 0.0 { s } else { 1.0 })
                .collect(),
            order,
        })
    }

    /// Builds a model from structural equations (terms naming unknown states are errors).
    pub fn from_equations(
        names: &[String],
        equations: &[StructuralEquation],
        scales: Vec<f64>,
    ) -> Result<Self> {
        let n = names.len();
        let idx = |s: &str| {
            names
                .iter()
                .position(|x| x == s)
                .ok_or_else(|| CausalError::UnknownState(s.to_string()))
        };
        let tau_max = equations
            .iter()
            .flat_map(|e| e.terms.iter().map(|t| t.lag))
            .max()
            .unwrap_or(0);
        let mut b = vec![vec![0.0; n]; n];
        let mut a = vec![vec![vec![0.0; n]; n]; tau_max];
        for eq in equations {
            let j = idx(&eq.target)?;
            for t in &eq.terms {
                let i = idx(&t.source)?;
                if t.lag == 0 {
                    b[j][i] += t.weight;
                } else {
                    a[t.lag - 1][j][i] += t.weight;
                }
            }
        }
        Self::new(names.to_vec(), b, a, scales)
    }

    /// Number of states.
    pub fn n_vars(&self) -> usize {
        self.names.len()
    }

    /// Index of a state.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        self.names
            .iter()
            .position(|x| x == name)
            .ok_or_else(|| CausalError::UnknownState(name.to_string()))
    }

    /// Solves `x = B x + u` (i.e. `x = (I − B)⁻¹ u`) in topological order.
    fn propagate(&self, mut u: Vec<f64>, clamp: Option<(usize, f64)>) -> Vec<f64> {
        for &j in &self.order {
            if let Some((s, v)) = clamp {
                if s == j {
                    u[j] = v;
                    continue;
                }
            }
            let add: f64 = self.contemporaneous[j]
                .iter()
                .zip(&u)
                .map(|(w, x)| w * x)
                .sum::<f64>();
            // u[j] holds only the lagged input; B is zero on j's descendants.
            u[j] += add;
        }
        u
    }

    /// Reduced-form matrices `M_τ = (I − B)⁻¹ A_τ`.
    pub fn reduced_form(&self) -> Vec<Vec<Vec<f64>>> {
        let n = self.n_vars();
        self.lagged
            .iter()
            .map(|a| {
                let mut m = vec![vec![0.0; n]; n];
                for col in 0..n {
                    let u: Vec<f64> = (0..n).map(|r| a[r][col]).collect();
                    let x = self.propagate(u, None);
                    for (r, v) in x.into_iter().enumerate() {
                        m[r][col] = v;
                    }
                }
                m
            })
            .collect()
    }

    /// Spectral radius of the reduced-form companion matrix (0 without lagged weights).
    pub fn reduced_form_spectral_radius(&self) -> Result<f64> {
        let n = self.n_vars();
        let p = self.lagged.len();
        if n == 0 || p == 0 {
            return Ok(0.0);
        }
        let m = self.reduced_form();
        let size = n * p;
        let mut c = vec![vec![0.0; size]; size];
        for (k, mk) in m.iter().enumerate() {
            for r in 0..n {
                for col in 0..n {
                    c[r][k * n + col] = mk[r][col];
                }
            }
        }
        for r in n..size {
            c[r][r - n] = 1.0;
        }
        spectral_radius(&c)
    }

    /// Runs the model for `steps` steps with state `source` clamped to `value` (model
    /// units) for the first `hold` steps; returns `x[t][state]` in model units.
    fn run(&self, source: usize, value: f64, hold: usize, steps: usize) -> Result<Vec<Vec<f64>>> {
        let n = self.n_vars();
        let mut x: Vec<Vec<f64>> = Vec::with_capacity(steps);
        for t in 0..steps {
            let mut u = vec![0.0; n];
            for (k, a) in self.lagged.iter().enumerate() {
                let lag = k + 1;
                if t >= lag {
                    let prev = &x[t - lag];
                    for (uj, row) in u.iter_mut().zip(a) {
                        *uj += row.iter().zip(prev).map(|(w, v)| w * v).sum::<f64>();
                    }
                }
            }
            let clamp = (t < hold).then_some((source, value));
            let xt = self.propagate(u, clamp);
            if xt.iter().any(|v| !v.is_finite()) {
                return Err(CausalError::Numerical(format!(
                    "simulation diverged at step {t}"
                )));
            }
            x.push(xt);
        }
        Ok(x)
    }

    /// Simulates the spread of an activated state (see [`SpreadConfig`]).
    ///
    /// ```
    /// use lantern_causal::{LinearModel, SpreadConfig};
    /// let names = vec!["a".to_string(), "b".to_string()];
    /// let zero = vec![vec![0.0; 2]; 2];
    /// // a <-> b feedback with gain 1.0 per round trip: activity persists.
    /// let a1 = vec![vec![0.0, 1.0], vec![1.0, 0.0]];
    /// let m = LinearModel::new(names, zero, vec![a1], vec![1.0, 1.0]).unwrap();
    /// let r = m.simulate_spread(&SpreadConfig { steps: 10, ..SpreadConfig::new("a") }).unwrap();
    /// assert_eq!(r.risen, vec!["b"]);
    /// assert!(r.self_sustaining);
    /// ```
    pub fn simulate_spread(&self, cfg: &SpreadConfig) -> Result<SpreadResult> {
        if !(cfg.magnitude.is_finite() && cfg.threshold.is_finite()) {
            return Err(CausalError::InvalidConfig(
                "spread magnitude and threshold must be finite".into(),
            ));
        }
        if cfg.steps == 0 {
            return Err(CausalError::InvalidConfig("spread needs steps >= 1".into()));
        }
        let src = self.index_of(&cfg.source)?;
        let x = self.run(
            src,
            cfg.magnitude * self.scales[src],
            cfg.hold_steps,
            cfg.steps,
        )?;
        let n = self.n_vars();
        let trajectories: Vec<Vec<f64>> = (0..n)
            .map(|j| x.iter().map(|row| row[j] / self.scales[j]).collect())
            .collect();
        let released = cfg.steps > cfg.hold_steps;
        let responses: Vec<StateResponse> = trajectories
            .iter()
            .enumerate()
            .map(|(j, tr)| {
                let (peak_step, peak) =
                    tr.iter()
                        .copied()
                        .enumerate()
                        .fold(
                            (0, f64::NEG_INFINITY),
                            |b, (t, v)| if v > b.1 { (t, v) } else { b },
                        );
                let final_value = tr.last().copied().unwrap_or(0.0);
                let risen = peak > cfg.threshold;
                StateResponse {
                    name: self.names[j].clone(),
                    peak,
                    peak_step,
                    final_value,
                    risen,
                    sustained: risen && released && final_value > cfg.threshold,
                }
            })
            .collect();
        let radius = self.reduced_form_spectral_radius()?;
        Ok(SpreadResult {
            source: cfg.source.clone(),
            risen: responses
                .iter()
                .enumerate()
                .filter(|(j, r)| *j != src && r.risen)
                .map(|(_, r)| r.name.clone())
                .collect(),
            sustained: responses
                .iter()
                .filter(|r| r.sustained)
                .map(|r| r.name.clone())
                .collect(),
            responses,
            trajectories,
            reduced_form_spectral_radius: radius,
            self_sustaining: radius >= 1.0,
        })
    }

    /// Predicted change of `to` at `t + 1` when `from` is set to `from + delta` at `t`
    /// only (model units; a do-intervention, so `from`'s own parents are cut at `t`).
    ///
    /// Includes the contemporaneous descendants of `from` at `t` and the contemporaneous
    /// paths at `t + 1`, i.e. the total one-step effect.
    pub fn predict_effect(&self, from: &str, to: &str, delta: f64) -> Result<f64> {
        let (s, d) = (self.index_of(from)?, self.index_of(to)?);
        if !delta.is_finite() {
            return Err(CausalError::InvalidConfig("delta must be finite".into()));
        }
        let x = self.run(s, delta, 1, 2)?;
        Ok(x[1][d])
    }
}

/// Kahn's algorithm on `B[to][from] != 0`; `None` if cyclic.
fn topological_order(b: &[Vec<f64>]) -> Option<Vec<usize>> {
    let n = b.len();
    let mut indeg: Vec<usize> = (0..n)
        .map(|j| (0..n).filter(|&i| i != j && b[j][i] != 0.0).count())
        .collect();
    if (0..n).any(|j| b[j][j] != 0.0) {
        return None;
    }
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&j| indeg[j] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(v) = ready.pop_first() {
        order.push(v);
        for w in 0..n {
            if w != v && b[w][v] != 0.0 {
                indeg[w] -= 1;
                if indeg[w] == 0 {
                    ready.insert(w);
                }
            }
        }
    }
    (order.len() == n).then_some(order)
}

/// Settings of [`LinearModel::simulate_spread`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpreadConfig {
    /// State to activate.
    pub source: String,
    /// Clamped value in standard deviations (default 2.0).
    pub magnitude: f64,
    /// Steps the source is held (default 1: a single pulse at `t = 0`).
    pub hold_steps: usize,
    /// Steps simulated, `t = 0..steps` (default 20).
    pub steps: usize,
    /// A state has *risen* when its peak exceeds this many sd (default 0.5).
    pub threshold: f64,
}

impl Default for SpreadConfig {
    fn default() -> Self {
        Self {
            source: String::new(),
            magnitude: 2.0,
            hold_steps: 1,
            steps: 20,
            threshold: 0.5,
        }
    }
}

impl SpreadConfig {
    /// Defaults with the given source state.
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            ..Default::default()
        }
    }
}

/// Response of one state to the activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateResponse {
    /// State name.
    pub name: String,
    /// Largest value (sd units).
    pub peak: f64,
    /// Step of the peak.
    pub peak_step: usize,
    /// Value at the last step (sd units).
    pub final_value: f64,
    /// `peak > threshold`.
    pub risen: bool,
    /// Risen and still above the threshold at the last step, after the input was
    /// released (`steps > hold_steps`).
    pub sustained: bool,
}

/// Outcome of [`LinearModel::simulate_spread`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpreadResult {
    /// Activated state.
    pub source: String,
    /// `trajectories[state][t]` in sd units.
    pub trajectories: Vec<Vec<f64>>,
    /// Per-state summary, in state order.
    pub responses: Vec<StateResponse>,
    /// States other than the source whose peak exceeded the threshold.
    pub risen: Vec<String>,
    /// States (the source included) still above the threshold at the end.
    pub sustained: Vec<String>,
    /// Spectral radius of the reduced-form companion matrix.
    pub reduced_form_spectral_radius: f64,
    /// Whether perturbations do not decay (`radius ≥ 1`).
    pub self_sustaining: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("s{i}")).collect()
    }

    #[test]
    fn contemporaneous_then_lagged_spread() {
        // s0(t) -> s1(t) (0.5), s1(t-1) -> s2(t) (0.8), decaying self-loop on s2.
        let mut b = vec![vec![0.0; 3]; 3];
        b[1][0] = 0.5;
        let mut a = vec![vec![0.0; 3]; 3];
        a[2][1] = 0.8;
        a[2][2] = 0.5;
        let m = LinearModel::new(names(3), b, vec![a], vec![1.0; 3]).unwrap();
        let r = m
            .simulate_spread(&SpreadConfig {
                steps: 6,
                ..SpreadConfig::new("s0")
            })
            .unwrap();
        assert_eq!(r.trajectories[0], vec![2.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(r.trajectories[1][0], 1.0);
        assert!((r.trajectories[2][1] - 0.8).abs() < 1e-12);
        assert!((r.trajectories[2][2] - 0.4).abs() < 1e-12);
        assert_eq!(r.risen, vec!["s1", "s2"]);
        assert!(r.sustained.is_empty());
        assert!(!r.self_sustaining);
        assert!((m.predict_effect("s0", "s2", 1.0).unwrap() - 0.4).abs() < 1e-12);
        assert_eq!(m.predict_effect("s2", "s0", 1.0).unwrap(), 0.0);
        assert!(m.predict_effect("zz", "s0", 1.0).is_err());
    }

    #[test]
    fn held_input_and_unstable_loop() {
        let zero = vec![vec![0.0; 2]; 2];
        let a = vec![vec![1.1, 0.0], vec![0.0, 0.0]];
        let m = LinearModel::new(names(2), zero.clone(), vec![a], vec![2.0, 1.0]).unwrap();
        let r = m
            .simulate_spread(&SpreadConfig {
                hold_steps: 3,
                steps: 8,
                ..SpreadConfig::new("s0")
            })
            .unwrap();
        // Clamped at 2 sd for 3 steps, then grows by 1.1 per step.
        assert_eq!(&r.trajectories[0][..3], &[2.0, 2.0, 2.0]);
        assert!((r.trajectories[0][3] - 2.2).abs() < 1e-12);
        assert_eq!(r.sustained, vec!["s0"]);
        assert!(r.self_sustaining);
        let mut cyc = zero;
        cyc[0][1] = 1.0;
        cyc[1][0] = 1.0;
        assert!(LinearModel::new(names(2), cyc, vec![], vec![1.0; 2]).is_err());
    }
}
