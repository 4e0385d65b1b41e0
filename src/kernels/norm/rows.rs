//! NHWC batch norm: an [n·s, c] matrix whose column sums run over fixed row blocks.

use super::{NormOut, NormShape};
use crate::kernels::act::{Act, with_act};
use crate::kernels::simd::multiversion;
use rayon::prelude::*;

/// Rows of an NHWC tensor per task: the partial sums of a block are added in block order.
const ROW_BLOCK: usize = 256;

multiversion! {
    /// acc[c] += Σ_r (rows[r, c] − mean[c])².
    fn col_sums_sq(rows: &[f32], mean: &[f32], acc: &mut [f32]) {
        let c = acc.len();
        for row in rows.chunks(c) {
            for ((a, &v), &m) in acc.iter_mut().zip(row).zip(mean) {
                *a += (v - m) * (v - m);
            }
        }
    }
}

multiversion! {
    /// acc[c] += Σ_r rows[r, c].
    fn col_sums(rows: &[f32], acc: &mut [f32]) {
        let c = acc.len();
        for row in rows.chunks(c) {
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v;
            }
        }
    }
}

multiversion! {
    /// dst[r, c] = f(a[c]·x[r, c] + b[c]).
    fn rows_apply(dst: &mut [f32], x: &[f32], a: &[f32], b: &[f32], act: Act) {
        let c = a.len();
        with_act!(act, f, _d => {
            for (drow, xrow) in dst.chunks_mut(c).zip(x.chunks(c)) {
                for (((d, &v), &a), &b) in drow.iter_mut().zip(xrow).zip(a).zip(b) {
                    *d = f(a * v + b);
                }
            }
        })
    }
}

multiversion! {
    /// sg[c] += Σ_r g[r, c]; sgx[c] += Σ_r g[r, c]·(x[r, c] − m[c]).
    fn rows_grad_sums(g: &[f32], x: &[f32], m: &[f32], sg: &mut [f32], sgx: &mut [f32]) {
        let c = m.len();
        for (gr, xr) in g.chunks(c).zip(x.chunks(c)) {
            for i in 0..c {
                sg[i] += gr[i];
                sgx[i] += gr[i] * (xr[i] - m[i]);
            }
        }
    }
}

multiversion! {
    /// dx[r, c] = k0·g + k1 + k2·(x − k3) with k = coef[c].
    fn rows_dx(dst: &mut [f32], g: &[f32], x: &[f32], coef: &[[f32; 4]]) {
        let c = coef.len();
        for ((drow, grow), xrow) in dst.chunks_mut(c).zip(g.chunks(c)).zip(x.chunks(c)) {
            for (((d, &gv), &xv), k) in drow.iter_mut().zip(grow).zip(xrow).zip(coef) {
                *d = k[0] * gv + k[1] + k[2] * (xv - k[3]);
            }
        }
    }
}

/// Per-column sums of an [rows, c] matrix: f32 within blocks of `ROW_BLOCK` rows, f64 across
/// blocks, added in block order.
fn blocked_col_sums(x: &[f32], c: usize, f: impl Fn(&[f32], &mut [f32]) + Sync) -> Vec<f64> {
    let parts: Vec<Vec<f32>> = x
        .par_chunks(ROW_BLOCK * c)
        .map(|blk| {
            let mut acc = vec![0.0f32; c];
            f(blk, &mut acc);
            acc
        })
        .collect();
    let mut out = vec![0.0f64; c];
    for p in parts {
        out.iter_mut().zip(&p).for_each(|(o, &v)| *o += v as f64);
    }
    out
}

/// NHWC forward: the same as `forward_planes` on an [n·s, c] matrix.
pub(super) fn forward_rows(sh: NormShape, x: &[f32], gamma: &[f32], beta: &[f32], eps: f64, act: Act) -> NormOut {
    let c = sh.c;
    let cnt = sh.count() as f64;
    let mean: Vec<f64> = blocked_col_sums(x, c, col_sums).into_iter().map(|s| s / cnt).collect();
    let mean32: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let var: Vec<f64> =
        blocked_col_sums(x, c, |blk, acc| col_sums_sq(blk, &mean32, acc)).into_iter().map(|s| s / cnt).collect();
    let (mut a, mut b) = (vec![0.0f32; c], vec![0.0f32; c]);
    for i in 0..c {
        let scale = gamma[i] as f64 / (var[i] + eps).sqrt();
        a[i] = scale as f32;
        b[i] = (beta[i] as f64 - mean[i] * scale) as f32;
    }
    let mut y = vec![0.0f32; sh.len()];
    y.par_chunks_mut(ROW_BLOCK * c)
        .zip(x.par_chunks(ROW_BLOCK * c))
        .for_each(|(yb, xb)| rows_apply(yb, xb, &a, &b, act));
    NormOut { y, mean: mean32, var: var.iter().map(|&v| v as f32).collect() }
}

/// NHWC gradients: the same as `backward_planes` on [n·s, c] matrices.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_rows(
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
    let c = sh.c;
    // g = dy·f′(y), materialised once (it is read twice).
    let mut g = dy.to_vec();
    crate::kernels::act::mul_deriv_inplace(&mut g, y, act);
    let blk = ROW_BLOCK * c;
    let parts: Vec<(Vec<f32>, Vec<f32>)> = g
        .par_chunks(blk)
        .zip(x.par_chunks(blk))
        .map(|(gb, xb)| {
            let (mut sg, mut sgx) = (vec![0.0f32; c], vec![0.0f32; c]);
            rows_grad_sums(gb, xb, mean, &mut sg, &mut sgx);
            (sg, sgx)
        })
        .collect();
    let (mut sg, mut sgx) = (vec![0.0f64; c], vec![0.0f64; c]);
    for (a, b) in parts {
        for i in 0..c {
            sg[i] += a[i] as f64;
            sgx[i] += b[i] as f64;
        }
    }
    let n = sh.count() as f64;
    let coef: Vec<[f32; 4]> = (0..c)
        .map(|i| {
            let rstd = 1.0 / (var[i] as f64 + eps).sqrt();
            let k = gamma[i] as f64 * rstd;
            let sgx_hat = sgx[i] * rstd;
            [k as f32, (-k * sg[i] / n) as f32, (-k * sgx_hat * rstd / n) as f32, mean[i]]
        })
        .collect();
    let mut dx = vec![0.0f32; sh.len()];
    dx.par_chunks_mut(blk)
        .zip(g.par_chunks(blk))
        .zip(x.par_chunks(blk))
        .for_each(|((d, gb), xb)| rows_dx(d, gb, xb, &coef));
    let dgamma = (0..c).map(|i| (sgx[i] / (var[i] as f64 + eps).sqrt()) as f32).collect();
    let dbeta = sg.iter().map(|&v| v as f32).collect();
    (dx, dgamma, dbeta)
}
