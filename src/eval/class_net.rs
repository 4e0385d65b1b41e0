//! The class network: the feature network of a dataset with class labels (MNIST, Fashion-MNIST,
//! CIFAR-10, digits, image folders with classes), a small CNN softmax classifier.
//!
//! Conv(C→32, 3, pad 1) → ReLU → MaxPool 2 → Conv(32→64, 3, pad 1) → ReLU → MaxPool 2 →
//! Linear(→128) → ReLU [features] → Linear(→classes) [logits].

use super::features::{
    FEATURE_DIM, FeatureMeta, Features, NetKind, RECIPE, Recipe, accuracy, content_hash, data_hash, unit,
};
use crate::data::{ImageShape, Splits};
use crate::kernels::{self, Act};
use crate::models::blocks::{linear, matrix, one_hot, to_vec};
use anyhow::{Context, Result};
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{Linear, PaddingConfig2d};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

#[derive(Module, Debug)]
pub struct FeatureNet {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub fc: Linear,
    pub out: Linear,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

fn conv3(cin: usize, cout: usize, rng: &mut ChaCha8Rng, device: &Device) -> Conv2d {
    let mut c = Conv2dConfig::new([cin, cout], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device);
    // PyTorch's default U(−1/√fan_in, 1/√fan_in) from our seeded stream (burn's global RNG is shared).
    let k = 1.0 / ((cin * 9) as f32).sqrt();
    let w: Vec<f32> = (0..cout * cin * 9).map(|_| rng.random_range(-k..k)).collect();
    let b: Vec<f32> = (0..cout).map(|_| rng.random_range(-k..k)).collect();
    c.weight = Param::from_data(TensorData::new(w, [cout, cin, 3, 3]), device);
    c.bias = Some(Param::from_data(TensorData::new(b, [cout]), device));
    c
}

impl FeatureNet {
    pub fn new(shape: ImageShape, classes: usize, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let flat = 64 * (shape.height / 4) * (shape.width / 4);
        FeatureNet {
            conv1: conv3(shape.channels, 32, rng, device),
            conv2: conv3(32, 64, rng, device),
            fc: linear(flat, FEATURE_DIM, rng, device),
            out: linear(FEATURE_DIM, classes, rng, device),
            channels: shape.channels,
            height: shape.height,
            width: shape.width,
        }
    }

    /// (features [B, 128], logits [B, classes]) for flattened images in [0,1].
    pub fn forward(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let b = x.dims()[0];
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let x = x.reshape([b, self.channels, self.height, self.width]);
        let x = kernels::max_pool2d(&pool, kernels::conv2d(&self.conv1, x, Act::Relu));
        let x = kernels::max_pool2d(&pool, kernels::conv2d(&self.conv2, x, Act::Relu));
        let f = kernels::flatten_linear(&self.fc, x, Act::Relu);
        let logits = kernels::linear(&self.out, f.clone(), Act::None);
        (f, logits)
    }
}

/// Train with a fixed seed; returns the network (inference form) and its metadata.
pub fn train(splits: &Splits, recipe: &Recipe, verbose: bool) -> Result<(FeatureNet, FeatureMeta)> {
    let t0 = std::time::Instant::now();
    let base = Device::flex();
    let ad = base.clone().autodiff();
    let train = &splits.train;
    let classes = train.num_classes.max(2);
    let labels = train.labels.as_ref().context("feature network needs labels")?;
    let d = train.shape.len();
    let mut rng = crate::util::rng(recipe.seed, crate::util::Stream::Init, 0);
    let mut net = FeatureNet::new(train.shape, classes, &mut rng, &ad);
    let mut opt = crate::train::optim::FusedAdam::new(0.9).init();
    let images = unit(&train.images);
    let steps_per_epoch = train.n.div_ceil(recipe.batch_size);
    for epoch in 0..recipe.epochs {
        let mut order: Vec<usize> = (0..train.n).collect();
        order.shuffle(&mut crate::util::rng(recipe.seed, crate::util::Stream::Shuffle, epoch as u64));
        // A lower step size for the last epoch: a cheap anneal worth a few tenths of a percent.
        let lr = if epoch + 1 == recipe.epochs && recipe.epochs > 1 { recipe.lr * 0.3 } else { recipe.lr };
        let mut sum = 0.0;
        for (b, idx) in order.chunks(recipe.batch_size).enumerate() {
            let mut x = Vec::with_capacity(idx.len() * d);
            for &i in idx {
                x.extend_from_slice(&images[i * d..(i + 1) * d]);
            }
            let y: Vec<u8> = idx.iter().map(|&i| labels[i]).collect();
            let x = matrix(x, idx.len(), d, &ad);
            let (_, logits) = net.forward(x);
            let loss = (one_hot(&y, classes, &ad) * log_softmax(logits, 1)).sum_dim(1).mean().neg();
            if b % 50 == 0 || b + 1 == steps_per_epoch {
                sum = to_vec(loss.clone())[0] as f64;
            }
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = opt.step(lr, net, grads);
        }
        if verbose {
            eprintln!("  feature network epoch {}/{}: train loss {sum:.4}", epoch + 1, recipe.epochs);
        }
    }
    let net = net.valid();
    let probe = Features::in_memory(
        net.clone().into(),
        FeatureMeta {
            dataset: splits.name.clone(),
            data_hash: data_hash(splits),
            shape: train.shape,
            classes,
            epochs: recipe.epochs,
            seed: recipe.seed,
            recipe: RECIPE,
            test_accuracy: 0.0,
            train_seconds: 0.0,
            weights_sha256: String::new(),
            kind: NetKind::Classes,
            attribute_names: Vec::new(),
            attribute_accuracy: Vec::new(),
        },
    );
    let acc = accuracy(&probe, &splits.test)?;
    let mut meta = probe.meta;
    meta.test_accuracy = acc;
    meta.train_seconds = t0.elapsed().as_secs_f64();
    meta.weights_sha256 = content_hash(&net);
    if verbose {
        eprintln!("  feature network test accuracy {:.2} % ({:.0} s)", acc * 100.0, meta.train_seconds);
    }
    Ok((net, meta))
}
