//! The forward ops on Flex tensors: read f32 storage, run the kernel, wrap the result.
//!
//! Our conv and batch-norm kernels keep activations channels-last. Such a tensor is still
//! logically [n, c, h, w] — any burn op on it sees NCHW semantics — but its Flex layout has the
//! strides of NHWC storage (what `permute` would give). Only a burn op that needs contiguous
//! memory (e.g. `reshape` before a linear layer) copies it back to NCHW.

use super::conv::{self, Geom, Mem};
use super::{ConvSpec, LabKernels, act::Act, loss, norm};
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::{Bytes, DType, Shape};
use burn_flex::{FlexTensor, Layout};
use std::borrow::Cow;

fn check_f32(t: &FlexTensor) {
    assert_eq!(t.dtype(), DType::F32, "latentlab kernels take f32 tensors, got {:?}", t.dtype());
}

/// The tensor's f32 values in logical (row-major) order: borrowed when already contiguous.
pub(super) fn values(t: &FlexTensor) -> Cow<'_, [f32]> {
    check_f32(t);
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.to_contiguous().as_slice::<f32>().expect("contiguous after copy").to_vec()),
    }
}

/// NHWC strides for a logical [n, c, h, w] shape.
fn nhwc_strides([_, c, h, w]: [usize; 4]) -> Vec<isize> {
    vec![(h * w * c) as isize, 1, (w * c) as isize, c as isize]
}

/// A 4-d tensor's values with their memory order: NCHW when contiguous, NHWC when its strides are
/// NHWC's; any other layout is copied to NCHW.
pub(super) fn values4(t: &FlexTensor) -> (Cow<'_, [f32]>, Mem) {
    check_f32(t);
    let d = dims4(t, "tensor");
    let l = t.layout();
    if l.start_offset() == 0 && l.strides() == nhwc_strides(d).as_slice() && !l.is_contiguous() {
        let n: usize = d.iter().product();
        return (Cow::Borrowed(&t.storage::<f32>()[..n]), Mem::Nhwc);
    }
    (values(t), Mem::Nchw)
}

/// The values of `t` in memory order `mem` (converted if stored otherwise).
pub(super) fn values_as(t: &FlexTensor, mem: Mem) -> Cow<'_, [f32]> {
    let (v, m) = values4(t);
    if m == mem {
        return v;
    }
    let [n, c, h, w] = dims4(t, "tensor");
    let mut o = vec![0.0f32; v.len()];
    match mem {
        Mem::Nhwc => conv::nchw_to_nhwc(&v, n, c, h * w, &mut o),
        Mem::Nchw => conv::nhwc_to_nchw(&v, n, c, h * w, &mut o),
    }
    Cow::Owned(o)
}

pub(super) fn tensor(v: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    let shape = shape.into();
    assert_eq!(v.len(), shape.num_elements(), "kernel output size");
    FlexTensor::new(Bytes::from_elems(v), Layout::contiguous(shape), DType::F32)
}

/// A logical [n, c, h, w] tensor over values stored in memory order `mem`.
pub(super) fn tensor4(v: Vec<f32>, dims: [usize; 4], mem: Mem) -> FlexTensor {
    match mem {
        Mem::Nchw => tensor(v, dims),
        Mem::Nhwc => {
            assert_eq!(v.len(), dims.iter().product::<usize>(), "kernel output size");
            let layout = Layout::new(Shape::from(dims), nhwc_strides(dims), 0);
            FlexTensor::new(Bytes::from_elems(v), layout, DType::F32)
        }
    }
}

pub(super) fn dims4(t: &FlexTensor, what: &str) -> [usize; 4] {
    let s = t.shape();
    s.as_slice().try_into().unwrap_or_else(|_| panic!("{what}: expected a 4-d tensor, got {s:?}"))
}

/// The convolution geometry of a forward call (for a transposed one, X is the output side).
pub(super) fn geometry(x: &FlexTensor, w: &FlexTensor, spec: &ConvSpec) -> Geom {
    let xd = dims4(x, "conv input");
    let wd = dims4(w, "conv weight");
    let g = if spec.transposed {
        assert_eq!(xd[1], wd[0], "conv-transpose: input has {} channels, weight expects {}", xd[1], wd[0]);
        Geom::transposed(xd, wd[1], [wd[2], wd[3]], spec.stride, spec.padding, spec.padding_out)
    } else {
        assert_eq!(xd[1], wd[1], "conv: input has {} channels, weight expects {}", xd[1], wd[1]);
        Geom::conv(xd, wd[0], [wd[2], wd[3]], spec.stride, spec.padding)
    };
    g.unwrap_or_else(|| panic!("convolution {spec:?} of a {xd:?} input with a {wd:?} kernel has an empty output"))
}

/// The forward pass given the permuted weight (which the autodiff op keeps for the backward pass).
pub(super) fn conv_permuted(
    g: &Geom,
    x: &FlexTensor,
    wp: &[f32],
    b: &FlexTensor,
    spec: ConvSpec,
    act: Act,
) -> FlexTensor {
    let ((xv, xm), bv) = (values4(x), values(b));
    if spec.transposed {
        tensor4(conv::backward_data(g, &xv, xm, wp, Some(&bv), act), [g.n, g.ci, g.h, g.w], Mem::Nhwc)
    } else {
        tensor4(conv::forward(g, &xv, xm, wp, Some(&bv), act), [g.n, g.co, g.oh, g.ow], Mem::Nhwc)
    }
}

impl LabKernels for Flex {
    fn lab_conv2d(x: FlexTensor, w: FlexTensor, b: FlexTensor, spec: ConvSpec, act: Act) -> FlexTensor {
        let g = geometry(&x, &w, &spec);
        let wp = conv::permute_weight(&g, &values(&w));
        conv_permuted(&g, &x, &wp, &b, spec, act)
    }

