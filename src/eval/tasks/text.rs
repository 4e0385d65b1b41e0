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
    /// Annotated captions (faces): per attribute, the mean of the shares right among captions that
    /// say it is present and among those that say it is absent (where both are said), so an
    /// attribute stated mostly one way is not scored by that way alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub balanced: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balanced_mean: Option<f64>,
    /// Annotated captions: per attribute, how many captions state it present and absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stated: BTreeMap<String, [usize; 2]>,
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
    /// Captions made from human annotations (faces), scored by the attribute classifier.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub annotated: bool,
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
    if td.attributes.is_some() {
        return faces(model, data, &td, feats, n, seed).map(Some);
    }
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
    Ok(Some(Measured {
        values: TextScores { captions: source.into(), n, stages, real, chance, annotated: false },
        protocol,
    }))
}

/// Text–image agreement on faces: captions made from the test faces' annotations (`captions::faces`),
/// `n` of them (face i mod the test faces, its phrasings in turn), one sample each; every attribute a
/// caption states is read off the sample by the face feature network's attribute classifier
/// (P > ½ is present).
fn faces(
    model: &Model,
    data: &Splits,
    td: &captions::TextData,
    feats: &Features,
    n: usize,
    seed: u64,
) -> Result<Measured<TextScores>> {
    let text = model.text()?;
    let names = &feats.meta.attribute_names;
    if feats.meta.kind != NetKind::Attributes || names.is_empty() {
        anyhow::bail!("text agreement on faces needs the attribute feature network; this one predicts classes");
    }
    let m = data.test.n.min(td.test.len());
    anyhow::ensure!(m > 0, "no test faces to caption");
    let n = n.max(1);
    // Caption i: test face i mod m, its (i / m)-th phrasing (cycled).
    let caps: Vec<&str> = (0..n)
        .map(|i| {
            let c = &td.test[i % m];
            c[(i / m) % c.len()].as_str()
        })
        .collect();
    let said: Vec<Vec<(usize, bool)>> = caps
        .iter()
        .map(|c| {
            captions::faces::statements(c)
                .into_iter()
                .filter_map(|(a, v)| names.iter().position(|x| x == a).map(|j| (j, v)))
                .collect()
        })
        .collect();
    let own: Vec<&[(usize, bool)]> = said.iter().map(|s| s.as_slice()).collect();
    let tokens: Vec<Vec<u32>> = caps.iter().map(|c| text.tokens_lossy(c)).collect();
    let z = model.prior(n, &mut rng(seed, Stream::Sample, 3));
    let test = data.test.head(m);
    let t_emb = feats.embed_dataset(&test)?;
    let k = t_emb.classes;
    let mut stages = Vec::new();
    for (stage, label) in [(Stage::One, "I"), (Stage::Two, "II")] {
        let imgs = model.decode_tokens_host(&z, &tokens, stage);
        let emb = feats.embed(&imgs)?;
        let pr = crate::eval::prd::precision_recall(&t_emb.features, &emb.features, FEATURE_DIM, 3)?;
        stages.push(StageScores {
            stage: label.into(),
            fid: crate::eval::fid::fid(&emb.features, &t_emb.features, FEATURE_DIM)?,
            precision: pr.precision,
            recall: pr.recall,
            agreement: face_agreement(&own, |i| &emb.probs[i * k..(i + 1) * k], names),
        });
    }
    // The real face each caption was made from, and (chance) under a permuted caption.
    let real_of = |i: usize| &t_emb.probs[(i % m) * k..(i % m + 1) * k];
    let real = face_agreement(&own, real_of, names);
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut rng(seed, Stream::Eval, 11));
    let shuffled: Vec<&[(usize, bool)]> = perm.iter().map(|&j| said[j].as_slice()).collect();
    let chance = face_agreement(&shuffled, real_of, names);
    let protocol = format!(
        "{n} captions made from the annotations of the {m} test faces (face i mod {m}, its phrasings in turn), one \
         sample per caption at each stage from the same codes (seed {seed}); every attribute a caption states (present \
         or absent, read back with captions::faces::statements) is checked by the face feature network's attribute \
         classifier (P > 1/2 = present); per attribute: the share right, and balanced (the mean of the shares right \
         among captions stating it present and absent); real = the test face the caption was made from (ceiling), \
         chance = a real face under a permuted caption; FID and precision/recall (k = 3) of these conditional samples \
         against the {m} test faces"
    );
    let values = TextScores {
        captions: "made from each face's human-annotated attributes (data::captions::faces)".into(),
        n,
        stages,
        real,
        chance,
        annotated: true,
    };
    Ok(Measured { values, protocol })
}

/// Agreement of images (their attribute probabilities, `probs(i)` for image i) with what each
/// caption states.
fn face_agreement<'a>(said: &[&[(usize, bool)]], probs: impl Fn(usize) -> &'a [f32], names: &[String]) -> Agreement {
    // Per attribute: [right, stated] among "present" and among "absent" statements.
    let mut c = vec![[[0usize; 2]; 2]; names.len()];
    for (i, st) in said.iter().enumerate() {
        let p = probs(i);
        for &(j, v) in *st {
            let side = &mut c[j][usize::from(v)];
            side[1] += 1;
            side[0] += usize::from((p[j] > 0.5) == v);
        }
    }
    let mut out = Agreement::default();
    for (j, [neg, pos]) in c.iter().enumerate() {
        let total = neg[1] + pos[1];
        if total == 0 {
            continue;
        }
        let name = names[j].clone();
        out.attributes.insert(name.clone(), (neg[0] + pos[0]) as f64 / total as f64);
        out.stated.insert(name.clone(), [pos[1], neg[1]]);
        if neg[1] > 0 && pos[1] > 0 {
            out.balanced.insert(name, 0.5 * (neg[0] as f64 / neg[1] as f64 + pos[0] as f64 / pos[1] as f64));
        }
    }
    let mean = |m: &BTreeMap<String, f64>| (!m.is_empty()).then(|| m.values().sum::<f64>() / m.len() as f64);
    out.attributes_mean = mean(&out.attributes);
    out.balanced_mean = mean(&out.balanced);
    out
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
