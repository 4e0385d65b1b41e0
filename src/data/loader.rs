//! From stored bytes to model inputs: shuffling, batching and (static or dynamic) binarisation.

use super::{Binarize, Dataset, Range};
use crate::util::{Stream, rng};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Bernoulli pixels: grey level p is `on` with probability p/255, one draw of `rng` per pixel, in
/// pixel order; `rng` ends past the last draw.
///
/// The test is `rng.random::<f32>() * 255.0 < p` (rand's f32 is the draw's top 24 bits × 2⁻²⁴),
/// made on the integer draw against a per-level threshold, so the bits are the ones that test
/// gives, with the draws filled 1024 at a time: a fraction of one `random` call per pixel.
/// It runs on the calling thread: in training that is the batch thread (`Loader::prefetch`),
/// which must not queue work in the pool the step runs on.
pub fn binarize_into(pixels: &[u8], rng: &mut ChaCha8Rng, (off, on): (f32, f32), out: &mut Vec<f32>) {
    let t = thresholds();
    let start = out.len();
    out.resize(start + pixels.len(), 0.0);
    let mut draws = [0u32; 1024];
    for (o, p) in out[start..].chunks_mut(1024).zip(pixels.chunks(1024)) {
        let d = &mut draws[..p.len()];
        rng.fill(d);
        for ((o, &p), &d) in o.iter_mut().zip(p).zip(d.iter()) {
            *o = if (d >> 8) < t[p as usize] { on } else { off };
        }
    }
}

/// For each grey level p, the least 24-bit m with `(m as f32 * 2⁻²⁴) * 255.0 >= p as f32` (2²⁴
/// if none): the product is monotone in m, so `m < threshold` ⇔ the float test above.
pub(super) fn thresholds() -> &'static [u32; 256] {
    static T: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let on = |m: u32, p: usize| (m as f32 * (1.0 / (1u32 << 24) as f32)) * 255.0 < p as f32;
        std::array::from_fn(|p| {
            let (mut lo, mut hi) = (0u32, 1u32 << 24);
            // Invariant: on(m) for every m < lo, !on(m) for every m >= hi.
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if on(mid, p) { lo = mid + 1 } else { hi = mid }
            }
            lo
        })
    })
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

    /// Batches `from`, `from + 1`, … of an epoch order (batch `from` at step `step`, one step a
    /// batch), each `batch`'s bits, assembled one ahead on a thread of `scope` while the caller
    /// trains on the last. The thread ends with the epoch or when the receiver is dropped.
    ///
    /// Why: assembling a VAE batch (gather, binarise, fresh pages) was ~2.5 % of a `train vae`
    /// epoch on the step's thread, while the step leaves ~0.2 of the 2 cores idle.
    pub fn prefetch<'scope, 'env>(
        &'env self,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        order: &'env [usize],
        from: usize,
        step: u64,
    ) -> std::sync::mpsc::Receiver<Batch> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let nb = order.len().div_ceil(self.batch_size);
        scope.spawn(move || {
            for (b, s) in (from..nb).zip(step..) {
                if tx.send(self.batch(order, b, s)).is_err() {
                    break;
                }
            }
        });
        rx
    }

    /// Gather images by index with the transform applied.
    pub fn gather(&self, idx: &[usize], r: &mut ChaCha8Rng) -> Batch {
        let l = self.data.shape.len();
        let mut x = Vec::with_capacity(idx.len() * l);
        let src = self.static_bits.as_deref().unwrap_or(&self.data.images);
        if self.binarize == Binarize::Dynamic {
            // The whole batch's pixels at once: draws in the same order as image by image.
            let mut pixels = Vec::with_capacity(idx.len() * l);
            for &i in idx {
                pixels.extend_from_slice(&src[i * l..(i + 1) * l]);
            }
            let levels = if self.range == Range::Unit { (0.0, 1.0) } else { (-1.0, 1.0) };
            binarize_into(&pixels, r, levels, &mut x);
        } else {
            for &i in idx {
                let img = &src[i * l..(i + 1) * l];
                match self.range {
                    Range::Unit => x.extend(img.iter().map(|&p| p as f32 / 255.0)),
                    Range::Symmetric => x.extend(img.iter().map(|&p| p as f32 / 127.5 - 1.0)),
                }
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
