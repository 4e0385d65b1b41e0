//! The convolutional bodies that scale with the image (Radford et al. 2016, as pytorch/examples'
//! `dcgan` builds them), kept apart from the models that train them (as pythae keeps its
//! `nn/benchmarks/*` networks apart from its VAEs) so one body serves the DCGAN, the LSGAN and the
//! convolutional VAE alike.
//!
//! For a square image of side S = 4·2ᵏ (k ≥ 2: 16, 32, 64, 128, 256 px) and width w:
//! - `UpStack` (a generator or decoder): Linear(in → 8w·4·4) → BN → ReLU, then k transposed
//!   convolutions (4, stride 2, pad 1), each doubling the side and halving the channels
//!   (8w → 4w → 2w → w …), BN + ReLU between them, the last to the image's channels.
//!   The Linear is pytorch/examples' ConvTranspose(nz, 8w, 4, 1, 0) on a 1×1 input, written as
//!   what it is.
//! - `DownStack` (a discriminator or encoder): k convolutions (4, stride 2, pad 1) mirroring it,
//!   LeakyReLU(0.2) after each and BN on all but the first, ending at 8w·4·4 features.
//!
//! 64×64 at w = 64 (`REFERENCE_WIDTH`) is pytorch/examples' network exactly (up to the bias of layers that a batch norm
//! follows, which BN cancels). The 28×28 MNIST networks (`dcgan.rs`, `vae.rs`) are not these:
//! they stay as they were measured.

use super::blocks::linear;
use super::dcgan::{conv, conv_t};
use crate::data::ImageShape;
use crate::kernels::{self, Act};
use burn::module::Module;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::{BatchNorm, BatchNormConfig, Linear};
use burn::prelude::*;
use rand_chacha::ChaCha8Rng;

/// Side of the first (generator) and last (discriminator) feature map.
pub const BASE: usize = 4;
/// `--width` unless given: half pytorch/examples' `ngf`/`ndf` of 64. A step costs a quarter
/// as much (~240 vs ~70 faces/s at 64×64 on 2 cores), and in a fixed budget of minutes
/// four times the updates gave better faces than the wider network (README, "Faces").
pub const DEFAULT_WIDTH: usize = 32;
/// pytorch/examples' `ngf`/`ndf` (the 64×64 row of `bench` times this network).
pub const REFERENCE_WIDTH: usize = 64;
/// Sides the scaled bodies serve: square powers of two from 16 to 256.
pub const SIDES: [usize; 5] = [16, 32, 64, 128, 256];

/// Stride-2 layers between the 4×4 base and an image of this shape, if the scaled bodies serve it.
pub fn depth(shape: ImageShape) -> Option<usize> {
    (shape.height == shape.width && SIDES.contains(&shape.height))
        .then(|| (shape.height / BASE).trailing_zeros() as usize)
}

/// Channels of the feature map `i` levels above the 4×4 base (8w, 4w, 2w, w, w/2, …, at least 1).
fn channels(width: usize, i: usize) -> usize {
    ((8 * width) >> i).max(1)
}

#[derive(Module, Debug)]
pub struct UpStack {
    pub fc: Linear,
    pub bn0: BatchNorm,
    pub ups: Vec<ConvTranspose2d>,
    /// After every up-convolution but the last.
    pub bns: Vec<BatchNorm>,
    pub base_channels: usize,
}

impl UpStack {
    pub fn new(input: usize, shape: ImageShape, width: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let k = depth(shape).expect("checked by ModelSpec::validate");
        let c0 = channels(width, 0);
        let fc = linear(input, c0 * BASE * BASE, rng, device);
        let mut ups = Vec::with_capacity(k);
        let mut bns = Vec::with_capacity(k - 1);
        for i in 0..k {
            let cout = if i + 1 == k { shape.channels } else { channels(width, i + 1) };
            ups.push(conv_t(channels(width, i), cout, rng, device));
            if i + 1 < k {
                bns.push(BatchNormConfig::new(cout).init(device));
            }
        }
        UpStack { fc, bn0: BatchNormConfig::new(c0).init(device), ups, bns, base_channels: c0 }
    }

    /// Flattened images [B, C·S·S] for inputs [B, in], with `last` after the last layer.
    pub fn forward(&self, z: Tensor<2>, last: Act) -> Tensor<2> {
        let b = z.dims()[0];
        let x = kernels::linear(&self.fc, z, Act::None).reshape([b, self.base_channels, BASE, BASE]);
        let mut x = kernels::batch_norm(&self.bn0, x, Act::Relu);
        let k = self.ups.len();
        for (i, up) in self.ups.iter().enumerate() {
            if i + 1 == k {
                x = kernels::conv_transpose2d(up, x, last);
            } else {
                x = kernels::batch_norm(&self.bns[i], kernels::conv_transpose2d(up, x, Act::None), Act::Relu);
            }
        }
        let [b, c, h, w] = x.dims();
        x.reshape([b, c * h * w])
    }

