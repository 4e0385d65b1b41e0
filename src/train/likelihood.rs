//! One optimiser on one loss (AE, VAE, CVAE): forward, backward, Adam step.

use crate::models::blocks::matrix;
use crate::models::{ModelSpec, Net};
use crate::util::normal_vec;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use rand_chacha::ChaCha8Rng;

/// One step at learning rate `lr`; `rng` is the step's noise stream (reparameterisation ε).
pub fn step(
    net: Net,
    opt: &mut ModuleOptimizer,
    spec: &ModelSpec,
    lr: f64,
    x: Tensor<2>,
    cond: &[f32],
    rng: &mut ChaCha8Rng,
) -> (Net, Vec<(&'static str, f64)>) {
    let (b, l, k) = (x.dims()[0], spec.latent_dim, spec.objective.draws());
    let eps = matrix(normal_vec(rng, b * k * l), b * k, l, &x.device());
    let losses = net.losses(spec, x, cond, eps);
    let values = losses.values();
    let grads = GradientsParams::from_grads(losses.total.backward(), &net);
    (opt.step(lr, net, grads), values)
}
