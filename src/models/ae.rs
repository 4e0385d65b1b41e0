//! Deterministic autoencoder: x → z → x̂, trained on reconstruction alone. Its latent space has no
//! prior, which is why sampling it is a poor generator (see `latent-map`).

use super::blocks::{Mlp, bernoulli_nll, gaussian_nll};
use super::registry::{self, Adam, Family, HeldOut, ModelDecl};
use super::{DecoderKind, Losses, ModelSpec, Net};
use crate::config::Options;
use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use rand_chacha::ChaCha8Rng;

#[derive(Module, Debug)]
pub struct Ae {
    pub encoder: Mlp,
    pub decoder: Mlp,
}

impl Ae {
    pub fn new(spec: &ModelSpec, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let d = spec.shape.len();
        let mut enc = vec![d];
        enc.extend(&spec.hidden);
        enc.push(spec.latent_dim);
        let dec: Vec<usize> = enc.iter().rev().copied().collect();
        Ae { encoder: Mlp::new(&enc, rng, device), decoder: Mlp::new(&dec, rng, device) }
    }

    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.encoder.forward(x)
    }

    /// Decoder output before the output non-linearity.
    pub fn decode_raw(&self, z: Tensor<2>) -> Tensor<2> {
        self.decoder.forward(z)
    }

    pub fn decode(&self, z: Tensor<2>) -> Tensor<2> {
        sigmoid(self.decode_raw(z))
    }

    pub fn losses(&self, spec: &ModelSpec, x: Tensor<2>) -> Losses {
        let out = self.decode_raw(self.encode(x.clone()));
        let recon = match spec.decoder {
            DecoderKind::Bernoulli => bernoulli_nll(out, x),
            // A fixed σ makes this a scaled squared error; the constant keeps it in nats.
            DecoderKind::Gaussian => {
                let ls = (spec.decoder_sigma.unwrap_or(0.1)).ln() as f32;
                let device = out.device();
                gaussian_nll(sigmoid(out), x, Tensor::from_floats([ls], &device))
            }
        }
        .mean();
        Losses { total: recon.clone(), terms: vec![("recon", recon)] }
    }
}

/// Held-out loss of the likelihood family and the AAE: nats per image, lower is better.
pub const NATS: HeldOut =
    HeldOut { units: "nats per image (negative ELBO for VAEs: loss = recon + beta*kl)", lower_is_better: true };

pub const DECL: ModelDecl = ModelDecl {
    name: "ae",
    family: Family::Likelihood,
    conditional: false,
    variational: false,
    text: false,
    options: &["hidden", "decoder", "decoder_sigma"],
    defaults: |o| Options {
        epochs: Some(20),
        batch_size: Some(128),
        lr: Some(1e-3),
        latent_dim: Some(20),
        hidden: Some(vec![512, 256]),
        binarize: Some(registry::likelihood_binarize(o)),
        ..Default::default()
    },
    optimizers: &[Adam { updates: "encoder and decoder", beta1: 0.9 }],
    game: None,
    d_conv3: false,
    held_out: NATS,
    collapse_below: None,
    build: |spec, seed, device| {
        Net::Ae(Ae::new(spec, &mut crate::util::rng(seed, crate::util::Stream::Init, 0), device))
    },
    check: registry::no_check,
    activations: "MLP with ReLU between layers; VAE decoder output: sigmoid(logits) = mean image in [0,1]",
};
