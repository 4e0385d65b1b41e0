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
