//! Winograd convolution F(m×m, r×r) (Lavin & Gray 2016), m = 2 or 4, for two kinds of layer:
//! - 3×3, stride-1, pad-1 convolutions: r = 3;
//! - 4×4, stride-2, pad-1 convolutions (DCGAN's down- and, as adjoints, up-sampling layers): read
//!   with its input cut into 2×2 pixel blocks (space to depth: X′[j][(py, px, c)] =
//!   X[2j + py − 1][…]), such a layer is a 2×2, stride-1, unpadded convolution with 4× the input
//!   channels, so r = 2 on X′. F(4×4, 2×2) does 25 multiplies per (4·ci, co) pair and tile where a
//!   direct 4×4 stride-2 convolution does 256 per (ci, co): 2.56× fewer multiply-adds. X′ is never
//!   written out: the input transform reads each block from X.
//!
//! Below, "ci" is the tile convolution's input channels: ci for r = 3, 4·ci for r = 2.
//!
//! An m×m output tile of such a layer is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, with d the a×a input
//! patch under it (a = m + r − 1): a² multiplies per (ci, co) pair and tile instead of r²m² (16 vs
//! 36 for m = 2, 36 vs 144 for m = 4, when r = 3). Summed over input channels, the element-wise products become
//! (m+2)² gemms, one per position ξ of the transformed tile: M_ξ[tiles, co] = V_ξ[tiles, ci] ·
//! U_ξ[ci, co]. The two gradients are the same transforms' adjoints around the transposed
//! products, dV_ξ = dM_ξ · U_ξᵀ and dU_ξ = V_ξᵀ · dM_ξ, so they are exactly the gradients of the
//! function the forward computes. On DCGAN's 7×7 maps F(4×4) tiles overhang to 8×8 and still
//! leave 3× fewer multiply-adds than im2col in each pass.
//!
//! Transformed tiles are stored ξ-major: V is [ξ][tiles][ci], U is [ξ][ci][co], M is
//! [ξ][tiles][co]; a tile's channels are contiguous, as in the NHWC maps the transforms read and
//! write, so every transform step is a vector operation over channels. Tiles are numbered
//! (image, tile row, tile column) within a chunk of images. Every transform is L·X·Lᵀ for one
//! of six small matrices, computed with plain multiplies and adds (no FMA), so its bits do not
//! depend on the vector unit. F(4×4)'s transforms round more than im2col's sums (its matrices hold
//! 1/24 and 8); `conv::tests` holds every pass to 1e-4 of the largest output against an f64
//! direct convolution. The r = 2 matrices are the Toom–Cook ones for the points 0, 1, −1, 2, ∞
//! (F(4×4)) and 0, 1, ∞ (F(2×2)), rows of Bᵀ scaled to integers.

use super::Geom;
use crate::kernels::gemm::{Par, matmul, view};
use crate::kernels::simd::multiversion;
use rayon::prelude::*;

/// `kind(g)` when this file computes `g`: a 3×3, stride-1, pad-1 convolution, or a 4×4, stride-2, pad-1
/// one on an even-sized input, with enough channels that the gemms, not the transforms, dominate
/// (with few channels im2col's one gemm is as fast).
fn enabled_kind(g: &Geom) -> Option<(usize, usize)> {
    kind(g).filter(|_| crate::kernels::winograd_enabled() && g.ci >= 16 && g.co >= 16)
}

/// (r, s): the tile convolution's taps per side and the space-to-depth factor, for the layers
/// this file computes.
fn kind(g: &Geom) -> Option<(usize, usize)> {
    match (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw) {
        (3, 3, 1, 1, 1, 1) => Some((3, 1)),
        (4, 4, 2, 2, 1, 1) if g.h.is_multiple_of(2) && g.w.is_multiple_of(2) => Some((2, 2)),
        _ => None,
    }
}

// F(2×2, 3×3): Bᵀ [4×4], G [4×3], Aᵀ [2×4].
#[rustfmt::skip]
const F2_BT: [f32; 16] = [
    1., 0., -1., 0.,
    0., 1., 1., 0.,
    0., -1., 1., 0.,
    0., 1., 0., -1.,
];
#[rustfmt::skip]
const F2_G: [f32; 12] = [
    1., 0., 0.,
    0.5, 0.5, 0.5,
    0.5, -0.5, 0.5,
    0., 0., 1.,
];
#[rustfmt::skip]
const F2_AT: [f32; 8] = [
    1., 1., 1., 0.,
    0., 1., -1., -1.,
];

