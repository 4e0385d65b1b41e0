//! Models: one file each, built from `blocks`; `Model` is the registry and the two interfaces the
//! rest of the program uses (a generator: prior + decode; an encoder where the model has one).

pub mod aae;
pub mod ae;
pub mod blocks;
pub mod cgan;
pub mod cvae;
pub mod dcgan;
pub mod gan;
pub mod vae;

use crate::data::ImageShape;
use anyhow::{Result, bail};
use burn::module::Module;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::Range;
use blocks::one_hot;
use blocks::softplus;
use burn::tensor::activation::sigmoid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Autoencoder (deterministic code, reconstruction loss only).
    Ae,
    /// Variational autoencoder (Bernoulli or Gaussian decoder, ELBO).
    Vae,
    /// Conditional VAE (label-conditioned encoder and decoder).
    Cvae,
    /// GAN with MLP generator and discriminator.
    Gan,
    /// Deep convolutional GAN (Radford et al.).
    Dcgan,
    /// Conditional GAN (label-conditioned MLP generator and discriminator).
    Cgan,
    /// Adversarial autoencoder (latent discriminator instead of a KL term).
    Aae,
}

/// The AAE's prior p(z).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Prior {
    /// N(0, I).
    #[default]
    Gaussian,
    /// 10 Gaussians (σ 0.5) on a circle of radius 4 in the first two latent dimensions.
    Mixture,
}

impl ModelKind {
    pub fn name(&self) -> &'static str {
        match self {
            ModelKind::Ae => "ae",
            ModelKind::Vae => "vae",
            ModelKind::Cvae => "cvae",
            ModelKind::Gan => "gan",
            ModelKind::Dcgan => "dcgan",
            ModelKind::Cgan => "cgan",
            ModelKind::Aae => "aae",
        }
    }
    pub fn is_conditional(&self) -> bool {
        matches!(self, ModelKind::Cvae | ModelKind::Cgan)
    }
    pub fn has_encoder(&self) -> bool {
        !self.is_gan()
    }
    /// Generator + discriminator trained with two optimisers (the AAE also has a discriminator).
    pub fn is_adversarial(&self) -> bool {
        self.is_gan() || *self == ModelKind::Aae
    }
    pub fn is_gan(&self) -> bool {
        matches!(self, ModelKind::Gan | ModelKind::Dcgan | ModelKind::Cgan)
    }
    /// Trained so that codes follow the prior (the AE is given the N(0, I) a naive user would try).
    pub fn is_variational(&self) -> bool {
        matches!(self, ModelKind::Vae | ModelKind::Cvae | ModelKind::Aae)
    }
    /// Input range: tanh generators work in [-1, 1], likelihood decoders in [0, 1].
    pub fn range(&self) -> Range {
        if self.is_gan() { Range::Symmetric } else { Range::Unit }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DecoderKind {
    /// p(x|z) = Bernoulli(sigmoid(logits)): BCE-with-logits, for binarised or [0,1] data.
    Bernoulli,
    /// p(x|z) = N(sigmoid(out), σ²): learned σ unless `--decoder-sigma` fixes it.
    Gaussian,
}

/// Encoder/decoder bodies of the VAE family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// Fully connected layers on the flattened image.
    #[default]
    Mlp,
    /// Two strided convolutions before the MLP encoder, two transposed ones after the MLP decoder
    /// (images with height and width divisible by 4, any channel count).
    Conv,
}

/// What a VAE-family model maximises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// The evidence lower bound, one posterior sample per image.
    #[default]
    Elbo,
    /// The importance-weighted bound of Burda et al. (2016) with `k` posterior samples per image:
    /// log (1/k) Σ p(x, z_i)/q(z_i|x), tighter than the ELBO and equal to it for k = 1.
    Iwae { k: usize },
}

impl Objective {
    /// Whether `kind` can train on this objective, and k is in range (checked for flags and for
    /// stored specs alike).
    pub fn check(&self, kind: ModelKind) -> Result<()> {
        if let Objective::Iwae { k } = *self {
            if !matches!(kind, ModelKind::Vae | ModelKind::Cvae) {
                bail!("--objective iwae applies to vae and cvae (model '{}' has no posterior)", kind.name());
            }
            if !(1..=4096).contains(&k) {
                bail!("--iwae-k must be between 1 and 4096, got {k}");
            }
        }
        Ok(())
    }

    /// Posterior samples per image in one training or test evaluation.
    pub fn draws(&self) -> usize {
        match self {
            Objective::Elbo => 1,
            Objective::Iwae { k } => *k,
        }
    }
}

