//! Variational autoencoder (Kingma & Welling 2014): the encoder gives q(z|x) = N(μ, diag σ²), a
//! sample z = μ + σ·ε (reparameterisation trick) is decoded, and the loss is the negative ELBO
//! = reconstruction NLL + β·KL(q(z|x) ‖ N(0, I)), all in nats per image. With `cond_dim > 0` both
//! encoder and decoder also see a one-hot condition: that is the CVAE (see `cvae.rs`).

use super::blocks::{Mlp, bernoulli_nll, gaussian_nll, kl_std_normal, linear};
use super::{DecoderKind, Losses, ModelSpec};
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};
use rand_chacha::ChaCha8Rng;

/// log σ² is clamped to this range: exp() of the log-variance can neither overflow nor vanish.
pub const LOGVAR_RANGE: (f64, f64) = (-12.0, 8.0);

#[derive(Module, Debug)]
pub struct Vae {
    pub encoder: Mlp,
    pub mu: Linear,
    pub logvar: Linear,
    pub decoder: Mlp,
    /// log σ of the Gaussian decoder (learned unless the spec fixes σ; unused for Bernoulli).
    pub log_sigma: Param<Tensor<1>>,
    pub cond_dim: usize,
}

impl Vae {
    pub fn new(spec: &ModelSpec, cond_dim: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let d = spec.shape.len();
        let h = &spec.hidden;
        let last = *h.last().unwrap_or(&d);
        let mut enc = vec![d + cond_dim];
        enc.extend(h);
        let mut dec = vec![spec.latent_dim + cond_dim];
        dec.extend(h.iter().rev());
        dec.push(d);
        let init_ls = spec.decoder_sigma.unwrap_or(0.1).ln() as f32;
        Vae {
            encoder: Mlp::new(&enc, rng, device),
            mu: linear(last, spec.latent_dim, rng, device),
            logvar: linear(last, spec.latent_dim, rng, device),
            decoder: Mlp::new(&dec, rng, device),
            log_sigma: Param::from_tensor(Tensor::from_floats([init_ls], device)),
            cond_dim,
        }
    }

    fn with_cond(&self, x: Tensor<2>, cond: Option<Tensor<2>>) -> Tensor<2> {
        match cond {
            Some(c) if self.cond_dim > 0 => Tensor::cat(vec![x, c], 1),
            _ => x,
        }
    }

    /// q(z|x): (μ, log σ²).
    pub fn encode(&self, x: Tensor<2>, cond: Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>) {
        let h = relu(self.encoder.forward(self.with_cond(x, cond)));
        let (lo, hi) = LOGVAR_RANGE;
        (self.mu.forward(h.clone()), self.logvar.forward(h).clamp(lo, hi))
    }

    /// Decoder output before the output non-linearity (Bernoulli logits, or Gaussian pre-mean).
    pub fn decode_raw(&self, z: Tensor<2>, cond: Option<Tensor<2>>) -> Tensor<2> {
        self.decoder.forward(self.with_cond(z, cond))
    }

    /// Mean image in [0,1].
    pub fn decode(&self, z: Tensor<2>, cond: Option<Tensor<2>>) -> Tensor<2> {
        sigmoid(self.decode_raw(z, cond))
    }

    /// log σ actually used by the Gaussian decoder.
    pub fn decoder_log_sigma(&self, spec: &ModelSpec) -> Tensor<1> {
        match spec.decoder_sigma {
            Some(s) => Tensor::from_floats([s.ln() as f32], &self.log_sigma.val().device()),
            None => self.log_sigma.val().clamp(-7.0, 2.0),
        }
    }

    /// Per-image reconstruction NLL −log p(x|z): [B].
    pub fn recon_nll(&self, spec: &ModelSpec, out: Tensor<2>, x: Tensor<2>) -> Tensor<1> {
        match spec.decoder {
            DecoderKind::Bernoulli => bernoulli_nll(out, x),
            DecoderKind::Gaussian => gaussian_nll(sigmoid(out), x, self.decoder_log_sigma(spec)),
        }
    }

    /// Negative ELBO with `eps` ~ N(0, I) supplied by the caller (so all randomness is seeded).
    pub fn losses(&self, spec: &ModelSpec, x: Tensor<2>, cond: Option<Tensor<2>>, eps: Tensor<2>) -> Losses {
        let (mu, logvar) = self.encode(x.clone(), cond.clone());
        let z = mu.clone() + (logvar.clone() * 0.5).exp() * eps;
        let out = self.decode_raw(z, cond);
        let recon = self.recon_nll(spec, out, x).mean();
        let kl = kl_std_normal(mu, logvar).mean();
        let total = recon.clone() + kl.clone().mul_scalar(spec.beta);
        Losses { total, terms: vec![("recon", recon), ("kl", kl)] }
    }
}
