use super::*;
use crate::models::blocks;

fn spec(kind: ModelKind) -> ModelSpec {
    ModelSpec {
        kind,
        shape: ImageShape { channels: 1, height: 4, width: 4 },
        num_classes: 10,
        latent_dim: 3,
        hidden: vec![8],
        decoder: DecoderKind::Bernoulli,
        decoder_sigma: None,
        beta: 1.0,
        prior: Prior::Gaussian,
        arch: Arch::Mlp,
        objective: Objective::Elbo,
        d_conv3: false,
        ema: None,
        width: None,
        text: None,
    }
}

#[test]
fn kl_matches_closed_form_on_a_hand_made_case() {
    let device = Device::flex();
    // KL(N(μ,σ²)‖N(0,1)) = ½(σ² + μ² − 1 − ln σ²) per dimension.
    let mu = Tensor::<2>::from_floats([[1.0, -2.0], [0.0, 0.0]], &device);
    let logvar = Tensor::<2>::from_floats([[0.0, 2.0f32.ln()], [0.0, 0.0]], &device);
    let kl = blocks::to_vec(blocks::kl_std_normal(mu, logvar));
    let expect0 = 0.5 * (1.0 + 1.0 - 1.0 - 0.0) + 0.5 * (2.0 + 4.0 - 1.0 - 2.0f32.ln());
    assert!((kl[0] - expect0).abs() < 1e-5, "{} vs {}", kl[0], expect0);
    assert!(kl[1].abs() < 1e-7);
}

#[test]
fn bernoulli_nll_equals_bce_computed_by_hand() {
    let device = Device::flex();
    let logits = [2.0f32, -1.0, 0.0];
    let x = [1.0f32, 0.0, 1.0];
    let got = blocks::to_vec(blocks::bernoulli_nll(
        Tensor::<2>::from_floats([logits], &device),
        Tensor::<2>::from_floats([x], &device),
    ))[0];
    let expect: f32 = logits
        .iter()
        .zip(x)
        .map(|(&l, x)| {
            let p = 1.0 / (1.0 + (-l).exp());
            -(x * p.ln() + (1.0 - x) * (1.0 - p).ln())
        })
        .sum();
    assert!((got - expect).abs() < 1e-5, "{got} vs {expect}");
}

#[test]
fn gaussian_nll_matches_formula() {
    let device = Device::flex();
    let (m, x, s) = ([0.5f32, 0.2], [0.7f32, 0.1], 0.3f32);
    let got = blocks::to_vec(blocks::gaussian_nll(
        Tensor::<2>::from_floats([m], &device),
        Tensor::<2>::from_floats([x], &device),
        Tensor::from_floats([s.ln()], &device),
    ))[0];
    let expect: f32 = m
        .iter()
        .zip(x)
        .map(|(m, x)| 0.5 * ((x - m) / s).powi(2) + s.ln() + 0.5 * (2.0 * std::f32::consts::PI).ln())
        .sum();
    assert!((got - expect).abs() < 1e-4, "{got} vs {expect}");
}

#[test]
fn cvae_decoding_depends_on_the_class() {
    let device = Device::flex();
    let s = spec(ModelKind::Cvae);
    let net = Net::new(&s, 1, &device);
    let z = Tensor::<2>::zeros([2, 3], &device);
    let out = blocks::to_vec(net.decode(&s, z, &[3, 7]));
    let (a, b) = out.split_at(16);
    assert!(a.iter().zip(b).any(|(p, q)| (p - q).abs() > 1e-4), "class had no effect");
}

#[test]
fn conditional_model_needs_labels() {
    let mut s = spec(ModelKind::Cvae);
    s.num_classes = 0;
    assert!(s.validate().unwrap_err().to_string().contains("no class labels"));
}
