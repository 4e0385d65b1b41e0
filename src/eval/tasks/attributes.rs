//! Attribute coverage of the samples (datasets with an attribute network, e.g. CelebA): each
//! attribute's rate among samples vs among real test images, both read by the attribute network
//! (`eval::attributes`), with the annotated test rates for reference and real training images vs
//! the same test images as the floor.

use super::{Ctx, Measured, Timer};
use crate::eval::attributes::{THRESHOLD, gap, rates};
use crate::eval::features::NetKind;
use crate::eval::report::{AttributeAgreement, AttributeRate, ConditionAgreement, WorstAttribute};
use anyhow::{Result, bail};

#[derive(Clone, Debug, PartialEq)]
pub struct AttributeScores {
    pub gap: f64,
    pub floor: f64,
    pub worst: WorstAttribute,
    pub per_attribute: Vec<AttributeRate>,
}

/// Why class coverage is not measured with an attribute network (eval.json's note and protocol).
pub const NO_CLASSES: &str = "no class labels: the feature network is a multi-label attribute classifier, so class \
     coverage (classes covered, class KL, classifier score) is undefined; attribute coverage is attribute_gap \
     (--metrics attributes)";

pub fn run(cx: &Ctx, tm: &mut Timer) -> Result<Measured<AttributeScores>> {
    let f = cx.feats()?;
    if f.kind() != NetKind::Attributes {
        bail!("attribute coverage needs an attribute network; '{}' has a class network", f.meta.dataset);
    }
    let names = f.attribute_names();
    let k = names.len();
    let (s, t) = cx.emb()?;
    let (rs, rt) = (rates(&s.probs, k)?, rates(&t.probs, k)?);
    let g = gap(&rs, &rt)?;
    let tr = tm.time("features", || f.embed_dataset(cx.train_sub))?;
    let floor = gap(&rates(&tr.probs, k)?, &rt)?.mean;
    // Annotations of the same test images, when they name the same attributes.
    let annotated = cx.test.attributes.as_ref().filter(|a| a.names == names);
    let per_attribute = (0..k)
        .map(|j| AttributeRate {
            annotated: annotated.map(|a| a.rate(j)),
            gap: g.per_attribute[j],
            name: names[j].clone(),
            real: rt[j],
            samples: rs[j],
        })
        .collect();
    let (n, n_real) = (cx.n, cx.n_real());
    let protocol = format!(
        "attribute network (sha256 {}, mean held-out accuracy {:.3}): an image has attribute j when P(j) > \
         {THRESHOLD}; rate = share of images that have it; attribute_gap = mean over the {k} attributes of |rate among \
         {n} samples − rate among {n_real} test images|, both read by the same network; worst = the largest single \
         gap; floor = the gap of {} random training images vs the same test images; annotated = the test images' \
         own labels (reference)",
        f.hash(),
        f.meta.test_accuracy,
        cx.train_sub.n
    );
    let worst = WorstAttribute { attribute: names[g.worst].clone(), gap: g.worst_gap };
    Ok(Measured { values: AttributeScores { gap: g.mean, floor, worst, per_attribute }, protocol })
}

