//! Small dense linear algebra: least squares and eigenvalues.
//!
//! * [`Qr`]: Householder QR with column pivoting for `n × d` least-squares problems
//!   (`n` samples, `d` regressors, column-major input). A column whose norm after
//!   projection onto the previously chosen columns drops below `1e-9` of its own norm is
//!   treated as linearly dependent and left out (its coefficient is reported as 0). This
//!   makes singular designs (e.g. duplicated series) well defined: residuals are the exact
//!   projection residuals on the column span, never NaN.
//! * [`eigenvalues`]: Householder reduction to upper Hessenberg form followed by the
//!   complex single-shift QR algorithm with Wilkinson shifts and deflation (2 × 2 blocks
//!   are solved in closed form), so complex-conjugate eigenvalues (e.g. rotations) are
//!   handled. [`spectral_radius`] falls back to Gelfand's formula `‖A^k‖^{1/k}` should the
//!   QR iteration fail to converge.

use crate::error::{CausalError, Result};

/// Relative tolerance below which a pivoted column counts as linearly dependent.
pub const RANK_TOL: f64 = 1e-9;

/// Householder QR decomposition with column pivoting of a column-major matrix.
///
/// ```
/// use lantern_causal::linalg::Qr;
/// // y = 1 + 2 x, with a duplicated regressor column.
/// let x = vec![0.0, 1.0, 2.0, 3.0];
/// let cols = vec![vec![1.0; 4], x.clone(), x.clone()];
/// let qr = Qr::new(&cols).unwrap();
/// assert_eq!(qr.rank(), 2);
/// let y: Vec<f64> = x.iter().map(|v| 1.0 + 2.0 * v).collect();
/// let b = qr.solve(&y).unwrap();
/// assert!((b[0] - 1.0).abs() < 1e-10 && (b[1] + b[2] - 2.0).abs() < 1e-10);
/// assert!(qr.residuals(&y).unwrap().iter().all(|r| r.abs() < 1e-10));
/// ```
#[derive(Debug, Clone)]
pub struct Qr {
    n: usize,
    d: usize,
    /// Householder vectors `v_k` (acting on rows `k..n`) and their `beta_k = 2 / v·v`.
    house: Vec<(Vec<f64>, f64)>,
    /// Pivoted, reduced columns: `a[j][i]` for `i <= j < rank` is `R[i][j]`.
    a: Vec<Vec<f64>>,
    perm: Vec<usize>,
    rank: usize,
}

impl Qr {
    /// Factorises the `n × d` matrix given as `d` columns of length `n`.
    pub fn new(cols: &[Vec<f64>]) -> Result<Self> {
        let d = cols.len();
        let n = cols.first().map_or(0, Vec::len);
        if cols.iter().any(|c| c.len() != n) {
            return Err(CausalError::Dimension(
                "QR columns of unequal length".into(),
            ));
        }
        if cols.iter().flatten().any(|v| !v.is_finite()) {
            return Err(CausalError::Numerical(
                "non-finite value in design matrix".into(),
            ));
        }
        let mut a: Vec<Vec<f64>> = cols.to_vec();
        let orig: Vec<f64> = a.iter().map(|c| norm(c)).collect();
        let mut orig_perm = orig.clone();
        let mut perm: Vec<usize> = (0..d).collect();
        let mut house = Vec::new();
        let mut rank = 0;
        for k in 0..d.min(n) {
            // Pivot on the largest remaining norm relative to the column's own norm.
            let mut best = k;
            let mut best_ratio = -1.0;
            for (j, col) in a.iter().enumerate().skip(k) {
                let ratio = if orig_perm[j] > 0.0 {
                    norm(&col[k..]) / orig_perm[j]
                } else {
                    0.0
                };
                if ratio > best_ratio {
                    best_ratio = ratio;
                    best = j;
                }
            }
            if best_ratio <= RANK_TOL {
                break;
            }
            a.swap(k, best);
            perm.swap(k, best);
            orig_perm.swap(k, best);
            let x = &a[k][k..];
            let xnorm = norm(x);
            let alpha = if x[0] >= 0.0 { -xnorm } else { xnorm };
            let mut v = x.to_vec();
            v[0] -= alpha;
            let vv: f64 = v.iter().map(|t| t * t).sum();
            let beta = if vv > 0.0 { 2.0 / vv } else { 0.0 };
            for col in a.iter_mut().skip(k + 1) {
                apply_householder(&v, beta, &mut col[k..]);
            }
            a[k][k] = alpha;
            a[k][k + 1..].iter_mut().for_each(|t| *t = 0.0);
            house.push((v, beta));
            rank = k + 1;
        }
        Ok(Self {
            n,
            d,
            house,
            a,
            perm,
            rank,
        })
    }

