//! Backward passes of our ops on `Autodiff<Flex>`: each forward keeps (Arc-shared, no copy) the
//! tensors its gradients need, and the backward step computes only the gradients of inputs that
//! are tracked — no input gradient for data, no weight gradient for a frozen network.

use super::conv::{self, Mem, Need, Saved};
use super::flex::{
    conv_permuted, dims4, flatten_weight, geometry, norm_shape, pool_forward, pool_shape, rows_cols, tensor, tensor4,
    values, values_as, values4,
};
use super::{ConvSpec, LabKernels, act::Act, loss, norm};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex, TensorMetadata};
use burn_flex::FlexTensor;
use std::sync::Arc;

type Ad<C> = Autodiff<Flex, C>;

#[derive(Debug)]
struct ConvBackward;

#[derive(Clone, Debug)]
struct ConvState {
    x: FlexTensor,
    w: FlexTensor,
    /// The weight permuted for the NHWC gemms, computed once in the forward pass.
    wp: Arc<Vec<f32>>,
    /// The output, for f′ (only when there is an activation).
    y: Option<FlexTensor>,
    spec: ConvSpec,
    act: Act,
}

impl Backward<Flex, 3> for ConvBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<ConvState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, nw, nb] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let g = geometry(&s.x, &s.w, &s.spec);
        let need = Need { input: nx.is_some(), weight: nw.is_some(), bias: nb.is_some() };
        let (x, dy) = (values4(&s.x), values4(&dy));
        let w = &s.wp[..];
        let y = s.y.as_ref().map(values4);
        let saved = Saved { input: (&x.0, x.1), output: y.as_ref().map(|(v, m)| (&v[..], *m)), grad: (&dy.0, dy.1) };
        let r = if s.spec.transposed {
            conv::backward_transposed(&g, saved, w, s.act, need)
        } else {
            conv::backward(&g, saved, w, s.act, need)
        };
        if let (Some(node), Some(v)) = (nx, r.input) {
            grads.register::<Flex>(node.id, tensor4(v, dims4(&s.x, "conv input"), Mem::Nhwc));
        }
        if let (Some(node), Some(v)) = (nw, r.weight) {
            grads.register::<Flex>(node.id, tensor(v, dims4(&s.w, "conv weight")));
        }
        if let (Some(node), Some(v)) = (nb, r.bias) {
            let n = v.len();
            grads.register::<Flex>(node.id, tensor(v, [n]));
        }
    }
}

#[derive(Debug)]
struct NormBackward;

#[derive(Clone, Debug)]
struct NormState {
    x: FlexTensor,
    y: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    var: FlexTensor,
    eps: f64,
    act: Act,
}

impl Backward<Flex, 3> for NormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<NormState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, ng, nb] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let shape = s.x.shape();
        let sh = norm_shape(&shape);
        let four = shape.num_dims() == 4;
        let (x, mem) = if four { values4(&s.x) } else { (values(&s.x), Mem::Nchw) };
        let (y, dy) = if four { (values_as(&s.y, mem), values_as(&dy, mem)) } else { (values(&s.y), values(&dy)) };
        let (gamma, mean, var) = (values(&s.gamma), values(&s.mean), values(&s.var));
        let (dx, dg, db) = norm::backward(sh, mem, &x, &y, &gamma, &mean, &var, s.eps, s.act, &dy);
        if let Some(node) = nx {
            let dx = if four { tensor4(dx, dims4(&s.x, "bn"), mem) } else { tensor(dx, shape) };
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = ng {
            grads.register::<Flex>(node.id, tensor(dg, [sh.c]));
        }
        if let Some(node) = nb {
            grads.register::<Flex>(node.id, tensor(db, [sh.c]));
        }
    }
}

