//! The feature network of a dataset without class labels but with binary attributes (CelebA
//! faces): a multi-label attribute classifier whose penultimate layer is the same 128-d feature
//! space FID, KID and precision/recall use, and whose per-attribute sigmoids label samples for
//! `attribute_gap`.
//!
//! Conv(C→32, 4, stride 2, pad 1) → BN → LeakyReLU(0.2) → Conv(32→64) → BN → LReLU →
//! Conv(64→128) → BN → LReLU → Conv(128→256) → BN → LReLU [→ Conv(256→256) … while the map is
//! larger than 4×4] → Linear(→128) → ReLU [features] → Linear(→k) [attribute logits].
//!
//! Why strided convolutions with batch norm rather than the class net's ReLU + max-pool stages:
//! colour faces at 64 px need four or more halvings before a linear read-out, and at stride 2
//! each convolution runs on a quarter of the positions a same-size convolution before a pool
//! would, so the deeper net costs about what two pooled stages do (training must fit in minutes
//! on two cores). Batch norm keeps the four-layer stack trainable at Adam's 1e-3 from the first
//! epoch — only a few epochs fit the budget — and LeakyReLU(0.2) keeps gradients through
//! dark, low-contrast regions (the DCGAN discriminator's choices, a proven stack for these images).
//! Training: binary cross-entropy on all k attributes (multi-label), random horizontal flips
//! (faces are near-symmetric and 9,000 of them are few), Adam with the step size on a cosine
//! from `Recipe::lr` down over the epochs.

use super::features::{FEATURE_DIM, FeatureMeta, NetKind, RECIPE_ATTR, Recipe, data_hash};
use crate::data::{Attributes, Dataset, ImageShape, Splits};
use crate::kernels::{self, Act};
use crate::models::blocks::{linear, matrix, to_vec};
use anyhow::{Context, Result, bail};
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, PaddingConfig2d};
use burn::optim::GradientsParams;
use burn::prelude::*;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Channels of the successive stride-2 blocks (the last repeats for larger images).
const WIDTHS: [usize; 4] = [32, 64, 128, 256];
/// Side of the smallest map the blocks stop at (at least four blocks always run).
const FINAL_SIDE: usize = 4;

#[derive(Module, Debug)]
pub struct AttrNet {
    pub convs: Vec<Conv2d>,
    pub bns: Vec<BatchNorm>,
    pub fc: Linear,
    pub out: Linear,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// Conv(4×4, stride 2, pad 1) with PyTorch's default U(−1/√fan_in, 1/√fan_in), from our stream.
fn down(cin: usize, cout: usize, rng: &mut ChaCha8Rng, device: &Device) -> Conv2d {
    let mut c = Conv2dConfig::new([cin, cout], [4, 4])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device);
    let k = 1.0 / ((cin * 16) as f32).sqrt();
    let w: Vec<f32> = (0..cout * cin * 16).map(|_| rng.random_range(-k..k)).collect();
    let b: Vec<f32> = (0..cout).map(|_| rng.random_range(-k..k)).collect();
    c.weight = Param::from_data(TensorData::new(w, [cout, cin, 4, 4]), device);
    c.bias = Some(Param::from_data(TensorData::new(b, [cout]), device));
    c
}

/// Output side of a Conv(4, stride 2, pad 1).
fn halve(s: usize) -> usize {
    (s + 2 - 4) / 2 + 1
}

/// Channel widths of the blocks and the side of the last map, for a square side ≥ 16.
fn plan(side: usize) -> (Vec<usize>, usize) {
    let (mut widths, mut s) = (Vec::new(), side);
    while widths.len() < WIDTHS.len() || s > FINAL_SIDE {
        widths.push(WIDTHS[widths.len().min(WIDTHS.len() - 1)]);
        s = halve(s);
    }
    (widths, s)
}

/// The images an attribute network can take: square, side 16–256.
pub fn check_shape(shape: ImageShape) -> Result<()> {
    if shape.height != shape.width || !(16..=256).contains(&shape.height) {
        bail!("the attribute network needs square images of side 16–256, got {}×{}", shape.height, shape.width);
    }
    Ok(())
}

impl AttrNet {
    pub fn new(shape: ImageShape, k: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let (widths, s) = plan(shape.height);
        let mut cin = shape.channels;
        let (mut convs, mut bns) = (Vec::new(), Vec::new());
        for &w in &widths {
            convs.push(down(cin, w, rng, device));
            bns.push(BatchNormConfig::new(w).init(device));
            cin = w;
        }
        AttrNet {
            convs,
            bns,
            fc: linear(cin * s * s, FEATURE_DIM, rng, device),
            out: linear(FEATURE_DIM, k, rng, device),
            channels: shape.channels,
            height: shape.height,
            width: shape.width,
        }
    }

