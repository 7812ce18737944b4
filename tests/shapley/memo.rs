//! Memoisation and batching: each coalition is evaluated at most once.

mod common;

use common::{nonlinear, Recording};
use lantern_shapley::{
    exact, interaction, kernel, permutation, ExactOptions, KernelOptions, PermutationOptions,
};

#[test]
fn exact_evaluates_each_coalition_once() {
    let n = 10;
    let mut g = Recording::new(n, nonlinear(n));
    let r = exact(
        &mut g,
        &ExactOptions {
            batch_size: 100,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    assert_eq!(r.evaluations, 1 << n);
    assert_eq!(g.seen.len(), 1 << n);
    assert_eq!(g.duplicates(), 0);
    assert!(g.batch_sizes.iter().all(|&b| b <= 100));
    assert_eq!(g.batch_sizes.len(), 11);
}

#[test]
fn sampled_estimators_respect_budget_without_repeats() {
    let n = 12;
    for batch_size in [1, 7, 64] {
        let mut g = Recording::new(n, nonlinear(n));
        let opts = PermutationOptions {
            budget: 500,
            seed: 3,
            batch_size,
        };
        let r = permutation(&mut g, &opts, None).unwrap();
        assert_eq!(r.evaluations, g.seen.len());
        assert!(
            r.evaluations <= 500 && r.evaluations > 450,
            "{}",
            r.evaluations
        );
        assert_eq!(g.duplicates(), 0);
        assert!(g.batch_sizes.iter().all(|&b| b <= batch_size));

        let mut g = Recording::new(n, nonlinear(n));
        let opts = KernelOptions {
            budget: 500,
            seed: 3,
            batch_size,
            ..Default::default()
        };
        let r = kernel(&mut g, &opts, None).unwrap();
        assert_eq!(r.evaluations, g.seen.len());
        assert!(
            r.evaluations <= 500 && r.evaluations > 450,
            "{}",
            r.evaluations
        );
        assert_eq!(g.duplicates(), 0);
        assert!(g.batch_sizes.iter().all(|&b| b <= batch_size));
    }
}

#[test]
fn small_games_saturate_without_reevaluation() {
    // 2^4 = 16 coalitions: a large permutation budget cannot evaluate more.
    let mut g = Recording::new(4, nonlinear(4));
    let r = permutation(
        &mut g,
        &PermutationOptions {
            budget: 1000,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    assert_eq!(r.evaluations, 16);
    assert_eq!(g.duplicates(), 0);
    let mut g = Recording::new(5, nonlinear(5));
    let r = interaction(&mut g, &ExactOptions::default(), None).unwrap();
    assert_eq!((r.evaluations, g.seen.len(), g.duplicates()), (32, 32, 0));
}
