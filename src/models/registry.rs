//! The model registry: every model declares itself once, in its own file, as a [`ModelDecl`]
//! (family, defaults, the options it accepts, its optimiser recipe, what its held-out loss means,
//! its guards). The rest of the program asks the declaration instead of matching on model names,
//! so adding a model is its file plus one line in `registry!` below.

use super::DecoderKind;
pub use super::game::GameLoss;
use super::{ModelKind, ModelSpec, Net};
use crate::config::Options;
use crate::data::{Binarize, Range};
use anyhow::Result;
use burn::prelude::Device;

/// How a model is trained: the optimiser pattern and which step function runs it. Serialised as
/// the words the comparison report shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Family {
    /// One optimiser on a likelihood bound or reconstruction loss (AE, VAE, CVAE).
    #[serde(rename = "likelihood")]
    Likelihood,
    /// Generator against discriminator, alternating (GAN, DCGAN, cGAN, LSGAN, StackGAN).
    #[serde(rename = "GAN")]
    Adversarial,
    /// An autoencoder whose codes a latent discriminator pushes to the prior (AAE).
    #[serde(rename = "adversarial autoencoder")]
    AdversarialAutoencoder,
}

/// One Adam optimiser of a model's recipe, in the order the step function uses them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    /// What it updates (for messages and docs).
    pub updates: &'static str,
    pub beta1: f32,
}

/// What the held-out "loss" of the per-epoch test evaluation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldOut {
    /// Units and meaning, written into summary.json.
    pub units: &'static str,
    /// Whether a lower test loss is a better model (then `best.ckpt` tracks it). A GAN's test loss
    /// is D's, which says nothing about G's quality.
    pub lower_is_better: bool,
}

/// Everything the program needs to know about one model.
pub struct ModelDecl {
    pub name: &'static str,
    pub family: Family,
    /// Label-conditioned (`--class` works, the dataset must have labels).
    pub conditional: bool,
    /// Conditioned on a caption (text encoder; needs captions to train, `--text` to sample).
    pub text: bool,
    /// Trained so that codes follow the prior (the AE is given the N(0, I) a naive user would try).
    pub variational: bool,
    /// Model-specific options it accepts (snake_case field names of `Options`) on top of
    /// `config::COMMON_OPTIONS`; any other given option is refused with an error.
    pub options: &'static [&'static str],
    /// Default values of this model's options; receives the options the user gave, for defaults
    /// that depend on them (KL warm-up length on --epochs, binarisation on --decoder).
    pub defaults: fn(&Options) -> Options,
    /// Optimisers, one per update of the step.
    pub optimizers: &'static [Adam],
    /// The game's losses (adversarial models).
    pub game: Option<GameLoss>,
    /// Convolutional GANs: D gets the 3×3 layer on its last feature map (`ModelSpec::d_conv3`).
    pub d_conv3: bool,
    pub held_out: HeldOut,
    /// Collapse guard: warn when D's mean training loss over a log interval falls below this (D
    /// wins outright and G gets no gradient). None: no such guard (e.g. a critic whose loss is
    /// unbounded below).
    pub collapse_below: Option<f64>,
    /// A freshly initialised network; every initial weight comes from `seed`.
    pub build: fn(&ModelSpec, u64, &Device) -> Net,
    /// Requirements on the data (image size) beyond the generic spec checks.
    pub check: fn(&ModelSpec) -> Result<()>,
    /// Activations of the network in one line (the `activations` metadata of exported weights).
    pub activations: &'static str,
}

impl ModelDecl {
    pub fn accepts(&self, option: &str) -> bool {
        crate::config::COMMON_OPTIONS.contains(&option) || self.options.contains(&option)
    }
    /// Tanh generators work in [-1, 1], likelihood decoders in [0, 1].
    pub fn range(&self) -> Range {
        if self.family == Family::Adversarial { Range::Symmetric } else { Range::Unit }
    }
}

/// Binarisation a likelihood model gets by default: dynamic for Bernoulli decoders, none for
/// Gaussian ones (which model grey levels).
pub fn likelihood_binarize(o: &Options) -> Binarize {
    if o.decoder == Some(DecoderKind::Gaussian) { Binarize::None } else { Binarize::Dynamic }
}

/// Defaults of the GAN family: Radford et al.'s batch 64, Adam 2e-4 and 100-d codes, raw pixels.
pub fn gan_defaults(epochs: u64) -> Options {
    Options {
        epochs: Some(epochs),
        batch_size: Some(64),
        lr: Some(2e-4),
        latent_dim: Some(100),
        binarize: Some(Binarize::None),
        ..Default::default()
    }
}

