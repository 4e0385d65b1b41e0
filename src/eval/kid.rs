//! Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs"), computed as torch-fidelity does.
//!
//! KID is the squared maximum mean discrepancy under the cubic polynomial kernel k(x, y) = (x·y/d + 1)³, estimated
//! without bias on random subsets of m samples from each set:
//! MMD²ᵤ = Σ_{i≠j} k(xᵢ,xⱼ)/(m(m−1)) + Σ_{i≠j} k(yᵢ,yⱼ)/(m(m−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ)/m².
//! The mean and (population, as `np.std`) standard deviation over subsets are reported. Unlike FID it is unbiased,
//! so small sample sizes are comparable, and it can come out slightly negative when the sets match.

use anyhow::{Result, bail};
use rand::SeedableRng;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::knn::check_set;

/// KID estimate over random subsets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kid {
    pub mean: f64,
    /// Population standard deviation of the per-subset estimates (ddof = 0, as torch-fidelity).
    pub std: f64,
    pub subsets: usize,
    /// Subset size actually used (the request clamped to both set sizes).
    pub subset_size: usize,
}

/// Rows of the first operand per kernel block, bounding scratch to BLOCK×m f32.
const BLOCK: usize = 256;

/// Σ k(xᵢ, yⱼ) over all pairs (or over i ≠ j when `skip_diag`), with dot products from sgemm and the kernel in f64.
fn kernel_sum(x: &[f32], y: &[f32], dim: usize, skip_diag: bool) -> f64 {
    let ny = y.len() / dim;
    let inv_d = 1.0 / dim as f64;
    let mut buf = vec![0.0f32; BLOCK * ny];
    let mut total = 0.0f64;
    for (b, xb) in x.chunks(BLOCK * dim).enumerate() {
        let mx = xb.len() / dim;
        // SAFETY: xb is mx×dim row-major, y (ny×dim row-major) is read as its dim×ny transpose via strides (1, dim),
        // and buf holds at least mx×ny entries written row-major; β = 0 so buf is only written.
        unsafe {
            matrixmultiply::sgemm(
                mx,
                dim,
                ny,
                1.0,
                xb.as_ptr(),
                dim as isize,
                1,
                y.as_ptr(),
                1,
                dim as isize,
                0.0,
                buf.as_mut_ptr(),
                ny as isize,
                1,
            );
        }
        for (i, row) in buf[..mx * ny].chunks_exact(ny).enumerate() {
            let gi = b * BLOCK + i;
            for (j, &dot) in row.iter().enumerate() {
                if !(skip_diag && j == gi) {
                    total += (f64::from(dot) * inv_d + 1.0).powi(3);
                }
            }
        }
    }
    total
}

/// Unbiased MMD² between two equally sized sample sets.
fn mmd2_unbiased(x: &[f32], y: &[f32], dim: usize) -> f64 {
    let m = (x.len() / dim) as f64;
    let within = kernel_sum(x, x, dim, true) + kernel_sum(y, y, dim, true);
    within / (m * (m - 1.0)) - 2.0 * kernel_sum(x, y, dim, false) / (m * m)
}

fn gather(data: &[f32], dim: usize, idx: &[usize]) -> Vec<f32> {
    idx.iter().flat_map(|&i| &data[i * dim..(i + 1) * dim]).copied().collect()
}

