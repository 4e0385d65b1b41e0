//! FLOPs of one training step, counted from the layer shapes. Only the multiply-adds of linear
//! and (transposed) convolution layers count (2 FLOPs each); element-wise work, batch norm and the
//! optimiser are left out, as is usual for "model FLOPs". Per layer with `m` multiply-adds per
//! sample: forward 2m, weight gradient 2m, input gradient 2m unless the layer's input needs no
//! gradient (data, or a detached tensor).

use crate::data::ImageShape;
use crate::models::dcgan::{D_CH, G_CH};

/// Multiply-adds per sample of a fully connected layer.
pub fn linear_macs(fan_in: usize, fan_out: usize) -> u64 {
    (fan_in * fan_out) as u64
}

/// Multiply-adds per sample of a k×k convolution producing `cout`×`oh`×`ow`.
pub fn conv_macs(cin: usize, cout: usize, k: usize, oh: usize, ow: usize) -> u64 {
    (cin * cout * k * k * oh * ow) as u64
}

/// Multiply-adds per sample of a k×k transposed convolution reading `cin`×`ih`×`iw`
/// (every input pixel scatters a k×k×cout patch).
pub fn conv_t_macs(cin: usize, cout: usize, k: usize, ih: usize, iw: usize) -> u64 {
    (cin * cout * k * k * ih * iw) as u64
}

/// Forward + both gradients of a stack whose first layer's input needs no gradient.
fn stack_step(macs: &[u64]) -> u64 {
    let total: u64 = macs.iter().sum();
    6 * total - 2 * macs.first().copied().unwrap_or(0)
}

/// MLP VAE: encoder `[d, hidden…]`, heads μ and log σ², decoder `[latent, hidden reversed…, d]`.
pub fn mlp_vae_layers(d: usize, hidden: &[usize], latent: usize) -> Vec<u64> {
    let mut dims = vec![d];
    dims.extend_from_slice(hidden);
    let h = *dims.last().unwrap_or(&d);
    let mut macs: Vec<u64> = dims.windows(2).map(|w| linear_macs(w[0], w[1])).collect();
    macs.push(2 * linear_macs(h, latent));
    let mut dec = vec![latent];
    dec.extend(hidden.iter().rev());
    dec.push(d);
    macs.extend(dec.windows(2).map(|w| linear_macs(w[0], w[1])));
    macs
}

/// FLOPs per sample of one VAE step (the decoder's input z depends on the encoder's parameters, so
/// only the very first layer skips its input gradient).
pub fn mlp_vae_step(d: usize, hidden: &[usize], latent: usize) -> u64 {
    stack_step(&mlp_vae_layers(d, hidden, latent))
}

/// (generator, discriminator) multiply-adds per layer of `models::dcgan` for `shape` (D with its
/// 3×3 layer, as `train dcgan` builds it).
pub fn dcgan_layers(shape: ImageShape, latent: usize) -> (Vec<u64>, Vec<u64>) {
    let (h4, w4, c) = (shape.height / 4, shape.width / 4, shape.channels);
    let g = vec![
        linear_macs(latent, G_CH * h4 * w4),
        conv_t_macs(G_CH, D_CH, 4, h4, w4),
        conv_t_macs(D_CH, c, 4, 2 * h4, 2 * w4),
    ];
    let d = vec![
        conv_macs(c, D_CH, 4, 2 * h4, 2 * w4),
        conv_macs(D_CH, G_CH, 4, h4, w4),
        conv_macs(G_CH, G_CH, 3, h4, w4),
        linear_macs(G_CH * h4 * w4, 1),
    ];
    (g, d)
}

/// FLOPs per sample of one DCGAN step as `train::adversarial::gan_step` runs it (d_steps = 1):
/// G forward once; D forward + backward on real and on detached fake (first layer: no input
/// gradient); then D forward on the same fake and, with D frozen, only D's input gradients into
/// G's backward.
pub fn dcgan_step(shape: ImageShape, latent: usize) -> u64 {
    let (g, d) = dcgan_layers(shape, latent);
    gan_step(&g, &d)
}

