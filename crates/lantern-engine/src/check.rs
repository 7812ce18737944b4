//! Checks of the numbers a user gives (flags, intervention specs, experiment files), run before
//! any work starts. Each names the flag or field, so the message says what to fix:
//! `--alpha must be finite, got NaN`, `[p3] top_p must be in (0, 1], got 0`.
//!
//! They return the message as a `String` so clap value parsers, the engine's errors and
//! `anyhow` can all use them.

/// A finite number.
pub fn finite(name: &str, v: f64) -> Result<f64, String> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{name} must be finite, got {v}"))
    }
}

/// A finite number that also fits an `f32` (values applied to activations are converted).
pub fn finite_f32(name: &str, v: f64) -> Result<f64, String> {
    finite(name, v)?;
    if (v as f32).is_finite() {
        Ok(v)
    } else {
        Err(format!(
            "{name} must fit a 32-bit float (|x| < 3.4e38), got {v}"
        ))
    }
}

/// A finite number `> 0`.
pub fn positive(name: &str, v: f64) -> Result<f64, String> {
    if finite(name, v)? > 0.0 {
        Ok(v)
    } else {
        Err(format!("{name} must be > 0, got {v}"))
    }
}

/// A finite number `>= 0`.
pub fn non_negative(name: &str, v: f64) -> Result<f64, String> {
    if finite(name, v)? >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{name} must be >= 0, got {v}"))
    }
}

/// A probability-like number in `(0, 1]` (`top_p`) or, with `open_top`, in `(0, 1)`
/// (significance levels).
pub fn unit_interval(name: &str, v: f64, open_top: bool) -> Result<f64, String> {
    let ok = finite(name, v)? > 0.0 && if open_top { v < 1.0 } else { v <= 1.0 };
    if ok {
        Ok(v)
    } else {
        let top = if open_top { "1)" } else { "1]" };
        Err(format!("{name} must be in (0, {top}, got {v}"))
    }
}

/// A number in `[0, 1]` (thresholds, fractions).
pub fn fraction(name: &str, v: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&finite(name, v)?) {
        Ok(v)
    } else {
        Err(format!("{name} must be in [0, 1], got {v}"))
    }
}

/// A count of at least `min`.
pub fn at_least(name: &str, v: usize, min: usize) -> Result<usize, String> {
    if v >= min {
        Ok(v)
    } else {
        Err(format!("{name} must be at least {min}, got {v}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_field_and_value() {
        assert_eq!(
            finite("--alpha", f64::NAN).unwrap_err(),
            "--alpha must be finite, got NaN"
        );
        assert_eq!(
            finite("x", f64::INFINITY).unwrap_err(),
            "x must be finite, got inf"
        );
        assert!(finite_f32("value", 1e39).unwrap_err().contains("32-bit"));
        assert_eq!(positive("s", 0.0).unwrap_err(), "s must be > 0, got 0");
        assert_eq!(
            non_negative("t", -1.0).unwrap_err(),
            "t must be >= 0, got -1"
        );
        assert!(unit_interval("a", 1.0, true).is_err());
        assert_eq!(unit_interval("p", 1.0, false), Ok(1.0));
        assert!(unit_interval("p", 0.0, false).is_err());
        assert!(fraction("f", 1.5).is_err());
        assert_eq!(
            at_least("n", 0, 1).unwrap_err(),
            "n must be at least 1, got 0"
        );
        assert_eq!(at_least("n", 3, 1), Ok(3));
    }
}
