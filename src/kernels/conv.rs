//! 2-D convolution and transposed convolution on the CPU: forward and both gradients, each as
//! im2col/col2im around one `gemm` per chunk of images, on channels-last (NHWC) data.
//!
//! Everything is described from the convolution's side (`Geom`): X [n, ci, h, w] → Y [n, co, oh, ow]
//! with weight W [co, ci, kh, kw]. A transposed convolution is the adjoint of a convolution: its
//! input lives on the Y side, its output on the X side, and burn's transposed-conv weight layout
//! [in, out, kh, kw] is exactly W. So three routines cover both layers:
//! - `forward`:        Y = W ⋆ X           (conv forward; convT input gradient)
//! - `backward_data`:  X = Wᵀ ⋆ Y          (conv input gradient; convT forward)
//! - weight gradients: dW = Σ col(X)ᵀ·dY   (both)
//!
//! Activations are stored channels-last: an NHWC image is a [h·w, c] matrix, so a gemm writes a
//! layer's output rows in place, and an im2col row is kw·c contiguous values per kernel row. The
//! weight is permuted once per call to Wp [kh, kw, ci, co] (K′ × co) to match. Inputs may come
//! in either layout (`Mem`); NCHW ones are transposed per chunk.
//!
//! Work is split into chunks of whole images whose size depends only on the shapes, never on the
//! thread count; each chunk runs single-threaded gemms into its own buffers, and weight/bias
//! gradients are summed over chunks in chunk order. So results are bit-identical whatever the
//! number of threads. Scratch buffers are per thread and reused across calls.

use super::SharedMut;
use super::act::{Act, with_act};
use super::gemm::{Par, matmul, view};
use super::simd::multiversion;
use rayon::prelude::*;
use std::cell::RefCell;

/// The geometry of one convolution (dilation 1, one group).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geom {
    pub n: usize,
    pub ci: usize,
    pub h: usize,
    pub w: usize,
    pub co: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
}

/// Memory order of a logically [n, c, h, w] tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mem {
    Nchw,
    Nhwc,
}

/// Scratch bytes a chunk aims for (its im2col matrix): about one core's L2.
const CHUNK_BYTES: usize = 1 << 21;
/// At least this many chunks when there are enough images, so two to eight cores share the work.
const MIN_CHUNKS: usize = 8;