// F(4×4, 3×3) with interpolation points 0, ±1, ±2, ∞ (Lavin & Gray): Bᵀ [6×6], G [6×3], Aᵀ [4×6].
#[rustfmt::skip]
const F4_BT: [f32; 36] = [
    4., 0., -5., 0., 1., 0.,
    0., -4., -4., 1., 1., 0.,
    0., 4., -4., -1., 1., 0.,
    0., -2., -1., 2., 1., 0.,
    0., 2., -1., -2., 1., 0.,
    0., 4., 0., -5., 0., 1.,
];
#[rustfmt::skip]
const F4_G: [f32; 18] = [
    1. / 4., 0., 0.,
    -1. / 6., -1. / 6., -1. / 6.,
    -1. / 6., 1. / 6., -1. / 6.,
    1. / 24., 1. / 12., 1. / 6.,
    1. / 24., -1. / 12., 1. / 6.,
    0., 0., 1.,
];
#[rustfmt::skip]
const F4_AT: [f32; 24] = [
    1., 1., 1., 1., 1., 0.,
    0., 1., -1., 2., -2., 0.,
    0., 1., 1., 4., 4., 0.,
    0., 1., -1., 8., -8., 1.,
];

// F(2×2, 2×2), points 0, 1, ∞: Bᵀ [3×3], G [3×2], Aᵀ [2×3].
#[rustfmt::skip]
const F2R2_BT: [f32; 9] = [
    1., -1., 0.,
    0., 1., 0.,
    0., -1., 1.,
];
#[rustfmt::skip]
const F2R2_G: [f32; 6] = [
    1., 0.,
    1., 1.,
    0., 1.,
];
#[rustfmt::skip]
const F2R2_AT: [f32; 6] = [
    1., 1., 0.,
    0., 1., 1.,
];

// F(4×4, 2×2), points 0, 1, −1, 2, ∞: Bᵀ [5×5], G [5×2], Aᵀ [4×5].
#[rustfmt::skip]
const F4R2_BT: [f32; 25] = [
    2., -1., -2., 1., 0.,
    0., 2., 1., -1., 0.,
    0., -2., 3., -1., 0.,
    0., -1., 0., 1., 0.,
    0., 2., -1., -2., 1.,
];
#[rustfmt::skip]
const F4R2_G: [f32; 10] = [
    1. / 2., 0.,
    1. / 2., 1. / 2.,
    1. / 6., -1. / 6.,
    1. / 6., 1. / 3.,
    0., 1.,
];
#[rustfmt::skip]
const F4R2_AT: [f32; 20] = [
    1., 1., 1., 1., 0.,
    0., 1., -1., 2., 0.,
    0., 1., 1., 4., 0.,
    0., 1., -1., 8., 1.,
];

/// The transform matrices of F(m×m, r×r), row-major; a = m + r − 1 is the transformed tile's
/// side. `s` is the space-to-depth factor: tile position j reads input rows s·j + py − 1,
/// py < s, into channel block py·s + px.
struct Tf {
    m: usize,
    r: usize,
    s: usize,
    /// Bᵀ [a×a], G [a×r], Aᵀ [m×a], and their transposes B, Gᵀ, A.
    bt: Vec<f32>,
    b: Vec<f32>,
    g: Vec<f32>,
    gt: Vec<f32>,
    at: Vec<f32>,
    a: Vec<f32>,
}

fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..rows * cols).map(|i| m[(i % rows) * cols + i / rows]).collect()
}

impl Tf {
    fn new(m: usize, (r, s): (usize, usize)) -> Tf {
        let (bt, g, at): (&[f32], &[f32], &[f32]) = match (m, r) {
            (2, 3) => (&F2_BT, &F2_G, &F2_AT),
            (4, 3) => (&F4_BT, &F4_G, &F4_AT),
            (2, 2) => (&F2R2_BT, &F2R2_G, &F2R2_AT),
            (4, 2) => (&F4R2_BT, &F4R2_G, &F4R2_AT),
            _ => unreachable!("F({m}x{m}, {r}x{r}) is not implemented"),
        };
        let a = m + r - 1;
        Tf {
            m,
            r,
            s,
            b: transpose(bt, a, a),
            gt: transpose(g, a, r),
            a: transpose(at, m, a),
            bt: bt.to_vec(),
            g: g.to_vec(),
            at: at.to_vec(),
        }
    }

    /// Side of the transformed tile, and the number of gemms.
    fn side(&self) -> usize {
        self.m + self.r - 1
    }

