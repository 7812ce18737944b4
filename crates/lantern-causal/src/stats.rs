//! Small, self-contained statistical special functions.
//!
//! * [`ln_gamma`]: Lanczos approximation (g = 7, 9 terms), relative error ≈ 1e-15.
//! * [`regularized_incomplete_beta`]: continued fraction (modified Lentz), as in
//!   Press et al., *Numerical Recipes* §6.4.
//! * [`student_t_two_sided_p`]: `P(|T| ≥ |t|) = I_{ν/(ν+t²)}(ν/2, 1/2)`.
//! * [`normal_two_sided_p`] via a Chebyshev-fitted `erfc` (Numerical Recipes `erfcc`,
//!   relative error < 1.2e-7).
//! * [`ranks`] (average ranks for ties) and [`pearson`].

/// Natural log of the gamma function for `x > 0` (returns `+inf` for `x ≤ 0`).
///
/// ```
/// let v = lantern_causal::stats::ln_gamma(5.0);
/// assert!((v - 24f64.ln()).abs() < 1e-12);
/// ```
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x <= 0.0 || !x.is_finite() {
        return f64::INFINITY;
    }
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        let s = (std::f64::consts::PI * x).sin();
        return std::f64::consts::PI.ln() - s.abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised incomplete beta function `I_x(a, b)` for `a, b > 0`, `x` clamped to `[0, 1]`.
///
/// ```
/// use lantern_causal::stats::regularized_incomplete_beta as ib;
/// assert!((ib(2.0, 3.0, 0.5) - 0.6875).abs() < 1e-12);
/// ```
pub fn regularized_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if !(a > 0.0 && b > 0.0) || x.is_nan() {
        return 0.0; // never NaN: degenerate parameters give 0
    }
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        (front * beta_cf(a, b, x) / a).clamp(0.0, 1.0)
    } else {
        (1.0 - front * beta_cf(b, a, 1.0 - x) / b).clamp(0.0, 1.0)
    }
}

fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=1000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// Two-sided p-value of Student's t statistic with `dof > 0` degrees of freedom.
///
/// Infinite `|t|` gives 0; `dof == 0` or NaN input gives 1 (no evidence).
///
/// ```
/// use lantern_causal::stats::student_t_two_sided_p;
/// assert!((student_t_two_sided_p(2.0, 10.0) - 0.073_388).abs() < 1e-5);
/// ```
pub fn student_t_two_sided_p(t: f64, dof: f64) -> f64 {
    if t.is_nan() || dof.is_nan() || dof <= 0.0 {
        return 1.0;
    }
    if t.is_infinite() {
        return 0.0;
    }
    let x = dof / (dof + t * t);
    regularized_incomplete_beta(0.5 * dof, 0.5, x)
}

/// Complementary error function (Chebyshev fit, relative error < 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Two-sided p-value of a standard-normal statistic.
///
/// ```
/// let p = lantern_causal::stats::normal_two_sided_p(1.959_964);
/// assert!((p - 0.05).abs() < 1e-6);
/// ```
pub fn normal_two_sided_p(z: f64) -> f64 {
    if z.is_nan() {
        return 1.0;
    }
    erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0)
}

/// Ranks `1..=n` with ties given their average rank.
///
/// ```
/// assert_eq!(lantern_causal::stats::ranks(&[3.0, 1.0, 3.0]), vec![2.5, 1.0, 2.5]);
/// ```
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut out = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            out[k] = r;
        }
        i = j + 1;
    }
    out
}

/// Pearson correlation; `None` when fewer than 2 points or either side has zero variance.
///
/// ```
/// let r = lantern_causal::stats::pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0]).unwrap();
/// assert!(r > 0.98);
/// assert!(lantern_causal::stats::pearson(&[1.0, 1.0], &[1.0, 2.0]).is_none());
/// ```
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    let denom = (sxx * syy).sqrt();
    if denom.is_nan() || denom <= 1e-300 || !denom.is_finite() {
        return None;
    }
    let r = (sxy / denom).clamp(-1.0, 1.0);
    r.is_finite().then_some(r)
}

