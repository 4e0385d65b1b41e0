//! latentlab's own CPU kernels behind burn's backend-extension mechanism.
//!
//! Models call the functions at the bottom of this file (`conv2d`, `conv_transpose2d`,
//! `batch_norm`, `activation`, …) with burn modules and tensors. On the Flex CPU backend they run
//! our kernels (`conv`, `norm`, `act`, `loss`), forward and backward, through the `LabKernels`
//! backend extension: `Flex` implements the forward ops, `Autodiff<Flex>` registers hand-written
//! backward steps. On every other device (a GPU), for layouts our kernels do not cover (dilation,
//! groups, asymmetric padding, non-f32), or with `LATENTLAB_KERNELS=burn`, the same functions run
//! burn's own ops — model code is written once. `LATENTLAB_KERNELS=im2col` keeps our kernels but
//! runs 3×3 layers through im2col instead of Winograd (for comparing the two).

pub mod act;
pub mod adam;
mod autodiff;
pub mod conv;
mod flex;
pub mod gemm;
pub mod linear;
pub mod loss;
pub mod mlp;
pub mod norm;
pub mod pool;
pub mod simd;

pub use act::Act;

use burn::backend::{Backend, Dispatch, DispatchDevice, backend_extension, tensor::FloatTensor};
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::DType;
use std::sync::OnceLock;

/// Stride and padding of a (transposed) convolution our kernels run (dilation 1, one group).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    /// Extra rows/columns at the bottom/right of a transposed convolution's output.
    pub padding_out: [usize; 2],
    pub transposed: bool,
}

/// New primitive ops, implemented for `Flex` (forward) and `Autodiff<Flex>` (backward).
#[backend_extension(Flex, Autodiff)]
pub trait LabKernels: Backend {
    /// f(conv(x, w) + b) or f(conv_transpose(x, w) + b), NCHW.
    fn lab_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        spec: ConvSpec,
        act: Act,
    ) -> FloatTensor<Self>;
    /// Training-mode batch norm over dim 1 fused with f: (output, batch mean, biased batch
    /// variance); mean and variance carry no gradient.
    fn lab_batch_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
        act: Act,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
    /// f(x·W + b) for x [rows, in], W [in, out] (burn's layout), b [out].
    fn lab_linear(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, act: Act) -> FloatTensor<Self>;
    /// f(flatten(x)·W + b) for x [n, c, h, w] flattened in NCHW order (a linear layer after
    /// convolutions), reading channels-last inputs without copying them to NCHW.
    fn lab_flatten_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        act: Act,
    ) -> FloatTensor<Self>;
    /// Max pooling over non-overlapping kh×kw windows (stride = window, no padding).
    fn lab_max_pool2d(x: FloatTensor<Self>, window: [usize; 2]) -> FloatTensor<Self>;
    /// f(x), element-wise.
    fn lab_act(x: FloatTensor<Self>, act: Act) -> FloatTensor<Self>;
    /// Σⱼ softplus(lᵢⱼ) − tᵢⱼ·lᵢⱼ per row of [B, D] logits and targets: [B].
    fn lab_bce_logits_rows(logits: FloatTensor<Self>, target: FloatTensor<Self>) -> FloatTensor<Self>;
    /// One Adam step: (parameter, first moment, second moment) after it. Not differentiable.
    fn lab_adam(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        step: adam::AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// A raw pointer that may cross threads, for kernels whose tasks write disjoint index ranges of
/// one output (channel planes, weight segments) that are not contiguous chunks `par_chunks_mut`
/// could hand out.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut(pub(crate) *mut f32);
// SAFETY: every user writes only ranges no other task touches (see `slice`).
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// `len` values from offset `o`.
    ///
    /// # Safety
    /// The range must lie inside the allocation, and no other live slice may overlap it.
    pub(crate) unsafe fn slice<'a>(self, o: usize, len: usize) -> &'a mut [f32] {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(o), len) }
    }
}