    /// The row of Wp [kh][kw][ci][co] holding tap (qy, qx) of tile-convolution input channel
    /// `c` (of s²·ci): W[s·qy + py][s·qx + px][c mod ci] with c = (py·s + px)·ci + c mod ci.
    fn wp_row(&self, ci: usize, c: usize, qy: usize, qx: usize) -> usize {
        let (p, c0) = (c / ci, c % ci);
        let (py, px) = (p / self.s, p % self.s);
        ((self.s * qy + py) * self.s * self.r + self.s * qx + px) * ci + c0
    }
}

/// The output tile side for `g`: whichever of 2 and 4 needs fewer multiply-adds once tiles
/// overhang the map (4 on 7×7 maps: 4 tiles of 36 against 16 of 16 for 3×3), 2 on a tie; and 2
/// for a 2×2 tile convolution whose map fits one 4×4 tile. There each image is one row of every
/// gemm, multiplied against a U_ξ 6.25× the weight's size in all (2.25× for F(2×2)): F(2×2) ran
/// the 64×64 DCGAN (4×4 maps in D's last and G's first layer) 5 % faster (`bench --model
/// dcgan-64`, 114 / 114 / 112 against 108 / 109 / 108 samples/s, Zen 4) though it multiplies 44 %
/// more; on 7×7 and 8×8 maps F(4×4) stayed faster.
pub(super) fn tile_side(g: &Geom) -> usize {
    let r = kind(g).map_or(3, |k| k.0);
    if r == 2 && g.oh <= 4 && g.ow <= 4 {
        return 2;
    }
    let cost = |m: usize| g.oh.div_ceil(m) * g.ow.div_ceil(m) * (m + r - 1) * (m + r - 1);
    if cost(4) < cost(2) { 4 } else { 2 }
}

/// One layer's Winograd plan: its tile side and matrices.
///
/// A pass runs over the whole batch in three phases: the transforms of chunks of images over the
/// pool, writing each tile's row of the batch-wide [ξ][tiles][c] matrices; then one gemm per ξ
/// over the pool, each single-threaded over every tile of the batch; then the inverse transforms
/// of chunks of images. Per chunk of images, the gemms had as few rows as the chunk has tiles (8
/// on a 4×4 map) and re-packed U_ξ for each; per ξ they have all the batch's tiles. Each product
/// is one single-threaded gemm whatever the pool, so the bits do not depend on the thread count.
pub(super) struct Plan {
    tf: Tf,
}

/// A batch-wide buffer from this thread's pool (contents unspecified: every user overwrites it
/// whole before reading), given back on drop. The transforms' matrices are up to tens of MB per
/// layer; allocated fresh at every call, the kernel's page clearing and the zero fill took 14 % of
/// a 64×64 DCGAN step.
pub(super) struct Buf(Vec<f32>);

thread_local! {
    static BUFS: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Buffers a thread keeps: a pass holds up to four at a time (U, V, dM, dU).
const POOLED: usize = 6;

/// Bytes of V and M together that one group of images may take (`Plan::group`): a training batch
/// of 64 at 64×64 fits in one group (its largest layer takes 39 MB).
const GROUP_BYTES: usize = 48 << 20;

/// Tile-convolution input channels per task of the weight transforms.
const WEIGHT_BLOCK: usize = 16;

impl Buf {
    pub(super) fn take(len: usize) -> Buf {
        let mut v = BUFS.with(|b| {
            let mut b = b.borrow_mut();
            // The smallest that fits, else the largest (grown below).
            let fit = (0..b.len()).filter(|&i| b[i].capacity() >= len).min_by_key(|&i| b[i].capacity());
            let pick = fit.or_else(|| (0..b.len()).max_by_key(|&i| b[i].capacity()));
            pick.map(|i| b.swap_remove(i)).unwrap_or_default()
        });
        v.resize(len, 0.0);
        Buf(v)
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        BUFS.with(|b| {
            let mut b = b.borrow_mut();
            b.push(v);
            if b.len() > POOLED {
                let smallest = (0..b.len()).min_by_key(|&i| b[i].capacity()).unwrap_or(0);
                b.swap_remove(smallest);
            }
        });
    }
}

impl std::ops::Deref for Buf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl std::ops::DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}

/// `f` on blocks of `WEIGHT_BLOCK` tile-convolution input channels (of `tci`) over the pool, each
/// given rows of `c` floats of `out`.
///
/// # Safety
/// `f` writes only rows that belong to the channels it is given, so no two blocks share a row.
unsafe fn by_channel_blocks(tci: usize, out: &mut [f32], c: usize, f: impl Fn(std::ops::Range<usize>, Rows) + Sync) {
    let (p, len) = (crate::kernels::SharedMut(out.as_mut_ptr()), out.len());
    (0..tci.div_ceil(WEIGHT_BLOCK)).into_par_iter().for_each(|b| {
        // SAFETY: `out` is borrowed for the whole loop; the blocks' rows are disjoint (the
        // caller's contract).
        let rows = unsafe { Rows::new(p, len, c) };
        f(b * WEIGHT_BLOCK..((b + 1) * WEIGHT_BLOCK).min(tci), rows);
    });
}

