//! Latent maps: a scatter of test-set codes coloured by class, and the decoded manifold — a grid of
//! images decoded over the latent plane. With more than two latent dimensions both are drawn in the
//! plane of the codes' first two principal components (said in the title).

use crate::data::Splits;
use crate::models::Model;
use anyhow::Result;
use nalgebra::{DMatrix, SymmetricEigen};
use std::path::{Path, PathBuf};

/// Inverse of the standard normal CDF (Acklam's rational approximation, absolute error < 1e-5).
#[allow(clippy::excessive_precision)] // the published coefficients, kept verbatim
pub fn norm_ppf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -39.696830286653757,
        220.94609842452050,
        -275.92851044696869,
        138.35775186726900,
        -30.664798066147160,
        2.5066282774592392,
    ];
    const B: [f64; 5] =
        [-54.476098798224058, 161.58583685804089, -155.69897985988661, 66.801311887719720, -13.280681552885721];
    const C: [f64; 6] = [
        -7.7848940024302926e-3,
        -0.32239645804113648,
        -2.4007582771618381,
        -2.5497325393437338,
        4.3746641414649678,
        2.9382373244053430,
    ];
    const D: [f64; 4] = [7.7846957090414622e-3, 0.32246712907003983, 2.4451341373114459, 3.7544086477014600];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Mean and the top two principal directions of row vectors `x` [n × d] (see `pca`). With d < 2
/// the missing direction is zero.
pub fn pca2(x: &[f32], d: usize) -> (Vec<f64>, [Vec<f64>; 2]) {
    let (mean, mut top) = pca(x, d, 2);
    let axis = |t: Option<(f64, Vec<f64>)>| t.map_or_else(|| vec![0.0; d], |(_, v)| v);
    let second = (top.len() > 1).then(|| top.remove(1));
    let first = top.into_iter().next();
    (mean, [axis(first), axis(second)])
}

/// Mean and the top `k` principal directions of row vectors `x` [n × d], as (variance, unit
/// direction), largest variance first: the eigenvectors of the covariance (nalgebra's symmetric
/// eigensolver — a fixed number of power iterations stalls when the top eigenvalues are close).
/// Each direction's sign makes its largest-magnitude component positive (the first of near-equal
/// ones), so pictures are reproducible. At most min(k, d) directions.
pub fn pca(x: &[f32], d: usize, k: usize) -> (Vec<f64>, Vec<(f64, Vec<f64>)>) {
    let n = (x.len() / d.max(1)).max(1);
    let mut mean = vec![0f64; d];
    for r in x.chunks(d) {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += v as f64 / n as f64;
        }
    }
    let mut cov = vec![0f64; d * d];
    for r in x.chunks(d) {
        for i in 0..d {
            let a = r[i] as f64 - mean[i];
            for j in 0..d {
                cov[i * d + j] += a * (r[j] as f64 - mean[j]) / n as f64;
            }
        }
    }
    let eig = SymmetricEigen::new(DMatrix::from_row_slice(d, d, &cov));
    // Eigenvalues largest first; equal ones keep the solver's order.
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let axis = |col: usize| -> (f64, Vec<f64>) {
        let v: Vec<f64> = eig.eigenvectors.column(col).iter().copied().collect();
        let big = v.iter().fold(0.0f64, |m, c| m.max(c.abs()));
        // The first component within rounding of the largest decides, so ties (e.g. (1, −1)/√2)
        // do not flip with the last bits of the solver.
        let lead = v.iter().find(|c| c.abs() >= big * (1.0 - 1e-9)).copied().unwrap_or(0.0);
        let sign = if lead < 0.0 { -1.0 } else { 1.0 };
        (eig.eigenvalues[col].max(0.0), v.into_iter().map(|c| sign * c).collect())
    };
    (mean, order.into_iter().take(k).map(axis).collect())
}

