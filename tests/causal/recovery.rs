//! Ground-truth recovery on synthetic lagged SCMs (20 sessions × 50 steps each).

mod common;

use std::collections::BTreeSet;

use common::{simulate, true_lag1, TRUE_EDGES};
use lantern_causal::linalg::spectral_radius;
use lantern_causal::{analyse_series, CiTestKind, DiscoveryConfig, GraphReport, LinkKind};

const SESSIONS: usize = 20;
const STEPS: usize = 50;
const SEEDS: [u64; 3] = [11, 22, 33];

type EdgeSet = BTreeSet<(String, String, usize)>;

fn truth() -> EdgeSet {
    TRUE_EDGES
        .iter()
        .map(|&(f, t, l)| (f.to_string(), t.to_string(), l))
        .collect()
}

/// Directed edges of a report; lag-0 edges count only if oriented.
fn found(report: &GraphReport) -> EdgeSet {
    report
        .edges
        .iter()
        .filter(|e| e.lag > 0 || e.kind == LinkKind::Directed)
        .map(|e| (e.from.clone(), e.to.clone(), e.lag))
        .collect()
}

/// Pooled (precision, recall) over the seeds, plus the reports.
fn pooled(ci_test: CiTestKind, nonlinear: bool) -> (f64, f64, Vec<GraphReport>) {
    let config = DiscoveryConfig {
        ci_test,
        n_bootstrap: 0,
        ..Default::default()
    };
    let truth = truth();
    let (mut tp, mut n_found, mut n_true) = (0usize, 0usize, 0usize);
    let mut reports = Vec::new();
    for seed in SEEDS {
        let series = simulate(SESSIONS, STEPS, seed, nonlinear);
        let report = analyse_series(&series, &config).unwrap();
        let f = found(&report);
        let extra: Vec<_> = f.difference(&truth).collect();
        let missed: Vec<_> = truth.difference(&f).collect();
        eprintln!(
            "seed {seed} ({ci_test:?}, nonlinear={nonlinear}): extra {extra:?}, missed {missed:?}"
        );
        tp += f.intersection(&truth).count();
        n_found += f.len();
        n_true += truth.len();
        reports.push(report);
    }
    let precision = tp as f64 / n_found.max(1) as f64;
    let recall = tp as f64 / n_true as f64;
    eprintln!("{ci_test:?} nonlinear={nonlinear}: precision {precision:.3}, recall {recall:.3}");
    (precision, recall, reports)
}

#[test]
fn linear_scm_recovered_with_cycles_and_spectral_radius() {
    let (precision, recall, reports) = pooled(CiTestKind::ParCorr, false);
    assert!(precision >= 0.9, "precision {precision}");
    assert!(recall >= 0.9, "recall {recall}");

    let true_radius = spectral_radius(&true_lag1()).unwrap();
    // λ³ − 0.4λ² + 0.18 = 0 has a complex pair of modulus ≈ 0.63 (and E's 0.4).
    assert!(
        (true_radius - 0.627).abs() < 0.01,
        "true radius {true_radius}"
    );
    for r in &reports {
        // The planted lag-1 loop A → B → C → A with negative gain 0.5·0.6·(−0.6) = −0.18.
        let loop_abc = r
            .cycles
            .iter()
            .find(|c| c.nodes == ["A", "B", "C"])
            .expect("planted 3-cycle found");
        assert_eq!(loop_abc.lags, vec![1, 1, 1]);
        assert!(
            (loop_abc.gain - -0.18).abs() < 0.06,
            "gain {}",
            loop_abc.gain
        );
        assert!(r.cycles.iter().any(|c| c.nodes == ["E"] && c.length == 1));
        assert!(r
            .sccs
            .contains(&vec!["A".to_string(), "B".to_string(), "C".to_string()]));
        assert!(r.sccs.contains(&vec!["E".to_string()]));
        assert!(!r.sccs.iter().flatten().any(|s| s == "D"));
        assert!(
            (r.spectral_radius - true_radius).abs() < 0.08,
            "fitted radius {} vs true {true_radius}",
            r.spectral_radius
        );
        // Standardised weights keep signs: B → C is inhibitory.
        let bc = r
            .edges
            .iter()
            .find(|e| e.from == "B" && e.to == "C")
            .unwrap();
        assert!(bc.weight < -0.3);
        assert!(r.to_dot().contains("\"B\" -> \"C\" [label=\"lag 1\\n-0."));
    }
}

#[test]
fn nonlinear_scm_recovered_with_rank_test() {
    let (precision, recall, reports) = pooled(CiTestKind::RankParCorr, true);
    assert!(precision >= 0.9, "precision {precision}");
    assert!(recall >= 0.9, "recall {recall}");
    for r in &reports {
        assert!(r.cycles.iter().any(|c| c.nodes == ["A", "B", "C"]));
    }
}

#[test]
fn nonlinear_scm_recovered_with_parcorr() {
    let (precision, recall, _) = pooled(CiTestKind::ParCorr, true);
    assert!(precision >= 0.9, "precision {precision}");
    assert!(recall >= 0.9, "recall {recall}");
}

/// `ParCorr` without the correlation-matrix fast path: every test regresses on the data.
#[derive(Debug)]
struct RegressionParCorr;

impl lantern_causal::CiTest for RegressionParCorr {
    fn name(&self) -> &'static str {
        "regression_par_corr"
    }
    fn test(
        &self,
        x: &[f64],
        y: &[f64],
        z: &[&[f64]],
    ) -> lantern_causal::Result<lantern_causal::CiResult> {
        lantern_causal::ParCorr.test(x, y, z)
    }
}

#[test]
fn fast_path_matches_per_test_regression() {
    use lantern_causal::{discover, discover_with};
    let config = DiscoveryConfig::default();
    for seed in [1, 2] {
        let series = simulate(10, 40, seed, true);
        let fast = discover(&series, &config).unwrap();
        let slow = discover_with(&series, &config, &RegressionParCorr).unwrap();
        assert_eq!(fast.n_tests, slow.n_tests);
        assert_eq!(fast.links.len(), slow.links.len());
        for (a, b) in fast.links.iter().zip(&slow.links) {
            assert_eq!((a.from, a.to, a.lag, a.kind), (b.from, b.to, b.lag, b.kind));
            assert!((a.p_value - b.p_value).abs() < 1e-9);
        }
    }
}