/// Build rayon's global pool (which burn's Flex, gemm and our kernels share) with the calling
/// thread as one of its workers, `threads` in all [default: RAYON_NUM_THREADS, else one per core].
///
/// A parallel loop started from outside the pool parks the caller and wakes every worker through
/// the OS; started on a worker, that worker runs part of it and the others steal the rest. A
/// training step is dozens of parallel loops of tens of microseconds, so the main thread being a
/// worker saves most of those sleeps and wake-ups. (Running each step on some pool worker instead
/// would also do that, but burn's batch-norm running statistics are kept per thread and averaged
/// across threads, so steps must stay on one thread.) Call once, before any parallel work.
pub fn init_pool(threads: Option<usize>) -> anyhow::Result<()> {
    let mut b = rayon::ThreadPoolBuilder::new().use_current_thread();
    if let Some(n) = threads {
        b = b.num_threads(n);
    }
    b.build_global().map_err(|e| anyhow::anyhow!("cannot start the worker pool: {e}"))
}

/// `LATENTLAB_KERNELS`, read once: the kernel switches below are asked on every layer call.
fn kernels_env() -> Option<&'static str> {
    static V: OnceLock<Option<String>> = OnceLock::new();
    V.get_or_init(|| std::env::var("LATENTLAB_KERNELS").ok()).as_deref()
}

/// The values `LATENTLAB_KERNELS` may take: unset (or `ours`) is the default.
const KERNEL_MODES: [&str; 3] = ["ours", "burn", "im2col"];

/// An error naming the value if `LATENTLAB_KERNELS` is set to something this build does not know
/// (a typo such as `im2co1` would otherwise silently run the default kernels and mislabel a
/// comparison). The command line calls it before any work.
pub fn check_env() -> anyhow::Result<()> {
    match kernels_env() {
        Some(v) if !KERNEL_MODES.contains(&v) => anyhow::bail!(
            "LATENTLAB_KERNELS={v:?} is not a kernel choice: use one of {} (or leave it unset)",
            KERNEL_MODES.join(", ")
        ),
        _ => Ok(()),
    }
}

/// Whether our kernels are switched on (`LATENTLAB_KERNELS=burn` turns them off, for comparisons).
pub fn enabled() -> bool {
    kernels_env() != Some("burn")
}

/// Whether 3×3 stride-1 layers may run as Winograd convolutions (`LATENTLAB_KERNELS=im2col`
/// turns that off, for comparisons of speed and of trained quality).
pub fn winograd_enabled() -> bool {
    kernels_env() != Some("im2col")
}

/// Our kernels take f32 tensors on the Flex CPU backend (with or without autodiff).
fn ours<const D: usize>(x: &Tensor<D>) -> bool {
    enabled() && x.dtype() == DType::F32 && matches!(x.device().inner().as_dispatch(), DispatchDevice::Flex(_))
}

fn with_act_burn<const D: usize>(x: Tensor<D>, act: Act) -> Tensor<D> {
    use burn::tensor::activation::{relu, sigmoid, tanh};
    match act {
        Act::None => x,
        Act::Relu => relu(x),
        Act::LeakyRelu(s) => relu(x.clone()).mul_scalar(1.0 - s as f64) + x.mul_scalar(s as f64),
        Act::Tanh => tanh(x),
        Act::Sigmoid => sigmoid(x),
    }
}

/// f(x) element-wise.
pub fn activation<const D: usize>(x: Tensor<D>, act: Act) -> Tensor<D> {
    if act == Act::None {
        return x;
    }
    if !ours(&x) {
        return with_act_burn(x, act);
    }
    Tensor::from_dispatch(<Dispatch as LabKernels>::lab_act(x.into_dispatch(), act))
}

/// f(layer(x)) for a fully connected layer on [rows, in] inputs.
pub fn linear(layer: &Linear, x: Tensor<2>, act: Act) -> Tensor<2> {
    if !ours(&x) {
        return with_act_burn(layer.forward(x), act);
    }
    let [_, fout] = layer.weight.dims();
    let b = bias_or_zeros(&layer.bias, fout, &x.device());
    Tensor::from_dispatch(<Dispatch as LabKernels>::lab_linear(
        x.into_dispatch(),
        layer.weight.val().into_dispatch(),
        b.into_dispatch(),
        act,
    ))
}

/// f(layer(x.reshape([n, c·h·w]))): a linear layer on flattened feature maps.
pub fn flatten_linear(layer: &Linear, x: Tensor<4>, act: Act) -> Tensor<2> {
    if !ours(&x) {
        let [n, c, h, w] = x.dims();
        return with_act_burn(layer.forward(x.reshape([n, c * h * w])), act);
    }
    let [_, fout] = layer.weight.dims();
    let b = bias_or_zeros(&layer.bias, fout, &x.device());
    Tensor::from_dispatch(<Dispatch as LabKernels>::lab_flatten_linear(
        x.into_dispatch(),
        layer.weight.val().into_dispatch(),
        b.into_dispatch(),
        act,
    ))
}

