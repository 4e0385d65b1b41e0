//! GAN (Goodfellow et al. 2014) with MLPs: G maps z to an image in [-1, 1] (tanh), D maps an image to
//! a logit. With `cond_dim > 0` both also take the one-hot label (the conditional GAN of Mirza &
//! Osindero 2014, see `cgan.rs`). The training step lives in `train/adversarial.rs`.

use super::blocks::linear;
use super::registry::{self, Family, GameLoss, HeldOut, ModelDecl};
use super::{ModelSpec, Net};
use crate::kernels::{self, Act};
use burn::module::Module;
use burn::nn::Linear;
use burn::prelude::*;
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
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward_then(x, Act::None)
    }

    /// The MLP with `last` applied to its output (fused into the last layer).
    pub fn forward_then(&self, mut x: Tensor<2>, last: Act) -> Tensor<2> {
        let n = self.layers.len();
        for (i, l) in self.layers.iter().enumerate() {
            x = kernels::linear(l, x, if i + 1 < n { Act::LeakyRelu(0.2) } else { last });
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
        self.net.forward_then(z, Act::Tanh)
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
    /// The scaled DCGAN of 16–256 px square images (`pyramid.rs`).
    Scaled(super::pyramid::UpStack),
}

/// D of the GAN family.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Discriminator {
    Mlp(MlpDiscriminator),
    Conv(super::dcgan::ConvDiscriminator),
    Scaled(super::pyramid::ScaledDiscriminator),
    /// The 28×28 convolutional D of a conditional DCGAN (projection, below).
    ConvProjected(ConvProjected),
    /// The scaled D of a conditional DCGAN at 16–256 px (projection, below).
    ScaledProjected(ScaledProjected),
}

/// A convolutional D conditioned by projection (Miyato & Koyama 2018): logit = fc(h) + ⟨V c, φ⟩
/// for D's last feature map h, its spatial mean φ (one value per channel) and the condition row c.
/// Concatenating c to the image (the MLP cGAN's way) means nothing to a convolution, and
/// concatenating it to h before `fc` only adds a term that ignores the image; the inner product
/// makes D judge the image *given* c. V starts at zero, so D starts as the unconditional D: with
/// PyTorch's initialisation and the 4096 features of h, the projection alone gave logits of ±100
/// and a collapsed G on faces (measured).
#[derive(Module, Debug)]
pub struct ConvProjected {
    pub d: super::dcgan::ConvDiscriminator,
    pub embed: Linear,
}

/// The scaled D with the projection of `ConvProjected`.
#[derive(Module, Debug)]
pub struct ScaledProjected {
    pub d: super::pyramid::ScaledDiscriminator,
    pub embed: Linear,
}

/// The projection's V: [conditions → channels], zero, without bias.
pub(super) fn projection(conditions: usize, channels: usize, device: &Device) -> Linear {
    Linear { weight: burn::module::Param::from_tensor(Tensor::zeros([conditions, channels], device)), bias: None }
}

/// fc(h) + ⟨embed(c), mean over positions of h⟩ for features `h` [B, C, H, W] and conditions `c` [B, K].
pub(super) fn project(fc: &Linear, embed: &Linear, h: Tensor<4>, c: Option<Tensor<2>>) -> Tensor<2> {
    let [b, ch, hh, ww] = h.dims();
    let out = kernels::linear(fc, h.clone().reshape([b, ch * hh * ww]), Act::None);
    match c {
        Some(c) => {
            let pooled = h.reshape([b, ch, hh * ww]).mean_dim(2).reshape([b, ch]);
            out + (kernels::linear(embed, c, Act::None) * pooled).sum_dim(1)
        }
        None => out,
    }
}

/// A generator and its discriminator; `cond_dim > 0` makes both conditional (cGAN, or a DCGAN
/// with `--condition`: `models::condition`).
#[derive(Module, Debug)]
pub struct Adversary {
    pub g: Generator,
    pub d: Discriminator,
    pub cond_dim: usize,
    /// An exponential moving average of G's weights (`--ema`), which samples come from: the
    /// average of the last ~1/(1 − decay) iterates smooths out the G/D game's oscillation.
    pub g_ema: Option<Generator>,
}

