//! StackGAN (Zhang et al. 2017): a conditional GAN whose condition is a sentence.
//!
//! - **Text encoder**: a bag of words — the caption's normalised word counts through a linear
//!   layer (the mean of learned word embeddings) and LeakyReLU. Each network has its own, trained
//!   by its own player's loss: G's learns what to draw, D's what to check. Captions here are short
//!   lists of attribute words and a class name, where word order carries nothing a bag of words
//!   misses.
//! - **Conditioning augmentation**: the text vector gives a Gaussian N(μ, diag σ²) over the
//!   condition; G sees c = μ + σ ⊙ ε (the reparameterisation trick) and pays λ·KL(N(μ, σ²) ‖ N(0, I))
//!   (λ = `--beta`), which keeps the condition manifold smooth: nearby captions, nearby images.
//! - **Stage I** draws a coarse H/2 × W/2 image from [z; c₁]; **stage II** draws the full H × W
//!   image from stage I's picture and its own condition c₂ (an encoder of the picture, c₂ replicated
//!   over its 7×7 grid, then DCGAN-style upsampling).
//! - **Matching-aware discriminators**, one per stage, see the image and the caption: a real image
//!   with its own caption is positive; a generated image, or a real image with a mismatched caption,
//!   is negative (StackGAN's loss, after Reed et al. 2016).
//!
//! The code a user walks is [z ; ε]: the last [`CA_DIM`] entries are the conditioning noise, so a
//! code and a caption fix the image. Stage I trains first (the first half of the steps), then
//! stage II with stage I frozen, as in the paper (`train::stack`).

use super::blocks::{kl_std_normal, linear};
use super::pyramid::{DownStack, UpStack};
use super::dcgan::{D_CH, G_CH, conv, conv_t, dcgan_weights, zero_bias};
use super::registry::{self, Adam, Family, GameLoss, HeldOut, ModelDecl};
use super::{ModelSpec, Net};
use crate::data::ImageShape;
use crate::kernels::{self, Act};
use anyhow::{Result, bail};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, PaddingConfig2d};
use burn::prelude::*;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use super::text::{TextSpec, bag_of_words, bags_tensor};

/// Width of the conditioning-augmentation Gaussian (and of the code's noise part ε).
pub const CA_DIM: usize = 16;
/// Width of the text vectors.
pub const TEXT_DIM: usize = 64;
/// Width of the discriminators' image features (and of the text projection they meet).
const JOINT: usize = 256;

/// Bag of words → text vector (mean word embedding, then LeakyReLU).
#[derive(Module, Debug)]
pub struct TextEncoder {
    pub embed: Linear,
}

impl TextEncoder {
    fn new(vocab: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        TextEncoder { embed: linear(vocab, TEXT_DIM, rng, device) }
    }
    pub fn forward(&self, bow: Tensor<2>) -> Tensor<2> {
        kernels::linear(&self.embed, bow, Act::LeakyRelu(0.2))
    }
}

/// Conditioning augmentation: text vector → (μ, log σ²) → c = μ + σ ⊙ ε, with KL(N(μ, σ²) ‖ N(0, I)).
#[derive(Module, Debug)]
pub struct CondAug {
    pub text: TextEncoder,
    pub fc: Linear,
}

impl CondAug {
    fn new(vocab: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        CondAug { text: TextEncoder::new(vocab, rng, device), fc: linear(TEXT_DIM, 2 * CA_DIM, rng, device) }
    }
    /// (c [B, CA_DIM], KL per batch row and condition dimension [1]).
    pub fn forward(&self, bow: Tensor<2>, eps: Tensor<2>) -> (Tensor<2>, Tensor<1>) {
        let b = bow.dims()[0];
        let h = kernels::linear(&self.fc, self.text.forward(bow), Act::None);
        let mu = h.clone().slice([0..b, 0..CA_DIM]);
        // Clamped so that an early outlier cannot overflow exp.
        let logvar = h.slice([0..b, CA_DIM..2 * CA_DIM]).clamp(-10.0, 10.0);
        let c = mu.clone() + (logvar.clone() * 0.5).exp() * eps;
        // Averaged over the condition's dimensions as well as the batch, as the reference
        // implementation does: summed over them, λ = 1 pins μ to 0 and G never hears the text.
        (c, kl_std_normal(mu, logvar).mean().div_scalar(CA_DIM as f64))
    }
}

