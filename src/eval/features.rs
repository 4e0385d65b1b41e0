//! The domain feature network: a small CNN classifier per dataset. Its penultimate layer (128
//! units) is the feature space of FID, KID and precision/recall; its softmax labels samples for
//! mode coverage. Inception features are the wrong domain for 28×28 digits and clothes, and a
//! Python-free tool cannot ship them, so every dataset gets its own, trained with a fixed seed and
//! cached by the hash of the training data; its weights' hash goes into every protocol.
//!
//! Conv(C→32, 3, pad 1) → ReLU → MaxPool 2 → Conv(32→64, 3, pad 1) → ReLU → MaxPool 2 →
//! Linear(→128) → ReLU [features] → Linear(→classes) [logits].

use crate::data::{Dataset, ImageShape, Splits};
use crate::kernels::{self, Act};
use crate::models::blocks::{linear, matrix, one_hot, to_vec};
use anyhow::{Context, Result, bail};
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{Linear, PaddingConfig2d};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::activation::{log_softmax, softmax};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const FEATURE_DIM: usize = 128;
/// Bumped whenever the architecture or training recipe changes, so stale caches are not reused.
const RECIPE: u32 = 1;
const MAGIC: &[u8; 8] = b"LLFEAT01";

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

/// What the cache file says about the network inside it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FeatureMeta {
    pub dataset: String,
    pub data_hash: String,
    pub shape: ImageShape,
    pub classes: usize,
    pub epochs: usize,
    pub seed: u64,
    pub recipe: u32,
    pub test_accuracy: f64,
    pub train_seconds: f64,
    /// sha256 of the serialised weights: the identity of the feature space.
    pub weights_sha256: String,
}

/// A loaded feature network ready for inference.
pub struct Features {
    pub net: FeatureNet,
    pub meta: FeatureMeta,
    pub path: PathBuf,
    device: Device,
}

/// Features and class probabilities of a set of images.
pub struct Embedding {
    pub features: Vec<f32>,
    pub probs: Vec<f32>,
    pub n: usize,
    pub classes: usize,
}

impl Features {
    /// Short form of the weights hash for tables and protocols.
    pub fn hash(&self) -> &str {
        &self.meta.weights_sha256[..16]
    }

    /// Embed host images in [0,1] (N×C×H×W), batched.
    pub fn embed(&self, images: &[f32]) -> Result<Embedding> {
        let d = self.meta.shape.len();
        if d == 0 || !images.len().is_multiple_of(d) {
            bail!("{} values do not form images of shape {:?}", images.len(), self.meta.shape);
        }
        let n = images.len() / d;
        let mut features = Vec::with_capacity(n * FEATURE_DIM);
        let mut probs = Vec::with_capacity(n * self.meta.classes);
        for start in (0..n).step_by(500) {
            let end = (start + 500).min(n);
            let x = matrix(images[start * d..end * d].to_vec(), end - start, d, &self.device);
            let (f, logits) = self.net.forward(x);
            features.extend(to_vec(f));
            probs.extend(to_vec(softmax(logits, 1)));
        }
        Ok(Embedding { features, probs, n, classes: self.meta.classes })
    }

    /// Embed a dataset's grey images.
    pub fn embed_dataset(&self, data: &Dataset) -> Result<Embedding> {
        self.embed(&unit(&data.images))
    }
}

pub fn unit(images: &[u8]) -> Vec<f32> {
    images.iter().map(|&p| p as f32 / 255.0).collect()
}