impl Generator {
    pub fn forward(&self, z: Tensor<2>) -> Tensor<2> {
        match self {
            Generator::Mlp(g) => g.forward(z),
            Generator::Conv(g) => g.forward(z),
            Generator::Scaled(g) => g.forward(z, Act::Tanh),
        }
    }

    /// Make batch-norm running statistics current (see `dcgan::sync_bn`).
    pub fn sync_running_stats(&self) {
        match self {
            Generator::Mlp(_) => {}
            Generator::Conv(g) => g.sync_running_stats(),
            Generator::Scaled(g) => super::dcgan::sync_bn(&g.batch_norms()),
        }
    }
}

/// g_ema ← decay·g_ema + (1 − decay)·g, parameter by parameter in module order (batch-norm
/// running statistics included).
struct Blend {
    decay: f64,
    from: std::vec::IntoIter<Tensor<1>>,
}

impl burn::module::ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: burn::module::Param<Tensor<D>>) -> burn::module::Param<Tensor<D>> {
        let src = self.from.next().expect("G and its average have the same parameters");
        let d = self.decay;
        param.map(|t| {
            let shape = t.dims();
            t.mul_scalar(d).add(src.reshape(shape).mul_scalar(1.0 - d))
        })
    }
}

impl Adversary {
    fn with_cond(&self, x: Tensor<2>, cond: Option<Tensor<2>>) -> Tensor<2> {
        match cond {
            Some(c) if self.cond_dim > 0 => Tensor::cat(vec![x, c], 1),
            _ => x,
        }
    }
    /// Images in [-1, 1], flattened, from the generator being trained.
    pub fn generate(&self, z: Tensor<2>, cond: Option<Tensor<2>>) -> Tensor<2> {
        self.g.forward(self.with_cond(z, cond))
    }
    /// Images in [-1, 1] for users (sample, eval, pictures): from the weight average when the
    /// run keeps one, else from G.
    pub fn generate_samples(&self, z: Tensor<2>, cond: Option<Tensor<2>>) -> Tensor<2> {
        self.g_ema.as_ref().unwrap_or(&self.g).forward(self.with_cond(z, cond))
    }
    /// One step of the weight average after an update of G (no-op without one).
    pub fn update_ema(mut self, decay: f64) -> Self {
        if let Some(avg) = self.g_ema.take() {
            self.g.sync_running_stats();
            let from: Vec<Tensor<1>> =
                crate::models::blocks::param_tensors(&self.g).into_iter().map(|t| t.detach()).collect();
            self.g_ema = Some(avg.map(&mut Blend { decay, from: from.into_iter() }));
        }
        self
    }
    /// D's logits [B, 1] for images in [-1, 1].
    pub fn discriminate(&self, x: Tensor<2>, cond: Option<Tensor<2>>) -> Tensor<2> {
        self.d.forward(x, cond)
    }
    /// D's logits with D's parameters held fixed, for G's update: gradients flow through D to the
    /// images (and so to G), but none are computed for D's own weights, which G's step would
    /// throw away (for DCGAN that is ~1/6 of the step's multiply-adds).
    pub fn discriminate_frozen(&self, x: Tensor<2>, cond: Option<Tensor<2>>) -> Tensor<2> {
        self.d.clone().no_grad().forward(x, cond)
    }
}

impl Discriminator {
    /// Conditioned by projection (a conditional convolutional D, trained matching-aware).
    pub fn is_projected(&self) -> bool {
        matches!(self, Discriminator::ConvProjected(_) | Discriminator::ScaledProjected(_))
    }

    /// Logits [B, 1] for flattened images and, for a conditional D, their condition rows.
    pub fn forward(&self, x: Tensor<2>, cond: Option<Tensor<2>>) -> Tensor<2> {
        match self {
            Discriminator::Mlp(d) => d.forward(match cond {
                Some(c) => Tensor::cat(vec![x, c], 1),
                None => x,
            }),
            Discriminator::Conv(d) => d.forward(x),
            Discriminator::Scaled(d) => d.forward(x),
            Discriminator::ConvProjected(p) => project(&p.d.fc, &p.embed, p.d.features(x), cond),
            Discriminator::ScaledProjected(p) => project(&p.d.fc, &p.embed, p.d.body.forward(x), cond),
        }
    }