/// 3×3 convolution, stride 1, padding 1 (keeps height and width).
fn conv3(cin: usize, cout: usize, rng: &mut ChaCha8Rng, device: &Device) -> Conv2d {
    let mut c = Conv2dConfig::new([cin, cout], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device);
    c.weight = dcgan_weights(&c.weight, rng, device);
    c.bias = zero_bias(&c.bias, device);
    c
}

/// Stage I generator: [z; c₁] → Linear → G_CH×(H/4)×(W/4) → BN → ReLU → ConvT → BN → ReLU →
/// Conv3×3 → tanh, an H/2 × W/2 image.
#[derive(Module, Debug)]
pub struct StageOne {
    pub ca: CondAug,
    pub fc: Linear,
    pub bn0: BatchNorm,
    pub up1: ConvTranspose2d,
    pub bn1: BatchNorm,
    pub out: Conv2d,
    pub h4: usize,
    pub w4: usize,
}

impl StageOne {
    fn new(z: usize, vocab: usize, shape: ImageShape, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let (h4, w4) = (shape.height / 4, shape.width / 4);
        StageOne {
            ca: CondAug::new(vocab, rng, device),
            fc: linear(z + CA_DIM, G_CH * h4 * w4, rng, device),
            bn0: BatchNormConfig::new(G_CH).init(device),
            up1: conv_t(G_CH, D_CH, rng, device),
            bn1: BatchNormConfig::new(D_CH).init(device),
            out: conv3(D_CH, shape.channels, rng, device),
            h4,
            w4,
        }
    }

    /// (images [B, C, H/2, W/2] in [-1, 1], KL of the condition).
    pub fn forward(&self, z: Tensor<2>, bow: Tensor<2>, eps: Tensor<2>) -> (Tensor<4>, Tensor<1>) {
        let b = z.dims()[0];
        let (c, kl) = self.ca.forward(bow, eps);
        let x = kernels::linear(&self.fc, Tensor::cat(vec![z, c], 1), Act::None).reshape([b, G_CH, self.h4, self.w4]);
        let x = kernels::batch_norm(&self.bn0, x, Act::Relu);
        let x = kernels::conv_transpose2d(&self.up1, x, Act::None);
        let x = kernels::batch_norm(&self.bn1, x, Act::Relu);
        (kernels::conv2d(&self.out, x, Act::Tanh), kl)
    }
}

/// Stage II generator: stage I's image → Conv ↓ → ReLU → ‖ c₂ replicated → Conv3×3 → BN → ReLU →
/// ConvT → BN → ReLU → ConvT → tanh, the H × W image.
#[derive(Module, Debug)]
pub struct StageTwo {
    pub ca: CondAug,
    pub down: Conv2d,
    pub join: Conv2d,
    pub bn_j: BatchNorm,
    pub up1: ConvTranspose2d,
    pub bn1: BatchNorm,
    pub up2: ConvTranspose2d,
}

impl StageTwo {
    fn new(vocab: usize, shape: ImageShape, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        StageTwo {
            ca: CondAug::new(vocab, rng, device),
            down: conv(shape.channels, D_CH, rng, device),
            join: conv3(D_CH + CA_DIM, G_CH, rng, device),
            bn_j: BatchNormConfig::new(G_CH).init(device),
            up1: conv_t(G_CH, D_CH, rng, device),
            bn1: BatchNormConfig::new(D_CH).init(device),
            up2: conv_t(D_CH, shape.channels, rng, device),
        }
    }

