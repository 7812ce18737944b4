//! Bad inputs, degenerate data, determinism and the report format.

mod common;

use common::{noise, simulate};
use lantern_causal::{
    analyse_series, analyse_series_with_progress, CausalError, DiscoveryConfig, GraphReport,
    ObservedEffect, Session, SpreadConfig, TimeSeries,
};

fn quick(n_bootstrap: usize) -> DiscoveryConfig {
    DiscoveryConfig {
        n_bootstrap,
        ..Default::default()
    }
}

fn all_numbers_finite(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
        serde_json::Value::Array(a) => a.iter().all(all_numbers_finite),
        serde_json::Value::Object(o) => o.values().all(all_numbers_finite),
        _ => true,
    }
}

#[test]
fn too_few_samples_reports_minimum() {
    let s = Session::new(
        "0",
        (0..6)
            .map(|t| vec![t as f64, (t * t) as f64, (t % 3) as f64])
            .collect(),
    );
    let ts = TimeSeries::new(vec!["a".into(), "b".into(), "c".into()], vec![s]).unwrap();
    let err = analyse_series(&ts, &quick(0)).unwrap_err();
    // 3 states, tau_max 1: conditioning sets up to 2 + 2*3*1 = 8 -> at least 11 samples;
    // 6 steps minus 2 warm-up steps leave 4.
    assert_eq!(
        err,
        CausalError::TooFewSamples {
            available: 4,
            needed: 11,
            cond_dim: 8,
            lost_per_session: 2
        }
    );
    assert!(err.to_string().contains("at least 11"));
}

#[test]
fn constant_series_is_named_or_dropped() {
    let mut ts = simulate(6, 30, 1, false);
    for s in &mut ts.sessions {
        for row in &mut s.values {
            row[2] = 4.0;
        }
    }
    assert_eq!(
        analyse_series(&ts, &quick(0)).unwrap_err(),
        CausalError::ConstantSeries { state: "C".into() }
    );
    let cfg = DiscoveryConfig {
        drop_constant: true,
        ..quick(0)
    };
    let r = analyse_series(&ts, &cfg).unwrap();
    assert_eq!(r.dropped_states, vec!["C"]);
    assert_eq!(r.nodes, vec!["A", "B", "D", "E"]);
    assert!(r.warnings.iter().any(|w| w.contains("constant")));
}

#[test]
fn non_finite_values_are_rejected() {
    let mut ts = simulate(6, 30, 2, false);
    ts.sessions[3].values[7][1] = f64::NAN;
    let err = analyse_series(&ts, &quick(0)).unwrap_err();
    assert!(matches!(err, CausalError::NonFinite { ref state, step: 7, .. } if state == "B"));
}

#[test]
fn duplicate_series_give_finite_results() {
    let mut ts = simulate(10, 40, 3, false);
    ts.names.push("B_copy".into());
    for s in &mut ts.sessions {
        for row in &mut s.values {
            row.push(row[1]);
        }
    }
    let r = analyse_series(&ts, &quick(3)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
    assert!(all_numbers_finite(&json), "NaN/inf in report");
    assert!(r.spectral_radius.is_finite());
    // The copies are perfectly dependent at lag 0.
    assert!(r
        .edges
        .iter()
        .any(|e| e.lag == 0 && [&e.from, &e.to].contains(&&"B_copy".to_string())));
}

#[test]
fn independent_noise_gives_empty_graph() {
    let ts = noise(4, 10, 50, 4);
    let r = analyse_series(&ts, &quick(5)).unwrap();
    assert!(r.edges.is_empty(), "spurious edges {:?}", r.edges);
    assert!(r.sccs.is_empty());
    assert!(r.cycles.is_empty());
    assert_eq!(r.spectral_radius, 0.0);
    assert_eq!(r.reduced_form_spectral_radius, 0.0);
    let json = r.to_json().unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["edges"], serde_json::json!([]));
    assert_eq!(v["sccs"], serde_json::json!([]));
    assert_eq!(v["cycles"], serde_json::json!([]));
    assert_eq!(v["spectral_radius"], serde_json::json!(0.0));
    assert!(all_numbers_finite(&v));
    let spread = r.simulate_spread(&SpreadConfig::new("x0")).unwrap();
    assert!(spread.risen.is_empty());
}