/// Write `latent-scatter.png` and `latent-manifold.png` into `out`; returns their paths.
pub fn latent_map(
    model: &Model,
    data: &Splits,
    out: &Path,
    n_points: usize,
    class: u8,
    grid: usize,
) -> Result<Vec<PathBuf>> {
    let spec = &model.spec;
    let d = spec.latent_dim;
    let test = data.test.head(n_points);
    let codes = model.encode_dataset(&test)?;
    let labels = test.labels.clone().unwrap_or_else(|| vec![0; test.n]);
    // The plane: the latent axes themselves for d = 2 (d = 1 pads a zero axis), else PCA.
    let (mean, axes, plane) = if d <= 2 {
        let e = |i: usize| (0..d).map(|j| if i == j { 1.0 } else { 0.0 }).collect::<Vec<f64>>();
        (vec![0.0; d], [e(0), e(1)], "z")
    } else {
        let (m, a) = pca2(&codes, d);
        (m, a, "PC")
    };
    let project = |r: &[f32]| -> (f32, f32) {
        let c: Vec<f64> = r.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect();
        let p = |a: &Vec<f64>| c.iter().zip(a).map(|(x, y)| x * y).sum::<f64>() as f32;
        (p(&axes[0]), p(&axes[1]))
    };
    let has_labels = data.test.labels.is_some();
    let pts: Vec<(f32, f32, Option<u8>)> = codes
        .chunks(d)
        .zip(&labels)
        .map(|(r, &l)| {
            let (a, b) = project(r);
            (a, b, has_labels.then_some(l))
        })
        .collect();
    let title = format!(
        "{} codes of {} test images ({}, {}-d latent)",
        if spec.kind.has_posterior() { "Posterior-mean" } else { "Encoder" },
        pts.len(),
        data.name,
        d
    );
    let scatter = out.join("latent-scatter.png");
    super::plot::scatter(&scatter, &title, &format!("{plane}1"), &format!("{plane}2"), &pts, &data.class_names)?;

    // Manifold: prior quantiles for variational models (the prior is what sampling uses); the
    // codes' own 1st–99th percentile box for the AE (it has no prior).
    let coords: [Vec<f64>; 2] = std::array::from_fn(|axis| {
        if spec.kind.is_variational() && d <= 2 {
            (0..grid).map(|i| norm_ppf((i as f64 + 0.5) / grid as f64)).collect()
        } else {
            let mut v: Vec<f64> = pts.iter().map(|p| if axis == 0 { p.0 as f64 } else { p.1 as f64 }).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            let q = |f: f64| v[((v.len() - 1) as f64 * f) as usize];
            let (lo, hi) = (q(0.01), q(0.99));
            (0..grid).map(|i| lo + (hi - lo) * i as f64 / (grid - 1).max(1) as f64).collect()
        }
    });
    let mut z = Vec::with_capacity(grid * grid * d);
    for row in 0..grid {
        for col in 0..grid {
            // Rows run top to bottom from high to low along the second axis, like the scatter's y.
            let (a, b) = (coords[0][col], coords[1][grid - 1 - row]);
            z.extend((0..d).map(|j| (mean[j] + a * axes[0][j] + b * axes[1][j]) as f32));
        }
    }
    // One condition for the whole map: the class asked for, or every attribute at its mean.
    let one = if spec.has_classes() {
        spec.class_rows_of(&[class])
    } else {
        spec.cond_rows(&crate::models::condition::Request::Attrs(vec![]), 1).unwrap_or_default()
    };
    let imgs = model.decode_host(&z, &one.repeat(grid * grid));
    let manifold = out.join("latent-manifold.png");
    super::grid::save_grid(&imgs, spec.shape, grid, &manifold)?;
    Ok(vec![scatter, manifold])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppf_inverts_known_quantiles() {
        assert!(norm_ppf(0.5).abs() < 1e-9);
        assert!((norm_ppf(0.975) - 1.959963985).abs() < 1e-5);
        assert!((norm_ppf(0.01) + 2.326347874).abs() < 1e-5);
    }

    #[test]
    fn pca_finds_the_dominant_direction() {
        // Points along (1, 1, 0) with small noise along (1, -1, 0).
        let mut x = Vec::new();
        for i in 0..200 {
            let t = i as f32 / 20.0 - 5.0;
            let e = if i % 2 == 0 { 0.1 } else { -0.1 };
            x.extend([t + e, t - e, 0.0]);
        }
        let (_, [c0, c1]) = pca2(&x, 3);
        let s = std::f64::consts::FRAC_1_SQRT_2;
        assert!((c0[0].abs() - s).abs() < 1e-3 && (c0[1].abs() - s).abs() < 1e-3, "{c0:?}");
        assert!((c0[0] * c1[0] + c0[1] * c1[1] + c0[2] * c1[2]).abs() < 1e-6);
    }

    /// Data whose covariance is known exactly: all 16 sign patterns of coefficients (±s₁, …, ±s₄)
    /// on the orthonormal Hadamard basis qₖ, so the covariance is Σ sₖ² qₖqₖᵀ (the coefficients
    /// have zero mean and zero cross terms) and its eigenvectors are the qₖ. s₂/s₁ = 1 − 2⁻¹⁰
    /// puts λ₂/λ₁ at 0.998: 500 power iterations leave about a quarter of q₂ in the first
    /// direction. All values are dyadic, so the f32 data and the f64 covariance are exact.
    #[test]
    fn pca_matches_an_analytic_covariance_with_near_equal_top_eigenvalues() {
        let q: [[f64; 4]; 4] =
            [[0.5, 0.5, 0.5, 0.5], [0.5, -0.5, 0.5, -0.5], [0.5, 0.5, -0.5, -0.5], [0.5, -0.5, -0.5, 0.5]];
        // Assigned out of order, so the solver's ordering is exercised: q₃ gets the smallest.
        let s = [1.0, 1.0 - 1.0 / 1024.0, 0.25, 0.5];
        let centre = [3.0, -2.0, 0.5, 1.0];
        let mut x = Vec::new();
        for bits in 0..16u32 {
            for j in 0..4 {
                let sign = |k: usize| if bits >> k & 1 == 1 { 1.0 } else { -1.0 };
                let v: f64 = centre[j] + (0..4).map(|k| sign(k) * s[k] * q[k][j]).sum::<f64>();
                assert_eq!(v as f32 as f64, v, "not exact in f32");
                x.push(v as f32);
            }
        }
        let (mean, [c0, c1]) = pca2(&x, 4);
        for (m, c) in mean.iter().zip(centre) {
            assert!((m - c).abs() < 1e-12, "{mean:?}");
        }
        // The sign convention picks the first of the equal-magnitude components positive.
        for (got, want) in [(&c0, q[0]), (&c1, q[1])] {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-9, "{got:?} vs {want:?}");
            }
        }
    }

    /// The sign convention: the largest-magnitude component is positive, whatever the data's sign.
    #[test]
    fn pca_signs_are_reproducible() {
        // Spread mostly along (−3, 1, 0)/√10, a little along (1, 3, 0)/√10 and z.
        let mut x = Vec::new();
        for i in 0..100 {
            let t = (i as f32 - 49.5) / 10.0;
            let u = if i % 2 == 0 { 0.2 } else { -0.2 };
            let w = if i % 4 < 2 { 0.05 } else { -0.05 };
            x.extend([-3.0 * t + u, t + 3.0 * u, w]);
        }
        let (_, [c0, c1]) = pca2(&x, 3);
        let r = 10f64.sqrt();
        // ±(−3, 1, 0)/√10 comes out as (3, −1, 0)/√10; ±(1, 3, 0)/√10 as (1, 3, 0)/√10 (the
        // points are not exactly uncorrelated, hence the loose tolerance).
        for (g, w) in c0.iter().zip([3.0 / r, -1.0 / r, 0.0]) {
            assert!((g - w).abs() < 5e-3, "{c0:?}");
        }
        for (g, w) in c1.iter().zip([1.0 / r, 3.0 / r, 0.0]) {
            assert!((g - w).abs() < 5e-3, "{c1:?}");
        }
        let neg: Vec<f32> = x.iter().map(|v| -v).collect();
        assert_eq!(pca2(&neg, 3).1, [c0, c1]);
    }
}