    /// Numerical rank (number of independent columns kept).
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Least-squares residuals `y - X b`.
    pub fn residuals(&self, y: &[f64]) -> Result<Vec<f64>> {
        let mut r = self.qt(y)?;
        r[..self.rank].iter_mut().for_each(|t| *t = 0.0);
        for (k, (v, beta)) in self.house.iter().enumerate().rev() {
            apply_householder(v, *beta, &mut r[k..]);
        }
        Ok(r)
    }

    /// Least-squares coefficients (length `d`); dependent columns get coefficient 0.
    pub fn solve(&self, y: &[f64]) -> Result<Vec<f64>> {
        let qty = self.qt(y)?;
        let mut b = vec![0.0; self.rank];
        for i in (0..self.rank).rev() {
            let mut s = qty[i];
            for (j, bj) in b.iter().enumerate().skip(i + 1) {
                s -= self.a[j][i] * bj;
            }
            b[i] = s / self.a[i][i];
        }
        let mut out = vec![0.0; self.d];
        for (k, bk) in b.into_iter().enumerate() {
            out[self.perm[k]] = if bk.is_finite() { bk } else { 0.0 };
        }
        Ok(out)
    }

    /// Original column indices that were dropped as linearly dependent.
    pub fn dependent_columns(&self) -> Vec<usize> {
        let mut v = self.perm[self.rank..].to_vec();
        v.sort_unstable();
        v
    }

    fn qt(&self, y: &[f64]) -> Result<Vec<f64>> {
        if y.len() != self.n {
            return Err(CausalError::Dimension(format!(
                "response has {} rows, design has {}",
                y.len(),
                self.n
            )));
        }
        let mut r = y.to_vec();
        for (k, (v, beta)) in self.house.iter().enumerate() {
            apply_householder(v, *beta, &mut r[k..]);
        }
        Ok(r)
    }
}

fn apply_householder(v: &[f64], beta: f64, x: &mut [f64]) {
    let s: f64 = v.iter().zip(x.iter()).map(|(a, b)| a * b).sum::<f64>() * beta;
    if s != 0.0 {
        for (xi, vi) in x.iter_mut().zip(v) {
            *xi -= s * vi;
        }
    }
}

fn norm(x: &[f64]) -> f64 {
    // Scaled to avoid overflow for large magnitudes.
    let scale = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if scale == 0.0 || !scale.is_finite() {
        return if scale.is_finite() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    scale * x.iter().map(|v| (v / scale).powi(2)).sum::<f64>().sqrt()
}

/// A complex number (only what the eigenvalue routine needs).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Complex {
    /// Real part.
    pub re: f64,
    /// Imaginary part.
    pub im: f64,
}

impl Complex {
    /// Builds `re + i im`.
    pub const fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }
    /// Modulus `|z|`.
    pub fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }
    fn conj(self) -> Self {
        Self::new(self.re, -self.im)
    }
    fn add(self, o: Self) -> Self {
        Self::new(self.re + o.re, self.im + o.im)
    }
    fn sub(self, o: Self) -> Self {
        Self::new(self.re - o.re, self.im - o.im)
    }
    fn mul(self, o: Self) -> Self {
        Self::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
    fn scale(self, s: f64) -> Self {
        Self::new(self.re * s, self.im * s)
    }
    fn sqrt(self) -> Self {
        let r = self.abs();
        if r == 0.0 {
            return Self::default();
        }
        let re = ((r + self.re) / 2.0).max(0.0).sqrt();
        let im = ((r - self.re) / 2.0).max(0.0).sqrt();
        Self::new(re, if self.im < 0.0 { -im } else { im })
    }
}