impl Geom {
    /// A convolution of X [n, ci, h, w] with a [co, ci, kh, kw] kernel; None if the padded input
    /// is smaller than the kernel or a size is zero.
    pub fn conv(
        [n, ci, h, w]: [usize; 4],
        co: usize,
        [kh, kw]: [usize; 2],
        [sh, sw]: [usize; 2],
        [ph, pw]: [usize; 2],
    ) -> Option<Geom> {
        if [n, ci, h, w, co, kh, kw, sh, sw].contains(&0) || h + 2 * ph < kh || w + 2 * pw < kw {
            return None;
        }
        let (oh, ow) = ((h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1);
        Some(Geom { n, ci, h, w, co, oh, ow, kh, kw, sh, sw, ph, pw })
    }

    /// A transposed convolution of T [n, cin, ih, iw] with a [cin, cout, kh, kw] kernel and output
    /// padding `op` (< stride): the convolution whose Y side is T and whose X side is the output.
    pub fn transposed(
        [n, cin, ih, iw]: [usize; 4],
        cout: usize,
        [kh, kw]: [usize; 2],
        [sh, sw]: [usize; 2],
        [ph, pw]: [usize; 2],
        [oph, opw]: [usize; 2],
    ) -> Option<Geom> {
        if [n, cin, ih, iw, cout, kh, kw, sh, sw].contains(&0) || oph >= sh || opw >= sw {
            return None;
        }
        let h = ((ih - 1) * sh + kh + oph).checked_sub(2 * ph)?;
        let w = ((iw - 1) * sw + kw + opw).checked_sub(2 * pw)?;
        let g = Geom::conv([n, cout, h, w], cin, [kh, kw], [sh, sw], [ph, pw])?;
        (g.oh == ih && g.ow == iw).then_some(g)
    }

    /// Output positions per image (rows of the im2col matrix).
    pub fn p(&self) -> usize {
        self.oh * self.ow
    }
    /// The reduction length of the forward gemm (columns of the im2col matrix).
    pub fn kdim(&self) -> usize {
        self.ci * self.kh * self.kw
    }
    /// Elements of one image on the X side.
    pub fn xs(&self) -> usize {
        self.ci * self.h * self.w
    }
    /// Elements of one image on the Y side.
    pub fn ys(&self) -> usize {
        self.co * self.p()
    }
    /// Multiply-adds of one pass (forward, data gradient or weight gradient).
    pub fn macs(&self) -> u64 {
        (self.n * self.p() * self.kdim() * self.co) as u64
    }

    /// Images per chunk: as many as fit `CHUNK_BYTES` of scratch, but at most n/MIN_CHUNKS.
    pub fn chunk(&self) -> usize {
        let per_image = 4 * (self.kdim() * self.p()).max(self.xs()).max(self.ys());
        (CHUNK_BYTES / per_image.max(1)).min(self.n.div_ceil(MIN_CHUNKS)).max(1)
    }

    /// kx ∈ [lo, hi) is where ox·sw + kx − pw falls inside [0, w), for one output column.
    fn valid_kx(&self, ox: usize) -> (usize, usize) {
        let x0 = (ox * self.sw) as isize - self.pw as isize;
        let lo = (-x0).clamp(0, self.kw as isize) as usize;
        let hi = (self.w as isize - x0).clamp(0, self.kw as isize) as usize;
        (lo, hi.max(lo))
    }
}

thread_local! {
    static SCRATCH: RefCell<[Vec<f32>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// Run `f` with this thread's three scratch buffers sized to `sizes` (contents unspecified).
fn with_scratch<R>(sizes: [usize; 3], f: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        for (buf, &len) in s.iter_mut().zip(&sizes) {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
        }
        let [a, b, c] = &mut *s;
        f(&mut a[..sizes[0]], &mut b[..sizes[1]], &mut c[..sizes[2]])
    })
}

/// im2col of `nb` NHWC images: row r = (b·oh + oy)·ow + ox holds, for each (ky, kx), the ci
/// channels of the input pixel under that tap (zeros in the padding): col is [nb·p, kh·kw·ci].
fn im2col(g: &Geom, x: &[f32], nb: usize, col: &mut [f32]) {
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
    fn add_into(dst: &mut [f32], src: &[f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d += *s;
        }
    }
}

/// The adjoint of `im2col`: every column entry is added back to the input pixel it was read from.
fn col2im(g: &Geom, col: &[f32], nb: usize, x: &mut [f32]) {
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
    let per = super::act::PAR_MIN.div_ceil(len).max(1) * len;
    if nb * len < 2 * super::act::PAR_MIN {
        src[..nb * len].chunks(len).zip(dst.chunks_mut(len)).for_each(|(s, d)| one(s, d));
    } else {
        src[..nb * len].par_chunks(per).zip(dst[..nb * len].par_chunks_mut(per)).for_each(|(s, d)| {
            s.chunks(len).zip(d.chunks_mut(len)).for_each(|(s, d)| one(s, d));
        });
    }
}

/// The images `b0..b0+nb` of `data` as NHWC: borrowed when already NHWC, else transposed into `buf`.
fn chunk_nhwc<'a>(
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
    if w.len() < 2 * super::act::PAR_MIN {
        (0..blocks).for_each(fill);
    } else {
        (0..blocks).into_par_iter().for_each(fill);
    }
    wp
}

