mod common;

use lantern_states::{cosine, learn_states, ProbeMethod, SaeConfig, StateSet, StatesConfig};

fn sae_cfg() -> SaeConfig {
    SaeConfig {
        width_multiplier: 2,
        epochs: 40,
        learning_rate: 1e-2,
        l1: 1.0,
        batch_size: 16,
        recon_weight: 1.0,
        threads: 0,
    }
}

fn cfg(method: ProbeMethod, baseline: Option<&str>) -> StatesConfig {
    StatesConfig {
        method,
        baseline: baseline.map(str::to_string),
        seed: 3,
        sae: sae_cfg(),
        ..StatesConfig::default()
    }
}

fn check_recovery(set: &StateSet, dirs: &[Vec<f32>], min_cos: f64) {
    for (k, planted) in dirs.iter().enumerate() {
        let name = &set.label_names[k];
        let dir = set.direction(name).unwrap();
        let n: f64 = dir.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "{name}: direction norm {n}");
        let c = cosine(dir, planted);
        let acc = &set.held_out[k];
        eprintln!(
            "{:?} {name}: cos {c:.3} acc {:.3} auc {:.3}",
            set.method, acc.accuracy, acc.auc
        );
        assert!(
            c > min_cos,
            "{:?} {name}: cosine {c:.3} <= {min_cos}",
            set.method
        );
        assert!(
            acc.accuracy > 0.9,
            "{:?} {name}: held-out accuracy {:.3}",
            set.method,
            acc.accuracy
        );
        assert!(acc.auc > 0.9 && !acc.flagged);
    }
    for k in 0..dirs.len() {
        assert!(set.usable_states().contains(&set.label_names[k].as_str()));
    }
}

#[test]
fn diff_means_recovers_planted_directions() {
    let (data, dirs) = common::planted(4, 80, 5.0, 1);
    let set = learn_states(&data, &cfg(ProbeMethod::DiffMeans, Some("neutral"))).unwrap();
    assert_eq!(set.label_names, ["state0", "state1", "state2", "state3"]);
    check_recovery(&set, &dirs, 0.9);
    // activations: a state-0 example scores highest on state 0
    let a = set.activations(&data.features[0]);
    assert_eq!(a.len(), 4);
    assert!(a[0] > 0.0 && a[0] > a[1]);
}

#[test]
fn logistic_recovers_planted_directions() {
    // one-vs-rest logistic weights tilt away from the other states' means and are noisier
    // than a difference of means, so this test uses more examples per class
    let (data, dirs) = common::planted(4, 150, 5.0, 2);
    let set = learn_states(&data, &cfg(ProbeMethod::Logistic, Some("neutral"))).unwrap();
    check_recovery(&set, &dirs, 0.9);
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
}

#[test]
fn diff_means_one_vs_rest_without_baseline() {
    let (data, dirs) = common::planted(4, 80, 5.0, 4);
    let set = learn_states(&data, &cfg(ProbeMethod::DiffMeans, None)).unwrap();
    assert_eq!(set.label_names.len(), 5); // neutral is a state too
                                          // against the rest (other states included) the mean difference is 5·p0 − 1.25·Σ_j p_j,
                                          // cosine ≈ 0.92 with p0 before sampling noise
    check_recovery(&set, &dirs, 0.85);
}

#[test]
fn sae_recovers_planted_directions() {
    let (data, dirs) = common::planted(4, 80, 5.0, 5);
    let t = std::time::Instant::now();
    let set = learn_states(&data, &cfg(ProbeMethod::SupervisedSae, Some("neutral"))).unwrap();
    eprintln!("sae train (debug) {:?}", t.elapsed());
    check_recovery(&set, &dirs, 0.7);
}

#[test]
fn noise_labels_are_near_chance_and_flagged() {
    for method in [
        ProbeMethod::DiffMeans,
        ProbeMethod::Logistic,
        ProbeMethod::SupervisedSae,
    ] {
        let data = common::noise(3, 80, 32, 11);
        let set = learn_states(&data, &cfg(method, None)).unwrap();
        for a in &set.held_out {
            eprintln!(
                "{method} noise {}: acc {:.3} auc {:.3}",
                a.state, a.accuracy, a.auc
            );
            assert!(a.accuracy < 0.7 && a.accuracy > 0.3, "{method}: {a:?}");
            assert!(a.flagged);
        }
        assert_eq!(set.warnings.len(), 3, "{:?}", set.warnings);
        assert!(set.warnings[0].contains("flagged"));
        assert!(set.usable_states().is_empty());
    }
}

#[test]
fn same_seed_same_json() {
    let (data, _) = common::planted(3, 30, 3.0, 9);
    for method in [
        ProbeMethod::DiffMeans,
        ProbeMethod::Logistic,
        ProbeMethod::SupervisedSae,
    ] {
        let mut c = cfg(method, Some("neutral"));
        c.sae.epochs = 3;
        let a = serde_json::to_string(&learn_states(&data, &c).unwrap()).unwrap();
        let b = serde_json::to_string(&learn_states(&data, &c).unwrap()).unwrap();
        assert_eq!(a, b, "{method} not deterministic");
        c.seed += 1;
        let other = serde_json::to_string(&learn_states(&data, &c).unwrap()).unwrap();
        assert_ne!(a, other, "{method}: seed has no effect");
        if method == ProbeMethod::SupervisedSae {
            c.seed -= 1;
            for threads in [1, 3] {
                c.sae.threads = threads;
                let t = serde_json::to_string(&learn_states(&data, &c).unwrap()).unwrap();
                assert_eq!(a, t, "SAE result depends on the thread count ({threads})");
            }
        }
    }
}

#[test]
fn save_load_round_trip() {
    let (data, _) = common::planted(3, 30, 3.0, 10);
    let set = learn_states(&data, &cfg(ProbeMethod::Logistic, Some("neutral"))).unwrap();
    let dir = std::env::temp_dir().join(format!("lantern-states-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("states.json");
    set.save(&path).unwrap();
    set.save(&path).unwrap(); // overwrite works
    let back = StateSet::load(&path).unwrap();
    assert_eq!(back, set);
    assert_eq!(
        back.activations(&data.features[5]),
        set.activations(&data.features[5])
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "temp file left behind: {leftovers:?}");
    std::fs::write(&path, "{not json").unwrap();
    assert!(StateSet::load(&path).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