/// Everything needed to rebuild a model's architecture (stored in the run config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub kind: ModelKind,
    pub shape: ImageShape,
    pub num_classes: usize,
    pub latent_dim: usize,
    pub hidden: Vec<usize>,
    pub decoder: DecoderKind,
    pub decoder_sigma: Option<f64>,
    pub beta: f64,
    #[serde(default)]
    pub prior: Prior,
    #[serde(default)]
    pub arch: Arch,
    #[serde(default)]
    pub objective: Objective,
    /// GANs: decay of the exponential moving average of G's weights that samples come from
    /// (`--ema`); None: samples come from G itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<f64>,
}

/// Named scalar losses of one step; `total` is what is minimised.
pub struct Losses {
    pub total: Tensor<1>,
    pub terms: Vec<(&'static str, Tensor<1>)>,
}

impl Losses {
    /// All terms with one host transfer: [("loss", total), (name, value)…].
    pub fn values(&self) -> Vec<(&'static str, f64)> {
        let mut ts = vec![self.total.clone().reshape([1])];
        ts.extend(self.terms.iter().map(|(_, t)| t.clone().reshape([1])));
        let v = blocks::to_vec(Tensor::cat(ts, 0));
        std::iter::once("loss").chain(self.terms.iter().map(|(n, _)| *n)).zip(v.into_iter().map(f64::from)).collect()
    }
}

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
        let rng = &mut crate::util::rng(seed, crate::util::Stream::Init, 0);
        match spec.kind {
            ModelKind::Ae => Net::Ae(ae::Ae::new(spec, rng, device)),
            ModelKind::Vae => Net::Vae(vae::Vae::new(spec, 0, rng, device)),
            ModelKind::Cvae => Net::Vae(cvae::new(spec, rng, device)),
            ModelKind::Gan | ModelKind::Cgan | ModelKind::Dcgan => {
                let (l, d) = (spec.latent_dim, spec.shape.len());
                let c = if spec.kind == ModelKind::Cgan { spec.num_classes } else { 0 };
                let new_g = |rng: &mut rand_chacha::ChaCha8Rng| match spec.kind {
                    ModelKind::Dcgan => gan::Generator::Conv(dcgan::ConvGenerator::new(l, 0, spec.shape, rng, device)),
                    _ => gan::Generator::Mlp(gan::MlpGenerator::new(l, c, d, rng, device)),
                };
                let g = new_g(rng);
                let d = match spec.kind {
                    ModelKind::Dcgan => {
                        gan::Discriminator::Conv(dcgan::ConvDiscriminator::new(spec.shape, rng, device))
                    }
                    _ => gan::Discriminator::Mlp(gan::MlpDiscriminator::new(d, c, rng, device)),
                };
                // The average starts as G itself: a second G from the same stream, with its own
                // parameters and batch-norm statistics, that no optimiser touches.
                let g_ema = spec
                    .ema
                    .is_some()
                    .then(|| new_g(&mut crate::util::rng(seed, crate::util::Stream::Init, 0)).no_grad());
                Net::Gan(gan::Adversary { g, d, cond_dim: c, g_ema })
            }
            ModelKind::Aae => Net::Aae(aae::Aae::new(spec, rng, device)),
        }
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
                let cond = self.cond(spec, labels, &device);
                let lr = m.discriminate(x, cond.clone());
                let lf = m.discriminate(m.generate(eps, cond.clone()), cond);
                let d_loss = softplus(lr.clone().neg()).mean() + softplus(lf.clone()).mean();
                let g_loss = softplus(lf.clone().neg()).mean();
                Losses {
                    total: d_loss,
                    terms: vec![("g_loss", g_loss), ("d_real", sigmoid(lr).mean()), ("d_fake", sigmoid(lf).mean())],
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

impl ModelSpec {
    /// Check the spec against the data it will train on; errors say what to change.
    pub fn validate(&self) -> Result<()> {
        if self.latent_dim == 0 {
            bail!("--latent-dim must be at least 1");
        }
        if self.hidden.contains(&0) {
            bail!("--hidden sizes must be positive, got {:?}", self.hidden);
        }
        if self.kind.is_conditional() && self.num_classes < 2 {
            bail!("model '{}' is conditional but the dataset has no class labels", self.kind.name());
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            bail!("--beta must be a finite number ≥ 0, got {}", self.beta);
        }
        if self.kind == ModelKind::Dcgan
            && (!self.shape.height.is_multiple_of(4) || !self.shape.width.is_multiple_of(4) || self.shape.height < 4)
        {
            bail!(
                "dcgan needs image height and width divisible by 4, but the dataset's images are {}×{}",
                self.shape.height,
                self.shape.width
            );
        }
        if self.arch == Arch::Conv {
            if !matches!(self.kind, ModelKind::Vae | ModelKind::Cvae) {
                bail!("--arch conv applies to vae and cvae (dcgan is convolutional already)");
            }
            if !self.shape.height.is_multiple_of(4) || !self.shape.width.is_multiple_of(4) || self.shape.height < 4 {
                bail!(
                    "--arch conv needs image height and width divisible by 4, but the dataset's images are {}×{}",
                    self.shape.height,
                    self.shape.width
                );
            }
        }
        if let Some(s) = self.decoder_sigma
            && !(s.is_finite() && s > 0.0)
        {
            bail!("--decoder-sigma must be > 0, got {s}");
        }
        self.objective.check(self.kind)
    }

    /// Default latent size and hidden widths per model.
    pub fn default_hidden(kind: ModelKind) -> Vec<usize> {
        match kind {
            ModelKind::Ae | ModelKind::Vae | ModelKind::Cvae | ModelKind::Aae => vec![512, 256],
            // The GAN networks have fixed shapes (gan::G_HIDDEN / D_HIDDEN, dcgan.rs).
            ModelKind::Gan | ModelKind::Dcgan | ModelKind::Cgan => vec![],
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
        aae::sample_prior(self.spec.prior, n, self.spec.latent_dim, rng)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: ModelKind) -> ModelSpec {
        ModelSpec {
            kind,
            shape: ImageShape { channels: 1, height: 4, width: 4 },
            num_classes: 10,
            latent_dim: 3,
            hidden: vec![8],
            decoder: DecoderKind::Bernoulli,
            decoder_sigma: None,
            beta: 1.0,
            prior: Prior::Gaussian,
            arch: Arch::Mlp,
            objective: Objective::Elbo,
            ema: None,
        }
    }

    #[test]
    fn kl_matches_closed_form_on_a_hand_made_case() {
        let device = Device::flex();
        // KL(N(μ,σ²)‖N(0,1)) = ½(σ² + μ² − 1 − ln σ²) per dimension.
        let mu = Tensor::<2>::from_floats([[1.0, -2.0], [0.0, 0.0]], &device);
        let logvar = Tensor::<2>::from_floats([[0.0, 2.0f32.ln()], [0.0, 0.0]], &device);
        let kl = blocks::to_vec(blocks::kl_std_normal(mu, logvar));
        let expect0 = 0.5 * (1.0 + 1.0 - 1.0 - 0.0) + 0.5 * (2.0 + 4.0 - 1.0 - 2.0f32.ln());
        assert!((kl[0] - expect0).abs() < 1e-5, "{} vs {}", kl[0], expect0);
        assert!(kl[1].abs() < 1e-7);
    }

    #[test]
    fn bernoulli_nll_equals_bce_computed_by_hand() {
        let device = Device::flex();
        let logits = [2.0f32, -1.0, 0.0];
        let x = [1.0f32, 0.0, 1.0];
        let got = blocks::to_vec(blocks::bernoulli_nll(
            Tensor::<2>::from_floats([logits], &device),
            Tensor::<2>::from_floats([x], &device),
        ))[0];
        let expect: f32 = logits
            .iter()
            .zip(x)
            .map(|(&l, x)| {
                let p = 1.0 / (1.0 + (-l).exp());
                -(x * p.ln() + (1.0 - x) * (1.0 - p).ln())
            })
            .sum();
        assert!((got - expect).abs() < 1e-5, "{got} vs {expect}");
    }

    #[test]
    fn gaussian_nll_matches_formula() {
        let device = Device::flex();
        let (m, x, s) = ([0.5f32, 0.2], [0.7f32, 0.1], 0.3f32);
        let got = blocks::to_vec(blocks::gaussian_nll(
            Tensor::<2>::from_floats([m], &device),
            Tensor::<2>::from_floats([x], &device),
            Tensor::from_floats([s.ln()], &device),
        ))[0];
        let expect: f32 = m
            .iter()
            .zip(x)
            .map(|(m, x)| 0.5 * ((x - m) / s).powi(2) + s.ln() + 0.5 * (2.0 * std::f32::consts::PI).ln())
            .sum();
        assert!((got - expect).abs() < 1e-4, "{got} vs {expect}");
    }

    #[test]
    fn cvae_decoding_depends_on_the_class() {
        let device = Device::flex();
        let s = spec(ModelKind::Cvae);
        let net = Net::new(&s, 1, &device);
        let z = Tensor::<2>::zeros([2, 3], &device);
        let out = blocks::to_vec(net.decode(&s, z, &[3, 7]));
        let (a, b) = out.split_at(16);
        assert!(a.iter().zip(b).any(|(p, q)| (p - q).abs() > 1e-4), "class had no effect");
    }

    #[test]
    fn conditional_model_needs_labels() {
        let mut s = spec(ModelKind::Cvae);
        s.num_classes = 0;
        assert!(s.validate().unwrap_err().to_string().contains("no class labels"));
    }
}