/// Rows of `c` floats of one buffer that this task writes while other tasks write other rows.
pub(super) struct Rows<'a> {
    p: crate::kernels::SharedMut,
    len: usize,
    c: usize,
    _buf: std::marker::PhantomData<&'a mut [f32]>,
}

impl Rows<'_> {
    /// # Safety
    /// `p` holds `len` floats that outlive the value, and while it lives no one else touches
    /// the rows its holder asks for.
    unsafe fn new(p: crate::kernels::SharedMut, len: usize, c: usize) -> Self {
        Rows { p, len, c, _buf: std::marker::PhantomData }
    }

    /// Row `i`, bounds-checked; `&mut self` keeps two of them from living at once.
    #[inline(always)]
    fn row(&mut self, i: usize) -> &mut [f32] {
        assert!((i + 1) * self.c <= self.len, "winograd row {i} out of bounds");
        // SAFETY: in bounds (checked above); no one else touches it (`new`'s contract).
        unsafe { self.p.slice(i * self.c, self.c) }
    }
}

/// A batch-wide [ξ][tiles][c] matrix whose tiles' rows the tasks of a transform phase write,
/// each task those of its own images.
#[derive(Clone, Copy)]
pub(super) struct Slab {
    p: crate::kernels::SharedMut,
    len: usize,
    nt: usize,
    c: usize,
}

impl Slab {
    /// # Safety
    /// The rows of tiles t0.. that the holder writes are no other task's, and the buffer
    /// outlives the value.
    unsafe fn rows<'a>(self) -> Rows<'a> {
        // SAFETY: the caller's contract.
        unsafe { Rows::new(self.p, self.len, self.c) }
    }
}

impl Plan {
    /// The plan of `g` when this file computes it (see `enabled_kind`).
    pub(super) fn for_layer(g: &Geom) -> Option<Plan> {
        Some(Plan { tf: Tf::new(tile_side(g), enabled_kind(g)?) })
    }

    /// Transformed-tile positions ξ: the number of gemms per pass.
    fn xis(&self) -> usize {
        self.tf.side() * self.tf.side()
    }

    /// Input channels of the tile convolution: ci, or 4·ci read through space to depth.
    pub(super) fn tci(&self, g: &Geom) -> usize {
        self.tf.s * self.tf.s * g.ci
    }

    /// Tiles of one image.
    fn tiles_per_image(&self, g: &Geom) -> usize {
        g.oh.div_ceil(self.tf.m) * g.ow.div_ceil(self.tf.m)
    }

    /// Images per group: a pass over more images runs group by group, so that its batch-wide
    /// matrices (V and M) stay within `GROUP_BYTES` — a test pass of 1,000 images would otherwise
    /// hold (and the pool keep) hundreds of MB. Depends on the shapes only.
    pub(super) fn group(&self, g: &Geom) -> usize {
        let per_image = 4 * self.xis() * self.tiles_per_image(g) * (self.tci(g) + g.co);
        (GROUP_BYTES / per_image.max(1)).clamp(1, g.n)
    }

    /// Tiles of the batch: the rows of every ξ's gemm.
    pub(super) fn tiles(&self, g: &Geom) -> usize {
        g.n * self.tiles_per_image(g)
    }

    /// Floats of a batch-wide matrix with `c` columns per (ξ, tile).
    pub(super) fn len(&self, g: &Geom, c: usize) -> usize {
        self.xis() * self.tiles(g) * c
    }

    /// A view of `buf` (`len(g, c)` floats) that a transform phase's tasks write.
    pub(super) fn slab(&self, g: &Geom, buf: &mut [f32], c: usize) -> Slab {
        assert_eq!(buf.len(), self.len(g, c), "winograd buffer size");
        Slab { p: crate::kernels::SharedMut(buf.as_mut_ptr()), len: buf.len(), nt: self.tiles(g), c }
    }

