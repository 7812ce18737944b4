//! Shapley axioms and closed forms on synthetic games.

mod common;

use common::{assert_close, nonlinear, x};
use lantern_shapley::{
    exact, kernel, permutation, Coalition, ExactOptions, FnGame, KernelOptions, PermutationOptions,
    ShapleyResult,
};

fn exact_of(n: usize, f: impl FnMut(Coalition) -> f64) -> ShapleyResult {
    exact(&mut FnGame::new(n, f), &ExactOptions::default(), None).unwrap()
}

#[test]
fn efficiency_exact_and_sampled() {
    for n in [1, 2, 5, 9] {
        let r = exact_of(n, nonlinear(n));
        assert!(
            r.efficiency_gap().abs() < 1e-6,
            "n={n}: {}",
            r.efficiency_gap()
        );
        assert_eq!(r.std_errors, vec![0.0; n]);
        assert_eq!(r.method, "exact");
    }
    let n = 14;
    let mut g = FnGame::new(n, nonlinear(n));
    let p = permutation(
        &mut g,
        &PermutationOptions {
            budget: 300,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    assert!(p.efficiency_gap().abs() < 1e-9);
    let k = kernel(
        &mut g,
        &KernelOptions {
            budget: 300,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    assert!(k.efficiency_gap().abs() < 1e-9);
}

#[test]
fn symmetry() {
    // Players 1 and 3 are interchangeable: v depends on them via x1 + x3 only.
    let r = exact_of(5, |s| {
        let a = x(s, 1) + x(s, 3);
        a * a + 2.0 * x(s, 0) * a + x(s, 2) - x(s, 4) * x(s, 0)
    });
    assert!((r.values[1] - r.values[3]).abs() < 1e-12, "{:?}", r.values);
    assert!((r.values[1] - r.values[0]).abs() > 1e-3);
}

#[test]
fn dummy_player_gets_zero() {
    let mut f = nonlinear(5);
    // Player 5 never changes the worth.
    let r = exact_of(6, move |s| f(s.without(5)));
    assert!(r.values[5].abs() < 1e-12, "{:?}", r.values);
    assert!(r.values[0].abs() > 1e-3);
}

#[test]
fn linearity() {
    let n = 6;
    let w = |s: Coalition| (s.len() as f64).powi(2) - x(s, 2);
    let rv = exact_of(n, nonlinear(n));
    let rw = exact_of(n, w);
    let mut v = nonlinear(n);
    let rsum = exact_of(n, move |s| v(s) + 3.0 * w(s));
    let expect: Vec<f64> = rv
        .values
        .iter()
        .zip(&rw.values)
        .map(|(a, b)| a + 3.0 * b)
        .collect();
    assert_close(&rsum.values, &expect, 1e-9);
}

#[test]
fn additive_game() {
    let w = [0.5, -1.0, 2.0, 0.0, 3.25];
    let r = exact_of(5, move |s| 10.0 + s.players().map(|i| w[i]).sum::<f64>());
    assert_close(&r.values, &w, 1e-12);
    assert_eq!((r.v_empty, r.v_full), (10.0, 14.75));
}

#[test]
fn unanimity_game() {
    // u_T(S) = 1 iff T ⊆ S; φ_i = 1/|T| for i ∈ T, else 0.
    let t = Coalition::from_players(7, [1, 4, 6]).unwrap();
    let r = exact_of(7, move |s| {
        f64::from(u8::from(s.bits() & t.bits() == t.bits()))
    });
    let expect: Vec<f64> = (0..7)
        .map(|i| if t.contains(i) { 1.0 / 3.0 } else { 0.0 })
        .collect();
    assert_close(&r.values, &expect, 1e-12);
}

#[test]
fn glove_game() {
    // Players 0, 1 own left gloves, 2, 3, 4 right gloves; worth = number of pairs.
    let r = exact_of(5, |s| {
        let l = x(s, 0) + x(s, 1);
        let rr = x(s, 2) + x(s, 3) + x(s, 4);
        l.min(rr)
    });
    // Known values for 2 left / 3 right gloves: left 13/20, right 7/30.
    let (l, rt) = (13.0 / 20.0, 7.0 / 30.0);
    assert_close(&r.values, &[l, l, rt, rt, rt], 1e-12);
}

#[test]
fn weighted_majority_game() {
    // [q = 4; 3, 1, 1, 1]: φ = (3/4, 1/12, 1/12, 1/12).
    let w = [3.0, 1.0, 1.0, 1.0];
    let r = exact_of(4, move |s| {
        f64::from(u8::from(s.players().map(|i| w[i]).sum::<f64>() >= 4.0))
    });
    assert_close(
        &r.values,
        &[0.75, 1.0 / 12.0, 1.0 / 12.0, 1.0 / 12.0],
        1e-12,
    );
}

#[test]
fn kernel_on_full_lattice_is_exact() {
    let n = 7;
    let ex = exact_of(n, nonlinear(n));
    let mut g = FnGame::new(n, nonlinear(n));
    let k = kernel(
        &mut g,
        &KernelOptions {
            budget: 1 << n,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    assert_close(&k.values, &ex.values, 1e-8);
    assert_eq!(k.std_errors, vec![0.0; n]);
    assert_eq!(k.evaluations, 1 << n);
}

#[test]
fn single_player() {
    let f = |s: Coalition| 2.0 + 3.0 * x(s, 0);
    assert_close(&exact_of(1, f).values, &[3.0], 1e-12);
    let p = permutation(&mut FnGame::new(1, f), &PermutationOptions::default(), None).unwrap();
    assert_close(&p.values, &[3.0], 1e-12);
    let k = kernel(&mut FnGame::new(1, f), &KernelOptions::default(), None).unwrap();
    assert_close(&k.values, &[3.0], 1e-12);
}
