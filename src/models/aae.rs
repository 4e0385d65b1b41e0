//! Adversarial autoencoder (Makhzani et al. 2016): a deterministic autoencoder whose codes are pushed
//! towards a prior by a discriminator on the latent space instead of a KL term, so the prior may be
//! anything we can sample — here a standard Gaussian or a 10-component Gaussian mixture on a circle,
//! for which the KL has no closed form. Phases per step (see `train/adversarial.rs`): reconstruction,
//! latent D (prior draws = real, codes = fake), encoder as generator.

use super::blocks::{Mlp, bernoulli_nll};
use super::gan::LeakyMlp;
use super::registry::{self, Adam, Family, ModelDecl};
use super::{ModelSpec, Net};
use crate::config::Options;
use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use rand_chacha::ChaCha8Rng;

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

pub const DECL: ModelDecl = ModelDecl {
    name: "aae",
    family: Family::AdversarialAutoencoder,
    conditional: false,
    variational: true,
    text: false,
    options: &["hidden", "prior", "lr_d", "label_smoothing"],
    defaults: |o| Options {
        epochs: Some(20),
        batch_size: Some(128),
        lr: Some(1e-3),
        latent_dim: Some(2),
        hidden: Some(vec![512, 256]),
        binarize: Some(registry::likelihood_binarize(o)),
        ..Default::default()
    },
    optimizers: &[
        Adam { updates: "encoder and decoder (reconstruction)", beta1: 0.9 },
        Adam { updates: "latent D", beta1: 0.5 },
        Adam { updates: "encoder as generator", beta1: 0.5 },
    ],
    game: None,
    d_conv3: false,
    held_out: super::ae::NATS,
    collapse_below: Some(0.01),
    build: |spec, seed, device| {
        Net::Aae(Aae::new(spec, &mut crate::util::rng(seed, crate::util::Stream::Init, 0), device))
    },
    check: registry::no_check,
    activations: super::ae::DECL.activations,
};