/// (generator, discriminator) multiply-adds per layer of the scaled DCGAN (`models::pyramid`) of
/// width `w`: Linear z → 8w·4·4, up-convolutions to the image; D mirrors them, then 8w·4·4 → 1.
pub fn scaled_dcgan_layers(shape: ImageShape, width: usize, latent: usize) -> (Vec<u64>, Vec<u64>) {
    let k = crate::models::pyramid::depth(shape).expect("a size the scaled networks serve");
    let ch = |i: usize| ((8 * width) >> i).max(1);
    let mut g = vec![linear_macs(latent, ch(0) * 16)];
    let mut d = Vec::new();
    for i in 0..k {
        let side = 4 << i; // the input side of the i-th up-convolution
        let cout = if i + 1 == k { shape.channels } else { ch(i + 1) };
        g.push(conv_t_macs(ch(i), cout, 4, side, side));
        // D's convolution at the mirrored place writes ch(i) channels at this side.
        d.push(conv_macs(cout, ch(i), 4, side, side));
    }
    d.reverse();
    d.push(linear_macs(ch(0) * 16, 1));
    (g, d)
}

/// FLOPs per sample of one step of a GAN of these layers (see `dcgan_step`).
pub fn gan_step(g: &[u64], d: &[u64]) -> u64 {
    let ds: u64 = d.iter().sum();
    let d_update = 2 * stack_step(d); // real and detached fake
    let g_update = 4 * ds + stack_step(g);
    d_update + g_update
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlp_vae_matches_a_hand_count() {
        // 784-400-(20,20) / 20-400-784: 313,600 + 16,000 + 8,000 + 313,600 multiply-adds, and
        // 6× that minus 2× the first layer (its input is data).
        let m: u64 = mlp_vae_layers(784, &[400], 20).iter().sum();
        assert_eq!(m, 651_200);
        assert_eq!(mlp_vae_step(784, &[400], 20), 6 * 651_200 - 2 * 313_600);
    }

    #[test]
    fn dcgan_matches_a_hand_count() {
        let s = ImageShape { channels: 1, height: 28, width: 28 };
        let (g, d) = dcgan_layers(s, 100);
        // G: 100→6272, ConvT 128→64 on 7×7, ConvT 64→1 on 14×14
        assert_eq!(g, vec![627_200, 6_422_528, 200_704]);
        // D: Conv 1→64 to 14×14, Conv 64→128 to 7×7, Conv3×3 128→128 on 7×7, 6272→1
        assert_eq!(d, vec![200_704, 6_422_528, 7_225_344, 6_272]);
        let (gs, ds) = (7_250_432u64, 13_854_848u64);
        assert_eq!(dcgan_step(s, 100), 6 * gs - 2 * 627_200 + 16 * ds - 4 * 200_704);
    }

    /// pytorch/examples' 64×64 DCGAN (ngf = ndf = 64), layer by layer.
    #[test]
    fn scaled_dcgan_matches_a_hand_count() {
        let s = ImageShape { channels: 3, height: 64, width: 64 };
        let (g, d) = scaled_dcgan_layers(s, 64, 100);
        // G: 100→512·16; ConvT 512→256 on 4×4, 256→128 on 8×8, 128→64 on 16×16, 64→3 on 32×32.
        let up = |a: u64, b: u64, side: u64| a * b * 16 * side * side;
        assert_eq!(g, vec![100 * 8192, up(512, 256, 4), up(256, 128, 8), up(128, 64, 16), up(64, 3, 32)]);
        // D: Conv 3→64 to 32×32, 64→128 to 16×16, 128→256 to 8×8, 256→512 to 4×4, 8192→1.
        assert_eq!(d, vec![up(3, 64, 32), up(64, 128, 16), up(128, 256, 8), up(256, 512, 4), 8192]);
    }
}
