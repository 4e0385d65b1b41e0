//! Adam as burn defines it (`burn::optim::Adam`: same hyper-parameters, same ε convention, same
//! `AdamState` record, so checkpoints keep their format), with each parameter's update done in
//! one fused pass by `kernels::adam_step`.

use crate::kernels::{adam::AdamStep, adam_step};
use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer};
use burn::prelude::*;

#[derive(Clone, Copy, Debug)]
pub struct FusedAdam {
    pub beta1: f32,
    pub beta2: f32,
    pub epsilon: f32,
}

impl FusedAdam {
    /// burn's `AdamConfig` defaults (β₂ 0.999, ε 1e-5) with the given β₁.
    pub fn new(beta1: f32) -> Self {
        FusedAdam { beta1, beta2: 0.999, epsilon: 1e-5 }
    }

    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        let (t, mv) = match state {
            Some(s) => (s.momentum.time + 1, Some((s.momentum.moment_1, s.momentum.moment_2))),
            None => (1, None),
        };
        let h = AdamStep { lr, beta1: self.beta1, beta2: self.beta2, eps: self.epsilon, t };
        let (p, m, v) = adam_step(tensor, grad, mv, h);
        (p, Some(AdamState::new(AdaptiveMomentumState::new(t, m, v))))
    }

    fn to_device<const D: usize>(mut state: AdamState<D>, device: &Device) -> AdamState<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::blocks::param_values;
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::{AdamConfig, GradientsParams};

    fn layer(device: &Device) -> Linear {
        let mut l = LinearConfig::new(300, 257).init(device);
        let w: Vec<f32> = (0..300 * 257).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        l.weight = Param::from_data(TensorData::new(w, [300, 257]), device);
        let b: Vec<f32> = (0..257).map(|i| (i % 13) as f32 * 0.01).collect();
        l.bias = Some(Param::from_data(TensorData::new(b, [257]), device));
        l
    }

    /// Steps `from..to` of a fixed regression problem.
    fn run(mut l: Linear, opt: &mut ModuleOptimizer, from: usize, to: usize) -> Linear {
        let device = l.weight.val().device();
        for s in from..to {
            let x = Tensor::<2>::ones([4, 300], &device).mul_scalar(0.1 * (s + 1) as f64);
            let loss = l.forward(x).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &l);
            l = opt.step(1e-3, l, grads);
        }
        l
    }

    /// The fused update follows burn's Adam step for step (within rounding), and its state
    /// survives the byte round-trip checkpoints use: 5 steps, save, restore, 2 more = 7 steps.
    #[test]
    fn follows_burns_adam_and_its_state_round_trips() {
        let device = Device::flex().autodiff();
        let mut ours_opt = FusedAdam::new(0.5).init();
        let ours = run(layer(&device), &mut ours_opt, 0, 5);
        let mut burns_opt = AdamConfig::new().with_beta_1(0.5).init();
        let burns = run(layer(&device), &mut burns_opt, 0, 5);
        let start = param_values(&layer(&device));
        let (a, b) = (param_values(&ours), param_values(&burns));
        assert_ne!(a, start, "training must move the weights");
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
        let bytes = ours_opt.into_bytes().unwrap();
        let mut restored = FusedAdam::new(0.5).init().from_bytes(bytes).unwrap();
        let resumed = run(ours, &mut restored, 5, 7);
        let mut straight_opt = FusedAdam::new(0.5).init();
        let straight = run(layer(&device), &mut straight_opt, 0, 7);
        assert_eq!(param_values(&resumed), param_values(&straight));
    }
}
