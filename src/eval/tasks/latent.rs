//! Encoder models: per-axis code statistics on test images, and how often prior draws decode to
//! images the classifier is confident about (≥ 0.9), beside the same rate for real test images.

use crate::data::Splits;
use crate::eval::evaluate::generate;
use crate::eval::features::{Embedding, Features};
use crate::eval::report::{AxisStats, Latent};
use crate::eval::stats;
use crate::models::Model;
use anyhow::Result;

/// The values and, in `Latent::protocol`, how they were measured.
pub fn run(model: &Model, data: &Splits, feats: &Features, seed: u64) -> Result<Latent> {
    let n = data.test.n.min(5000);
    let test = data.test.head(n);
    let codes = model.encode_dataset(&test)?;
    let l = model.spec.latent_dim;
    let axes = (0..l)
        .map(|j| {
            let col: Vec<f32> = codes.chunks(l).map(|r| r[j]).collect();
            let (mean, std) = stats::mean_std(&col);
            AxisStats { mean, std }
        })
        .collect();
    let imgs = generate(model, n, seed);
    let conf = |e: &Embedding| {
        e.probs.chunks(e.classes).filter(|r| r.iter().cloned().fold(0f32, f32::max) >= 0.9).count() as f64
            / e.n.max(1) as f64
    };
    Ok(Latent {
        axes,
        prior: format!("{:?}", model.spec.prior).to_lowercase(),
        confident_fraction_prior: conf(&feats.embed(&imgs)?),
        confident_fraction_real: conf(&feats.embed_dataset(&test)?),
        protocol: format!(
            "codes of {n} test images; {n} prior draws decoded and classified, confident = max softmax ≥ 0.9"
        ),
    })
}
