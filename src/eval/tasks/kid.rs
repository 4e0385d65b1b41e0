//! KID: unbiased MMD² with the cubic polynomial kernel, over random subsets (samples vs test).

use super::{Ctx, Measured, Timer};
use crate::eval::features::FEATURE_DIM;
use crate::eval::kid::Kid;
use anyhow::Result;

pub fn run(cx: &Ctx, tm: &mut Timer) -> Result<Measured<Kid>> {
    let (s, t) = cx.emb()?;
    let o = cx.o;
    let k = tm.time("kid", || {
        crate::eval::kid::kid(&s.features, &t.features, FEATURE_DIM, o.kid_subsets, o.kid_subset_size, o.seed)
    })?;
    let protocol =
        format!("unbiased MMD², kernel (x·y/d + 1)³, {} subsets of {} (samples vs test)", k.subsets, k.subset_size);
    Ok(Measured { values: k, protocol })
}
