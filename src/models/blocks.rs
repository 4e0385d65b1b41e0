//! Pieces shared by the models: an MLP, likelihood terms, the Gaussian KL and one-hot conditioning.

use crate::kernels::{self, Act};
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::prelude::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Fully connected layers with ReLU between them; the last layer's activation is the caller's.
#[derive(Module, Debug)]
pub struct Mlp {
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// `dims` = [input, hidden…, output].
    pub fn new(dims: &[usize], rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let layers = dims.windows(2).map(|w| linear(w[0], w[1], rng, device)).collect();
        Mlp { layers }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.forward_then(x, Act::None)
    }

    /// The MLP with `last` applied to its output (fused into the last layer).
    pub fn forward_then(&self, mut x: Tensor<2>, last: Act) -> Tensor<2> {
        let n = self.layers.len();
        for (i, l) in self.layers.iter().enumerate() {
            x = kernels::linear(l, x, if i + 1 < n { Act::Relu } else { last });
        }
        x
    }
}

/// softplus(x) = log(1 + eˣ) as (x + |x|)/2 + log1p(e^−|x|): stable for any x (the exponent is
/// ≤ 0) and branch-free; (x + |x|)/2 is relu(x) exactly, but its gradient at 0 is ½, so the
/// gradient is σ(x) everywhere, 0 included. burn's `activation::softplus` masks large inputs with
/// `mask_fill` and `mask_where` (seven element-wise passes, two of them branchy).
pub fn softplus<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let a = x.clone().abs();
    (x + a.clone()).mul_scalar(0.5) + a.neg().exp().log1p()
}

/// LeakyReLU, max(x, s·x) for 0 < s < 1: our fused kernel on the CPU; elsewhere (1−s)·relu(x) + s·x,
/// because burn's autodiff builds leaky_relu from `mask_where`, whose per-element branch
/// mispredicts on random signs (perf put it at ~11 % of a DCGAN step).
pub fn leaky_relu<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
    kernels::activation(x, Act::LeakyRelu(slope as f32))
}

/// A linear layer with PyTorch's default initialisation, U(−k, k) with k = 1/√fan_in, drawn
/// from the run's own seeded stream: burn's global RNG would make initialisation depend on
/// whatever else in the process draws from it (e.g. parallel tests).
pub fn linear(fan_in: usize, fan_out: usize, rng: &mut ChaCha8Rng, device: &Device) -> Linear {
    let k = 1.0 / (fan_in as f32).sqrt();
    let mut u = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-k..k)).collect() };
    let w = u(fan_in * fan_out);
    let b = u(fan_out);
    Linear {
        weight: Param::from_data(TensorData::new(w, [fan_in, fan_out]), device),
        bias: Some(Param::from_data(TensorData::new(b, [fan_out]), device)),
    }
}

/// Per-image Bernoulli negative log-likelihood from logits, summed over pixels: [B, D] → [B].
/// `softplus(l) − x·l` is BCE-with-logits without ever forming log(sigmoid) (one fused pass on
/// the CPU, `kernels::bce_logits_rows`).
pub fn bernoulli_nll(logits: Tensor<2>, x: Tensor<2>) -> Tensor<1> {
    kernels::bce_logits_rows(logits, x)
}

/// Per-image Gaussian negative log-likelihood with scalar σ (as log σ, [1]), constant included.
pub fn gaussian_nll(mean: Tensor<2>, x: Tensor<2>, log_sigma: Tensor<1>) -> Tensor<1> {
    let [b, d] = mean.dims();
    let ls = log_sigma.reshape([1, 1]);
    let inv_var = (ls.clone() * (-2.0)).exp();
    let sq = (x - mean).powi_scalar(2).sum_dim(1); // [B,1]
    let nll =
        sq * inv_var.mul_scalar(0.5) + ls.mul_scalar(d as f64) + 0.5 * d as f64 * (2.0 * std::f64::consts::PI).ln();
    nll.reshape([b])
}

