//! The metric tasks behind `latentlab eval`, one file each (after google/compare_gan's "each
//! metric is a task that returns named values and its protocol"). A task reads the shared
//! [`Ctx`] — samples, the real reference sets, the feature network — and returns
//! [`Measured`]: its typed values beside what was measured how. The driver
//! (`evaluate::evaluate`) runs the requested ones and files the results into `EvalReport`.

pub mod attributes;
pub mod coverage;
pub mod fid;
pub mod kid;
pub mod latent;
pub mod memorization;
pub mod nll;
pub mod prd;
pub mod sharpness;
pub mod text;

use super::evaluate::EvalOptions;
use super::features::{Embedding, Features};
use crate::data::{Dataset, Splits};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::time::Instant;

/// A task's result: its values and its protocol.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured<V, P = String> {
    pub values: V,
    pub protocol: P,
}

/// What every task may look at.
pub struct Ctx<'a> {
    pub data: &'a Splits,
    pub o: &'a EvalOptions,
    /// Present whenever a requested metric needs it (checked by the driver).
    pub feats: Option<&'a Features>,
    /// The images judged, in [0,1], `n` of them.
    pub samples: &'a [f32],
    pub n: usize,
    /// The first `n_real` test images.
    pub test: &'a Dataset,
    /// `n_real` training images, a seeded random subset.
    pub train_sub: &'a Dataset,
    /// Features of the samples and of `test`, when a feature-space metric was requested.
    pub emb: Option<&'a (Embedding, Embedding)>,
    /// The attributes each sample was drawn with (models conditioned on attributes): names and
    /// rows of ±1, one row per sample.
    pub conditions: Option<(&'a [String], &'a [f32])>,
}

impl Ctx<'_> {
    pub fn feats(&self) -> Result<&Features> {
        self.feats.context("feature network")
    }
    pub fn n_real(&self) -> usize {
        self.test.n
    }
    /// The samples' and test images' features (a feature-space task runs only with them).
    pub fn emb(&self) -> Result<&(Embedding, Embedding)> {
        self.emb.context("embeddings of samples and test images")
    }
}

/// Seconds spent per stage, for the protocol.
#[derive(Default)]
pub struct Timer(pub BTreeMap<&'static str, f64>);

impl Timer {
    pub fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let t = Instant::now();
        let r = f();
        *self.0.entry(name).or_default() += t.elapsed().as_secs_f64();
        r
    }
}

/// Embed the samples and the test images once for all feature-space tasks.
pub fn embed(cx: &Ctx, tm: &mut Timer) -> Result<(Embedding, Embedding)> {
    let s = tm.time("features", || cx.feats()?.embed(cx.samples))?;
    let t = tm.time("features", || cx.feats()?.embed_dataset(cx.test))?;
    Ok((s, t))
}
