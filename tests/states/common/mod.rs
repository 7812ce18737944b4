#![allow(dead_code)]
use lantern_states::Dataset;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random_range(1e-12..1.0);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// `k` states + "neutral" (last label), `per` examples each, d = 32: 16 signal dimensions
/// (unit noise) holding random orthonormal planted directions, one per state at distance `amp`, and 16
/// pure-noise dimensions with std between 0.5 and 2, plus an offset on every dimension.
/// Returns the data and the planted directions (original space).
#[allow(clippy::needless_range_loop)]
pub fn planted(k: usize, per: usize, amp: f32, seed: u64) -> (Dataset, Vec<Vec<f32>>) {
    let d = 32;
    let sig = 16;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // random orthonormal directions in the signal subspace (Gram–Schmidt)
    let mut dirs: Vec<Vec<f32>> = Vec::new();
    while dirs.len() < k {
        let mut v: Vec<f32> = (0..d)
            .map(|j| if j < sig { gauss(&mut rng) } else { 0.0 })
            .collect();
        for u in &dirs {
            let p: f32 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= p * b);
        }
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.iter_mut().for_each(|a| *a /= n);
        dirs.push(v);
    }
    let scales: Vec<f32> = (0..d)
        .map(|j| {
            if j < sig {
                1.0
            } else {
                0.5 + 1.5 * (j - sig) as f32 / 15.0
            }
        })
        .collect();
    let offset: Vec<f32> = (0..d).map(|j| j as f32 * 0.3 - 2.0).collect();
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for c in 0..=k {
        for _ in 0..per {
            let x: Vec<f32> = (0..d)
                .map(|j| {
                    let mu = if c < k { amp * dirs[c][j] } else { 0.0 };
                    offset[j] + mu + scales[j] * gauss(&mut rng)
                })
                .collect();
            features.push(x);
            labels.push(c);
        }
    }
    let mut label_names: Vec<String> = (0..k).map(|c| format!("state{c}")).collect();
    label_names.push("neutral".into());
    (
        Dataset {
            features,
            labels,
            label_names,
        },
        dirs,
    )
}

/// Pure-noise features with random labels.
pub fn noise(n_labels: usize, per: usize, d: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = n_labels * per;
    let features = (0..n)
        .map(|_| (0..d).map(|_| gauss(&mut rng)).collect())
        .collect();
    let labels = (0..n).map(|i| i % n_labels).collect();
    Dataset {
        features,
        labels,
        label_names: (0..n_labels).map(|c| format!("l{c}")).collect(),
    }
}
