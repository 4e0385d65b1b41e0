//! Bernoulli negative log-likelihood with logits, summed per row, in one pass forward and one
//! backward (burn's composite takes about twenty element-wise passes with its backward).

use super::simd::{self, LANES, multiversion};
use rayon::prelude::*;

multiversion! {
    /// Σⱼ softplus(lⱼ) − tⱼ·lⱼ of one row. The terms go through a small buffer in a plain loop
    /// (which LLVM vectorises, exp and ln included), then into `LANES` accumulators.
    pub fn row_nll(l: &[f32], t: &[f32]) -> f32 {
        const B: usize = 256;
        let mut buf = [0.0f32; B];
        let mut acc = [0.0f32; LANES];
        let mut tail = 0.0f32;
        for (lc, tc) in l.chunks(B).zip(t.chunks(B)) {
            let n = lc.len();
            for ((b, &lv), &tv) in buf[..n].iter_mut().zip(lc).zip(tc) {
                *b = simd::softplus::<M>(lv) - tv * lv;
            }
            let full = n / LANES * LANES;
            for c in buf[..full].chunks_exact(LANES) {
                for (a, v) in acc.iter_mut().zip(c) {
                    *a += *v;
                }
            }
            tail += buf[full..n].iter().sum::<f32>();
        }
        acc.iter().sum::<f32>() + tail
    }
}

multiversion! {
    /// dl = g·(σ(l) − t) and, when asked, dt = −g·l, for one row with upstream gradient g.
    fn row_grad(l: &[f32], t: &[f32], g: f32, dl: &mut [f32], dt: Option<&mut [f32]>) {
        for ((d, &lv), &tv) in dl.iter_mut().zip(l).zip(t) {
            *d = g * (simd::sigmoid::<M>(lv) - tv);
        }
        if let Some(dt) = dt {
            for (d, &lv) in dt.iter_mut().zip(l) {
                *d = -g * lv;
            }
        }
    }
}

/// Rows per task: about `PAR_MIN` elements.
fn rows_per_task(d: usize) -> usize {
    (super::act::PAR_MIN / d.max(1)).max(1)
}

/// [B, D] logits and [B/group, D] targets → [B] per-row sums; logit row r is scored against
/// target row r / group (`group` consecutive rows share a target: importance samples of one image).
pub fn bce_rows(l: &[f32], t: &[f32], d: usize, group: usize) -> Vec<f32> {
    assert!(group >= 1 && l.len() == t.len() * group, "logits and targets differ in size");
    if d == 0 {
        return vec![0.0; 0];
    }
    let rows = l.len() / d;
    let mut out = vec![0.0f32; rows];
    let per = rows_per_task(d);
    out.par_chunks_mut(per).enumerate().for_each(|(i, o)| {
        for (j, v) in o.iter_mut().enumerate() {
            let r = i * per + j;
            let tr = r / group;
            *v = row_nll(&l[r * d..(r + 1) * d], &t[tr * d..(tr + 1) * d]);
        }
    });
    out
}

/// Gradients of `bce_rows` given the upstream gradient per row: (d logits, d targets if asked;
/// targets shared by `group` rows get no gradient).
pub fn bce_rows_backward(
    l: &[f32],
    t: &[f32],
    d: usize,
    group: usize,
    g: &[f32],
    need_t: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    assert!(group == 1 || !need_t, "gradients of shared targets are not implemented");
    let mut dl = vec![0.0f32; l.len()];
    let mut dt = need_t.then(|| vec![0.0f32; t.len()]);
    if d == 0 {
        return (dl, dt);
    }
    let per = rows_per_task(d) * d;
    let dts: Vec<Option<&mut [f32]>> = match dt.as_deref_mut() {
        Some(v) => v.chunks_mut(per).map(Some).collect(),
        None => (0..l.len().div_ceil(per)).map(|_| None).collect(),
    };
    dl.par_chunks_mut(per).zip(dts).enumerate().for_each(|(i, (dlc, mut dtc))| {
        for (j, dlr) in dlc.chunks_mut(d).enumerate() {
            let r = i * per / d + j;
            let dtr = dtc.as_deref_mut().map(|v| &mut v[j * d..(j + 1) * d]);
            let tr = r / group;
            row_grad(&l[r * d..(r + 1) * d], &t[tr * d..(tr + 1) * d], g[r], dlr, dtr);
        }
    });
    (dl, dt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_gradients_match_f64_definition() {
        let (b, d) = (37, 1000);
        let l: Vec<f32> = (0..b * d).map(|i| ((i * 7919) % 4001) as f32 / 100.0 - 20.0).collect();
        let t: Vec<f32> = (0..b * d).map(|i| ((i * 104729) % 101) as f32 / 100.0).collect();
        let out = bce_rows(&l, &t, d, 1);
        let grouped = bce_rows(&l, &t[..d], d, b);
        for r in 0..b {
            assert_eq!(grouped[r], bce_rows(&l[r * d..(r + 1) * d], &t[..d], d, 1)[0], "grouped row {r}");
        }
        for r in 0..b {
            let want: f64 = (0..d)
                .map(|j| {
                    let (x, y) = (l[r * d + j] as f64, t[r * d + j] as f64);
                    x.max(0.0) + (-x.abs()).exp().ln_1p() - y * x
                })
                .sum();
            assert!((out[r] as f64 - want).abs() < 1e-5 * want.abs().max(1.0), "row {r}: {} vs {want}", out[r]);
        }
        let g: Vec<f32> = (0..b).map(|r| r as f32 * 0.1 - 1.0).collect();
        let (dl, dt) = bce_rows_backward(&l, &t, d, 1, &g, true);
        let dt = dt.unwrap();
        for i in 0..b * d {
            let (x, y, gr) = (l[i] as f64, t[i] as f64, g[i / d] as f64);
            let want = gr * (1.0 / (1.0 + (-x).exp()) - y);
            assert!((dl[i] as f64 - want).abs() < 1e-6 * gr.abs().max(1.0), "dl[{i}]");
            assert!((dt[i] as f64 + gr * x).abs() < 1e-5 * x.abs().max(1.0), "dt[{i}]");
        }
    }
}
