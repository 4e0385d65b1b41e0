//! Datasets: u8 images N×C×H×W with optional labels, how names resolve to files, and batching.

pub mod cifar;
pub mod digits;
pub mod fetch;
pub mod folder;
pub mod idx;

use anyhow::{Context, Result, bail};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::util::{Stream, rng};

/// Images as bytes (0 = black, 255 = white), row-major N×C×H×W, with optional class labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub images: Vec<u8>,
    pub labels: Option<Vec<u8>>,
    pub n: usize,
    pub shape: ImageShape,
    pub num_classes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A train/test pair, plus class names when the dataset has them.
#[derive(Clone, Debug)]
pub struct Splits {
    pub name: String,
    pub train: Dataset,
    pub test: Dataset,
    pub class_names: Vec<String>,
}

impl Dataset {
    pub fn image(&self, i: usize) -> &[u8] {
        let l = self.shape.len();
        &self.images[i * l..(i + 1) * l]
    }
    pub fn label(&self, i: usize) -> Option<u8> {
        self.labels.as_ref().map(|l| l[i])
    }
    /// A sub-dataset of the given indices, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let mut images = Vec::with_capacity(idx.len() * self.shape.len());
        for &i in idx {
            images.extend_from_slice(self.image(i));
        }
        Dataset {
            images,
            labels: self.labels.as_ref().map(|l| idx.iter().map(|&i| l[i]).collect()),
            n: idx.len(),
            shape: self.shape,
            num_classes: self.num_classes,
        }
    }
    /// The first `n` images (or all).
    pub fn head(&self, n: usize) -> Dataset {
        self.subset(&(0..n.min(self.n)).collect::<Vec<_>>())
    }
}

/// How pixels become model inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Binarize {
    /// Grey levels scaled to [0,1].
    None,
    /// One Bernoulli(pixel) draw per image, fixed for the whole run.
    Static,
    /// A fresh Bernoulli(pixel) draw every time an image is used (the standard for MNIST VAEs).
    Dynamic,
}

/// Value range of model inputs: VAE family in [0,1], GAN family in [-1,1].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Range {
    Unit,
    Symmetric,
}

/// Pixels of `images` as f32 in [0,1], optionally Bernoulli-binarised with `rng`.
pub fn to_unit(images: &[u8], binarize: bool, rng: &mut impl Rng) -> Vec<f32> {
    if binarize {
        images.iter().map(|&p| if rng.random::<f32>() * 255.0 < p as f32 { 1.0 } else { 0.0 }).collect()
    } else {
        images.iter().map(|&p| p as f32 / 255.0).collect()
    }
}

/// A batch on the host: pixels (already transformed) and labels.
pub struct Batch {
    pub x: Vec<f32>,
    pub labels: Vec<u8>,
    pub n: usize,
}

/// Builds batches from a dataset with the run's transform; all randomness comes from `seed`.
pub struct Loader<'a> {
    pub data: &'a Dataset,
    pub batch_size: usize,
    pub binarize: Binarize,
    pub range: Range,
    pub seed: u64,
    /// Pre-drawn static binarisation (only for `Binarize::Static`).
    static_bits: Option<Vec<u8>>,
}

impl<'a> Loader<'a> {
    pub fn new(data: &'a Dataset, batch_size: usize, binarize: Binarize, range: Range, seed: u64) -> Self {
        let static_bits = (binarize == Binarize::Static).then(|| {
            let mut r = rng(seed, Stream::Static, 0);
            data.images.iter().map(|&p| if r.random::<f32>() * 255.0 < p as f32 { 255 } else { 0 }).collect()
        });
        Loader { data, batch_size, binarize, range, seed, static_bits }
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.data.n.div_ceil(self.batch_size)
    }

    /// The shuffled order of epoch `epoch` (a pure function of seed and epoch).
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.data.n).collect();
        idx.shuffle(&mut rng(self.seed, Stream::Shuffle, epoch));
        idx
    }

    /// Batch `b` of an epoch order; `step` seeds the dynamic binarisation.
    pub fn batch(&self, order: &[usize], b: usize, step: u64) -> Batch {
        let lo = b * self.batch_size;
        let hi = (lo + self.batch_size).min(order.len());
        self.gather(&order[lo..hi], &mut rng(self.seed, Stream::Binarize, step))
    }

    /// Gather images by index with the transform applied.
    pub fn gather(&self, idx: &[usize], r: &mut impl Rng) -> Batch {
        let l = self.data.shape.len();
        let mut x = Vec::with_capacity(idx.len() * l);
        let src = self.static_bits.as_deref().unwrap_or(&self.data.images);
        for &i in idx {
            let img = &src[i * l..(i + 1) * l];
            match (self.binarize, self.range) {
                (Binarize::Dynamic, Range::Unit) => x.extend(to_unit(img, true, r)),
                (_, Range::Unit) => x.extend(img.iter().map(|&p| p as f32 / 255.0)),
                (Binarize::Dynamic, Range::Symmetric) => {
                    x.extend(to_unit(img, true, r).into_iter().map(|v| v * 2.0 - 1.0))
                }
                (_, Range::Symmetric) => x.extend(img.iter().map(|&p| p as f32 / 127.5 - 1.0)),
            }
        }
        let labels = match &self.data.labels {
            Some(lab) => idx.iter().map(|&i| lab[i]).collect(),
            None => vec![0; idx.len()],
        };
        Batch { x, labels, n: idx.len() }
    }

    /// The evaluation view of a dataset: binarised once with a fixed seed (independent of the run
    /// seed, so test losses of different runs are comparable), in batches of `bs`.
    pub fn eval_batches(&self, bs: usize) -> Vec<Batch> {
        let mut r = rng(0x7E57, Stream::Eval, 0);
        let idx: Vec<usize> = (0..self.data.n).collect();
        idx.chunks(bs).map(|c| self.gather(c, &mut r)).collect()
    }
}

