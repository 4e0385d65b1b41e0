//! Run configuration: defaults per model, overridden by a TOML file, overridden by flags. The
//! effective configuration is written to the run folder as `config.toml` and is all `resume` needs.

use crate::backend::DeviceChoice;
use crate::data::Binarize;
use crate::models::{Arch, DecoderKind, ModelKind, ModelSpec, Objective, Prior};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Settings a user may give as flags or in a `--config` TOML file (same names, kebab-case).
#[derive(Clone, Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Options {
    /// Dataset: mnist, fashion-mnist, digits, or a path to an *-images-idx3-ubyte(.gz) file.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Folder holding <name>/ dataset folders [default: $LATENTLAB_DATA, else ./data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Number of passes over the training set.
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Stop after this many optimiser steps in total (for quick checks).
    #[arg(long)]
    pub max_steps: Option<u64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam learning rate (of G, for adversarial models).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Adversarial models: the discriminator's learning rate, for two time-scale updates (TTUR,
    /// Heusel et al. 2017) [default: --lr].
    #[arg(long)]
    pub lr_d: Option<f64>,
    #[arg(long)]
    pub latent_dim: Option<usize>,
    /// Hidden layer widths of the MLP encoder (the decoder mirrors them), e.g. 512,256.
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Decoder likelihood (VAE family).
    #[arg(long, value_enum)]
    pub decoder: Option<DecoderKind>,
    /// Fix the Gaussian decoder's σ instead of learning it.
    #[arg(long)]
    pub decoder_sigma: Option<f64>,
    /// Weight of the KL term (β-VAE); 1 is the ELBO.
    #[arg(long)]
    pub beta: Option<f64>,
    /// Input binarisation.
    #[arg(long, value_enum)]
    pub binarize: Option<Binarize>,
    /// Seed of every random number in the run.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Log training losses to metrics.jsonl every N steps.
    #[arg(long)]
    pub log_every: Option<u64>,
    /// Compute device.
    #[arg(long, value_enum)]
    pub device: Option<DeviceChoice>,
    /// Discriminator updates per generator update (adversarial models).
    #[arg(long)]
    pub d_steps: Option<u64>,
    /// One-sided label smoothing: D's target for real images is 1 − s (adversarial models).
    #[arg(long)]
    pub label_smoothing: Option<f64>,
    /// Prior of the adversarial autoencoder.
    #[arg(long, value_enum)]
    pub prior: Option<Prior>,
    /// Encoder/decoder bodies of the VAE family: mlp, or conv (strided convolutions).
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// What the VAE/CVAE maximises: elbo, or iwae (the importance-weighted bound with --iwae-k
    /// posterior samples per image).
    #[arg(long, value_enum)]
    pub objective: Option<ObjectiveKind>,
    /// Posterior samples per image of --objective iwae [default: 5].
    #[arg(long)]
    pub iwae_k: Option<usize>,
    /// Learning-rate schedule over the run's steps: constant, or cosine (from --lr down to 0).
    #[arg(long, value_enum)]
    pub lr_schedule: Option<LrSchedule>,
    /// GANs: draw samples from an exponential moving average of G's weights with this decay
    /// (e.g. 0.999; Yazıcı et al. 2019) [default: off]. Checkpoints keep the average.
    #[arg(long)]
    pub ema: Option<f64>,
    /// VAE family: raise the KL weight linearly from 0 to --beta over this many epochs
    /// (KL warm-up, Sønderby et al. 2016) [default: 0, off].
    #[arg(long)]
    pub kl_warmup: Option<u64>,
    /// Image-folder datasets: side of the square images after resize + centre crop [default: 32].
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Image-folder datasets: 1 (grey) or 3 (RGB) [default: the first image's].
    #[arg(long)]
    pub channels: Option<usize>,
    /// Save a checkpoint every N steps as well as at every epoch end (0: epoch ends only).
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// On a NaN/Inf loss: stop (keeping the last good checkpoint), or roll back to it with half
    /// the learning rate (at most 3 times).
    #[arg(long, value_enum)]
    pub on_diverge: Option<OnDiverge>,
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

    /// `self` with unset fields taken from `base`.
    pub fn or(self, base: Options) -> Options {
        Options {
            dataset: self.dataset.or(base.dataset),
            data_dir: self.data_dir.or(base.data_dir),
            epochs: self.epochs.or(base.epochs),
            max_steps: self.max_steps.or(base.max_steps),
            batch_size: self.batch_size.or(base.batch_size),
            lr: self.lr.or(base.lr),
            lr_d: self.lr_d.or(base.lr_d),
            latent_dim: self.latent_dim.or(base.latent_dim),
            hidden: self.hidden.or(base.hidden),
            decoder: self.decoder.or(base.decoder),
            decoder_sigma: self.decoder_sigma.or(base.decoder_sigma),
            beta: self.beta.or(base.beta),
            binarize: self.binarize.or(base.binarize),
            seed: self.seed.or(base.seed),
            log_every: self.log_every.or(base.log_every),
            device: self.device.or(base.device),
            d_steps: self.d_steps.or(base.d_steps),
            label_smoothing: self.label_smoothing.or(base.label_smoothing),
            prior: self.prior.or(base.prior),
            arch: self.arch.or(base.arch),
            objective: self.objective.or(base.objective),
            iwae_k: self.iwae_k.or(base.iwae_k),
            lr_schedule: self.lr_schedule.or(base.lr_schedule),
            kl_warmup: self.kl_warmup.or(base.kl_warmup),
            ema: self.ema.or(base.ema),
            image_size: self.image_size.or(base.image_size),
            channels: self.channels.or(base.channels),
            checkpoint_every: self.checkpoint_every.or(base.checkpoint_every),
            on_diverge: self.on_diverge.or(base.on_diverge),
        }
    }
}

