//! Attribute coverage of generated faces: how often each binary attribute (Male, Smiling,
//! Eyeglasses, …) appears among samples versus among real test faces, both read by the same
//! instrument — the dataset's attribute network, an image "having" an attribute when its
//! probability is above 0.5.
//!
//! - rates: per attribute, the share of images whose probability exceeds [`THRESHOLD`];
//! - attribute_gap = (1/k) Σⱼ |rateⱼ(samples) − rateⱼ(real)|: 0 when every attribute is as
//!   common among samples as among real faces, up to 1 (each attribute on all samples and on no
//!   real face, or the reverse);
//! - the worst attribute: the one with the largest gap (the lowest index on ties).
//!
//! The real rates come from the classifier rather than the annotations so that its errors cancel
//! (a classifier that misses half the eyeglasses misses them on both sides); the annotated rates
//! are recorded beside them for reference.

use anyhow::{Result, bail};

/// An image has an attribute when its probability is above this.
pub const THRESHOLD: f32 = 0.5;

/// Per attribute, the share of the rows of `probs` (n×k, row-major) above [`THRESHOLD`].
pub fn rates(probs: &[f32], k: usize) -> Result<Vec<f64>> {
    if k == 0 {
        bail!("attribute rates need at least 1 attribute, got 0");
    }
    if probs.is_empty() || !probs.len().is_multiple_of(k) {
        bail!("{} probabilities do not form rows of {k} attributes", probs.len());
    }
    if let Some(p) = probs.iter().find(|p| !(p.is_finite() && (0.0..=1.0).contains(*p))) {
        bail!("attribute probability {p} is not in [0, 1] (pass sigmoid outputs, not logits)");
    }
    let n = probs.len() / k;
    let mut count = vec![0usize; k];
    for row in probs.chunks_exact(k) {
        for (c, &p) in count.iter_mut().zip(row) {
            *c += usize::from(p > THRESHOLD);
        }
    }
    Ok(count.iter().map(|&c| c as f64 / n as f64).collect())
}

/// The mean absolute gap between two rate vectors and where it is largest.
#[derive(Clone, Debug, PartialEq)]
pub struct Gap {
    /// (1/k) Σⱼ |aⱼ − bⱼ|.
    pub mean: f64,
    /// Index of the attribute with the largest gap (lowest on ties).
    pub worst: usize,
    pub worst_gap: f64,
    /// |aⱼ − bⱼ| per attribute.
    pub per_attribute: Vec<f64>,
}

/// Gap between the attribute rates of samples and of real images.
pub fn gap(samples: &[f64], real: &[f64]) -> Result<Gap> {
    if samples.len() != real.len() || samples.is_empty() {
        bail!("attribute gap needs two equally long, non-empty rate lists, got {} and {}", samples.len(), real.len());
    }
    let per_attribute: Vec<f64> = samples.iter().zip(real).map(|(a, b)| (a - b).abs()).collect();
    let worst = per_attribute.iter().enumerate().fold(0, |w, (j, &g)| if g > per_attribute[w] { j } else { w });
    Ok(Gap {
        mean: per_attribute.iter().sum::<f64>() / per_attribute.len() as f64,
        worst,
        worst_gap: per_attribute[worst],
        per_attribute,
    })
}

/// Attribute gap of two sets of attribute probabilities (n×k and m×k): `gap(rates(a), rates(b))`.
pub fn gap_of_probs(samples: &[f32], real: &[f32], k: usize) -> Result<Gap> {
    gap(&rates(samples, k)?, &rates(real, k)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_threshold_strictly_above_one_half() {
        // Three images, two attributes: column 0 has 0.9, 0.5 (not above), 0.51 → 2/3;
        // column 1 has 0.1, 0.0, 1.0 → 1/3.
        let r = rates(&[0.9, 0.1, 0.5, 0.0, 0.51, 1.0], 2).unwrap();
        assert!((r[0] - 2.0 / 3.0).abs() < 1e-12 && (r[1] - 1.0 / 3.0).abs() < 1e-12, "{r:?}");
    }

    #[test]
    fn hand_made_gap() {
        // Samples: Male 0.8, Smiling 0.5, Eyeglasses 0.0; real: 0.4, 0.5, 0.1.
        // Gaps 0.4, 0, 0.1: mean 0.5/3, worst Male (0.4).
        let g = gap(&[0.8, 0.5, 0.0], &[0.4, 0.5, 0.1]).unwrap();
        assert!((g.mean - 0.5 / 3.0).abs() < 1e-12, "{}", g.mean);
        assert_eq!(g.worst, 0);
        assert!((g.worst_gap - 0.4).abs() < 1e-12);
        assert!((g.per_attribute[2] - 0.1).abs() < 1e-12);
        // Symmetric, zero against itself, one for opposite certainties.
        assert_eq!(gap(&[0.4, 0.5, 0.1], &[0.8, 0.5, 0.0]).unwrap().mean, g.mean);
        assert_eq!(gap(&[0.3, 0.7], &[0.3, 0.7]).unwrap().mean, 0.0);
        assert_eq!(gap(&[1.0, 0.0], &[0.0, 1.0]).unwrap().mean, 1.0);
        // Ties go to the lower index.
        assert_eq!(gap(&[0.2, 0.2], &[0.0, 0.0]).unwrap().worst, 0);
    }

    #[test]
    fn gap_of_probs_composes_rates_and_gap() {
        // Samples all "have" attribute 0, none has 1; real: half have each.
        let s = [0.9, 0.1, 0.8, 0.2];
        let r = [0.9, 0.9, 0.1, 0.1];
        let g = gap_of_probs(&s, &r, 2).unwrap();
        // |1 − 0.5| and |0 − 0.5|: mean 0.5.
        assert!((g.mean - 0.5).abs() < 1e-12);
    }

    #[test]
    fn bad_input_errors_clearly() {
        assert!(rates(&[0.5, 0.5, 0.5], 2).unwrap_err().to_string().contains("rows of 2"));
        assert!(rates(&[], 2).is_err());
        assert!(rates(&[0.5], 0).is_err());
        assert!(rates(&[2.0, 0.5], 2).unwrap_err().to_string().contains("logits"));
        assert!(rates(&[f32::NAN, 0.5], 2).is_err());
        assert!(gap(&[0.1], &[0.1, 0.2]).is_err());
        assert!(gap(&[], &[]).is_err());
    }
}