    /// (images [B, C, H, W] in [-1, 1], KL of the condition) from stage I's images [B, C, H/2, W/2].
    pub fn forward(&self, low: Tensor<4>, bow: Tensor<2>, eps: Tensor<2>) -> (Tensor<4>, Tensor<1>) {
        let (c, kl) = self.ca.forward(bow, eps);
        let h = kernels::conv2d(&self.down, low, Act::Relu);
        let [b, _, h4, w4] = h.dims();
        let grid = c.reshape([b, CA_DIM, 1, 1]).repeat_dim(2, h4).repeat_dim(3, w4);
        let h = kernels::conv2d(&self.join, Tensor::cat(vec![h, grid], 1), Act::None);
        let h = kernels::batch_norm(&self.bn_j, h, Act::Relu);
        let h = kernels::conv_transpose2d(&self.up1, h, Act::None);
        let h = kernels::batch_norm(&self.bn1, h, Act::Relu);
        (kernels::conv_transpose2d(&self.up2, h, Act::Tanh), kl)
    }
}

/// A matching-aware discriminator: image features (two convolutions down to H/4 × W/4 of the
/// full image, then a linear layer) and its own text vector, scored by projection.
#[derive(Module, Debug)]
pub struct StageD {
    pub text: TextEncoder,
    pub down1: Conv2d,
    pub down2: Conv2d,
    pub bn2: BatchNorm,
    pub feat: Linear,
    pub proj: Linear,
    pub out: Linear,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl StageD {
    /// For images of `shape`; `halve_twice`: the second convolution also halves (stage II) or
    /// keeps the size (stage I, whose images are already half size).
    fn new(shape: ImageShape, vocab: usize, halve_twice: bool, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let (h4, w4) = (shape.height / 4, shape.width / 4);
        let (height, width) = if halve_twice { (shape.height, shape.width) } else { (shape.height / 2, shape.width / 2) };
        StageD {
            text: TextEncoder::new(vocab, rng, device),
            down1: conv(shape.channels, D_CH, rng, device),
            down2: if halve_twice { conv(D_CH, G_CH, rng, device) } else { conv3(D_CH, G_CH, rng, device) },
            bn2: BatchNormConfig::new(G_CH).init(device),
            feat: linear(G_CH * h4 * w4, JOINT, rng, device),
            proj: linear(TEXT_DIM, JOINT, rng, device),
            out: linear(JOINT, 1, rng, device),
            channels: shape.channels,
            height,
            width,
        }
    }

    /// Logits [B, 1] for flattened images in [-1, 1] and their captions' bags of words.
    pub fn forward(&self, x: Tensor<2>, bow: Tensor<2>) -> Tensor<2> {
        let b = x.dims()[0];
        let x = x.reshape([b, self.channels, self.height, self.width]);
        let x = kernels::conv2d(&self.down1, x, Act::LeakyRelu(0.2));
        let x = kernels::conv2d(&self.down2, x, Act::None);
        let x = kernels::batch_norm(&self.bn2, x, Act::LeakyRelu(0.2));
        let f = kernels::flatten_linear(&self.feat, x, Act::LeakyRelu(0.2));
        let t = kernels::linear(&self.proj, self.text.forward(bow), Act::None);
        // Projection (Miyato & Koyama 2018): an image term plus the inner product of image and
        // text features, so matching is one multiplication away rather than learned through a
        // concatenation (which, measured here, left the condition unused).
        kernels::linear(&self.out, f.clone(), Act::None) + (f * t).sum_dim(1)
    }
}

/// A stage-I generator: codes, captions and conditioning noise → a half-size picture.
pub trait FirstStage: Module + Clone + std::fmt::Debug {
    /// (images [B, C, H/2, W/2] in [-1, 1], KL of the condition).
    fn draw(&self, z: Tensor<2>, bow: Tensor<2>, eps: Tensor<2>) -> (Tensor<4>, Tensor<1>);
    fn norms(&self) -> Vec<&BatchNorm>;
}

/// A stage-II generator: stage I's picture and the caption → the full-size picture.
pub trait SecondStage: Module + Clone + std::fmt::Debug {
    /// (images [B, C, H, W] in [-1, 1], KL of the condition).
    fn refine(&self, low: Tensor<4>, bow: Tensor<2>, eps: Tensor<2>) -> (Tensor<4>, Tensor<1>);
    fn norms(&self) -> Vec<&BatchNorm>;
}

/// A matching-aware discriminator: logits [B, 1] for flattened images and their captions.
pub trait Critic: Module + Clone + std::fmt::Debug {
    fn judge(&self, x: Tensor<2>, bow: Tensor<2>) -> Tensor<2>;
    fn norms(&self) -> Vec<&BatchNorm>;
}

impl FirstStage for StageOne {
    fn draw(&self, z: Tensor<2>, bow: Tensor<2>, eps: Tensor<2>) -> (Tensor<4>, Tensor<1>) {
        self.forward(z, bow, eps)
    }
    fn norms(&self) -> Vec<&BatchNorm> {
        vec![&self.bn0, &self.bn1]
    }
}

impl SecondStage for StageTwo {
    fn refine(&self, low: Tensor<4>, bow: Tensor<2>, eps: Tensor<2>) -> (Tensor<4>, Tensor<1>) {
        self.forward(low, bow, eps)
    }
    fn norms(&self) -> Vec<&BatchNorm> {
        vec![&self.bn_j, &self.bn1]
    }
}

impl Critic for StageD {
    fn judge(&self, x: Tensor<2>, bow: Tensor<2>) -> Tensor<2> {
        self.forward(x, bow)
    }
    fn norms(&self) -> Vec<&BatchNorm> {
        vec![&self.bn2]
    }
}

/// Stage I at scaled sizes (32–256 px images): [z; c₁] through Radford's generator
/// (`pyramid::UpStack`) to the half-size picture.
#[derive(Module, Debug)]
pub struct ScaledOne {
    pub ca: CondAug,
    pub body: UpStack,
    pub channels: usize,
    pub side: usize,
}

impl FirstStage for ScaledOne {
    fn draw(&self, z: Tensor<2>, bow: Tensor<2>, eps: Tensor<2>) -> (Tensor<4>, Tensor<1>) {
        let b = z.dims()[0];
        let (c, kl) = self.ca.forward(bow, eps);
        let x = self.body.forward(Tensor::cat(vec![z, c], 1), Act::Tanh);
        (x.reshape([b, self.channels, self.side, self.side]), kl)
    }
    fn norms(&self) -> Vec<&BatchNorm> {
        self.body.batch_norms()
    }
}

/// Stage II at scaled sizes: stage I's picture → Conv ↓ (2w) → ReLU → ‖ c₂ over the grid → Conv3×3
/// (2w) → BN → ReLU → a residual block (Conv3×3 → BN → ReLU → Conv3×3 → BN, + input, ReLU) → the top
/// of Radford's generator (ConvT → BN → ReLU … → ConvT → tanh) to the full size. Zhang et al.'s
/// stage II is this shape (encode, join, residual blocks, upsample), narrowed for 2 CPU cores.
#[derive(Module, Debug)]
pub struct ScaledTwo {
    pub ca: CondAug,
    pub down: Conv2d,
    pub join: Conv2d,
    pub bn_j: BatchNorm,
    pub res_a: Conv2d,
    pub bn_a: BatchNorm,
    pub res_b: Conv2d,
    pub bn_b: BatchNorm,
    pub ups: Vec<ConvTranspose2d>,
    /// After every up-convolution but the last.
    pub bns: Vec<BatchNorm>,
}

impl ScaledTwo {
    fn new(vocab: usize, shape: ImageShape, width: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let c = 2 * width;
        // Two doublings from the 1/4 side where c₂ joins: 2w → w channels, then the image's.
        let ups = vec![conv_t(c, width, rng, device), conv_t(width, shape.channels, rng, device)];
        let bns = vec![BatchNormConfig::new(width).init(device)];
        ScaledTwo {
            ca: CondAug::new(vocab, rng, device),
            down: conv(shape.channels, c, rng, device),
            join: conv3(c + CA_DIM, c, rng, device),
            bn_j: BatchNormConfig::new(c).init(device),
            res_a: conv3(c, c, rng, device),
            bn_a: BatchNormConfig::new(c).init(device),
            res_b: conv3(c, c, rng, device),
            bn_b: BatchNormConfig::new(c).init(device),
            ups,
            bns,
        }
    }
}

impl SecondStage for ScaledTwo {
    fn refine(&self, low: Tensor<4>, bow: Tensor<2>, eps: Tensor<2>) -> (Tensor<4>, Tensor<1>) {
        let (c, kl) = self.ca.forward(bow, eps);
        let h = kernels::conv2d(&self.down, low, Act::Relu);
        let [b, _, hh, ww] = h.dims();
        let grid = c.reshape([b, CA_DIM, 1, 1]).repeat_dim(2, hh).repeat_dim(3, ww);
        let h = kernels::batch_norm(&self.bn_j, kernels::conv2d(&self.join, Tensor::cat(vec![h, grid], 1), Act::None), Act::Relu);
        let r = kernels::batch_norm(&self.bn_a, kernels::conv2d(&self.res_a, h.clone(), Act::None), Act::Relu);
        let r = kernels::batch_norm(&self.bn_b, kernels::conv2d(&self.res_b, r, Act::None), Act::None);
        let mut x = burn::tensor::activation::relu(h + r);
        let k = self.ups.len();
        for (i, up) in self.ups.iter().enumerate() {
            x = if i + 1 == k {
                kernels::conv_transpose2d(up, x, Act::Tanh)
            } else {
                kernels::batch_norm(&self.bns[i], kernels::conv_transpose2d(up, x, Act::None), Act::Relu)
            };
        }
        (x, kl)
    }
    fn norms(&self) -> Vec<&BatchNorm> {
        [&self.bn_j, &self.bn_a, &self.bn_b].into_iter().chain(&self.bns).collect()
    }
}

/// A scaled matching-aware discriminator: Radford's D (`pyramid::DownStack`) and its own text
/// vector, scored by projection on the channel means of its last map (as the conditional DCGAN,
/// `gan::ScaledProjected`): logit = fc(h) + ⟨V t, mean h⟩, V zero at first.
#[derive(Module, Debug)]
pub struct ScaledD {
    pub text: TextEncoder,
    pub body: DownStack,
    pub fc: Linear,
    pub embed: Linear,
}

impl ScaledD {
    fn new(shape: ImageShape, vocab: usize, width: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let body = DownStack::new(shape, width, rng, device);
        let fc = linear(body.out_len(), 1, rng, device);
        let ch = body.out_len() / (super::pyramid::BASE * super::pyramid::BASE);
        let embed = super::gan::projection(TEXT_DIM, ch, device);
        ScaledD { text: TextEncoder::new(vocab, rng, device), body, fc, embed }
    }
}

impl Critic for ScaledD {
    fn judge(&self, x: Tensor<2>, bow: Tensor<2>) -> Tensor<2> {
        super::gan::project(&self.fc, &self.embed, self.body.forward(x), Some(self.text.forward(bow)))
    }
    fn norms(&self) -> Vec<&BatchNorm> {
        self.body.batch_norms()
    }
}

/// Which stage's images a StackGAN hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Stage I's coarse H/2 × W/2 picture, upsampled ×2 (nearest) to the data's size.
    One,
    /// Stage II's full-resolution picture.
    Two,
}