/// Eigenvalues of a square real matrix (rows given as `Vec`s), in no particular order.
///
/// ```
/// use lantern_causal::linalg::eigenvalues;
/// // 90° rotation: eigenvalues ±i.
/// let ev = eigenvalues(&[vec![0.0, -1.0], vec![1.0, 0.0]]).unwrap();
/// assert!(ev.iter().all(|z| (z.abs() - 1.0).abs() < 1e-12 && z.re.abs() < 1e-12));
/// ```
pub fn eigenvalues(m: &[Vec<f64>]) -> Result<Vec<Complex>> {
    let n = m.len();
    if m.iter().any(|r| r.len() != n) {
        return Err(CausalError::Dimension("matrix is not square".into()));
    }
    if m.iter().flatten().any(|v| !v.is_finite()) {
        return Err(CausalError::Numerical("non-finite matrix entry".into()));
    }
    let mut h = m.to_vec();
    hessenberg(&mut h);
    let mut z: Vec<Vec<Complex>> = h
        .iter()
        .map(|r| r.iter().map(|&v| Complex::new(v, 0.0)).collect())
        .collect();
    hessenberg_qr(&mut z)
}

/// Spectral radius `max |λ|` of a square matrix; 0 for an empty matrix.
///
/// ```
/// use lantern_causal::linalg::spectral_radius;
/// let a = vec![vec![0.0, 0.0, 0.8], vec![0.8, 0.0, 0.0], vec![0.0, 0.8, 0.0]];
/// assert!((spectral_radius(&a).unwrap() - 0.8).abs() < 1e-10);
/// assert_eq!(spectral_radius(&[]).unwrap(), 0.0);
/// ```
pub fn spectral_radius(m: &[Vec<f64>]) -> Result<f64> {
    if m.is_empty() {
        return Ok(0.0);
    }
    match eigenvalues(m) {
        Ok(ev) => Ok(ev.iter().map(|z| z.abs()).fold(0.0, f64::max)),
        Err(CausalError::Numerical(_)) if m.iter().flatten().all(|v| v.is_finite()) => {
            Ok(gelfand_radius(m))
        }
        Err(e) => Err(e),
    }
}

/// In-place Householder reduction to upper Hessenberg form (similarity transform).
#[allow(clippy::needless_range_loop)] // index-based dense kernels read clearer
fn hessenberg(h: &mut [Vec<f64>]) {
    let n = h.len();
    for k in 0..n.saturating_sub(2) {
        let x: Vec<f64> = (k + 1..n).map(|i| h[i][k]).collect();
        let xnorm = norm(&x);
        if xnorm == 0.0 {
            continue;
        }
        let alpha = if x[0] >= 0.0 { -xnorm } else { xnorm };
        let mut v = x;
        v[0] -= alpha;
        let vv: f64 = v.iter().map(|t| t * t).sum();
        if vv == 0.0 {
            continue;
        }
        let beta = 2.0 / vv;
        // H = P H: rows k+1..n.
        for j in 0..n {
            let s: f64 = (0..v.len()).map(|i| v[i] * h[k + 1 + i][j]).sum::<f64>() * beta;
            for (i, vi) in v.iter().enumerate() {
                h[k + 1 + i][j] -= s * vi;
            }
        }
        // H = H P: columns k+1..n.
        for row in h.iter_mut() {
            let s: f64 = (0..v.len()).map(|i| v[i] * row[k + 1 + i]).sum::<f64>() * beta;
            for (i, vi) in v.iter().enumerate() {
                row[k + 1 + i] -= s * vi;
            }
        }
        for row in h.iter_mut().skip(k + 2) {
            row[k] = 0.0;
        }
    }
}

/// Eigenvalues of the 2 × 2 matrix `[[a, b], [c, d]]`.
fn eig2(a: Complex, b: Complex, c: Complex, d: Complex) -> (Complex, Complex) {
    let half_tr = a.add(d).scale(0.5);
    let half_diff = a.sub(d).scale(0.5);
    let disc = half_diff.mul(half_diff).add(b.mul(c)).sqrt();
    (half_tr.add(disc), half_tr.sub(disc))
}

