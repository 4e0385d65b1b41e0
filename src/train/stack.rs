//! The StackGAN's training step and its text batches: one stage at a time (stage I for the first
//! half of the run's steps, then stage II with stage I frozen, as in Zhang et al. 2017), each with
//! the matching-aware game: D sees (real image, its caption) as real, (generated image, caption)
//! and (real image, a mismatched caption) as fake; G minimises the non-saturating loss plus
//! λ·KL of its conditioning augmentation.

use super::adversarial::{bce_logits, collect, grad_norm};
use crate::config::RunConfig;
use crate::data::captions::TextData;
use crate::models::blocks::matrix;
use crate::models::stackgan::{
    Critic, FirstStage, SecondStage, Stack, TextSpec, bags_tensor, downsample2, flatten as flat,
};
use crate::models::{ModelSpec, Net};
use crate::util::{Stream, normal_vec, rng};
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A step's named values (losses, D's outputs, gradient norms).
type Values = Vec<(&'static str, f64)>;

/// The text half of a training batch.
pub struct TextBatch {
    /// Each image's caption (one of its phrasings, drawn per step).
    pub captions: Vec<Vec<u32>>,
    /// A caption of another image of the batch, of another class where labels exist.
    pub mismatched: Vec<Vec<u32>>,
    /// 1 or 2: the stage this step trains.
    pub stage: u8,
}

/// The step at which stage II takes over: half the run's steps.
pub fn stage_two_from(total_steps: u64) -> u64 {
    total_steps / 2
}

/// Tokenised captions of every training image (each phrasing), from the run's vocabulary.
pub fn tokenised(text: &TextSpec, data: &TextData) -> Vec<Vec<Vec<u32>>> {
    data.train.iter().map(|caps| caps.iter().map(|c| text.tokens_lossy(c)).collect()).collect()
}

/// The batch's captions: a phrasing per image drawn from `(seed, step)`, and mismatched ones.
pub fn text_batch(
    captions: &[Vec<Vec<u32>>],
    idx: &[usize],
    labels: &[u8],
    seed: u64,
    step: u64,
    stage: u8,
) -> TextBatch {
    let mut r = rng(seed, Stream::Caption, step);
    let chosen: Vec<Vec<u32>> = idx
        .iter()
        .map(|&i| {
            let caps = &captions[i];
            caps[r.random_range(0..caps.len())].clone()
        })
        .collect();
    let n = idx.len();
    let mismatched = (0..n)
        .map(|i| {
            let j = (1..n).map(|k| (i + k) % n).find(|&j| labels[j] != labels[i]).unwrap_or((i + 1) % n);
            chosen[j].clone()
        })
        .collect();
    TextBatch { captions: chosen, mismatched, stage }
}

/// D's matching-aware loss: real+right caption → 1 (smoothed), ½(fake + real with wrong caption) → 0.
fn d_loss(real: Tensor<2>, fake: Tensor<2>, wrong: Tensor<2>, target: f64) -> Tensor<1> {
    bce_logits(real, target) + (bce_logits(fake, 0.0) + bce_logits(wrong, 0.0)) * 0.5
}

/// One stage's game after D's update: D's loss and raw outputs, G's adversarial loss.
struct Game {
    d_loss: Tensor<1>,
    g_loss: Tensor<1>,
    real: Tensor<2>,
    fake: Tensor<2>,
    wrong: Tensor<2>,
    d_norm: Tensor<1>,
}

/// One optimiser step of `module` on `loss`: the module after it and its gradient's norm.
fn update<M: Module>(module: M, opt: &mut ModuleOptimizer, rate: f64, loss: Tensor<1>) -> (M, Tensor<1>) {
    let device = loss.device();
    let grads = GradientsParams::from_grads(loss.backward(), &module);
    let norm = grad_norm(&module, &grads, &device);
    (opt.step(rate, module, grads), norm)
}

/// The matching-aware game of one stage's D: its update on real images with their own captions
/// (`right`), G's images `fake` (detached) and real images with mismatched captions (`wrong`); then
/// G's non-saturating loss through the updated D, held fixed.
#[allow(clippy::too_many_arguments)]
fn play<D: Critic>(
    d: D,
    opt: &mut ModuleOptimizer,
    rate: f64,
    real: Tensor<2>,
    fake: Tensor<2>,
    right: Tensor<2>,
    wrong: Tensor<2>,
    target: f64,
) -> (D, Game) {
    let (r, f, w) =
        (d.judge(real.clone(), right.clone()), d.judge(fake.clone().detach(), right.clone()), d.judge(real, wrong));
    let loss = d_loss(r.clone(), f.clone(), w.clone(), target);
    let (d, d_norm) = update(d, opt, rate, loss.clone());
    let g_loss = bce_logits(d.clone().no_grad().judge(fake, right), 1.0);
    (d, Game { d_loss: loss, g_loss, real: r, fake: f, wrong: w, d_norm })
}

/// One StackGAN iteration on real images `x` (flattened, in [-1, 1]) of the stage `text.stage`.
#[allow(clippy::too_many_arguments)]
pub fn stack_step<G1: FirstStage, D: Critic, G2: SecondStage>(
    mut m: Stack<G1, D, G2>,
    opts: &mut [ModuleOptimizer],
    spec: &ModelSpec,
    cfg: &RunConfig,
    rate: f64,
    x: Tensor<2>,
    text: &TextBatch,
    noise: &mut ChaCha8Rng,
) -> (Stack<G1, D, G2>, Values) {
    let device = x.device();
    let (b, l) = (x.dims()[0], spec.latent_dim);
    let t = spec.text.as_ref().expect("text models carry their vocabulary");
    let right = bags_tensor(t, &text.captions, &device);
    let wrong = bags_tensor(t, &text.mismatched, &device);
    let code = matrix(normal_vec(noise, b * l), b, l, &device);
    let (z, eps) = m.split_code(code);
    let target = 1.0 - cfg.label_smoothing;
    let rate_d = cfg.d_rate(rate);
    let (game, kl, gn);
    if text.stage == 1 {
        let (fake, k) = m.g1.draw(z, right.clone(), eps);
        let real = downsample2(x, spec.shape);
        (m.d1, game) = play(m.d1, &mut opts[1], rate_d, real, flat(fake), right, wrong, target);
        (m.g1, gn) = update(m.g1, &mut opts[0], rate, game.g_loss.clone() + k.clone() * spec.beta);
        kl = k;
    } else {
        // Stage I is frozen: its pictures (batch norm on running statistics, as at sampling) are
        // stage II's input and carry no gradient.
        let (low, _) = m.g1.clone().freeze().draw(z, right.clone(), eps.clone());
        let (fake, k) = m.g2.refine(low.detach(), right.clone(), eps);
        (m.d2, game) = play(m.d2, &mut opts[3], rate_d, x, flat(fake), right, wrong, target);
        (m.g2, gn) = update(m.g2, &mut opts[2], rate, game.g_loss.clone() + k.clone() * spec.beta);
        kl = k;
    }
    let Game { d_loss, g_loss, real: lr, fake: lf, wrong: lw, d_norm: dn } = game;
    let mut values = collect(vec![
        ("loss", g_loss.clone() + d_loss.clone()),
        ("d_loss", d_loss),
        ("g_loss", g_loss),
        ("kl", kl),
        ("d_real", sigmoid(lr).mean()),
        ("d_fake", sigmoid(lf).mean()),
        ("d_wrong", sigmoid(lw).mean()),
        ("d_grad_norm", dn),
        ("g_grad_norm", gn),
    ]);
    values.push(("stage", text.stage as f64));
    (m, values)
}

/// `step`'s branch for text models.
#[allow(clippy::too_many_arguments)]
pub fn step(
    net: Net,
    optims: &mut [ModuleOptimizer],
    spec: &ModelSpec,
    cfg: &RunConfig,
    lr: f64,
    x: Tensor<2>,
    text: Option<&TextBatch>,
    noise: &mut ChaCha8Rng,
) -> (Net, Vec<(&'static str, f64)>) {
    let text = text.expect("the trainer gives text models their captions");
    match net {
        Net::Stack(m) => {
            let (m, v) = stack_step(m, optims, spec, cfg, lr, x, text, noise);
            (Net::Stack(m), v)
        }
        Net::StackScaled(m) => {
            let (m, v) = stack_step(m, optims, spec, cfg, lr, x, text, noise);
            (Net::StackScaled(m), v)
        }
        _ => unreachable!("only text models reach the text step"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatched_captions_come_from_another_class_and_draws_follow_the_seed() {
        // Image i has captions [10i, 10i + 1]; labels 0,0,1,2,2.
        let captions: Vec<Vec<Vec<u32>>> = (0..5).map(|i| vec![vec![10 * i], vec![10 * i + 1]]).collect();
        let labels = [0u8, 0, 1, 2, 2];
        let idx = [0usize, 1, 2, 3, 4];
        let b = text_batch(&captions, &idx, &labels, 3, 7, 1);
        for i in 0..5 {
            assert_eq!(b.captions[i][0] / 10, i as u32, "image {i} gets one of its own captions");
            let j = (b.mismatched[i][0] / 10) as usize;
            assert_ne!(labels[j], labels[i], "image {i}'s mismatched caption is of image {j}, same class");
        }
        let again = text_batch(&captions, &idx, &labels, 3, 7, 1);
        assert_eq!(b.captions, again.captions);
        // Over steps every phrasing is used.
        let firsts: std::collections::BTreeSet<u32> =
            (0..20).map(|s| text_batch(&captions, &idx, &labels, 3, s, 1).captions[0][0]).collect();
        assert_eq!(firsts.len(), 2, "{firsts:?}");
        // Without another class in the batch the neighbour's caption is used.
        let same = text_batch(&captions, &[0, 1], &[4, 4], 3, 7, 2);
        assert_eq!(same.mismatched[0][0] / 10, 1);
        assert_eq!(stage_two_from(1000), 500);
    }
}
