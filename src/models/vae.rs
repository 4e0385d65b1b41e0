//! Variational autoencoder (Kingma & Welling 2014): the encoder gives q(z|x) = N(μ, diag σ²), a
//! sample z = μ + σ·ε (reparameterisation trick) is decoded, and the loss is the negative ELBO
//! = reconstruction NLL + β·KL(q(z|x) ‖ N(0, I)), all in nats per image. With `cond_dim > 0` both
//! encoder and decoder also see a condition row: that is the CVAE (see `cvae.rs`).

use super::blocks::{Mlp, gaussian_nll, kl_std_normal, linear};
use super::pyramid::{DownStack, UpStack};
use super::registry::{self, Adam, Family, ModelDecl};
use super::{Arch, DecoderKind, Losses, ModelSpec, Net, Objective};
use crate::config::{LrSchedule, Options};
use crate::kernels::{self, Act};
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Linear, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// log σ² is clamped to this range: exp() of the log-variance can neither overflow nor vanish.
pub const LOGVAR_RANGE: (f64, f64) = (-12.0, 8.0);

/// Channels of the two convolutional stages (`--arch conv`).
const CONV_CH: [usize; 2] = [32, 64];

/// U(−1/√fan_in, 1/√fan_in) weights from the run's stream, as `blocks::linear` does.
fn init_uniform(shape: [usize; 4], fan_in: usize, rng: &mut ChaCha8Rng, device: &Device) -> Param<Tensor<4>> {
    let k = 1.0 / (fan_in as f32).sqrt();
    let v: Vec<f32> = (0..shape.iter().product::<usize>()).map(|_| rng.random_range(-k..k)).collect();
    Param::from_data(TensorData::new(v, shape), device)
}

fn bias(n: usize, fan_in: usize, rng: &mut ChaCha8Rng, device: &Device) -> Option<Param<Tensor<1>>> {
    let k = 1.0 / (fan_in as f32).sqrt();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-k..k)).collect();
    Some(Param::from_data(TensorData::new(v, [n]), device))
}

/// C×H×W → 64×H/4×W/4 with two Conv(4, stride 2, pad 1) + ReLU.
#[derive(Module, Debug)]
pub struct ConvEncoder {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// 64×H/4×W/4 → C×H×W logits with two ConvTranspose(4, stride 2, pad 1), ReLU between.
#[derive(Module, Debug)]
pub struct ConvDecoder {
    pub up1: ConvTranspose2d,
    pub up2: ConvTranspose2d,
    pub h4: usize,
    pub w4: usize,
}

impl ConvEncoder {
    fn new(c: usize, h: usize, w: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let conv = |cin: usize, cout: usize, rng: &mut ChaCha8Rng| {
            let mut l = Conv2dConfig::new([cin, cout], [4, 4])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device);
            l.weight = init_uniform([cout, cin, 4, 4], cin * 16, rng, device);
            l.bias = bias(cout, cin * 16, rng, device);
            l
        };
        ConvEncoder {
            conv1: conv(c, CONV_CH[0], rng),
            conv2: conv(CONV_CH[0], CONV_CH[1], rng),
            channels: c,
            height: h,
            width: w,
        }
    }
    fn out_len(&self) -> usize {
        CONV_CH[1] * (self.height / 4) * (self.width / 4)
    }
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let b = x.dims()[0];
        let x = x.reshape([b, self.channels, self.height, self.width]);
        let x = kernels::conv2d(&self.conv1, x, Act::Relu);
        let x = kernels::conv2d(&self.conv2, x, Act::Relu);
        x.reshape([b, self.out_len()])
    }
}