    /// (features [B, 128], attribute logits [B, k]) for flattened images in [0,1].
    pub fn forward(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let b = x.dims()[0];
        let mut x = x.reshape([b, self.channels, self.height, self.width]);
        for (c, bn) in self.convs.iter().zip(&self.bns) {
            x = kernels::batch_norm(bn, kernels::conv2d(c, x, Act::None), Act::LeakyRelu(0.2));
        }
        let f = kernels::flatten_linear(&self.fc, x, Act::Relu);
        let logits = kernels::linear(&self.out, f.clone(), Act::None);
        (f, logits)
    }

    /// Make the batch-norm running statistics current before inference (see `dcgan::sync_bn`).
    fn sync_running_stats(&self) {
        crate::models::dcgan::sync_bn(&self.bns.iter().collect::<Vec<_>>());
    }
}

/// The recipe of cached attribute networks. One epoch over CelebA's 8,976 training faces at 64 px
/// takes ~22 s on two cores; 8 epochs (~3 min in all) reach 89.1 % mean held-out accuracy over
/// the 40 attributes (majority answers: 80.5 %). Measured on the 10,000-face folder: 5 epochs
/// with a last-epoch drop gave 89.06 %, 7 at a constant rate then a drop 88.96 %, 6 on a cosine
/// from 2e-3 88.91 %, 8 on a cosine from 1e-3 89.11 %.
pub fn standard_recipe(_splits: &Splits) -> Recipe {
    Recipe { epochs: 8, batch_size: 64, lr: 1e-3, seed: 2024 }
}

/// Train with a fixed seed; returns the network (inference form) and its metadata, with its
/// per-attribute accuracy on the test split.
pub fn train(splits: &Splits, recipe: &Recipe, verbose: bool) -> Result<(AttrNet, FeatureMeta)> {
    let t0 = std::time::Instant::now();
    let ad = Device::flex().autodiff();
    let train = &splits.train;
    check_shape(train.shape)?;
    let attrs = train.attributes.as_ref().context("the attribute network needs attributes")?;
    let k = attrs.k();
    if k == 0 || attrs.n() != train.n {
        bail!("dataset '{}': {} attribute rows of {k} for {} images", splits.name, attrs.n(), train.n);
    }
    let (d, shape) = (train.shape.len(), train.shape);
    let mut rng = crate::util::rng(recipe.seed, crate::util::Stream::Init, 0);
    let mut net = AttrNet::new(shape, k, &mut rng, &ad);
    let mut opt = crate::train::optim::FusedAdam::new(0.9).init();
    let steps_per_epoch = train.n.div_ceil(recipe.batch_size);
    for epoch in 0..recipe.epochs {
        let mut order: Vec<usize> = (0..train.n).collect();
        order.shuffle(&mut crate::util::rng(recipe.seed, crate::util::Stream::Shuffle, epoch as u64));
        let mut flips = crate::util::rng(recipe.seed, crate::util::Stream::Noise, epoch as u64);
        let lr = cosine(recipe.lr, epoch, recipe.epochs);
        let mut last = 0.0;
        for (b, idx) in order.chunks(recipe.batch_size).enumerate() {
            if idx.len() < 2 {
                continue; // batch norm needs two images
            }
            let mut x = Vec::with_capacity(idx.len() * d);
            let mut y = Vec::with_capacity(idx.len() * k);
            for &i in idx {
                push_image(&mut x, train.image(i), shape, flips.random_bool(0.5));
                y.extend(attrs.row(i).iter().map(|&v| f32::from(v)));
            }
            let x = matrix(x, idx.len(), d, &ad);
            let (_, logits) = net.forward(x);
            let loss = kernels::bce_logits_rows(logits, matrix(y, idx.len(), k, &ad)).mean().div_scalar(k as f64);
            if b % 50 == 0 || b + 1 == steps_per_epoch {
                last = to_vec(loss.clone())[0] as f64;
            }
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = opt.step(lr, net, grads);
        }
        if verbose {
            eprintln!(
                "  attribute network epoch {}/{}: train BCE {last:.4} ({:.0} s)",
                epoch + 1,
                recipe.epochs,
                t0.elapsed().as_secs_f64()
            );
        }
    }
    net.sync_running_stats();
    let net = net.valid();
    let mut meta = FeatureMeta {
        dataset: splits.name.clone(),
        data_hash: data_hash(splits),
        shape,
        classes: 0,
        epochs: recipe.epochs,
        seed: recipe.seed,
        recipe: RECIPE_ATTR,
        test_accuracy: 0.0,
        train_seconds: 0.0,
        weights_sha256: super::features::content_hash(&net),
        kind: NetKind::Attributes,
        attribute_names: attrs.names.clone(),
        attribute_accuracy: Vec::new(),
    };
    let test = &splits.test;
    let test_attrs = test.attributes.as_ref().context("the test split has no attributes")?;
    let probs = probs_of(&net, test, &Device::flex())?;
    meta.attribute_accuracy = accuracy_per_attribute(&probs, test_attrs)?;
    meta.test_accuracy = mean(&meta.attribute_accuracy);
    meta.train_seconds = t0.elapsed().as_secs_f64();
    if verbose {
        eprintln!(
            "  attribute network: mean held-out accuracy {:.2} % over {k} attributes ({:.0} s)",
            meta.test_accuracy * 100.0,
            meta.train_seconds
        );
    }
    Ok((net, meta))
}

