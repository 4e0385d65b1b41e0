//! The domain feature network: a small CNN classifier per dataset. Its penultimate layer (128
//! units) is the feature space of FID, KID and precision/recall; its softmax labels samples for
//! mode coverage. A dataset without class labels but with binary attributes (CelebA) gets a
//! multi-label attribute network instead (`attr_net`): same 128-d feature space, per-attribute
//! sigmoids in place of the softmax ([`NetKind`]). Inception features are the wrong domain for 28×28 digits and clothes, and a
//! Python-free tool cannot ship them, so every dataset gets its own, trained with a fixed seed and
//! cached by the hash of the training data; its weights' hash goes into every protocol.
//!
//! The class network is in `class_net`, the attribute network in `attr_net`; this file holds
//! what they share: the cache, its metadata and inference.

use super::attr_net::{self, AttrNet};
pub use super::class_net::{FeatureNet, train};
use crate::data::{Dataset, ImageShape, Splits};
use crate::models::blocks::{matrix, to_vec};
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::activation::{sigmoid, softmax};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const FEATURE_DIM: usize = 128;
/// Bumped whenever the architecture or training recipe changes, so stale caches are not reused.
pub(crate) const RECIPE: u32 = 1;
/// The same for the attribute network (its own sequence: its cache files are named apart).
pub(crate) const RECIPE_ATTR: u32 = 1;
const MAGIC: &[u8; 8] = b"LLFEAT01";

/// What a feature network's outputs (an [`Embedding`]'s `probs`) are.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NetKind {
    /// A classifier: each row of probabilities is a softmax over the classes (sums to 1).
    #[default]
    Classes,
    /// A multi-label attribute classifier: each entry is an independent sigmoid P(attribute j).
    Attributes,
}

impl NetKind {
    pub fn name(self) -> &'static str {
        match self {
            NetKind::Classes => "classes",
            NetKind::Attributes => "attributes",
        }
    }
}

/// The network inside a [`Features`]: a class network or an attribute network.
#[derive(Clone, Debug)]
pub enum Net {
    Classes(Box<FeatureNet>),
    Attributes(Box<AttrNet>),
}

impl From<FeatureNet> for Net {
    fn from(n: FeatureNet) -> Net {
        Net::Classes(Box::new(n))
    }
}

impl From<AttrNet> for Net {
    fn from(n: AttrNet) -> Net {
        Net::Attributes(Box::new(n))
    }
}

impl Net {
    /// (features [B, 128], probabilities [B, outputs]): softmax for classes, sigmoids for attributes.
    pub fn forward(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        match self {
            Net::Classes(n) => {
                let (f, l) = n.forward(x);
                (f, softmax(l, 1))
            }
            Net::Attributes(n) => {
                let (f, l) = n.forward(x);
                (f, sigmoid(l))
            }
        }
    }
}

/// What the cache file says about the network inside it. Fields after `weights_sha256` were
/// added with the attribute network; files without them load as class networks.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FeatureMeta {
    pub dataset: String,
    pub data_hash: String,
    pub shape: ImageShape,
    /// Classes of a class network; 0 for an attribute network.
    pub classes: usize,
    pub epochs: usize,
    pub seed: u64,
    pub recipe: u32,
    /// Class networks: accuracy on the test split; attribute networks: the mean over attributes
    /// of the per-attribute accuracy on the test split.
    pub test_accuracy: f64,
    pub train_seconds: f64,
    /// sha256 of the serialised weights: the identity of the feature space.
    pub weights_sha256: String,
    #[serde(default)]
    pub kind: NetKind,
    /// Attribute networks: the attributes, in output order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribute_names: Vec<String>,
    /// Attribute networks: per attribute (same order), the share of held-out test images whose
    /// thresholded probability (> 0.5) matches the annotation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribute_accuracy: Vec<f64>,
}

impl FeatureMeta {
    /// Width of a row of probabilities: classes, or attributes.
    pub fn outputs(&self) -> usize {
        match self.kind {
            NetKind::Classes => self.classes,
            NetKind::Attributes => self.attribute_names.len(),
        }
    }
    /// Attribute networks: the mean of `attribute_accuracy`.
    pub fn attribute_accuracy_mean(&self) -> Option<f64> {
        (!self.attribute_accuracy.is_empty()).then(|| attr_net::mean(&self.attribute_accuracy))
    }
}

