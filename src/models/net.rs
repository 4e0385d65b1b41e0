//! `Net`, the trainable network of any model, and `Model`, a network ready to use on a device.

use super::blocks;
use super::{Losses, ModelSpec, aae, gan, stackgan, vae};
use crate::models::ae;
use anyhow::{Result, bail};
use burn::module::Module;
use burn::prelude::*;
use stackgan::{Critic, FirstStage, SecondStage};

/// The trainable network of any model kind. (One per run and never stored in bulk, so the size
/// difference between variants costs nothing.)
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Net {
    Ae(ae::Ae),
    Vae(vae::Vae),
    Gan(gan::Adversary),
    Aae(aae::Aae),
    Stack(stackgan::StackGan),
    /// The StackGAN of square 32–256 px images (faces).
    StackScaled(stackgan::ScaledStackGan),
}

impl Net {
    /// A freshly initialised network; every initial weight comes from `seed`.
    pub fn new(spec: &ModelSpec, seed: u64, device: &Device) -> Self {
        (spec.kind.decl().build)(spec, seed, device)
    }

    /// Make batch-norm running statistics current (see `dcgan::sync_bn`).
    pub fn sync_running_stats(&self) {
        if let Net::Gan(m) = self {
            m.g.sync_running_stats();
            m.d.sync_running_stats();
        }
        if let Net::Vae(m) = self {
            m.sync_running_stats();
        }
        if let Net::Stack(m) = self {
            m.sync_running_stats();
        }
        if let Net::StackScaled(m) = self {
            m.sync_running_stats();
        }
    }

    /// All float parameters, flattened in module order (for comparing weights exactly: the
    /// serialised record also holds run-specific parameter ids).
    pub fn param_values(&self) -> Vec<f32> {
        blocks::param_values(self)
    }

