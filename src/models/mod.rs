//! Models: one file each, built from `blocks`, each declaring itself to the `registry` (family,
//! defaults, options, optimisers, guards). `Net` is the trainable network of any model and `Model`
//! the interface the rest of the program uses (a generator: prior + decode; an encoder where the
//! model has one).

pub mod blocks;
pub mod condition;
pub mod game;
mod net;
pub mod prior;
pub mod pyramid;
pub mod registry;
pub mod text;

pub use condition::Condition;
pub use net::{Model, Net};
pub use prior::Prior;
pub use registry::{Family, ModelDecl};

// Every model: its CLI name and its module (whose `DECL` declares it). Adding a model is its file
// and one line here.
registry::registry! {
    /// Autoencoder (deterministic code, reconstruction loss only).
    Ae => ae,
    /// Variational autoencoder (Bernoulli or Gaussian decoder, ELBO).
    Vae => vae,
    /// Conditional VAE (label-conditioned encoder and decoder).
    Cvae => cvae,
    /// GAN with MLP generator and discriminator.
    Gan => gan,
    /// Deep convolutional GAN (Radford et al.).
    Dcgan => dcgan,
    /// Conditional GAN (label-conditioned MLP generator and discriminator).
    Cgan => cgan,
    /// Adversarial autoencoder (latent discriminator instead of a KL term).
    Aae => aae,
    /// Least-squares GAN (Mao et al. 2017) on the DCGAN networks.
    Lsgan => lsgan,
    /// StackGAN (Zhang et al. 2017): text-conditioned, two stages, conditioning augmentation.
    Stackgan => stackgan,
}

use crate::data::ImageShape;
use anyhow::{Result, bail};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

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
            if !kind.decl().accepts("objective") {
                bail!("--objective iwae does not apply to model '{}' (it has no posterior)", kind.name());
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
    /// DCGAN: D has a 3×3 convolution on its last feature map (`models::dcgan`). Specs written
    /// before it existed read as false, so their checkpoints keep loading the D they trained.
    #[serde(default)]
    pub d_conv3: bool,
    /// GANs: decay of the exponential moving average of G's weights that samples come from
    /// (`--ema`); None: samples come from G itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<f64>,
    /// Convolutional models on square 16–256 px images: the width w of the scaled bodies of
    /// `pyramid.rs` (Radford et al.'s `ngf`/`ndf`). None: the fixed networks (28×28 and other
    /// sizes), as in every spec written before the scaled bodies existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// Text-conditioned models: vocabulary, class words, attribute thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<stackgan::TextSpec>,
    /// What the model is conditioned on, where that is not what its kind implies (a class for
    /// cvae/cgan, a caption for stackgan, nothing otherwise): `ModelSpec::condition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
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

impl ModelSpec {
    /// Check the spec against the data it will train on; errors say what to change.
    pub fn validate(&self) -> Result<()> {
        if self.latent_dim == 0 {
            bail!("--latent-dim must be at least 1");
        }
        if self.hidden.contains(&0) {
            bail!("--hidden sizes must be positive, got {:?}", self.hidden);
        }
        match &*self.condition() {
            Condition::Class { classes } if *classes < 2 => bail!(
                "model '{}' is conditioned on a class but the dataset has no class labels{}",
                self.kind.name(),
                if self.kind.is_conditional() { " (datasets with attributes: --condition attributes)" } else { "" }
            ),
            Condition::Attributes { names, .. } if names.is_empty() => {
                bail!("--condition attributes: no attributes named")
            }
            _ => {}
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            bail!("--beta must be a finite number ≥ 0, got {}", self.beta);
        }
        (self.kind.decl().check)(self)?;
        if self.arch == Arch::Conv {
            if !self.kind.decl().accepts("arch") {
                bail!("--arch does not apply to model '{}'", self.kind.name());
            }
            if !self.shape.height.is_multiple_of(4) || !self.shape.width.is_multiple_of(4) || self.shape.height < 4 {
                bail!(
                    "--arch conv needs image height and width divisible by 4, but the dataset's images are {}×{}",
                    self.shape.height,
                    self.shape.width
                );
            }
        }
        if let Some(w) = self.width {
            if pyramid::depth(self.shape).is_none() {
                bail!(
                    "--width sets the scaled convolutional networks of square images of side {:?}; these images are {}×{}",
                    pyramid::SIDES,
                    self.shape.height,
                    self.shape.width
                );
            }
            if !(1..=1024).contains(&w) {
                bail!("--width must be between 1 and 1024, got {w}");
            }
        }
        if let Some(s) = self.decoder_sigma
            && !(s.is_finite() && s > 0.0)
        {
            bail!("--decoder-sigma must be > 0, got {s}");
        }
        self.objective.check(self.kind)
    }
}

#[cfg(test)]
mod tests;
