mod common;

use lantern_states::{
    learn_states, split_indices, Dataset, ProbeMethod, StatesConfig, StatesError,
};

fn small() -> Dataset {
    common::planted(2, 12, 4.0, 21).0
}

fn cfg(method: ProbeMethod) -> StatesConfig {
    let mut c = StatesConfig {
        method,
        baseline: Some("neutral".into()),
        ..StatesConfig::default()
    };
    c.sae.width_multiplier = 1;
    c.sae.epochs = 2;
    c
}

fn err(data: &Dataset, c: &StatesConfig) -> StatesError {
    learn_states(data, c).expect_err("expected an error")
}

#[test]
fn bad_inputs_are_clear_errors() {
    let c = cfg(ProbeMethod::DiffMeans);
    let mut d = small();
    d.features.clear();
    d.labels.clear();
    assert!(matches!(err(&d, &c), StatesError::EmptyData(_)));

    let mut d = small();
    d.labels.pop();
    assert!(matches!(err(&d, &c), StatesError::LengthMismatch { .. }));

    let mut d = small();
    d.features[7].push(1.0);
    assert!(matches!(
        err(&d, &c),
        StatesError::Ragged {
            row: 7,
            expected: 32,
            found: 33
        }
    ));

    let mut d = small();
    d.features[3][5] = f32::NAN;
    let e = err(&d, &c);
    assert!(
        matches!(e, StatesError::NonFinite { row: 3, col: 5, .. }),
        "{e}"
    );

    let mut d = small();
    d.labels[0] = 9;
    assert!(matches!(
        err(&d, &c),
        StatesError::LabelOutOfRange {
            row: 0,
            label: 9,
            ..
        }
    ));

    let mut d = small();
    d.label_names[1] = "state0".into();
    assert!(matches!(err(&d, &c), StatesError::DuplicateLabel(_)));

    let mut c2 = c.clone();
    c2.baseline = Some("calm".into());
    let e = err(&small(), &c2);
    assert!(matches!(e, StatesError::UnknownBaseline { .. }));
    assert!(e.to_string().contains("calm"), "{e}");

    // only the baseline label has examples/names -> nothing to learn
    let d = Dataset {
        features: small().features,
        labels: vec![0; 36],
        label_names: vec!["neutral".into()],
    };
    assert!(matches!(err(&d, &c), StatesError::NoStates));

    // a state with 3 examples
    let mut d = small();
    for i in 3..12 {
        d.labels[i] = 2; // move state0 examples to neutral
    }
    let e = err(&d, &c);
    assert_eq!(
        e.to_string(),
        "state 'state0' has only 3 examples; need at least 4"
    );

    // one class only: every example is the single state, nothing to contrast
    let d = Dataset {
        features: small().features,
        labels: vec![0; 36],
        label_names: vec!["worry".into()],
    };
    let mut c3 = c.clone();
    c3.baseline = None;
    let e = err(&d, &c3);
    assert!(matches!(e, StatesError::TooFewContrast { n: 0, .. }), "{e}");
    assert!(
        e.to_string()
            .contains("state 'worry' has only 0 contrast examples"),
        "{e}"
    );

    // config errors
    for f in [0.0, 1.0, -0.1, f64::NAN] {
        let mut c4 = c.clone();
        c4.test_fraction = f;
        assert!(matches!(err(&small(), &c4), StatesError::InvalidConfig(_)));
    }
    let mut c5 = cfg(ProbeMethod::SupervisedSae);
    c5.sae.learning_rate = 0.0;
    assert!(matches!(err(&small(), &c5), StatesError::InvalidConfig(_)));
    let mut c6 = cfg(ProbeMethod::Logistic);
    c6.logistic.epochs = 0;
    assert!(matches!(err(&small(), &c6), StatesError::InvalidConfig(_)));
}

