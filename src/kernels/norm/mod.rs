//! Batch normalisation in training mode, fused with the activation that follows it: one pass for
//! the statistics and one for the output forward; one for the two sums and one for dx backward.
//! Channels are independent, so the pool splits them; each channel's sums run on one thread in a
//! fixed order (bit-identical whatever the thread count). Sums are accumulated in f64.

mod planes;
mod rows;
#[cfg(test)]
mod tests;

use super::act::Act;
use super::conv::Mem;
use planes::{backward_planes, forward_planes};
use rows::{backward_rows, forward_rows};

/// x as [n, c, s]: `n` images, `c` channels, `s` spatial positions per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormShape {
    pub n: usize,
    pub c: usize,
    pub s: usize,
}

impl NormShape {
    fn count(&self) -> usize {
        self.n * self.s
    }
    fn len(&self) -> usize {
        self.n * self.c * self.s
    }
}

/// Forward results: the output, and the batch mean and biased variance per channel.
pub struct NormOut {
    pub y: Vec<f32>,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

/// y = f(γ·(x − μ)/√(σ² + ε) + β) with μ, σ² the batch statistics of each channel; x (and y)
/// in memory order `mem`.
pub fn forward(sh: NormShape, mem: Mem, x: &[f32], gamma: &[f32], beta: &[f32], eps: f64, act: Act) -> NormOut {
    assert_eq!(x.len(), sh.len(), "batch-norm input size");
    assert!(gamma.len() == sh.c && beta.len() == sh.c, "batch-norm γ/β size");
    match mem {
        Mem::Nchw => forward_planes(sh, x, gamma, beta, eps, act),
        Mem::Nhwc => forward_rows(sh, x, gamma, beta, eps, act),
    }
}

/// Gradients of `forward`: (dx, dγ, dβ), from the input, the output (for f′), the batch
/// mean/variance the forward returned, and dy — all in memory order `mem`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    sh: NormShape,
    mem: Mem,
    x: &[f32],
    y: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f64,
    act: Act,
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert!(x.len() == sh.len() && y.len() == sh.len() && dy.len() == sh.len(), "batch-norm gradient sizes");
    match mem {
        Mem::Nchw => backward_planes(sh, x, y, gamma, mean, var, eps, act, dy),
        Mem::Nhwc => backward_rows(sh, x, y, gamma, mean, var, eps, act, dy),
    }
}
