//! `Net`, the trainable network of any model, and `Model`, a network ready to use on a device.

use super::blocks::{self, one_hot};
use super::{Losses, ModelSpec, aae, gan, vae};
use crate::models::ae;
use anyhow::{Result, bail};
use burn::module::Module;
use burn::prelude::*;

/// The trainable network of any model kind. (One per run and never stored in bulk, so the size
/// difference between variants costs nothing.)
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Net {
    Ae(ae::Ae),
    Vae(vae::Vae),
    Gan(gan::Adversary),
    Aae(aae::Aae),
}

impl Net {
    /// A freshly initialised network; every initial weight comes from `seed`.
    pub fn new(spec: &ModelSpec, seed: u64, device: &Device) -> Self {
        (spec.kind.decl().build)(spec, seed, device)
    }

    /// Make batch-norm running statistics current (see `dcgan::sync_bn`).
    pub fn sync_running_stats(&self) {
        if let Net::Gan(m) = self {
            if let gan::Generator::Conv(g) = &m.g {
                g.sync_running_stats();
            }
            if let gan::Discriminator::Conv(d) = &m.d {
                d.sync_running_stats();
            }
        }
    }

    /// All float parameters, flattened in module order (for comparing weights exactly: the
    /// serialised record also holds run-specific parameter ids).
    pub fn param_values(&self) -> Vec<f32> {
        blocks::param_values(self)
    }

    fn cond(&self, spec: &ModelSpec, labels: &[u8], device: &Device) -> Option<Tensor<2>> {
        spec.kind.is_conditional().then(|| one_hot(labels, spec.num_classes, device))
    }

    /// Training losses for a batch `x` [B, D]; `eps` [B, latent] is the reparameterisation noise.
    pub fn losses(&self, spec: &ModelSpec, x: Tensor<2>, labels: &[u8], eps: Tensor<2>) -> Losses {
        let device = x.device();
        match self {
            Net::Ae(m) => m.losses(spec, x),
            Net::Vae(m) => m.losses(spec, x, self.cond(spec, labels, &device), eps),
            Net::Aae(m) => {
                let recon = m.recon(x);
                Losses { total: recon.clone(), terms: vec![("recon", recon)] }
            }
            // Held-out view of the game: D's loss and outputs on real test images and on G(eps).
            Net::Gan(m) => {
                let game = spec.kind.decl().game.expect("adversarial models declare their game");
                let cond = self.cond(spec, labels, &device);
                let lr = m.discriminate(x, cond.clone());
                let lf = m.discriminate(m.generate(eps, cond.clone()), cond);
                Losses {
                    total: game.d_loss(lr.clone(), lf.clone(), 1.0),
                    terms: vec![
                        ("g_loss", game.g_loss(lf.clone())),
                        ("d_real", game.mean_output(lr)),
                        ("d_fake", game.mean_output(lf)),
                    ],
                }
            }
        }
    }

    /// Images in [0,1] for codes `z` [B, latent] (and labels for conditional models).
    pub fn decode(&self, spec: &ModelSpec, z: Tensor<2>, labels: &[u8]) -> Tensor<2> {
        let device = z.device();
        match self {
            Net::Ae(m) => m.decode(z),
            Net::Vae(m) => m.decode(z, self.cond(spec, labels, &device)),
            Net::Aae(m) => m.decode(z),
            Net::Gan(m) => (m.generate_samples(z, self.cond(spec, labels, &device)) + 1.0) * 0.5,
        }
    }

    /// The encoder's point estimate of the code (AE/AAE code, VAE posterior mean); None for GANs.
    pub fn encode_mean(&self, spec: &ModelSpec, x: Tensor<2>, labels: &[u8]) -> Option<Tensor<2>> {
        let device = x.device();
        match self {
            Net::Ae(m) => Some(m.encode(x)),
            Net::Vae(m) => Some(m.encode(x, self.cond(spec, labels, &device)).0),
            Net::Aae(m) => Some(m.encode(x)),
            Net::Gan(_) => None,
        }
    }
}

/// A model ready to use: its spec, its network on a device.
pub struct Model {
    pub spec: ModelSpec,
    pub net: Net,
    pub device: Device,
}

impl Model {
    /// `n` draws from the prior as a host vector [n × latent].
    pub fn prior(&self, n: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<f32> {
        super::prior::sample_prior(self.spec.prior, n, self.spec.latent_dim, rng)
    }

    /// Decode host codes to host images in [0,1], batched.
    pub fn decode_host(&self, z: &[f32], labels: &[u8]) -> Vec<f32> {
        let l = self.spec.latent_dim;
        let n = z.len() / l;
        let net = self.net.valid();
        let mut out = Vec::with_capacity(n * self.spec.shape.len());
        for start in (0..n).step_by(1000) {
            let end = (start + 1000).min(n);
            let zt = blocks::matrix(z[start * l..end * l].to_vec(), end - start, l, &self.device);
            let lab = if labels.is_empty() { vec![0; end - start] } else { labels[start..end].to_vec() };
            out.extend(blocks::to_vec(net.decode(&self.spec, zt, &lab)));
        }
        out
    }

    /// The mean codes of every image of `data` (grey levels, in the model's input range; each
    /// image with its label for a conditional encoder) [data.n × latent].
    pub fn encode_dataset(&self, data: &crate::data::Dataset) -> Result<Vec<f32>> {
        let loader = crate::data::Loader::new(data, 1000, crate::data::Binarize::None, self.spec.kind.range(), 0);
        let mut codes = Vec::with_capacity(data.n * self.spec.latent_dim);
        for b in loader.eval_batches(1000) {
            codes.extend(self.encode_host(&b.x, &b.labels)?);
        }
        Ok(codes)
    }

    /// Encode host images (in model input range) to their mean codes, batched.
    pub fn encode_host(&self, x: &[f32], labels: &[u8]) -> Result<Vec<f32>> {
        if !self.spec.kind.has_encoder() {
            bail!(
                "model '{}' has no encoder (a GAN only generates); use an ae, vae, cvae or aae run",
                self.spec.kind.name()
            );
        }
        let d = self.spec.shape.len();
        let n = x.len() / d;
        let net = self.net.valid();
        let mut out = Vec::with_capacity(n * self.spec.latent_dim);
        for start in (0..n).step_by(1000) {
            let end = (start + 1000).min(n);
            let xt = blocks::matrix(x[start * d..end * d].to_vec(), end - start, d, &self.device);
            let lab = if labels.is_empty() { vec![0; end - start] } else { labels[start..end].to_vec() };
            out.extend(blocks::to_vec(net.encode_mean(&self.spec, xt, &lab).expect("encoder models encode")));
        }
        Ok(out)
    }
}
