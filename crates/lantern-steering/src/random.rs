//! Seeded random directions: the control for a steering direction (how much a state moves under
//! unrelated pushes of the same size).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded random unit direction in `dim` dimensions (isotropic: Gaussian coordinates,
/// Box–Muller), the steering control. The same seed gives the same direction, bit for bit.
pub fn random_direction(dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut d: Vec<f64> = (0..dim)
        .map(|_| {
            let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
            let u2: f64 = rng.random();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    let norm = d.iter().map(|v| v * v).sum::<f64>().sqrt();
    d.iter_mut().for_each(|v| *v /= norm);
    d.into_iter().map(|v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::random_direction;

    #[test]
    fn random_direction_is_a_seeded_isotropic_unit_vector() {
        let d = random_direction(4096, 7);
        let norm: f64 = d.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        assert_eq!(d, random_direction(4096, 7), "same seed, same direction");
        let other = random_direction(4096, 8);
        let cos = lantern_states::cosine(&d, &other);
        // Two independent isotropic directions in 4096 dims: cos ~ N(0, 1/4096), sd 0.016.
        assert!(cos.abs() < 0.08, "cos {cos}");
        // Gaussian coordinates: the squared coordinates of a unit vector average 1/dim, and
        // about 68% of them lie within one sd (1/sqrt(dim)) of zero.
        let within = d.iter().filter(|v| v.abs() < 1.0 / 64.0).count() as f64 / 4096.0;
        assert!((within - 0.683).abs() < 0.03, "{within}");
    }
}
