//! Fully connected layers y = f(x·W + b) (burn's [in, out] weight layout): one gemm with the
//! bias pre-loaded into the output and the activation applied in the same pass over it; the
//! backward pass scales by f′ once and runs the two gemms and a blocked column sum.

use super::act::{self, Act};
use super::gemm::{Par, matmul, view};
use super::simd::multiversion;
use rayon::prelude::*;

/// Rows per block of the bias-gradient sum (partial sums are added in block order).
const ROW_BLOCK: usize = 64;

/// Work (multiply-adds) below which one thread does a gemm: splitting costs more than it saves.
const POOL_MIN_MACS: usize = 1 << 20;

fn par(m: usize, n: usize, k: usize) -> Par {
    if m * n * k >= POOL_MIN_MACS { Par::Pool } else { Par::Seq }
}

multiversion! {
    fn col_sums(rows: &[f32], acc: &mut [f32]) {
        let c = acc.len();
        for row in rows.chunks(c) {
            for (a, v) in acc.iter_mut().zip(row) {
                *a += *v;
            }
        }
    }
}

/// The rows of a [c·h·w, fout] weight reordered from (c, y, x) to (y, x, c) order (`to_nhwc`) or
/// back: a linear layer applied to a flattened NHWC image then needs no NCHW copy of it.
///
/// It runs at every forward and backward of such a layer, on weights of megabytes (StackGAN's
/// discriminator: 6272 × 256), where one thread zeroing and then copying it left the other idle
/// for 9 % of a step. So the rows are copied over the pool straight into the new buffer.
pub fn permute_rows(w: &[f32], [c, h, wd]: [usize; 3], fout: usize, to_nhwc: bool) -> Vec<f32> {
    use std::mem::MaybeUninit;
    let (s, rows) = (h * wd, c * h * wd);
    assert_eq!(w.len(), rows * fout, "flatten-linear weight size");
    if fout == 0 || rows == 0 {
        return Vec::new();
    }
    // The source row of output row r.
    let src = |r: usize| if to_nhwc { (r % c) * s + r / c } else { (r % s) * c + r / s };
    let fill = |(b, out): (usize, &mut [MaybeUninit<f32>])| {
        for (i, row) in out.chunks_mut(fout).enumerate() {
            let from = &w[src(b * PERMUTE_BLOCK + i) * fout..][..fout];
            for (d, &v) in row.iter_mut().zip(from) {
                d.write(v);
            }
        }
    };
    let mut out: Vec<f32> = Vec::with_capacity(w.len());
    let spare = &mut out.spare_capacity_mut()[..w.len()];
    if w.len() < 2 * act::PAR_MIN {
        spare.chunks_mut(PERMUTE_BLOCK * fout).enumerate().for_each(fill);
    } else {
        spare.par_chunks_mut(PERMUTE_BLOCK * fout).enumerate().for_each(fill);
    }
    // SAFETY: the chunks cover all w.len() elements, and every element of each chunk was written.
    unsafe { out.set_len(w.len()) };
    out
}

/// Rows per task of `permute_rows`.
const PERMUTE_BLOCK: usize = 64;

/// y = f(x·W + b) for x [rows, fin], W [fin, fout], b [fout].
pub fn forward(x: &[f32], w: &[f32], b: &[f32], fin: usize, fout: usize, act: Act) -> Vec<f32> {
    assert_eq!(w.len(), fin * fout, "linear weight size");
    assert_eq!(b.len(), fout, "linear bias size");
    assert_eq!(x.len() % fin.max(1), 0, "linear input size");
    let rows = x.len().checked_div(fin).unwrap_or(0);
    let mut y = vec![0.0f32; rows * fout];
    for row in y.chunks_mut(fout.max(1)) {
        row.copy_from_slice(b);
    }
    matmul(rows, fout, fin, &mut y, fout, true, view(x, fin, 1), view(w, fout, 1), par(rows, fout, fin));
    act::apply_inplace(&mut y, act);
    y
}

/// Gradients of a fully connected layer; `None` where not asked for.
pub struct Grads {
    pub dx: Option<Vec<f32>>,
    pub dw: Option<Vec<f32>>,
    pub db: Option<Vec<f32>>,
}

/// Gradients of `forward` (`need`: dx, dW, db); `y` is the output (for f′).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    w: &[f32],
    y: Option<&[f32]>,
    dy: &[f32],
    fin: usize,
    fout: usize,
    act: Act,
    need: [bool; 3],
) -> Grads {
    let rows = dy.len() / fout.max(1);
    let g: std::borrow::Cow<[f32]> = match (y, act) {
        (Some(y), a) if a != Act::None => {
            let mut g = dy.to_vec();
            act::mul_deriv_inplace(&mut g, y, a);
            g.into()
        }
        _ => dy.into(),
    };
    // The three are independent: a layer large enough to split its products over the pool runs
    // them side by side instead. dx and dW are products of the same size, so on two cores each
    // gets one whole, where a product split across both left one core waiting for the other at
    // every layer (the VAE kept 1.7 cores busy). Small layers stay on one thread: handing them
    // over costs more than they take (StackGAN's step lost 5 % when they did too). Each
    // product's bits do not depend on which thread runs it.
    let dx = || {
        need[0].then(|| {
            let mut dx = vec![0.0f32; rows * fin];
            // dx[rows, fin] = g[rows, fout] · Wᵀ[fout, fin]
            matmul(rows, fin, fout, &mut dx, fin, false, view(&g, fout, 1), view(w, 1, fout), par(rows, fin, fout));
            dx
        })
    };
    let dw = || {
        need[1].then(|| {
            let mut dw = vec![0.0f32; fin * fout];
            // dW[fin, fout] = xᵀ[fin, rows] · g[rows, fout]
            matmul(fin, fout, rows, &mut dw, fout, false, view(x, 1, fin), view(&g, fout, 1), par(fin, fout, rows));
            dw
        })
    };
    let db = || {
        need[2].then(|| {
            let parts: Vec<Vec<f32>> = g
                .par_chunks(ROW_BLOCK * fout.max(1))
                .map(|blk| {
                    let mut acc = vec![0.0f32; fout];
                    col_sums(blk, &mut acc);
                    acc
                })
                .collect();
            let mut db = vec![0.0f32; fout];
            for p in parts {
                db.iter_mut().zip(&p).for_each(|(a, v)| *a += v);
            }
            db
        })
    };
    let ((dx, dw), db) =
        if par(rows, fin, fout) == Par::Pool { rayon::join(|| rayon::join(dx, dw), db) } else { ((dx(), dw()), db()) };
    Grads { dx, dw, db }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both directions against the definition, on a weight large enough to be split over the pool
    /// (and with a last block of fewer rows), and a round trip back to the original.
    #[test]
    fn permute_rows_reorders_channels_last_and_back() {
        let ([c, h, w], fout) = ([32usize, 7, 9], 33usize);
        assert!(c * h * w * fout >= 2 * act::PAR_MIN && (c * h * w) % PERMUTE_BLOCK != 0);
        let wt: Vec<f32> = (0..c * h * w * fout).map(|i| i as f32).collect();
        let nhwc = permute_rows(&wt, [c, h, w], fout, true);
        for ch in 0..c {
            for p in 0..h * w {
                for o in 0..fout {
                    assert_eq!(nhwc[(p * c + ch) * fout + o], wt[(ch * h * w + p) * fout + o], "({ch}, {p}, {o})");
                }
            }
        }
        assert_eq!(permute_rows(&nhwc, [c, h, w], fout, false), wt);
    }
}
