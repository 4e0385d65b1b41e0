//! FID of the samples against test images, and its floor: real training images against the
//! same test images (what a perfect model would score with this many images).

use super::{Ctx, Measured, Timer};
use crate::eval::features::FEATURE_DIM;
use anyhow::Result;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fid {
    pub fid: f64,
    pub floor: f64,
}

pub fn run(cx: &Ctx, tm: &mut Timer) -> Result<Measured<Fid>> {
    let (s, t) = cx.emb()?;
    let tr = tm.time("features", || cx.feats()?.embed_dataset(cx.train_sub))?;
    let fid = tm.time("fid", || crate::eval::fid::fid(&s.features, &t.features, FEATURE_DIM))?;
    let floor = tm.time("fid", || crate::eval::fid::fid(&tr.features, &t.features, FEATURE_DIM))?;
    let (n, n_real) = (cx.n, cx.n_real());
    Ok(Measured {
        values: Fid { fid, floor },
        protocol: format!(
            "Fréchet distance of feature Gaussians (f64, symmetric eigendecomposition): {n} samples vs {n_real} test \
             images; floor = {n_real} random training images vs the same test images"
        ),
    })
}
