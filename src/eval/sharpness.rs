//! Blurriness as the variance of the Laplacian (Pech-Pacheco et al. 2000, "Diatom autofocusing in brightfield
//! microscopy"; the usual variance-of-Laplacian focus measure).
//!
//! Each channel plane is convolved with the 3×3 Laplacian [0 1 0; 1 −4 1; 0 1 0] over its valid (h−2)×(w−2)
//! interior, and the population variance of that response is averaged over all images and channels. Edges and fine
//! texture produce large second derivatives, so blurry samples (a typical VAE failure) score low. Scores are only
//! comparable between image sets of the same size and value range.

use anyhow::{Result, bail};

/// Mean over images and channels of the variance of the 3×3 Laplacian response (images N×C×H×W in [0, 1]).
pub fn laplacian_variance(images: &[f32], c: usize, h: usize, w: usize) -> Result<f64> {
    if c == 0 {
        bail!("images need at least 1 channel, got 0");
    }
    if h < 3 || w < 3 {
        bail!("the 3×3 Laplacian needs images of at least 3×3 pixels, got {h}×{w}");
    }
    let plane = h * w;
    if images.is_empty() || !images.len().is_multiple_of(c * plane) {
        bail!("image buffer of length {} does not hold a positive number of {c}×{h}×{w} images", images.len());
    }
    if let Some(i) = images.iter().position(|v| !v.is_finite()) {
        bail!("images: non-finite pixel value {} at flat index {i}", images[i]);
    }
    let planes = images.len() / plane;
    let count = ((h - 2) * (w - 2)) as f64;
    let mut response = Vec::with_capacity((h - 2) * (w - 2));
    let mut total = 0.0f64;
    for p in images.chunks_exact(plane) {
        response.clear();
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let at = |yy: usize, xx: usize| f64::from(p[yy * w + xx]);
                response.push(at(y - 1, x) + at(y + 1, x) + at(y, x - 1) + at(y, x + 1) - 4.0 * at(y, x));
            }
        }
        let mean = response.iter().sum::<f64>() / count;
        total += response.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / count;
    }
    Ok(total / planes as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn constant_image_scores_zero() {
        assert_eq!(laplacian_variance(&[0.37; 2 * 3 * 8 * 5], 3, 8, 5).unwrap(), 0.0);
    }

    #[test]
    fn hand_computed_four_by_four() {
        // A single bright pixel at (1,1): interior responses −4, 1, 1, 0 → mean −½, variance 17/4.
        let mut img = [0.0f32; 16];
        img[5] = 1.0;
        assert!((laplacian_variance(&img, 1, 4, 4).unwrap() - 4.25).abs() < 1e-12);
        // Averaging with a constant plane (variance 0) halves it.
        let mut two = [0.5f32; 32];
        two[..16].copy_from_slice(&img);
        assert!((laplacian_variance(&two, 2, 4, 4).unwrap() - 2.125).abs() < 1e-12);
    }

    #[test]
    fn box_blur_lowers_the_score() {
        let (h, w) = (32, 32);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let img: Vec<f32> = (0..h * w).map(|_| rng.random()).collect();
        let mut blurred = img.clone();
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let s: f32 = (0..9).map(|k| img[(y + k / 3 - 1) * w + x + k % 3 - 1]).sum();
                blurred[y * w + x] = s / 9.0;
            }
        }
        let (sharp, soft) =
            (laplacian_variance(&img, 1, h, w).unwrap(), laplacian_variance(&blurred, 1, h, w).unwrap());
        assert!(soft < 0.5 * sharp, "{soft} vs {sharp}");
    }

    #[test]
    fn bad_input_errors_clearly() {
        assert!(laplacian_variance(&[0.0; 4], 1, 2, 2).unwrap_err().to_string().contains("at least 3×3"));
        assert!(laplacian_variance(&[0.0; 10], 1, 3, 3).unwrap_err().to_string().contains("does not hold"));
        assert!(laplacian_variance(&[], 1, 3, 3).is_err());
        assert!(laplacian_variance(&[0.0; 9], 0, 3, 3).is_err());
        assert!(laplacian_variance(&[f32::NAN; 9], 1, 3, 3).is_err());
    }
}