/// A loaded feature network ready for inference.
pub struct Features {
    pub net: Net,
    pub meta: FeatureMeta,
    pub path: PathBuf,
    device: Device,
}

/// Features and class (or attribute) probabilities of a set of images.
pub struct Embedding {
    pub features: Vec<f32>,
    /// n × `classes`, row-major: softmax rows for [`NetKind::Classes`], independent per-attribute
    /// sigmoids for [`NetKind::Attributes`].
    pub probs: Vec<f32>,
    pub n: usize,
    /// Width of a row of `probs`: the number of classes, or of attributes.
    pub classes: usize,
    pub kind: NetKind,
}

impl Features {
    /// A network trained in this process (`train`, `attr_net::train`), used without caching it.
    pub fn in_memory(net: Net, meta: FeatureMeta) -> Features {
        Features { net, meta, path: PathBuf::new(), device: Device::flex() }
    }

    /// The same network on another device. The instrument is trained and cached on the CPU (one
    /// set of bits, so FID means the same everywhere); only its inference moves.
    pub fn to_device(self, device: &Device) -> Features {
        let net = match self.net {
            Net::Classes(n) => Net::Classes(Box::new(n.to_device(device))),
            Net::Attributes(n) => Net::Attributes(Box::new(n.to_device(device))),
        };
        Features { net, device: device.clone(), ..self }
    }

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
        let mut probs = Vec::with_capacity(n * self.meta.outputs());
        for start in (0..n).step_by(500) {
            let end = (start + 500).min(n);
            let x = matrix(images[start * d..end * d].to_vec(), end - start, d, &self.device);
            let (f, p) = self.net.forward(x);
            features.extend(to_vec(f));
            probs.extend(to_vec(p));
        }
        Ok(Embedding { features, probs, n, classes: self.meta.outputs(), kind: self.meta.kind })
    }

    pub fn kind(&self) -> NetKind {
        self.meta.kind
    }

    /// The attributes an attribute network reads (empty for a class network).
    pub fn attribute_names(&self) -> &[String] {
        &self.meta.attribute_names
    }

    /// Embed a dataset's grey images.
    pub fn embed_dataset(&self, data: &Dataset) -> Result<Embedding> {
        self.embed(&unit(&data.images))
    }
}

pub fn unit(images: &[u8]) -> Vec<f32> {
    images.iter().map(|&p| p as f32 / 255.0).collect()
}

/// Attribute probabilities (n × k, row-major: P(image i has attribute j), independent sigmoids)
/// of images in [0,1] (N×C×H×W, the dataset's shape), by the dataset's attribute network; the
/// attributes are `feats.attribute_names()`, in that order. An image "has" attribute j when its
/// probability is above [`super::attributes::THRESHOLD`] (0.5). For code that must label
/// images' attributes with the same instrument as `eval` (face arithmetic, text agreement).
/// Errors for a class network.
pub fn attribute_probs(feats: &Features, images: &[f32]) -> Result<Vec<f32>> {
    if feats.meta.kind != NetKind::Attributes {
        bail!("the feature network of '{}' is a class network: it has no attribute outputs", feats.meta.dataset);
    }
    Ok(feats.embed(images)?.probs)
}

