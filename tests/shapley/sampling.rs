//! Convergence, calibration and determinism of the sampled estimators.

mod common;

use common::nonlinear;
use lantern_shapley::{
    exact, kernel, permutation, run, Coalition, ExactOptions, FnGame, KernelOptions, Method,
    PermutationOptions, ShapleyError, ShapleyResult,
};

const N: usize = 12;

fn truth() -> Vec<f64> {
    exact(
        &mut FnGame::new(N, nonlinear(N)),
        &ExactOptions::default(),
        None,
    )
    .unwrap()
    .values
}

fn estimate(method: Method, budget: usize, seed: u64) -> ShapleyResult {
    run(
        method,
        &mut FnGame::new(N, nonlinear(N)),
        budget,
        seed,
        None,
    )
    .unwrap()
}

fn mean_abs_error(r: &ShapleyResult, truth: &[f64]) -> f64 {
    r.values
        .iter()
        .zip(truth)
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        / truth.len() as f64
}

#[test]
fn estimates_converge_with_budget() {
    let truth = truth();
    for method in [Method::Permutation, Method::Kernel] {
        let (small, large) = (100, 3000);
        let mut err_small = 0.0;
        let mut err_large = 0.0;
        for seed in 0..5 {
            let rs = estimate(method, small, seed);
            let rl = estimate(method, large, seed);
            assert!(rs.evaluations <= small && rl.evaluations <= large);
            assert!(rl.evaluations > small, "{method}: {}", rl.evaluations);
            err_small += mean_abs_error(&rs, &truth) / 5.0;
            err_large += mean_abs_error(&rl, &truth) / 5.0;
        }
        eprintln!("{method}: mean abs error {err_small:.4} at {small}, {err_large:.4} at {large}");
        assert!(
            err_large < 0.6 * err_small,
            "{method}: {err_large} vs {err_small}"
        );
        assert!(err_large < 0.1, "{method}: {err_large}");
    }
}

#[test]
fn standard_errors_are_calibrated() {
    let truth = truth();
    for method in [Method::Permutation, Method::Kernel] {
        let (mut within, mut within1, mut total) = (0, 0, 0);
        let mut ses = 0.0;
        for seed in 10..16 {
            let r = estimate(method, 600, seed);
            for (i, t) in truth.iter().enumerate() {
                let se = r.std_errors[i];
                assert!(se.is_finite() && se > 0.0, "{method}: se {se}");
                ses += se;
                total += 1;
                let err = (r.values[i] - t).abs();
                within += usize::from(err <= 3.5 * se);
                within1 += usize::from(err <= se);
            }
        }
        let frac = within as f64 / total as f64;
        let frac1 = within1 as f64 / total as f64;
        eprintln!(
            "{method}: {frac:.3} within 3.5 SE, {frac1:.3} within 1 SE (mean SE {:.4})",
            ses / total as f64
        );
        assert!(frac >= 0.85, "{method}: only {frac} within 3.5 SE");
        // Not grossly over-estimated either (≈ 0.68 expected for normal errors).
        assert!(
            frac1 <= 0.95,
            "{method}: {frac1} within 1 SE: standard errors too large"
        );
    }
}

#[test]
fn seeded_and_deterministic() {
    for method in [Method::Permutation, Method::Kernel] {
        let a = estimate(method, 200, 42);
        let b = estimate(method, 200, 42);
        let c = estimate(method, 200, 43);
        assert_eq!(a, b, "{method}");
        assert_ne!(a.values, c.values, "{method}");
    }
}

#[test]
fn budget_too_small_is_an_error() {
    let mut g = FnGame::new(N, nonlinear(N));
    let e = permutation(
        &mut g,
        &PermutationOptions {
            budget: 10,
            ..Default::default()
        },
        None,
    )
    .unwrap_err();
    assert!(
        matches!(e, ShapleyError::BudgetTooSmall { min: 46, .. }),
        "{e}"
    );
    let e = kernel(
        &mut g,
        &KernelOptions {
            budget: 5,
            ..Default::default()
        },
        None,
    )
    .unwrap_err();
    assert!(
        matches!(e, ShapleyError::BudgetTooSmall { min: 14, .. }),
        "{e}"
    );
    assert!(kernel(
        &mut g,
        &KernelOptions {
            batch_size: 0,
            ..Default::default()
        },
        None
    )
    .is_err());
}

#[test]
fn kernel_unpaired_and_no_bootstrap() {
    let truth = truth();
    let mut g = FnGame::new(N, nonlinear(N));
    let opts = KernelOptions {
        budget: 2000,
        paired: false,
        bootstrap: 0,
        ..Default::default()
    };
    let r = kernel(&mut g, &opts, None).unwrap();
    assert!(mean_abs_error(&r, &truth) < 0.2);
    assert!(r.std_errors.iter().all(|s| s.is_nan()));
    assert!(r.efficiency_gap().abs() < 1e-9);
}

#[test]
fn progress_reports_reach_total() {
    for method in [Method::Exact, Method::Permutation, Method::Kernel] {
        let mut calls: Vec<(usize, usize)> = Vec::new();
        let mut cb = |d: usize, t: usize| calls.push((d, t));
        let mut g = FnGame::new(8, |s: Coalition| s.len() as f64);
        let r = run(method, &mut g, 150, 1, Some(&mut cb)).unwrap();
        let (d, t) = *calls.last().unwrap();
        assert_eq!(d, t, "{method}");
        assert!(calls.len() >= 3, "{method}: {calls:?}");
        assert!(
            calls.windows(2).all(|w| w[0].0 <= w[1].0),
            "{method}: {calls:?}"
        );
        assert!(r.evaluations <= t);
    }
}
