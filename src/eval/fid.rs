//! Fréchet distance between Gaussians fitted to two feature sets (FID; Heusel et al. 2017, "GANs Trained by a Two
//! Time-Scale Update Rule Converge to a Local Nash Equilibrium").
//!
//! d² = ‖μ₁−μ₂‖² + Tr(Σ₁) + Tr(Σ₂) − 2 Tr((Σ₁^½ Σ₂ Σ₁^½)^½), the squared 2-Wasserstein distance between
//! N(μ₁, Σ₁) and N(μ₂, Σ₂). Everything runs in f64 through symmetric eigendecompositions rather than a general
//! matrix square root: Σ₁^½ Σ₂ Σ₁^½ is symmetric PSD, so its trace square root is just Σ √λ, which avoids the
//! complex-valued round-off that `scipy.linalg.sqrtm(Σ₁Σ₂)` is known for.

use anyhow::{Result, bail};
use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;

use super::knn::check_set;

/// Mean and unbiased (n−1) covariance of a feature set.
#[derive(Debug, Clone, PartialEq)]
pub struct Gaussian {
    pub mean: Vec<f64>,
    /// dim×dim, row-major, unbiased (divided by n−1).
    pub cov: Vec<f64>,
    pub dim: usize,
    /// Number of samples the statistics were estimated from.
    pub n: usize,
}

/// Rows per covariance accumulation chunk (bounds the f64 scratch to ROW_CHUNK×dim).
const ROW_CHUNK: usize = 512;

