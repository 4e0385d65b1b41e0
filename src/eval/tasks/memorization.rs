//! Memorisation: distances from samples, and from unseen test images, to their nearest training
//! image, in pixels and in features. Samples nearer the training set than unseen real images are
//! (ratio < 1) are copies rather than new images.

use super::{Ctx, Measured, Timer};
use crate::data::Dataset;
use crate::eval::features::{FEATURE_DIM, Features, unit};
use crate::eval::report::{Memorization, NnDistances, Quantiles};
use crate::eval::{knn, stats};
use anyhow::Result;
use std::path::Path;

pub fn run(cx: &Ctx, tm: &mut Timer) -> Result<Measured<Memorization>> {
    let (train, test) = (&cx.data.train, &cx.data.test);
    let m = cx.o.nn_n.min(cx.n).min(test.n);
    let png = cx.o.nearest_png.as_deref();
    let values = tm.time("memorization", || nearest(cx.samples, train, test, m, cx.feats()?, png))?;
    let protocol = format!(
        "L2 distance to the nearest of all {} training images, pixel space ([0,1]) and feature space, for {m} \
         samples and {m} test images; nn_ratio = median(sample→train) / median(test→train) in pixels \
         (< 1: samples sit closer to training images than unseen real images do)",
        train.n
    );
    Ok(Measured { values, protocol })
}

fn quantiles(v: &[f32]) -> Quantiles {
    let q = stats::quantiles(v, &[0.05, 0.25, 0.5, 0.75, 0.95]);
    Quantiles { q05: q[0], q25: q[1], median: q[2], q75: q[3], q95: q[4], mean: stats::mean_std(v).0 }
}

/// Distances of the first `m` samples and test images to all of `train`; with `png`, a picture of
/// samples beside their 3 nearest training images.
fn nearest(
    samples: &[f32],
    train: &Dataset,
    test: &Dataset,
    m: usize,
    feats: &Features,
    png: Option<&Path>,
) -> Result<Memorization> {
    let d = train.shape.len();
    let s = &samples[..m * d];
    let t = unit(&test.images[..m * d]);
    let tr = unit(&train.images);
    let ns = knn::nearest(s, &tr, d, 3)?;
    let nt = knn::nearest(&t, &tr, d, 1)?;
    let ds: Vec<f32> = ns.iter().map(|v| v[0].1).collect();
    let dt: Vec<f32> = nt.iter().map(|v| v[0].1).collect();
    let fs = feats.embed(s)?;
    let ft = feats.embed(&t)?;
    let ftr = feats.embed(&tr)?;
    let k = FEATURE_DIM;
    let fds: Vec<f32> = knn::nearest(&fs.features, &ftr.features, k, 1)?.iter().map(|v| v[0].1).collect();
    let fdt: Vec<f32> = knn::nearest(&ft.features, &ftr.features, k, 1)?.iter().map(|v| v[0].1).collect();
    let med = |v: &[f32]| stats::quantiles(v, &[0.5])[0];
    let distances = |a: &[f32], b: &[f32]| {
        let mb = med(b);
        NnDistances { ratio: (mb > 0.0).then(|| med(a) / mb), samples: quantiles(a), test: quantiles(b) }
    };
    if let Some(p) = png {
        // Rows: a sample, then its 3 nearest training images.
        let rows = m.min(8);
        let mut img = Vec::with_capacity(rows * 4 * d);
        for (i, nn) in ns.iter().take(rows).enumerate() {
            img.extend_from_slice(&s[i * d..(i + 1) * d]);
            for &(j, _) in nn {
                img.extend_from_slice(&tr[j * d..(j + 1) * d]);
            }
        }
        crate::viz::grid::save_grid(&img, train.shape, 4, p)?;
    }
    Ok(Memorization {
        n: m,
        pixel: distances(&ds, &dt),
        feature: distances(&fds, &fdt),
        exact_copies: ds.iter().filter(|&&v| v < 1e-3).count(),
        nearest_png: png.map(|p| p.display().to_string()),
    })
}