/// Both stages and their discriminators.
#[derive(Module, Debug)]
pub struct Stack<G1: FirstStage, D: Critic, G2: SecondStage> {
    pub g1: G1,
    pub d1: D,
    pub g2: G2,
    pub d2: D,
    /// Width of the encoders' input (the vocabulary).
    pub vocab: usize,
    pub z_dim: usize,
}

/// The StackGAN of 28×28 digits and other fixed sizes.
pub type StackGan = Stack<StageOne, StageD, StageTwo>;
/// The StackGAN of square 32–256 px images (faces): Radford's bodies at width `--width`.
pub type ScaledStackGan = Stack<ScaledOne, ScaledD, ScaledTwo>;

impl<G1: FirstStage, D: Critic, G2: SecondStage> Stack<G1, D, G2> {
    /// Split codes [B, latent] into (z, ε).
    pub fn split_code(&self, code: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let b = code.dims()[0];
        (code.clone().slice([0..b, 0..self.z_dim]), code.slice([0..b, self.z_dim..self.z_dim + CA_DIM]))
    }

    /// Flattened images in [-1, 1] of `stage` at the data's full size (stage I upsampled ×2).
    pub fn generate(&self, code: Tensor<2>, bow: Tensor<2>, stage: Stage) -> Tensor<2> {
        let (z, eps) = self.split_code(code);
        let (low, _) = self.g1.draw(z, bow.clone(), eps.clone());
        flatten(match stage {
            Stage::One => upsample2(low),
            Stage::Two => self.g2.refine(low, bow, eps).0,
        })
    }

