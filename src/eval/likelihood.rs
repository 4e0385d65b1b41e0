//! Likelihood bounds for encoder–decoder models with a Gaussian posterior.
//!
//! With z_k = μ(x) + σ(x)·ε_k, ε_k ~ N(0, I) and log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x):
//! ELBO ≈ mean_k log w_k, and the importance-weighted bound (Burda et al. 2016)
//! IWAE_K = log (1/K) Σ_k w_k ≤ log p(x), computed as a log-mean-exp with the maximum subtracted.
//! IWAE_K ≥ ELBO for the same draws, and IWAE_K → log p(x) as K → ∞. Reported in nats per image:
//! `iwae_nll` = −mean IWAE_K (an upper bound on the NLL).

use crate::models::blocks::{matrix, one_hot, to_vec};
use crate::models::{ModelSpec, Net};
use crate::util::{Stream, normal_vec, rng};
use anyhow::{Result, bail};
use burn::prelude::*;

/// A latent-variable model with prior N(0, I) and diagonal-Gaussian posterior.
pub trait Lvm {
    fn latent_dim(&self) -> usize;
    fn device(&self) -> Device;
    /// q(z|x) as (μ, log σ²), both [B, L].
    fn posterior(&self, x: Tensor<2>, labels: &[u8]) -> (Tensor<2>, Tensor<2>);
    /// log p(x|z) per row, [R]; `labels` has one entry per row.
    fn log_likelihood(&self, z: Tensor<2>, x: Tensor<2>, labels: &[u8]) -> Tensor<1>;
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
    fn cond(&self, labels: &[u8], device: &Device) -> Option<Tensor<2>> {
        self.spec.kind.is_conditional().then(|| one_hot(labels, self.spec.num_classes, device))
    }
}

impl Lvm for VaeLvm<'_> {
    fn latent_dim(&self) -> usize {
        self.spec.latent_dim
    }
    fn device(&self) -> Device {
        self.vae.log_sigma.val().device()
    }
    fn posterior(&self, x: Tensor<2>, labels: &[u8]) -> (Tensor<2>, Tensor<2>) {
        let c = self.cond(labels, &x.device());
        self.vae.encode(x, c)
    }
    fn log_likelihood(&self, z: Tensor<2>, x: Tensor<2>, labels: &[u8]) -> Tensor<1> {
        let c = self.cond(labels, &z.device());
        self.vae.recon_nll(self.spec, self.vae.decode_raw(z, c), x).neg()
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
const MAX_ROWS: usize = 8192;

/// ELBO and IWAE_K of each image of `x` ([n × d], model input range) with all draws from `seed`.
/// `progress` is called with the number of images done.
pub fn bounds(
    model: &dyn Lvm,
    x: &[f32],
    labels: &[u8],
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
    for (bidx, start) in (0..n).step_by(bi).enumerate() {
        let end = (start + bi).min(n);
        let b = end - start;
        let xb = matrix(x[start * d..end * d].to_vec(), b, d, device);
        let lab: Vec<u8> = if labels.is_empty() { vec![0; b] } else { labels[start..end].to_vec() };
        let (mu, logvar) = model.posterior(xb.clone(), &lab);
        // Streaming log-sum-exp per image across chunks of draws.
        let mut run_max = vec![f64::NEG_INFINITY; b];
        let mut run_sum = vec![0f64; b];
        let mut lw_sum = vec![0f64; b];
        let mut r = rng(seed, Stream::Eval, 1_000_000 + bidx as u64);
        let mut done = 0;
        while done < k {
            let c = kc.min(k - done);
            let rows = b * c;
            let rep = |t: Tensor<2>, w: usize| t.reshape([b, 1, w]).repeat_dim(1, c).reshape([rows, w]);
            let eps = matrix(normal_vec(&mut r, rows * l), rows, l, device);
            let z = rep(mu.clone(), l) + rep((logvar.clone() * 0.5).exp(), l) * eps.clone();
            let lv = rep(logvar.clone(), l);
            let row_labels: Vec<u8> = lab.iter().flat_map(|&y| std::iter::repeat_n(y, c)).collect();
            // log p(z) − log q(z|x): the 2π constants cancel.
            let log_ratio = ((eps.powi_scalar(2) + lv) - z.clone().powi_scalar(2)).sum_dim(1).mul_scalar(0.5);
            let lw = model.log_likelihood(z, rep(xb.clone(), d), &row_labels) + log_ratio.reshape([rows]);
            let lw = lw.reshape([b, c]);
            let m = lw.clone().max_dim(1); // [b,1]
            let s = (lw.clone() - m.clone()).exp().sum_dim(1);
            let tot = lw.sum_dim(1);
            let (m, s, tot) = (to_vec(m), to_vec(s), to_vec(tot));
            for i in 0..b {
                let (cm, cs) = (m[i] as f64, s[i] as f64);
                let nm = run_max[i].max(cm);
                run_sum[i] = run_sum[i] * (run_max[i] - nm).exp() + cs * (cm - nm).exp();
                run_max[i] = nm;
                lw_sum[i] += tot[i] as f64;
            }
            done += c;
        }
        for i in 0..b {
            let v = run_max[i] + (run_sum[i] / k as f64).ln();
            if !v.is_finite() {
                bail!("IWAE bound of test image {} is not finite ({v}); the model's weights may be broken", start + i);
            }
            iwae.push(v);
            elbo.push(lw_sum[i] / k as f64);
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
        fn posterior(&self, x: Tensor<2>, _: &[u8]) -> (Tensor<2>, Tensor<2>) {
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
        fn log_likelihood(&self, z: Tensor<2>, x: Tensor<2>, _: &[u8]) -> Tensor<1> {
            let dev = z.device();
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
        let b1 = bounds(&m, &x, &[], 4, 1, 3, &mut |_| {}).unwrap();
        let b20k = bounds(&m, &x, &[], 4, 20_000, 3, &mut |_| {}).unwrap();
        for (i, r) in rows.iter().enumerate() {
            let exact = m.exact_log_px(r);
            assert!(b20k.elbo[i] < exact - 0.05, "ELBO should be loose: {} vs {exact}", b20k.elbo[i]);
            assert!(b20k.iwae[i] >= b20k.elbo[i], "IWAE below ELBO");
            assert!((b20k.iwae[i] - exact).abs() < 0.02, "IWAE(20000) {} vs exact {exact}", b20k.iwae[i]);
        }
        assert!(b20k.iwae_nll() < b1.iwae_nll());
    }

    #[test]
    fn chunking_does_not_change_the_result() {
        // K above MAX_ROWS forces several chunks per image; equal to one big chunk up to f32 noise.
        let m = model(0.2, 1.5);
        let (x, _) = data();
        let b = bounds(&m, &x, &[], 4, MAX_ROWS + 100, 5, &mut |_| {}).unwrap();
        let exact: Vec<f64> = data().1.iter().map(|r| m.exact_log_px(r)).collect();
        for (v, e) in b.iwae.iter().zip(exact) {
            assert!((v - e).abs() < 0.02, "{v} vs {e}");
        }
        assert!(bounds(&m, &x, &[], 4, 0, 5, &mut |_| {}).is_err());
        assert!(bounds(&m, &x[..5], &[], 4, 3, 5, &mut |_| {}).is_err());
    }
}
