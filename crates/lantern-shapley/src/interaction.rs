//! Exact pairwise Shapley interaction index (Grabisch & Roubens 1999).
//!
//! For players `i ≠ j`:
//!
//! `I(i,j) = Σ_{S ⊆ N∖{i,j}} |S|!(n−|S|−2)!/(n−1)! · [v(S∪{i,j}) − v(S∪{i}) − v(S∪{j}) + v(S)]`
//!
//! positive for complementary components (worth more together), negative for
//! redundant ones. Computed from all `2^n` coalitions, so limited like
//! [`exact`](crate::exact()).

use crate::error::Result;
use crate::exact::{enumerate_all, shapley_from_table, ExactOptions};
use crate::game::Game;
use crate::math::interaction_weight;
use crate::result::{InteractionResult, Progress};

/// The `n × n` pairwise interaction matrix; the diagonal holds the Shapley
/// values `φ_i` (so one call gives main effects and interactions).
///
/// ```
/// use lantern_shapley::{interaction, Coalition, ExactOptions, FnGame};
/// // v(S) = x0 + x1 + 2·x0·x1 + x2: players 0 and 1 interact with strength 2.
/// let mut g = FnGame::new(3, |s: Coalition| {
///     let x = |i| s.contains(i) as u8 as f64;
///     x(0) + x(1) + 2.0 * x(0) * x(1) + x(2)
/// });
/// let r = interaction(&mut g, &ExactOptions::default(), None).unwrap();
/// assert!((r.matrix[0][1] - 2.0).abs() < 1e-12 && r.matrix[0][2].abs() < 1e-12);
/// assert!((r.matrix[0][0] - 2.0).abs() < 1e-12); // φ_0 = 1 + 2/2
/// ```
pub fn interaction<G: Game + ?Sized>(
    game: &mut G,
    opts: &ExactOptions,
    progress: Progress<'_>,
) -> Result<InteractionResult> {
    let (v, players, evaluations) = enumerate_all(game, opts, progress)?;
    let n = players.len();
    let phi = shapley_from_table(&v, n);
    let weights: Vec<f64> = (0..n.saturating_sub(1))
        .map(|s| interaction_weight(n, s))
        .collect();
    let pair = |i: usize, j: usize| -> f64 {
        let (bi, bj) = (1usize << i, 1usize << j);
        v.iter()
            .enumerate()
            .filter(|(bits, _)| bits & (bi | bj) == 0)
            .map(|(bits, &vs)| {
                let s = bits.count_ones() as usize;
                weights[s] * (v[bits | bi | bj] - v[bits | bi] - v[bits | bj] + vs)
            })
            .sum()
    };
    let mut matrix = vec![vec![0.0; n]; n];
    for (i, row) in matrix.iter_mut().enumerate() {
        row[i] = phi[i];
    }
    let pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .collect();
    for (i, j) in pairs {
        let value = pair(i, j);
        matrix[i][j] = value;
        matrix[j][i] = value;
    }
    Ok(InteractionResult {
        players,
        matrix,
        v_empty: v[0],
        v_full: v[v.len() - 1],
        evaluations,
    })
}