    /// The transformed weights U [ξ][ci][co] = G g Gᵀ from `wp` = `permute_weight(W)`
    /// [kh][kw][ci][co].
    /// U is a²·s²/(s·r)² times the weight (6.25× for F(4×4, 2×2)): it comes from the pool, and
    /// blocks of input channels are transformed over the pool.
    pub(super) fn weights(&self, g: &Geom, wp: &[f32]) -> Buf {
        assert_eq!(wp.len(), g.kdim() * g.co, "winograd weight size");
        let mut u = Buf::take(self.weight_len(g));
        // SAFETY: `weights_into` writes only rows (ξ, c) of the channels c it is given.
        unsafe { by_channel_blocks(self.tci(g), &mut u, g.co, |cs, rows| weights_into(&self.tf, g.ci, wp, cs, rows)) };
        u
    }

    /// The weight gradient in `permute_weight`'s layout from the transformed one, dU [ξ][ci][co].
    pub(super) fn weight_grad(&self, g: &Geom, du: &[f32]) -> Vec<f32> {
        assert_eq!(du.len(), self.weight_len(g), "winograd weight-gradient size");
        let mut dwp = vec![0.0f32; g.kdim() * g.co];
        // SAFETY: `weight_grad_into` writes only the rows its channels' taps map to (`wp_row` is
        // one-to-one).
        unsafe {
            by_channel_blocks(self.tci(g), &mut dwp, g.co, |cs, rows| weight_grad_into(&self.tf, g.ci, du, cs, rows))
        };
        dwp
    }

    /// Floats of the transformed weights (and of their gradient).
    fn weight_len(&self, g: &Geom) -> usize {
        self.xis() * self.tci(g) * g.co
    }

    /// V rows of images b0..b0+nb (`x`, NHWC [nb, h, w, ci]) into `v` (tci columns).
    ///
    /// # Safety
    /// `v`'s buffer is alive, and no other task writes these images' rows of it meanwhile.
    pub(super) unsafe fn input_transform(&self, g: &Geom, x: &[f32], b0: usize, nb: usize, v: Slab) {
        assert_eq!(v.c, self.tci(g), "winograd input slab width");
        // SAFETY: the caller's contract; `input_tiles` writes only tiles of images b0..b0+nb.
        let rows = unsafe { v.rows() };
        input_tiles(&self.tf, [g.h, g.w, g.ci], x, nb, (rows, v.nt, b0 * self.tiles_per_image(g)));
    }

    /// dM rows (A dY Aᵀ) of images b0..b0+nb (`dy`, NHWC [nb, oh, ow, co]) into `dm` (co columns).
    ///
    /// # Safety
    /// As `input_transform`.
    pub(super) unsafe fn grad_transform(&self, g: &Geom, dy: &[f32], b0: usize, nb: usize, dm: Slab) {
        assert_eq!(dm.c, g.co, "winograd gradient slab width");
        // SAFETY: the caller's contract; `grad_tiles` writes only tiles of images b0..b0+nb.
        let rows = unsafe { dm.rows() };
        grad_tiles(&self.tf, [g.oh, g.ow, g.co], dy, nb, (rows, dm.nt, b0 * self.tiles_per_image(g)));
    }

    /// Y = Aᵀ M A of images b0..b0+nb from the batch's M (co columns), overwriting `y` [nb, oh, ow, co].
    pub(super) fn output_transform(&self, g: &Geom, m: &[f32], b0: usize, nb: usize, y: &mut [f32]) {
        let src = (m, self.tiles(g), b0 * self.tiles_per_image(g));
        output_tiles(&self.tf, [g.oh, g.ow, g.co], src, nb, y);
    }

    /// dx += B dV Bᵀ of images b0..b0+nb from the batch's dV (tci columns), into `dx` [nb, h, w, ci].
    pub(super) fn scatter(&self, g: &Geom, dv: &[f32], b0: usize, nb: usize, dx: &mut [f32]) {
        let src = (dv, self.tiles(g), b0 * self.tiles_per_image(g));
        scatter_tiles(&self.tf, [g.h, g.w, g.ci], src, nb, dx);
    }

    /// M_ξ = V_ξ · U_ξ for every ξ, one gemm per ξ over the pool.
    pub(super) fn products(&self, g: &Geom, v: &[f32], u: &[f32], m: &mut [f32]) {
        let (nt, ci, co) = (self.tiles(g), self.tci(g), g.co);
        m.par_chunks_mut(nt * co).enumerate().for_each(|(xi, mx)| {
            let (vx, ux) = (&v[xi * nt * ci..][..nt * ci], &u[xi * ci * co..][..ci * co]);
            matmul(nt, co, ci, mx, co, false, view(vx, ci, 1), view(ux, co, 1), Par::Seq);
        });
    }

