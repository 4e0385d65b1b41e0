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

/// Σ_r rows[r, c] over rows of `c` floats: a chunk's bias gradient.
fn column_totals(rows: &[f32], c: usize) -> Vec<f32> {
    let mut acc = vec![0.0f32; c];
    column_sums(rows, &mut acc);
    acc
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
    if let Some(plan) = winograd::Plan::for_layer(g) {
        return backward_winograd(&plan, g, s, wp, act, need);
    }
    let mut dx = need.input.then(|| vec![0.0f32; g.n * g.xs()]);
    let outs = chunk_outputs(dx.as_deref_mut(), cb * g.xs(), chunks);
    let wq = need.input.then(|| transposed_weight(g, wp));
    let parts: Vec<ChunkGrads> = outs
        .into_par_iter()
        .enumerate()
        .map(|(i, dxc)| {
            let (b0, nb) = (i * cb, cb.min(g.n - i * cb));
            let r = nb * p;
            with_scratch([kd * r, r * g.co, (r * g.co).max(nb * g.xs())], |col, gbuf, tmp| {
                let gr = grad_rows(s.grad, s.output, act, (b0, nb), g.co, p, gbuf, tmp);
                let db = need.bias.then(|| column_totals(gr, g.co));
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

/// `backward` of a layer `winograd` computes: dM (and V) of each chunk of images; per ξ,
/// dU_ξ = V_ξᵀ · dM_ξ and dV_ξ = dM_ξ · U_ξᵀ; dX = B dV Bᵀ of each chunk.
fn backward_winograd(plan: &winograd::Plan, g: &Geom, s: Saved, wp: &[f32], act: Act, need: Need) -> Grads {
    if plan.group(g) < g.n {
        let sizes = [g.xs(), g.ys(), g.ys()];
        return in_groups(g, plan.group(g), s, sizes, |sub, ss| backward_winograd(plan, sub, ss, wp, act, need));
    }
    let (cb, p, hw, tci) = (g.chunk(), g.p(), g.h * g.w, plan.tci(g));
    let u = need.input.then(|| plan.weights(g, wp));
    let (mut dm, mut v) = (winograd::Buf::take(plan.len(g, g.co)), winograd::Buf::take(plan.len(g, tci)));
    let (ds, vs) = (plan.slab(g, &mut dm, g.co), plan.slab(g, &mut v, tci));
    let dbs: Vec<Option<Vec<f32>>> = (0..g.n.div_ceil(cb))
        .into_par_iter()
        .map(|i| {
            let (b0, nb) = (i * cb, cb.min(g.n - i * cb));
            let r = nb * p;
            with_scratch([r * g.co, (r * g.co).max(nb * g.xs()), 0], |gbuf, tmp, _| {
                let gr = grad_rows(s.grad, s.output, act, (b0, nb), g.co, p, gbuf, tmp);
                let db = need.bias.then(|| column_totals(gr, g.co));
                // SAFETY (both transforms): `dm` and `v` outlive the loop; chunk i alone writes its
                // images' tiles.
                unsafe { plan.grad_transform(g, gr, b0, nb, ds) };
                if need.weight {
                    let xc = chunk_nhwc(s.input.0, s.input.1, b0, nb, g.ci, hw, &mut tmp[..nb * g.xs()]);
                    unsafe { plan.input_transform(g, xc, b0, nb, vs) };
                }
                db
            })
        })
        .collect();
    let du = plan.gradients(g, &mut v, &dm, u.as_deref(), need.weight);
    let dx = need.input.then(|| {
        let mut dx = vec![0.0f32; g.n * g.xs()];
        dx.par_chunks_mut(cb * g.xs())
            .enumerate()
            .for_each(|(i, dxc)| plan.scatter(g, &v, i * cb, dxc.len() / g.xs(), dxc));
        dx
    });
    Grads {
        input: dx,
        weight: du.map(|du| unpermute_weight(g, &plan.weight_grad(g, &du))),
        bias: need.bias.then(|| sum_in_order(dbs.into_iter().flatten(), g.co)),
    }
}

/// Gradients of Z = f(Wᵀ ⋆ T + b), a transposed convolution (T on the Y side, Z on the X side),
/// from dZ, with `wp` = `permute_weight(W)`. `s.input` is T, `s.output` is Z, `s.grad` is dZ.
pub fn backward_transposed(g: &Geom, s: Saved, wp: &[f32], act: Act, need: Need) -> Grads {
    assert_eq!(s.grad.0.len(), g.n * g.xs(), "conv-transpose output-gradient size");
    let (cb, p, kd, hw) = (g.chunk(), g.p(), g.kdim(), g.h * g.w);
    let chunks = g.n.div_ceil(cb);
    if let Some(plan) = winograd::Plan::for_layer(g) {
        return backward_transposed_winograd(&plan, g, s, wp, act, need);
    }
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
                let db = need.bias.then(|| column_totals(gz, g.ci));
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

/// `backward_transposed` of a layer `winograd` computes. dT = W ⋆ dZ is the convolution's forward
/// pass and the weight gradient is the convolution's with X = dZ and dY = T, so both come from
/// one transform V of dZ: V (and A T Aᵀ) of each chunk of images; per ξ, dU_ξ = V_ξᵀ · (A T Aᵀ)_ξ
/// and M_ξ = V_ξ · U_ξ; dT = Aᵀ M A of each chunk.
fn backward_transposed_winograd(plan: &winograd::Plan, g: &Geom, s: Saved, wp: &[f32], act: Act, need: Need) -> Grads {
    if plan.group(g) < g.n {
        let sizes = [g.ys(), g.xs(), g.xs()];
        let f = |sub: &Geom, ss: Saved| backward_transposed_winograd(plan, sub, ss, wp, act, need);
        return in_groups(g, plan.group(g), s, sizes, f);
    }
    let (cb, p, hw, tci) = (g.chunk(), g.p(), g.h * g.w, plan.tci(g));
    let (mut v, mut m) = (winograd::Buf::take(plan.len(g, tci)), winograd::Buf::take(plan.len(g, g.co)));
    let (vs, ms) = (plan.slab(g, &mut v, tci), plan.slab(g, &mut m, g.co));
    let dbs: Vec<Option<Vec<f32>>> = (0..g.n.div_ceil(cb))
        .into_par_iter()
        .map(|i| {
            let (b0, nb) = (i * cb, cb.min(g.n - i * cb));
            let big = (nb * g.xs()).max(nb * p * g.co);
            with_scratch([big, big, 0], |gbuf, tmp, _| {
                let gz = grad_rows(s.grad, s.output, act, (b0, nb), g.ci, hw, gbuf, tmp);
                let db = need.bias.then(|| column_totals(gz, g.ci));
                // SAFETY (both transforms): `v` and `m` outlive the loop; chunk i alone writes its
                // images' tiles.
                unsafe { plan.input_transform(g, gz, b0, nb, vs) };
                if need.weight {
                    let tc = chunk_nhwc(s.input.0, s.input.1, b0, nb, g.co, p, &mut tmp[..nb * p * g.co]);
                    unsafe { plan.grad_transform(g, tc, b0, nb, ms) };
                }
                db
            })
        })
        .collect();
    let du = plan.gradients(g, &mut v, &m, None, need.weight);
    let dt = need.input.then(|| {
        plan.products(g, &v, &plan.weights(g, wp), &mut m);
        let mut dt = vec![0.0f32; g.n * g.ys()];
        dt.par_chunks_mut(cb * g.ys())
            .enumerate()
            .for_each(|(i, dtc)| plan.output_transform(g, &m, i * cb, dtc.len() / g.ys(), dtc));
        dt
    });
    Grads {
        input: dt,
        weight: du.map(|du| unpermute_weight(g, &plan.weight_grad(g, &du))),
        bias: need.bias.then(|| sum_in_order(dbs.into_iter().flatten(), g.ci)),
    }
}

/// A Winograd layer's gradients over groups of `gn` images (`winograd::Plan::group`): `f` on each
/// group's slices of `s` (`sizes`: per-image lengths of input, output and upstream gradient), input
/// gradients joined, weight and bias gradients summed in group order.
fn in_groups<'a>(g: &Geom, gn: usize, s: Saved<'a>, sizes: [usize; 3], f: impl Fn(&Geom, Saved<'a>) -> Grads) -> Grads {
    let mut all = Grads::default();
    for b0 in (0..g.n).step_by(gn) {
        let sub = Geom { n: gn.min(g.n - b0), ..*g };
        let part = |(v, m): (&'a [f32], Mem), len: usize| (&v[b0 * len..][..sub.n * len], m);
        let ss = Saved {
            input: part(s.input, sizes[0]),
            output: s.output.map(|o| part(o, sizes[1])),
            grad: part(s.grad, sizes[2]),
        };
        let gr = f(&sub, ss);
        if let Some(i) = gr.input {
            all.input.get_or_insert_with(|| Vec::with_capacity(g.n * i.len() / sub.n)).extend(i);
        }
        for (acc, part) in [(&mut all.weight, gr.weight), (&mut all.bias, gr.bias)] {
            match (acc.as_mut(), part) {
                (Some(a), Some(p)) => add_into(a, &p),
                (None, p) => *acc = p,
                (Some(_), None) => {}
            }
        }
    }
    all
}