/// The data directory: `--data-dir`, else `$LATENTLAB_DATA`, else `./data`.
pub fn data_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os("LATENTLAB_DATA") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from("data"),
    }
}

/// Known dataset names.
pub const NAMES: [&str; 4] = ["mnist", "fashion-mnist", "digits", "cifar10"];

/// How an image folder is turned into tensors (other datasets have a fixed shape).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transform {
    pub image_size: Option<usize>,
    pub channels: Option<usize>,
}

pub const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// Find a file trying the name with and without `.gz`.
fn find_gz(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()].into_iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Load a dataset by name (`mnist`, `fashion-mnist`, `digits`, `cifar10`) or by path to an IDX
/// images file, a CIFAR-10 binary folder or a folder of images.
pub fn load(spec: &str, data_dir_flag: Option<&Path>) -> Result<Splits> {
    load_with(spec, data_dir_flag, &Transform::default())
}

/// `load` with the image-folder transform; for fixed-shape datasets the transform must match.
pub fn load_with(spec: &str, data_dir_flag: Option<&Path>, t: &Transform) -> Result<Splits> {
    let p = Path::new(spec);
    // A known name means the dataset, even if the working directory has a folder of that name
    // (write ./mnist for the folder).
    if p.is_dir() && !NAMES.contains(&spec) && cifar::find(p).is_none() {
        return folder::load(p, t.image_size, t.channels, crate::util::user_cache_dir().as_deref());
    }
    let splits = load_fixed(spec, data_dir_flag)?;
    let s = splits.train.shape;
    if t.image_size.is_some_and(|z| z != s.height || z != s.width) || t.channels.is_some_and(|c| c != s.channels) {
        bail!(
            "--image-size/--channels resize image folders only; dataset '{spec}' has fixed {}×{}×{} images",
            s.channels,
            s.height,
            s.width
        );
    }
    Ok(splits)
}

fn load_fixed(spec: &str, data_dir_flag: Option<&Path>) -> Result<Splits> {
    let dir = data_dir(data_dir_flag);
    match spec {
        "cifar10" => {
            let Some(d) = cifar::find(&dir.join("cifar10")) else {
                bail!(
                    "dataset 'cifar10' not found: no {}/cifar10/data_batch_1.bin (or cifar-10-batches-bin/ inside it). \
                     Download the binary version (cifar-10-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html \
                     and extract it there",
                    dir.display()
                );
            };
            cifar::load(&d)
        }
        "mnist" | "fashion-mnist" => {
            let d = dir.join(spec);
            let train_img = find_gz(&d, "train-images-idx3-ubyte");
            let Some(train_img) = train_img else {
                bail!(
                    "dataset '{spec}' not found: no {}/train-images-idx3-ubyte(.gz). Point --data-dir or \
                     LATENTLAB_DATA at a folder holding '{spec}/', or run `latentlab data fetch {spec}`",
                    d.display()
                );
            };
            let train = load_idx_pair(&train_img)?;
            let test_img = find_gz(&d, "t10k-images-idx3-ubyte")
                .with_context(|| format!("dataset '{spec}': {} has no t10k-images-idx3-ubyte(.gz)", d.display()))?;
            let test = load_idx_pair(&test_img)?;
            check_same_shape(&train, &test, spec)?;
            let class_names = if spec == "fashion-mnist" {
                FASHION_CLASSES.iter().map(|s| s.to_string()).collect()
            } else {
                (0..10).map(|i| i.to_string()).collect()
            };
            Ok(Splits { name: spec.into(), train, test, class_names })
        }
        "digits" => {
            let d = dir.join("digits");
            let p = find_gz(&d, "digits.csv").with_context(|| {
                format!(
                    "dataset 'digits' not found: no {}/digits.csv.gz (set --data-dir or LATENTLAB_DATA)",
                    d.display()
                )
            })?;
            let all = digits::read(&p)?;
            // Fixed split: the last 297 rows are the test set.
            let n_test = 297;
            let train = all.subset(&(0..all.n - n_test).collect::<Vec<_>>());
            let test = all.subset(&(all.n - n_test..all.n).collect::<Vec<_>>());
            Ok(Splits { name: "digits".into(), train, test, class_names: (0..10).map(|i| i.to_string()).collect() })
        }
        path => {
            let p = Path::new(path);
            if !p.exists() {
                bail!(
                    "unknown dataset '{path}': not one of {} and no such file (give a name or a path to an \
                     *-images-idx3-ubyte(.gz) file)",
                    NAMES.join(", ")
                );
            }
            if let Some(d) = p.is_dir().then(|| cifar::find(p)).flatten() {
                return cifar::load(&d);
            }
            let full = load_idx_pair(p)?;
            // A train-* file with a t10k-* sibling gets that as its test set; otherwise hold out 10 %.
            let fname = p.file_name().unwrap().to_string_lossy().to_string();
            let sibling = fname.strip_prefix("train-").map(|rest| p.with_file_name(format!("t10k-{rest}")));
            let (train, test) = match sibling.filter(|s| s.is_file()) {
                Some(t) => {
                    let test = load_idx_pair(&t)?;
                    check_same_shape(&full, &test, path)?;
                    (full, test)
                }
                None => {
                    let n_test = (full.n / 10).max(1);
                    if full.n < 2 {
                        bail!("dataset '{path}' has {} image(s); need at least 2 to hold out a test set", full.n);
                    }
                    let cut = full.n - n_test;
                    (full.subset(&(0..cut).collect::<Vec<_>>()), full.subset(&(cut..full.n).collect::<Vec<_>>()))
                }
            };
            let k = train.num_classes;
            Ok(Splits { name: path.into(), train, test, class_names: (0..k).map(|i| i.to_string()).collect() })
        }
    }
}