    pub fn batch_norms(&self) -> Vec<&BatchNorm> {
        std::iter::once(&self.bn0).chain(&self.bns).collect()
    }
}

#[derive(Module, Debug)]
pub struct DownStack {
    pub downs: Vec<Conv2d>,
    /// After every convolution but the first.
    pub bns: Vec<BatchNorm>,
    pub channels: usize,
    pub side: usize,
}

impl DownStack {
    pub fn new(shape: ImageShape, width: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let k = depth(shape).expect("checked by ModelSpec::validate");
        let mut downs = Vec::with_capacity(k);
        let mut bns = Vec::with_capacity(k - 1);
        // Level k−1−j above the base is where the j-th convolution writes.
        for j in 0..k {
            let cin = if j == 0 { shape.channels } else { channels(width, k - j) };
            let cout = channels(width, k - 1 - j);
            downs.push(conv(cin, cout, rng, device));
            if j > 0 {
                bns.push(BatchNormConfig::new(cout).init(device));
            }
        }
        DownStack { downs, bns, channels: shape.channels, side: shape.height }
    }

    /// Length of the flattened features `forward` returns (8w·4·4).
    pub fn out_len(&self) -> usize {
        self.bns.last().map_or(self.channels, |bn| bn.gamma.dims()[0]) * BASE * BASE
    }

    /// Features [B, 8w, 4, 4] of flattened images [B, C·S·S].
    pub fn forward(&self, x: Tensor<2>) -> Tensor<4> {
        let b = x.dims()[0];
        let mut x = x.reshape([b, self.channels, self.side, self.side]);
        for (j, c) in self.downs.iter().enumerate() {
            x = if j == 0 {
                kernels::conv2d(c, x, Act::LeakyRelu(0.2))
            } else {
                kernels::batch_norm(&self.bns[j - 1], kernels::conv2d(c, x, Act::None), Act::LeakyRelu(0.2))
            };
        }
        x
    }

    pub fn batch_norms(&self) -> Vec<&BatchNorm> {
        self.bns.iter().collect()
    }
}

/// D of the scaled DCGAN: the down stack and a linear read-out of its 4×4 map (pytorch/examples'
/// Conv(8w, 1, 4, 1, 0), written as what it is).
#[derive(Module, Debug)]
pub struct ScaledDiscriminator {
    pub body: DownStack,
    pub fc: Linear,
}

impl ScaledDiscriminator {
    pub fn new(shape: ImageShape, width: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let body = DownStack::new(shape, width, rng, device);
        let fc = linear(body.out_len(), 1, rng, device);
        ScaledDiscriminator { body, fc }
    }
    /// Logits [B, 1] for flattened images.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        kernels::flatten_linear(&self.fc, self.body.forward(x), Act::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(c: usize, s: usize) -> ImageShape {
        ImageShape { channels: c, height: s, width: s }
    }

    /// pytorch/examples' layer list at 64×64 and the 3- and 5-layer stacks at 32 and 128.
    #[test]
    fn stacks_double_from_4x4_to_the_image_and_back() {
        let dev = Device::flex();
        let rng = &mut crate::util::rng(0, crate::util::Stream::Init, 0);
        for (side, layers) in [(32, 3), (64, 4), (128, 5)] {
            let s = shape(3, side);
            assert_eq!(depth(s), Some(layers));
            let g = UpStack::new(100, s, 8, rng, &dev);
            assert_eq!(g.ups.len(), layers);
            let chans: Vec<usize> = g.ups.iter().map(|u| u.weight.dims()[1]).collect();
            let mut want: Vec<usize> = (1..layers).map(|i| 64 >> i).collect();
            want.push(3);
            assert_eq!(chans, want, "G's output channels at {side} px");
            let x = g.forward(Tensor::zeros([2, 100], &dev), Act::Tanh);
            assert_eq!(x.dims(), [2, 3 * side * side]);
            let d = DownStack::new(s, 8, rng, &dev);
            assert_eq!(d.downs.len(), layers);
            assert_eq!(d.forward(x).dims(), [2, 64, 4, 4]);
            assert_eq!(d.out_len(), 64 * 16);
        }
        let g = UpStack::new(100, shape(3, 64), 64, rng, &dev);
        let dims: Vec<[usize; 4]> = g.ups.iter().map(|u| u.weight.dims()).collect();
        assert_eq!(dims, [[512, 256, 4, 4], [256, 128, 4, 4], [128, 64, 4, 4], [64, 3, 4, 4]]);
        assert_eq!(g.fc.weight.dims(), [100, 512 * 16]);
    }

    #[test]
    fn only_square_powers_of_two_from_16_to_256_scale() {
        for s in [28, 48, 8, 512] {
            assert_eq!(depth(shape(1, s)), None, "{s}");
        }
        assert_eq!(depth(ImageShape { channels: 3, height: 64, width: 32 }), None);
        assert_eq!(depth(shape(1, 16)), Some(2));
    }
}
