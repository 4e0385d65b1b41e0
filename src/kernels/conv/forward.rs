//! The two gemm-then-epilogue passes: `forward` (Y = f(W ⋆ X + b)) and `backward_data`
//! (X = f(Wᵀ ⋆ Y + b)), each per chunk of images.

use super::layout::{chunk_nhwc, col2im, im2col, transposed_weight};
use super::{Geom, Mem, winograd, with_scratch};
use crate::kernels::act::{Act, with_act};
use crate::kernels::gemm::{Par, matmul, view};
use crate::kernels::simd::multiversion;
use rayon::prelude::*;

multiversion! {
    /// rows[r, c] ← f(rows[r, c] + bias[c]).
    fn bias_act_rows(rows: &mut [f32], bias: &[f32], act: Act) {
        let c = bias.len();
        with_act!(act, f, _d => {
            for row in rows.chunks_mut(c) {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v = f(*v + *b);
                }
            }
        })
    }
}

/// Y = f(W ⋆ X + bias), NHWC, with `wp` = `permute_weight(W)`: the forward pass of a convolution
/// (and, without bias and activation, the input gradient of a transposed convolution).
pub fn forward(g: &Geom, x: &[f32], x_mem: Mem, wp: &[f32], bias: Option<&[f32]>, act: Act) -> Vec<f32> {
    assert_eq!(x.len(), g.n * g.xs(), "conv input size");
    assert_eq!(wp.len(), g.co * g.kdim(), "conv weight size");
    let (cb, p, kd) = (g.chunk(), g.p(), g.kdim());
    let zeros = vec![0.0f32; g.co];
    let bias = bias.unwrap_or(&zeros);
    if let Some(plan) = winograd::Plan::for_layer(g) {
        return forward_winograd(&plan, g, x, x_mem, wp, bias, act);
    }
    let mut y = vec![0.0f32; g.n * g.ys()];
    y.par_chunks_mut(cb * g.ys()).enumerate().for_each(|(i, yc)| {
        let (b0, nb) = (i * cb, yc.len() / g.ys());
        let r = nb * p;
        let tbuf = if x_mem == Mem::Nchw { nb * g.xs() } else { 0 };
        with_scratch([kd * r, tbuf, 0], |col, t, _| {
            let xc = chunk_nhwc(x, x_mem, b0, nb, g.ci, g.h * g.w, t);
            im2col(g, xc, nb, col);
            // Y[r, co] = col[r, K′] · Wp[K′, co]
            matmul(r, g.co, kd, yc, g.co, false, view(col, kd, 1), view(wp, g.co, 1), Par::Seq);
            bias_act_rows(yc, bias, act);
        });
    });
    y
}

/// `forward` of a layer `winograd` computes, in its three phases: V of each chunk of images,
/// M_ξ = V_ξ · U_ξ per ξ, Y = Aᵀ M A of each chunk; in groups of images (`Plan::group`).
fn forward_winograd(
    plan: &winograd::Plan,
    g: &Geom,
    x: &[f32],
    x_mem: Mem,
    wp: &[f32],
    bias: &[f32],
    act: Act,
) -> Vec<f32> {
    if plan.group(g) < g.n {
        return in_groups(plan, g, x, g.xs(), |sub, xg| forward_winograd(plan, sub, xg, x_mem, wp, bias, act));
    }
    let (cb, tci) = (g.chunk(), plan.tci(g));
    let u = plan.weights(g, wp);
    let mut v = winograd::Buf::take(plan.len(g, tci));
    let vs = plan.slab(g, &mut v, tci);
    (0..g.n.div_ceil(cb)).into_par_iter().for_each(|i| {
        let (b0, nb) = (i * cb, cb.min(g.n - i * cb));
        let tbuf = if x_mem == Mem::Nchw { nb * g.xs() } else { 0 };
        with_scratch([tbuf, 0, 0], |t, _, _| {
            let xc = chunk_nhwc(x, x_mem, b0, nb, g.ci, g.h * g.w, t);
            // SAFETY: `v` outlives the loop; chunk i alone writes its images' tiles.
            unsafe { plan.input_transform(g, xc, b0, nb, vs) };
        });
    });
    let mut m = winograd::Buf::take(plan.len(g, g.co));
    plan.products(g, &v, &u, &mut m);
    drop(v);
    let mut y = vec![0.0f32; g.n * g.ys()];
    y.par_chunks_mut(cb * g.ys()).enumerate().for_each(|(i, yc)| {
        plan.output_transform(g, &m, i * cb, yc.len() / g.ys(), yc);
        bias_act_rows(yc, bias, act);
    });
    y
}