#[test]
fn csv_with_interleaved_session_column_matches_direct_series() {
    let ts = simulate(5, 30, 5, false);
    // Interleave sessions row by row, session column in the middle.
    let mut csv = String::from("A,B,session,C,D,E\n");
    for t in 0..30 {
        for s in &ts.sessions {
            let r = &s.values[t];
            csv.push_str(&format!(
                "{},{},sess-{},{},{},{}\n",
                r[0], r[1], s.label, r[2], r[3], r[4]
            ));
        }
    }
    let parsed = TimeSeries::from_csv_str(&csv).unwrap();
    assert_eq!(parsed.names, ts.names);
    assert_eq!(parsed.sessions.len(), 5);
    for (p, s) in parsed.sessions.iter().zip(&ts.sessions) {
        assert_eq!(p.label, format!("sess-{}", s.label));
        assert_eq!(p.values, s.values);
    }
    let a = analyse_series(&parsed, &quick(0)).unwrap();
    let b = analyse_series(&ts, &quick(0)).unwrap();
    assert_eq!(a.edges, b.edges);
}

#[test]
fn bootstrap_is_deterministic_given_seed() {
    let ts = simulate(8, 30, 6, false);
    let cfg = DiscoveryConfig {
        seed: 42,
        ..quick(6)
    };
    let mut calls = Vec::new();
    let mut cb = |done: usize, total: usize| calls.push((done, total));
    let a = analyse_series_with_progress(&ts, &cfg, Some(&mut cb)).unwrap();
    assert_eq!(calls, (1..=6).map(|d| (d, 6)).collect::<Vec<_>>());
    let b = analyse_series(&ts, &cfg).unwrap();
    assert_eq!(a.to_json().unwrap(), b.to_json().unwrap());
    assert_eq!(a.bootstrap.succeeded, 6);
    assert!(a.edges.iter().all(|e| (0.0..=1.0).contains(&e.frequency)));
    // Frequencies are multiples of 1/6 and differ across seeds for at least one edge
    // on weak data.
    let freqs = |r: &GraphReport| r.edges.iter().map(|e| e.frequency).collect::<Vec<_>>();
    let others: Vec<_> = (0..5u64)
        .map(|s| {
            freqs(
                &analyse_series(
                    &ts,
                    &DiscoveryConfig {
                        seed: s,
                        ..cfg.clone()
                    },
                )
                .unwrap(),
            )
        })
        .collect();
    assert!(others.iter().any(|f| *f != freqs(&a)) || freqs(&a).iter().all(|&f| f == 1.0));

    // Single long session -> moving-block bootstrap.
    let one = TimeSeries::new(
        ts.names.clone(),
        vec![Session::new(
            "all",
            ts.sessions.iter().flat_map(|s| s.values.clone()).collect(),
        )],
    )
    .unwrap();
    let r1 = analyse_series(&one, &cfg).unwrap();
    let r2 = analyse_series(&one, &cfg).unwrap();
    assert_eq!(r1.edges, r2.edges);
    assert!(matches!(
        r1.bootstrap.scheme,
        lantern_causal::BootstrapScheme::Blocks {
            block_len: Some(16)
        }
    ));
}

#[test]
fn frequency_threshold_filters_edges() {
    let ts = simulate(8, 30, 7, false);
    let all = analyse_series(&ts, &quick(8)).unwrap();
    let cfg = DiscoveryConfig {
        min_frequency: 0.9,
        ..quick(8)
    };
    let strict = analyse_series(&ts, &cfg).unwrap();
    assert!(strict.edges.iter().all(|e| e.frequency >= 0.9));
    assert_eq!(
        strict.edges.len(),
        all.edges.iter().filter(|e| e.frequency >= 0.9).count()
    );
}