fn check_same_shape(a: &Dataset, b: &Dataset, spec: &str) -> Result<()> {
    if a.shape != b.shape {
        bail!("dataset '{spec}': train images are {:?} but test images are {:?}", a.shape, b.shape);
    }
    Ok(())
}

/// Load an images IDX file and, if present, the labels file beside it
/// (`…images-idx3-ubyte…` → `…labels-idx1-ubyte…`).
pub fn load_idx_pair(images: &Path) -> Result<Dataset> {
    let arr = idx::read(images, 3)?;
    let (n, h, w) = (arr.dims[0], arr.dims[1], arr.dims[2]);
    let fname = images.file_name().unwrap_or_default().to_string_lossy().to_string();
    let label_name =
        fname.replace("images-idx3-ubyte", "labels-idx1-ubyte").replace("images.idx3-ubyte", "labels.idx1-ubyte");
    let mut labels = None;
    if label_name != fname {
        let lp = images.with_file_name(&label_name);
        let lp = if lp.is_file() {
            Some(lp)
        } else {
            // tolerate .gz on one and not the other
            let alt = label_name.strip_suffix(".gz").map(String::from).unwrap_or(format!("{label_name}.gz"));
            Some(images.with_file_name(alt)).filter(|p| p.is_file())
        };
        if let Some(lp) = lp {
            let l = idx::read(&lp, 1)?;
            if l.dims[0] != n {
                bail!("{}: {} labels for {} images in {}", lp.display(), l.dims[0], n, images.display());
            }
            labels = Some(l.data);
        }
    }
    let num_classes = match &labels {
        Some(l) => {
            let max = *l.iter().max().unwrap_or(&0) as usize;
            if max >= 256 {
                bail!("labels out of range");
            }
            (max + 1).max(2)
        }
        None => 0,
    };
    Ok(Dataset { images: arr.data, labels, n, shape: ImageShape { channels: 1, height: h, width: w }, num_classes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffling_is_a_permutation_fixed_by_seed() {
        let d = Dataset {
            images: (0..50).map(|i| i as u8).collect(),
            labels: None,
            n: 50,
            shape: ImageShape { channels: 1, height: 1, width: 1 },
            num_classes: 0,
        };
        let l = Loader::new(&d, 8, Binarize::None, Range::Unit, 3);
        let o = l.order(0);
        let mut s = o.clone();
        s.sort();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
        assert_eq!(o, l.order(0));
        assert_ne!(o, l.order(1));
        assert_eq!(l.batches_per_epoch(), 7);
        assert_eq!(l.batch(&o, 6, 0).n, 2);
    }

    #[test]
    fn dynamic_binarisation_is_bernoulli_of_the_pixel() {
        let d = Dataset {
            images: vec![64; 20000],
            labels: None,
            n: 1,
            shape: ImageShape { channels: 1, height: 100, width: 200 },
            num_classes: 0,
        };
        let l = Loader::new(&d, 1, Binarize::Dynamic, Range::Unit, 1);
        let b = l.batch(&[0], 0, 0);
        assert!(b.x.iter().all(|&v| v == 0.0 || v == 1.0));
        let mean = b.x.iter().sum::<f32>() / b.x.len() as f32;
        assert!((mean - 64.0 / 255.0).abs() < 0.02, "{mean}");
        // resampled per step, identical for the same step
        assert_ne!(b.x, l.batch(&[0], 0, 1).x);
        assert_eq!(b.x, l.batch(&[0], 0, 0).x);
        let sym = Loader::new(&d, 1, Binarize::None, Range::Symmetric, 1).batch(&[0], 0, 0);
        assert!((sym.x[0] - (64.0 / 127.5 - 1.0)).abs() < 1e-6);
    }
}