/// Fits mean and unbiased covariance, accumulating in f64 (two-pass: centre first, so large means cost no accuracy).
pub fn gaussian_stats(features: &[f32], dim: usize) -> Result<Gaussian> {
    let n = check_set("features", features, dim)?;
    if n < 2 {
        bail!("FID needs at least 2 samples per set, got {n}");
    }
    let mut mean = vec![0.0f64; dim];
    for row in features.chunks_exact(dim) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += f64::from(x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);

    // Σ XᵀX over centred row chunks, one partial sum per worker, via dgemm.
    let chunks: Vec<&[f32]> = features.chunks(ROW_CHUNK * dim).collect();
    let per_worker = chunks.len().div_ceil(rayon::current_num_threads().max(1));
    let mut cov = chunks
        .par_chunks(per_worker)
        .map(|group| {
            let mut acc = vec![0.0f64; dim * dim];
            let mut xc = vec![0.0f64; ROW_CHUNK * dim];
            for chunk in group {
                let m = chunk.len() / dim;
                for (o, (&x, &mu)) in xc.iter_mut().zip(chunk.iter().zip(mean.iter().cycle())) {
                    *o = f64::from(x) - mu;
                }
                // SAFETY: xc holds m×dim row-major values, read once as its dim×m transpose (strides 1, dim) and once
                // as m×dim; acc is dim×dim row-major. All addressed elements lie inside the slices.
                unsafe {
                    matrixmultiply::dgemm(
                        dim,
                        m,
                        dim,
                        1.0,
                        xc.as_ptr(),
                        1,
                        dim as isize,
                        xc.as_ptr(),
                        dim as isize,
                        1,
                        1.0,
                        acc.as_mut_ptr(),
                        dim as isize,
                        1,
                    );
                }
            }
            acc
        })
        .reduce(
            || vec![0.0f64; dim * dim],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let denom = (n - 1) as f64;
    for i in 0..dim {
        for j in i..dim {
            let v = (cov[i * dim + j] + cov[j * dim + i]) / (2.0 * denom);
            cov[i * dim + j] = v;
            cov[j * dim + i] = v;
        }
    }
    Ok(Gaussian { mean, cov, dim, n })
}

fn check_gaussian(name: &str, g: &Gaussian) -> Result<()> {
    if g.dim == 0 {
        bail!("{name} Gaussian has dimension 0");
    }
    if g.mean.len() != g.dim || g.cov.len() != g.dim * g.dim {
        bail!(
            "{name} Gaussian is malformed: dim {} but mean has {} entries and cov {} (expected {} and {})",
            g.dim,
            g.mean.len(),
            g.cov.len(),
            g.dim,
            g.dim * g.dim
        );
    }
    if g.mean.iter().chain(&g.cov).any(|v| !v.is_finite()) {
        bail!("{name} Gaussian contains non-finite values");
    }
    Ok(())
}

/// Symmetric matrix from a row-major buffer, symmetrised so that round-off asymmetry cannot leak into the eigensolver.
fn symmetric(data: &[f64], dim: usize) -> DMatrix<f64> {
    let m = DMatrix::from_row_slice(dim, dim, data);
    (&m + m.transpose()) * 0.5
}

/// Fréchet distance between two Gaussians (see the module docs).
///
/// Negative eigenvalues from round-off are clamped to 0. A negative result within the round-off floor is returned as
/// 0; anything more negative is returned unchanged, since it signals a covariance that is not positive semi-definite
/// rather than rounding. The floor is set by the square roots: an eigenvalue of M = Σ₁^½ Σ₂ Σ₁^½ that should be 0
/// (rank-deficient features, e.g. dead ReLU units) comes out as ±ε·‖M‖, and its root as √(ε·‖M‖) — so each of the
/// `dim` roots may be off by that much, far more than ε times the traces.
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> Result<f64> {
    check_gaussian("first", a)?;
    check_gaussian("second", b)?;
    if a.dim != b.dim {
        bail!("feature dimension mismatch: {} vs {}", a.dim, b.dim);
    }
    let dim = a.dim;
    let (s1, s2) = (symmetric(&a.cov, dim), symmetric(&b.cov, dim));
    let max_iter = 1000 * dim + 1000;
    let Some(eig) = SymmetricEigen::try_new(s1.clone(), f64::EPSILON, max_iter) else {
        bail!("eigendecomposition of the first covariance did not converge");
    };
    let roots = eig.eigenvalues.map(|l| l.max(0.0).sqrt());
    let v = &eig.eigenvectors;
    let sqrt1 = v * DMatrix::from_diagonal(&roots) * v.transpose();
    let m = &sqrt1 * &s2 * &sqrt1;
    let m = (&m + m.transpose()) * 0.5;
    if m.iter().any(|x| !x.is_finite()) {
        bail!("covariances too large: Σ₁^½ Σ₂ Σ₁^½ overflows f64");
    }
    let lambdas = m.symmetric_eigenvalues();
    let tr_covmean: f64 = lambdas.iter().map(|l| l.max(0.0).sqrt()).sum();
    let mean_term: f64 = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y).powi(2)).sum();
    let (tr1, tr2) = (s1.trace(), s2.trace());
    let d = mean_term + tr1 + tr2 - 2.0 * tr_covmean;
    let norm_m = lambdas.iter().fold(0.0f64, |acc, l| acc.max(l.abs()));
    let floor = 1e-9 * (mean_term + tr1.abs() + tr2.abs()) + 4.0 * dim as f64 * (f64::EPSILON * norm_m).sqrt();
    Ok(if d < 0.0 && d > -floor { 0.0 } else { d })
}

