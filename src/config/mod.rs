//! Run configuration: defaults per model, overridden by a TOML file, overridden by flags. The
//! effective configuration is written to the run folder as `config.toml` and is all `resume` needs.

use crate::backend::DeviceChoice;
use crate::data::Binarize;
use crate::models::{Arch, DecoderKind, ModelKind, Objective, Prior};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use std::path::{Path, PathBuf};

mod declare;

declare::settings! {
    required {
        /// Dataset: mnist, fashion-mnist, digits, celeba, or a path to an *-images-idx3-ubyte(.gz)
        /// file, a folder of images or a CelebA folder.
        dataset: String;
        /// Number of passes over the training set.
        epochs: u64;
        batch_size: usize;
        /// Adam learning rate (of G, for adversarial models).
        lr: f64;
        latent_dim: usize;
        /// Hidden layer widths of the MLP encoder (the decoder mirrors them), e.g. 512,256.
        #[arg(value_delimiter = ',')]
        hidden: Vec<usize>;
        /// Decoder likelihood (AE and VAE family).
        #[arg(value_enum)]
        decoder: DecoderKind;
        /// Weight of the KL term (β-VAE); 1 is the ELBO.
        beta: f64;
        /// Input binarisation.
        #[arg(value_enum)]
        binarize: Binarize;
        /// Seed of every random number in the run.
        seed: u64;
        /// Log training losses to metrics.jsonl every N steps.
        log_every: u64;
        /// Compute device.
        #[arg(value_enum)]
        device: DeviceChoice;
        /// Discriminator updates per generator update (GANs).
        d_steps: u64 = 1;
        /// One-sided label smoothing: D's target for real images is 1 − s (adversarial models).
        label_smoothing: f64 = 0.0;
        /// Prior p(z): of the adversarial autoencoder's codes, or of a GAN's generator input.
        #[arg(value_enum)]
        prior: Prior = Prior::Gaussian;
        /// Encoder/decoder bodies of the VAE family: mlp, or conv (strided convolutions).
        #[arg(value_enum)]
        arch: Arch = Arch::Mlp;
        /// Learning-rate schedule over the run's steps: constant, or cosine (from --lr down to 0).
        #[arg(value_enum)]
        lr_schedule: LrSchedule = LrSchedule::Constant;
        /// VAE family: raise the KL weight linearly from 0 to --beta over this many epochs
        /// (KL warm-up, Sønderby et al. 2016).
        kl_warmup: u64 = 0;
        /// Save a checkpoint every N steps as well as at every epoch end (0: epoch ends only).
        checkpoint_every: u64 = 500;
        /// On a NaN/Inf loss: stop (keeping the last good checkpoint), or roll back to it with half
        /// the learning rate (at most 3 times).
        #[arg(value_enum)]
        on_diverge: OnDiverge = OnDiverge::Stop;
        /// Write TensorBoard event files into <run>/tb/ (scalars, learning rate, sample grids);
        /// `--tensorboard false` turns them off [default: true].
        tensorboard: bool = false;
    }
    optional {
        /// Folder holding <name>/ dataset folders [default: $LATENTLAB_DATA, else ./data].
        data_dir: PathBuf;
        /// Stop after this many optimiser steps in total (for quick checks).
        max_steps: u64;
        /// Fix the Gaussian decoder's σ instead of learning it.
        decoder_sigma: f64;
        /// Adversarial models: the discriminator's learning rate, for two time-scale updates (TTUR,
        /// Heusel et al. 2017) [default: --lr].
        lr_d: f64;
        /// GANs: draw samples from an exponential moving average of G's weights with this decay
        /// (e.g. 0.999; Yazıcı et al. 2019); 0 turns it off [default: off]. Checkpoints keep the
        /// average.
        ema: f64;
        /// Image folders and CelebA: side of the square images after the shorter side is resized to
        /// it and the centre cropped [default: 32; CelebA 64].
        image_size: usize;
        /// Image-folder datasets: 1 (grey) or 3 (RGB) [default: the first image's].
        channels: usize;
        /// Convolutional networks on square 16–256 px images: channels of the widest layer / 8
        /// (Radford et al.'s ngf/ndf; pytorch/examples uses 64) [default: 32].
        width: usize;
        /// What cvae, cgan, dcgan and lsgan are conditioned on: none, class, attributes (all of
        /// CelebA's 40) or attributes:NAME,NAME,… [default: cvae/cgan: class, or attributes on
        /// a dataset with attributes and no classes; dcgan/lsgan: none].
        condition: String;
        /// stackgan on captions made from annotations (faces): read negation scope, so "without a
        /// hat" is not:hat (`captions::faces`); false reads plain words, as a bag of words
        /// [default: true].
        negation_scope: bool;
    }
    flags {
        /// What the VAE/CVAE maximises: elbo, or iwae (the importance-weighted bound with --iwae-k
        /// posterior samples per image).
        #[arg(value_enum)]
        objective: ObjectiveKind;
        /// Posterior samples per image of --objective iwae [default: 5].
        iwae_k: usize;
    }
}