    fn lab_batch_norm(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        eps: f64,
        act: Act,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = x.shape();
        let sh = norm_shape(&shape);
        let (xv, mem) = if shape.num_dims() == 4 { values4(&x) } else { (values(&x), Mem::Nchw) };
        let out = norm::forward(sh, mem, &xv, &values(&gamma), &values(&beta), eps, act);
        let y = if shape.num_dims() == 4 { tensor4(out.y, dims4(&x, "bn"), mem) } else { tensor(out.y, shape) };
        (y, tensor(out.mean, [sh.c]), tensor(out.var, [sh.c]))
    }

    fn lab_linear(x: FlexTensor, w: FlexTensor, b: FlexTensor, act: Act) -> FlexTensor {
        let (rows, fin) = rows_cols(&x);
        let (win, fout) = rows_cols(&w);
        assert_eq!(fin, win, "linear: input has {fin} features, weight expects {win}");
        tensor(super::linear::forward(&values(&x), &values(&w), &values(&b), fin, fout, act), [rows, fout])
    }

    fn lab_flatten_linear(x: FlexTensor, w: FlexTensor, b: FlexTensor, act: Act) -> FlexTensor {
        let [n, c, h, wd] = dims4(&x, "flatten-linear input");
        let (fin, fout) = rows_cols(&w);
        assert_eq!(fin, c * h * wd, "flatten-linear: input has {} features, weight expects {fin}", c * h * wd);
        let (xv, mem) = values4(&x);
        let w_nchw = values(&w);
        let wv = flatten_weight(&w_nchw, [c, h, wd], fout, mem);
        tensor(super::linear::forward(&xv, &wv, &values(&b), fin, fout, act), [n, fout])
    }

    fn lab_max_pool2d(x: FlexTensor, window: [usize; 2]) -> FlexTensor {
        pool_forward(&x, window).0
    }

    fn lab_act(x: FlexTensor, act: Act) -> FlexTensor {
        let shape = x.shape();
        if shape.num_dims() == 4 {
            let (v, mem) = values4(&x);
            let mut v = v.into_owned();
            super::act::apply_inplace(&mut v, act);
            return tensor4(v, dims4(&x, "act"), mem);
        }
        let mut v = values(&x).into_owned();
        super::act::apply_inplace(&mut v, act);
        tensor(v, shape)
    }

    fn lab_adam(
        param: FlexTensor,
        grad: FlexTensor,
        m: FlexTensor,
        v: FlexTensor,
        step: super::adam::AdamStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (mut p, mut m, mut v) = (exclusive(param), exclusive(m), exclusive(v));
        let g = values(&grad);
        super::adam::step(p.storage_mut(), &g, m.storage_mut(), v.storage_mut(), step);
        (p, m, v)
    }

    fn lab_bce_logits_rows(logits: FlexTensor, target: FlexTensor) -> FlexTensor {
        let (rows, d) = rows_cols(&logits);
        let (trows, td) = rows_cols(&target);
        assert!(
            td == d && trows > 0 && rows % trows == 0,
            "logits {rows}×{d} cannot be scored against targets {trows}×{td}"
        );
        tensor(loss::bce_rows(&values(&logits), &values(&target), d, rows / trows), [rows])
    }
}

/// The tensor itself when it owns a contiguous buffer of exactly its elements (so it can be updated
/// in place), else a fresh contiguous copy.
fn exclusive(t: FlexTensor) -> FlexTensor {
    check_f32(&t);
    let n = t.shape().num_elements();
    if t.is_unique() && t.is_contiguous() && t.layout().start_offset() == 0 && t.storage::<f32>().len() == n {
        return t;
    }
    let shape = t.shape();
    tensor(values(&t).into_owned(), shape)
}

/// The weight of a flatten-linear layer in the row order of inputs stored as `mem`.
pub(super) fn flatten_weight(w: &[f32], chw: [usize; 3], fout: usize, mem: Mem) -> Cow<'_, [f32]> {
    match mem {
        Mem::Nchw => Cow::Borrowed(w),
        Mem::Nhwc => Cow::Owned(super::linear::permute_rows(w, chw, fout, true)),
    }
}

pub(super) fn pool_shape(x: &FlexTensor, [kh, kw]: [usize; 2]) -> super::pool::PoolShape {
    let [n, c, h, w] = dims4(x, "max-pool input");
    assert!(h >= kh && w >= kw, "max-pool: a {h}×{w} input is smaller than its {kh}×{kw} window");
    super::pool::PoolShape { n, c, h, w, kh, kw }
}

/// (pooled tensor, winning taps, memory order) — the autodiff op keeps the taps for backward.
pub(super) fn pool_forward(x: &FlexTensor, window: [usize; 2]) -> (FlexTensor, Vec<u8>, Mem) {
    let s = pool_shape(x, window);
    let (v, mem) = values4(x);
    let (y, arg) = super::pool::forward(s, mem, &v);
    let (oh, ow) = s.out();
    (tensor4(y, [s.n, s.c, oh, ow], mem), arg, mem)
}

/// [n, c, …] as n × c × (product of the rest).
pub(super) fn norm_shape(shape: &Shape) -> norm::NormShape {
    let d = shape.as_slice();
    assert!(d.len() >= 2, "batch norm needs [batch, channels, …], got {d:?}");
    norm::NormShape { n: d[0], c: d[1], s: d[2..].iter().product() }
}

pub(super) fn rows_cols(t: &FlexTensor) -> (usize, usize) {
    let s = t.shape();
    let d = s.as_slice();
    assert_eq!(d.len(), 2, "expected a [rows, cols] tensor, got {d:?}");
    (d[0], d[1])
}