/// Identity of a dataset's training split (images, labels, attributes, shape): the cache key.
pub fn data_hash(splits: &Splits) -> String {
    let mut h = Sha256::new();
    h.update(format!("{:?}", splits.train.shape));
    h.update(&splits.train.images);
    if let Some(l) = &splits.train.labels {
        h.update(l);
    }
    if let Some(a) = &splits.train.attributes {
        h.update(a.names.join(",").as_bytes());
        h.update(&a.values);
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
    if uses_attributes(splits) {
        format!("{ds}-{}-attr-r{RECIPE_ATTR}.llfeat", data_hash(splits))
    } else {
        format!("{ds}-{}-r{RECIPE}.llfeat", data_hash(splits))
    }
}

/// Whether a dataset gets an attribute network: attributes and no class labels.
pub fn uses_attributes(splits: &Splits) -> bool {
    splits.train.labels.is_none() && splits.train.attributes.as_ref().is_some_and(|a| a.k() > 0)
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
    let attributes = uses_attributes(splits);
    if attributes {
        attr_net::check_shape(splits.train.shape).with_context(|| format!("dataset '{}'", splits.name))?;
    } else if splits.train.labels.is_none() {
        bail!(
            "dataset '{}' has no class labels (nor attributes): the feature network is a classifier and needs them",
            splits.name
        );
    }
    if splits.train.shape.height < 4 || splits.train.shape.width < 4 {
        bail!("feature network needs images of at least 4×4, dataset '{}' has {:?}", splits.name, splits.train.shape);
    }
    if verbose {
        let what = if attributes { "attribute network" } else { "feature network" };
        eprintln!("training the {what} for '{}' (once; cached afterwards)…", splits.name);
    }
    let bytes = if attributes {
        let (net, meta) = attr_net::train(splits, &attr_net::standard_recipe(splits), verbose)?;
        encode(&net, &meta)?
    } else {
        let (net, meta) = train(splits, &Recipe::standard(splits), verbose)?;
        encode(&net, &meta)?
    };
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

fn encode<M: Module>(net: &M, meta: &FeatureMeta) -> Result<Vec<u8>> {
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
    let misfit = |e| bad(&format!("weights do not fit the architecture: {e:?}"));
    let (net, hash) = match meta.kind {
        NetKind::Classes => {
            let net = FeatureNet::new(meta.shape, meta.classes, rng, device).try_load_record(record).map_err(misfit)?;
            let h = content_hash(&net);
            (net.into(), h)
        }
        NetKind::Attributes => {
            attr_net::check_shape(meta.shape).map_err(|e| bad(&format!("{e}")))?;
            let k = meta.attribute_names.len();
            if k == 0 || meta.attribute_accuracy.len() != k {
                return Err(bad("attribute network without attribute names (or accuracies for each)"));
            }
            let net = AttrNet::new(meta.shape, k, rng, device).try_load_record(record).map_err(misfit)?;
            let h = content_hash(&net);
            (net.into(), h)
        }
    };
    if hash != meta.weights_sha256 {
        return Err(bad("weights do not match their recorded hash"));
    }
    Ok(Features { net, meta, path: path.to_path_buf(), device: device.clone() })
}

/// sha256 of the parameter values (little-endian f32), independent of parameter ids.
pub fn content_hash<M: Module>(net: &M) -> String {
    let mut h = Sha256::new();
    for v in crate::models::blocks::param_values(net) {
        h.update(v.to_le_bytes());
    }
    hex(&h.finalize())
}

/// Fraction of `data` the classifier labels correctly; for an attribute network, the mean over
/// attributes of [`attribute_accuracy`].
pub fn accuracy(f: &Features, data: &Dataset) -> Result<f64> {
    if f.meta.kind == NetKind::Attributes {
        return Ok(attr_net::mean(&attribute_accuracy(f, data)?));
    }
    let labels = data.labels.as_ref().context("accuracy needs labels")?;
    let e = f.embed_dataset(data)?;
    Ok(argmax_rows(&e.probs, e.classes).iter().zip(labels).filter(|(p, y)| **p == **y as usize).count() as f64
        / data.n.max(1) as f64)
}

/// Per attribute (the network's order), the share of `data`'s images whose thresholded probability
/// (> 0.5) matches their annotation. `data`'s attributes must be the network's, in its order.
pub fn attribute_accuracy(f: &Features, data: &Dataset) -> Result<Vec<f64>> {
    let attrs = data.attributes.as_ref().context("attribute accuracy needs attribute annotations")?;
    if attrs.names != f.meta.attribute_names {
        bail!("the images' attributes are not the ones the network reads (or not in its order)");
    }
    attr_net::accuracy_per_attribute(&attribute_probs(f, &unit(&data.images))?, attrs)
}

pub fn argmax_rows(v: &[f32], k: usize) -> Vec<usize> {
    v.chunks(k)
        .map(|r| r.iter().enumerate().fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0)
        .collect()
}