    /// dV_ξ = dM_ξ · U_ξᵀ for every ξ, one gemm per ξ over the pool. U_ξᵀ is read in place: the
    /// gemm packs each block of it once per call, as it has every tile of the batch to multiply.
    pub(super) fn data_products(&self, g: &Geom, dm: &[f32], u: &[f32], dv: &mut [f32]) {
        let (nt, ci, co) = (self.tiles(g), self.tci(g), g.co);
        dv.par_chunks_mut(nt * ci).enumerate().for_each(|(xi, vx)| {
            let (mx, ux) = (&dm[xi * nt * co..][..nt * co], &u[xi * ci * co..][..ci * co]);
            matmul(nt, ci, co, vx, ci, false, view(mx, co, 1), view(ux, 1, co), Par::Seq);
        });
    }

    /// dU_ξ = V_ξᵀ · dM_ξ over the whole batch for every ξ, then (when `u` is given) V_ξ is
    /// overwritten with dV_ξ = dM_ξ · U_ξᵀ, one ξ per task: both gradients from one pass over dM.
    /// Returns dU [ξ][tci][co] when `weight`.
    pub(super) fn gradients(
        &self,
        g: &Geom,
        v: &mut [f32],
        dm: &[f32],
        u: Option<&[f32]>,
        weight: bool,
    ) -> Option<Buf> {
        let (nt, ci, co) = (self.tiles(g), self.tci(g), g.co);
        let mut du = weight.then(|| Buf::take(self.weight_len(g)));
        let dus: Vec<Option<&mut [f32]>> = match du.as_deref_mut() {
            Some(d) => d.chunks_mut(ci * co).map(Some).collect(),
            None => (0..self.xis()).map(|_| None).collect(),
        };
        v.par_chunks_mut(nt * ci).zip(dus).enumerate().for_each(|(xi, (vx, dux))| {
            let mx = &dm[xi * nt * co..][..nt * co];
            if let Some(dux) = dux {
                matmul(ci, co, nt, dux, co, false, view(vx, 1, ci), view(mx, co, 1), Par::Seq);
            }
            if let Some(u) = u {
                let ux = &u[xi * ci * co..][..ci * co];
                matmul(nt, ci, co, vx, ci, false, view(mx, co, 1), view(ux, 1, co), Par::Seq);
            }
        });
        du
    }
}

/// y = L·x·Lᵀ on a block of channel vectors: x is [r][r][c], y is [l][l][c], L is [l×r]
/// (row-major); `t` is l·r·c floats of scratch. Zero coefficients are skipped and ±1 ones add,
/// so the simple transforms cost what a hand-written one would.
#[inline(always)]
fn two_sided(lm: &[f32], l: usize, r: usize, c: usize, x: &[f32], t: &mut [f32], y: &mut [f32]) {
    // t[i] = Σ_k L[i][k]·x[k], on whole rows of r·c floats; then y[i][j] = Σ_k L[j][k]·t[i][k].
    combine(lm, l, r, r * c, x, t);
    for i in 0..l {
        combine(lm, l, r, c, &t[i * r * c..][..r * c], &mut y[i * l * c..][..l * c]);
    }
}

/// out[i] = Σ_k L[i][k]·x[k] for rows of `len` floats.
#[inline(always)]
fn combine(lm: &[f32], l: usize, r: usize, len: usize, x: &[f32], out: &mut [f32]) {
    for i in 0..l {
        let o = &mut out[i * len..][..len];
        let mut first = true;
        for k in 0..r {
            let coef = lm[i * r + k];
            if coef == 0.0 {
                continue;
            }
            let xk = &x[k * len..][..len];
            match (first, coef) {
                (true, 1.0) => o.copy_from_slice(xk),
                (true, _) => o.iter_mut().zip(xk).for_each(|(o, x)| *o = coef * x),
                (false, 1.0) => o.iter_mut().zip(xk).for_each(|(o, x)| *o += x),
                (false, -1.0) => o.iter_mut().zip(xk).for_each(|(o, x)| *o -= x),
                (false, _) => o.iter_mut().zip(xk).for_each(|(o, x)| *o += coef * x),
            }
            first = false;
        }
        if first {
            o.fill(0.0);
        }
    }
}