/// Options every model accepts (data, schedule, logging, checkpoints); the rest are declared per
/// model (`ModelDecl::options`).
pub const COMMON_OPTIONS: &[&str] = &[
    "dataset",
    "data_dir",
    "epochs",
    "max_steps",
    "batch_size",
    "lr",
    "latent_dim",
    "binarize",
    "seed",
    "log_every",
    "device",
    "lr_schedule",
    "image_size",
    "channels",
    "checkpoint_every",
    "on_diverge",
    "tensorboard",
];

/// Defaults shared by every model (a model's declaration overrides them).
fn common_defaults() -> Options {
    Options {
        dataset: Some("mnist".into()),
        hidden: Some(vec![]),
        decoder: Some(DecoderKind::Bernoulli),
        beta: Some(1.0),
        binarize: Some(Binarize::Dynamic),
        seed: Some(0),
        log_every: Some(50),
        device: Some(DeviceChoice::default()),
        d_steps: Some(1),
        label_smoothing: Some(0.0),
        prior: Some(Prior::Gaussian),
        arch: Some(Arch::Mlp),
        lr_schedule: Some(LrSchedule::Constant),
        kl_warmup: Some(0),
        checkpoint_every: Some(500),
        on_diverge: Some(OnDiverge::Stop),
        // New runs write event files; runs from before the option keep what they were (none).
        tensorboard: Some(true),
        ..Default::default()
    }
}

/// `--name` of an option's field name.
pub fn flag(field: &str) -> String {
    format!("--{}", field.replace('_', "-"))
}
/// `--objective` as a flag; the run config stores `models::Objective` (with its k).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectiveKind {
    Elbo,
    Iwae,
}

/// How the learning rate moves over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// --lr throughout.
    #[default]
    Constant,
    /// lr·½(1 + cos(π·step/steps)): from --lr at the first step to 0 at the last.
    Cosine,
}

