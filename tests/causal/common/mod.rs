//! Synthetic structural causal models with known lagged graphs.
#![allow(dead_code)]

use lantern_causal::{Session, TimeSeries};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Standard normal draw (Box–Muller).
pub fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

pub const NAMES: [&str; 5] = ["A", "B", "C", "D", "E"];

/// True edges `(from, to, lag)` of both SCMs:
/// lag-1 cycle A → B → C → A, self-loops on A and E, B → D at lag 0, D → E at lag 1.
pub const TRUE_EDGES: [(&str, &str, usize); 7] = [
    ("A", "A", 1),
    ("C", "A", 1),
    ("A", "B", 1),
    ("B", "C", 1),
    ("B", "D", 0),
    ("D", "E", 1),
    ("E", "E", 1),
];

/// True lag-1 matrix `A[to][from]` of the linear SCM.
pub fn true_lag1() -> Vec<Vec<f64>> {
    let mut a = vec![vec![0.0; 5]; 5];
    a[0][0] = 0.4; // A -> A
    a[0][2] = 0.5; // C -> A
    a[1][0] = 0.6; // A -> B
    a[2][1] = -0.6; // B -> C (inhibitory)
    a[4][3] = 0.5; // D -> E
    a[4][4] = 0.4; // E -> E
    a
}

/// One step of the SCM given the previous state.
fn step(prev: &[f64], e: &[f64; 5], nonlinear: bool) -> Vec<f64> {
    let f = |x: f64, w: f64| {
        if nonlinear {
            1.5 * w * (x / 1.0).tanh()
        } else {
            w * x
        }
    };
    let a = 0.4 * prev[0] + f(prev[2], 0.5) + e[0];
    let b = f(prev[0], 0.6) + e[1];
    let c = f(prev[1], -0.6) + e[2];
    let d = f(b, 0.7) + e[3];
    let ee = f(prev[3], 0.5) + 0.4 * prev[4] + e[4];
    vec![a, b, c, d, ee]
}

/// `sessions × steps` samples (after a 30-step burn-in per session).
pub fn simulate(sessions: usize, steps: usize, seed: u64, nonlinear: bool) -> TimeSeries {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sess = (0..sessions)
        .map(|s| {
            let mut x = vec![0.0; 5];
            let mut rows = Vec::with_capacity(steps);
            for t in 0..steps + 30 {
                let e = [(); 5].map(|_| gauss(&mut rng));
                x = step(&x, &e, nonlinear);
                if t >= 30 {
                    rows.push(x.clone());
                }
            }
            Session::new(s.to_string(), rows)
        })
        .collect();
    TimeSeries::new(NAMES.iter().map(|s| s.to_string()).collect(), sess).unwrap()
}

/// Independent Gaussian noise states.
pub fn noise(n_vars: usize, sessions: usize, steps: usize, seed: u64) -> TimeSeries {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sess = (0..sessions)
        .map(|s| {
            let rows = (0..steps)
                .map(|_| (0..n_vars).map(|_| gauss(&mut rng)).collect())
                .collect();
            Session::new(s.to_string(), rows)
        })
        .collect();
    TimeSeries::new((0..n_vars).map(|i| format!("x{i}")).collect(), sess).unwrap()
}
