//! One fused pass of Adam over a parameter tensor: moments and parameter updated together,
//! in place when the buffers are not shared (burn's Adam is about a dozen element-wise passes).
//! The arithmetic is burn's `Adam` (same order of f32 operations, ε scaled by √(1 − β₂ᵗ)), so the
//! optimiser state format and the update are the same.

use super::simd::multiversion;
use rayon::prelude::*;

/// Hyper-parameters of one step; `t` is the step number after this update (1 for the first).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    pub lr: f64,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub t: usize,
}

impl AdamStep {
    /// (√(1 − β₂ᵗ)/(1 − β₁ᵗ), ε·√(1 − β₂ᵗ)), computed as burn does (f32).
    fn factors(&self) -> (f32, f32) {
        let t = self.t as i32;
        let bc2 = (1.0 - self.beta2.powi(t)).sqrt();
        (bc2 / (1.0 - self.beta1.powi(t)), self.eps * bc2)
    }
}

multiversion! {
    fn adam_slice(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: [f32; 5]) {
        let [b1, b2, combined, eps, lr] = k;
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            *m = *m * b1 + g * (1.0 - b1);
            *v = *v * b2 + g * g * (1.0 - b2);
            *p -= *m * combined / (v.sqrt() + eps) * lr;
        }
    }
}

/// p, m, v ← one Adam step with gradient g (m = v = 0 before the first step).
pub fn step(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: AdamStep) {
    assert!(p.len() == g.len() && p.len() == m.len() && p.len() == v.len(), "Adam buffers differ in length");
    let (combined, eps) = h.factors();
    let k = [h.beta1, h.beta2, combined, eps, h.lr as f32];
    let per = super::act::PAR_MIN;
    if p.len() < 2 * per {
        adam_slice(p, g, m, v, k);
    } else {
        p.par_chunks_mut(per)
            .zip(g.par_chunks(per))
            .zip(m.par_chunks_mut(per))
            .zip(v.par_chunks_mut(per))
            .for_each(|(((p, g), m), v)| adam_slice(p, g, m, v, k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three steps against Adam written out in f64.
    #[test]
    fn matches_adam_written_out() {
        let n = 70_001;
        let mut p: Vec<f32> = (0..n).map(|i| (i % 97) as f32 * 0.01 - 0.5).collect();
        let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        let p0 = p.clone();
        let (mut pr, mut mr, mut vr): (Vec<f64>, Vec<f64>, Vec<f64>) =
            (p0.iter().map(|&x| x as f64).collect(), vec![0.0; n], vec![0.0; n]);
        let (b1, b2, eps, lr) = (0.5f32, 0.999f32, 1e-5f32, 2e-4);
        for t in 1..=3 {
            let g: Vec<f32> = (0..n).map(|i| ((i * 31 + t * 7) % 101) as f32 * 0.02 - 1.0).collect();
            step(&mut p, &g, &mut m, &mut v, AdamStep { lr, beta1: b1, beta2: b2, eps, t });
            let (b1, b2) = (b1 as f64, b2 as f64);
            for i in 0..n {
                mr[i] = b1 * mr[i] + (1.0 - b1) * g[i] as f64;
                vr[i] = b2 * vr[i] + (1.0 - b2) * (g[i] as f64).powi(2);
                let mh = mr[i] / (1.0 - b1.powi(t as i32));
                let vh = vr[i] / (1.0 - b2.powi(t as i32));
                pr[i] -= lr * mh / (vh.sqrt() + eps as f64);
            }
        }
        for i in 0..n {
            assert!((p[i] as f64 - pr[i]).abs() < 1e-6, "p[{i}] {} vs {}", p[i], pr[i]);
        }
    }
}
