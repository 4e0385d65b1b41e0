//! Batch normalisation in training mode, fused with the activation that follows it: one pass for
//! the statistics and one for the output forward; one for the two sums and one for dx backward.
//! Channels are independent, so the pool splits them; each channel's sums run on one thread in a
//! fixed order (bit-identical whatever the thread count). Sums are accumulated in f64.

use super::SharedMut;
use super::act::{Act, with_act};
use super::conv::Mem;
use super::simd::{LANES, multiversion};
use rayon::prelude::*;

/// x as [n, c, s]: `n` images, `c` channels, `s` spatial positions per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormShape {
    pub n: usize,
    pub c: usize,
    pub s: usize,
}

impl NormShape {
    fn count(&self) -> usize {
        self.n * self.s
    }
    fn len(&self) -> usize {
        self.n * self.c * self.s
    }
}

/// Forward results: the output, and the batch mean and biased variance per channel.
pub struct NormOut {
    pub y: Vec<f32>,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

/// Channels per task: enough work per task to outweigh the hand-off.
fn channels_per_task(sh: &NormShape) -> usize {
    (super::act::PAR_MIN / sh.count().max(1)).clamp(1, sh.c.max(1))
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
fn forward_planes(sh: NormShape, x: &[f32], gamma: &[f32], beta: &[f32], eps: f64, act: Act) -> NormOut {
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
fn backward_planes(
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
fn forward_rows(sh: NormShape, x: &[f32], gamma: &[f32], beta: &[f32], eps: f64, act: Act) -> NormOut {
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
fn backward_rows(
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
    super::act::mul_deriv_inplace(&mut g, y, act);
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

/// y = f(γ·(x − μ)/√(σ² + ε) + β) with μ, σ² the batch statistics of each channel; x (and y)
/// in memory order `mem`.
pub fn forward(sh: NormShape, mem: Mem, x: &[f32], gamma: &[f32], beta: &[f32], eps: f64, act: Act) -> NormOut {
    assert_eq!(x.len(), sh.len(), "batch-norm input size");
    assert!(gamma.len() == sh.c && beta.len() == sh.c, "batch-norm γ/β size");
    match mem {
        Mem::Nchw => forward_planes(sh, x, gamma, beta, eps, act),
        Mem::Nhwc => forward_rows(sh, x, gamma, beta, eps, act),
    }
}

/// Gradients of `forward`: (dx, dγ, dβ), from the input, the output (for f′), the batch
/// mean/variance the forward returned, and dy — all in memory order `mem`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    sh: NormShape,
    mem: Mem,
    x: &[f32],
    y: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
    act: Act,
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert!(x.len() == sh.len() && y.len() == sh.len() && dy.len() == sh.len(), "batch-norm gradient sizes");
    match mem {
        Mem::Nchw => backward_planes(sh, x, y, gamma, mean, var, eps, act, dy),
        Mem::Nhwc => backward_rows(sh, x, y, gamma, mean, var, eps, act, dy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The loss L = Σ r·y for fixed r, in f64, as a function of x, γ, β.
    fn loss(sh: NormShape, x: &[f64], gamma: &[f64], beta: &[f64], eps: f64, act: Act, r: &[f32]) -> f64 {
        let mut l = 0.0;
        for c in 0..sh.c {
            let idx: Vec<usize> = (0..sh.n).flat_map(|b| (0..sh.s).map(move |i| (b * sh.c + c) * sh.s + i)).collect();
            let m = idx.iter().map(|&i| x[i]).sum::<f64>() / idx.len() as f64;
            let v = idx.iter().map(|&i| (x[i] - m).powi(2)).sum::<f64>() / idx.len() as f64;
            for &i in &idx {
                let pre = gamma[c] * (x[i] - m) / (v + eps).sqrt() + beta[c];
                let y = match act {
                    Act::Relu => pre.max(0.0),
                    Act::LeakyRelu(s) => pre.max(s as f64 * pre),
                    Act::Tanh => pre.tanh(),
                    _ => pre,
                };
                l += r[i] as f64 * y;
            }
        }
        l
    }

    fn to_mem(v: &[f32], sh: NormShape, mem: Mem) -> Vec<f32> {
        let mut o = v.to_vec();
        if mem == Mem::Nhwc {
            crate::kernels::conv::nchw_to_nhwc(v, sh.n, sh.c, sh.s, &mut o);
        }
        o
    }

    fn from_mem(v: &[f32], sh: NormShape, mem: Mem) -> Vec<f32> {
        let mut o = v.to_vec();
        if mem == Mem::Nhwc {
            crate::kernels::conv::nhwc_to_nchw(v, sh.n, sh.c, sh.s, &mut o);
        }
        o
    }

    #[test]
    fn forward_normalises_and_gradients_match_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (sh, act) in [
            (NormShape { n: 4, c: 3, s: 5 }, Act::None),
            (NormShape { n: 7, c: 2, s: 9 }, Act::LeakyRelu(0.2)),
            (NormShape { n: 16, c: 4, s: 1 }, Act::Relu),
            (NormShape { n: 3, c: 2, s: 4 }, Act::Tanh),
            (NormShape { n: 70, c: 3, s: 5 }, Act::LeakyRelu(0.2)),
        ] {
            let x: Vec<f32> = (0..sh.len()).map(|_| rng.random_range(-2.0f32..3.0)).collect();
            let gamma: Vec<f32> = (0..sh.c).map(|_| rng.random_range(0.5f32..1.5)).collect();
            let beta: Vec<f32> = (0..sh.c).map(|_| rng.random_range(-0.5f32..0.5)).collect();
            let r: Vec<f32> = (0..sh.len()).map(|_| rng.random_range(-1.0f32..1.0)).collect();
            let eps = 1e-5;
            let (x64, g64, b64): (Vec<f64>, Vec<f64>, Vec<f64>) = (
                x.iter().map(|&v| v as f64).collect(),
                gamma.iter().map(|&v| v as f64).collect(),
                beta.iter().map(|&v| v as f64).collect(),
            );
            let f = |x: &[f64], g: &[f64], b: &[f64]| loss(sh, x, g, b, eps, act, &r);
            for mem in [Mem::Nchw, Mem::Nhwc] {
                let xm = to_mem(&x, sh, mem);
                let out = forward(sh, mem, &xm, &gamma, &beta, eps, Act::None);
                let y = from_mem(&out.y, sh, mem);
                // Without activation each channel has mean β.
                for (c, &bc) in beta.iter().enumerate() {
                    let vals: Vec<f64> = (0..sh.n)
                        .flat_map(|b| (0..sh.s).map(move |i| (b * sh.c + c) * sh.s + i))
                        .map(|i| y[i] as f64)
                        .collect();
                    let m = vals.iter().sum::<f64>() / vals.len() as f64;
                    assert!((m - bc as f64).abs() < 1e-5, "{mem:?} mean");
                }
                let out = forward(sh, mem, &xm, &gamma, &beta, eps, act);
                let rm = to_mem(&r, sh, mem);
                let (dx, dg, db) = backward(sh, mem, &xm, &out.y, &gamma, &out.mean, &out.var, eps, act, &rm);
                let dx = from_mem(&dx, sh, mem);
                let h = 1e-5;
                for i in 0..sh.len() {
                    let (mut a, mut b) = (x64.clone(), x64.clone());
                    a[i] += h;
                    b[i] -= h;
                    let fd = (f(&a, &g64, &b64) - f(&b, &g64, &b64)) / (2.0 * h);
                    assert!(
                        (fd - dx[i] as f64).abs() < 2e-3 * fd.abs().max(1.0),
                        "{mem:?} {act:?} dx[{i}] {} vs {fd}",
                        dx[i]
                    );
                }
                for c in 0..sh.c {
                    let (mut a, mut b) = (g64.clone(), g64.clone());
                    a[c] += h;
                    b[c] -= h;
                    let fd = (f(&x64, &a, &b64) - f(&x64, &b, &b64)) / (2.0 * h);
                    assert!((fd - dg[c] as f64).abs() < 2e-3 * fd.abs().max(1.0), "{mem:?} dγ[{c}]");
                    let (mut a, mut b) = (b64.clone(), b64.clone());
                    a[c] += h;
                    b[c] -= h;
                    let fd = (f(&x64, &g64, &a) - f(&x64, &g64, &b)) / (2.0 * h);
                    assert!((fd - db[c] as f64).abs() < 2e-3 * fd.abs().max(1.0), "{mem:?} dβ[{c}]");
                }
            }
        }
    }
}
