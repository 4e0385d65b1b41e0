//! 2-D convolution and transposed convolution on the CPU: forward and both gradients, each as
//! im2col/col2im around one `gemm` per chunk of images, on channels-last (NHWC) data — or, for 3×3
//! stride-1 and 4×4 stride-2 layers with ≥ 16 channels each side, as Winograd transforms around one
//! gemm per transformed-tile position over the whole batch (`winograd`).
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

mod backward;
mod forward;
mod layout;
#[cfg(test)]
pub(crate) mod tests;
mod winograd;

pub use backward::{Grads, Need, Saved, backward, backward_transposed};
pub use forward::{backward_data, forward};
pub use layout::{nchw_to_nhwc, nhwc_to_nchw, permute_weight};

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