/// Defaults that depend on the images, between a model's own (set for 28×28 grey digits) and the
/// user's options. Colour: a likelihood model's decoder is Gaussian on raw levels (Bernoulli
/// pixels of a photograph mean nothing, and binarising colour destroys it). Square 16–256 px
/// images: the scaled convolutional bodies (`pyramid.rs`) and the recipe measured for faces with
/// them (README, "Faces").
pub fn image_defaults(kind: super::ModelKind, given: &Options, shape: crate::data::ImageShape) -> Options {
    let decl = kind.decl();
    let scaled = super::pyramid::depth(shape).is_some();
    let mut o = Options::default();
    if decl.family != Family::Adversarial && shape.channels == 3 && decl.accepts("decoder") {
        o.decoder = Some(DecoderKind::Gaussian);
        o.binarize = Some(Binarize::None);
    }
    if scaled && decl.accepts("width") {
        // The width is written into the run's config, so the run shows (and keeps) its network.
        if decl.family == Family::Adversarial {
            o.width = Some(super::pyramid::DEFAULT_WIDTH);
            // Radford et al.'s rate: the DCGAN's 8e-4 was measured on 28×28 digits only.
            o.lr = Some(2e-4);
            o.epochs = Some(FACE_GAN_EPOCHS);
            // No weight average (`--ema`): the same run's samples from G's average of the last
            // ~1,000 updates were blurred faces, and scored worse (README, "Faces").
        } else if given.arch.is_none_or(|a| a == super::Arch::Conv) {
            o.width = Some(super::pyramid::DEFAULT_WIDTH);
            o.arch = Some(super::Arch::Conv);
            o.latent_dim = Some(128);
            o.hidden = Some(vec![512]);
            o.batch_size = Some(64);
            o.epochs = Some(FACE_VAE_EPOCHS);
            o.kl_warmup = Some(given.epochs.unwrap_or(FACE_VAE_EPOCHS) / 10);
        }
    }
    o
}

/// Epochs of the scaled DCGAN's default run: ~17 minutes for 9,000 faces at 64×64 on 2 cores
/// (README, "Faces").
pub const FACE_GAN_EPOCHS: u64 = 25;
/// Epochs of the scaled conv VAE's default run.
pub const FACE_VAE_EPOCHS: u64 = 20;

/// Options every GAN accepts.
pub const GAN_OPTIONS: &[&str] = &["prior", "lr_d", "d_steps", "label_smoothing", "ema"];
/// Options of the conditional GAN: the GAN's and what it is conditioned on.
pub const CGAN_OPTIONS: &[&str] = &["prior", "lr_d", "d_steps", "label_smoothing", "ema", "condition"];
/// Options of the convolutional GANs: the GAN's, the width of the scaled networks, and a
/// condition (which makes them conditional: `gan::ConvProjected`).
pub const CONV_GAN_OPTIONS: &[&str] = &["prior", "lr_d", "d_steps", "label_smoothing", "ema", "width", "condition"];

/// Adam with β1 = 0.5 for both players, as in Radford et al.
pub const GAN_OPTIMIZERS: &[Adam] = &[Adam { updates: "G", beta1: 0.5 }, Adam { updates: "D", beta1: 0.5 }];

/// No requirement beyond the generic checks.
pub fn no_check(_: &ModelSpec) -> Result<()> {
    Ok(())
}

/// Strided (transposed) convolutions halve twice: height and width must be divisible by 4.
pub fn divisible_by_4(spec: &ModelSpec) -> Result<()> {
    let s = spec.shape;
    if !s.height.is_multiple_of(4) || !s.width.is_multiple_of(4) || s.height < 4 {
        anyhow::bail!(
            "{} needs image height and width divisible by 4, but the dataset's images are {}×{}",
            spec.kind.name(),
            s.height,
            s.width
        );
    }
    Ok(())
}

/// The registry: one line per model — its variant (the CLI name, in kebab-case) and its module,
/// whose `DECL` is the declaration. Invoked once, in `models/mod.rs`, where it also declares the
/// modules.
macro_rules! registry {
    ($( $(#[doc = $doc:expr])* $variant:ident => $module:ident, )*) => {
        $( pub mod $module; )*

        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
        /// Every model latentlab trains (see `models/mod.rs` for the list).
        #[serde(rename_all = "kebab-case")]
        pub enum ModelKind {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl ModelKind {
            /// Every registered model, in registry order.
            pub const ALL: &'static [ModelKind] = &[$(ModelKind::$variant),*];

            /// The model's declaration.
            pub fn decl(self) -> &'static registry::ModelDecl {
                match self {
                    $( ModelKind::$variant => &$module::DECL, )*
                }
            }
        }
    };
}

pub(crate) use registry;

impl ModelKind {
    pub fn name(self) -> &'static str {
        self.decl().name
    }
    pub fn family(self) -> Family {
        self.decl().family
    }
    pub fn is_conditional(self) -> bool {
        self.decl().conditional
    }
    pub fn has_encoder(self) -> bool {
        self.family() != Family::Adversarial
    }
    /// Generator + discriminator trained with two optimisers (the AAE also has a discriminator).
    pub fn is_adversarial(self) -> bool {
        self.family() != Family::Likelihood
    }
    pub fn is_gan(self) -> bool {
        self.family() == Family::Adversarial
    }
    /// Trained so that codes follow the prior.
    pub fn is_variational(self) -> bool {
        self.decl().variational
    }
    /// An encoder that outputs a distribution q(z|x) (the VAE family).
    pub fn has_posterior(self) -> bool {
        self.family() == Family::Likelihood && self.is_variational()
    }
    /// Input range: tanh generators work in [-1, 1], likelihood decoders in [0, 1].
    pub fn range(self) -> Range {
        self.decl().range()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn every_model_is_registered_under_its_cli_name() {
        for &k in ModelKind::ALL {
            let cli = k.to_possible_value().expect("visible").get_name().to_string();
            assert_eq!(cli, k.name(), "declaration name differs from the CLI name");
            let toml = toml::Value::try_from(k).unwrap();
            assert_eq!(toml.as_str(), Some(k.name()), "stored name differs");
            let d = k.decl();
            assert!(!d.optimizers.is_empty());
            assert_eq!(d.game.is_some(), d.family == Family::Adversarial, "{}: game loss iff adversarial", d.name);
            for o in d.options {
                assert!(crate::config::Options::NAMES.contains(o), "{}: unknown option '{o}'", d.name);
            }
        }
    }
}
