//! Adversarial autoencoder (Makhzani et al. 2016): a deterministic autoencoder whose codes are pushed
//! towards a prior by a discriminator on the latent space instead of a KL term, so the prior may be
//! anything we can sample — here a standard Gaussian or a 10-component Gaussian mixture on a circle,
//! for which the KL has no closed form. Phases per step (see `train/adversarial.rs`): reconstruction,
//! latent D (prior draws = real, codes = fake), encoder as generator.

use super::blocks::{Mlp, bernoulli_nll};
use super::gan::LeakyMlp;
use super::{ModelSpec, Prior};
use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Mixture prior: components on a circle of this radius in the first two latent dimensions.
pub const MIXTURE_RADIUS: f32 = 4.0;
pub const MIXTURE_STD: f32 = 0.5;
pub const MIXTURE_COMPONENTS: usize = 10;

#[derive(Module, Debug)]
pub struct Aae {
    pub encoder: Mlp,
    pub decoder: Mlp,
    pub disc: LeakyMlp,
}

impl Aae {
    pub fn new(spec: &ModelSpec, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let d = spec.shape.len();
        let mut enc = vec![d];
        enc.extend(&spec.hidden);
        enc.push(spec.latent_dim);
        let dec: Vec<usize> = enc.iter().rev().copied().collect();
        Aae {
            encoder: Mlp::new(&enc, rng, device),
            decoder: Mlp::new(&dec, rng, device),
            disc: LeakyMlp::new(&[spec.latent_dim, 256, 256, 1], rng, device),
        }
    }

    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.encoder.forward(x)
    }
    pub fn decode(&self, z: Tensor<2>) -> Tensor<2> {
        sigmoid(self.decoder.forward(z))
    }
    /// Per-image Bernoulli reconstruction NLL, batch mean.
    pub fn recon(&self, x: Tensor<2>) -> Tensor<1> {
        bernoulli_nll(self.decoder.forward(self.encode(x.clone())), x).mean()
    }
}

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
