//! Text–image agreement of a text-conditioned model (StackGAN), stage by stage.
//!
//! Each of the first n test images lends its caption (its first phrasing): one sample is drawn per
//! caption, at stage I (upsampled) and at stage II, from the same codes. Agreement is read off the
//! samples by instruments that never saw the model: the dataset's classifier for the class the
//! caption names, and the pixel measurements the captions were made from (`data::captions`) for
//! each attribute word it uses. The same scores for the real test images under their own captions
//! are the ceiling (attributes: 1 by construction, since the captions were measured from those
//! very pixels); under another image's caption (a seeded permutation) they are chance. Image
//! quality at each stage (FID, precision, recall) shows what the second stage adds.

use super::Measured;
use crate::data::captions::{self, Intent, Thresholds};
use crate::data::{ImageShape, Splits};
use crate::eval::features::{Embedding, FEATURE_DIM, Features, NetKind, argmax_rows};
use crate::models::Model;
use crate::models::stackgan::Stage;
use crate::util::{Stream, rng};
use anyhow::Result;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How often images agree with the captions they were drawn for (or paired with).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// Share whose classifier class is the class the caption names (captions that name one).
    pub class: Option<f64>,
    /// Per attribute: share whose measured level is the one the caption's word names, over the
    /// captions that name it.
    pub attributes: BTreeMap<String, f64>,
    /// Mean over attributes.
    pub attributes_mean: Option<f64>,
}

/// One stage's samples: image quality and agreement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageScores {
    pub stage: String,
    pub fid: f64,
    pub precision: f64,
    pub recall: f64,
    pub agreement: Agreement,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextScores {
    /// Where the captions came from.
    pub captions: String,
    pub n: usize,
    /// Stage I, then stage II.
    pub stages: Vec<StageScores>,
    /// Real test images with their own captions: the ceiling.
    pub real: Agreement,
    /// Real test images with another image's caption: chance.
    pub chance: Agreement,
}

/// The text block of `eval.json` for a text model (None for any other model).
pub fn run(
    model: &Model,
    data: &Splits,
    feats: &Features,
    n: usize,
    seed: u64,
) -> Result<Option<Measured<TextScores>>> {
    let Ok(text) = model.text() else { return Ok(None) };
    let td = captions::for_splits(&data.name, data)?;
    let n = n.min(data.test.n).max(1);
    let test = data.test.head(n);
    let caps: Vec<&str> = td.test.iter().take(n).map(|c| c[0].as_str()).collect();
    let tokens: Vec<Vec<u32>> = caps.iter().map(|c| text.tokens_lossy(c)).collect();
    // Scored with the rule the run's captions were made with (its stored thresholds).
    let th = text.thresholds.as_ref();
    let intents: Vec<Intent> = caps
        .iter()
        .map(|c| captions::intent(c, th.map_or(captions::AttributeSet::Objects, |t| t.set), &text.class_words))
        .collect();
    let own: Vec<&Intent> = intents.iter().collect();
    let z = model.prior(n, &mut rng(seed, Stream::Sample, 3));
    let t_emb = feats.embed_dataset(&test)?;
    let mut stages = Vec::new();
    for (stage, name) in [(Stage::One, "I"), (Stage::Two, "II")] {
        let imgs = model.decode_tokens_host(&z, &tokens, stage);
        let emb = feats.embed(&imgs)?;
        let pr = crate::eval::prd::precision_recall(&t_emb.features, &emb.features, FEATURE_DIM, 3)?;
        let bytes: Vec<u8> = imgs.iter().map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
        stages.push(StageScores {
            stage: name.into(),
            fid: crate::eval::fid::fid(&emb.features, &t_emb.features, FEATURE_DIM)?,
            precision: pr.precision,
            recall: pr.recall,
            agreement: agreement(&own, &bytes, &emb, test.shape, th),
        });
    }
    let real = agreement(&own, &test.images, &t_emb, test.shape, th);
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut rng(seed, Stream::Eval, 11));
    let shuffled: Vec<&Intent> = perm.iter().map(|&j| &intents[j]).collect();
    let chance = agreement(&shuffled, &test.images, &t_emb, test.shape, th);
    let source = if th.is_some() {
        "made from each image's label and measured attributes (data::captions)"
    } else {
        "the dataset's own caption files"
    };
    let protocol = format!(
        "{n} test captions (first phrasing each), one sample per caption at each stage from the same codes (seed \
         {seed}); class agreement: the dataset classifier's argmax equals the caption's class; attribute agreement: \
         the sample's measured level (per-class terciles of the training set) equals the caption's word; real = test \
         images under their own captions (ceiling), chance = under a permuted caption; FID and precision/recall \
         (k = 3) against the same {n} test images"
    );
    Ok(Some(Measured { values: TextScores { captions: source.into(), n, stages, real, chance }, protocol }))
}

/// Scores of `images` (u8, the dataset's shape) against `intents`, image i against intent i.
fn agreement(
    intents: &[&Intent],
    images: &[u8],
    emb: &Embedding,
    shape: ImageShape,
    th: Option<&Thresholds>,
) -> Agreement {
    // An attribute network predicts no class: class agreement is then not measured.
    let classes = emb.kind == NetKind::Classes;
    let predicted = if classes { argmax_rows(&emb.probs, emb.classes) } else { vec![0; emb.n] };
    let (mut hit, mut named) = (0usize, 0usize);
    for (i, it) in intents.iter().enumerate() {
        if let Some(c) = it.class.filter(|_| classes) {
            named += 1;
            hit += usize::from(predicted[i] == c);
        }
    }
    let mut out = Agreement { class: (named > 0).then(|| hit as f64 / named as f64), ..Default::default() };
    let Some(th) = th else { return out };
    let names = th.set.attributes();
    let mut counts = [(0usize, 0usize); captions::ATTRS];
    let len = shape.len();
    for (i, it) in intents.iter().enumerate() {
        let m = captions::measure(th.set, &images[i * len..(i + 1) * len], shape);
        let fallback = predicted[i];
        for (a, h) in captions::attribute_hits(it, m, th, fallback).into_iter().enumerate() {
            if let Some(h) = h {
                counts[a].1 += 1;
                counts[a].0 += usize::from(h);
            }
        }
    }
    for (a, (h, k)) in counts.iter().enumerate() {
        if *k > 0 {
            out.attributes.insert(names[a].0.to_string(), *h as f64 / *k as f64);
        }
    }
    if !out.attributes.is_empty() {
        out.attributes_mean = Some(out.attributes.values().sum::<f64>() / out.attributes.len() as f64);
    }
    out
}
