//! GAN (Goodfellow et al. 2014) with MLPs: G maps z to an image in [-1, 1] (tanh), D maps an image to
//! a logit. With `cond_dim > 0` both also take the one-hot label (the conditional GAN of Mirza &
//! Osindero 2014, see `cgan.rs`). The training step lives in `train/adversarial.rs`.

use super::blocks::leaky_relu;
use super::blocks::linear;
use burn::module::Module;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::tanh;
use rand_chacha::ChaCha8Rng;

/// Widths of the MLP generator's hidden layers (z → 256 → 512 → 1024 → image).
pub const G_HIDDEN: [usize; 3] = [256, 512, 1024];
/// Widths of the MLP discriminator's hidden layers (image → 512 → 256 → 1).
pub const D_HIDDEN: [usize; 2] = [512, 256];

/// Linear layers with LeakyReLU(0.2) between them.
#[derive(Module, Debug)]
pub struct LeakyMlp {
    pub layers: Vec<Linear>,
}

impl LeakyMlp {
    pub fn new(dims: &[usize], rng: &mut ChaCha8Rng, device: &Device) -> Self {
        LeakyMlp { layers: dims.windows(2).map(|w| linear(w[0], w[1], rng, device)).collect() }
    }
    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(x);
            if i < last {
                x = leaky_relu(x, 0.2);
            }
        }
        x
    }
}

#[derive(Module, Debug)]
pub struct MlpGenerator {
    pub net: LeakyMlp,
}

impl MlpGenerator {
    pub fn new(latent: usize, cond: usize, out: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let mut dims = vec![latent + cond];
        dims.extend(G_HIDDEN);
        dims.push(out);
        MlpGenerator { net: LeakyMlp::new(&dims, rng, device) }
    }
    /// Flattened images in [-1, 1].
    pub fn forward(&self, z: Tensor<2>) -> Tensor<2> {
        tanh(self.net.forward(z))
    }
}

#[derive(Module, Debug)]
pub struct MlpDiscriminator {
    pub net: LeakyMlp,
}

impl MlpDiscriminator {
    pub fn new(input: usize, cond: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let mut dims = vec![input + cond];
        dims.extend(D_HIDDEN);
        dims.push(1);
        MlpDiscriminator { net: LeakyMlp::new(&dims, rng, device) }
    }
    /// Logits [B, 1].
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.net.forward(x)
    }
}

/// G of the GAN family: MLP (gan, cgan) or convolutional (dcgan). One per run: size is no concern.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Generator {
    Mlp(MlpGenerator),
    Conv(super::dcgan::ConvGenerator),
}

/// D of the GAN family.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Discriminator {
    Mlp(MlpDiscriminator),
    Conv(super::dcgan::ConvDiscriminator),
}

/// A generator and its discriminator; `cond_dim > 0` makes both label-conditioned (cGAN).
#[derive(Module, Debug)]
pub struct Adversary {
    pub g: Generator,
    pub d: Discriminator,
    pub cond_dim: usize,
}

impl Adversary {
    fn with_cond(&self, x: Tensor<2>, cond: Option<Tensor<2>>) -> Tensor<2> {
        match cond {
            Some(c) if self.cond_dim > 0 => Tensor::cat(vec![x, c], 1),
            _ => x,
        }
    }
    /// Images in [-1, 1], flattened.
    pub fn generate(&self, z: Tensor<2>, cond: Option<Tensor<2>>) -> Tensor<2> {
        let z = self.with_cond(z, cond);
        match &self.g {
            Generator::Mlp(g) => g.forward(z),
            Generator::Conv(g) => g.forward(z),
        }
    }
    /// D's logits [B, 1] for images in [-1, 1].
    pub fn discriminate(&self, x: Tensor<2>, cond: Option<Tensor<2>>) -> Tensor<2> {
        let x = self.with_cond(x, cond);
        match &self.d {
            Discriminator::Mlp(d) => d.forward(x),
            Discriminator::Conv(d) => d.forward(x),
        }
    }
}