#[test]
fn interventions_and_spread_on_fitted_graph() {
    let ts = simulate(20, 50, 8, false);
    let r = analyse_series(&ts, &quick(0)).unwrap();
    // Observed effects from the true SCM in sd units: steer parent by 1 sd at t,
    // child change at t+1 = w * sd_parent / sd_child (+ the lag-0 path B -> D).
    let sd = &r.state_sds;
    let obs = |from: &str, to: &str, raw: f64| {
        let i = r.nodes.iter().position(|n| n == from).unwrap();
        let j = r.nodes.iter().position(|n| n == to).unwrap();
        ObservedEffect {
            from: from.into(),
            to: to.into(),
            delta: 1.0,
            observed: raw * sd[i] / sd[j],
            per_session: Vec::new(),
        }
    };
    let observed = vec![
        obs("A", "B", 0.6),
        obs("B", "C", -0.6),
        obs("C", "A", 0.5),
        obs("A", "D", 0.6 * 0.7),
        obs("D", "E", 0.5),
        obs("E", "A", 0.0),
    ];
    let check = r.check_interventions(&observed).unwrap();
    assert_eq!(check.sign_agreement, Some(1.0));
    assert!(check.pearson.unwrap() > 0.95, "{check:?}");
    assert!(check.mean_abs_error.unwrap() < 0.1);
    assert!(!check.comparisons[3].has_edge); // A -> D acts through B(t+1) -> D(t+1)

    let spread = r
        .simulate_spread(&SpreadConfig {
            steps: 12,
            ..SpreadConfig::new("A")
        })
        .unwrap();
    assert!(spread.risen.contains(&"B".to_string()));
    assert!(spread.risen.contains(&"D".to_string()));
    assert!(spread.sustained.is_empty()); // radius < 1: activity decays
    assert!(!spread.self_sustaining);
    assert!(r.simulate_spread(&SpreadConfig::new("nope")).is_err());
}

#[test]
fn report_round_trips_and_renders_dot() {
    let ts = simulate(8, 30, 9, false);
    let r = analyse_series(&ts, &quick(2)).unwrap();
    let back = GraphReport::from_json(&r.to_json().unwrap()).unwrap();
    // serde_json float parsing may differ in the last bit, so compare approximately.
    assert_eq!(
        (&back.nodes, &back.sccs, back.edges.len()),
        (&r.nodes, &r.sccs, r.edges.len())
    );
    for (a, b) in back.edges.iter().zip(&r.edges) {
        assert_eq!(
            (&a.from, &a.to, a.lag, a.kind),
            (&b.from, &b.to, b.lag, b.kind)
        );
        assert!((a.weight - b.weight).abs() < 1e-12);
    }
    assert!((back.spectral_radius - r.spectral_radius).abs() < 1e-12);
    let dot = r.to_dot();
    assert!(dot.starts_with("digraph lantern {"));
    assert!(dot.contains("\"A\" -> \"A\"")); // self-loop
    assert!(dot.contains("style=dashed")); // lag-0 edge B -> D
    assert!(dot.contains("#2c6fbb") && dot.contains("#c0392b")); // both signs
    let g = r.graph().unwrap();
    assert_eq!(g.edge_count(), r.edges.len());
}

#[test]
fn invalid_config_is_rejected() {
    let ts = simulate(6, 30, 10, false);
    for cfg in [
        DiscoveryConfig {
            alpha: 0.0,
            ..quick(0)
        },
        DiscoveryConfig {
            tau_max: 99,
            ..quick(0)
        },
        DiscoveryConfig {
            min_frequency: 2.0,
            ..quick(0)
        },
    ] {
        assert!(matches!(
            analyse_series(&ts, &cfg),
            Err(CausalError::InvalidConfig(_))
        ));
    }
}

#[test]
fn tau_two_finds_lag_two_link() {
    // y(t) = 0.8 x(t-2) + noise.
    let base = noise(2, 10, 60, 11);
    let mut ts = base.clone();
    for (s, b) in ts.sessions.iter_mut().zip(&base.sessions) {
        for t in 2..s.values.len() {
            s.values[t][1] = 0.8 * b.values[t - 2][0] + 0.5 * b.values[t][1];
        }
    }
    let cfg = DiscoveryConfig {
        tau_max: 2,
        ..quick(0)
    };
    let r = analyse_series(&ts, &cfg).unwrap();
    assert_eq!(r.edges.len(), 1, "{:?}", r.edges);
    assert_eq!(
        (
            r.edges[0].from.as_str(),
            r.edges[0].to.as_str(),
            r.edges[0].lag
        ),
        ("x0", "x1", 2)
    );
    assert_eq!(r.spectral_radius, 0.0); // no lag-1 edges
}

// ---------------------------------------------------------------------------------------
// Issue #11: FDR level, bootstrap minimum, per-session centring, unoriented links.

use lantern_causal::LinkKind;

