//! Attribute coverage of the samples (datasets with an attribute network, e.g. CelebA): each
//! attribute's rate among samples vs among real test images, both read by the attribute network
//! (`eval::attributes`), with the annotated test rates for reference and real training images vs
//! the same test images as the floor.

use super::{Ctx, Measured, Timer};
use crate::eval::attributes::{THRESHOLD, gap, rates};
use crate::eval::features::NetKind;
use crate::eval::report::{AttributeRate, WorstAttribute};
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
