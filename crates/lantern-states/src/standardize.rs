//! Per-dimension standardisation `z = (x - mean) / std`.

use serde::{Deserialize, Serialize};

use crate::error::{Result, StatesError};

/// Per-dimension mean and standard deviation fitted on training data.
///
/// `transform(x)_i = (x_i - mean_i) / std_i`. The std is the population std (divide by n),
/// computed in f64; a dimension whose std is zero, tiny (< 1e-8 relative to 1) or non-finite
/// gets `std = 1`, so constant features map to 0 instead of NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fit on rows of equal length (errors on empty, ragged or non-finite input).
    pub fn fit(rows: &[Vec<f32>]) -> Result<Self> {
        let d = check_rows(rows)?;
        let n = rows.len() as f64;
        let mut mean = vec![0.0f64; d];
        for r in rows {
            for (m, &v) in mean.iter_mut().zip(r) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0f64; d];
        for r in rows {
            for ((s, &v), &m) in var.iter_mut().zip(r).zip(&mean) {
                let c = v as f64 - m;
                *s += c * c;
            }
        }
        let std = var
            .iter()
            .map(|&s| {
                let sd = (s / n).sqrt();
                if sd.is_finite() && sd > 1e-8 {
                    sd as f32
                } else {
                    1.0
                }
            })
            .collect();
        Ok(Self {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
        })
    }

    /// Number of dimensions.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Standardise one vector (must have `dim()` entries; extra/missing entries are the
    /// caller's bug — use [`Standardizer::try_transform`] for checked input).
    pub fn transform(&self, x: &[f32]) -> Vec<f32> {
        x.iter()
            .zip(self.mean.iter().zip(&self.std))
            .map(|(&v, (&m, &s))| (v - m) / s)
            .collect()
    }

    /// Checked [`Standardizer::transform`].
    pub fn try_transform(&self, x: &[f32]) -> Result<Vec<f32>> {
        if x.len() != self.dim() {
            return Err(StatesError::DimensionMismatch {
                expected: self.dim(),
                found: x.len(),
            });
        }
        Ok(self.transform(x))
    }

    /// Standardise many rows.
    pub fn transform_all(&self, rows: &[Vec<f32>]) -> Vec<Vec<f32>> {
        rows.iter().map(|r| self.transform(r)).collect()
    }

    /// Map a displacement `u` in standardised space to the original space: `std ⊙ u`
    /// (since `x = mean + std ⊙ z`, moving `z` by `u` moves `x` by `std ⊙ u`).
    pub fn displacement_to_original(&self, u: &[f32]) -> Vec<f32> {
        u.iter().zip(&self.std).map(|(&a, &s)| a * s).collect()
    }
}

/// Validate a feature matrix: non-empty, non-zero width, rectangular, finite. Returns d.
pub(crate) fn check_rows(rows: &[Vec<f32>]) -> Result<usize> {
    let first = rows
        .first()
        .ok_or_else(|| StatesError::EmptyData("no feature vectors".into()))?;
    let d = first.len();
    if d == 0 {
        return Err(StatesError::EmptyData(
            "feature vectors have 0 dimensions".into(),
        ));
    }
    for (row, r) in rows.iter().enumerate() {
        if r.len() != d {
            return Err(StatesError::Ragged {
                row,
                expected: d,
                found: r.len(),
            });
        }
        if let Some((col, &value)) = r.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(StatesError::NonFinite { row, col, value });
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardizer_matches_hand_computation() {
        let rows = vec![
            vec![1.0, 5.0, 2.0],
            vec![3.0, 5.0, 4.0],
            vec![5.0, 5.0, 9.0],
        ];
        let s = Standardizer::fit(&rows).unwrap();
        assert_eq!(s.mean, vec![3.0, 5.0, 5.0]);
        let sd0 = (8.0f32 / 3.0).sqrt();
        assert!((s.std[0] - sd0).abs() < 1e-6);
        assert_eq!(s.std[1], 1.0, "constant dimension gets std 1");
        let z = s.transform_all(&rows);
        for j in 0..3 {
            let m: f32 = z.iter().map(|r| r[j]).sum::<f32>() / 3.0;
            let v: f32 = z.iter().map(|r| (r[j] - m).powi(2)).sum::<f32>() / 3.0;
            assert!(m.abs() < 1e-6);
            if j != 1 {
                assert!((v - 1.0).abs() < 1e-5, "dim {j} variance {v}");
            }
        }
        assert!(z.iter().flatten().all(|v| v.is_finite()));
        assert_eq!(z[0][1], 0.0);
        assert!(s.try_transform(&[1.0]).is_err());
        assert_eq!(s.displacement_to_original(&[1.0, 1.0, 0.0])[0], s.std[0]);
    }

    #[test]
    fn fit_rejects_bad_rows() {
        assert!(matches!(
            Standardizer::fit(&[]),
            Err(StatesError::EmptyData(_))
        ));
        assert!(matches!(
            Standardizer::fit(&[vec![1.0], vec![1.0, 2.0]]),
            Err(StatesError::Ragged { row: 1, .. })
        ));
        assert!(matches!(
            Standardizer::fit(&[vec![1.0], vec![f32::NAN]]),
            Err(StatesError::NonFinite { row: 1, col: 0, .. })
        ));
    }
}