    pub fn sync_running_stats(&self) {
        let all: Vec<&BatchNorm> =
            [self.g1.norms(), self.d1.norms(), self.g2.norms(), self.d2.norms()].into_iter().flatten().collect();
        super::dcgan::sync_bn(&all);
    }

    /// Held-out view of both games: each stage's D on real test images and on samples for `eps`,
    /// with the images' captions `bow`.
    pub fn held_out(&self, shape: ImageShape, x: Tensor<2>, bow: Tensor<2>, eps: Tensor<2>) -> super::Losses {
        let game = GameLoss::NonSaturating;
        let low = downsample2(x.clone(), shape);
        let (z, e) = self.split_code(eps);
        let (f1, _) = self.g1.draw(z, bow.clone(), e.clone());
        let (f2, _) = self.g2.refine(f1.clone(), bow.clone(), e);
        let (r1, g1) = (self.d1.judge(low, bow.clone()), self.d1.judge(flatten(f1), bow.clone()));
        let (r2, g2) = (self.d2.judge(x, bow.clone()), self.d2.judge(flatten(f2), bow));
        super::Losses {
            total: game.d_loss(r1.clone(), g1.clone(), 1.0) + game.d_loss(r2.clone(), g2.clone(), 1.0),
            terms: vec![
                ("d1_real", game.mean_output(r1)),
                ("d1_fake", game.mean_output(g1)),
                ("d_real", game.mean_output(r2)),
                ("d_fake", game.mean_output(g2)),
            ],
        }
    }
}

