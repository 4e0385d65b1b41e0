//! Likelihood bounds for encoder–decoder models with a Gaussian posterior.
//!
//! With z_k = μ(x) + σ(x)·ε_k, ε_k ~ N(0, I) and log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x):
//! ELBO ≈ mean_k log w_k, and the importance-weighted bound (Burda et al. 2016)
//! IWAE_K = log (1/K) Σ_k w_k ≤ log p(x), computed as a log-mean-exp with the maximum subtracted.
//! IWAE_K ≥ ELBO for the same draws, and IWAE_K → log p(x) as K → ∞. Reported in nats per image:
//! `iwae_nll` = −mean IWAE_K (an upper bound on the NLL).

use crate::models::blocks::{matrix, to_vec};
use crate::models::{ModelSpec, Net};
use crate::util::{Stream, normal_vec, rng};
use anyhow::{Result, bail};
use burn::prelude::*;
use rayon::prelude::*;

/// A latent-variable model with prior N(0, I) and diagonal-Gaussian posterior.
pub trait Lvm {
    fn latent_dim(&self) -> usize;
    fn device(&self) -> Device;
    /// Width of a condition row (0: unconditional; `models::condition`).
    fn cond_dim(&self) -> usize {
        0
    }
    /// q(z|x) as (μ, log σ²), both [B, L], for images with their condition rows.
    fn posterior(&self, x: Tensor<2>, cond: &[f32]) -> (Tensor<2>, Tensor<2>);
    /// log p(x|z) per row of z [B·g, L], where each `g` consecutive rows are codes of one image
    /// of x [B, D]: [B·g]. `cond` has one row per row of z.
    fn log_likelihood(&self, z: Tensor<2>, x: Tensor<2>, g: usize, cond: &[f32]) -> Tensor<1>;
}

/// A trained VAE/CVAE seen as an `Lvm`.
pub struct VaeLvm<'a> {
    pub spec: &'a ModelSpec,
    pub vae: &'a crate::models::vae::Vae,
}

impl<'a> VaeLvm<'a> {
    pub fn from_net(spec: &'a ModelSpec, net: &'a Net) -> Option<VaeLvm<'a>> {
        match net {
            Net::Vae(vae) => Some(VaeLvm { spec, vae }),
            _ => None,
        }
    }
    fn cond(&self, cond: &[f32], n: usize, device: &Device) -> Option<Tensor<2>> {
        self.spec.cond_tensor(cond, n, device)
    }
}

impl Lvm for VaeLvm<'_> {
    fn latent_dim(&self) -> usize {
        self.spec.latent_dim
    }
    fn device(&self) -> Device {
        self.vae.log_sigma.val().device()
    }
    fn cond_dim(&self) -> usize {
        self.spec.cond_dim()
    }
    fn posterior(&self, x: Tensor<2>, cond: &[f32]) -> (Tensor<2>, Tensor<2>) {
        let c = self.cond(cond, x.dims()[0], &x.device());
        self.vae.encode(x, c)
    }
    fn log_likelihood(&self, z: Tensor<2>, x: Tensor<2>, g: usize, cond: &[f32]) -> Tensor<1> {
        let c = self.cond(cond, z.dims()[0], &z.device());
        let z = match c {
            Some(c) => Tensor::cat(vec![z, c], 1),
            None => z,
        };
        self.vae.decode_nll_grouped(self.spec, z, x, g).neg()
    }
}

/// Per-image bounds and their means.
#[derive(Clone, Debug)]
pub struct Bounds {
    /// IWAE_K per image (nats; ≤ log p(x)).
    pub iwae: Vec<f64>,
    /// Monte-Carlo ELBO per image from the same K draws.
    pub elbo: Vec<f64>,
    pub k: usize,
}