#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    /// (x, W, output if there is an activation, f)
    type State = (FlexTensor, FlexTensor, Option<FlexTensor>, Act);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, nw, nb] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, w, y, act) = ops.state;
        let ((rows, fin), (_, fout)) = (rows_cols(&x), rows_cols(&w));
        let y = y.as_ref().map(values);
        let need = [nx.is_some(), nw.is_some(), nb.is_some()];
        let super::linear::Grads { dx, dw, db } =
            super::linear::backward(&values(&x), &values(&w), y.as_deref(), &values(&dy), fin, fout, act, need);
        if let (Some(node), Some(v)) = (nx, dx) {
            grads.register::<Flex>(node.id, tensor(v, [rows, fin]));
        }
        if let (Some(node), Some(v)) = (nw, dw) {
            grads.register::<Flex>(node.id, tensor(v, [fin, fout]));
        }
        if let (Some(node), Some(v)) = (nb, db) {
            grads.register::<Flex>(node.id, tensor(v, [fout]));
        }
    }
}

#[derive(Debug)]
struct FlattenLinearBackward;

impl Backward<Flex, 3> for FlattenLinearBackward {
    /// (x [n, c, h, w], W, output if there is an activation, f)
    type State = (FlexTensor, FlexTensor, Option<FlexTensor>, Act);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, nw, nb] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, w, y, act) = ops.state;
        let dims = dims4(&x, "flatten-linear input");
        let chw = [dims[1], dims[2], dims[3]];
        let (fin, fout) = rows_cols(&w);
        let (xv, mem) = values4(&x);
        let w_nchw = values(&w);
        let wv = flatten_weight(&w_nchw, chw, fout, mem);
        let y = y.as_ref().map(values);
        let need = [nx.is_some(), nw.is_some(), nb.is_some()];
        let super::linear::Grads { dx, dw, db } =
            super::linear::backward(&xv, &wv, y.as_deref(), &values(&dy), fin, fout, act, need);
        if let (Some(node), Some(v)) = (nx, dx) {
            grads.register::<Flex>(node.id, tensor4(v, dims, mem));
        }
        if let (Some(node), Some(v)) = (nw, dw) {
            let v = if mem == Mem::Nhwc { super::linear::permute_rows(&v, chw, fout, false) } else { v };
            grads.register::<Flex>(node.id, tensor(v, [fin, fout]));
        }
        if let (Some(node), Some(v)) = (nb, db) {
            grads.register::<Flex>(node.id, tensor(v, [fout]));
        }
    }
}

#[derive(Debug)]
struct PoolBackward;

impl Backward<Flex, 1> for PoolBackward {
    /// (input, window, winning taps, memory order of input and output)
    type State = (FlexTensor, [usize; 2], Arc<Vec<u8>>, Mem);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, window, arg, mem) = ops.state;
        if let Some(node) = node {
            let s = pool_shape(&x, window);
            let dx = super::pool::backward(s, mem, &arg, &values_as(&dy, mem));
            grads.register::<Flex>(node.id, tensor4(dx, dims4(&x, "max-pool input"), mem));
        }
    }
}

#[derive(Debug)]
struct ActBackward;

impl Backward<Flex, 1> for ActBackward {
    type State = (FlexTensor, Act);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (y, act) = ops.state;
        if let Some(node) = node {
            let shape = dy.shape();
            if shape.num_dims() == 4 {
                let (yv, mem) = values4(&y);
                let mut g = values_as(&dy, mem).into_owned();
                super::act::mul_deriv_inplace(&mut g, &yv, act);
                grads.register::<Flex>(node.id, tensor4(g, dims4(&y, "act"), mem));
            } else {
                let mut g = values(&dy).into_owned();
                super::act::mul_deriv_inplace(&mut g, &values(&y), act);
                grads.register::<Flex>(node.id, tensor(g, shape));
            }
        }
    }
}

#[derive(Debug)]
struct BceBackward;

impl Backward<Flex, 2> for BceBackward {
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nl, nt] = ops.parents;
        let g = grads.consume::<Flex>(&ops.node);
        let (l, t) = ops.state;
        let shape = l.shape();
        let ((rows, d), (trows, _)) = (rows_cols(&l), rows_cols(&t));
        let (dl, dt) = loss::bce_rows_backward(&values(&l), &values(&t), d, rows / trows, &values(&g), nt.is_some());
        if let Some(node) = nl {
            grads.register::<Flex>(node.id, tensor(dl, shape.clone()));
        }
        if let (Some(node), Some(dt)) = (nt, dt) {
            grads.register::<Flex>(node.id, tensor(dt, shape));
        }
    }
}