impl ConvDecoder {
    fn new(c: usize, h: usize, w: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let up = |cin: usize, cout: usize, rng: &mut ChaCha8Rng| {
            let mut l =
                ConvTranspose2dConfig::new([cin, cout], [4, 4]).with_stride([2, 2]).with_padding([1, 1]).init(device);
            l.weight = init_uniform([cin, cout, 4, 4], cout * 16, rng, device);
            l.bias = bias(cout, cout * 16, rng, device);
            l
        };
        ConvDecoder { up1: up(CONV_CH[1], CONV_CH[0], rng), up2: up(CONV_CH[0], c, rng), h4: h / 4, w4: w / 4 }
    }
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let b = x.dims()[0];
        let x = kernels::activation(x, Act::Relu).reshape([b, CONV_CH[1], self.h4, self.w4]);
        let x = kernels::conv_transpose2d(&self.up1, x, Act::Relu);
        let x = kernels::conv_transpose2d(&self.up2, x, Act::None);
        let [b, c, h, w] = x.dims();
        x.reshape([b, c * h * w])
    }
}

#[derive(Module, Debug)]
pub struct Vae {
    pub encoder: Mlp,
    pub mu: Linear,
    pub logvar: Linear,
    pub decoder: Mlp,
    /// log σ of the Gaussian decoder (learned unless the spec fixes σ; unused for Bernoulli).
    pub log_sigma: Param<Tensor<1>>,
    pub cond_dim: usize,
    /// `--arch conv`: convolutions before the encoder MLP and after the decoder MLP.
    pub conv_enc: Option<ConvEncoder>,
    pub conv_dec: Option<ConvDecoder>,
    /// `--arch conv` on 16–256 px square images: the scaled bodies of `pyramid.rs` (the DCGAN's
    /// D as encoder, its G as decoder) around the MLPs.
    pub deep_enc: Option<DownStack>,
    pub deep_dec: Option<UpStack>,
}

impl Vae {
    pub fn new(spec: &ModelSpec, cond_dim: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let s = spec.shape;
        if let (Arch::Conv, Some(w)) = (spec.arch, spec.width) {
            return Self::scaled(spec, cond_dim, w, rng, device);
        }
        let (conv_enc, conv_dec) = match spec.arch {
            Arch::Mlp => (None, None),
            Arch::Conv => (
                Some(ConvEncoder::new(s.channels, s.height, s.width, rng, device)),
                Some(ConvDecoder::new(s.channels, s.height, s.width, rng, device)),
            ),
        };
        // The MLPs see the conv features instead of pixels when there are convolutions.
        let d = conv_enc.as_ref().map_or(s.len(), ConvEncoder::out_len);
        let (encoder, mu, logvar, decoder) = Self::mlps(spec, d, cond_dim, Some(d), rng, device);
        Vae {
            encoder,
            mu,
            logvar,
            decoder,
            log_sigma: Self::init_log_sigma(spec, device),
            cond_dim,
            conv_enc,
            conv_dec,
            deep_enc: None,
            deep_dec: None,
        }
    }