#[test]
fn constant_and_huge_constant_features_stay_finite() {
    let mut d = small();
    for x in &mut d.features {
        x.push(1.0e6); // constant, huge
        x.push(0.0); // constant zero
    }
    for m in [
        ProbeMethod::DiffMeans,
        ProbeMethod::Logistic,
        ProbeMethod::SupervisedSae,
    ] {
        let set = learn_states(&d, &cfg(m)).unwrap();
        assert_eq!(set.standardizer.std[32], 1.0);
        let json = serde_json::to_string(&set).unwrap();
        assert!(
            !json.contains("NaN") && !json.contains("null"),
            "{m}: {json}"
        );
        for a in set.activations(&d.features[0]) {
            assert!(a.is_finite());
        }
        for dir in &set.directions {
            assert!(dir.iter().all(|v| v.is_finite()));
            if m != ProbeMethod::SupervisedSae {
                assert_eq!(dir[32], 0.0, "{m}: constant dimension in the direction");
            }
        }
        for h in &set.held_out {
            assert!(h.accuracy.is_finite() && h.auc.is_finite());
        }
    }
}

#[test]
fn diff_means_direction_is_the_raw_mean_difference_on_train() {
    let (d, _) = common::planted(3, 40, 3.0, 8);
    let c = StatesConfig {
        baseline: Some("neutral".into()),
        seed: 17,
        ..StatesConfig::default()
    };
    let set = learn_states(&d, &c).unwrap();
    let (train, _) = split_indices(&d.labels, c.test_fraction, c.seed);
    let mean = |lab: usize| -> Vec<f64> {
        let rows: Vec<&Vec<f32>> = train
            .iter()
            .filter(|&&i| d.labels[i] == lab)
            .map(|&i| &d.features[i])
            .collect();
        (0..32)
            .map(|j| rows.iter().map(|r| r[j] as f64).sum::<f64>() / rows.len() as f64)
            .collect()
    };
    let base = mean(3);
    for k in 0..3 {
        let diff: Vec<f64> = mean(k).iter().zip(&base).map(|(a, b)| a - b).collect();
        let n = diff.iter().map(|v| v * v).sum::<f64>().sqrt();
        let dir = set.direction(&format!("state{k}")).unwrap();
        for (a, b) in dir.iter().zip(&diff) {
            assert!((*a as f64 - b / n).abs() < 1e-4, "{a} vs {}", b / n);
        }
        // readout: activation > 0 exactly beyond the midpoint of the class means
        let ra = &set.readout[k];
        let z_state = set
            .standardizer
            .transform(&mean(k).iter().map(|&v| v as f32).collect::<Vec<_>>());
        let z_base = set
            .standardizer
            .transform(&base.iter().map(|&v| v as f32).collect::<Vec<_>>());
        let proj = |z: &[f32]| {
            ra.weights
                .iter()
                .zip(z)
                .map(|(w, v)| *w as f64 * *v as f64)
                .sum::<f64>()
                + ra.bias
        };
        assert!((proj(&z_state) + proj(&z_base)).abs() < 1e-3);
        assert!(proj(&z_state) > 0.0);
    }
    assert!(set.direction("neutral").is_none());
}

#[test]
fn activations_dimension_checks_and_method_parsing() {
    let set = learn_states(&small(), &cfg(ProbeMethod::DiffMeans)).unwrap();
    assert!(matches!(
        set.try_activations(&[1.0, 2.0]),
        Err(StatesError::DimensionMismatch {
            expected: 32,
            found: 2
        })
    ));
    let a = set.activations(&[1.0]);
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|v| v.is_nan()));
    for (s, m) in [
        ("diff_means", ProbeMethod::DiffMeans),
        ("logistic", ProbeMethod::Logistic),
        ("sae", ProbeMethod::SupervisedSae),
    ] {
        assert_eq!(s.parse::<ProbeMethod>().unwrap(), m);
        assert_eq!(m.to_string(), s);
        assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{s}\""));
    }
    assert!("pca".parse::<ProbeMethod>().is_err());
}
