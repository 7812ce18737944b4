//! Times `learn_states` on random data shaped like the real task (d = 576, n = 480,
//! 5 states + neutral, 80 each) for each method with the default configs.
//!
//! `CARGO_TARGET_DIR=target-states cargo run --release -p lantern-states --example time_learning [sae_epochs] [threads]`
use std::time::Instant;

use lantern_states::{learn_states, Dataset, ProbeMethod, StatesConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    let sae_epochs: usize = std::env::args()
        .nth(1)
        .map_or(20, |a| a.parse().expect("epochs"));
    let threads: usize = std::env::args()
        .nth(2)
        .map_or(0, |a| a.parse().expect("threads"));
    let (d, per, k) = (576, 80, 6);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let means: Vec<Vec<f32>> = (0..k)
        .map(|_| (0..d).map(|_| rng.random_range(-0.15f32..0.15)).collect())
        .collect();
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (c, mu) in means.iter().enumerate() {
        for _ in 0..per {
            features.push(
                mu.iter()
                    .map(|m| m + rng.random_range(-1.0f32..1.0))
                    .collect(),
            );
            labels.push(c);
        }
    }
    let label_names = [
        "low_mood",
        "worry",
        "irritability",
        "elation",
        "calm",
        "neutral",
    ]
    .map(String::from)
    .to_vec();
    let data = Dataset {
        features,
        labels,
        label_names,
    };
    for method in [
        ProbeMethod::DiffMeans,
        ProbeMethod::Logistic,
        ProbeMethod::SupervisedSae,
    ] {
        let mut cfg = StatesConfig {
            method,
            baseline: Some("neutral".into()),
            ..StatesConfig::default()
        };
        cfg.sae.epochs = sae_epochs;
        cfg.sae.threads = threads;
        let t = Instant::now();
        let set = learn_states(&data, &cfg).expect("learn");
        let secs = t.elapsed().as_secs_f64();
        let accs: Vec<String> = set
            .held_out
            .iter()
            .map(|a| format!("{:.2}", a.accuracy))
            .collect();
        let extra = if method == ProbeMethod::SupervisedSae {
            format!(
                " ({} epochs, width {}, {:.2} s/epoch)",
                sae_epochs,
                8 * d,
                secs / sae_epochs as f64
            )
        } else {
            String::new()
        };
        println!("{method:>10}: {secs:7.3} s{extra}; held-out balanced acc {accs:?}");
        let t = Instant::now();
        let mut s = 0.0;
        for x in &data.features {
            s += set.activations(x)[0];
        }
        println!(
            "            activations: {:.1} µs/vector ({s:.1})",
            t.elapsed().as_secs_f64() * 1e6 / 480.0
        );
    }
}