/// Benjamini–Hochberg adjusted p-values (q-values) of `p`, in input order, for a family of
/// `family ≥ p.len()` hypotheses (the missing ones count as `p = 1`, which only makes the
/// adjustment more conservative): `q_(k) = min_{j ≥ k} min(1, p_(j) · m / j)`.
///
/// ```
/// use lantern_causal::stats::benjamini_hochberg;
/// let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.5], 4);
/// assert!((q[0] - 0.04).abs() < 1e-12);
/// assert!((q[1] - 0.04 * 4.0 / 3.0).abs() < 1e-12 && (q[2] - 0.04 * 4.0 / 3.0).abs() < 1e-12);
/// assert_eq!(q[3], 0.5);
/// assert!(benjamini_hochberg(&[], 3).is_empty());
/// ```
pub fn benjamini_hochberg(p: &[f64], family: usize) -> Vec<f64> {
    let m = family.max(p.len()) as f64;
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    let mut q = vec![1.0; p.len()];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        let v = (p[i] * m / (rank + 1) as f64).min(1.0);
        running = running.min(if v.is_nan() { 1.0 } else { v });
        q[i] = running;
    }
    q
}

/// Two-sided Student-t critical value `t` with `P(|T| > t) = 1 − level` (e.g. level 0.95),
/// by bisection on [`student_t_two_sided_p`]; `None` for `dof ≤ 0` or a level outside (0, 1).
///
/// ```
/// use lantern_causal::stats::student_t_critical;
/// assert!((student_t_critical(0.95, 10.0).unwrap() - 2.228_139).abs() < 1e-5);
/// assert!(student_t_critical(0.95, 0.0).is_none());
/// ```
pub fn student_t_critical(level: f64, dof: f64) -> Option<f64> {
    if !(level > 0.0 && level < 1.0 && dof > 0.0) {
        return None;
    }
    let target = 1.0 - level;
    let (mut lo, mut hi) = (0.0f64, 1e6f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_two_sided_p(mid, dof) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(0.5 * (lo + hi))
}

/// Mean and a `level` Student-t interval over `values` (sessions); the interval is `None`
/// with fewer than two values. Non-finite values are the caller's error.
pub fn mean_interval(values: &[f64], level: f64) -> (f64, Option<(f64, f64)>) {
    let n = values.len();
    if n == 0 {
        return (0.0, None);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, None);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = student_t_critical(level, (n - 1) as f64).map(|t| t * (var / n as f64).sqrt());
    (mean, half.map(|h| (mean - h, mean + h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_p_values_match_tables() {
        // Reference values from R: 2*pt(-t, df).
        let cases = [
            (2.0, 10.0, 0.073_388_034),
            (1.0, 1.0, 0.5),
            (3.5, 30.0, 0.001_476_807_4),
            (0.0, 5.0, 1.0),
            (10.0, 100.0, 9.901_689e-17),
        ];
        for (t, df, p) in cases {
            let got = student_t_two_sided_p(t, df);
            assert!(
                (got - p).abs() <= 1e-6 * p.max(1e-10) + 1e-9,
                "t={t} df={df}: {got} vs {p}"
            );
        }
        assert_eq!(student_t_two_sided_p(f64::INFINITY, 3.0), 0.0);
        assert_eq!(student_t_two_sided_p(1.0, 0.0), 1.0);
    }

    #[test]
    fn gamma_and_beta() {
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-13);
        assert!((ln_gamma(0.1) - 2.252_712_651_734_206).abs() < 1e-12);
        assert!((regularized_incomplete_beta(0.5, 0.5, 0.25) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(regularized_incomplete_beta(-1.0, 1.0, 0.5), 0.0);
    }

    #[test]
    fn normal_p() {
        assert!((normal_two_sided_p(0.0) - 1.0).abs() < 1e-7);
        assert!((normal_two_sided_p(-2.575_829) - 0.01).abs() < 1e-7);
    }
}