    /// Training losses for a batch `x` [B, D] with its condition rows (`models::condition`);
    /// `eps` [B, latent] is the reparameterisation noise.
    pub fn losses(&self, spec: &ModelSpec, x: Tensor<2>, cond: &[f32], eps: Tensor<2>) -> Losses {
        let device = x.device();
        let n = x.dims()[0];
        match self {
            Net::Ae(m) => m.losses(spec, x),
            Net::Vae(m) => m.losses(spec, x, spec.cond_tensor(cond, n, &device), eps),
            Net::Aae(m) => {
                let recon = m.recon(x);
                Losses { total: recon.clone(), terms: vec![("recon", recon)] }
            }
            // Held-out view of the game: D's loss and outputs on real test images and on G(eps).
            Net::Gan(m) => {
                let game = spec.kind.decl().game.expect("adversarial models declare their game");
                let cond = spec.cond_tensor(cond, n, &device);
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
            // Both stages' discriminators on real test images and samples, with their captions.
            Net::Stack(m) => {
                m.held_out(spec.shape, x, spec.cond_tensor(cond, n, &device).expect("text models are conditioned"), eps)
            }
            Net::StackScaled(m) => {
                m.held_out(spec.shape, x, spec.cond_tensor(cond, n, &device).expect("text models are conditioned"), eps)
            }
        }
    }

    /// Images in [0,1] for codes `z` [B, latent] with their condition rows (empty: the default).
    pub fn decode(&self, spec: &ModelSpec, z: Tensor<2>, cond: &[f32]) -> Tensor<2> {
        let device = z.device();
        let c = spec.cond_tensor(cond, z.dims()[0], &device);
        match self {
            Net::Ae(m) => m.decode(z),
            Net::Vae(m) => m.decode(z, c),
            Net::Aae(m) => m.decode(z),
            Net::Gan(m) => (m.generate_samples(z, c) + 1.0) * 0.5,
            Net::Stack(m) => (m.generate(z, c.expect("text models are conditioned"), stackgan::Stage::Two) + 1.0) * 0.5,
            Net::StackScaled(m) => {
                (m.generate(z, c.expect("text models are conditioned"), stackgan::Stage::Two) + 1.0) * 0.5
            }
        }
    }

    /// The encoder's point estimate of the code (AE/AAE code, VAE posterior mean); None for GANs.
    pub fn encode_mean(&self, spec: &ModelSpec, x: Tensor<2>, cond: &[f32]) -> Option<Tensor<2>> {
        let device = x.device();
        let n = x.dims()[0];
        match self {
            Net::Ae(m) => Some(m.encode(x)),
            Net::Vae(m) => Some(m.encode(x, spec.cond_tensor(cond, n, &device)).0),
            Net::Aae(m) => Some(m.encode(x)),
            Net::Gan(_) | Net::Stack(_) | Net::StackScaled(_) => None,
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

    /// Decode host codes to host images in [0,1], batched, with host condition rows (empty: the
    /// default rows of `ModelSpec::cond_default`).
    pub fn decode_host(&self, z: &[f32], cond: &[f32]) -> Vec<f32> {
        let l = self.spec.latent_dim;
        let n = z.len() / l;
        let net = self.net.valid();
        let mut out = Vec::with_capacity(n * self.spec.shape.len());
        for start in (0..n).step_by(1000) {
            let end = (start + 1000).min(n);
            let zt = blocks::matrix(z[start * l..end * l].to_vec(), end - start, l, &self.device);
            out.extend(blocks::to_vec(net.decode(&self.spec, zt, self.spec.cond_slice(cond, start, end))));
        }
        out
    }

    /// The mean codes of every image of `data` (grey levels, in the model's input range; each
    /// image with its condition for a conditional encoder) [data.n × latent].
    pub fn encode_dataset(&self, data: &crate::data::Dataset) -> Result<Vec<f32>> {
        let loader = crate::data::Loader::new(data, 1000, crate::data::Binarize::None, self.spec.kind.range(), 0);
        let mut codes = Vec::with_capacity(data.n * self.spec.latent_dim);
        for b in loader.eval_batches(1000) {
            codes.extend(self.encode_host(&b.x, &self.spec.cond_of_data(data, &b.idx))?);
        }
        Ok(codes)
    }

    /// Encode host images (in model input range) with their condition rows to their mean codes,
    /// batched.
    pub fn encode_host(&self, x: &[f32], cond: &[f32]) -> Result<Vec<f32>> {
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
            let c = self.spec.cond_slice(cond, start, end);
            out.extend(blocks::to_vec(net.encode_mean(&self.spec, xt, c).expect("encoder models encode")));
        }
        Ok(out)
    }
}

impl Model {
    /// The vocabulary and class words of a text-conditioned model; an error naming the model
    /// for any other.
    pub fn text(&self) -> Result<&stackgan::TextSpec> {
        match &self.spec.text {
            Some(t) if self.spec.kind.decl().text => Ok(t),
            _ => bail!(
                "model '{}' is not conditioned on text (--text needs a stackgan run; use --class for class-conditional models)",
                self.spec.kind.name()
            ),
        }
    }

    /// Images in [0,1] of `stage` for host codes and typed captions (one caption per code, or one
    /// for all); unknown words are an error naming them.
    pub fn decode_text_host(&self, z: &[f32], captions: &[String], stage: stackgan::Stage) -> Result<Vec<f32>> {
        let t = self.text()?;
        let tokens = captions.iter().map(|c| t.tokens(c)).collect::<Result<Vec<_>>>()?;
        Ok(self.decode_tokens_host(z, &tokens, stage))
    }

    /// `decode_text_host` for captions already tokenised (caption i % len for code i).
    pub fn decode_tokens_host(&self, z: &[f32], tokens: &[Vec<u32>], stage: stackgan::Stage) -> Vec<f32> {
        let n = z.len() / self.spec.latent_dim;
        let per_code: Vec<&[u32]> = (0..n).map(|i| tokens[i % tokens.len()].as_slice()).collect();
        let t = self.spec.text.as_ref().expect("text models carry their vocabulary");
        self.decode_bow_host(z, &t.bags(&per_code), stage)
    }

    /// Images in [0,1] of `stage` for host codes and host bags of words [n × vocab] (any mix of
    /// captions: a walk between two captions blends their bags).
    pub fn decode_bow_host(&self, z: &[f32], bows: &[f32], stage: stackgan::Stage) -> Vec<f32> {
        match &self.net {
            Net::Stack(m) => self.bow_images(&m.valid(), z, bows, stage),
            Net::StackScaled(m) => self.bow_images(&m.valid(), z, bows, stage),
            _ => unreachable!("decode_bow_host is only reached through text()"),
        }
    }

    fn bow_images<G1: FirstStage, D: Critic, G2: SecondStage>(
        &self,
        m: &stackgan::Stack<G1, D, G2>,
        z: &[f32],
        bows: &[f32],
        stage: stackgan::Stage,
    ) -> Vec<f32> {
        let (l, v) = (self.spec.latent_dim, m.vocab);
        let n = z.len() / l;
        // Chunks of ~4M output values: a 1,000-image chunk of 64×64 faces would hold GBs of activations.
        let chunk = (4_000_000 / self.spec.shape.len().max(1)).clamp(1, 1000);
        let mut out = Vec::with_capacity(n * self.spec.shape.len());
        for start in (0..n).step_by(chunk) {
            let end = (start + chunk).min(n);
            let zt = blocks::matrix(z[start * l..end * l].to_vec(), end - start, l, &self.device);
            let bow = blocks::matrix(bows[start * v..end * v].to_vec(), end - start, v, &self.device);
            out.extend(blocks::to_vec((m.generate(zt, bow, stage) + 1.0) * 0.5));
        }
        out
    }
}
