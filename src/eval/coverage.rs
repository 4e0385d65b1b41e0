//! Mode coverage of generated samples, judged by a pretrained classifier's softmax outputs p(y|x).
//!
//! - histogram / classes covered: how often each class is the argmax; a class counts as covered when it receives at
//!   least max(1, ⌊0.1·n/C⌋) samples, i.e. a tenth of its share under a uniform label distribution, so a mode hit
//!   by a stray sample or two is not credited (cf. the mode counting of Srivastava et al. 2017, "VEEGAN").
//! - class_kl = KL(p̂(y) ‖ uniform) = Σ p̂ ln(p̂·C) in nats over the argmax histogram: 0 for perfectly balanced
//!   classes, ln C for total collapse onto one class.
//! - classifier_score = exp(E_x KL(p(y|x) ‖ p(y))) with p(y) the mean prediction: the Inception Score formula
//!   (Salimans et al. 2016) with the domain classifier, between 1 (collapse or unconfident) and C (confident and
//!   balanced).

use anyhow::{Result, bail};

/// Mode-coverage summary of a batch of classifier predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// Samples per class, by argmax of p(y|x) (ties go to the lower class index).
    pub histogram: Vec<usize>,
    pub classes_covered: usize,
    /// Minimum count for a class to count as covered: max(1, ⌊0.1·n/classes⌋).
    pub coverage_threshold: usize,
    /// KL(p̂(y) ‖ uniform) in nats.
    pub class_kl: f64,
    /// exp(mean KL(p(y|x) ‖ p(y))), in [1, classes].
    pub classifier_score: f64,
}

/// Keeps ln finite for zero probabilities without visibly changing the score.
const EPS: f64 = 1e-12;

/// Coverage statistics from softmax probabilities `probs` (n×classes, row-major; each row must sum to ~1).
pub fn coverage(probs: &[f32], classes: usize) -> Result<Coverage> {
    if classes == 0 {
        bail!("coverage needs at least 1 class, got 0");
    }
    if probs.is_empty() {
        bail!("coverage needs at least 1 sample, got 0");
    }
    if !probs.len().is_multiple_of(classes) {
        bail!("probabilities: length {} is not a multiple of the class count {classes}", probs.len());
    }
    let n = probs.len() / classes;
    for (i, row) in probs.chunks_exact(classes).enumerate() {
        if let Some(v) = row.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            bail!("probabilities: row {i} contains {v}; expected softmax outputs in [0, 1]");
        }
        let sum: f64 = row.iter().map(|&v| f64::from(v)).sum();
        if (sum - 1.0).abs() > 1e-3 {
            bail!("probabilities: row {i} sums to {sum}, expected 1 (pass softmax outputs, not logits)");
        }
    }

    let mut histogram = vec![0usize; classes];
    let mut marginal = vec![0.0f64; classes];
    for row in probs.chunks_exact(classes) {
        let best = row.iter().enumerate().fold(0, |b, (c, &v)| if v > row[b] { c } else { b });
        histogram[best] += 1;
        marginal.iter_mut().zip(row).for_each(|(m, &v)| *m += f64::from(v));
    }
    marginal.iter_mut().for_each(|m| *m /= n as f64);

    let coverage_threshold = ((0.1 * n as f64 / classes as f64).floor() as usize).max(1);
    let classes_covered = histogram.iter().filter(|&&c| c >= coverage_threshold).count();
    let class_kl = histogram
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n as f64;
            p * (p * classes as f64).ln()
        })
        .sum();
    let log_marginal: Vec<f64> = marginal.iter().map(|m| (m + EPS).ln()).collect();
    let mean_kl = probs
        .chunks_exact(classes)
        .map(|row| {
            row.iter()
                .zip(&log_marginal)
                .map(|(&p, lm)| {
                    let p = f64::from(p);
                    p * ((p + EPS).ln() - lm)
                })
                .sum::<f64>()
        })
        .sum::<f64>()
        / n as f64;
    Ok(Coverage { histogram, classes_covered, coverage_threshold, class_kl, classifier_score: mean_kl.exp() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_hot(labels: &[usize], classes: usize) -> Vec<f32> {
        labels.iter().flat_map(|&l| (0..classes).map(move |c| if c == l { 1.0 } else { 0.0 })).collect()
    }

    #[test]
    fn uniform_one_hot_is_perfect() {
        let labels: Vec<usize> = (0..1000).map(|i| i % 10).collect();
        let cov = coverage(&one_hot(&labels, 10), 10).unwrap();
        assert_eq!(cov.histogram, vec![100; 10]);
        assert_eq!((cov.classes_covered, cov.coverage_threshold), (10, 10));
        assert!(cov.class_kl.abs() < 1e-12);
        assert!((cov.classifier_score - 10.0).abs() < 1e-6, "{}", cov.classifier_score);
    }

    #[test]
    fn total_collapse_scores_one() {
        let cov = coverage(&one_hot(&[3; 50], 10), 10).unwrap();
        assert_eq!(cov.classes_covered, 1);
        assert_eq!(cov.histogram[3], 50);
        assert!((cov.class_kl - 10f64.ln()).abs() < 1e-12);
        assert!((cov.classifier_score - 1.0).abs() < 1e-9);
    }

    #[test]
    fn hand_computed_three_class_example() {
        let probs = [0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.6, 0.3, 0.1, 0.2, 0.2, 0.6];
        let cov = coverage(&probs, 3).unwrap();
        assert_eq!(cov.histogram, vec![2, 1, 1]);
        // ⌊0.1·4/3⌋ = 0, raised to 1.
        assert_eq!((cov.coverage_threshold, cov.classes_covered), (1, 3));
        // ½ln1.5 + ½ln0.75.
        assert!((cov.class_kl - 0.05889151782819174).abs() < 1e-12);
        // p(y) = (0.4, 0.375, 0.225); per-sample KLs 0.18492, 0.38643, 0.09524, 0.32415.
        assert!((cov.classifier_score - 1.2810536979791294).abs() < 1e-6, "{}", cov.classifier_score);
    }

    #[test]
    fn threshold_excludes_stray_samples() {
        // 200 samples over 4 classes: threshold 5; class 3 with 2 samples is not covered.
        let labels: Vec<usize> = (0..200).map(|i| if i < 2 { 3 } else { i % 3 }).collect();
        let cov = coverage(&one_hot(&labels, 4), 4).unwrap();
        assert_eq!((cov.coverage_threshold, cov.classes_covered, cov.histogram[3]), (5, 3, 2));
    }

    #[test]
    fn bad_input_errors_clearly() {
        assert!(coverage(&[0.5, 0.5, 1.0], 2).unwrap_err().to_string().contains("not a multiple"));
        assert!(coverage(&[], 2).is_err());
        assert!(coverage(&[1.0], 0).is_err());
        assert!(coverage(&[2.0, -1.0], 2).unwrap_err().to_string().contains("[0, 1]"));
        assert!(coverage(&[0.3, 0.3], 2).unwrap_err().to_string().contains("logits"));
        assert!(coverage(&[f32::NAN, 1.0], 2).is_err());
    }
}