impl LrSchedule {
    /// The multiplier of --lr at `step` (0-based) of `total` steps.
    pub fn factor(&self, step: u64, total: u64) -> f64 {
        match self {
            LrSchedule::Constant => 1.0,
            LrSchedule::Cosine => {
                let t = (step as f64 / total.max(1) as f64).min(1.0);
                0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OnDiverge {
    #[default]
    Stop,
    Rollback,
}

impl Options {
    /// Read a TOML options file; unknown keys are errors that name the key.
    pub fn from_file(path: &Path) -> Result<Options> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config {}: {}", path.display(), e.message()))
    }
}

impl RunConfig {
    /// The model's defaults, then `opts` on top. Refuses options the model does not use, and
    /// validates ranges.
    pub fn resolve(model: ModelKind, opts: Options) -> Result<RunConfig> {
        let decl = model.decl();
        if let Some(o) = opts.given().into_iter().find(|o| !decl.accepts(o)) {
            let own: Vec<String> = decl.options.iter().map(|o| flag(o)).collect();
            bail!(
                "{} does not apply to model '{}' (its own options: {}; see `latentlab train {} --help`)",
                flag(o),
                decl.name,
                if own.is_empty() { "none".to_string() } else { own.join(", ") },
                decl.name
            );
        }
        let objective = match (opts.objective, opts.iwae_k) {
            (Some(ObjectiveKind::Iwae), k) => Objective::Iwae { k: k.unwrap_or(5) },
            (_, Some(_)) => bail!("--iwae-k applies to --objective iwae"),
            _ => Objective::Elbo,
        };
        let defaults = (decl.defaults)(&opts);
        let mut cfg = RunConfig::from_layered(model, opts.or(defaults).or(common_defaults()), objective)?;
        // `--ema 0`: no average, also where the images' recipe has one.
        cfg.ema = cfg.ema.filter(|&d| d != 0.0);
        cfg.validate()?;
        Ok(cfg)
    }

    /// `resolve` for a run on images of `shape`: the model's defaults are for 28×28 grey digits,
    /// so the recipe for colour images and for the scaled networks' sizes
    /// (`registry::image_defaults`) sits between them and what the user gave.
    pub fn resolve_for(model: ModelKind, opts: Options, shape: crate::data::ImageShape) -> Result<RunConfig> {
        let images = crate::models::registry::image_defaults(model, &opts, shape);
        RunConfig::resolve(model, opts.or(images))
    }

    /// D's learning rate at a step where G's is `rate` (`--lr-d` scales with the same schedule).
    pub fn d_rate(&self, rate: f64) -> f64 {
        rate * self.lr_d.map_or(1.0, |d| d / self.lr)
    }

    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            bail!("--epochs must be at least 1");
        }
        if self.batch_size == 0 || self.batch_size > 1 << 16 {
            bail!("--batch-size must be between 1 and 65536, got {}", self.batch_size);
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr < 10.0) {
            bail!("--lr must be a positive number below 10, got {}", self.lr);
        }
        if self.max_steps == Some(0) {
            bail!("--max-steps must be at least 1");
        }
        if self.log_every == 0 {
            bail!("--log-every must be at least 1");
        }
        if self.latent_dim == 0 || self.latent_dim > 4096 {
            bail!("--latent-dim must be between 1 and 4096, got {}", self.latent_dim);
        }
        if self.d_steps == 0 || self.d_steps > 100 {
            bail!("--d-steps must be between 1 and 100, got {}", self.d_steps);
        }
        if !(0.0..0.5).contains(&self.label_smoothing) {
            bail!("--label-smoothing must be in [0, 0.5), got {}", self.label_smoothing);
        }
        // A stored config (hand-edited, or older) may hold a value its model does not use.
        let decl = self.model.decl();
        let unused = [
            ("prior", self.prior != Prior::Gaussian),
            ("lr_d", self.lr_d.is_some()),
            ("ema", self.ema.is_some()),
            ("kl_warmup", self.kl_warmup > 0),
            ("arch", self.arch != Arch::Mlp),
            ("decoder_sigma", self.decoder_sigma.is_some()),
            ("width", self.width.is_some()),
        ];
        if let Some((o, _)) = unused.iter().find(|(o, set)| *set && !decl.accepts(o)) {
            bail!("{} does not apply to model '{}'", flag(o), decl.name);
        }
        self.objective.check(self.model)?;
        if let Some(d) = self.lr_d
            && !(d.is_finite() && d > 0.0 && d < 10.0)
        {
            bail!("--lr-d must be a positive number below 10, got {d}");
        }
        if let Some(d) = self.ema
            && !(d > 0.0 && d < 1.0)
        {
            bail!("--ema must be a decay between 0 and 1 (e.g. 0.999), got {d}");
        }
        if self.hidden.is_empty() && decl.accepts("hidden") {
            bail!("--hidden needs at least one layer width");
        }
        Ok(())
    }

    /// The image-folder transform of this run's dataset.
    pub fn transform(&self) -> crate::data::Transform {
        crate::data::Transform { image_size: self.image_size, channels: self.channels }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    pub fn from_toml(text: &str, origin: &Path) -> Result<RunConfig> {
        let bad = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: invalid run config: {e}", origin.display());
        let mut table: toml::Table = toml::from_str(text).map_err(|e: toml::de::Error| bad(&e.message()))?;
        RunConfig::add_legacy_defaults(&mut table);
        let cfg: RunConfig = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| bad(&e.message()))?;
        cfg.validate().with_context(|| format!("{}", origin.display()))?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "epochs = 7\nlr = 0.01\nhidden = [64]\n").unwrap();
        let file = Options::from_file(&p).unwrap();
        let flags = Options { lr: Some(0.002), ..Default::default() };
        let cfg = RunConfig::resolve(ModelKind::Vae, flags.or(file)).unwrap();
        assert_eq!((cfg.epochs, cfg.lr, cfg.hidden.clone(), cfg.batch_size), (7, 0.002, vec![64], 128));
        let back = RunConfig::from_toml(&cfg.to_toml(), &p).unwrap();
        assert_eq!(back, cfg);
    }

    /// The DCGAN's measured rate (README, "DCGAN recipes") is its own: LSGAN, which borrows the
    /// DCGAN's declaration, and the MLP GAN keep Radford et al.'s 2e-4; a flag still wins.
    #[test]
    fn dcgan_default_rate_is_its_own() {
        let lr = |m, o| RunConfig::resolve(m, o).unwrap().lr;
        assert_eq!(lr(ModelKind::Dcgan, Options::default()), 8e-4);
        assert_eq!(lr(ModelKind::Lsgan, Options::default()), 2e-4);
        assert_eq!(lr(ModelKind::Gan, Options::default()), 2e-4);
        assert_eq!(lr(ModelKind::Dcgan, Options { lr: Some(2e-4), ..Default::default() }), 2e-4);
    }