impl<C: CheckpointStrategy> LabKernels for Ad<C> {
    fn lab_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        spec: ConvSpec,
        act: Act,
    ) -> FloatTensor<Self> {
        let (xp, xg) = x.into_parts();
        let (wp, wg) = w.into_parts();
        let (bp, bg) = b.into_parts();
        match ConvBackward.prepare::<C>([xg, wg, bg]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let g = geometry(&xp, &wp, &spec);
                let wperm = Arc::new(conv::permute_weight(&g, &values(&wp)));
                let y = conv_permuted(&g, &xp, &wperm, &bp, spec, act);
                let keep_y = (act != Act::None).then(|| y.clone());
                prep.finish(ConvState { x: xp, w: wp, wp: wperm, y: keep_y, spec, act }, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::lab_conv2d(xp, wp, bp, spec, act)),
        }
    }

    fn lab_batch_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f64,
        act: Act,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (xp, xg) = x.into_parts();
        let (gp, gg) = gamma.into_parts();
        let (bp, bg) = beta.into_parts();
        let (y, mean, var) = Flex::lab_batch_norm(xp.clone(), gp.clone(), bp, eps, act);
        // Leaves that require no gradient: the statistics only feed the running averages.
        let stats = (FloatTensor::<Self>::new(mean.clone()), FloatTensor::<Self>::new(var.clone()));
        let out = match NormBackward.prepare::<C>([xg, gg, bg]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(NormState { x: xp, y: y.clone(), gamma: gp, mean, var, eps, act }, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (out, stats.0, stats.1)
    }

    fn lab_linear(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, act: Act) -> FloatTensor<Self> {
        let (xp, xg) = x.into_parts();
        let (wp, wg) = w.into_parts();
        let (bp, bg) = b.into_parts();
        match LinearBackward.prepare::<C>([xg, wg, bg]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = Flex::lab_linear(xp.clone(), wp.clone(), bp, act);
                let keep_y = (act != Act::None).then(|| y.clone());
                prep.finish((xp, wp, keep_y, act), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::lab_linear(xp, wp, bp, act)),
        }
    }

    fn lab_flatten_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        act: Act,
    ) -> FloatTensor<Self> {
        let (xp, xg) = x.into_parts();
        let (wp, wg) = w.into_parts();
        let (bp, bg) = b.into_parts();
        match FlattenLinearBackward.prepare::<C>([xg, wg, bg]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = Flex::lab_flatten_linear(xp.clone(), wp.clone(), bp, act);
                let keep_y = (act != Act::None).then(|| y.clone());
                prep.finish((xp, wp, keep_y, act), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::lab_flatten_linear(xp, wp, bp, act)),
        }
    }

    fn lab_max_pool2d(x: FloatTensor<Self>, window: [usize; 2]) -> FloatTensor<Self> {
        let (xp, xg) = x.into_parts();
        match PoolBackward.prepare::<C>([xg]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (y, arg, mem) = pool_forward(&xp, window);
                prep.finish((xp, window, Arc::new(arg), mem), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(pool_forward(&xp, window).0),
        }
    }

    fn lab_act(x: FloatTensor<Self>, act: Act) -> FloatTensor<Self> {
        let (xp, xg) = x.into_parts();
        match ActBackward.prepare::<C>([xg]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = Flex::lab_act(xp, act);
                prep.finish((y.clone(), act), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::lab_act(xp, act)),
        }
    }

    fn lab_adam(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        step: super::adam::AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // Optimisers work on untracked values: run the Flex op and return new leaves.
        let (p, m, v) =
            Flex::lab_adam(param.into_primitive(), grad.into_primitive(), m.into_primitive(), v.into_primitive(), step);
        (FloatTensor::<Self>::new(p), FloatTensor::<Self>::new(m), FloatTensor::<Self>::new(v))
    }

    fn lab_bce_logits_rows(logits: FloatTensor<Self>, target: FloatTensor<Self>) -> FloatTensor<Self> {
        let (lp, lg) = logits.into_parts();
        let (tp, tg) = target.into_parts();
        match BceBackward.prepare::<C>([lg, tg]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = Flex::lab_bce_logits_rows(lp.clone(), tp.clone());
                prep.finish((lp, tp), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::lab_bce_logits_rows(lp, tp)),
        }
    }
}
