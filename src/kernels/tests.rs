//! Our kernels against burn's own ops on the same device: outputs and every gradient, over random
//! shapes (stride 1–2, padding 0–2, kernels 3–5, 1/3/64 channels, odd sizes, batch 1).

use super::*;
use crate::models::blocks::to_vec;
use burn::module::Param;
use burn::nn::BatchNormConfig;
use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
use burn::tensor::module::{conv_transpose2d as burn_conv_t, conv2d as burn_conv};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn dev() -> Device {
    Device::flex().autodiff()
}

fn rand_t<const D: usize>(rng: &mut ChaCha8Rng, shape: [usize; D], scale: f32) -> Tensor<D> {
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
    Tensor::from_data(TensorData::new(v, shape), &dev())
}

fn assert_close(got: Vec<f32>, want: Vec<f32>, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert!((a - b).abs() <= 2e-4 * scale, "{what}[{i}]: ours {a}, burn {b} (scale {scale})");
    }
}

const ACTS: [Act; 5] = [Act::None, Act::Relu, Act::LeakyRelu(0.2), Act::Tanh, Act::Sigmoid];

/// Compare ours (through the module wrappers) and burn's reference, forward and backward.
#[allow(clippy::too_many_arguments)]
fn check_conv(
    seed: u64,
    n: usize,
    cin: usize,
    cout: usize,
    hw: [usize; 2],
    k: [usize; 2],
    stride: usize,
    pad: usize,
    act: Act,
    transposed: bool,
) {
    let rng = &mut ChaCha8Rng::seed_from_u64(seed);
    let d = dev();
    let x = rand_t(rng, [n, cin, hw[0], hw[1]], 1.0);
    assert!(ours(&x), "the comparison must run our kernels, not burn's on both sides");
    let wshape = if transposed { [cin, cout, k[0], k[1]] } else { [cout, cin, k[0], k[1]] };
    let w = rand_t(rng, wshape, 0.5);
    let b = rand_t(rng, [cout], 0.5);
    let (x1, w1, b1) = (x.clone().require_grad(), w.clone().require_grad(), b.clone().require_grad());
    let (x2, w2, b2) = (x.require_grad(), w.require_grad(), b.require_grad());
    let (ours, reference) = if transposed {
        let mut layer =
            ConvTranspose2dConfig::new([cin, cout], k).with_stride([stride, stride]).with_padding([pad, pad]).init(&d);
        layer.weight = Param::from_tensor(w1.clone());
        layer.bias = Some(Param::from_tensor(b1.clone()));
        let ours = conv_transpose2d(&layer, x1.clone(), act);
        let opts = ConvTransposeOptions::new([stride, stride], [pad, pad], [0, 0], [1, 1], 1);
        (ours, with_act_burn(burn_conv_t(x2.clone(), w2.clone(), Some(b2.clone()), opts), act))
    } else {
        let mut layer = Conv2dConfig::new([cin, cout], k)
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .init(&d);
        layer.weight = Param::from_tensor(w1.clone());
        layer.bias = Some(Param::from_tensor(b1.clone()));
        let ours = conv2d(&layer, x1.clone(), act);
        let opts = ConvOptions::new([stride, stride], [pad, pad], [1, 1], 1);
        (ours, with_act_burn(burn_conv(x2.clone(), w2.clone(), Some(b2.clone()), opts), act))
    };
    assert_eq!(ours.dims(), reference.dims(), "output shape");
    let r = rand_t(rng, ours.dims(), 1.0);
    let what = format!(
        "{} n{n} c{cin}→{cout} {hw:?} k{k:?} s{stride} p{pad} {act:?}",
        if transposed { "convT" } else { "conv" }
    );
    assert_close(to_vec(ours.clone().detach()), to_vec(reference.clone().detach()), &format!("{what} y"));
    let g1 = (ours * r.clone()).sum().backward();
    let g2 = (reference * r).sum().backward();
    for (name, a, b) in [("dx", &x1, &x2), ("dw", &w1, &w2)] {
        assert_close(to_vec(a.grad(&g1).unwrap()), to_vec(b.grad(&g2).unwrap()), &format!("{what} {name}"));
    }
    assert_close(to_vec(b1.grad(&g1).unwrap()), to_vec(b2.grad(&g2).unwrap()), &format!("{what} db"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn conv_matches_burn(
        seed in 0u64..1000, n in 1usize..4, cin in prop::sample::select(vec![1usize, 3, 4]),
        cout in 1usize..6, h in 5usize..12, w in 5usize..12, k in 3usize..6, stride in 1usize..3,
        pad in 0usize..3, act in 0usize..5,
    ) {
        check_conv(seed, n, cin, cout, [h, w], [k, k], stride, pad, ACTS[act], false);
    }

    #[test]
    fn conv_transpose_matches_burn(
        seed in 0u64..1000, n in 1usize..4, cin in prop::sample::select(vec![1usize, 3, 4]),
        cout in 1usize..6, h in 3usize..9, w in 3usize..9, k in 3usize..6, stride in 1usize..3,
        pad in 0usize..3, act in 0usize..5,
    ) {
        prop_assume!(pad < k);
        check_conv(seed, n, cin, cout, [h, w], [k, k], stride, pad, ACTS[act], true);
    }
}

/// The DCGAN's own layers (64/128 channels, 4×4 stride 2), rectangular kernels, batch 1.
#[test]
fn wide_and_odd_layers_match_burn() {
    check_conv(1, 9, 64, 128, [14, 14], [4, 4], 2, 1, Act::LeakyRelu(0.2), false);
    check_conv(2, 5, 128, 64, [7, 7], [4, 4], 2, 1, Act::Relu, true);
    check_conv(3, 1, 64, 3, [9, 7], [3, 5], 1, 2, Act::Tanh, false);
    check_conv(4, 1, 3, 64, [5, 6], [5, 3], 2, 0, Act::None, true);
}

#[test]
fn batch_norm_matches_burn_including_running_statistics() {
    let d = dev();
    for (seed, shape, act) in [
        (1u64, [6usize, 5, 3, 4], Act::None),
        (2, [64, 16, 7, 7], Act::Relu),
        (3, [3, 4, 1, 1], Act::LeakyRelu(0.2)),
        (4, [1, 2, 5, 5], Act::Tanh),
    ] {
        let rng = &mut ChaCha8Rng::seed_from_u64(seed);
        let x = rand_t(rng, shape, 2.0).add_scalar(3.0);
        let r = rand_t(rng, shape, 1.0);
        let mut bn1 = BatchNormConfig::new(shape[1]).init(&d);
        bn1.gamma = Param::from_tensor(rand_t(rng, [shape[1]], 1.0).add_scalar(1.5));
        bn1.beta = Param::from_tensor(rand_t(rng, [shape[1]], 1.0));
        let bn2 = bn1.clone();
        // Independent parameter copies so the two graphs do not share leaves.
        let mut bn2 = bn2;
        bn2.gamma = Param::from_tensor(bn1.gamma.val().detach().require_grad());
        bn2.beta = Param::from_tensor(bn1.beta.val().detach().require_grad());
        let running_before = to_vec(bn1.running_mean.value());
        let (x1, x2) = (x.clone().require_grad(), x.require_grad());
        let y1 = batch_norm(&bn1, x1.clone(), act);
        let y2 = with_act_burn(bn2.forward(x2.clone()), act);
        assert_close(to_vec(y1.clone().detach()), to_vec(y2.clone().detach()), &format!("bn {shape:?} y"));
        let g1 = (y1 * r.clone()).sum().backward();
        let g2 = (y2 * r).sum().backward();
        assert_close(to_vec(x1.grad(&g1).unwrap()), to_vec(x2.grad(&g2).unwrap()), "bn dx");
        assert_close(to_vec(bn1.gamma.val().grad(&g1).unwrap()), to_vec(bn2.gamma.val().grad(&g2).unwrap()), "bn dγ");
        assert_close(to_vec(bn1.beta.val().grad(&g1).unwrap()), to_vec(bn2.beta.val().grad(&g2).unwrap()), "bn dβ");
        let (m1, m2) = (to_vec(bn1.running_mean.value_sync()), to_vec(bn2.running_mean.value_sync()));
        assert_ne!(m1, running_before, "running mean was not updated");
        assert_close(m1, m2, "running mean");
        assert_close(to_vec(bn1.running_var.value_sync()), to_vec(bn2.running_var.value_sync()), "running var");
    }
}

#[test]
fn activation_and_bce_rows_match_burn_with_gradients() {
    let rng = &mut ChaCha8Rng::seed_from_u64(5);
    for act in ACTS {
        let x = rand_t(rng, [70_001], 8.0);
        let (x1, x2) = (x.clone().require_grad(), x.require_grad());
        let (y1, y2) = (activation(x1.clone(), act), with_act_burn(x2.clone(), act));
        assert_close(to_vec(y1.clone().detach()), to_vec(y2.clone().detach()), &format!("{act:?}"));
        let (g1, g2) = ((y1 * 3.0).sum().backward(), (y2 * 3.0).sum().backward());
        assert_close(to_vec(x1.grad(&g1).unwrap()), to_vec(x2.grad(&g2).unwrap()), &format!("{act:?} grad"));
    }
    let l = rand_t(rng, [33, 784], 12.0);
    let t = rand_t(rng, [33, 784], 0.5).add_scalar(0.5);
    let (l1, l2) = (l.clone().require_grad(), l.require_grad());
    let (t1, t2) = (t.clone().require_grad(), t.require_grad());
    let ours = bce_logits_rows(l1.clone(), t1.clone());
    let reference =
        (crate::models::blocks::softplus(l2.clone()) - t2.clone() * l2.clone()).sum_dim(1).squeeze_dim::<1>(1);
    assert_close(to_vec(ours.clone().detach()), to_vec(reference.clone().detach()), "bce rows");
    let w = rand_t(rng, [33], 1.0);
    let (g1, g2) = ((ours * w.clone()).sum().backward(), (reference * w).sum().backward());
    assert_close(to_vec(l1.grad(&g1).unwrap()), to_vec(l2.grad(&g2).unwrap()), "bce dl");
    assert_close(to_vec(t1.grad(&g1).unwrap()), to_vec(t2.grad(&g2).unwrap()), "bce dt");
}

/// A weight that does not require a gradient (a frozen discriminator) still passes the input
/// gradient through, and no weight gradient is produced.
#[test]
fn frozen_weights_get_no_gradient_but_inputs_do() {
    let d = dev();
    let rng = &mut ChaCha8Rng::seed_from_u64(9);
    let layer = Conv2dConfig::new([3, 4], [3, 3]).init(&d).no_grad();
    let x = rand_t(rng, [2, 3, 6, 6], 1.0).require_grad();
    let y = conv2d(&layer, x.clone(), Act::Relu);
    let g = y.sum().backward();
    assert!(x.grad(&g).is_some());
    assert!(layer.weight.val().grad(&g).is_none());
}

#[test]
fn linear_matches_burn_with_gradients_and_is_thread_count_invariant() {
    use burn::nn::LinearConfig;
    let d = dev();
    for (seed, rows, fin, fout, act) in [
        (1u64, 128usize, 784usize, 400usize, Act::Relu),
        (2, 3, 5, 7, Act::None),
        (3, 64, 100, 6272, Act::LeakyRelu(0.2)),
        (4, 1, 20, 400, Act::Tanh),
        (5, 33, 400, 784, Act::Sigmoid),
    ] {
        let rng = &mut ChaCha8Rng::seed_from_u64(seed);
        let mut layer = LinearConfig::new(fin, fout).init(&d);
        layer.weight = Param::from_tensor(rand_t(rng, [fin, fout], 0.1).require_grad());
        layer.bias = Some(Param::from_tensor(rand_t(rng, [fout], 0.1).require_grad()));
        let mut twin = layer.clone();
        twin.weight = Param::from_tensor(layer.weight.val().detach().require_grad());
        twin.bias = Some(Param::from_tensor(layer.bias.as_ref().unwrap().val().detach().require_grad()));
        let x = rand_t(rng, [rows, fin], 1.0);
        let r = rand_t(rng, [rows, fout], 1.0);
        let (x1, x2) = (x.clone().require_grad(), x.require_grad());
        let what = format!("linear {rows}×{fin}→{fout} {act:?}");
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let y = linear(&layer, x1.clone(), act);
                let g = (y.clone() * r.clone()).sum().backward();
                let bias = layer.bias.as_ref().unwrap().val();
                let grads = vec![
                    to_vec(x1.grad(&g).unwrap()),
                    to_vec(layer.weight.val().grad(&g).unwrap()),
                    to_vec(bias.grad(&g).unwrap()),
                ];
                (to_vec(y.detach()), grads)
            })
        };
        let (one, three) = (run(1), run(3));
        assert!(one == three, "{what}: results depend on the thread count");
        let y2 = with_act_burn(twin.forward(x2.clone()), act);
        assert_close(one.0, to_vec(y2.clone().detach()), &format!("{what} y"));
        let g2 = (y2 * r).sum().backward();
        let want = vec![
            to_vec(x2.grad(&g2).unwrap()),
            to_vec(twin.weight.val().grad(&g2).unwrap()),
            to_vec(twin.bias.as_ref().unwrap().val().grad(&g2).unwrap()),
        ];
        for ((name, got), want) in ["dx", "dW", "db"].iter().zip(one.1).zip(want) {
            assert_close(got, want, &format!("{what} {name}"));
        }
    }
}