/// For samples of an attribute-conditioned model: per conditioned attribute, the share of samples
/// the attribute network reads as having it exactly when they were drawn with it; chance, the same
/// with the conditions of a seeded shuffle of the samples (what a model that ignores its condition
/// scores); ceiling, the network's accuracy against the real test images' annotations. None for
/// other sources.
pub fn agreement(cx: &Ctx) -> Result<Option<Measured<ConditionAgreement>>> {
    let Some((cond_names, rows)) = cx.conditions else { return Ok(None) };
    let f = cx.feats()?;
    let names = f.attribute_names();
    let k = names.len();
    let (s, t) = cx.emb()?;
    let (n, c) = (s.probs.len() / k.max(1), cond_names.len());
    if rows.len() != n * c {
        bail!("{} condition values for {n} samples of {c} attributes", rows.len());
    }
    let mut perm: Vec<usize> = (0..n).collect();
    rand::seq::SliceRandom::shuffle(&mut perm[..], &mut crate::util::rng(cx.o.seed, crate::util::Stream::Eval, 11));
    let annotated = cx.test.attributes.as_ref();
    let has = |p: f32| p > THRESHOLD;
    let mut per_attribute = Vec::new();
    for (jc, name) in cond_names.iter().enumerate() {
        // Attributes the network does not read (another dataset's names) are left out.
        let Some(j) = names.iter().position(|m| m == name) else { continue };
        let sample = |i: usize| has(s.probs[i * k + j]);
        let (own, shuffled) = (|i: usize| rows[i * c + jc] > 0.0, |i: usize| rows[perm[i] * c + jc] > 0.0);
        let (agreement, balanced) = scores(n, &sample, &own);
        let (chance, balanced_chance) = scores(n, &sample, &shuffled);
        let m = t.probs.len() / k;
        let (ceiling, balanced_ceiling) = match annotated.and_then(|a| a.index(name).map(|ja| (a, ja))) {
            Some((a, ja)) => scores(m.min(a.n()), &|i| has(t.probs[i * k + j]), &|i| a.row(i)[ja] == 1),
            None => (f64::NAN, f64::NAN),
        };
        per_attribute.push(AttributeAgreement {
            name: name.clone(),
            agreement,
            chance,
            ceiling,
            balanced,
            balanced_chance,
            balanced_ceiling,
        });
    }
    if per_attribute.is_empty() {
        return Ok(None);
    }
    let mean =
        |g: &dyn Fn(&AttributeAgreement) -> f64| per_attribute.iter().map(g).sum::<f64>() / per_attribute.len() as f64;
    let values = ConditionAgreement {
        mean: mean(&|a| a.agreement),
        chance: mean(&|a| a.chance),
        ceiling: mean(&|a| a.ceiling),
        balanced: mean(&|a| a.balanced),
        balanced_chance: mean(&|a| a.balanced_chance),
        balanced_ceiling: mean(&|a| a.balanced_ceiling),
        per_attribute: per_attribute.clone(),
    };
    let protocol = format!(
        "{n} samples, each drawn with a real training attribute row (the model's kept rows in turn); agreement = \
         share of samples on which the attribute network (sha256 {}; P > {THRESHOLD}) reads each conditioned \
         attribute as the condition says, averaged over {} attributes; chance = the same against the conditions \
         of a seeded shuffle of the samples; ceiling = the network's accuracy on the {} real test images' annotations; \
         balanced = the mean of the shares right among images with and without the attribute (NaN halves, where \
         one side is empty, are left out of the mean)",
        f.hash(),
        per_attribute.len(),
        t.probs.len() / k
    );
    Ok(Some(Measured { values, protocol }))
}

/// Accuracy and balanced accuracy of `read` against `truth` over images 0..n: the share where they
/// agree, and the mean of that share among images with the attribute and among those without
/// (one side alone when the other is empty; NaN when n is 0).
fn scores(n: usize, read: &dyn Fn(usize) -> bool, truth: &dyn Fn(usize) -> bool) -> (f64, f64) {
    let (mut right, mut pos, mut pos_right, mut neg_right) = (0usize, 0usize, 0usize, 0usize);
    for i in 0..n {
        let (r, t) = (read(i), truth(i));
        right += usize::from(r == t);
        if t {
            pos += 1;
            pos_right += usize::from(r);
        } else {
            neg_right += usize::from(!r);
        }
    }
    let neg = n - pos;
    let sides: Vec<f64> = [(pos_right, pos), (neg_right, neg)]
        .into_iter()
        .filter(|&(_, of)| of > 0)
        .map(|(r, of)| r as f64 / of as f64)
        .collect();
    let balanced = if sides.is_empty() { f64::NAN } else { sides.iter().sum::<f64>() / sides.len() as f64 };
    (right as f64 / n.max(1) as f64, balanced)
}

#[cfg(test)]
mod tests {
    #[test]
    fn balanced_accuracy_weighs_both_sides_equally() {
        // 10 images, 2 with the attribute; reading "absent" everywhere is 80 % right, 50 % balanced.
        let truth = |i: usize| i < 2;
        assert_eq!(super::scores(10, &|_| false, &truth), (0.8, 0.5));
        // One of two positives and 7 of 8 negatives: (1/2 + 7/8) / 2.
        let read = |i: usize| i == 0 || i == 9;
        assert_eq!(super::scores(10, &read, &truth), (0.8, 0.6875));
        // Only one side present: its share alone.
        assert_eq!(super::scores(3, &|i| i > 0, &|_| true), (2.0 / 3.0, 2.0 / 3.0));
    }
}
