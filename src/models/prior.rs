//! Priors p(z): every model samples its codes from one (the AAE can also be trained towards the
//! mixture).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The prior p(z) that samples are drawn from and that the AAE's codes are pushed towards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Prior {
    /// N(0, I).
    #[default]
    Gaussian,
    /// 10 Gaussians (σ 0.5) on a circle of radius 4 in the first two latent dimensions.
    Mixture,
}

/// Mixture prior: components on a circle of this radius in the first two latent dimensions.
pub const MIXTURE_RADIUS: f32 = 4.0;
pub const MIXTURE_STD: f32 = 0.5;
pub const MIXTURE_COMPONENTS: usize = 10;

/// `n` draws from the prior, host side [n × d].
pub fn sample_prior(prior: Prior, n: usize, d: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut z = crate::util::normal_vec(rng, n * d);
    if prior == Prior::Mixture {
        for row in z.chunks_mut(d) {
            let k = rng.random_range(0..MIXTURE_COMPONENTS);
            let a = 2.0 * std::f32::consts::PI * k as f32 / MIXTURE_COMPONENTS as f32;
            row[0] = MIXTURE_RADIUS * a.cos() + MIXTURE_STD * row[0];
            if d > 1 {
                row[1] = MIXTURE_RADIUS * a.sin() + MIXTURE_STD * row[1];
            }
        }
    }
    z
}