/// Complex shifted QR on an upper Hessenberg matrix; consumes `h`.
#[allow(clippy::needless_range_loop)] // index-based dense kernels read clearer
fn hessenberg_qr(h: &mut [Vec<Complex>]) -> Result<Vec<Complex>> {
    let n = h.len();
    let mut ev = Vec::with_capacity(n);
    if n == 0 {
        return Ok(ev);
    }
    let scale = h.iter().flatten().map(|z| z.abs()).fold(0.0, f64::max);
    let mut hi = n - 1;
    let mut iter = 0usize;
    let max_iter = 100 * n.max(4);
    loop {
        // Find the bottom-most unreduced block [l..=hi].
        let mut l = hi;
        while l > 0 {
            let sub = h[l][l - 1].abs();
            let diag = h[l - 1][l - 1].abs() + h[l][l].abs();
            let tol = f64::EPSILON * if diag > 0.0 { diag } else { scale };
            if sub <= tol || sub < f64::MIN_POSITIVE {
                h[l][l - 1] = Complex::default();
                break;
            }
            l -= 1;
        }
        if l == hi {
            ev.push(h[hi][hi]);
            iter = 0;
            if hi == 0 {
                break;
            }
            hi -= 1;
            continue;
        }
        if l + 1 == hi {
            let (e1, e2) = eig2(h[l][l], h[l][hi], h[hi][l], h[hi][hi]);
            ev.push(e1);
            ev.push(e2);
            iter = 0;
            if l == 0 {
                break;
            }
            hi = l - 1;
            continue;
        }
        iter += 1;
        if iter > max_iter {
            return Err(CausalError::Numerical(
                "QR eigenvalue iteration did not converge".into(),
            ));
        }
        // Wilkinson shift (eigenvalue of trailing 2x2 closest to h[hi][hi]);
        // exceptional shifts break rare cycles.
        let mu = if iter % 11 == 10 {
            // hi >= l + 2 here, so hi - 2 is inside the active block.
            h[hi][hi].add(Complex::new(
                h[hi][hi - 1].abs() + h[hi - 1][hi - 2].abs(),
                0.0,
            ))
        } else {
            let (e1, e2) = eig2(h[hi - 1][hi - 1], h[hi - 1][hi], h[hi][hi - 1], h[hi][hi]);
            if e1.sub(h[hi][hi]).abs() <= e2.sub(h[hi][hi]).abs() {
                e1
            } else {
                e2
            }
        };
        for (k, row) in h.iter_mut().enumerate().take(hi + 1).skip(l) {
            row[k] = row[k].sub(mu);
        }
        // Q^H (H - mu I) = R via Givens rotations on rows.
        let mut rots = Vec::with_capacity(hi - l);
        for k in l..hi {
            let x = h[k][k];
            let y = h[k + 1][k];
            let r = x.abs().hypot(y.abs());
            let (c, s) = if r == 0.0 {
                (Complex::new(1.0, 0.0), Complex::default())
            } else {
                (x.scale(1.0 / r), y.scale(1.0 / r))
            };
            for m in k..=hi {
                let u = h[k][m];
                let v = h[k + 1][m];
                h[k][m] = c.conj().mul(u).add(s.conj().mul(v));
                h[k + 1][m] = c.mul(v).sub(s.mul(u));
            }
            rots.push((c, s));
        }
        // H = R Q + mu I via the same rotations on columns.
        for (idx, (c, s)) in rots.into_iter().enumerate() {
            let k = l + idx;
            for row in h.iter_mut().take((k + 2).min(hi + 1)).skip(l) {
                let u = row[k];
                let v = row[k + 1];
                row[k] = u.mul(c).add(v.mul(s));
                row[k + 1] = v.mul(c.conj()).sub(u.mul(s.conj()));
            }
        }
        for (k, row) in h.iter_mut().enumerate().take(hi + 1).skip(l) {
            row[k] = row[k].add(mu);
        }
        if h.iter()
            .flatten()
            .any(|z| !z.re.is_finite() || !z.im.is_finite())
        {
            return Err(CausalError::Numerical(
                "QR eigenvalue iteration overflowed".into(),
            ));
        }
    }
    Ok(ev)
}