/// [B, C, H, W] → [B, C·H·W].
pub fn flatten(t: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = t.dims();
    t.reshape([b, c * h * w])
}

/// Nearest-neighbour ×2 upsampling of [B, C, H, W].
pub fn upsample2(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1]).repeat_dim(3, 2).repeat_dim(5, 2).reshape([b, c, 2 * h, 2 * w])
}

/// 2×2 average pooling of flattened images [B, C·H·W] → [B, C·(H/2)·(W/2)] (the real images
/// stage I's discriminator sees).
pub fn downsample2(x: Tensor<2>, shape: ImageShape) -> Tensor<2> {
    let b = x.dims()[0];
    let (c, h2, w2) = (shape.channels, shape.height / 2, shape.width / 2);
    x.reshape([b, c, h2, 2, w2, 2]).mean_dim(5).mean_dim(3).reshape([b, c * h2 * w2])
}

fn build(spec: &ModelSpec, seed: u64, device: &Device) -> Net {
    let rng = &mut crate::util::rng(seed, crate::util::Stream::Init, 0);
    let vocab = spec.text.as_ref().map_or(1, |t| t.vocab.len().max(1));
    let z_dim = spec.latent_dim.saturating_sub(CA_DIM);
    if let Some(w) = spec.width {
        let half = ImageShape { height: spec.shape.height / 2, width: spec.shape.width / 2, ..spec.shape };
        return Net::StackScaled(Stack {
            g1: ScaledOne {
                ca: CondAug::new(vocab, rng, device),
                body: UpStack::new(z_dim + CA_DIM, half, w, rng, device),
                channels: spec.shape.channels,
                side: half.height,
            },
            d1: ScaledD::new(half, vocab, w, rng, device),
            g2: ScaledTwo::new(vocab, spec.shape, w, rng, device),
            d2: ScaledD::new(spec.shape, vocab, w, rng, device),
            vocab,
            z_dim,
        });
    }
    Net::Stack(StackGan {
        g1: StageOne::new(z_dim, vocab, spec.shape, rng, device),
        d1: StageD::new(spec.shape, vocab, false, rng, device),
        g2: StageTwo::new(vocab, spec.shape, rng, device),
        d2: StageD::new(spec.shape, vocab, true, rng, device),
        vocab,
        z_dim,
    })
}

