//! Sharpness: variance of the Laplacian of the samples and of real test images.

use super::{Ctx, Measured, Timer};
use crate::eval::features::unit;
use crate::eval::sharpness::laplacian_variance;
use anyhow::Result;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sharpness {
    pub samples: f64,
    pub real: f64,
}

pub fn run(cx: &Ctx, tm: &mut Timer) -> Result<Measured<Sharpness>> {
    let sh = cx.test.shape;
    let samples = tm.time("sharpness", || laplacian_variance(cx.samples, sh.channels, sh.height, sh.width))?;
    let real = tm.time("sharpness", || laplacian_variance(&unit(&cx.test.images), sh.channels, sh.height, sh.width))?;
    Ok(Measured {
        values: Sharpness { samples, real },
        protocol: "variance of the 3×3 Laplacian response over each image's interior, mean over images ([0,1] pixels)"
            .into(),
    })
}
