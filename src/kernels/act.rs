//! Activations fused into the epilogues of our kernels, and their derivatives. Every derivative is
//! computed from the activation's *output*, so a fused op only keeps its output for the backward
//! pass (for LeakyReLU with slope > 0 the output has the sign of the input).

use super::simd::{self, multiversion};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Act {
    None,
    Relu,
    /// max(x, s·x) with 0 < s < 1.
    LeakyRelu(f32),
    Tanh,
    Sigmoid,
}

impl Act {
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::None => x,
            Act::Relu => x.max(0.0),
            // Branch-free: the sign of x is random, a branch would mispredict half the time.
            Act::LeakyRelu(s) => x.max(0.0) + s * x.min(0.0),
            Act::Tanh => simd::tanh::<simd::Plain>(x),
            Act::Sigmoid => simd::sigmoid::<simd::Plain>(x),
        }
    }

    /// f'(x) expressed through y = f(x).
    #[inline(always)]
    pub fn deriv_from_output(self, y: f32) -> f32 {
        match self {
            Act::None => 1.0,
            Act::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Act::LeakyRelu(s) => {
                if y > 0.0 {
                    1.0
                } else {
                    s
                }
            }
            Act::Tanh => 1.0 - y * y,
            Act::Sigmoid => y * (1.0 - y),
        }
    }
}

/// Below this many elements an element-wise pass runs on the calling thread: handing work to the
/// pool costs a few microseconds, about what one core needs for this many elements.
pub const PAR_MIN: usize = 1 << 15;

/// `with_act!(act, f, d => body)` runs `body` with `f` the activation and `d` its derivative from
/// the output as monomorphic closures, so loops in `body` vectorise with no per-element `match`.
/// Used inside `multiversion!` bodies (it names their multiply-add `M`).
macro_rules! with_act {
    ($act:expr, $f:ident, $d:ident => $body:expr) => {{
        #[allow(unused_variables)]
        match $act {
            $crate::kernels::act::Act::None => {
                let $f = |v: f32| v;
                let $d = |_y: f32| 1.0f32;
                $body
            }
            $crate::kernels::act::Act::Relu => {
                let $f = |v: f32| v.max(0.0);
                let $d = |y: f32| if y > 0.0 { 1.0f32 } else { 0.0 };
                $body
            }
            $crate::kernels::act::Act::LeakyRelu(s) => {
                let $f = move |v: f32| v.max(0.0) + s * v.min(0.0);
                let $d = move |y: f32| if y > 0.0 { 1.0f32 } else { s };
                $body
            }
            $crate::kernels::act::Act::Tanh => {
                let $f = $crate::kernels::simd::tanh::<M>;
                let $d = |y: f32| 1.0 - y * y;
                $body
            }
            $crate::kernels::act::Act::Sigmoid => {
                let $f = $crate::kernels::simd::sigmoid::<M>;
                let $d = |y: f32| y * (1.0 - y);
                $body
            }
        }
    }};
}
pub(crate) use with_act;

multiversion! {
    fn apply_slice(x: &mut [f32], act: Act) {
        with_act!(act, f, _d => x.iter_mut().for_each(|v| *v = f(*v)))
    }
}

multiversion! {
    /// g ← g ⊙ f'(y).
    fn mul_deriv_slice(g: &mut [f32], y: &[f32], act: Act) {
        with_act!(act, _f, d => g.iter_mut().zip(y).for_each(|(g, &y)| *g *= d(y)))
    }
}

/// `x ← f(x)` in place on the calling thread (inside tasks that are already parallel).
pub fn apply_inplace_serial(x: &mut [f32], act: Act) {
    if act != Act::None {
        apply_slice(x, act);
    }
}

/// `x ← f(x)` in place, split over the pool for large tensors.
pub fn apply_inplace(x: &mut [f32], act: Act) {
    if act == Act::None {
        return;
    }
    if x.len() < 2 * PAR_MIN {
        apply_slice(x, act);
    } else {
        x.par_chunks_mut(PAR_MIN).for_each(|c| apply_slice(c, act));
    }
}

/// `g ← g ⊙ f'(y)` in place, split over the pool for large tensors.
pub fn mul_deriv_inplace(g: &mut [f32], y: &[f32], act: Act) {
    assert_eq!(g.len(), y.len(), "gradient and output lengths differ");
    if act == Act::None {
        return;
    }
    if g.len() < 2 * PAR_MIN {
        mul_deriv_slice(g, y, act);
    } else {
        g.par_chunks_mut(PAR_MIN).zip(y.par_chunks(PAR_MIN)).for_each(|(g, y)| mul_deriv_slice(g, y, act));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The derivative from the output equals a central difference of the activation.
    #[test]
    fn derivative_from_output_matches_finite_differences() {
        for act in [Act::Relu, Act::LeakyRelu(0.2), Act::Tanh, Act::Sigmoid] {
            for i in -300..=300 {
                let x = i as f64 * 0.01 + 0.005; // never exactly 0, where ReLU has no derivative
                let h = 1e-3f64;
                let f = |v: f64| act.apply(v as f32) as f64;
                let fd = (f(x + h) - f(x - h)) / (2.0 * h);
                let d = act.deriv_from_output(act.apply(x as f32)) as f64;
                assert!((fd - d).abs() < 2e-3, "{act:?} at {x}: {d} vs finite difference {fd}");
            }
        }
    }

    #[test]
    fn inplace_passes_agree_with_scalar_definition_on_large_inputs() {
        let n = 3 * PAR_MIN + 17;
        let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 2001) as f32 / 100.0 - 10.0).collect();
        for act in [Act::Relu, Act::LeakyRelu(0.2), Act::Tanh, Act::Sigmoid] {
            let mut y = x.clone();
            apply_inplace(&mut y, act);
            // The vector path may fuse multiply-adds that the scalar definition rounds twice.
            assert!(y.iter().zip(&x).all(|(&y, &x)| (y - act.apply(x)).abs() <= 1e-6 * y.abs().max(1e-3)), "{act:?}");
            let mut g = vec![2.0f32; n];
            mul_deriv_inplace(&mut g, &y, act);
            assert!(g.iter().zip(&y).all(|(&g, &y)| g == 2.0 * act.deriv_from_output(y)), "{act:?}");
        }
    }
}