/// KL(N(μ, diag exp(logvar)) ‖ N(0, I)) per row: [B, L] → [B].
pub fn kl_std_normal(mu: Tensor<2>, logvar: Tensor<2>) -> Tensor<1> {
    let t = logvar.clone().exp() + mu.powi_scalar(2) - logvar - 1.0;
    t.sum_dim(1).squeeze_dim(1).mul_scalar(0.5)
}

/// One-hot rows for `labels` on the host [B × K] (labels ≥ K give a zero row).
pub fn one_hot_host(labels: &[u8], k: usize) -> Vec<f32> {
    let mut v = vec![0f32; labels.len() * k];
    for (i, &l) in labels.iter().enumerate() {
        if (l as usize) < k {
            v[i * k + l as usize] = 1.0;
        }
    }
    v
}

/// One-hot rows for `labels` as floats [B, K].
pub fn one_hot(labels: &[u8], k: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(one_hot_host(labels, k), [labels.len(), k]), device)
}

/// A host matrix as a tensor.
pub fn matrix(v: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

/// A tensor's values on the host.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 tensor data")
}

/// All float parameters (and batch-norm running statistics) of a module, each flattened to 1-d,
/// in module order.
pub fn param_tensors<M: Module>(module: &M) -> Vec<Tensor<1>> {
    struct Collect(Vec<Tensor<1>>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let n = t.shape().num_elements();
            self.0.push(t.reshape([n]));
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

/// All float parameters of a module, flattened in module order: its content, independent of the
/// run-specific parameter ids in a serialised record (for exact comparisons and content hashes).
pub fn param_values<M: Module>(module: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.extend(to_vec(param.val()));
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xs() -> Vec<f32> {
        let mut v: Vec<f32> = (-400..=400).map(|i| i as f32 * 0.05).collect();
        v.extend([-100.0, -30.0, 30.0, 100.0, 1e-7, -1e-7]);
        v
    }

    /// Values against log(1 + eˣ) in f64, and the gradient against the logistic σ(x).
    #[test]
    fn softplus_matches_f64_reference_and_its_gradient_is_sigmoid() {
        let dev = Device::flex().autodiff();
        let v = xs();
        let x = Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &dev).require_grad();
        let y = softplus(x.clone());
        let grads = y.clone().sum().backward();
        let g = to_vec(x.grad(&grads).expect("gradient").reshape([v.len()]));
        let y = to_vec(y.detach());
        for ((&xi, &yi), &gi) in v.iter().zip(&y).zip(&g) {
            let x64 = xi as f64;
            let want = if x64 > 0.0 { x64 + (-x64).exp().ln_1p() } else { x64.exp().ln_1p() };
            assert!((yi as f64 - want).abs() <= 1e-6 * want.abs().max(1.0), "softplus({xi}) = {yi}, want {want}");
            let sig = 1.0 / (1.0 + (-x64).exp());
            assert!((gi as f64 - sig).abs() < 1e-6, "softplus'({xi}) = {gi}, want {sig}");
        }
    }

    #[test]
    fn leaky_relu_is_max_of_x_and_slope_x_with_matching_gradient() {
        let dev = Device::flex().autodiff();
        let v = xs();
        let x = Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), &dev).require_grad();
        let y = leaky_relu(x.clone(), 0.2);
        let grads = y.clone().sum().backward();
        let g = to_vec(x.grad(&grads).expect("gradient").reshape([v.len()]));
        for ((&xi, &yi), &gi) in v.iter().zip(&to_vec(y.detach())).zip(&g) {
            let want = if xi > 0.0 { xi } else { 0.2 * xi };
            assert!((yi - want).abs() <= 1e-6 * want.abs().max(1.0), "leaky({xi}) = {yi}, want {want}");
            let dwant = if xi > 0.0 { 1.0 } else { 0.2 };
            assert!((gi - dwant).abs() < 1e-6, "leaky'({xi}) = {gi}");
        }
    }
}