multiversion! {
    /// U [ξ][s²ci][co] = G g Gᵀ for every (tile-convolution input channel, co), from `wp`
    /// [kh][kw][ci][co].
    /// Only channels `cs` (rows (ξ, c) of `u`, which this task owns).
    fn weights_into(tf: &Tf, ci: usize, wp: &[f32], cs: std::ops::Range<usize>, u: Rows) {
        let mut u = u;
        let (a, r, tci, co) = (tf.side(), tf.r, tf.s * tf.s * ci, u.c);
        assert!(cs.end <= tci, "winograd weight channels");
        let (mut x, mut t, mut y) = (vec![0.0f32; r * r * co], vec![0.0f32; r * a * co], vec![0.0f32; a * a * co]);
        for c in cs {
            for tap in 0..r * r {
                let row = tf.wp_row(ci, c, tap / r, tap % r);
                x[tap * co..][..co].copy_from_slice(&wp[row * co..][..co]);
            }
            two_sided(&tf.g, a, r, co, &x, &mut t, &mut y);
            for xi in 0..a * a {
                u.row(xi * tci + c).copy_from_slice(&y[xi * co..][..co]);
            }
        }
    }
}

multiversion! {
    /// dWp [kh][kw][ci][co] = Gᵀ dU G: the adjoint of `weights_into`, from dU [ξ][s²ci][co].
    /// Every row of dWp is written once (the s² channel blocks partition the kernel's taps).
    /// Only channels `cs` (the rows of `dwp` their taps map to, which this task owns).
    fn weight_grad_into(tf: &Tf, ci: usize, du: &[f32], cs: std::ops::Range<usize>, dwp: Rows) {
        let mut dwp = dwp;
        let (a, r, tci, co) = (tf.side(), tf.r, tf.s * tf.s * ci, dwp.c);
        assert!(cs.end <= tci, "winograd weight channels");
        let (mut x, mut t, mut y) = (vec![0.0f32; a * a * co], vec![0.0f32; r * a * co], vec![0.0f32; r * r * co]);
        for c in cs {
            for xi in 0..a * a {
                x[xi * co..][..co].copy_from_slice(&du[(xi * tci + c) * co..][..co]);
            }
            two_sided(&tf.gt, r, a, co, &x, &mut t, &mut y);
            for tap in 0..r * r {
                let row = tf.wp_row(ci, c, tap / r, tap % r);
                dwp.row(row).copy_from_slice(&y[tap * co..][..co]);
            }
        }
    }
}

multiversion! {
    /// V [ξ][tiles][s²c] = Bᵀ d B for every tile of `nb` NHWC images [nb, h, w, c] (zeros
    /// outside), d read through space to depth when s = 2; rows from tile t0 of `v`, which this
    /// task owns.
    fn input_tiles(tf: &Tf, dims: [usize; 3], x: &[f32], nb: usize, dst: (Rows, usize, usize)) {
        let (mut v, nt, t0) = dst;
        let [h, w, c] = dims;
        let (m, a, sd) = (tf.m, tf.side(), tf.s);
        let (th, tw) = ((h / sd).div_ceil(m), (w / sd).div_ceil(m));
        let tc = sd * sd * c;
        assert_eq!(v.c, tc, "winograd input rows");
        let (mut d, mut t, mut y) = (vec![0.0f32; a * a * tc], vec![0.0f32; a * a * tc], vec![0.0f32; a * a * tc]);
        for b in 0..nb {
            let img = &x[b * h * w * c..][..h * w * c];
            for ty in 0..th {
                for tx in 0..tw {
                    for r in 0..a {
                        for s in 0..a {
                            for p in 0..sd * sd {
                                let iy = (sd * (m * ty + r) + p / sd).wrapping_sub(1);
                                let ix = (sd * (m * tx + s) + p % sd).wrapping_sub(1);
                                let dst = &mut d[((r * a + s) * sd * sd + p) * c..][..c];
                                if iy < h && ix < w {
                                    dst.copy_from_slice(&img[(iy * w + ix) * c..][..c]);
                                } else {
                                    dst.fill(0.0);
                                }
                            }
                        }
                    }
                    two_sided(&tf.bt, a, a, tc, &d, &mut t, &mut y);
                    let tile = t0 + (b * th + ty) * tw + tx;
                    for xi in 0..a * a {
                        v.row(xi * nt + tile).copy_from_slice(&y[xi * tc..][..tc]);
                    }
                }
            }
        }
    }
}

