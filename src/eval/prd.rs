//! Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
//! Generative Models").
//!
//! Each set's manifold is approximated by the union of balls centred on its samples, the radius of a ball being the
//! distance to the sample's k-th nearest other sample of the same set. Precision is the fraction of fake samples
//! inside at least one real ball (distance ≤ radius: "are the fakes realistic?"); recall is the fraction of real
//! samples inside at least one fake ball ("is the real distribution covered?"). The paper uses k = 3. Everything is
//! streamed through [`super::knn`], so 10k×10k sets never materialise a distance matrix, and the answer is exactly
//! what a brute-force double loop gives.

use anyhow::{Result, bail};

use super::knn::{check_set, kth_nn_self, within_any_ball};

/// Precision and recall of a fake set against a real set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionRecall {
    pub precision: f64,
    pub recall: f64,
    /// Neighbourhood size used for the ball radii.
    pub k: usize,
}

/// Improved precision and recall with k-NN balls (see the module docs).
pub fn precision_recall(real: &[f32], fake: &[f32], dim: usize, k: usize) -> Result<PrecisionRecall> {
    let n_real = check_set("real features", real, dim)?;
    let n_fake = check_set("fake features", fake, dim)?;
    if k == 0 {
        bail!("precision/recall needs k ≥ 1, got 0");
    }
    if n_real.min(n_fake) <= k {
        bail!("precision/recall with k = {k} needs more than {k} samples per set, got {n_real} real and {n_fake} fake");
    }
    let real_radii = kth_nn_self(real, dim, k)?;
    let fake_radii = kth_nn_self(fake, dim, k)?;
    let fraction = |hits: Vec<bool>| hits.iter().filter(|&&h| h).count() as f64 / hits.len() as f64;
    Ok(PrecisionRecall {
        precision: fraction(within_any_ball(fake, real, &real_radii, dim)?),
        recall: fraction(within_any_ball(real, fake, &fake_radii, dim)?),
        k,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(n: usize, dim: usize, scale: f32, shift: f32, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * dim).map(|_| rng.random::<f32>() * scale + shift).collect()
    }

    /// O(N²) reference written independently: full distance matrices, sorted rows.
    fn brute(real: &[f32], fake: &[f32], dim: usize, k: usize) -> (f64, f64) {
        let dist = |a: &[f32], b: &[f32]| {
            (a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>()).sqrt() as f32
        };
        let radii = |set: &[f32]| -> Vec<f32> {
            set.chunks(dim)
                .enumerate()
                .map(|(i, a)| {
                    let mut d: Vec<f32> =
                        set.chunks(dim).enumerate().filter(|(j, _)| *j != i).map(|(_, b)| dist(a, b)).collect();
                    d.sort_by(f32::total_cmp);
                    d[k - 1]
                })
                .collect()
        };
        let covered = |queries: &[f32], centres: &[f32], r: &[f32]| {
            let hits =
                queries.chunks(dim).filter(|q| centres.chunks(dim).zip(r).any(|(c, &r)| dist(q, c) <= r)).count();
            hits as f64 / (queries.len() / dim) as f64
        };
        (covered(fake, real, &radii(real)), covered(real, fake, &radii(fake)))
    }

    #[test]
    fn identical_sets_score_one() {
        let x = random(300, 8, 1.0, 0.0, 1);
        let pr = precision_recall(&x, &x, 8, 3).unwrap();
        assert_eq!((pr.precision, pr.recall, pr.k), (1.0, 1.0, 3));
    }

    #[test]
    fn far_apart_clusters_score_zero() {
        let (real, fake) = (random(200, 4, 1.0, 0.0, 2), random(150, 4, 1.0, 100.0, 3));
        let pr = precision_recall(&real, &fake, 4, 3).unwrap();
        assert_eq!((pr.precision, pr.recall), (0.0, 0.0));
    }

    #[test]
    fn matches_brute_force_exactly() {
        // Fakes are a narrower, shifted cloud: precision and recall differ and neither is trivial.
        let dim = 5;
        let real = random(400, dim, 1.0, 0.0, 4);
        let fake = random(300, dim, 0.6, 0.6, 5);
        for k in [1, 3, 7] {
            let pr = precision_recall(&real, &fake, dim, k).unwrap();
            let (p, r) = brute(&real, &fake, dim, k);
            assert_eq!((pr.precision, pr.recall), (p, r), "k = {k}");
            assert!(p > 0.0 && p < 1.0 && r > 0.0 && r < 1.0 && p != r, "k = {k}: {p} {r}");
        }
    }

    #[test]
    fn partially_overlapping_sets_reflect_the_overlap() {
        // Half the fakes are copies of real samples, half lie far away: precision is exactly ½.
        let dim = 3;
        let real = random(200, dim, 1.0, 0.0, 6);
        let mut fake = real[..100 * dim].to_vec();
        fake.extend(random(100, dim, 1.0, 50.0, 7));
        let pr = precision_recall(&real, &fake, dim, 3).unwrap();
        assert_eq!(pr.precision, 0.5);
        let (p, r) = brute(&real, &fake, dim, 3);
        assert_eq!((pr.precision, pr.recall), (p, r));
    }

    #[test]
    fn bad_input_errors_clearly() {
        let x = random(10, 2, 1.0, 0.0, 8);
        let msg = precision_recall(&x, &x[..6], 2, 3).unwrap_err().to_string();
        assert!(msg.contains("needs more than 3 samples per set, got 10 real and 3 fake"), "{msg}");
        assert!(precision_recall(&x, &x, 2, 0).is_err());
        assert!(precision_recall(&x, &x[..5], 2, 1).is_err());
    }
}