/// A linear layer on flattened feature maps, fed by a convolution (channels-last storage) and by a
/// plain NCHW tensor, agrees with burn's reshape + linear, gradients included.
#[test]
fn flatten_linear_matches_reshape_then_linear() {
    use burn::nn::LinearConfig;
    let d = dev();
    let rng = &mut ChaCha8Rng::seed_from_u64(12);
    let conv = Conv2dConfig::new([3, 8], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&d);
    let mut fc = LinearConfig::new(8 * 5 * 6, 4).init(&d);
    fc.weight = Param::from_tensor(rand_t(rng, [240, 4], 0.2).require_grad());
    let x = rand_t(rng, [7, 3, 5, 6], 1.0);
    let r = rand_t(rng, [7, 4], 1.0);
    for via_conv in [true, false] {
        let x1 = x.clone().require_grad();
        let (h1, h2) = if via_conv {
            (conv2d(&conv, x1.clone(), Act::None), conv2d(&conv, x1.clone(), Act::None))
        } else {
            let h = rand_t(rng, [7, 8, 5, 6], 1.0);
            (h.clone(), h)
        };
        let ours = flatten_linear(&fc, h1, Act::Tanh);
        let reference = with_act_burn(fc.forward(h2.reshape([7, 240])), Act::Tanh);
        assert_close(to_vec(ours.clone().detach()), to_vec(reference.clone().detach()), "flatten-linear y");
        let g1 = (ours * r.clone()).sum().backward();
        let g2 = (reference * r.clone()).sum().backward();
        assert_close(to_vec(fc.weight.val().grad(&g1).unwrap()), to_vec(fc.weight.val().grad(&g2).unwrap()), "dW");
        if via_conv {
            assert_close(to_vec(x1.grad(&g1).unwrap()), to_vec(x1.grad(&g2).unwrap()), "dx through the conv");
        }
    }
}