/// X = f(Wᵀ ⋆ Y + bias), NHWC, with `wp` = `permute_weight(W)`: the forward pass of a transposed
/// convolution (bias and activation on X's channels) and, without them, the input gradient of a
/// convolution.
pub fn backward_data(g: &Geom, y: &[f32], y_mem: Mem, wp: &[f32], bias: Option<&[f32]>, act: Act) -> Vec<f32> {
    assert_eq!(y.len(), g.n * g.ys(), "conv-transpose input size");
    assert_eq!(wp.len(), g.co * g.kdim(), "conv weight size");
    let (cb, p, kd, hw) = (g.chunk(), g.p(), g.kdim(), g.h * g.w);
    let zeros = vec![0.0f32; g.ci];
    let bias = bias.unwrap_or(&zeros);
    if let Some(plan) = winograd::Plan::for_layer(g) {
        return backward_data_winograd(&plan, g, y, y_mem, wp, bias, act);
    }
    let mut x = vec![0.0f32; g.n * g.xs()];
    let wq = transposed_weight(g, wp);
    x.par_chunks_mut(cb * g.xs()).enumerate().for_each(|(i, xc)| {
        let (b0, nb) = (i * cb, xc.len() / g.xs());
        let r = nb * p;
        let tbuf = if y_mem == Mem::Nchw { nb * g.ys() } else { 0 };
        with_scratch([kd * r, tbuf, 0], |dcol, t, _| {
            let yc = chunk_nhwc(y, y_mem, b0, nb, g.co, p, t);
            fill(xc, bias);
            // dcol[r, K′] = Y[r, co] · Wpᵀ[co, K′]
            matmul(r, kd, g.co, dcol, kd, false, view(yc, g.co, 1), view(&wq, kd, 1), Par::Seq);
            col2im(g, dcol, nb, xc);
            debug_assert_eq!(xc.len(), nb * hw * g.ci);
            crate::kernels::act::apply_inplace(xc, act);
        });
    });
    x
}

/// Every pixel of NHWC rows `xc` set to `bias`.
fn fill(xc: &mut [f32], bias: &[f32]) {
    for px in xc.chunks_mut(bias.len()) {
        px.copy_from_slice(bias);
    }
}

/// `backward_data` of a layer `winograd` computes: dM of each chunk of images, dV_ξ = dM_ξ · U_ξᵀ
/// per ξ, X = B dV Bᵀ of each chunk; in groups of images (`Plan::group`).
fn backward_data_winograd(
    plan: &winograd::Plan,
    g: &Geom,
    y: &[f32],
    y_mem: Mem,
    wp: &[f32],
    bias: &[f32],
    act: Act,
) -> Vec<f32> {
    if plan.group(g) < g.n {
        return in_groups(plan, g, y, g.ys(), |sub, yg| backward_data_winograd(plan, sub, yg, y_mem, wp, bias, act));
    }
    let (cb, p, tci) = (g.chunk(), g.p(), plan.tci(g));
    let u = plan.weights(g, wp);
    let mut dm = winograd::Buf::take(plan.len(g, g.co));
    let ds = plan.slab(g, &mut dm, g.co);
    (0..g.n.div_ceil(cb)).into_par_iter().for_each(|i| {
        let (b0, nb) = (i * cb, cb.min(g.n - i * cb));
        let tbuf = if y_mem == Mem::Nchw { nb * g.ys() } else { 0 };
        with_scratch([tbuf, 0, 0], |t, _, _| {
            let yc = chunk_nhwc(y, y_mem, b0, nb, g.co, p, t);
            // SAFETY: `dm` outlives the loop; chunk i alone writes its images' tiles.
            unsafe { plan.grad_transform(g, yc, b0, nb, ds) };
        });
    });
    let mut dv = winograd::Buf::take(plan.len(g, tci));
    plan.data_products(g, &dm, &u, &mut dv);
    drop(dm);
    let mut x = vec![0.0f32; g.n * g.xs()];
    x.par_chunks_mut(cb * g.xs()).enumerate().for_each(|(i, xc)| {
        fill(xc, bias);
        plan.scatter(g, &dv, i * cb, xc.len() / g.xs(), xc);
        crate::kernels::act::apply_inplace(xc, act);
    });
    x
}

/// `f` on groups of images (`winograd::Plan::group`) of `input` (`per_image` floats an image,
/// NHWC or NCHW alike), the outputs joined in order.
fn in_groups(
    plan: &winograd::Plan,
    g: &Geom,
    input: &[f32],
    per_image: usize,
    f: impl Fn(&Geom, &[f32]) -> Vec<f32>,
) -> Vec<f32> {
    let gn = plan.group(g);
    let mut out = Vec::new();
    for b0 in (0..g.n).step_by(gn) {
        let sub = Geom { n: gn.min(g.n - b0), ..*g };
        out.extend(f(&sub, &input[b0 * per_image..][..sub.n * per_image]));
    }
    out
}
