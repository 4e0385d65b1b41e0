use super::layout::unpermute_weight;
use super::*;
use crate::kernels::act::Act;
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
        // Winograd F(4×4) on 7×7 and 4×3, F(2×2) on 6×5 and 1×2: odd and even sizes, maps
        // smaller than a tile's patch, several chunks.
        ([3, 16, 7, 7], 16, [3, 3], [1, 1], [1, 1]),
        ([2, 20, 6, 5], 17, [3, 3], [1, 1], [1, 1]),
        ([2, 16, 1, 2], 24, [3, 3], [1, 1], [1, 1]),
        ([19, 16, 4, 3], 16, [3, 3], [1, 1], [1, 1]),
        // Winograd F(4×4, 2×2) through space to depth on 4×4 stride-2 layers: outputs 7×7 (tiles
        // overhang), 8×6 and 8×8; F(2×2, 2×2) on outputs of one 4×4 tile: 4×3, 2×2, 1×1. 7×8 and
        // 16 → 15 channels stay with im2col (odd input, too few output channels).
        ([3, 16, 14, 14], 16, [4, 4], [2, 2], [1, 1]),
        ([2, 20, 16, 12], 17, [4, 4], [2, 2], [1, 1]),
        ([2, 20, 8, 6], 17, [4, 4], [2, 2], [1, 1]),
        ([11, 16, 16, 16], 32, [4, 4], [2, 2], [1, 1]),
        ([2, 24, 4, 4], 16, [4, 4], [2, 2], [1, 1]),
        ([3, 16, 2, 2], 16, [4, 4], [2, 2], [1, 1]),
        ([2, 16, 7, 8], 16, [4, 4], [2, 2], [1, 1]),
        ([2, 16, 8, 8], 15, [4, 4], [2, 2], [1, 1]),
        // More images than one Winograd group holds (24 of these): two groups.
        ([25, 16, 128, 128], 16, [4, 4], [2, 2], [1, 1]),
    ];
    for (xs, co, k, s, pd) in shapes {
        let g = Geom::conv(xs, co, k, s, pd).unwrap();
        if xs[0] == 25 {
            assert!(winograd::Plan::for_layer(&g).unwrap().group(&g) < g.n, "one group: {g:?}");
        }
        let even = xs[2].is_multiple_of(2) && xs[3].is_multiple_of(2);
        assert_eq!(winograd::Plan::for_layer(&g).is_some(), xs[1] >= 16 && co >= 16 && (k == [3, 3] || even), "{g:?}");
        if winograd::Plan::for_layer(&g).is_some() {
            let big = if k == [4, 4] { g.oh > 4 || g.ow > 4 } else { matches!(xs[2..], [7, 7] | [4, 3]) };
            assert_eq!(winograd::tile_side(&g), if big { 4 } else { 2 }, "{g:?}");
        }
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
        // The transposed layer Z = Wᵀ ⋆ T (T = d on the Y side) with upstream gradient dZ = x:
        // dT = W ⋆ dZ, the convolution's forward, and dW = ∂⟨T, W ⋆ dZ⟩/∂W.
        let saved = Saved { input: (&d, Mem::Nchw), output: None, grad: (&x, Mem::Nchw) };
        let gt = backward_transposed(&g, saved, &wp, Act::None, need);
        close(&to_nchw(gt.input.as_ref().unwrap(), g.n, g.co, g.p()), &want, "convT dT");
        let got = dot(gt.weight.as_ref().unwrap(), &v);
        assert!((want_v - got).abs() < 1e-3 * want_v.abs().max(1.0), "convT dW {got} vs {want_v}");
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
    for g in [
        Geom::conv([37, 8, 14, 14], 16, [4, 4], [2, 2], [1, 1]).unwrap(),
        Geom::conv([37, 16, 7, 7], 32, [3, 3], [1, 1], [1, 1]).unwrap(),
        Geom::conv([37, 16, 14, 14], 32, [4, 4], [2, 2], [1, 1]).unwrap(),
    ] {
        thread_count_invariant(&g, &mut rng);
    }
}

fn thread_count_invariant(g: &Geom, rng: &mut ChaCha8Rng) {
    let g = *g;
    let x = rand_vec(rng, g.n * g.xs());
    let w = rand_vec(rng, g.co * g.kdim());
    let d = rand_vec(rng, g.n * g.ys());
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