    /// Make batch-norm running statistics current (see `dcgan::sync_bn`).
    pub fn sync_running_stats(&self) {
        match self {
            Discriminator::Mlp(_) => {}
            Discriminator::Conv(d) | Discriminator::ConvProjected(ConvProjected { d, .. }) => d.sync_running_stats(),
            Discriminator::Scaled(d) | Discriminator::ScaledProjected(ScaledProjected { d, .. }) => {
                super::dcgan::sync_bn(&d.body.batch_norms())
            }
        }
    }
}

/// G and D of a GAN-family model: MLPs (the condition concatenated to both inputs) or the DCGAN
/// convolutional networks (the condition concatenated to G's code and projected in D); with
/// `--ema`, G's weight average.
pub fn build_adversary(spec: &ModelSpec, seed: u64, device: &Device, conv: bool) -> Net {
    let rng = &mut crate::util::rng(seed, crate::util::Stream::Init, 0);
    let (l, d) = (spec.latent_dim, spec.shape.len());
    let c = spec.cond_dim();
    let new_g = |rng: &mut ChaCha8Rng| match (conv, spec.width) {
        (true, Some(w)) => Generator::Scaled(super::pyramid::UpStack::new(l + c, spec.shape, w, rng, device)),
        (true, None) => Generator::Conv(super::dcgan::ConvGenerator::new(l, c, spec.shape, rng, device)),
        (false, _) => Generator::Mlp(MlpGenerator::new(l, c, d, rng, device)),
    };
    let g = new_g(rng);
    let d = match (conv, spec.width) {
        (true, Some(w)) => {
            let d = super::pyramid::ScaledDiscriminator::new(spec.shape, w, rng, device);
            if c > 0 {
                let embed = projection(c, d.body.out_len() / (super::pyramid::BASE * super::pyramid::BASE), device);
                Discriminator::ScaledProjected(ScaledProjected { d, embed })
            } else {
                Discriminator::Scaled(d)
            }
        }
        (true, None) => {
            let d = super::dcgan::ConvDiscriminator::new(spec.shape, spec.d_conv3, rng, device);
            if c > 0 {
                let embed = projection(c, d.fc.weight.dims()[0] / (spec.shape.height / 4 * (spec.shape.width / 4)), device);
                Discriminator::ConvProjected(ConvProjected { d, embed })
            } else {
                Discriminator::Conv(d)
            }
        }
        (false, _) => Discriminator::Mlp(MlpDiscriminator::new(d, c, rng, device)),
    };
    // The average starts as G itself: a second G from the same stream, with its own parameters and
    // batch-norm statistics, that no optimiser touches.
    let g_ema = spec.ema.is_some().then(|| new_g(&mut crate::util::rng(seed, crate::util::Stream::Init, 0)).no_grad());
    Net::Gan(Adversary { g, d, cond_dim: c, g_ema })
}

/// Units of the GAN family's held-out numbers under the BCE game.
pub const BCE_HELD_OUT: HeldOut = HeldOut {
    units: "test: D's BCE loss (loss), G's non-saturating loss, mean D(x) (d_real) and D(G(z)) (d_fake) on test images",
    lower_is_better: false,
};

pub const DECL: ModelDecl = ModelDecl {
    name: "gan",
    family: Family::Adversarial,
    conditional: false,
    variational: false,
    text: false,
    options: registry::GAN_OPTIONS,
    defaults: |_| registry::gan_defaults(30),
    optimizers: registry::GAN_OPTIMIZERS,
    game: Some(GameLoss::NonSaturating),
    d_conv3: false,
    held_out: BCE_HELD_OUT,
    collapse_below: Some(0.01),
    build: |spec, seed, device| build_adversary(spec, seed, device, false),
    check: registry::no_check,
    activations: "generator: LeakyReLU(0.2) between layers, tanh output in [-1,1]",
};