/// layer(x) for a max-pooling layer; ours for non-overlapping windows without padding.
pub fn max_pool2d(layer: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let plain = layer.stride == layer.kernel_size
        && layer.dilation == [1, 1]
        && !layer.ceil_mode
        && matches!(layer.padding, PaddingConfig2d::Valid);
    if !(plain && ours(&x)) {
        return layer.forward(x);
    }
    Tensor::from_dispatch(<Dispatch as LabKernels>::lab_max_pool2d(x.into_dispatch(), layer.kernel_size))
}

fn bias_or_zeros(bias: &Option<burn::module::Param<Tensor<1>>>, n: usize, device: &Device) -> Tensor<1> {
    bias.as_ref().map_or_else(|| Tensor::zeros([n], device), |b| b.val())
}

/// f(layer(x)) for a convolution layer.
pub fn conv2d(layer: &Conv2d, x: Tensor<4>, act: Act) -> Tensor<4> {
    let padding = match layer.padding {
        PaddingConfig2d::Valid => Some([0, 0]),
        PaddingConfig2d::Explicit(t, l, b, r) if t == b && l == r => Some([t, l]),
        _ => None,
    };
    match padding {
        Some(padding) if ours(&x) && layer.dilation == [1, 1] && layer.groups == 1 => {
            let [cout, ..] = layer.weight.dims();
            let b = bias_or_zeros(&layer.bias, cout, &x.device());
            let spec = ConvSpec { stride: layer.stride, padding, padding_out: [0, 0], transposed: false };
            lab_conv(x, layer.weight.val(), b, spec, act)
        }
        _ => with_act_burn(layer.forward(x), act),
    }
}

/// f(layer(x)) for a transposed-convolution layer.
pub fn conv_transpose2d(layer: &ConvTranspose2d, x: Tensor<4>, act: Act) -> Tensor<4> {
    if !(ours(&x) && layer.dilation == [1, 1] && layer.groups == 1) {
        return with_act_burn(layer.forward(x), act);
    }
    let [_, cout, ..] = layer.weight.dims();
    let b = bias_or_zeros(&layer.bias, cout, &x.device());
    let spec =
        ConvSpec { stride: layer.stride, padding: layer.padding, padding_out: layer.padding_out, transposed: true };
    lab_conv(x, layer.weight.val(), b, spec, act)
}

/// Our (transposed) convolution op on burn tensors.
fn lab_conv(x: Tensor<4>, w: Tensor<4>, b: Tensor<1>, spec: ConvSpec, act: Act) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as LabKernels>::lab_conv2d(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
        spec,
        act,
    ))
}

/// f(bn(x)) for a batch-norm layer, with burn's semantics: batch statistics and a running-average
/// update (momentum, biased variance) when training on an autodiff device, running statistics
/// otherwise.
pub fn batch_norm<const D: usize>(bn: &BatchNorm, x: Tensor<D>, act: Act) -> Tensor<D> {
    let training = x.device().is_autodiff() && bn.training.is_enabled();
    if !(training && ours(&x)) {
        return with_act_burn(bn.forward(x), act);
    }
    let (y, mean, var) = <Dispatch as LabKernels>::lab_batch_norm(
        x.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        bn.epsilon,
        act,
    );
    let (mean, var) = (Tensor::<1>::from_dispatch(mean), Tensor::<1>::from_dispatch(var));
    let m = bn.momentum;
    let rm = bn.running_mean.value_sync().mul_scalar(1.0 - m).add(mean.detach().mul_scalar(m));
    let rv = bn.running_var.value_sync().mul_scalar(1.0 - m).add(var.detach().mul_scalar(m));
    bn.running_mean.update(rm.detach());
    bn.running_var.update(rv.detach());
    Tensor::from_dispatch(y)
}