impl Bounds {
    pub fn iwae_nll(&self) -> f64 {
        -mean(&self.iwae)
    }
    pub fn elbo_mean(&self) -> f64 {
        mean(&self.elbo)
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Rows decoded per call: big enough for efficient matrix products, small enough for the cache.
const MAX_ROWS: usize = 10000;

/// ELBO and IWAE_K of each image of `x` ([n × d], model input range, with its condition rows
/// `cond`, empty for an unconditional model) with all draws from `seed`. `progress` is called
/// with the number of images done.
pub fn bounds(
    model: &dyn Lvm,
    x: &[f32],
    cond: &[f32],
    d: usize,
    k: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize),
) -> Result<Bounds> {
    let device = &model.device();
    if k == 0 {
        bail!("--iwae-k must be at least 1");
    }
    if d == 0 || !x.len().is_multiple_of(d) {
        bail!("{} values are not a whole number of {d}-pixel images", x.len());
    }
    let n = x.len() / d;
    let l = model.latent_dim();
    let kc = k.min(MAX_ROWS);
    let bi = (MAX_ROWS / kc).max(1);
    let (mut iwae, mut elbo) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for start in (0..n).step_by(bi) {
        let end = (start + bi).min(n);
        let b = end - start;
        let xb = matrix(x[start * d..end * d].to_vec(), b, d, device);
        let cd = model.cond_dim();
        let lab: &[f32] = if cond.is_empty() { &[] } else { &cond[start * cd..end * cd] };
        let (mu, logvar) = model.posterior(xb.clone(), lab);
        let (mu, logvar) = (to_vec(mu), to_vec(logvar));
        // Per image: a streaming log-sum-exp of the log-weights (max, Σ exp(lw − max)) and Σ lw.
        let mut acc = vec![(f64::NEG_INFINITY, 0f64, 0f64); b];
        // One stream per test image, drawn in order whatever the chunking: the bound of an image
        // depends only on (seed, image, K).
        let mut rngs: Vec<_> = (start..end).map(|i| rng(seed, Stream::Eval, 1_000_000 + i as u64)).collect();
        let mut done = 0;
        while done < k {
            let c = kc.min(k - done);
            // Codes z = μ + σ·ε and log p(z) − log q(z|x) = ½Σ(ε² + log σ² − z²) (the 2π constants
            // cancel), on the host in parallel per image: c × L values each.
            let per: Vec<(Vec<f32>, Vec<f64>)> = rngs
                .par_iter_mut()
                .enumerate()
                .map(|(i, r)| {
                    let (m, lv) = (&mu[i * l..(i + 1) * l], &logvar[i * l..(i + 1) * l]);
                    let sd: Vec<f32> = lv.iter().map(|v| (0.5 * v).exp()).collect();
                    let eps = normal_vec(r, c * l);
                    let mut z = vec![0f32; c * l];
                    let mut ratio = vec![0f64; c];
                    for ((zr, er), q) in z.chunks_mut(l).zip(eps.chunks(l)).zip(ratio.iter_mut()) {
                        for j in 0..l {
                            zr[j] = m[j] + sd[j] * er[j];
                            *q += 0.5 * ((er[j] as f64).powi(2) + lv[j] as f64 - (zr[j] as f64).powi(2));
                        }
                    }
                    (z, ratio)
                })
                .collect();
            let (z, ratio): (Vec<Vec<f32>>, Vec<Vec<f64>>) = per.into_iter().unzip();
            let row_labels: Vec<f32> = lab.chunks(cd.max(1)).flat_map(|y| y.repeat(c)).collect();
            let z = matrix(z.concat(), b * c, l, device);
            let ll = to_vec(model.log_likelihood(z, xb.clone(), c, &row_labels));
            for (i, (a, q)) in acc.iter_mut().zip(&ratio).enumerate() {
                let lw: Vec<f64> = ll[i * c..(i + 1) * c].iter().zip(q).map(|(&v, &r)| v as f64 + r).collect();
                let cm = lw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let nm = a.0.max(cm);
                a.1 = a.1 * (a.0 - nm).exp() + lw.iter().map(|v| (v - nm).exp()).sum::<f64>();
                a.0 = nm;
                a.2 += lw.iter().sum::<f64>();
            }
            done += c;
        }
        for (i, &(run_max, run_sum, lw_sum)) in acc.iter().enumerate() {
            let v = run_max + (run_sum / k as f64).ln();
            if !v.is_finite() {
                bail!("IWAE bound of test image {} is not finite ({v}); the model's weights may be broken", start + i);
            }
            iwae.push(v);
            elbo.push(lw_sum / k as f64);
        }
        progress(end);
    }
    Ok(Bounds { iwae, elbo, k })
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index loops read like the formulas
mod tests {
    use super::*;

    /// p(z) = N(0, I₂), p(x|z) = N(Wz + b, s²I₄) with orthogonal columns of W, so the exact
    /// posterior is diagonal and log p(x) = log N(x; b, WWᵀ + s²I) is known in closed form.
    struct LinearGaussian {
        w: [[f64; 2]; 4],
        b: [f64; 4],
        s: f64,
        /// Encoder error: shift of the mean and scale of the variance (0, 1 = exact posterior).
        shift: f64,
        var_scale: f64,
    }

    impl LinearGaussian {
        fn exact_log_px(&self, x: &[f64; 4]) -> f64 {
            // C = WWᵀ + s²I; log N via a hand-written Cholesky.
            let mut c = [[0f64; 4]; 4];
            for i in 0..4 {
                for j in 0..4 {
                    c[i][j] = (0..2).map(|k| self.w[i][k] * self.w[j][k]).sum::<f64>()
                        + if i == j { self.s * self.s } else { 0.0 };
                }
            }
            let mut l = [[0f64; 4]; 4];
            for i in 0..4 {
                for j in 0..=i {
                    let s: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
                    l[i][j] = if i == j { (c[i][i] - s).sqrt() } else { (c[i][j] - s) / l[j][j] };
                }
            }
            let mut y = [0f64; 4];
            for i in 0..4 {
                y[i] = (x[i] - self.b[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
            }
            let logdet: f64 = (0..4).map(|i| 2.0 * l[i][i].ln()).sum();
            -0.5 * (y.iter().map(|v| v * v).sum::<f64>() + logdet + 4.0 * (2.0 * std::f64::consts::PI).ln())
        }
    }

    impl Lvm for LinearGaussian {
        fn latent_dim(&self) -> usize {
            2
        }
        fn device(&self) -> Device {
            Device::flex()
        }
        fn posterior(&self, x: Tensor<2>, _: &[f32]) -> (Tensor<2>, Tensor<2>) {
            let xs = to_vec(x.clone());
            let n = xs.len() / 4;
            let (mut mu, mut lv) = (Vec::new(), Vec::new());
            for r in 0..n {
                for j in 0..2 {
                    let wn: f64 = (0..4).map(|i| self.w[i][j].powi(2)).sum();
                    let var = 1.0 / (1.0 + wn / (self.s * self.s));
                    let proj: f64 = (0..4).map(|i| self.w[i][j] * (xs[r * 4 + i] as f64 - self.b[i])).sum();
                    mu.push((var * proj / (self.s * self.s) + self.shift) as f32);
                    lv.push((var * self.var_scale).ln() as f32);
                }
            }
            (matrix(mu, n, 2, &x.device()), matrix(lv, n, 2, &x.device()))
        }
        fn log_likelihood(&self, z: Tensor<2>, x: Tensor<2>, g: usize, _: &[f32]) -> Tensor<1> {
            let dev = z.device();
            let [b, d] = x.dims();
            let x = x.reshape([b, 1, d]).repeat_dim(1, g).reshape([b * g, d]);
            let wt: Vec<f32> =
                (0..2).flat_map(|k| (0..4).map(move |i| (k, i))).map(|(k, i)| self.w[i][k] as f32).collect();
            let mean = z.matmul(matrix(wt, 2, 4, &dev)) + matrix(self.b.map(|v| v as f32).to_vec(), 1, 4, &dev);
            let s = self.s;
            let sq = (x - mean).powi_scalar(2).sum_dim(1).mul_scalar(-0.5 / (s * s));
            let rows = sq.dims()[0];
            (sq - 4.0 * s.ln() - 2.0 * (2.0 * std::f64::consts::PI).ln()).reshape([rows])
        }
    }

    fn model(shift: f64, var_scale: f64) -> LinearGaussian {
        LinearGaussian {
            w: [[1.5, 0.0], [0.0, 0.8], [0.0, -0.6], [0.0, 0.0]],
            b: [0.1, -0.2, 0.3, 0.0],
            s: 0.5,
            shift,
            var_scale,
        }
    }

    fn data() -> (Vec<f32>, Vec<[f64; 4]>) {
        let xs = vec![[0.5, 0.2, -0.4, 0.1], [-1.0, 1.1, 0.0, -0.3], [2.0, -0.5, 0.7, 0.4]];
        (xs.iter().flat_map(|r| r.map(|v| v as f32)).collect(), xs)
    }

    #[test]
    fn exact_posterior_makes_both_bounds_equal_the_true_log_likelihood() {
        let m = model(0.0, 1.0);
        let (x, rows) = data();
        let b = bounds(&m, &x, &[], 4, 7, 1, &mut |_| {}).unwrap();
        for (i, r) in rows.iter().enumerate() {
            let exact = m.exact_log_px(r);
            assert!((b.iwae[i] - exact).abs() < 2e-3, "iwae {} vs exact {exact}", b.iwae[i]);
            assert!((b.elbo[i] - exact).abs() < 2e-3, "elbo {} vs exact {exact}", b.elbo[i]);
        }
    }

    #[test]
    fn iwae_closes_the_gap_of_a_wrong_posterior() {
        let m = model(0.2, 1.5);
        let (x, rows) = data();
        let b20k = bounds(&m, &x, &[], 4, 20_000, 3, &mut |_| {}).unwrap();
        for (i, r) in rows.iter().enumerate() {
            let exact = m.exact_log_px(r);
            assert!(b20k.elbo[i] < exact - 0.05, "ELBO should be loose: {} vs {exact}", b20k.elbo[i]);
            assert!(b20k.iwae[i] >= b20k.elbo[i], "IWAE below ELBO");
            assert!((b20k.iwae[i] - exact).abs() < 0.02, "IWAE(20000) {} vs exact {exact}", b20k.iwae[i]);
        }
        // The importance-weighted NLL is below the ELBO's (both from the same 20,000 draws).
        assert!(b20k.iwae_nll() < -b20k.elbo_mean());
    }

    #[test]
    fn chunking_does_not_change_the_result() {
        // K above MAX_ROWS forces several chunks per image; equal to one big chunk up to f32 noise.
        let m = model(0.2, 1.5);
        let (x, _) = data();
        let b = bounds(&m, &x, &[], 4, 8 * MAX_ROWS + 100, 5, &mut |_| {}).unwrap();
        let exact: Vec<f64> = data().1.iter().map(|r| m.exact_log_px(r)).collect();
        for (v, e) in b.iwae.iter().zip(exact) {
            assert!((v - e).abs() < 0.02, "{v} vs {e}");
        }
        assert!(bounds(&m, &x, &[], 4, 0, 5, &mut |_| {}).is_err());
        assert!(bounds(&m, &x[..5], &[], 4, 3, 5, &mut |_| {}).is_err());
    }
}
