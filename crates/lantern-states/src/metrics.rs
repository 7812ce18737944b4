//! Held-out metrics: one-vs-rest balanced accuracy and ROC AUC.

/// Balanced accuracy `(TPR + TNR) / 2` with prediction `score > 0`.
/// Returns 0.5 for an empty class (no information).
pub fn balanced_accuracy(pos: &[f64], neg: &[f64]) -> f64 {
    let tpr = if pos.is_empty() {
        0.5
    } else {
        pos.iter().filter(|&&s| s > 0.0).count() as f64 / pos.len() as f64
    };
    let tnr = if neg.is_empty() {
        0.5
    } else {
        neg.iter().filter(|&&s| s <= 0.0).count() as f64 / neg.len() as f64
    };
    0.5 * (tpr + tnr)
}

/// ROC AUC (Mann–Whitney U with average ranks for ties). 0.5 when a class is empty.
pub fn roc_auc(pos: &[f64], neg: &[f64]) -> f64 {
    if pos.is_empty() || neg.is_empty() {
        return 0.5;
    }
    let mut all: Vec<(f64, bool)> = pos
        .iter()
        .map(|&s| (s, true))
        .chain(neg.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        // ranks i+1 ..= j+1 share the average rank
        let avg = (i + j + 2) as f64 / 2.0;
        rank_sum_pos += avg * all[i..=j].iter().filter(|e| e.1).count() as f64;
        i = j + 1;
    }
    let (np, nn) = (pos.len() as f64, neg.len() as f64);
    (rank_sum_pos - np * (np + 1.0) / 2.0) / (np * nn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_and_accuracy() {
        assert_eq!(roc_auc(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(roc_auc(&[1.0, 2.0], &[3.0, 4.0]), 0.0);
        assert_eq!(roc_auc(&[1.0], &[1.0]), 0.5);
        assert!((roc_auc(&[2.0, 0.5], &[1.0, 0.0]) - 0.75).abs() < 1e-12);
        assert_eq!(
            balanced_accuracy(&[1.0, -1.0], &[-1.0, -1.0, -1.0, 1.0]),
            0.625
        );
    }
}
