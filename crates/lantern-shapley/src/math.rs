//! Small numerical helpers: combinatorial weights and a dense
//! Cholesky solver with a ridge fallback (no linear-algebra crate needed).

use crate::error::{Result, ShapleyError};

/// Binomial coefficient `C(n, k)` as `f64` (exact for the sizes used here).
pub(crate) fn binom(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    let k = k.min(n - k);
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Shapley weight `|S|! (n-|S|-1)! / n!` of a coalition of size `s` not
/// containing the player, i.e. `1 / (n C(n-1, s))`.
pub(crate) fn shapley_weight(n: usize, s: usize) -> f64 {
    1.0 / (n as f64 * binom(n - 1, s))
}

/// Interaction weight `|S|! (n-|S|-2)! / (n-1)!` for `S ⊆ N \ {i, j}`,
/// i.e. `1 / ((n-1) C(n-2, s))`.
pub(crate) fn interaction_weight(n: usize, s: usize) -> f64 {
    1.0 / ((n - 1) as f64 * binom(n - 2, s))
}

/// Relative ridge terms tried, in order, when a system is not numerically
/// positive definite (multiplied by the mean diagonal).
const RIDGES: [f64; 5] = [0.0, 1e-10, 1e-8, 1e-6, 1e-4];

/// Cholesky factor `L` (row-major, lower) of the `n × n` matrix `a` plus
/// `ridge` on the diagonal, or `None` if a pivot is not clearly positive.
fn cholesky(a: &[f64], n: usize, ridge: f64, tol: f64) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j] + if i == j { ridge } else { 0.0 };
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s.is_nan() || s <= tol {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

fn cholesky_solve(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (y[i] - s) / l[i * n + i];
    }
    x
}

/// Solves `A x = b` for each right-hand side, for a symmetric positive
/// semi-definite `A` (row-major `n × n`).
///
/// Uses a Cholesky factorisation. If `A` is singular or numerically
/// indefinite, a ridge `λ·mean(diag A)·I` is added with `λ` = 1e-10, 1e-8,
/// 1e-6, 1e-4 in turn; if all fail, [`ShapleyError::SingularSystem`] is
/// returned. Also returns the relative ridge that was used (0 if none).
pub(crate) fn solve_spd(a: &[f64], n: usize, rhs: &[&[f64]]) -> Result<(Vec<Vec<f64>>, f64)> {
    if a.len() != n * n || rhs.iter().any(|b| b.len() != n) {
        return Err(ShapleyError::InvalidArgument(
            "linear system dimensions do not match".into(),
        ));
    }
    let scale = (0..n).map(|i| a[i * n + i]).sum::<f64>() / n as f64;
    if !(scale.is_finite() && scale > 0.0) {
        return Err(ShapleyError::SingularSystem(
            "the least-squares matrix has a zero or non-finite diagonal".into(),
        ));
    }
    let tol = scale * 1e-13;
    for &lambda in &RIDGES {
        if let Some(l) = cholesky(a, n, lambda * scale, tol) {
            let xs = rhs.iter().map(|b| cholesky_solve(&l, n, b)).collect();
            return Ok((xs, lambda));
        }
    }
    Err(ShapleyError::SingularSystem(format!(
        "the {n}×{n} least-squares matrix is singular even with a relative ridge of {:e}; \
         increase the budget",
        RIDGES[RIDGES.len() - 1]
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights() {
        assert_eq!(binom(5, 2), 10.0);
        assert_eq!(binom(3, 4), 0.0);
        // n = 3: weights 1/3, 1/6, 1/3 for sizes 0, 1, 2.
        assert!((shapley_weight(3, 0) - 1.0 / 3.0).abs() < 1e-15);
        assert!((shapley_weight(3, 1) - 1.0 / 6.0).abs() < 1e-15);
        // Weights over all coalitions not containing i sum to 1.
        let n = 7;
        let tot: f64 = (0..n).map(|s| binom(n - 1, s) * shapley_weight(n, s)).sum();
        assert!((tot - 1.0).abs() < 1e-12);
        let tot: f64 = (0..n - 1)
            .map(|s| binom(n - 2, s) * interaction_weight(n, s))
            .sum();
        assert!((tot - 1.0).abs() < 1e-12);
    }

    #[test]
    fn solves_spd_and_falls_back() {
        let a = [4.0, 2.0, 2.0, 3.0];
        let (x, ridge) = solve_spd(&a, 2, &[&[2.0, 1.0]]).unwrap();
        assert_eq!(ridge, 0.0);
        assert!((x[0][0] - 0.5).abs() < 1e-12 && x[0][1].abs() < 1e-12);
        // Rank-deficient: ridge fallback gives the symmetric solution.
        let a = [1.0, 1.0, 1.0, 1.0];
        let (x, ridge) = solve_spd(&a, 2, &[&[2.0, 2.0]]).unwrap();
        assert!(ridge > 0.0);
        assert!((x[0][0] - x[0][1]).abs() < 1e-4 && (x[0][0] - 1.0).abs() < 1e-3);
        assert!(matches!(
            solve_spd(&[0.0; 4], 2, &[&[1.0, 1.0]]),
            Err(ShapleyError::SingularSystem(_))
        ));
    }
}
