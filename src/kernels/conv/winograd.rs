//! Winograd convolution F(m×m, 3×3) (Lavin & Gray 2016), m = 2 or 4, for 3×3, stride-1, pad-1
//! convolutions.
//!
//! An m×m output tile of such a layer is Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, with d the (m+2)×(m+2) input
//! patch under it: (m+2)² multiplies per (ci, co) pair and tile instead of 9m² (16 vs 36 for
//! m = 2, 36 vs 144 for m = 4). Summed over input channels, the element-wise products become
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
//! direct convolution.

use super::Geom;
use crate::kernels::gemm::{Par, matmul, view};
use crate::kernels::simd::multiversion;

/// Whether this file computes `g`: a 3×3, stride-1, pad-1 convolution with enough channels that
/// the gemms, not the transforms, dominate (with few channels im2col's one gemm is as fast).
pub(super) fn applies(g: &Geom) -> bool {
    crate::kernels::winograd_enabled()
        && (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw) == (3, 3, 1, 1, 1, 1)
        && g.ci >= 16
        && g.co >= 16
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

/// The transform matrices of F(m×m, 3×3), row-major; a = m + 2 is the transformed tile's side.
struct Tf {
    m: usize,
    /// Bᵀ [a×a], G [a×3], Aᵀ [m×a], and their transposes B, Gᵀ, A.
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
    fn new(m: usize) -> Tf {
        let (bt, g, at): (&[f32], &[f32], &[f32]) = match m {
            2 => (&F2_BT, &F2_G, &F2_AT),
            4 => (&F4_BT, &F4_G, &F4_AT),
            _ => unreachable!("F({m}x{m}, 3x3) is not implemented"),
        };
        let a = m + 2;
        Tf {
            m,
            b: transpose(bt, a, a),
            gt: transpose(g, a, 3),
            a: transpose(at, m, a),
            bt: bt.to_vec(),
            g: g.to_vec(),
            at: at.to_vec(),
        }
    }

    /// Side of the transformed tile, and the number of gemms.
    fn side(&self) -> usize {
        self.m + 2
    }
}

/// The output tile side for `g`: whichever of 2 and 4 needs fewer multiply-adds once tiles
/// overhang the map (4 on 7×7 maps: 4 tiles of 36 against 16 of 16), 2 on a tie.
pub(super) fn tile_side(g: &Geom) -> usize {
    let cost = |m: usize| g.oh.div_ceil(m) * g.ow.div_ceil(m) * (m + 2) * (m + 2);
    if cost(4) < cost(2) { 4 } else { 2 }
}

/// Tile rows and columns per image for tiles of side m.
fn tiles(g: &Geom, m: usize) -> (usize, usize) {
    (g.oh.div_ceil(m), g.ow.div_ceil(m))
}

/// One layer's Winograd plan: its tile side and matrices.
pub(super) struct Plan {
    tf: Tf,
}

impl Plan {
    pub(super) fn new(g: &Geom) -> Plan {
        Plan { tf: Tf::new(tile_side(g)) }
    }

    /// The plan and transformed weights of `g` when this file computes it (see `applies`).
    pub(super) fn with_weights(g: &Geom, wp: &[f32]) -> Option<(Plan, Vec<f32>)> {
        applies(g).then(|| {
            let plan = Plan::new(g);
            let u = plan.weights(g, wp);
            (plan, u)
        })
    }

    /// The plan and transposed transformed weights (`weights_t`), for input gradients only.
    pub(super) fn with_weights_t(g: &Geom, wp: &[f32]) -> Option<(Plan, Vec<f32>)> {
        applies(g).then(|| {
            let plan = Plan::new(g);
            let ut = plan.weights_t(g, wp);
            (plan, ut)
        })
    }

    /// Transformed-tile positions ξ: the number of gemms per pass.
    fn xis(&self) -> usize {
        self.tf.side() * self.tf.side()
    }

    /// Tiles in a chunk of `nb` images.
    fn tile_count(&self, g: &Geom, nb: usize) -> usize {
        let (th, tw) = tiles(g, self.tf.m);
        nb * th * tw
    }

    /// Scratch floats one chunk of `nb` images needs: V and M (or dV and dM) side by side.
    pub(super) fn scratch(&self, g: &Geom, nb: usize) -> usize {
        self.xis() * self.tile_count(g, nb) * (g.ci + g.co)
    }

    /// Floats of a chunk's dM, the first part of its scratch.
    pub(super) fn dm_len(&self, g: &Geom, nb: usize) -> usize {
        self.xis() * self.tile_count(g, nb) * g.co
    }

    /// The transformed weights U [ξ][ci][co] = G g Gᵀ from `wp` = `permute_weight(W)`
    /// [3][3][ci][co].
    pub(super) fn weights(&self, g: &Geom, wp: &[f32]) -> Vec<f32> {
        assert_eq!(wp.len(), 9 * g.ci * g.co, "winograd weight size");
        let mut u = vec![0.0f32; self.xis() * g.ci * g.co];
        weights_into(&self.tf, g.ci, g.co, wp, &mut u);
        u
    }

    /// Uᵀ [ξ][co][ci]: the input gradient's right-hand side dM_ξ · U_ξᵀ, written out once per call
    /// so the gemm reads its rows in place instead of gathering U_ξ's columns per chunk (the same
    /// reason as `layout::transposed_weight`).
    pub(super) fn weights_t(&self, g: &Geom, wp: &[f32]) -> Vec<f32> {
        let u = self.weights(g, wp);
        let mut ut = vec![0.0f32; u.len()];
        // One ξ per task (an "image" of `transpose_images`): on one thread these transposes left
        // the other core idle for 1.7 % of a DCGAN step.
        super::layout::transpose_images(&u, self.xis(), g.ci, g.co, &mut ut);
        ut
    }

    /// The weight gradient in `permute_weight`'s layout from the transformed one, dU [ξ][ci][co].
    fn weight_grad(&self, g: &Geom, du: &[f32]) -> Vec<f32> {
        let mut dwp = vec![0.0f32; 9 * g.ci * g.co];
        weight_grad_into(&self.tf, g.ci, g.co, du, &mut dwp);
        dwp
    }

    /// Y [nb, oh, ow, co] = W ⋆ X for a chunk of NHWC images `x` [nb, h, w, ci], before bias and
    /// activation, with U = `weights(wp)`. `s` is `scratch(g, nb)` floats.
    pub(super) fn forward_chunk(&self, g: &Geom, x: &[f32], nb: usize, u: &[f32], y: &mut [f32], s: &mut [f32]) {
        let nt = self.tile_count(g, nb);
        let (v, m) = s.split_at_mut(self.xis() * nt * g.ci);
        input_tiles(&self.tf, [g.h, g.w, g.ci], x, nb, v);
        for xi in 0..self.xis() {
            let (vx, ux) = (&v[xi * nt * g.ci..][..nt * g.ci], &u[xi * g.ci * g.co..][..g.ci * g.co]);
            let mx = &mut m[xi * nt * g.co..][..nt * g.co];
            matmul(nt, g.co, g.ci, mx, g.co, false, view(vx, g.ci, 1), view(ux, g.co, 1), Par::Seq);
        }
        output_tiles(&self.tf, [g.oh, g.ow, g.co], m, nb, y);
    }

    /// dM [ξ][tiles][co] of a chunk's NHWC output gradient `dy` [nb, oh, ow, co] into `dm`.
    pub(super) fn grad_transform(&self, g: &Geom, dy: &[f32], nb: usize, dm: &mut [f32]) {
        grad_tiles(&self.tf, [g.oh, g.ow, g.co], dy, nb, dm);
    }

    /// dx [nb, h, w, ci] += Wᵀ ⋆ dY for a chunk, from its dM (`grad_transform`) and Uᵀ
    /// (`weights_t`); `dv` is ξ·tiles·ci floats of scratch.
    pub(super) fn data_chunk(&self, g: &Geom, dm: &[f32], nb: usize, ut: &[f32], dx: &mut [f32], dv: &mut [f32]) {
        let nt = self.tile_count(g, nb);
        for xi in 0..self.xis() {
            let (mx, utx) = (&dm[xi * nt * g.co..][..nt * g.co], &ut[xi * g.ci * g.co..][..g.ci * g.co]);
            let vx = &mut dv[xi * nt * g.ci..][..nt * g.ci];
            // dV_ξ[t, ci] = dM_ξ[t, co] · U_ξᵀ[co, ci]
            matmul(nt, g.ci, g.co, vx, g.ci, false, view(mx, g.co, 1), view(utx, g.ci, 1), Par::Seq);
        }
        scatter_tiles(&self.tf, [g.h, g.w, g.ci], dv, nb, dx);
    }

    /// A chunk's weight gradient in `permute_weight`'s layout, Gᵀ(Σ_tiles V_ξᵀ · dM_ξ)G, from its
    /// NHWC input `x` and its dM; `v` is ξ·tiles·ci floats of scratch. dU goes through a reused
    /// per-thread buffer: it is (m+2)²/9 times the weight's size (4× for m = 4).
    pub(super) fn weight_chunk(&self, g: &Geom, x: &[f32], nb: usize, dm: &[f32], v: &mut [f32]) -> Vec<f32> {
        thread_local! {
            static DU: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let nt = self.tile_count(g, nb);
        input_tiles(&self.tf, [g.h, g.w, g.ci], x, nb, v);
        DU.with(|du| {
            let mut du = du.borrow_mut();
            du.resize(self.weight_len(g), 0.0);
            for xi in 0..self.xis() {
                let (vx, mx) = (&v[xi * nt * g.ci..][..nt * g.ci], &dm[xi * nt * g.co..][..nt * g.co]);
                let ux = &mut du[xi * g.ci * g.co..][..g.ci * g.co];
                matmul(g.ci, g.co, nt, ux, g.co, false, view(vx, 1, g.ci), view(mx, g.co, 1), Par::Seq);
            }
            self.weight_grad(g, &du)
        })
    }

    /// Floats of the transformed weights (and of their gradient).
    fn weight_len(&self, g: &Geom) -> usize {
        self.xis() * g.ci * g.co
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
    /// U [ξ][ci][co] = G g Gᵀ for every (ci, co), from `wp` [3][3][ci][co].
    fn weights_into(tf: &Tf, ci: usize, co: usize, wp: &[f32], u: &mut [f32]) {
        let a = tf.side();
        let (mut x, mut t, mut y) = (vec![0.0f32; 9 * co], vec![0.0f32; 3 * a * co], vec![0.0f32; a * a * co]);
        for c in 0..ci {
            for tap in 0..9 {
                x[tap * co..][..co].copy_from_slice(&wp[(tap * ci + c) * co..][..co]);
            }
            two_sided(&tf.g, a, 3, co, &x, &mut t, &mut y);
            for xi in 0..a * a {
                u[(xi * ci + c) * co..][..co].copy_from_slice(&y[xi * co..][..co]);
            }
        }
    }
}

multiversion! {
    /// dWp [3][3][ci][co] = Gᵀ dU G: the adjoint of `weights_into`, from dU [ξ][ci][co].
    fn weight_grad_into(tf: &Tf, ci: usize, co: usize, du: &[f32], dwp: &mut [f32]) {
        let a = tf.side();
        let (mut x, mut t, mut y) = (vec![0.0f32; a * a * co], vec![0.0f32; 3 * a * co], vec![0.0f32; 9 * co]);
        for c in 0..ci {
            for xi in 0..a * a {
                x[xi * co..][..co].copy_from_slice(&du[(xi * ci + c) * co..][..co]);
            }
            two_sided(&tf.gt, 3, a, co, &x, &mut t, &mut y);
            for tap in 0..9 {
                dwp[(tap * ci + c) * co..][..co].copy_from_slice(&y[tap * co..][..co]);
            }
        }
    }
}

multiversion! {
    /// V [ξ][tiles][c] = Bᵀ d B for every tile of `nb` NHWC images [nb, h, w, c] (zeros outside).
    fn input_tiles(tf: &Tf, dims: [usize; 3], x: &[f32], nb: usize, v: &mut [f32]) {
        let [h, w, c] = dims;
        let (m, a) = (tf.m, tf.side());
        let (th, tw) = (h.div_ceil(m), w.div_ceil(m));
        let nt = nb * th * tw;
        let (mut d, mut t, mut y) = (vec![0.0f32; a * a * c], vec![0.0f32; a * a * c], vec![0.0f32; a * a * c]);
        for b in 0..nb {
            let img = &x[b * h * w * c..][..h * w * c];
            for ty in 0..th {
                for tx in 0..tw {
                    for r in 0..a {
                        for s in 0..a {
                            let (iy, ix) = ((m * ty + r).wrapping_sub(1), (m * tx + s).wrapping_sub(1));
                            let dst = &mut d[(r * a + s) * c..][..c];
                            if iy < h && ix < w {
                                dst.copy_from_slice(&img[(iy * w + ix) * c..][..c]);
                            } else {
                                dst.fill(0.0);
                            }
                        }
                    }
                    two_sided(&tf.bt, a, a, c, &d, &mut t, &mut y);
                    let tile = (b * th + ty) * tw + tx;
                    for xi in 0..a * a {
                        v[(xi * nt + tile) * c..][..c].copy_from_slice(&y[xi * c..][..c]);
                    }
                }
            }
        }
    }
}

multiversion! {
    /// dx += B dV Bᵀ scattered back onto `nb` NHWC images [nb, h, w, c] (the adjoint of
    /// `input_tiles`; padding positions are dropped), from dV [ξ][tiles][c].
    fn scatter_tiles(tf: &Tf, dims: [usize; 3], dv: &[f32], nb: usize, dx: &mut [f32]) {
        let [h, w, c] = dims;
        let (m, a) = (tf.m, tf.side());
        let (th, tw) = (h.div_ceil(m), w.div_ceil(m));
        let nt = nb * th * tw;
        let (mut x, mut t, mut d) = (vec![0.0f32; a * a * c], vec![0.0f32; a * a * c], vec![0.0f32; a * a * c]);
        for b in 0..nb {
            let img = &mut dx[b * h * w * c..][..h * w * c];
            for ty in 0..th {
                for tx in 0..tw {
                    let tile = (b * th + ty) * tw + tx;
                    for xi in 0..a * a {
                        x[xi * c..][..c].copy_from_slice(&dv[(xi * nt + tile) * c..][..c]);
                    }
                    two_sided(&tf.b, a, a, c, &x, &mut t, &mut d);
                    for r in 0..a {
                        let iy = (m * ty + r).wrapping_sub(1);
                        for s in 0..a {
                            let ix = (m * tx + s).wrapping_sub(1);
                            if iy < h && ix < w {
                                let dst = &mut img[(iy * w + ix) * c..][..c];
                                dst.iter_mut().zip(&d[(r * a + s) * c..][..c]).for_each(|(o, v)| *o += v);
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
    fn output_tiles(tf: &Tf, dims: [usize; 3], mt: &[f32], nb: usize, y: &mut [f32]) {
        let [oh, ow, c] = dims;
        let (m, a) = (tf.m, tf.side());
        let (th, tw) = (oh.div_ceil(m), ow.div_ceil(m));
        let nt = nb * th * tw;
        let (mut x, mut t, mut out) = (vec![0.0f32; a * a * c], vec![0.0f32; m * a * c], vec![0.0f32; m * m * c]);
        for b in 0..nb {
            let img = &mut y[b * oh * ow * c..][..oh * ow * c];
            for ty in 0..th {
                for tx in 0..tw {
                    let tile = (b * th + ty) * tw + tx;
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
    fn grad_tiles(tf: &Tf, dims: [usize; 3], dy: &[f32], nb: usize, dm: &mut [f32]) {
        let [oh, ow, c] = dims;
        let (m, a) = (tf.m, tf.side());
        let (th, tw) = (oh.div_ceil(m), ow.div_ceil(m));
        let nt = nb * th * tw;
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
                    let tile = (b * th + ty) * tw + tx;
                    for xi in 0..a * a {
                        dm[(xi * nt + tile) * c..][..c].copy_from_slice(&y[xi * c..][..c]);
                    }
                }
            }
        }
    }
}
