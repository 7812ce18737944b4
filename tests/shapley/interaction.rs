//! Pairwise Shapley interaction index.

mod common;

use common::{assert_close, x};
use lantern_shapley::{exact, interaction, Coalition, ExactOptions, FnGame, ShapleyError};

#[test]
fn known_pairwise_interactions() {
    // v = 1.5·x0 + x1 + 2·x0x1 − 3·x2x3 + x4 ; players 0,1 complementary,
    // players 2,3 redundant, player 4 additive.
    let f = |s: Coalition| {
        1.5 * x(s, 0) + x(s, 1) + 2.0 * x(s, 0) * x(s, 1) - 3.0 * x(s, 2) * x(s, 3) + x(s, 4)
    };
    let r = interaction(&mut FnGame::new(5, f), &ExactOptions::default(), None).unwrap();
    let m = &r.matrix;
    assert!((m[0][1] - 2.0).abs() < 1e-12 && (m[1][0] - 2.0).abs() < 1e-12);
    assert!((m[2][3] + 3.0).abs() < 1e-12);
    for (i, j) in [(0, 2), (0, 4), (1, 3), (2, 4), (3, 4)] {
        assert!(m[i][j].abs() < 1e-12, "I({i},{j}) = {}", m[i][j]);
    }
    let phi = exact(&mut FnGame::new(5, f), &ExactOptions::default(), None).unwrap();
    let diag: Vec<f64> = (0..5).map(|i| m[i][i]).collect();
    assert_close(&diag, &phi.values, 1e-12);
    assert_close(&diag, &[2.5, 2.0, -1.5, -1.5, 1.0], 1e-12);
    assert_eq!(r.evaluations, 32);
}

#[test]
fn three_way_term_splits_evenly() {
    // A pure 3-way unanimity term on {0,1,2}: each pair's index is 1/2
    // (the third member is present in half of the weighted subsets).
    let f = |s: Coalition| x(s, 0) * x(s, 1) * x(s, 2);
    let r = interaction(&mut FnGame::new(4, f), &ExactOptions::default(), None).unwrap();
    assert!((r.matrix[0][1] - 0.5).abs() < 1e-12, "{:?}", r.matrix);
    assert!(r.matrix[0][3].abs() < 1e-12);
}

#[test]
fn too_many_players_for_exact() {
    let mut g = FnGame::new(20, |s: Coalition| s.len() as f64);
    let e = interaction(&mut g, &ExactOptions::default(), None).unwrap_err();
    assert!(matches!(
        e,
        ShapleyError::ExactTooLarge { n: 20, limit: 16 }
    ));
    let msg = exact(&mut g, &ExactOptions::default(), None)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("permutation") && msg.contains("kernel"),
        "{msg}"
    );
    let opts = ExactOptions {
        max_players: 30,
        ..Default::default()
    };
    assert!(matches!(
        exact(&mut g, &opts, None),
        Err(ShapleyError::InvalidArgument(_))
    ));
    let opts = ExactOptions {
        max_players: 17,
        ..Default::default()
    };
    let r = exact(
        &mut FnGame::new(17, |s: Coalition| s.len() as f64),
        &opts,
        None,
    )
    .unwrap();
    assert_eq!(r.evaluations, 1 << 17);
    assert!((r.values[3] - 1.0).abs() < 1e-9);
}
