//! Stratified, seeded train/test split.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Stratified seeded split of example indices into `(train, test)`, both sorted ascending.
///
/// For every label value `c` with `n_c` examples, the examples are shuffled with a
/// `ChaCha8Rng` seeded from `seed` (one shared stream, labels visited in ascending order) and
/// `round(n_c * test_fraction)` of them go to the test split; when `n_c >= 2` this is clamped to
/// `[1, n_c - 1]` so every class appears on both sides. A class with a single example goes to
/// train. `test_fraction` is clamped to `[0, 1]` (NaN counts as 0).
pub fn split_indices(labels: &[usize], test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let f = if test_fraction.is_nan() {
        0.0
    } else {
        test_fraction.clamp(0.0, 1.0)
    };
    let n_classes = labels.iter().copied().max().map_or(0, |m| m + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l].push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for mut idx in by_class {
        if idx.is_empty() {
            continue;
        }
        idx.shuffle(&mut rng);
        let n = idx.len();
        let mut n_test = (n as f64 * f).round() as usize;
        if n >= 2 {
            n_test = n_test.clamp(1, n - 1);
        } else {
            n_test = 0;
        }
        test.extend_from_slice(&idx[..n_test]);
        train.extend_from_slice(&idx[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_disjoint_and_seeded() {
        let labels: Vec<usize> = (0..100)
            .map(|i| if i < 80 { 0 } else { 1 + i % 2 })
            .collect();
        let (tr, te) = split_indices(&labels, 0.25, 7);
        assert_eq!(tr.len() + te.len(), 100);
        let mut all: Vec<usize> = tr.iter().chain(&te).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        let count = |v: &[usize], c| count_in(&labels, v, c);
        assert_eq!(count(&te, 0), 20);
        assert_eq!(count(&te, 1), 3); // round(10 * 0.25) = 3 (2.5 rounds away from zero)
        assert_eq!(count(&te, 2), 3);
        assert_eq!(split_indices(&labels, 0.25, 7), (tr.clone(), te.clone()));
        assert_ne!(split_indices(&labels, 0.25, 8).1, te);
        // tiny classes still appear on both sides
        let small = [0, 0, 1, 1, 1, 1, 2];
        let (tr, te) = split_indices(&small, 0.01, 1);
        assert_eq!(count_in(&small, &te, 0), 1);
        assert_eq!(count_in(&small, &tr, 0), 1);
        assert_eq!(count_in(&small, &te, 2), 0);
        assert_eq!(count_in(&small, &tr, 2), 1);
    }

    fn count_in(labels: &[usize], v: &[usize], c: usize) -> usize {
        v.iter().filter(|&&i| labels[i] == c).count()
    }
}