/// Gelfand's formula by repeated squaring with renormalisation: `‖A^(2^k)‖^(1/2^k)`.
#[allow(clippy::needless_range_loop)] // index-based dense kernels read clearer
fn gelfand_radius(m: &[Vec<f64>]) -> f64 {
    let n = m.len();
    let fro = |a: &[Vec<f64>]| a.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
    let mut a = m.to_vec();
    let mut log_scale = 0.0f64; // log of the factor removed so far, per unit exponent
    let mut power = 1.0f64;
    for _ in 0..40 {
        let f = fro(&a);
        if f == 0.0 || !f.is_finite() {
            return 0.0;
        }
        log_scale += f.ln() / power;
        a.iter_mut().flatten().for_each(|v| *v /= f);
        let mut sq = vec![vec![0.0; n]; n];
        for i in 0..n {
            for k in 0..n {
                let aik = a[i][k];
                if aik != 0.0 {
                    for j in 0..n {
                        sq[i][j] += aik * a[k][j];
                    }
                }
            }
        }
        a = sq;
        power *= 2.0;
    }
    let f = fro(&a);
    if f == 0.0 || !f.is_finite() {
        return 0.0;
    }
    (log_scale + f.ln() / power).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn radius(m: &[Vec<f64>]) -> f64 {
        spectral_radius(m).unwrap()
    }

    #[test]
    fn known_spectra() {
        let rot = |th: f64, s: f64| {
            vec![
                vec![s * th.cos(), -s * th.sin()],
                vec![s * th.sin(), s * th.cos()],
            ]
        };
        assert!((radius(&rot(0.3, 1.0)) - 1.0).abs() < 1e-12);
        assert!((radius(&rot(1.1, 0.8)) - 0.8).abs() < 1e-12);
        // Companion of (x - 0.9)(x^2 + 0.25) = x^3 - 0.9x^2 + 0.25x - 0.225.
        let comp = vec![
            vec![0.9, -0.25, 0.225],
            vec![1.0, 0.0, 0.0],
            vec![0.0, 1.0, 0.0],
        ];
        let mut ev = eigenvalues(&comp).unwrap();
        ev.sort_by(|a, b| b.abs().total_cmp(&a.abs()));
        assert!((ev[0].re - 0.9).abs() < 1e-10 && ev[0].im.abs() < 1e-10);
        assert!((ev[1].abs() - 0.5).abs() < 1e-10 && ev[1].re.abs() < 1e-10);
        // Triangular, nilpotent, zero, 1x1.
        assert!(
            (radius(&[
                vec![0.5, 9.0, 1.0],
                vec![0.0, -0.7, 3.0],
                vec![0.0, 0.0, 0.2]
            ]) - 0.7)
                .abs()
                < 1e-10
        );
        assert!(radius(&[vec![0.0, 1.0], vec![0.0, 0.0]]) < 1e-12);
        assert_eq!(radius(&vec![vec![0.0; 3]; 3]), 0.0);
        assert_eq!(radius(&[vec![-1.5]]), 1.5);
        // 4-cycle permutation scaled: eigenvalues 0.9 * {1, i, -1, -i}.
        let mut p = vec![vec![0.0; 4]; 4];
        for i in 0..4 {
            p[(i + 1) % 4][i] = 0.9;
        }
        assert!((radius(&p) - 0.9).abs() < 1e-10);
        assert!((gelfand_radius(&p) - 0.9).abs() < 1e-6);
        assert!((gelfand_radius(&rot(0.7, 1.2)) - 1.2).abs() < 1e-6);
    }

    #[test]
    fn larger_random_matrix_matches_trace_and_gelfand() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let n = 15;
        let m: Vec<Vec<f64>> = (0..n)
            .map(|_| (0..n).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        let ev = eigenvalues(&m).unwrap();
        assert_eq!(ev.len(), n);
        let tr: f64 = (0..n).map(|i| m[i][i]).sum();
        let sum_re: f64 = ev.iter().map(|z| z.re).sum();
        let sum_im: f64 = ev.iter().map(|z| z.im).sum();
        assert!((tr - sum_re).abs() < 1e-9 && sum_im.abs() < 1e-9);
        let r = radius(&m);
        assert!((r - gelfand_radius(&m)).abs() / r < 1e-3);
    }

    #[test]
    fn qr_least_squares() {
        let x1 = vec![1.0, 2.0, 3.0, 4.0, 5.0];
        let x2 = vec![2.0, 1.0, 0.0, 1.0, 3.0];
        let y: Vec<f64> = x1.iter().zip(&x2).map(|(a, b)| 0.5 - a + 3.0 * b).collect();
        let qr = Qr::new(&[vec![1.0; 5], x1, x2]).unwrap();
        let b = qr.solve(&y).unwrap();
        assert!(
            (b[0] - 0.5).abs() < 1e-10 && (b[1] + 1.0).abs() < 1e-10 && (b[2] - 3.0).abs() < 1e-10
        );
        assert!(Qr::new(&[vec![1.0, f64::NAN]]).is_err());
        let zero = Qr::new(&[vec![0.0; 3]]).unwrap();
        assert_eq!(zero.rank(), 0);
        assert_eq!(
            zero.residuals(&[1.0, 2.0, 3.0]).unwrap(),
            vec![1.0, 2.0, 3.0]
        );
        assert_eq!(zero.dependent_columns(), vec![0]);
    }
}