    /// Encoder MLP `[d + cond, hidden…]`, heads μ and log σ², decoder MLP `[latent + cond,
    /// hidden reversed…, out?]`, drawn from `rng` in that order.
    fn mlps(
        spec: &ModelSpec,
        d: usize,
        cond_dim: usize,
        out: Option<usize>,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> (Mlp, Linear, Linear, Mlp) {
        let h = &spec.hidden;
        let last = *h.last().unwrap_or(&d);
        let mut enc = vec![d + cond_dim];
        enc.extend(h);
        let mut dec = vec![spec.latent_dim + cond_dim];
        dec.extend(h.iter().rev());
        dec.extend(out);
        (
            Mlp::new(&enc, rng, device),
            linear(last, spec.latent_dim, rng, device),
            linear(last, spec.latent_dim, rng, device),
            Mlp::new(&dec, rng, device),
        )
    }

    fn init_log_sigma(spec: &ModelSpec, device: &Device) -> Param<Tensor<1>> {
        let init_ls = spec.decoder_sigma.unwrap_or(0.1).ln() as f32;
        Param::from_tensor(Tensor::from_floats([init_ls], device))
    }

    /// Down stack → MLP (`--hidden`) → μ, log σ²; z → MLP (mirrored) → up stack.
    fn scaled(spec: &ModelSpec, cond_dim: usize, width: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let enc_body = DownStack::new(spec.shape, width, rng, device);
        let (encoder, mu, logvar, decoder) = Self::mlps(spec, enc_body.out_len(), cond_dim, None, rng, device);
        let dec_in = *spec.hidden.first().unwrap_or(&(spec.latent_dim + cond_dim));
        Vae {
            encoder,
            mu,
            logvar,
            decoder,
            log_sigma: Self::init_log_sigma(spec, device),
            cond_dim,
            conv_enc: None,
            conv_dec: None,
            deep_dec: Some(UpStack::new(dec_in, spec.shape, width, rng, device)),
            deep_enc: Some(enc_body),
        }
    }

    /// Make batch-norm running statistics current (see `dcgan::sync_bn`).
    pub fn sync_running_stats(&self) {
        if let (Some(e), Some(d)) = (&self.deep_enc, &self.deep_dec) {
            super::dcgan::sync_bn(&e.batch_norms());
            super::dcgan::sync_bn(&d.batch_norms());
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
        let x = match (&self.conv_enc, &self.deep_enc) {
            (Some(c), _) => c.forward(x),
            (_, Some(c)) => {
                let b = x.dims()[0];
                c.forward(x).reshape([b, c.out_len()])
            }
            _ => x,
        };
        let h = self.encoder.forward_then(self.with_cond(x, cond), Act::Relu);
        let (lo, hi) = LOGVAR_RANGE;
        (kernels::linear(&self.mu, h.clone(), Act::None), kernels::linear(&self.logvar, h, Act::None).clamp(lo, hi))
    }

    /// Decoder output before the output non-linearity (Bernoulli logits, or Gaussian pre-mean).
    pub fn decode_raw(&self, z: Tensor<2>, cond: Option<Tensor<2>>) -> Tensor<2> {
        let zc = self.with_cond(z, cond);
        if let Some(up) = &self.deep_dec {
            return up.forward(self.decoder.forward_then(zc, Act::Relu), Act::None);
        }
        let h = self.decoder.forward(zc);
        match &self.conv_dec {
            Some(c) => c.forward(h),
            None => h,
        }
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
        self.recon_nll_grouped(spec, out, x, 1)
    }

    /// −log p(x|z) for codes z [B·g, L] of images x [B, D], `g` consecutive codes per image (with
    /// the condition already appended): the decoder and the likelihood fused where our kernels
    /// allow (Bernoulli, MLP decoder, CPU inference), else decode then `recon_nll_grouped`.
    pub fn decode_nll_grouped(&self, spec: &ModelSpec, z: Tensor<2>, x: Tensor<2>, g: usize) -> Tensor<1> {
        if spec.decoder == DecoderKind::Bernoulli && self.conv_dec.is_none() && self.deep_dec.is_none() {
            let layers: Vec<&Linear> = self.decoder.layers.iter().collect();
            if let Some(nll) = kernels::mlp_bce_rows(&layers, Act::Relu, z.clone(), x.clone(), g) {
                return nll;
            }
        }
        self.recon_nll_grouped(spec, self.decode_raw(z, None), x, g)
    }

    /// −log p(x|z) for decoder outputs [B·g, D] where each `g` consecutive rows decode codes of
    /// the same image x [B, D] (importance sampling): [B·g].
    pub fn recon_nll_grouped(&self, spec: &ModelSpec, out: Tensor<2>, x: Tensor<2>, g: usize) -> Tensor<1> {
        match spec.decoder {
            DecoderKind::Bernoulli => kernels::bce_logits_rows_grouped(out, x, g),
            DecoderKind::Gaussian => {
                let [b, d] = x.dims();
                let x = if g == 1 { x } else { x.reshape([b, 1, d]).repeat_dim(1, g).reshape([b * g, d]) };
                gaussian_nll(sigmoid(out), x, self.decoder_log_sigma(spec))
            }
        }
    }

    /// Negative ELBO (or negative IWAE bound, per `spec.objective`) with `eps` ~ N(0, I) supplied
    /// by the caller (so all randomness is seeded): [B, L] for the ELBO, [B·k, L] for the IWAE.
    pub fn losses(&self, spec: &ModelSpec, x: Tensor<2>, cond: Option<Tensor<2>>, eps: Tensor<2>) -> Losses {
        if let Objective::Iwae { k } = spec.objective {
            return self.iwae_losses(spec, x, cond, eps, k);
        }
        let (mu, logvar) = self.encode(x.clone(), cond.clone());
        let z = mu.clone() + (logvar.clone() * 0.5).exp() * eps;
        let out = self.decode_raw(z, cond);
        let recon = self.recon_nll(spec, out, x).mean();
        let kl = kl_std_normal(mu, logvar).mean();
        let total = recon.clone() + kl.clone().mul_scalar(spec.beta);
        Losses { total, terms: vec![("recon", recon), ("kl", kl)] }
    }

    /// log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x) for z_i = μ + σ·ε_i, k per image:
    /// [B, k]. (β weights the prior-to-posterior ratio, as it weights the KL in the ELBO.)
    pub fn log_weights(
        &self,
        spec: &ModelSpec,
        x: Tensor<2>,
        cond: Option<Tensor<2>>,
        eps: Tensor<2>,
        k: usize,
    ) -> Tensor<2> {
        let (mu, logvar) = self.encode(x.clone(), cond.clone());
        let [b, l] = mu.dims();
        let rep = |t: Tensor<2>| t.reshape([b, 1, l]).repeat_dim(1, k).reshape([b * k, l]);
        let (mu, logvar) = (rep(mu), rep(logvar));
        let z = mu + (logvar.clone() * 0.5).exp() * eps.clone();
        // log p(z) − log q(z|x) = ½ Σ (ε² + log σ² − z²): the 2π constants cancel.
        let log_ratio = (eps.powi_scalar(2) + logvar - z.clone().powi_scalar(2)).sum_dim(1).mul_scalar(0.5);
        let cond = cond.map(|c| {
            let n = c.dims()[1];
            c.reshape([b, 1, n]).repeat_dim(1, k).reshape([b * k, n])
        });
        let recon = self.recon_nll_grouped(spec, self.decode_raw(z, cond), x, k);
        (recon.neg() + log_ratio.reshape([b * k]).mul_scalar(spec.beta)).reshape([b, k])
    }

    /// The negative IWAE bound −log (1/k) Σ w_i, batch mean, with the ELBO of the same draws
    /// (mean log w_i) logged beside it.
    fn iwae_losses(&self, spec: &ModelSpec, x: Tensor<2>, cond: Option<Tensor<2>>, eps: Tensor<2>, k: usize) -> Losses {
        let lw = self.log_weights(spec, x, cond, eps, k);
        let m = lw.clone().max_dim(1).detach(); // [B, 1]: log-sum-exp with the max subtracted
        let lse = (lw.clone() - m.clone()).exp().sum_dim(1).log() + m - (k as f64).ln();
        let iwae = lse.mean().neg();
        let elbo = lw.mean().neg();
        Losses { total: iwae.clone(), terms: vec![("iwae", iwae), ("elbo", elbo)] }
    }
}

pub const DECL: ModelDecl = ModelDecl {
    name: "vae",
    family: Family::Likelihood,
    conditional: false,
    variational: true,
    text: false,
    options: &["hidden", "decoder", "decoder_sigma", "beta", "arch", "objective", "iwae_k", "kl_warmup", "width"],
    // The recipe measured in the README: cosine decay to 0 and a KL weight that ramps up over the
    // first tenth of the run, so the decoder learns to use the code before the KL closes it.
    defaults: |o| Options {
        epochs: Some(50),
        batch_size: Some(128),
        lr: Some(1e-3),
        latent_dim: Some(20),
        hidden: Some(vec![512, 256]),
        binarize: Some(registry::likelihood_binarize(o)),
        lr_schedule: Some(LrSchedule::Cosine),
        kl_warmup: Some(o.epochs.unwrap_or(50) / 10),
        ..Default::default()
    },
    optimizers: &[Adam { updates: "encoder and decoder", beta1: 0.9 }],
    game: None,
    d_conv3: false,
    held_out: super::ae::NATS,
    collapse_below: None,
    build: |spec, seed, device| {
        Net::Vae(Vae::new(spec, spec.cond_dim(), &mut crate::util::rng(seed, crate::util::Stream::Init, 0), device))
    },
    check: registry::no_check,
    activations: super::ae::DECL.activations,
};
