//! Precision and recall of the samples against test images (k-NN balls in feature space).

use super::{Ctx, Measured, Timer};
use crate::eval::features::FEATURE_DIM;
use crate::eval::prd::PrecisionRecall;
use anyhow::Result;

pub fn run(cx: &Ctx, tm: &mut Timer) -> Result<Measured<PrecisionRecall>> {
    let (s, t) = cx.emb()?;
    let pr =
        tm.time("prd", || crate::eval::prd::precision_recall(&t.features, &s.features, FEATURE_DIM, cx.o.prd_k))?;
    let protocol = format!("Kynkäänniemi et al. 2019, k = {} nearest-neighbour balls in feature space", pr.k);
    Ok(Measured { values: pr, protocol })
}