/// KID between feature sets `a` and `b` over `subsets` random subsets of `subset_size` samples (drawn without
/// replacement within a subset, from `ChaCha8Rng::seed_from_u64(seed)`). `subset_size` is clamped to both set sizes.
pub fn kid(a: &[f32], b: &[f32], dim: usize, subsets: usize, subset_size: usize, seed: u64) -> Result<Kid> {
    let na = check_set("first feature set", a, dim)?;
    let nb = check_set("second feature set", b, dim)?;
    if subsets == 0 {
        bail!("KID needs at least 1 subset, got 0");
    }
    if subset_size < 2 {
        bail!("KID subset size must be at least 2, got {subset_size}");
    }
    if na.min(nb) < 2 {
        bail!("KID needs at least 2 samples per set, got {na} and {nb}");
    }
    let m = subset_size.min(na).min(nb);
    // Draw every subset up front so the result does not depend on how the parallel work is scheduled.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let draws: Vec<(Vec<usize>, Vec<usize>)> = (0..subsets)
        .map(|_| (index::sample(&mut rng, na, m).into_vec(), index::sample(&mut rng, nb, m).into_vec()))
        .collect();
    let mmds: Vec<f64> =
        draws.par_iter().map(|(ia, ib)| mmd2_unbiased(&gather(a, dim, ia), &gather(b, dim, ib), dim)).collect();
    let mean = mmds.iter().sum::<f64>() / subsets as f64;
    let var = mmds.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / subsets as f64;
    Ok(Kid { mean, std: var.sqrt(), subsets, subset_size: m })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn random(n: usize, dim: usize, shift: f32, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * dim).map(|_| rng.random::<f32>() * 2.0 - 1.0 + shift).collect()
    }

    /// The estimator written out literally, in f64.
    fn brute_mmd2(x: &[f32], y: &[f32], dim: usize) -> f64 {
        let k = |a: &[f32], b: &[f32]| {
            (a.iter().zip(b).map(|(p, q)| *p as f64 * *q as f64).sum::<f64>() / dim as f64 + 1.0).powi(3)
        };
        let (xs, ys): (Vec<&[f32]>, Vec<&[f32]>) = (x.chunks(dim).collect(), y.chunks(dim).collect());
        let m = xs.len() as f64;
        let (mut kxx, mut kyy, mut kxy) = (0.0, 0.0, 0.0);
        for i in 0..xs.len() {
            for j in 0..xs.len() {
                if i != j {
                    kxx += k(xs[i], xs[j]);
                    kyy += k(ys[i], ys[j]);
                }
                kxy += k(xs[i], ys[j]);
            }
        }
        kxx / (m * (m - 1.0)) + kyy / (m * (m - 1.0)) - 2.0 * kxy / (m * m)
    }

    #[test]
    fn matches_brute_force_on_tiny_example() {
        let dim = 3;
        let (x, y) = (random(5, dim, 0.0, 1), random(5, dim, 0.3, 2));
        let want = brute_mmd2(&x, &y, dim);
        // Subsets of the full size are permutations, which leave the estimator unchanged.
        let got = kid(&x, &y, dim, 4, 5, 0).unwrap();
        assert!((got.mean - want).abs() < 1e-6 * want.abs().max(1e-3), "{} vs {want}", got.mean);
        assert!(got.std < 1e-9);
        // Hand-checkable: m = 2, d = 1, x = (0, 1), y = (1, 2). k(0,1)=1, k(1,2)=27, k(x,y) = 1+1+8+27.
        let got = kid(&[0.0, 1.0], &[1.0, 2.0], 1, 1, 2, 0).unwrap();
        assert!((got.mean - (1.0 + 27.0 - 37.0 / 2.0)).abs() < 1e-9, "{}", got.mean);
    }

    #[test]
    fn subset_mean_and_population_std_match_a_replayed_draw() {
        let dim = 2;
        let (x, y) = (random(9, dim, 0.0, 11), random(7, dim, 0.4, 12));
        let got = kid(&x, &y, dim, 5, 4, 99).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let mmds: Vec<f64> = (0..5)
            .map(|_| {
                let (ia, ib) = (index::sample(&mut rng, 9, 4).into_vec(), index::sample(&mut rng, 7, 4).into_vec());
                brute_mmd2(&gather(&x, dim, &ia), &gather(&y, dim, &ib), dim)
            })
            .collect();
        let mean = mmds.iter().sum::<f64>() / 5.0;
        let std = (mmds.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 5.0).sqrt();
        // f32 dot products: agreement to ~1e-7 of the kernel values (which are O(1) here).
        assert!((got.mean - mean).abs() < 1e-6 && (got.std - std).abs() < 1e-6, "{got:?} vs {mean} ± {std}");
        assert!(std > 0.0);
    }

    #[test]
    fn blocked_kernel_sums_match_brute_force() {
        let dim = 4;
        let (x, y) = (random(BLOCK + 37, dim, 0.0, 3), random(BLOCK + 37, dim, 0.1, 4));
        let want = brute_mmd2(&x, &y, dim);
        let got = mmd2_unbiased(&x, &y, dim);
        assert!((got - want).abs() < 1e-6 * want.abs().max(1e-4), "{got} vs {want}");
    }

    #[test]
    fn halves_of_one_set_are_close_shifted_sets_are_not() {
        let dim = 16;
        let x = random(2000, dim, 0.0, 5);
        let (h1, h2) = x.split_at(1000 * dim);
        let same = kid(h1, h2, dim, 20, 500, 7).unwrap();
        let shifted = kid(h1, &random(1000, dim, 0.5, 6), dim, 20, 500, 7).unwrap();
        assert!(shifted.mean > 0.05, "{shifted:?}");
        assert!(same.mean.abs() < 0.02 * shifted.mean, "{same:?} vs {shifted:?}");
        assert!(shifted.mean > 10.0 * shifted.std);
    }

    #[test]
    fn deterministic_for_a_seed_and_clamps_subset_size() {
        let dim = 5;
        let (x, y) = (random(50, dim, 0.0, 8), random(30, dim, 0.2, 9));
        let a = kid(&x, &y, dim, 10, 1000, 42).unwrap();
        assert_eq!(a, kid(&x, &y, dim, 10, 1000, 42).unwrap());
        assert_eq!((a.subsets, a.subset_size), (10, 30));
        let c = kid(&x, &y, dim, 10, 20, 43).unwrap();
        assert_ne!(c.mean, kid(&x, &y, dim, 10, 20, 42).unwrap().mean);
    }

    #[test]
    fn bad_input_errors_clearly() {
        let x = random(10, 2, 0.0, 10);
        assert!(kid(&x, &x[..2], 2, 10, 5, 0).unwrap_err().to_string().contains("at least 2 samples"));
        assert!(kid(&x, &x, 2, 0, 5, 0).is_err());
        assert!(kid(&x, &x, 2, 3, 1, 0).is_err());
        assert!(kid(&x, &x, 3, 3, 5, 0).unwrap_err().to_string().contains("not a multiple"));
    }
}
