//! Conditional VAE (Sohn et al. 2015): the VAE of `vae.rs` with the one-hot label appended to the
//! encoder input and to the decoder's latent input, so `decode(z, y)` renders class `y` on demand.

use super::ModelSpec;
use super::vae::Vae;
use burn::prelude::*;
use rand_chacha::ChaCha8Rng;

pub fn new(spec: &ModelSpec, rng: &mut ChaCha8Rng, device: &Device) -> Vae {
    Vae::new(spec, spec.num_classes, rng, device)
}