/// FID between two feature sets (N×dim row-major each; the set sizes may differ).
pub fn fid(a: &[f32], b: &[f32], dim: usize) -> Result<f64> {
    frechet_distance(&gaussian_stats(a, dim)?, &gaussian_stats(b, dim)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn gaussian(mean: &[f64], cov: &[f64]) -> Gaussian {
        Gaussian { mean: mean.to_vec(), cov: cov.to_vec(), dim: mean.len(), n: 100 }
    }

    /// Samples N(mean, L Lᵀ) with Box–Muller normals; `l` is lower-triangular row-major.
    fn sample(n: usize, mean: &[f64], l: &[f64], seed: u64) -> Vec<f32> {
        let d = mean.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut normal = || {
            let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        };
        let mut out = Vec::with_capacity(n * d);
        for _ in 0..n {
            let z: Vec<f64> = (0..d).map(|_| normal()).collect();
            for i in 0..d {
                out.push((mean[i] + (0..=i).map(|j| l[i * d + j] * z[j]).sum::<f64>()) as f32);
            }
        }
        out
    }

    #[test]
    fn stats_match_hand_computation() {
        // Columns (1,2,3,4) and (2,4,6,9): means 2.5, 5.25; variances 5/3, 26.75/3; covariance 11.5/3.
        let g = gaussian_stats(&[1.0, 2.0, 2.0, 4.0, 3.0, 6.0, 4.0, 9.0], 2).unwrap();
        assert_eq!((g.dim, g.n), (2, 4));
        assert!((g.mean[0] - 2.5).abs() < 1e-12 && (g.mean[1] - 5.25).abs() < 1e-12);
        let want = [5.0 / 3.0, 11.5 / 3.0, 11.5 / 3.0, 26.75 / 3.0];
        for (c, w) in g.cov.iter().zip(want) {
            assert!((c - w).abs() < 1e-12, "{:?}", g.cov);
        }
    }

    #[test]
    fn stats_survive_a_large_offset_and_many_chunks() {
        let l = [1.0, 0.0, 0.5, 2.0];
        let x = sample(3 * ROW_CHUNK + 7, &[1e4, -1e4], &l, 1);
        let g = gaussian_stats(&x, 2).unwrap();
        let y: Vec<f32> = x.iter().map(|v| v - if v > &0.0 { 1e4 } else { -1e4 }).collect();
        let h = gaussian_stats(&y, 2).unwrap();
        for (c, w) in g.cov.iter().zip(&h.cov) {
            assert!((c - w).abs() < 1e-3 * w.abs().max(1.0), "{:?} vs {:?}", g.cov, h.cov);
        }
    }

    #[test]
    fn identical_sets_give_zero_and_distance_is_symmetric() {
        let x = sample(500, &[0.0, 1.0, 2.0], &[1.0, 0.0, 0.0, 0.3, 1.0, 0.0, -0.2, 0.4, 0.5], 2);
        let y = sample(400, &[0.5, 1.0, 2.0], &[2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.7, 0.0, 0.1], 3);
        assert!(fid(&x, &x, 3).unwrap().abs() < 1e-6);
        let (xy, yx) = (fid(&x, &y, 3).unwrap(), fid(&y, &x, 3).unwrap());
        assert!(xy > 0.1 && (xy - yx).abs() < 1e-9 * xy, "{xy} vs {yx}");
    }

    /// Identical rank-deficient covariances (features that never vary, as dead ReLU units give) must read 0: the
    /// roots of M's zero eigenvalues carry √ε-sized round-off, which once failed CI with FID = −1.8e-6.
    #[test]
    fn identical_rank_deficient_sets_give_zero() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (n, dim) = (400, 64);
        let mut x = vec![0f32; n * dim];
        for (i, v) in x.iter_mut().enumerate() {
            // A third of the units are constant; the rest mix a few latent factors, so the covariance is low-rank.
            let (row, col) = (i / dim, i % dim);
            *v = if col % 3 == 0 {
                0.5
            } else {
                (row % 7) as f32 * (col as f32 * 0.37).sin() + rng.random::<f32>() * 1e-3
            };
        }
        assert_eq!(fid(&x, &x, dim).unwrap(), 0.0);
    }

    #[test]
    fn one_dimensional_closed_form() {
        // (μ₁−μ₂)² + (σ₁−σ₂)² = 4 + 1.
        let d = frechet_distance(&gaussian(&[1.0], &[4.0]), &gaussian(&[3.0], &[9.0])).unwrap();
        assert!((d - 5.0).abs() < 1e-12, "{d}");
    }

    #[test]
    fn commuting_covariances_closed_form() {
        // Both covariances share eigenvectors (1,1)/√2, (1,−1)/√2 with eigenvalues (4, 1) and (9, 0.25):
        // d² = ‖Δμ‖² + (2−3)² + (1−0.5)².
        let cov = |l1: f64, l2: f64| [(l1 + l2) / 2.0, (l1 - l2) / 2.0, (l1 - l2) / 2.0, (l1 + l2) / 2.0];
        let a = gaussian(&[0.0, 0.0], &cov(4.0, 1.0));
        let b = gaussian(&[1.0, 2.0], &cov(9.0, 0.25));
        let d = frechet_distance(&a, &b).unwrap();
        assert!((d - (5.0 + 1.0 + 0.25)).abs() < 1e-10, "{d}");
        // Diagonal case: Σ(√λ₁−√λ₂)².
        let d = frechet_distance(
            &gaussian(&[0.0; 3], &diag(&[1.0, 4.0, 9.0])),
            &gaussian(&[0.0; 3], &diag(&[4.0, 4.0, 1.0])),
        )
        .unwrap();
        assert!((d - (1.0 + 0.0 + 4.0)).abs() < 1e-10, "{d}");
    }

    fn diag(v: &[f64]) -> Vec<f64> {
        let n = v.len();
        (0..n * n).map(|i| if i % (n + 1) == 0 { v[i / n] } else { 0.0 }).collect()
    }

    /// For 2×2 PSD matrices Tr(√M) = √(Tr M + 2√det M), and Tr(Σ₁^½Σ₂Σ₁^½) = Tr(Σ₁Σ₂), det = det Σ₁ det Σ₂.
    fn closed_form_2d(m1: &[f64], c1: &[f64], m2: &[f64], c2: &[f64]) -> f64 {
        let tr12 = c1[0] * c2[0] + c1[1] * c2[2] + c1[2] * c2[1] + c1[3] * c2[3];
        let det = (c1[0] * c1[3] - c1[1] * c1[2]) * (c2[0] * c2[3] - c2[1] * c2[2]);
        let dm = (m1[0] - m2[0]).powi(2) + (m1[1] - m2[1]).powi(2);
        dm + c1[0] + c1[3] + c2[0] + c2[3] - 2.0 * (tr12 + 2.0 * det.sqrt()).sqrt()
    }

    #[test]
    fn non_commuting_covariances_closed_form() {
        let (c1, c2) = ([2.0, 0.8, 0.8, 1.0], [1.0, -0.3, -0.3, 3.0]);
        let want = closed_form_2d(&[0.0, 1.0], &c1, &[2.0, -1.0], &c2);
        let got = frechet_distance(&gaussian(&[0.0, 1.0], &c1), &gaussian(&[2.0, -1.0], &c2)).unwrap();
        assert!((got - want).abs() < 1e-10, "{got} vs {want}");
        // Singular covariance (rank 1) is still handled through the clamped eigenvalues.
        let c3 = [1.0, 1.0, 1.0, 1.0];
        let want = closed_form_2d(&[0.0, 0.0], &c3, &[0.0, 0.0], &c2);
        let got = frechet_distance(&gaussian(&[0.0, 0.0], &c3), &gaussian(&[0.0, 0.0], &c2)).unwrap();
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }

    #[test]
    fn large_samples_approach_the_closed_form() {
        let (l1, l2) = ([1.0, 0.0, 0.6, 0.8], [1.5, 0.0, -0.5, 0.5]);
        let lt = |l: &[f64]| [l[0] * l[0], l[0] * l[2], l[0] * l[2], l[2] * l[2] + l[3] * l[3]];
        let (m1, m2) = ([0.0, 0.0], [1.0, -0.5]);
        let want = closed_form_2d(&m1, &lt(&l1), &m2, &lt(&l2));
        let got = fid(&sample(200_000, &m1, &l1, 4), &sample(200_000, &m2, &l2, 5), 2).unwrap();
        assert!((got - want).abs() < 0.02 * want, "{got} vs {want}");
    }

    #[test]
    fn bad_input_errors_clearly() {
        let msg = fid(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], 2).unwrap_err().to_string();
        assert_eq!(msg, "FID needs at least 2 samples per set, got 1");
        let a = gaussian(&[0.0; 2], &diag(&[1.0, 1.0]));
        let b = gaussian(&[0.0; 3], &diag(&[1.0, 1.0, 1.0]));
        assert_eq!(frechet_distance(&a, &b).unwrap_err().to_string(), "feature dimension mismatch: 2 vs 3");
        let mut bad = a.clone();
        bad.cov.pop();
        assert!(frechet_distance(&bad, &a).unwrap_err().to_string().contains("malformed"));
        bad = a.clone();
        bad.mean[0] = f64::NAN;
        assert!(frechet_distance(&a, &bad).is_err());
        assert!(fid(&[1.0, f32::INFINITY, 1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], 2).is_err());
    }
}
