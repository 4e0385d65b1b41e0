//! Alternating updates (GAN family and AAE). D is updated on real and on detached fake samples, then
//! G with the model's game loss (`models::game`; the non-saturating −log D(G(z)) by default).

use crate::config::RunConfig;
use crate::models::ModelSpec;
use crate::models::aae::Aae;
use crate::models::blocks::{matrix, to_vec};
use crate::models::game::GameLoss;
pub use crate::models::game::bce_logits;
use crate::models::gan::Adversary;
use crate::models::prior::sample_prior;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use rand_chacha::ChaCha8Rng;

/// ‖∇‖₂ over a module's parameters, as a [1] tensor (synced with the other step values).
pub fn grad_norm<M: Module>(module: &M, grads: &GradientsParams, device: &Device) -> Tensor<1> {
    struct SumSq<'a> {
        grads: &'a GradientsParams,
        acc: Tensor<1>,
    }
    impl ModuleVisitor for SumSq<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.acc = self.acc.clone() + g.powi_scalar(2).sum().reshape([1]);
            }
        }
    }
    let mut v = SumSq { grads, acc: Tensor::zeros([1], device) };
    module.visit(&mut v);
    v.acc.sqrt()
}

pub(super) fn collect(named: Vec<(&'static str, Tensor<1>)>) -> Vec<(&'static str, f64)> {
    let (names, ts): (Vec<_>, Vec<_>) = named.into_iter().map(|(n, t)| (n, t.detach().reshape([1]))).unzip();
    names.into_iter().zip(to_vec(Tensor::cat(ts, 0)).into_iter().map(f64::from)).collect()
}

/// D's loss on real images `x` and G's images `fake`, with D's outputs on both. `fake` is detached:
/// D's update must not reach (or spend work on) G's parameters.
pub fn d_loss(
    m: &Adversary,
    x: Tensor<2>,
    fake: Tensor<2>,
    cond: Option<Tensor<2>>,
    game: GameLoss,
    real_target: f64,
) -> (Tensor<1>, Tensor<2>, Tensor<2>) {
    let lr = m.discriminate(x.clone(), cond.clone());
    let lf = m.discriminate(fake.detach(), cond.clone());
    let loss = match cond.filter(|_| m.d.is_projected()) {
        // Matching-aware (Reed et al. 2016's GAN-CLS, as the StackGAN's discriminators): real images
        // with another image's condition are fakes too, half the weight of G's, so D must check
        // that image and condition agree, not only that the image is real.
        Some(c) => {
            let b = c.dims()[0];
            let wrong = Tensor::cat(vec![c.clone().slice(1..b), c.slice(0..1)], 0);
            let lw = m.discriminate(x, Some(wrong));
            game.d_loss(lr.clone(), lf.clone(), real_target) * 0.5 + game.d_loss(lr.clone(), lw, real_target) * 0.5
        }
        None => game.d_loss(lr.clone(), lf.clone(), real_target),
    };
    (loss, lr, lf)
}

/// One GAN iteration: `cfg.d_steps` D updates (fresh z each), then one G update that reuses the
/// last fake batch (as the reference DCGAN implementation does); `rate` is this step's learning rate.
#[allow(clippy::too_many_arguments)]
pub fn gan_step(
    mut m: Adversary,
    opts: &mut [ModuleOptimizer],
    spec: &ModelSpec,
    cfg: &RunConfig,
    rate: f64,
    x: Tensor<2>,
    cond: Option<Tensor<2>>,
    rng: &mut ChaCha8Rng,
) -> (Adversary, Vec<(&'static str, f64)>) {
    let device = x.device();
    let (b, l) = (x.dims()[0], spec.latent_dim);
    let rate_d = cfg.d_rate(rate);
    let game = spec.kind.decl().game.expect("adversarial models declare their game");
    let real_target = 1.0 - cfg.label_smoothing;
    let mut d_stats = None;
    let mut fake = None;
    for _ in 0..cfg.d_steps {
        let z = matrix(sample_prior(spec.prior, b, l, rng), b, l, &device);
        let f = m.generate(z, cond.clone());
        let (d_loss, lr, lf) = d_loss(&m, x.clone(), f.clone(), cond.clone(), game, real_target);
        let grads = GradientsParams::from_grads(d_loss.backward(), &m.d);
        let gn = grad_norm(&m.d, &grads, &device);
        m.d = opts[1].step(rate_d, m.d, grads);
        d_stats = Some((d_loss, game.mean_output(lr), game.mean_output(lf), gn));
        fake = Some(f);
    }
    let (d_loss, d_real, d_fake, d_gn) = d_stats.expect("d_steps ≥ 1");
    let lf = m.discriminate_frozen(fake.expect("d_steps ≥ 1"), cond);
    let g_loss = game.g_loss(lf);
    let grads = GradientsParams::from_grads(g_loss.backward(), &m.g);
    let g_gn = grad_norm(&m.g, &grads, &device);
    m.g = opts[0].step(rate, m.g, grads);
    if let Some(decay) = spec.ema {
        m = m.update_ema(decay);
    }
    let values = collect(vec![
        ("loss", g_loss.clone() + d_loss.clone()),
        ("d_loss", d_loss),
        ("g_loss", g_loss),
        ("d_real", d_real),
        ("d_fake", d_fake),
        ("d_grad_norm", d_gn),
        ("g_grad_norm", g_gn),
    ]);
    (m, values)
}

/// One AAE iteration: reconstruction, latent D (prior draws are real, codes fake), encoder fools D.
#[allow(clippy::too_many_arguments)]
pub fn aae_step(
    mut m: Aae,
    opts: &mut [ModuleOptimizer],
    spec: &ModelSpec,
    cfg: &RunConfig,
    rate: f64,
    x: Tensor<2>,
    rng: &mut ChaCha8Rng,
) -> (Aae, Vec<(&'static str, f64)>) {
    let device = x.device();
    let (b, l) = (x.dims()[0], spec.latent_dim);
    let rate_d = cfg.d_rate(rate);
    let recon = m.recon(x.clone());
    let grads = GradientsParams::from_grads(recon.backward(), &m);
    m = opts[0].step(rate, m, grads);

    let zp = matrix(sample_prior(spec.prior, b, l, rng), b, l, &device);
    let lr = m.disc.forward(zp);
    let lf = m.disc.forward(m.encode(x.clone()).detach());
    let d_loss = bce_logits(lr.clone(), 1.0 - cfg.label_smoothing) + bce_logits(lf.clone(), 0.0);
    let grads = GradientsParams::from_grads(d_loss.backward(), &m.disc);
    m.disc = opts[1].step(rate_d, m.disc, grads);

    // D frozen: only the encoder's gradients are wanted here.
    let g_loss = bce_logits(m.disc.clone().no_grad().forward(m.encode(x)), 1.0);
    let grads = GradientsParams::from_grads(g_loss.backward(), &m.encoder);
    m.encoder = opts[2].step(rate, m.encoder, grads);
    let values = collect(vec![
        ("loss", recon.clone()),
        ("recon", recon),
        ("d_loss", d_loss),
        ("g_loss", g_loss),
        ("d_real", sigmoid(lr).mean()),
        ("d_fake", sigmoid(lf).mean()),
    ]);
    (m, values)
}
