//! Small descriptive statistics used to summarise per-sample metric values (e.g. nearest-neighbour distances).
//!
//! Definitions follow numpy's defaults so reports can be cross-checked there: `np.quantile(x, q)` with linear
//! interpolation between order statistics at position q·(n−1), and `np.mean`/`np.std` (population, ddof = 0).
//! Accumulation is in f64.

/// Quantiles of `values` at each of `qs` (numpy's default "linear" method).
///
/// Out-of-range `qs` are clamped to [0, 1]; an empty input, a NaN q, or any NaN value (as in numpy) gives NaN.
pub fn quantiles(values: &[f32], qs: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    sorted.sort_by(f64::total_cmp);
    let has_nan = sorted.iter().any(|v| v.is_nan());
    qs.iter()
        .map(|&q| {
            if sorted.is_empty() || has_nan || q.is_nan() {
                return f64::NAN;
            }
            let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(sorted.len() - 1);
            let (a, b, t) = (sorted[lo], sorted[hi], pos - lo as f64);
            // numpy's `_lerp`: interpolate from the nearer end so that t = 1 lands exactly on b.
            if t == 0.0 {
                a
            } else if t >= 0.5 {
                b - (b - a) * (1.0 - t)
            } else {
                a + (b - a) * t
            }
        })
        .collect()
}

/// Mean and population standard deviation (ddof = 0, like `np.std`); (NaN, NaN) for an empty input.
pub fn mean_std(values: &[f32]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn quantiles_match_numpy() {
        // np.quantile([1, 2, 3, 4], [0, .25, .5, .75, 1]) = [1, 1.75, 2.5, 3.25, 4]
        close(&quantiles(&[4.0, 1.0, 3.0, 2.0], &[0.0, 0.25, 0.5, 0.75, 1.0]), &[1.0, 1.75, 2.5, 3.25, 4.0]);
        // np.quantile([3, 1, 4, 1, 5, 9, 2, 6], [0, .1, .33, .5, .9, 1]) = [1, 1, 2.31, 3.5, 6.9, 9]
        close(
            &quantiles(&[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0], &[0.0, 0.1, 0.33, 0.5, 0.9, 1.0]),
            &[1.0, 1.0, 2.31, 3.5, 6.9, 9.0],
        );
        // np.quantile([0.5, -1.25, 3, 2, 0], [.05, .4, .95]) = [-1, 0.3, 2.8]
        close(&quantiles(&[0.5, -1.25, 3.0, 2.0, 0.0], &[0.05, 0.4, 0.95]), &[-1.0, 0.3, 2.8]);
    }

    #[test]
    fn quantile_edge_cases() {
        assert_eq!(quantiles(&[7.5], &[0.0, 0.3, 1.0]), vec![7.5; 3]);
        assert_eq!(quantiles(&[1.0, 2.0], &[-1.0, 2.0]), vec![1.0, 2.0]);
        assert!(quantiles(&[], &[0.5])[0].is_nan());
        assert!(quantiles(&[1.0, 2.0], &[]).is_empty());
        assert!(quantiles(&[f32::NAN, 2.0, 1.0], &[0.0, 0.5]).iter().all(|v| v.is_nan()));
        assert_eq!(
            quantiles(&[f32::NEG_INFINITY, 1.0, f32::INFINITY], &[0.0, 0.5, 1.0]),
            vec![f64::NEG_INFINITY, 1.0, f64::INFINITY]
        );
    }

    #[test]
    fn mean_std_matches_numpy() {
        let (m, s) = mean_std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!((m, s), (5.0, 2.0));
        // np.mean / np.std of [0.5, -1.25, 3, 2, 0] = 0.85, 1.4966629547095764
        let (m, s) = mean_std(&[0.5, -1.25, 3.0, 2.0, 0.0]);
        assert!((m - 0.85).abs() < 1e-12 && (s - 1.4966629547095764).abs() < 1e-12);
        assert_eq!(mean_std(&[3.0]), (3.0, 0.0));
        assert!(mean_std(&[]).0.is_nan());
    }
}
