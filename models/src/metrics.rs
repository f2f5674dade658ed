//! Evaluation measures for binary scores.
//!
//! All functions take parallel slices of scores and labels and are exact (no sampling).
//! Ties in scores are handled the standard way: AUC gives tied pairs half credit, and a
//! budget threshold flags every row tied at the cut.

/// Area under the ROC curve, or `None` when only one class is present.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    assert_eq!(
        scores.len(),
        labels.len(),
        "scores and labels must be parallel"
    );
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = labels.iter().filter(|l| **l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Sum of positive ranks with average ranks for ties (Mann–Whitney U).
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg_rank * idx[i..=j].iter().filter(|&&k| labels[k]).count() as f64;
        i = j + 1;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// Average precision (area under the precision–recall curve), or `None` without positives.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    assert_eq!(
        scores.len(),
        labels.len(),
        "scores and labels must be parallel"
    );
    let positives = labels.iter().filter(|l| **l).count();
    if positives == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen, mut ap) = (0usize, 0usize, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let group_tp = idx[i..=j].iter().filter(|&&k| labels[k]).count();
        tp += group_tp;
        seen += j - i + 1;
        ap += group_tp as f64 / positives as f64 * (tp as f64 / seen as f64);
        i = j + 1;
    }
    Some(ap)
}

/// Precision and recall when flagging a share of rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AtBudget {
    /// Score threshold: rows scoring at or above it are flagged.
    pub threshold: f64,
    /// Share of rows flagged.
    pub flagged_share: f64,
    /// Flagged rows that are positive.
    pub precision: f64,
    /// Positives that are flagged.
    pub recall: f64,
}

/// Flags the top `share` of rows by score (ties at the cut included) and measures the result.
/// `None` when there are no rows or `share` is not in (0, 1].
pub fn precision_at_budget(scores: &[f64], labels: &[bool], share: f64) -> Option<AtBudget> {
    assert_eq!(
        scores.len(),
        labels.len(),
        "scores and labels must be parallel"
    );
    if scores.is_empty() || !(share > 0.0 && share <= 1.0) {
        return None;
    }
    let mut sorted: Vec<f64> = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let k = ((share * scores.len() as f64).ceil() as usize).clamp(1, scores.len());
    let threshold = sorted[k - 1];
    Some(at_threshold(scores, labels, threshold))
}

/// Precision and recall when flagging rows scoring at or above `threshold`.
pub fn at_threshold(scores: &[f64], labels: &[bool], threshold: f64) -> AtBudget {
    let (mut flagged, mut tp, mut positives) = (0usize, 0usize, 0usize);
    for (s, l) in scores.iter().zip(labels) {
        let f = *s >= threshold;
        flagged += usize::from(f);
        tp += usize::from(f && *l);
        positives += usize::from(*l);
    }
    AtBudget {
        threshold,
        flagged_share: flagged as f64 / scores.len().max(1) as f64,
        precision: if flagged == 0 {
            0.0
        } else {
            tp as f64 / flagged as f64
        },
        recall: if positives == 0 {
            0.0
        } else {
            tp as f64 / positives as f64
        },
    }
}

/// Share of snapshot rows to flag so that, with `snapshots_per_year` snapshots of each
/// contact a year, `alerts_per_contact_year` alerts are raised per contact and year.
pub fn budget_share(alerts_per_contact_year: f64, snapshots_per_year: f64) -> f64 {
    (alerts_per_contact_year / snapshots_per_year).clamp(0.0, 1.0)
}

/// Expected calibration error over `bins` equal-width probability bins.
pub fn expected_calibration_error(scores: &[f64], labels: &[bool], bins: usize) -> f64 {
    assert_eq!(
        scores.len(),
        labels.len(),
        "scores and labels must be parallel"
    );
    let bins = bins.max(1);
    let mut sum_p = vec![0.0; bins];
    let mut sum_y = vec![0.0; bins];
    let mut n = vec![0usize; bins];
    for (s, l) in scores.iter().zip(labels) {
        let b = ((s.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        sum_p[b] += s;
        sum_y[b] += f64::from(u8::from(*l));
        n[b] += 1;
    }
    let total = scores.len().max(1) as f64;
    (0..bins)
        .filter(|&b| n[b] > 0)
        .map(|b| (sum_p[b] - sum_y[b]).abs() / total)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn auc_handles_ties_and_degenerate_input() {
        assert_eq!(roc_auc(&[0.5, 0.5], &[true, false]), Some(0.5));
        assert_eq!(roc_auc(&[0.1, 0.9], &[false, true]), Some(1.0));
        assert_eq!(roc_auc(&[0.1, 0.9], &[true, true]), None);
    }

    #[test]
    fn average_precision_of_perfect_and_reversed_rankings() {
        assert_eq!(
            average_precision(&[0.9, 0.8, 0.1], &[true, true, false]),
            Some(1.0)
        );
        let ap = average_precision(&[0.9, 0.8, 0.1], &[false, false, true]).expect("positives");
        assert!((ap - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn budget_flags_the_top_share() {
        let scores = [0.9, 0.7, 0.5, 0.3, 0.1];
        let labels = [true, false, true, false, false];
        let at = precision_at_budget(&scores, &labels, 0.4).expect("rows");
        assert_eq!(at.threshold, 0.7);
        assert_eq!(at.precision, 0.5);
        assert_eq!(at.recall, 0.5);
        assert_eq!(precision_at_budget(&scores, &labels, 0.0), None);
        assert!((budget_share(0.1, 12.0) - 0.1 / 12.0).abs() < 1e-15);
    }

    #[test]
    fn calibration_error_of_calibrated_and_overconfident_scores() {
        let labels: Vec<bool> = (0..1000).map(|i| i % 4 == 0).collect();
        assert!(expected_calibration_error(&vec![0.25; 1000], &labels, 10) < 1e-12);
        assert!((expected_calibration_error(&vec![0.75; 1000], &labels, 10) - 0.5).abs() < 1e-12);
    }

    proptest! {
        /// AUC equals the share of (positive, negative) pairs ranked correctly.
        #[test]
        fn auc_matches_pair_counting(rows in proptest::collection::vec((0u8..10, any::<bool>()), 2..60)) {
            let scores: Vec<f64> = rows.iter().map(|r| f64::from(r.0)).collect();
            let labels: Vec<bool> = rows.iter().map(|r| r.1).collect();
            let (mut good, mut pairs) = (0.0, 0.0);
            for (i, si) in scores.iter().enumerate() {
                for (j, sj) in scores.iter().enumerate() {
                    if labels[i] && !labels[j] {
                        pairs += 1.0;
                        good += if si > sj { 1.0 } else if si == sj { 0.5 } else { 0.0 };
                    }
                }
            }
            let auc = roc_auc(&scores, &labels);
            if pairs == 0.0 { prop_assert_eq!(auc, None); } else {
                prop_assert!((auc.expect("both classes") - good / pairs).abs() < 1e-9);
            }
        }
    }
}
