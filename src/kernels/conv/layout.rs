//! Data movement around the gemms: im2col/col2im, NCHW ↔ NHWC transposes, and the weight
//! permutation to the K′ × co matrix the NHWC im2col rows need.

use super::{Geom, Mem};
use crate::kernels::SharedMut;
use crate::kernels::simd::multiversion;
use rayon::prelude::*;

/// im2col of `nb` NHWC images: row r = (b·oh + oy)·ow + ox holds, for each (ky, kx), the ci
/// channels of the input pixel under that tap (zeros in the padding): col is [nb·p, kh·kw·ci].
pub(super) fn im2col(g: &Geom, x: &[f32], nb: usize, col: &mut [f32]) {
    let (ci, kd) = (g.ci, g.kdim());
    for b in 0..nb {
        let img = &x[b * g.xs()..][..g.xs()];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let row = &mut col[((b * g.oh + oy) * g.ow + ox) * kd..][..kd];
                let (lo, hi) = g.valid_kx(ox);
                let ix0 = (ox * g.sw + lo) as isize - g.pw as isize;
                for ky in 0..g.kh {
                    let seg = &mut row[ky * g.kw * ci..][..g.kw * ci];
                    let iy = (oy * g.sh + ky) as isize - g.ph as isize;
                    if iy < 0 || iy >= g.h as isize || lo >= hi {
                        seg.fill(0.0);
                        continue;
                    }
                    seg[..lo * ci].fill(0.0);
                    seg[hi * ci..].fill(0.0);
                    let src = (iy as usize * g.w + ix0 as usize) * ci;
                    seg[lo * ci..hi * ci].copy_from_slice(&img[src..src + (hi - lo) * ci]);
                }
            }
        }
    }
}

multiversion! {
    pub(super) fn add_into(dst: &mut [f32], src: &[f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d += *s;
        }
    }
}

/// The adjoint of `im2col`: every column entry is added back to the input pixel it was read from.
pub(super) fn col2im(g: &Geom, col: &[f32], nb: usize, x: &mut [f32]) {
    let (ci, kd) = (g.ci, g.kdim());
    for b in 0..nb {
        let img = &mut x[b * g.xs()..][..g.xs()];
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let row = &col[((b * g.oh + oy) * g.ow + ox) * kd..][..kd];
                let (lo, hi) = g.valid_kx(ox);
                if lo >= hi {
                    continue;
                }
                let ix0 = (ox * g.sw + lo) as isize - g.pw as isize;
                for ky in 0..g.kh {
                    let iy = (oy * g.sh + ky) as isize - g.ph as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let src = &row[(ky * g.kw + lo) * ci..(ky * g.kw + hi) * ci];
                    let dst = (iy as usize * g.w + ix0 as usize) * ci;
                    add_into(&mut img[dst..dst + src.len()], src);
                }
            }
        }
    }
}

/// [nb, c, s] (NCHW) → [nb, s, c] (NHWC), tiled.
pub fn nchw_to_nhwc(src: &[f32], nb: usize, c: usize, s: usize, dst: &mut [f32]) {
    transpose_images(src, nb, c, s, dst);
}

/// [nb, s, c] (NHWC) → [nb, c, s] (NCHW).
pub fn nhwc_to_nchw(src: &[f32], nb: usize, c: usize, s: usize, dst: &mut [f32]) {
    transpose_images(src, nb, s, c, dst);
}

/// Per image, a [rows, cols] matrix → [cols, rows], in 16×16 tiles; images split over the pool
/// when there are many elements.
fn transpose_images(src: &[f32], nb: usize, rows: usize, cols: usize, dst: &mut [f32]) {
    let len = rows * cols;
    if len == 0 {
        return;
    }
    let one = |s: &[f32], d: &mut [f32]| {
        const T: usize = 16;
        for r0 in (0..rows).step_by(T) {
            for c0 in (0..cols).step_by(T) {
                for r in r0..(r0 + T).min(rows) {
                    for c in c0..(c0 + T).min(cols) {
                        d[c * rows + r] = s[r * cols + c];
                    }
                }
            }
        }
    };
    let per = crate::kernels::act::PAR_MIN.div_ceil(len).max(1) * len;
    if nb * len < 2 * crate::kernels::act::PAR_MIN {
        src[..nb * len].chunks(len).zip(dst.chunks_mut(len)).for_each(|(s, d)| one(s, d));
    } else {
        src[..nb * len].par_chunks(per).zip(dst[..nb * len].par_chunks_mut(per)).for_each(|(s, d)| {
            s.chunks(len).zip(d.chunks_mut(len)).for_each(|(s, d)| one(s, d));
        });
    }
}