/// Per-row Bernoulli NLL of an MLP's logits (`hidden` between layers), row r scored against
/// target row r / `group`, computed block by block without materialising the logits: the
/// decoder passes of importance-weighted bounds. Inference only; `None` off the Flex CPU backend
/// or on an autodiff device, where the caller runs the layers and `bce_logits_rows_grouped`.
pub fn mlp_bce_rows(
    layers: &[&Linear],
    hidden: Act,
    x: Tensor<2>,
    target: Tensor<2>,
    group: usize,
) -> Option<Tensor<1>> {
    if !ours(&x) || x.device().is_autodiff() || target.dtype() != DType::F32 {
        return None;
    }
    let prim = |t: Tensor<2>| t.try_into_primitive::<burn::backend::Flex>().ok();
    let prim1 = |t: Tensor<1>| t.try_into_primitive::<burn::backend::Flex>().ok();
    let rows = x.dims()[0];
    let (x, target) = (prim(x)?, prim(target)?);
    let mut params = Vec::with_capacity(layers.len());
    for l in layers {
        let [fin, fout] = l.weight.dims();
        let b = bias_or_zeros(&l.bias, fout, &l.weight.val().device());
        params.push((prim(l.weight.val())?, prim1(b)?, fin, fout));
    }
    let vals: Vec<_> = params.iter().map(|(w, b, _, _)| (flex::values(w), flex::values(b))).collect();
    let dense: Vec<mlp::Dense> =
        vals.iter().zip(&params).map(|((w, b), &(_, _, fin, fout))| mlp::Dense { w, b, fin, fout }).collect();
    let out = mlp::bce_rows(&dense, hidden, &flex::values(&x), &flex::values(&target), group);
    Some(Tensor::from_primitive::<burn::backend::Flex>(flex::tensor(out, [rows])))
}

/// Per-row Bernoulli NLL where `group` consecutive logit rows share one target row — K importance
/// samples of each image, scored without repeating the image K times in memory. Not
/// differentiable in the targets.
pub fn bce_logits_rows_grouped(logits: Tensor<2>, target: Tensor<2>, group: usize) -> Tensor<1> {
    if group == 1 {
        return bce_logits_rows(logits, target);
    }
    if !ours(&logits) || target.dtype() != DType::F32 {
        let [b, d] = target.dims();
        let t = target.reshape([b, 1, d]).repeat_dim(1, group).reshape([b * group, d]);
        return bce_logits_rows(logits, t);
    }
    Tensor::from_dispatch(<Dispatch as LabKernels>::lab_bce_logits_rows(logits.into_dispatch(), target.into_dispatch()))
}

/// Per-row Bernoulli negative log-likelihood of targets `t` under logits `l`: Σⱼ softplus(lᵢⱼ) −
/// tᵢⱼ·lᵢⱼ, [B, D] → [B] (BCE with logits, summed over each row).
pub fn bce_logits_rows(logits: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    if !ours(&logits) || target.dtype() != DType::F32 {
        let sp = crate::models::blocks::softplus(logits.clone());
        return (sp - target * logits).sum_dim(1).squeeze_dim(1);
    }
    Tensor::from_dispatch(<Dispatch as LabKernels>::lab_bce_logits_rows(logits.into_dispatch(), target.into_dispatch()))
}

/// One Adam step on a parameter tensor (not tracked by autodiff): (param, m, v) after it. `m` and
/// `v` are None before the first step. Off the Flex backend this is burn's Adam arithmetic.
pub fn adam_step<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    mv: Option<(Tensor<D>, Tensor<D>)>,
    step: adam::AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (m, v) = mv.unwrap_or_else(|| (grad.zeros_like(), grad.zeros_like()));
    if !ours(&param) || grad.dtype() != DType::F32 {
        let (b1, b2) = (step.beta1 as f64, step.beta2 as f64);
        let m = m.mul_scalar(b1).add(grad.clone().mul_scalar(1.0 - b1));
        let v = v.mul_scalar(b2).add(grad.square().mul_scalar(1.0 - b2));
        let t = step.t as i32;
        let bc2 = (1.0 - step.beta2.powi(t)).sqrt();
        let combined = bc2 / (1.0 - step.beta1.powi(t));
        let update = m.clone().mul_scalar(combined).div(v.clone().sqrt().add_scalar(step.eps * bc2));
        return (param - update.mul_scalar(step.lr), m, v);
    }
    let (p, m, v) = <Dispatch as LabKernels>::lab_adam(
        param.into_dispatch(),
        grad.into_dispatch(),
        m.into_dispatch(),
        v.into_dispatch(),
        step,
    );
    (Tensor::from_dispatch(p), Tensor::from_dispatch(m), Tensor::from_dispatch(v))
}

#[cfg(test)]
mod tests;