fn check(spec: &ModelSpec) -> Result<()> {
    registry::divisible_by_4(spec)?;
    if spec.width.is_some() && spec.shape.height < 32 {
        bail!(
            "stackgan's scaled networks draw stage I at half the image's side, and need that side to be at least 16: \
             these images are {}×{} (use --image-size 32 or more)",
            spec.shape.height,
            spec.shape.width
        );
    }
    if spec.latent_dim <= CA_DIM {
        bail!(
            "stackgan's code is [z; ε] with {CA_DIM} conditioning-noise entries: --latent-dim must be above {CA_DIM}, \
             got {}",
            spec.latent_dim
        );
    }
    match &spec.text {
        Some(t) if !t.vocab.is_empty() => Ok(()),
        _ => bail!("stackgan needs captions: the run has no vocabulary"),
    }
}

/// The StackGAN's optimisers: each stage's G and D, β1 = 0.5 as in DCGAN.
pub const OPTIMIZERS: &[Adam] = &[
    Adam { updates: "stage I G", beta1: 0.5 },
    Adam { updates: "stage I D", beta1: 0.5 },
    Adam { updates: "stage II G", beta1: 0.5 },
    Adam { updates: "stage II D", beta1: 0.5 },
];

pub const DECL: ModelDecl = ModelDecl {
    name: "stackgan",
    family: Family::Adversarial,
    conditional: true,
    variational: false,
    text: true,
    options: &["lr_d", "label_smoothing", "beta", "width", "negation_scope"],
    defaults: |_| crate::config::Options { beta: Some(1.0), ..registry::gan_defaults(6) },
    optimizers: OPTIMIZERS,
    game: Some(GameLoss::NonSaturating),
    d_conv3: false,
    held_out: HeldOut {
        units: "test, with class captions: D's BCE losses (loss: both stages'), mean D(x) and D(G(z)) of stage I \
                (d1_real, d1_fake) and stage II (d_real, d_fake)",
        lower_is_better: false,
    },
    collapse_below: Some(0.01),
    build,
    check,
    activations: "stage I G: Linear → BN → ReLU → ConvT → BN → ReLU → Conv3×3 → tanh; stage II G: Conv → ReLU → \
                  Conv3×3 → BN → ReLU → ConvT → BN → ReLU → ConvT → tanh",
};

#[cfg(test)]
mod tests;