/// Max pooling (fed NCHW and, through a convolution, channels-last) matches burn's, gradients
/// included; odd sizes drop the last row/column as burn does.
#[test]
fn max_pool_matches_burn() {
    use burn::nn::pool::MaxPool2dConfig;
    let d = dev();
    let rng = &mut ChaCha8Rng::seed_from_u64(21);
    let conv = Conv2dConfig::new([2, 5], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(&d);
    for (k, hw) in [(2usize, [9usize, 8usize]), (3, [7, 9])] {
        let pool = MaxPool2dConfig::new([k, k]).init();
        for via_conv in [false, true] {
            let x = rand_t(rng, [3, 2, hw[0], hw[1]], 1.0);
            let (x1, x2) = (x.clone().require_grad(), x.require_grad());
            let h = |x: Tensor<4>| if via_conv { conv2d(&conv, x, Act::None) } else { x.mul_scalar(1.0) };
            let ours = max_pool2d(&pool, h(x1.clone()));
            let reference = pool.forward(h(x2.clone()));
            assert_eq!(ours.dims(), reference.dims());
            assert_close(to_vec(ours.clone().detach()), to_vec(reference.clone().detach()), "pool y");
            let r = rand_t(rng, ours.dims(), 1.0);
            let g1 = (ours * r.clone()).sum().backward();
            let g2 = (reference * r).sum().backward();
            assert_close(to_vec(x1.grad(&g1).unwrap()), to_vec(x2.grad(&g2).unwrap()), "pool dx");
        }
    }
}