/// The step size of `epoch` (of `epochs`): half a cosine from `lr` down, one value per epoch.
fn cosine(lr: f64, epoch: usize, epochs: usize) -> f64 {
    lr * 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / epochs.max(1) as f64).cos())
}

/// Append an image (u8, C×H×W) as [0,1] floats, mirrored left–right when `flip`.
fn push_image(out: &mut Vec<f32>, img: &[u8], shape: ImageShape, flip: bool) {
    let w = shape.width;
    for row in img.chunks(w) {
        if flip {
            out.extend(row.iter().rev().map(|&p| p as f32 / 255.0));
        } else {
            out.extend(row.iter().map(|&p| p as f32 / 255.0));
        }
    }
}

/// Sigmoid probabilities [n×k] of a dataset's images, batched, converting bytes batch by batch.
fn probs_of(net: &AttrNet, data: &Dataset, device: &Device) -> Result<Vec<f32>> {
    let d = data.shape.len();
    let mut probs = Vec::new();
    for start in (0..data.n).step_by(500) {
        let end = (start + 500).min(data.n);
        let x = super::features::unit(&data.images[start * d..end * d]);
        let (_, logits) = net.forward(matrix(x, end - start, d, device));
        probs.extend(to_vec(burn::tensor::activation::sigmoid(logits)));
    }
    Ok(probs)
}

/// Per attribute, the share of images whose thresholded probability (> 0.5) matches the label.
pub fn accuracy_per_attribute(probs: &[f32], attrs: &Attributes) -> Result<Vec<f64>> {
    let (k, n) = (attrs.k(), attrs.n());
    if probs.len() != n * k {
        bail!("{} probabilities for {n} images × {k} attributes", probs.len());
    }
    let mut hits = vec![0usize; k];
    for (p, y) in probs.chunks(k.max(1)).zip(attrs.values.chunks(k.max(1))) {
        for j in 0..k {
            hits[j] += usize::from((p[j] > super::attributes::THRESHOLD) == (y[j] == 1));
        }
    }
    Ok(hits.iter().map(|&h| h as f64 / n.max(1) as f64).collect())
}

pub(crate) fn mean(v: &[f64]) -> f64 {
    if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_stops_at_a_small_map() {
        assert_eq!(plan(64), (vec![32, 64, 128, 256], 4));
        assert_eq!(plan(32), (vec![32, 64, 128, 256], 2));
        assert_eq!(plan(16), (vec![32, 64, 128, 256], 1));
        assert_eq!(plan(128), (vec![32, 64, 128, 256, 256], 4));
        assert_eq!(plan(256), (vec![32, 64, 128, 256, 256, 256], 4));
        assert_eq!(plan(48).1, 3);
        assert!(check_shape(ImageShape { channels: 3, height: 8, width: 8 }).is_err());
        assert!(check_shape(ImageShape { channels: 3, height: 32, width: 16 }).is_err());
    }

    #[test]
    fn flips_mirror_each_row_of_each_channel() {
        let shape = ImageShape { channels: 2, height: 2, width: 3 };
        let img: Vec<u8> = (0..12).collect();
        let mut out = Vec::new();
        push_image(&mut out, &img, shape, true);
        let want: Vec<f32> = [2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9].iter().map(|&v| v as f32 / 255.0).collect();
        assert_eq!(out, want);
    }

    /// A cache file's meta from before attribute networks loads as a class network.
    #[test]
    fn old_meta_loads_as_a_class_network() {
        let old = r#"{"dataset":"mnist","data_hash":"ab","shape":{"channels":1,"height":28,"width":28},
            "classes":10,"epochs":4,"seed":2024,"recipe":1,"test_accuracy":0.99,"train_seconds":60.0,
            "weights_sha256":"00"}"#;
        let m: FeatureMeta = serde_json::from_str(old).unwrap();
        assert_eq!((m.kind, m.outputs(), m.attribute_accuracy_mean()), (NetKind::Classes, 10, None));
        // …and a class network's meta is written without the attribute keys.
        let v = serde_json::to_value(&m).unwrap();
        assert!(v.get("attribute_names").is_none() && v["kind"] == "classes");
    }

    #[test]
    fn accuracy_per_attribute_counts_thresholded_matches() {
        let attrs = Attributes { names: vec!["a".into(), "b".into()], values: vec![1, 0, 0, 0, 1, 1] };
        let probs = [0.9, 0.2, 0.6, 0.4, 0.7, 0.4];
        // a: 0.9→1 ✓, 0.6→1 ✗, 0.7→1 ✓ = 2/3; b: 0.2→0 ✓, 0.4→0 ✓, 0.4→0 ✗ = 2/3.
        let acc = accuracy_per_attribute(&probs, &attrs).unwrap();
        assert!((acc[0] - 2.0 / 3.0).abs() < 1e-12 && (acc[1] - 2.0 / 3.0).abs() < 1e-12, "{acc:?}");
        assert!(accuracy_per_attribute(&probs[..5], &attrs).is_err());
    }
}
