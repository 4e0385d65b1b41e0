//! From stored bytes to model inputs: shuffling, batching and (static or dynamic) binarisation.

use super::{Binarize, Dataset, Range};
use crate::util::{Stream, rng};
use rand::Rng;
use rand::seq::SliceRandom;

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
    /// Which images of the dataset (for their conditions: `ModelSpec::cond_of_data`).
    pub idx: Vec<usize>,
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
        Batch { x, labels, idx: idx.to_vec(), n: idx.len() }
    }

    /// The evaluation view of a dataset: binarised once with a fixed seed (independent of the run
    /// seed, so test losses of different runs are comparable), in batches of `bs`.
    pub fn eval_batches(&self, bs: usize) -> Vec<Batch> {
        let mut r = rng(0x7E57, Stream::Eval, 0);
        let idx: Vec<usize> = (0..self.data.n).collect();
        idx.chunks(bs).map(|c| self.gather(c, &mut r)).collect()
    }
}