multiversion! {
    /// dx += B dV Bᵀ scattered back onto `nb` NHWC images [nb, h, w, c] (the adjoint of
    /// `input_tiles`; padding positions are dropped), from dV [ξ][tiles][s²c].
    /// `src` is (dV, tiles per ξ, the first tile of these images).
    fn scatter_tiles(tf: &Tf, dims: [usize; 3], src: (&[f32], usize, usize), nb: usize, dx: &mut [f32]) {
        let [h, w, c] = dims;
        let (m, a, sd) = (tf.m, tf.side(), tf.s);
        let (th, tw) = ((h / sd).div_ceil(m), (w / sd).div_ceil(m));
        let ((dv, nt, t0), tc) = (src, sd * sd * c);
        let (mut x, mut t, mut d) = (vec![0.0f32; a * a * tc], vec![0.0f32; a * a * tc], vec![0.0f32; a * a * tc]);
        for b in 0..nb {
            let img = &mut dx[b * h * w * c..][..h * w * c];
            for ty in 0..th {
                for tx in 0..tw {
                    let tile = t0 + (b * th + ty) * tw + tx;
                    for xi in 0..a * a {
                        x[xi * tc..][..tc].copy_from_slice(&dv[(xi * nt + tile) * tc..][..tc]);
                    }
                    two_sided(&tf.b, a, a, tc, &x, &mut t, &mut d);
                    for r in 0..a {
                        for s in 0..a {
                            for p in 0..sd * sd {
                                let iy = (sd * (m * ty + r) + p / sd).wrapping_sub(1);
                                let ix = (sd * (m * tx + s) + p % sd).wrapping_sub(1);
                                if iy < h && ix < w {
                                    let dst = &mut img[(iy * w + ix) * c..][..c];
                                    let src = &d[((r * a + s) * sd * sd + p) * c..][..c];
                                    dst.iter_mut().zip(src).for_each(|(o, v)| *o += v);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

multiversion! {
    /// Y = Aᵀ M A for every tile, written (overwriting) to `nb` NHWC maps [nb, oh, ow, c]; the
    /// overhang past odd sizes is dropped. M is [ξ][tiles][c].
    /// `src` is (M, tiles per ξ, the first tile of these images).
    fn output_tiles(tf: &Tf, dims: [usize; 3], src: (&[f32], usize, usize), nb: usize, y: &mut [f32]) {
        let [oh, ow, c] = dims;
        let (m, a) = (tf.m, tf.side());
        let (th, tw) = (oh.div_ceil(m), ow.div_ceil(m));
        let (mt, nt, t0) = src;
        let (mut x, mut t, mut out) = (vec![0.0f32; a * a * c], vec![0.0f32; m * a * c], vec![0.0f32; m * m * c]);
        for b in 0..nb {
            let img = &mut y[b * oh * ow * c..][..oh * ow * c];
            for ty in 0..th {
                for tx in 0..tw {
                    let tile = t0 + (b * th + ty) * tw + tx;
                    for xi in 0..a * a {
                        x[xi * c..][..c].copy_from_slice(&mt[(xi * nt + tile) * c..][..c]);
                    }
                    two_sided(&tf.at, m, a, c, &x, &mut t, &mut out);
                    for i in 0..m {
                        for j in 0..m {
                            let (oy, ox) = (m * ty + i, m * tx + j);
                            if oy < oh && ox < ow {
                                img[(oy * ow + ox) * c..][..c].copy_from_slice(&out[(i * m + j) * c..][..c]);
                            }
                        }
                    }
                }
            }
        }
    }
}

multiversion! {
    /// dM [ξ][tiles][c] = A dY Aᵀ for every tile (the adjoint of `output_tiles`; the overhang
    /// reads zeros), from `nb` NHWC maps [nb, oh, ow, c].
    /// Rows from tile t0 of `dm`, which this task owns.
    fn grad_tiles(tf: &Tf, dims: [usize; 3], dy: &[f32], nb: usize, dst: (Rows, usize, usize)) {
        let (mut dm, nt, t0) = dst;
        let [oh, ow, c] = dims;
        let (m, a) = (tf.m, tf.side());
        let (th, tw) = (oh.div_ceil(m), ow.div_ceil(m));
        assert_eq!(dm.c, c, "winograd gradient rows");
        let (mut x, mut t, mut y) = (vec![0.0f32; m * m * c], vec![0.0f32; a * m * c], vec![0.0f32; a * a * c]);
        for b in 0..nb {
            let img = &dy[b * oh * ow * c..][..oh * ow * c];
            for ty in 0..th {
                for tx in 0..tw {
                    for i in 0..m {
                        for j in 0..m {
                            let (oy, ox) = (m * ty + i, m * tx + j);
                            let dst = &mut x[(i * m + j) * c..][..c];
                            if oy < oh && ox < ow {
                                dst.copy_from_slice(&img[(oy * ow + ox) * c..][..c]);
                            } else {
                                dst.fill(0.0);
                            }
                        }
                    }
                    two_sided(&tf.a, a, m, c, &x, &mut t, &mut y);
                    let tile = t0 + (b * th + ty) * tw + tx;
                    for xi in 0..a * a {
                        dm.row(xi * nt + tile).copy_from_slice(&y[xi * c..][..c]);
                    }
                }
            }
        }
    }
}