/// The effective configuration of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub model: ModelKind,
    pub dataset: String,
    pub data_dir: Option<PathBuf>,
    pub epochs: u64,
    pub max_steps: Option<u64>,
    pub batch_size: usize,
    pub lr: f64,
    pub latent_dim: usize,
    pub hidden: Vec<usize>,
    pub decoder: DecoderKind,
    pub decoder_sigma: Option<f64>,
    pub beta: f64,
    pub binarize: Binarize,
    pub seed: u64,
    pub log_every: u64,
    pub device: DeviceChoice,
    #[serde(default = "one")]
    pub d_steps: u64,
    #[serde(default)]
    pub label_smoothing: f64,
    #[serde(default)]
    pub prior: Prior,
    #[serde(default)]
    pub arch: Arch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    #[serde(default)]
    pub on_diverge: OnDiverge,
    #[serde(default)]
    pub objective: Objective,
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    #[serde(default)]
    pub kl_warmup: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_d: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<f64>,
}

fn default_checkpoint_every() -> u64 {
    500
}

fn one() -> u64 {
    1
}

impl RunConfig {
    /// Defaults of `model`, then `opts` on top. Validates ranges.
    pub fn resolve(model: ModelKind, opts: Options) -> Result<RunConfig> {
        let vae = matches!(model, ModelKind::Vae | ModelKind::Cvae);
        let epochs = opts.epochs.unwrap_or(default_epochs(model));
        let cfg = RunConfig {
            model,
            dataset: opts.dataset.unwrap_or_else(|| "mnist".into()),
            data_dir: opts.data_dir,
            epochs,
            max_steps: opts.max_steps,
            batch_size: opts.batch_size.unwrap_or(if model.is_gan() { 64 } else { 128 }),
            lr: opts.lr.unwrap_or(if model.is_gan() { 2e-4 } else { 1e-3 }),
            latent_dim: opts.latent_dim.unwrap_or(match model {
                ModelKind::Gan | ModelKind::Dcgan | ModelKind::Cgan => 100,
                ModelKind::Aae => 2,
                _ => 20,
            }),
            hidden: opts.hidden.unwrap_or_else(|| ModelSpec::default_hidden(model)),
            decoder: opts.decoder.unwrap_or(DecoderKind::Bernoulli),
            decoder_sigma: opts.decoder_sigma,
            beta: opts.beta.unwrap_or(1.0),
            binarize: opts.binarize.unwrap_or(match opts.decoder {
                _ if model.is_gan() => Binarize::None,
                Some(DecoderKind::Gaussian) => Binarize::None,
                _ => Binarize::Dynamic,
            }),
            seed: opts.seed.unwrap_or(0),
            log_every: opts.log_every.unwrap_or(50),
            device: opts.device.unwrap_or_default(),
            d_steps: opts.d_steps.unwrap_or(1),
            label_smoothing: opts.label_smoothing.unwrap_or(0.0),
            prior: opts.prior.unwrap_or_default(),
            arch: opts.arch.unwrap_or_default(),
            image_size: opts.image_size,
            channels: opts.channels,
            checkpoint_every: opts.checkpoint_every.unwrap_or(default_checkpoint_every()),
            on_diverge: opts.on_diverge.unwrap_or_default(),
            objective: match (opts.objective, opts.iwae_k) {
                (Some(ObjectiveKind::Iwae), k) => Objective::Iwae { k: k.unwrap_or(5) },
                (_, Some(_)) => bail!("--iwae-k applies to --objective iwae"),
                _ => Objective::Elbo,
            },
            // The VAE recipe (measured in the README): cosine decay to 0 and a KL weight that ramps up over
            // the first tenth of the run, so the decoder learns to use the code before the KL closes it.
            lr_schedule: opts.lr_schedule.unwrap_or(if vae { LrSchedule::Cosine } else { LrSchedule::Constant }),
            kl_warmup: opts.kl_warmup.unwrap_or(if vae { epochs / 10 } else { 0 }),
            lr_d: opts.lr_d,
            ema: opts.ema,
        };
        cfg.validate()?;
        Ok(cfg)
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
        if self.prior == Prior::Mixture && self.model != ModelKind::Aae {
            bail!("--prior applies to the aae only");
        }
        self.objective.check(self.model)?;
        if let Some(d) = self.lr_d {
            if !self.model.is_adversarial() {
                bail!("--lr-d applies to adversarial models (model '{}' has no discriminator)", self.model.name());
            }
            if !(d.is_finite() && d > 0.0 && d < 10.0) {
                bail!("--lr-d must be a positive number below 10, got {d}");
            }
        }
        if let Some(d) = self.ema {
            if !self.model.is_gan() {
                bail!("--ema applies to gan, dcgan and cgan (it averages the generator's weights)");
            }
            if !(d > 0.0 && d < 1.0) {
                bail!("--ema must be a decay between 0 and 1 (e.g. 0.999), got {d}");
            }
        }
        if self.kl_warmup > 0 && !matches!(self.model, ModelKind::Vae | ModelKind::Cvae) {
            bail!("--kl-warmup applies to vae and cvae (model '{}' has no KL term)", self.model.name());
        }
        if self.hidden.is_empty() && !self.model.is_gan() {
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
        let cfg: RunConfig = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}: invalid run config: {}", origin.display(), e.message()))?;
        cfg.validate().with_context(|| format!("{}", origin.display()))?;
        Ok(cfg)
    }
}

/// Defaults sized so the default run of each model finishes in a few minutes on 2 CPU cores.
pub fn default_epochs(model: ModelKind) -> u64 {
    match model {
        ModelKind::Vae | ModelKind::Cvae => 50,
        ModelKind::Ae | ModelKind::Aae => 20,
        ModelKind::Gan | ModelKind::Cgan => 30,
        ModelKind::Dcgan => 15,
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
}