#[test]
fn fdr_level_outside_the_open_unit_interval_is_refused() {
    let ts = simulate(10, 30, 3, false);
    for q in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
        let cfg = DiscoveryConfig {
            fdr: Some(q),
            ..quick(0)
        };
        let err = analyse_series(&ts, &cfg).unwrap_err().to_string();
        assert!(err.contains("FDR level must be in (0, 1)"), "{q}: {err}");
    }
    // A valid level runs and can only remove links found at alpha alone.
    let plain = analyse_series(&ts, &quick(0)).unwrap();
    let bh = analyse_series(
        &ts,
        &DiscoveryConfig {
            fdr: Some(0.01),
            ..quick(0)
        },
    )
    .unwrap();
    assert!(bh.edges.len() <= plain.edges.len());
    assert!(bh.edges.iter().all(|e| plain
        .edges
        .iter()
        .any(|p| (&p.from, &p.to, p.lag) == (&e.from, &e.to, e.lag))));
}

#[test]
fn session_bootstrap_with_too_few_sessions_names_the_minimum() {
    let ts = simulate(3, 60, 4, false);
    let cfg = DiscoveryConfig {
        bootstrap: lantern_causal::BootstrapScheme::Sessions,
        ..quick(5)
    };
    let err = analyse_series(&ts, &cfg).unwrap_err().to_string();
    assert!(
        err.contains("3 given, at least 5 needed"),
        "error must give the minimum: {err}"
    );
    // Auto falls back to moving blocks with few sessions.
    assert!(analyse_series(&ts, &quick(5)).is_ok());
}

#[test]
fn a_state_that_only_differs_between_sessions_is_constant_after_centring() {
    let mut ts = simulate(6, 30, 5, false);
    for (k, s) in ts.sessions.iter_mut().enumerate() {
        for row in &mut s.values {
            row[4] = k as f64;
        }
    }
    let err = analyse_series(&ts, &quick(0)).unwrap_err().to_string();
    assert!(
        err.contains("\"E\"") && err.contains("within every session"),
        "{err}"
    );
    let dropped = analyse_series(
        &ts,
        &DiscoveryConfig {
            drop_constant: true,
            ..quick(0)
        },
    )
    .unwrap();
    assert_eq!(dropped.dropped_states, vec!["E"]);
}

#[test]
fn session_offsets_pose_as_persistence_only_without_centring() {
    // D has no self-loop in the SCM; give every session its own level of D.
    let mut ts = simulate(12, 40, 6, false);
    for (k, s) in ts.sessions.iter_mut().enumerate() {
        for row in &mut s.values {
            row[3] += 3.0 * (k % 4) as f64;
        }
    }
    let has_d_loop = |r: &GraphReport| r.self_loops.iter().any(|l| l.state == "D");
    let raw = analyse_series(
        &ts,
        &DiscoveryConfig {
            session_normalization: lantern_causal::SessionNormalization::None,
            ..quick(0)
        },
    )
    .unwrap();
    assert!(has_d_loop(&raw), "{:?}", raw.self_loops);
    let centred = analyse_series(&ts, &quick(0)).unwrap();
    assert!(!has_d_loop(&centred), "{:?}", centred.self_loops);
}

#[test]
fn unoriented_links_stay_unoriented_and_out_of_directional_analyses() {
    // Two states linked only at lag 0, no lagged structure: the link cannot be oriented.
    let mut rng_state = 99u64;
    let mut noise = move || {
        rng_state = rng_state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng_state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let sessions = (0..10)
        .map(|s| {
            let rows = (0..60)
                .map(|_| {
                    let a = noise();
                    vec![a, 0.8 * a + 0.3 * noise()]
                })
                .collect();
            lantern_causal::Session::new(s.to_string(), rows)
        })
        .collect();
    let ts = lantern_causal::TimeSeries::new(vec!["a".into(), "b".into()], sessions).unwrap();
    let r = analyse_series(&ts, &quick(0)).unwrap();
    let link = r
        .edges
        .iter()
        .find(|e| e.lag == 0)
        .expect("lag-0 link found");
    assert_eq!(link.kind, LinkKind::Undirected);
    assert!(
        link.weight > 0.5,
        "weight is the partial correlation: {link:?}"
    );
    assert_eq!(r.n_unoriented, 1);
    assert!(r
        .equations
        .iter()
        .all(|e| e.terms.iter().all(|t| t.lag > 0)));
    assert!(r.cycles.is_empty() && r.sccs.is_empty());
    assert_eq!(r.density, 0.0);
    assert!(r.unoriented_links.starts_with("left out"));
    let json: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
    assert_eq!(json["edges"][0]["kind"], "o-o");
    assert!(r.to_dot().contains("arrowhead=odot"));
    assert_eq!(r.graph().unwrap().edge_count(), 0);
}
