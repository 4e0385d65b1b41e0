//! Datasets: u8 images N×C×H×W with optional labels, how names resolve to files, and batching.

pub mod arrays;
pub mod captions;
pub mod celeba;
pub mod cifar;
pub mod digits;
pub mod fetch;
pub mod folder;
pub mod idx;
mod loader;
mod resolve;
#[cfg(test)]
mod tests;

pub use celeba::Attributes;
pub use loader::{Batch, Loader, binarize_into};
pub use resolve::{FASHION_CLASSES, NAMES, Transform, data_dir, load, load_idx_pair, load_with};

use serde::{Deserialize, Serialize};

/// Images as bytes (0 = black, 255 = white), row-major N×C×H×W, with optional class labels and
/// binary attributes (CelebA).
#[derive(Clone, Debug)]
pub struct Dataset {
    pub images: Vec<u8>,
    pub labels: Option<Vec<u8>>,
    pub n: usize,
    pub shape: ImageShape,
    pub num_classes: usize,
    pub attributes: Option<Attributes>,
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
            attributes: self.attributes.as_ref().map(|a| a.subset(idx)),
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