/// Wp [kh, kw, ci, co] → W [co, ci, kh, kw], the inverse of `permute_weight`; output channels are
/// split over the pool (each owns a contiguous block of W).
fn unpermute_weight(g: &Geom, wp: &[f32]) -> Vec<f32> {
    let (t, ci, co) = (g.kh * g.kw, g.ci, g.co);
    let mut w = vec![0.0f32; wp.len()];
    let per_o = ci * t;
    let o_per_task = (super::act::PAR_MIN / per_o.max(1)).clamp(1, 16);
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
    acc.par_chunks_mut(super::act::PAR_MIN).enumerate().for_each(|(i, a)| {
        let o = i * super::act::PAR_MIN;
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

/// Y = f(W ⋆ X + bias), NHWC, with `wp` = `permute_weight(W)`: the forward pass of a convolution
/// (and, without bias and activation, the input gradient of a transposed convolution).
pub fn forward(g: &Geom, x: &[f32], x_mem: Mem, wp: &[f32], bias: Option<&[f32]>, act: Act) -> Vec<f32> {
    assert_eq!(x.len(), g.n * g.xs(), "conv input size");
    assert_eq!(wp.len(), g.co * g.kdim(), "conv weight size");
    let (cb, p, kd) = (g.chunk(), g.p(), g.kdim());
    let zeros = vec![0.0f32; g.co];
    let bias = bias.unwrap_or(&zeros);
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

/// X = f(Wᵀ ⋆ Y + bias), NHWC, with `wp` = `permute_weight(W)`: the forward pass of a transposed
/// convolution (bias and activation on X's channels) and, without them, the input gradient of a
/// convolution.
pub fn backward_data(g: &Geom, y: &[f32], y_mem: Mem, wp: &[f32], bias: Option<&[f32]>, act: Act) -> Vec<f32> {
    assert_eq!(y.len(), g.n * g.ys(), "conv-transpose input size");
    assert_eq!(wp.len(), g.co * g.kdim(), "conv weight size");
    let (cb, p, kd, hw) = (g.chunk(), g.p(), g.kdim(), g.h * g.w);
    let zeros = vec![0.0f32; g.ci];
    let bias = bias.unwrap_or(&zeros);
    let mut x = vec![0.0f32; g.n * g.xs()];
    x.par_chunks_mut(cb * g.xs()).enumerate().for_each(|(i, xc)| {
        let (b0, nb) = (i * cb, xc.len() / g.xs());
        let r = nb * p;
        let tbuf = if y_mem == Mem::Nchw { nb * g.ys() } else { 0 };
        with_scratch([kd * r, tbuf, 0], |dcol, t, _| {
            let yc = chunk_nhwc(y, y_mem, b0, nb, g.co, p, t);
            // dcol[r, K′] = Y[r, co] · Wpᵀ[co, K′]
            matmul(r, kd, g.co, dcol, kd, false, view(yc, g.co, 1), view(wp, 1, g.co), Par::Seq);
            for px in xc.chunks_mut(g.ci) {
                px.copy_from_slice(bias);
            }
            col2im(g, dcol, nb, xc);
            debug_assert_eq!(xc.len(), nb * hw * g.ci);
            super::act::apply_inplace(xc, act);
        });
    });
    x
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
    let parts: Vec<ChunkGrads> = outs
        .into_par_iter()
        .enumerate()
        .map(|(i, dxc)| {
            let (b0, nb) = (i * cb, cb.min(g.n - i * cb));
            let r = nb * p;
            with_scratch([kd * r, r * g.co, (r * g.co).max(nb * g.xs())], |col, gbuf, tmp| {
                let gr = grad_rows(s.grad, s.output, act, (b0, nb), g.co, p, gbuf, tmp);
                let db = need.bias.then(|| {
                    let mut acc = vec![0.0f32; g.co];
                    column_sums(gr, &mut acc);
                    acc
                });
                if let Some(dxc) = dxc {
                    matmul(r, kd, g.co, col, kd, false, view(gr, g.co, 1), view(wp, 1, g.co), Par::Seq);
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Direct convolution in f64 on NCHW data: the definition, no tricks.
    pub fn conv_ref(g: &Geom, x: &[f32], w: &[f32]) -> Vec<f64> {
        let mut y = vec![0.0f64; g.n * g.ys()];
        for b in 0..g.n {
            for o in 0..g.co {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut s = 0.0f64;
                        for c in 0..g.ci {
                            for ky in 0..g.kh {
                                for kx in 0..g.kw {
                                    let iy = (oy * g.sh + ky) as isize - g.ph as isize;
                                    let ix = (ox * g.sw + kx) as isize - g.pw as isize;
                                    if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                        s += x[((b * g.ci + c) * g.h + iy as usize) * g.w + ix as usize] as f64
                                            * w[((o * g.ci + c) * g.kh + ky) * g.kw + kx] as f64;
                                    }
                                }
                            }
                        }
                        y[((b * g.co + o) * g.oh + oy) * g.ow + ox] = s;
                    }
                }
            }
        }
        y
    }

    fn rand_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn to_nchw(v: &[f32], n: usize, c: usize, s: usize) -> Vec<f32> {
        let mut o = vec![0.0; v.len()];
        nhwc_to_nchw(v, n, c, s, &mut o);
        o
    }

    fn close(got: &[f32], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
            assert!((a as f64 - b).abs() <= 1e-4 * scale, "{what}[{i}]: {a} vs {b}");
        }
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
    }

    /// forward matches the definition; backward_data is its adjoint (⟨W⋆X, D⟩ = ⟨X, Wᵀ⋆D⟩); the
    /// weight gradient is ∂⟨W⋆X, D⟩/∂W, checked against the definition by linearity. Inputs are
    /// given in both memory orders.
    #[test]
    fn forward_adjoint_and_weight_gradient_agree_with_the_definition() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let shapes = [
            ([2, 3, 7, 6], 4, [3, 3], [1, 1], [1, 1]),
            ([1, 1, 5, 5], 2, [5, 5], [1, 1], [2, 2]),
            ([3, 2, 9, 8], 5, [4, 4], [2, 2], [1, 1]),
            ([2, 4, 8, 9], 3, [3, 5], [2, 1], [0, 2]),
            ([17, 2, 6, 6], 3, [4, 4], [2, 2], [1, 1]),
        ];
        for (xs, co, k, s, pd) in shapes {
            let g = Geom::conv(xs, co, k, s, pd).unwrap();
            let x = rand_vec(&mut rng, g.n * g.xs());
            let w = rand_vec(&mut rng, g.co * g.kdim());
            let mut x_nhwc = vec![0.0; x.len()];
            nchw_to_nhwc(&x, g.n, g.ci, g.h * g.w, &mut x_nhwc);
            let want = conv_ref(&g, &x, &w);
            let wp = permute_weight(&g, &w);
            assert_eq!(unpermute_weight(&g, &wp), w);
            let y = forward(&g, &x, Mem::Nchw, &wp, None, Act::None);
            close(&to_nchw(&y, g.n, g.co, g.p()), &want, "forward (NCHW input)");
            assert_eq!(y, forward(&g, &x_nhwc, Mem::Nhwc, &wp, None, Act::None), "layouts disagree");
            let d = rand_vec(&mut rng, g.n * g.ys()); // NCHW
            let xt = to_nchw(&backward_data(&g, &d, Mem::Nchw, &wp, None, Act::None), g.n, g.ci, g.h * g.w);
            let lhs = want.iter().zip(&d).map(|(a, &b)| a * b as f64).sum::<f64>();
            assert!((lhs - dot(&x, &xt)).abs() < 1e-3 * lhs.abs().max(1.0), "adjoint {lhs} vs {}", dot(&x, &xt));
            let need = Need { input: true, weight: true, bias: true };
            let saved = Saved { input: (&x, Mem::Nchw), output: None, grad: (&d, Mem::Nchw) };
            let gr = backward(&g, saved, &wp, Act::None, need);
            let dx = to_nchw(gr.input.as_ref().unwrap(), g.n, g.ci, g.h * g.w);
            close(&dx, &xt.iter().map(|&v| v as f64).collect::<Vec<_>>(), "dx");
            // ⟨W⋆X, D⟩ is linear in W: its gradient dotted with any V equals ⟨V⋆X, D⟩.
            let v = rand_vec(&mut rng, w.len());
            let want_v = conv_ref(&g, &x, &v).iter().zip(&d).map(|(a, &b)| a * b as f64).sum::<f64>();
            let got = dot(gr.weight.as_ref().unwrap(), &v);
            assert!((want_v - got).abs() < 1e-3 * want_v.abs().max(1.0), "dW {got} vs {want_v}");
            for (o, &dbo) in gr.bias.unwrap().iter().enumerate() {
                let want: f64 =
                    (0..g.n).map(|b| d[(b * g.co + o) * g.p()..][..g.p()].iter().map(|&v| v as f64).sum::<f64>()).sum();
                assert!((dbo as f64 - want).abs() < 1e-3, "db[{o}]");
            }
        }
    }

    #[test]
    fn transposed_geometry_inverts_the_convolution_shape() {
        let g = Geom::transposed([4, 128, 7, 7], 64, [4, 4], [2, 2], [1, 1], [0, 0]).unwrap();
        assert_eq!((g.ci, g.h, g.w, g.co, g.oh, g.ow), (64, 14, 14, 128, 7, 7));
        let g = Geom::transposed([1, 2, 5, 5], 3, [3, 3], [2, 2], [1, 1], [1, 1]).unwrap();
        assert_eq!((g.h, g.w), (10, 10));
        assert!(Geom::transposed([1, 2, 5, 5], 3, [3, 3], [2, 2], [1, 1], [2, 0]).is_none());
    }

    /// The chunking depends on shapes only, and so do results: bit-identical with 1 and 3 threads.
    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let g = Geom::conv([37, 8, 14, 14], 16, [4, 4], [2, 2], [1, 1]).unwrap();
        let x = rand_vec(&mut rng, g.n * g.xs());
        let w = rand_vec(&mut rng, g.co * g.kdim());
        let d = rand_vec(&mut rng, g.n * g.ys());
        let need = Need { input: true, weight: true, bias: true };
        let w = permute_weight(&g, &w);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let s = Saved { input: (&x, Mem::Nchw), output: None, grad: (&d, Mem::Nchw) };
                let gr = backward(&g, s, &w, Act::None, need);
                let s = Saved { input: (&d, Mem::Nhwc), output: Some((&x, Mem::Nhwc)), grad: (&x, Mem::Nchw) };
                let gt = backward_transposed(&g, s, &w, Act::Tanh, need);
                (forward(&g, &x, Mem::Nchw, &w, None, Act::None), gr.input, gr.weight, gt.input, gt.weight, gt.bias)
            })
        };
        let (a, b) = (run(1), run(3));
        assert!(a.0 == b.0 && a.1 == b.1 && a.2 == b.2 && a.3 == b.3 && a.4 == b.4 && a.5 == b.5);
    }
}
