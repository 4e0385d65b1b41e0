//! One optimiser step of any model: the model's family picks the step function (`likelihood` or
//! `adversarial`); its declaration gives the optimisers. What `train` and `bench` both run.

use crate::config::RunConfig;
use crate::data::captions::{TextData, vocabulary};
use crate::data::{ImageShape, Splits};
use crate::models::condition::{self, Choice};
use crate::models::stackgan::TextSpec;
use crate::models::{ModelSpec, Net};
use burn::optim::ModuleOptimizer;

/// The model spec a config implies on a dataset (with its captions, for text models, and what it
/// is conditioned on); errors name a `--condition` the data cannot give.
pub fn spec_for(cfg: &RunConfig, data: &Splits, text: Option<&TextData>) -> anyhow::Result<ModelSpec> {
    Ok(ModelSpec {
        text: text.map(|t| TextSpec {
            vocab: vocabulary(&t.train, t.negation() && cfg.negation_scope != Some(false)),
            class_words: t.class_words.clone(),
            thresholds: t.thresholds.clone(),
            negation: t.negation() && cfg.negation_scope != Some(false),
            summed: t.negation(),
            // Without classes, samples nobody captioned take real training captions in turn.
            examples: if t.class_words.is_empty() {
                t.train.iter().take(EXAMPLE_CAPTIONS).map(|c| c[0].clone()).collect()
            } else {
                Vec::new()
            },
        }),
        condition: condition_of(cfg, data)?,
        ..spec_of(cfg, data.train.shape, data.train.num_classes)
    })
}

/// `spec_for` with the captions it trains on: a text model's tokenised captions of every training
/// image (each phrasing), from its vocabulary; empty for the other models.
pub fn spec_with_captions(cfg: &RunConfig, data: &Splits) -> anyhow::Result<(ModelSpec, Vec<Vec<Vec<u32>>>)> {
    let text_data = cfg.model.decl().text.then(|| crate::data::captions::for_splits(&cfg.dataset, data)).transpose()?;
    let spec = spec_for(cfg, data, text_data.as_ref())?;
    let captions = match (&spec.text, &text_data) {
        (Some(t), Some(d)) => super::stack::tokenised(t, d),
        _ => Vec::new(),
    };
    Ok((spec, captions))
}

/// Training captions a text model without classes keeps for default samples.
const EXAMPLE_CAPTIONS: usize = 512;

/// The model the run will build, checked against the data before a run folder exists (a
/// `--condition` the data cannot give, an image size the model cannot draw, a text option the
/// captions do not use: errors that leave nothing behind).
pub fn check_start(cfg: &RunConfig, data: &Splits) -> anyhow::Result<()> {
    let mut spec =
        ModelSpec { condition: condition_of(cfg, data)?, ..spec_of(cfg, data.train.shape, data.train.num_classes) };
    if cfg.model.decl().text {
        let annotated = data.train.attributes.is_some() && data.train.labels.is_none();
        if let (Some(_), false) = (cfg.negation_scope, annotated) {
            anyhow::bail!(
                "--negation-scope applies to captions made from annotations (CelebA's faces); dataset '{}' has none",
                cfg.dataset
            );
        }
        // The captions are read when the run starts; a one-word stand-in lets the model's checks run now.
        spec.text = Some(TextSpec {
            vocab: vec!["a".into()],
            class_words: Vec::new(),
            thresholds: None,
            negation: false,
            examples: Vec::new(),
            summed: false,
        });
    }
    spec.validate()
}

/// The condition `--condition` asks for on this data, as the spec stores it.
fn condition_of(cfg: &RunConfig, data: &Splits) -> anyhow::Result<Option<crate::models::Condition>> {
    let choice = cfg.condition.as_deref().map(str::parse::<Choice>).transpose().map_err(anyhow::Error::msg)?;
    condition::resolve(cfg.model, choice.as_ref(), &data.train, cfg.seed)
}

/// The spec a config implies on images of `shape` with `num_classes` labels, without captions.
pub fn spec_of(cfg: &RunConfig, shape: ImageShape, num_classes: usize) -> ModelSpec {
    let width = scaled_width(cfg, shape);
    ModelSpec {
        kind: cfg.model,
        shape,
        num_classes,
        latent_dim: cfg.latent_dim,
        hidden: cfg.hidden.clone(),
        decoder: cfg.decoder,
        decoder_sigma: cfg.decoder_sigma,
        beta: cfg.beta,
        prior: cfg.prior,
        arch: cfg.arch,
        objective: cfg.objective,
        d_conv3: cfg.model.decl().d_conv3 && width.is_none(),
        ema: cfg.ema,
        width,
        text: None,
        condition: None,
    }
}

/// The width of the scaled convolutional bodies (`models::pyramid`) when the model is
/// convolutional and the images are square with a side they serve; None: the fixed networks.
pub fn scaled_width(cfg: &RunConfig, shape: ImageShape) -> Option<usize> {
    let decl = cfg.model.decl();
    let conv = decl.family == crate::models::Family::Adversarial || cfg.arch == crate::models::Arch::Conv;
    (decl.accepts("width") && conv && crate::models::pyramid::depth(shape).is_some())
        .then(|| cfg.width.unwrap_or(crate::models::pyramid::DEFAULT_WIDTH))
}

/// Fresh optimisers of a model's recipe, in the order its step function uses them.
pub fn optimizers(spec: &ModelSpec) -> Vec<ModuleOptimizer> {
    spec.kind.decl().optimizers.iter().map(|a| super::optim::FusedAdam::new(a.beta1).init()).collect()
}

/// One optimiser step of any model kind on batch `x` (with its condition rows, `models::condition`)
/// at learning rate `lr` (what `train` and `bench` both run).
#[allow(clippy::too_many_arguments)]
pub fn step(
    net: Net,
    optims: &mut [ModuleOptimizer],
    spec: &ModelSpec,
    cfg: &RunConfig,
    lr: f64,
    x: burn::prelude::Tensor<2>,
    cond: &[f32],
    text: Option<&super::stack::TextBatch>,
    noise: &mut rand_chacha::ChaCha8Rng,
) -> (Net, Vec<(&'static str, f64)>) {
    match net {
        Net::Stack(_) | Net::StackScaled(_) => super::stack::step(net, optims, spec, cfg, lr, x, text, noise),
        Net::Gan(m) => {
            let cond = spec.cond_tensor(cond, x.dims()[0], &x.device());
            let (m, v) = super::adversarial::gan_step(m, optims, spec, cfg, lr, x, cond, noise);
            (Net::Gan(m), v)
        }
        Net::Aae(m) => {
            let (m, v) = super::adversarial::aae_step(m, optims, spec, cfg, lr, x, noise);
            (Net::Aae(m), v)
        }
        other => super::likelihood::step(other, &mut optims[0], spec, lr, x, cond, noise),
    }
}
