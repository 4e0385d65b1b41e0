//! NCHW batch norm: each channel is a set of contiguous planes, one task per block of channels.

use super::{NormOut, NormShape};
use crate::kernels::SharedMut;
use crate::kernels::act::{Act, with_act};
use crate::kernels::simd::{LANES, multiversion};
use rayon::prelude::*;

/// Channels per task: enough work per task to outweigh the hand-off.
fn channels_per_task(sh: &NormShape) -> usize {
    (crate::kernels::act::PAR_MIN / sh.count().max(1)).clamp(1, sh.c.max(1))
}

/// Σ v with `LANES` f32 accumulators (vectorised, fixed association), returned in f64.
#[inline(always)]
fn lane_sum(v: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut acc = [0.0f32; LANES];
    let mut it = v.chunks_exact(LANES);
    for c in &mut it {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f(x);
        }
    }
    let tail: f64 = it.remainder().iter().map(|&x| f(x) as f64).sum();
    acc.iter().map(|&a| a as f64).sum::<f64>() + tail
}

multiversion! {
        fn plane_sum(v: &[f32]) -> f64 {
        lane_sum(v, |x| x)
    }
}

multiversion! {
    fn plane_sq_dev(v: &[f32], m: f32) -> f64 {
        lane_sum(v, |x| (x - m) * (x - m))
    }
}

multiversion! {
    fn plane_apply(dst: &mut [f32], x: &[f32], a: f32, b: f32, act: Act) {
        with_act!(act, f, _d => dst.iter_mut().zip(x).for_each(|(d, &v)| *d = f(a * v + b)))
    }
}

multiversion! {
    /// (Σg, Σg·(x − m)) with g = dy·f′(y), over one plane.
    fn plane_grad_sums(dy: &[f32], y: &[f32], x: &[f32], m: f32, act: Act) -> (f64, f64) {
        with_act!(act, _f, d => {
            let (mut sg, mut sgx) = ([0.0f32; LANES], [0.0f32; LANES]);
            let n = dy.len() / LANES * LANES;
            for i in (0..n).step_by(LANES) {
                for l in 0..LANES {
                    let g = dy[i + l] * d(y[i + l]);
                    sg[l] += g;
                    sgx[l] += g * (x[i + l] - m);
                }
            }
            let (mut tg, mut tgx) = (0.0f64, 0.0f64);
            for i in n..dy.len() {
                let g = dy[i] * d(y[i]);
                tg += g as f64;
                tgx += (g * (x[i] - m)) as f64;
            }
            (
                sg.iter().map(|&v| v as f64).sum::<f64>() + tg,
                sgx.iter().map(|&v| v as f64).sum::<f64>() + tgx,
            )
        })
    }
}

multiversion! {
    /// dx = a·dy·f′(y) + b + cx·(x − m) over one plane.
    fn plane_dx(dst: &mut [f32], dy: &[f32], y: &[f32], x: &[f32], coef: [f32; 4], act: Act) {
        let [a, b, cx, m] = coef;
        with_act!(act, _f, d => {
            for (((o, &g), &yv), &xv) in dst.iter_mut().zip(dy).zip(y).zip(x) {
                *o = a * (g * d(yv)) + b + cx * (xv - m);
            }
        })
    }
}

/// NCHW: y = f(γ·(x − μ)/√(σ² + ε) + β) with μ, σ² the batch statistics of each channel.
pub(super) fn forward_planes(sh: NormShape, x: &[f32], gamma: &[f32], beta: &[f32], eps: f64, act: Act) -> NormOut {
    let mut y = vec![0.0f32; sh.len()];
    let out = SharedMut(y.as_mut_ptr());
    let per = channels_per_task(&sh);
    let stats: Vec<(f32, f32)> = (0..sh.c)
        .into_par_iter()
        .with_min_len(per)
        .map(|c| {
            let planes = || (0..sh.n).map(move |b| (b * sh.c + c) * sh.s);
            let sum: f64 = planes().map(|o| plane_sum(&x[o..o + sh.s])).sum();
            let mean = sum / sh.count() as f64;
            // Two passes (not Σx² − N·μ²), which cancels badly when |μ| ≫ σ.
            let sq: f64 = planes().map(|o| plane_sq_dev(&x[o..o + sh.s], mean as f32)).sum();
            let var = sq / sh.count() as f64;
            let scale = gamma[c] as f64 / (var + eps).sqrt();
            let (a, b) = (scale as f32, (beta[c] as f64 - mean * scale) as f32);
            for o in planes() {
                // SAFETY: plane (b, c) is written only by the task that owns channel c.
                let dst = unsafe { out.slice(o, sh.s) };
                plane_apply(dst, &x[o..o + sh.s], a, b, act);
            }
            (mean as f32, var as f32)
        })
        .collect();
    let (mean, var) = stats.into_iter().unzip();
    NormOut { y, mean, var }
}

/// NCHW gradients of `forward_planes`: (dx, dγ, dβ).
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_planes(
    sh: NormShape,
    x: &[f32],
    y: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
    act: Act,
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut dx = vec![0.0f32; sh.len()];
    let out = SharedMut(dx.as_mut_ptr());
    let per = channels_per_task(&sh);
    let n = sh.count() as f64;
    let sums: Vec<(f32, f32)> = (0..sh.c)
        .into_par_iter()
        .with_min_len(per)
        .map(|c| {
            let planes = || (0..sh.n).map(move |b| (b * sh.c + c) * sh.s);
            let m = mean[c] as f64;
            let rstd = 1.0 / (var[c] as f64 + eps).sqrt();
            // g = dy·f′(y); Σg and Σg·x̂ with x̂ = (x − μ)·rstd.
            let (mut sg, mut sgx) = (0.0f64, 0.0f64);
            for o in planes() {
                let (a, b) = plane_grad_sums(&dy[o..o + sh.s], &y[o..o + sh.s], &x[o..o + sh.s], m as f32, act);
                sg += a;
                sgx += b;
            }
            sgx *= rstd;
            // dx = γ·rstd·(g − Σg/N − x̂·Σg·x̂/N)
            let k = gamma[c] as f64 * rstd;
            let coef = [k as f32, (-k * sg / n) as f32, (-k * sgx * rstd / n) as f32, m as f32];
            for o in planes() {
                // SAFETY: plane (b, c) is written only by the task that owns channel c.
                let dst = unsafe { out.slice(o, sh.s) };
                plane_dx(dst, &dy[o..o + sh.s], &y[o..o + sh.s], &x[o..o + sh.s], coef, act);
            }
            (sgx as f32, sg as f32)
        })
        .collect();
    let (dgamma, dbeta) = sums.into_iter().unzip();
    (dx, dgamma, dbeta)
}
