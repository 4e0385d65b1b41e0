//! Class coverage of the samples by the dataset's classifier, beside the same numbers for real
//! test images (the scale the samples' numbers are read on).

use super::{Ctx, Measured};
use crate::eval::coverage::{Coverage, coverage};
use anyhow::Result;

#[derive(Clone, Debug, PartialEq)]
pub struct Covered {
    pub samples: Coverage,
    pub real: Coverage,
}

pub fn run(cx: &Ctx) -> Result<Measured<Covered>> {
    let (s, t) = cx.emb()?;
    let samples = coverage(&s.probs, s.classes)?;
    let real = coverage(&t.probs, t.classes)?;
    let protocol = format!(
        "classifier argmax over {} samples; a class is covered with ≥ {} samples; KL(p̂(y) ‖ uniform) in nats; \
         classifier score = exp E KL(p(y|x) ‖ p(y))",
        cx.n, samples.coverage_threshold
    );
    Ok(Measured { values: Covered { samples, real }, protocol })
}