/// Identity of a dataset's training split (images, labels, shape): the cache key.
pub fn data_hash(splits: &Splits) -> String {
    let mut h = Sha256::new();
    h.update(format!("{:?}", splits.train.shape));
    h.update(&splits.train.images);
    if let Some(l) = &splits.train.labels {
        h.update(l);
    }
    hex(&h.finalize())[..24].to_string()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Training recipe.
#[derive(Clone, Debug)]
pub struct Recipe {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
}

impl Recipe {
    /// The fixed recipe used for cached networks: enough epochs for ≥ 99 % on MNIST.
    pub fn standard(splits: &Splits) -> Recipe {
        let epochs = if splits.train.n >= 20_000 { 4 } else { 30 };
        Recipe { epochs, batch_size: 128, lr: 1e-3, seed: 2024 }
    }
}

/// Where cached networks are looked for and written, in order: `$LATENTLAB_CACHE/features`
/// when set, `<data-dir>/features/` (beside the data it was trained on), then the user cache
/// (`$XDG_CACHE_HOME/latentlab` or `~/.cache/latentlab`) for a read-only data folder.
pub fn cache_dirs(data_dir: &Path) -> Vec<PathBuf> {
    let user = crate::util::user_cache_dir().map(|d| d.join("features"));
    let explicit = std::env::var_os("LATENTLAB_CACHE").is_some_and(|v| !v.is_empty());
    let beside_data = Some(data_dir.join("features"));
    let order = if explicit { [user, beside_data] } else { [beside_data, user] };
    order.into_iter().flatten().collect()
}

fn file_name(splits: &Splits) -> String {
    let ds: String = Path::new(&splits.name)
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .take(40)
        .collect();
    format!("{ds}-{}-r{RECIPE}.llfeat", data_hash(splits))
}

/// The cached network for a dataset, training it first if there is none (or `force`).
/// A corrupt cache file is reported and replaced, never silently used.
pub fn load_or_train(splits: &Splits, data_dir: &Path, force: bool, verbose: bool) -> Result<Features> {
    let device = Device::flex();
    let name = file_name(splits);
    let dirs = cache_dirs(data_dir);
    if !force {
        for d in &dirs {
            let p = d.join(&name);
            if p.is_file() {
                match load(&p, &device) {
                    Ok(f) => return Ok(f),
                    Err(e) => eprintln!("warning: ignoring cached feature network: {e:#}; retraining"),
                }
            }
        }
    }
    if splits.train.labels.is_none() {
        bail!("dataset '{}' has no class labels: the feature network is a classifier and needs them", splits.name);
    }
    if splits.train.shape.height < 4 || splits.train.shape.width < 4 {
        bail!("feature network needs images of at least 4×4, dataset '{}' has {:?}", splits.name, splits.train.shape);
    }
    if verbose {
        eprintln!("training the feature network for '{}' (once; cached afterwards)…", splits.name);
    }
    let (net, meta) = train(splits, &Recipe::standard(splits), verbose)?;
    let bytes = encode(&net, &meta)?;
    let mut last_err = None;
    for d in &dirs {
        let p = d.join(&name);
        match crate::util::write_atomic(&p, &bytes) {
            Ok(()) => return load(&p, &device),
            Err(e) => last_err = Some(e),
        }
    }
    match last_err {
        Some(e) => Err(e.context("cannot cache the feature network in any of the cache folders")),
        None => bail!("no cache folder for the feature network"),
    }
}

fn encode(net: &FeatureNet, meta: &FeatureMeta) -> Result<Vec<u8>> {
    let weights =
        net.clone().into_record().into_bytes().map_err(|e| anyhow::anyhow!("cannot serialise weights: {e:?}"))?;
    Ok(crate::util::frame(MAGIC, &[&serde_json::to_vec(meta)?, &weights]))
}

/// Load a cached network; every structural problem is a named error.
pub fn load(path: &Path, device: &Device) -> Result<Features> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bad = |why: &str| anyhow::anyhow!("feature network {}: {why}", path.display());
    let secs = crate::util::unframe(&bytes, MAGIC, "feature network", &["meta", "weights"]).map_err(|e| bad(&e))?;
    let meta: FeatureMeta = serde_json::from_slice(secs[0]).map_err(|e| bad(&format!("meta: {e}")))?;
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(secs[1].to_vec()))
        .map_err(|e| bad(&format!("weights unreadable: {e:?}")))?;
    let rng = &mut crate::util::rng(0, crate::util::Stream::Init, 0);
    let net = FeatureNet::new(meta.shape, meta.classes, rng, device)
        .try_load_record(record)
        .map_err(|e| bad(&format!("weights do not fit the architecture: {e:?}")))?;
    if content_hash(&net) != meta.weights_sha256 {
        return Err(bad("weights do not match their recorded hash"));
    }
    Ok(Features { net, meta, path: path.to_path_buf(), device: device.clone() })
}

/// sha256 of the parameter values (little-endian f32), independent of parameter ids.
pub fn content_hash(net: &FeatureNet) -> String {
    let mut h = Sha256::new();
    for v in crate::models::blocks::param_values(net) {
        h.update(v.to_le_bytes());
    }
    hex(&h.finalize())
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
    let probe = Features {
        net: net.clone(),
        meta: FeatureMeta {
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
        },
        path: PathBuf::new(),
        device: base.clone(),
    };
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

/// Fraction of `data` the classifier labels correctly.
pub fn accuracy(f: &Features, data: &Dataset) -> Result<f64> {
    let labels = data.labels.as_ref().context("accuracy needs labels")?;
    let e = f.embed_dataset(data)?;
    Ok(argmax_rows(&e.probs, e.classes).iter().zip(labels).filter(|(p, y)| **p == **y as usize).count() as f64
        / data.n.max(1) as f64)
}

pub fn argmax_rows(v: &[f32], k: usize) -> Vec<usize> {
    v.chunks(k)
        .map(|r| r.iter().enumerate().fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0)
        .collect()
}
