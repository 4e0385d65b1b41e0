//! Gradients of a convolution (`backward`) and of a transposed convolution
//! (`backward_transposed`): input, weight and bias, with per-chunk partial sums added in chunk order.

use super::layout::{add_into, chunk_nhwc, col2im, im2col, nchw_to_nhwc, transposed_weight, unpermute_weight};
use super::{Geom, Mem, winograd, with_scratch};
use crate::kernels::act::{Act, with_act};
use crate::kernels::gemm::{Par, matmul, view};
use crate::kernels::simd::multiversion;
use rayon::prelude::*;

multiversion! {
    /// dst ← src ⊙ f′(out), element-wise.
    fn times_deriv(dst: &mut [f32], src: &[f32], out: &[f32], act: Act) {
        with_act!(act, _f, d => {
            for ((o, &v), &y) in dst.iter_mut().zip(src).zip(out) {
                *o = v * d(y);
            }
        })
    }
}

multiversion! {
    /// g ← g ⊙ f′(out), element-wise.
    fn scale_by_deriv(g: &mut [f32], out: &[f32], act: Act) {
        with_act!(act, _f, d => {
            for (v, &y) in g.iter_mut().zip(out) {
                *v *= d(y);
            }
        })
    }
}

multiversion! {
    /// acc[c] += Σ_r rows[r, c].
    fn column_sums(rows: &[f32], acc: &mut [f32]) {
        let c = acc.len();
        for row in rows.chunks(c) {
            for (a, v) in acc.iter_mut().zip(row) {
                *a += *v;
            }
        }
    }
}

/// `upstream ⊙ f′(out)` for the images `b0..b0+nb` as NHWC rows; borrowed from `up` when it is
/// already NHWC and there is no activation, else written to `buf` (`tmp` is scratch).
#[allow(clippy::too_many_arguments)]
fn grad_rows<'a>(
    up: (&'a [f32], Mem),
    out: Option<(&[f32], Mem)>,
    act: Act,
    (b0, nb): (usize, usize),
    c: usize,
    s: usize,
    buf: &'a mut [f32],
    tmp: &mut [f32],
) -> &'a [f32] {
    let len = nb * c * s;
    match (out, act) {
        (Some((out, out_mem)), act) if act != Act::None => {
            let part = &up.0[b0 * c * s..][..len];
            let o = chunk_nhwc(out, out_mem, b0, nb, c, s, &mut tmp[..len]);
            match up.1 {
                Mem::Nhwc => times_deriv(&mut buf[..len], part, o, act),
                Mem::Nchw => {
                    nchw_to_nhwc(part, nb, c, s, &mut buf[..len]);
                    scale_by_deriv(&mut buf[..len], o, act);
                }
            }
            &buf[..len]
        }
        _ => chunk_nhwc(up.0, up.1, b0, nb, c, s, &mut buf[..len]),
    }
}

/// Σ parts, element-wise, added in part order (so the result does not depend on which thread
/// produced which part); the elements are split over the pool.
fn sum_in_order(parts: impl Iterator<Item = Vec<f32>>, len: usize) -> Vec<f32> {
    let parts: Vec<Vec<f32>> = parts.collect();
    let mut acc = vec![0.0f32; len];
    acc.par_chunks_mut(crate::kernels::act::PAR_MIN).enumerate().for_each(|(i, a)| {
        let o = i * crate::kernels::act::PAR_MIN;
        for p in &parts {
            add_into(a, &p[o..o + a.len()]);
        }
    });
    acc
}

/// Per-chunk output slices of `out` (or `None`s when there is no output), for a parallel zip.
fn chunk_outputs(out: Option<&mut [f32]>, per_chunk: usize, chunks: usize) -> Vec<Option<&mut [f32]>> {
    match out {
        Some(o) => o.chunks_mut(per_chunk).map(Some).collect(),
        None => (0..chunks).map(|_| None).collect(),
    }
}

/// Gradients of one layer; `None` where not requested. Input gradients are NHWC.
#[derive(Debug, Default)]
pub struct Grads {
    pub input: Option<Vec<f32>>,
    pub weight: Option<Vec<f32>>,
    pub bias: Option<Vec<f32>>,
}

/// One chunk's partial (weight, bias) gradients.
type ChunkGrads = (Option<Vec<f32>>, Option<Vec<f32>>);

/// What a backward pass should compute.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    pub input: bool,
    pub weight: bool,
    pub bias: bool,
}

