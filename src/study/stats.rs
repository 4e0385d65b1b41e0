//! Summaries over seeds: the mean and a two-sided 95 % Student-t interval of the mean (n − 1
//! degrees of freedom). A t interval rather than a bootstrap: with the 2–10 seeds a study runs, a
//! bootstrap's resamples take only a handful of distinct values and its interval is too narrow.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Mean and 95 % interval of a sample (no interval for fewer than two values).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Interval {
    pub n: usize,
    pub mean: f64,
    pub sd: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

/// Where an interval lies relative to a threshold.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    Above,
    Below,
    /// The interval contains the threshold (or there is no interval): the data cannot say.
    Crosses,
}

/// The 97.5 % quantile of Student's t with `df` degrees of freedom.
pub fn t975(df: usize) -> f64 {
    StudentsT::new(0.0, 1.0, df as f64).expect("df ≥ 1").inverse_cdf(0.975)
}

pub fn interval(xs: &[f64]) -> Option<Interval> {
    let n = xs.len();
    if n == 0 {
        return None;
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return Some(Interval { n, mean, sd: None, lo: None, hi: None });
    }
    let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let half = t975(n - 1) * sd / (n as f64).sqrt();
    Some(Interval { n, mean, sd: Some(sd), lo: Some(mean - half), hi: Some(mean + half) })
}

impl Interval {
    pub fn side(&self, threshold: f64) -> Side {
        match (self.lo, self.hi) {
            (Some(lo), _) if lo > threshold => Side::Above,
            (_, Some(hi)) if hi < threshold => Side::Below,
            _ => Side::Crosses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_printed_tables() {
        // Fisher & Yates' table of t at p = 0.05 (two-sided).
        for (df, t) in [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042)] {
            assert!((t975(df) - t).abs() < 1e-3, "df {df}: {} vs {t}", t975(df));
        }
    }

    #[test]
    fn interval_of_five_values_by_hand() {
        // mean 3, sd √2.5, half-width 2.776 × √2.5 / √5 = 1.963
        let i = interval(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(i.mean, 3.0);
        assert!((i.sd.unwrap() - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((i.hi.unwrap() - 4.963).abs() < 1e-3 && (i.lo.unwrap() - 1.037).abs() < 1e-3);
        assert_eq!(i.side(0.0), Side::Above);
        assert_eq!(i.side(2.0), Side::Crosses);
        assert_eq!(i.side(6.0), Side::Below);
        let one = interval(&[7.0]).unwrap();
        assert_eq!((one.lo, one.side(0.0)), (None, Side::Crosses));
        assert!(interval(&[]).is_none());
    }
}