/// The images `b0..b0+nb` of `data` as NHWC: borrowed when already NHWC, else transposed into `buf`.
pub(super) fn chunk_nhwc<'a>(
    data: &'a [f32],
    mem: Mem,
    b0: usize,
    nb: usize,
    c: usize,
    s: usize,
    buf: &'a mut [f32],
) -> &'a [f32] {
    let part = &data[b0 * c * s..(b0 + nb) * c * s];
    match mem {
        Mem::Nhwc => part,
        Mem::Nchw => {
            nchw_to_nhwc(part, nb, c, s, buf);
            buf
        }
    }
}

/// Wp [K′, co] (`permute_weight`'s layout) as [co, K′]: the right-hand side of the input-gradient
/// gemms, Y · Wpᵀ. Read in place, Wpᵀ's rows are columns of Wp, and the gemm crate (which takes
/// it as its left operand once it turns a row-major product round) gathers them element by element
/// for every chunk of images; written out once per call, it reads them as they lie. The product's
/// bits are the same: the same values meet in the same order.
///
/// Blocks of 16 output channels go to the pool (it runs before the chunks do, so alone it would
/// leave the other cores waiting): each reads 16 consecutive floats of every Wp row and writes 16
/// rows of its own.
pub(super) fn transposed_weight(g: &Geom, wp: &[f32]) -> Vec<f32> {
    const B: usize = 16;
    let (kd, co) = (g.kdim(), g.co);
    assert_eq!(wp.len(), kd * co, "conv weight size");
    let mut wq = vec![0.0f32; wp.len()];
    let block = |(b, rows): (usize, &mut [f32])| {
        let c0 = b * B;
        for (j, src) in wp.chunks(co).enumerate() {
            for (r, &v) in src[c0..c0 + rows.len() / kd].iter().enumerate() {
                rows[r * kd + j] = v;
            }
        }
    };
    if wp.len() < 2 * crate::kernels::act::PAR_MIN {
        wq.chunks_mut(B * kd).enumerate().for_each(block);
    } else {
        wq.par_chunks_mut(B * kd).enumerate().for_each(block);
    }
    wq
}

/// W [co, ci, kh, kw] → Wp [kh, kw, ci, co], the K′ × co matrix matching NHWC im2col rows. A task
/// takes 16 output channels: per input channel it reads their 16 contiguous kh·kw runs and writes
/// 16-wide segments of kh·kw rows of Wp (segments of different tasks never overlap).
pub fn permute_weight(g: &Geom, w: &[f32]) -> Vec<f32> {
    assert_eq!(w.len(), g.co * g.kdim(), "conv weight size");
    let (t, ci, co) = (g.kh * g.kw, g.ci, g.co);
    let mut wp = vec![0.0f32; w.len()];
    let out = SharedMut(wp.as_mut_ptr());
    let blocks = co.div_ceil(16);
    let fill = |b: usize| {
        let (o0, o1) = (b * 16, (b * 16 + 16).min(co));
        for c in 0..ci {
            for tap in 0..t {
                // SAFETY: the segment (tap, c, o0..o1) lies inside wp and belongs to block b only.
                let dst = unsafe { out.slice((tap * ci + c) * co + o0, o1 - o0) };
                for (d, o) in dst.iter_mut().zip(o0..o1) {
                    *d = w[(o * ci + c) * t + tap];
                }
            }
        }
    };
    if w.len() < 2 * crate::kernels::act::PAR_MIN {
        (0..blocks).for_each(fill);
    } else {
        (0..blocks).into_par_iter().for_each(fill);
    }
    wp
}

/// Wp [kh, kw, ci, co] → W [co, ci, kh, kw], the inverse of `permute_weight`; output channels are
/// split over the pool (each owns a contiguous block of W).
pub(super) fn unpermute_weight(g: &Geom, wp: &[f32]) -> Vec<f32> {
    let (t, ci, co) = (g.kh * g.kw, g.ci, g.co);
    let mut w = vec![0.0f32; wp.len()];
    let per_o = ci * t;
    let o_per_task = (crate::kernels::act::PAR_MIN / per_o.max(1)).clamp(1, 16);
    w.par_chunks_mut(o_per_task * per_o.max(1)).enumerate().for_each(|(i, part)| {
        let o0 = i * o_per_task;
        for c in 0..ci {
            for tap in 0..t {
                let src = &wp[(tap * ci + c) * co..][..co];
                for (k, row) in part.chunks_mut(per_o).enumerate() {
                    row[c * t + tap] = src[o0 + k];
                }
            }
        }
    });
    w
}