/// A layer's tensors for its backward pass: the input (X side for a conv, Y side for a convT),
/// the output (for f′), the upstream gradient, each with its memory order.
#[derive(Clone, Copy)]
pub struct Saved<'a> {
    pub input: (&'a [f32], Mem),
    pub output: Option<(&'a [f32], Mem)>,
    pub grad: (&'a [f32], Mem),
}

/// Gradients of Y = f(W ⋆ X + b) from dY, with `wp` = `permute_weight(W)`.
pub fn backward(g: &Geom, s: Saved, wp: &[f32], act: Act, need: Need) -> Grads {
    assert_eq!(s.grad.0.len(), g.n * g.ys(), "conv output-gradient size");
    let (cb, p, kd, hw) = (g.chunk(), g.p(), g.kdim(), g.h * g.w);
    let chunks = g.n.div_ceil(cb);
    let mut dx = need.input.then(|| vec![0.0f32; g.n * g.xs()]);
    let outs = chunk_outputs(dx.as_deref_mut(), cb * g.xs(), chunks);
    let plan = winograd::applies(g).then(|| winograd::Plan::new(g));
    let ut = plan.as_ref().filter(|_| need.input).map(|p| p.weights_t(g, wp));
    let wq = (plan.is_none() && need.input).then(|| transposed_weight(g, wp));
    let parts: Vec<ChunkGrads> = outs
        .into_par_iter()
        .enumerate()
        .map(|(i, dxc)| {
            let (b0, nb) = (i * cb, cb.min(g.n - i * cb));
            let r = nb * p;
            let scratch = plan.as_ref().map_or(kd * r, |p| p.scratch(g, nb));
            with_scratch([scratch, r * g.co, (r * g.co).max(nb * g.xs())], |col, gbuf, tmp| {
                let gr = grad_rows(s.grad, s.output, act, (b0, nb), g.co, p, gbuf, tmp);
                let db = need.bias.then(|| {
                    let mut acc = vec![0.0f32; g.co];
                    column_sums(gr, &mut acc);
                    acc
                });
                if let Some(plan) = &plan {
                    // dM once for both gradients; dV and V share the other part of the scratch.
                    let (dm, v) = col.split_at_mut(plan.dm_len(g, nb));
                    plan.grad_transform(g, gr, nb, dm);
                    if let (Some(dxc), Some(ut)) = (dxc, &ut) {
                        plan.data_chunk(g, dm, nb, ut, dxc, v);
                    }
                    let du = need.weight.then(|| {
                        let xc = chunk_nhwc(s.input.0, s.input.1, b0, nb, g.ci, hw, &mut tmp[..nb * g.xs()]);
                        plan.weight_chunk(g, xc, nb, dm, v)
                    });
                    return (du, db);
                }
                if let (Some(dxc), Some(wq)) = (dxc, &wq) {
                    matmul(r, kd, g.co, col, kd, false, view(gr, g.co, 1), view(wq, kd, 1), Par::Seq);
                    col2im(g, col, nb, dxc);
                }
                let dw = need.weight.then(|| {
                    let xc = chunk_nhwc(s.input.0, s.input.1, b0, nb, g.ci, hw, &mut tmp[..nb * g.xs()]);
                    im2col(g, xc, nb, col);
                    let mut part = vec![0.0f32; kd * g.co];
                    // dWp[K′, co] = colᵀ[K′, r] · dY[r, co]
                    matmul(kd, g.co, r, &mut part, g.co, false, view(col, 1, kd), view(gr, g.co, 1), Par::Seq);
                    part
                });
                (dw, db)
            })
        })
        .collect();
    let (dws, dbs): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    Grads {
        input: dx,
        weight: need.weight.then(|| unpermute_weight(g, &sum_in_order(dws.into_iter().flatten(), g.co * kd))),
        bias: need.bias.then(|| sum_in_order(dbs.into_iter().flatten(), g.co)),
    }
}

/// Gradients of Z = f(Wᵀ ⋆ T + b), a transposed convolution (T on the Y side, Z on the X side),
/// from dZ, with `wp` = `permute_weight(W)`. `s.input` is T, `s.output` is Z, `s.grad` is dZ.
pub fn backward_transposed(g: &Geom, s: Saved, wp: &[f32], act: Act, need: Need) -> Grads {
    assert_eq!(s.grad.0.len(), g.n * g.xs(), "conv-transpose output-gradient size");
    let (cb, p, kd, hw) = (g.chunk(), g.p(), g.kdim(), g.h * g.w);
    let chunks = g.n.div_ceil(cb);
    let mut dt = need.input.then(|| vec![0.0f32; g.n * g.ys()]);
    let outs = chunk_outputs(dt.as_deref_mut(), cb * g.ys(), chunks);
    let parts: Vec<ChunkGrads> = outs
        .into_par_iter()
        .enumerate()
        .map(|(i, dtc)| {
            let (b0, nb) = (i * cb, cb.min(g.n - i * cb));
            let r = nb * p;
            let big = (nb * g.xs()).max(r * g.co);
            with_scratch([kd * r, big, big], |col, gbuf, tmp| {
                let gz = grad_rows(s.grad, s.output, act, (b0, nb), g.ci, hw, gbuf, tmp);
                let db = need.bias.then(|| {
                    let mut acc = vec![0.0f32; g.ci];
                    column_sums(gz, &mut acc);
                    acc
                });
                if need.input || need.weight {
                    im2col(g, gz, nb, col);
                }
                if let Some(dtc) = dtc {
                    matmul(r, g.co, kd, dtc, g.co, false, view(col, kd, 1), view(wp, g.co, 1), Par::Seq);
                }
                let dw = need.weight.then(|| {
                    let tc = chunk_nhwc(s.input.0, s.input.1, b0, nb, g.co, p, &mut tmp[..r * g.co]);
                    let mut part = vec![0.0f32; kd * g.co];
                    matmul(kd, g.co, r, &mut part, g.co, false, view(col, 1, kd), view(tc, g.co, 1), Par::Seq);
                    part
                });
                (dw, db)
            })
        })
        .collect();
    let (dws, dbs): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    Grads {
        input: dt,
        weight: need.weight.then(|| unpermute_weight(g, &sum_in_order(dws.into_iter().flatten(), g.co * kd))),
        bias: need.bias.then(|| sum_in_order(dbs.into_iter().flatten(), g.ci)),
    }
}