    #[test]
    fn unknown_key_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "epoch = 7\n").unwrap();
        let e = Options::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("c.toml") && e.contains("epoch"), "{e}");
        let e = RunConfig::resolve(ModelKind::Vae, Options { lr: Some(-1.0), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("--lr"));
        let wrong = [
            (ModelKind::Vae, Options { iwae_k: Some(5), ..Default::default() }, "--iwae-k applies to --objective iwae"),
            (ModelKind::Dcgan, Options { objective: Some(ObjectiveKind::Iwae), ..Default::default() }, "'dcgan'"),
            (ModelKind::Gan, Options { kl_warmup: Some(3), ..Default::default() }, "--kl-warmup"),
        ];
        for (m, o, needle) in wrong {
            let e = RunConfig::resolve(m, o).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn cosine_schedule_runs_from_lr_to_zero() {
        let c = LrSchedule::Cosine;
        assert_eq!(c.factor(0, 100), 1.0);
        assert!((c.factor(50, 100) - 0.5).abs() < 1e-12);
        assert!(c.factor(100, 100).abs() < 1e-12 && c.factor(99, 100) > 0.0);
        assert!((1..100).all(|s| c.factor(s, 100) < c.factor(s - 1, 100)), "not decreasing");
        assert!((0..100).all(|s| LrSchedule::Constant.factor(s, 100) == 1.0));
    }

    #[test]
    fn options_a_model_does_not_use_are_refused_by_name() {
        let refused = [
            (ModelKind::Aae, Options { decoder: Some(DecoderKind::Gaussian), ..Default::default() }, "--decoder"),
            (ModelKind::Aae, Options { d_steps: Some(2), ..Default::default() }, "--d-steps"),
            (ModelKind::Gan, Options { beta: Some(4.0), ..Default::default() }, "--beta"),
            (ModelKind::Dcgan, Options { hidden: Some(vec![64]), ..Default::default() }, "--hidden"),
            (ModelKind::Ae, Options { prior: Some(Prior::Mixture), ..Default::default() }, "--prior"),
            (ModelKind::Vae, Options { ema: Some(0.999), ..Default::default() }, "--ema"),
        ];
        for (m, o, opt) in refused {
            let e = RunConfig::resolve(m, o).unwrap_err().to_string();
            assert!(e.contains(&format!("{opt} does not apply to model '{}'", m.name())), "{e}");
            assert!(!e.contains('\n'), "not one line: {e}");
        }
        // What each model declares, it accepts.
        for &m in ModelKind::ALL {
            for o in m.decl().options {
                assert!(m.decl().accepts(o));
            }
        }
        let ok = Options { prior: Some(Prior::Mixture), d_steps: None, lr_d: Some(1e-4), ..Default::default() };
        assert_eq!(RunConfig::resolve(ModelKind::Aae, ok).unwrap().prior, Prior::Mixture);
    }

    #[test]
    fn a_stored_config_from_before_newer_options_loads_with_their_old_values() {
        // A config.toml as the first releases wrote it: none of the options added since.
        let old = "model = \"vae\"\ndataset = \"mnist\"\nepochs = 20\nbatch_size = 128\nlr = 0.001\n\
                   latent_dim = 20\nhidden = [512, 256]\ndecoder = \"bernoulli\"\nbeta = 1.0\n\
                   binarize = \"dynamic\"\nseed = 0\nlog_every = 50\ndevice = \"cpu\"\n";
        let cfg = RunConfig::from_toml(old, Path::new("old/config.toml")).unwrap();
        assert_eq!((cfg.d_steps, cfg.checkpoint_every, cfg.kl_warmup), (1, 500, 0));
        assert_eq!(
            (cfg.lr_schedule, cfg.objective, cfg.on_diverge),
            (LrSchedule::Constant, Objective::Elbo, OnDiverge::Stop)
        );
        assert!(!cfg.tensorboard, "an old run gained event files on resume");
        // A required key is still required, and named.
        let e = RunConfig::from_toml(&old.replace("epochs = 20\n", ""), Path::new("c.toml")).unwrap_err();
        assert!(e.to_string().contains("epochs"), "{e}");
        // Today's defaults for a new run are the model's declaration (the VAE recipe).
        let new = RunConfig::resolve(ModelKind::Vae, Options::default()).unwrap();
        assert_eq!((new.epochs, new.lr_schedule, new.kl_warmup), (50, LrSchedule::Cosine, 5));
        assert!(new.tensorboard);
        assert_eq!(RunConfig::from_toml(&new.to_toml(), Path::new("c.toml")).unwrap(), new);
    }
}
