//! Encoder models: per-axis code statistics on test images, and how often prior draws decode to
//! images the classifier is confident about (≥ 0.9), beside the same rate for real test images.
//! With an attribute network (no classes) "confident" is read per attribute: the share of
//! (image, attribute) pairs whose probability is ≤ 0.1 or ≥ 0.9.

use crate::data::Splits;
use crate::eval::evaluate::generate;
use crate::eval::features::{Embedding, Features, NetKind};
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
    let conf = |e: &Embedding| match e.kind {
        NetKind::Classes => {
            e.probs.chunks(e.classes).filter(|r| r.iter().cloned().fold(0f32, f32::max) >= 0.9).count() as f64
                / e.n.max(1) as f64
        }
        NetKind::Attributes => {
            e.probs.iter().filter(|&&p| !(0.1..0.9).contains(&p)).count() as f64 / e.probs.len().max(1) as f64
        }
    };
    let confident = match feats.kind() {
        NetKind::Classes => "confident = max softmax ≥ 0.9",
        NetKind::Attributes => {
            "no class labels: confident = share of (image, attribute) pairs with attribute probability ≤ 0.1 or ≥ 0.9"
        }
    };
    Ok(Latent {
        axes,
        prior: format!("{:?}", model.spec.prior).to_lowercase(),
        confident_fraction_prior: conf(&feats.embed(&imgs)?),
        confident_fraction_real: conf(&feats.embed_dataset(&test)?),
        protocol: format!("codes of {n} test images; {n} prior draws decoded and classified, {confident}"),
    })
}
