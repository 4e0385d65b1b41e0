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
        condition: None,
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
    let out = blocks::to_vec(net.decode(&s, z, &s.class_rows_of(&[3, 7])));
    let (a, b) = out.split_at(16);
    assert!(a.iter().zip(b).any(|(p, q)| (p - q).abs() > 1e-4), "class had no effect");
}

#[test]
fn conditional_model_needs_labels() {
    let mut s = spec(ModelKind::Cvae);
    s.num_classes = 0;
    assert!(s.validate().unwrap_err().to_string().contains("no class labels"));
}

/// An attribute condition on two attributes, with made-up rates and example rows.
fn two_attributes() -> Condition {
    Condition::Attributes {
        names: vec!["Smiling".into(), "Male".into()],
        rates: vec![0.5, 0.25],
        examples: vec!["10".into(), "01".into()],
    }
}

#[test]
fn attribute_conditioned_dcgans_draw_and_judge_by_the_attributes() {
    let device = Device::flex();
    // The scaled 16×16 colour network and the fixed 28×28 one, both conditioned by projection.
    for (shape, width) in [
        (ImageShape { channels: 3, height: 16, width: 16 }, Some(4)),
        (ImageShape { channels: 1, height: 28, width: 28 }, None),
    ] {
        let s = ModelSpec { shape, width, condition: Some(two_attributes()), latent_dim: 5, ..spec(ModelKind::Dcgan) };
        s.validate().unwrap();
        assert_eq!(s.cond_dim(), 2);
        let Net::Gan(m) = Net::new(&s, 3, &device) else { panic!("a GAN") };
        assert!(matches!(m.d, gan::Discriminator::ScaledProjected(_) | gan::Discriminator::ConvProjected(_)));
        let z = Tensor::<2>::zeros([2, 5], &device);
        let smiling = s.cond_rows(&condition::Request::Attrs(vec![("Smiling".into(), true)]), 2).unwrap();
        let not = s.cond_rows(&condition::Request::Attrs(vec![("smiling".into(), false)]), 2).unwrap();
        assert_eq!(smiling, vec![1.0, -0.5, 1.0, -0.5], "unnamed attributes sit at 2·rate − 1");
        let net = Net::Gan(m);
        let (a, b) = (blocks::to_vec(net.decode(&s, z.clone(), &smiling)), blocks::to_vec(net.decode(&s, z, &not)));
        assert!(a.iter().zip(&b).any(|(p, q)| (p - q).abs() > 1e-5), "{shape:?}: the attributes had no effect on G");
        let Net::Gan(mut m) = net else { unreachable!() };
        let pixels = crate::util::normal_vec(&mut crate::util::rng(1, crate::util::Stream::Sample, 0), 2 * shape.len());
        let x = blocks::matrix(pixels, 2, shape.len(), &device);
        let c = |r: &[f32]| Some(blocks::matrix(r.to_vec(), 2, 2, &device));
        let judge = |m: &gan::Adversary| {
            (blocks::to_vec(m.discriminate(x.clone(), c(&smiling))), blocks::to_vec(m.discriminate(x.clone(), c(&not))))
        };
        // The projection starts at zero: D starts as the unconditional D...
        let (da, db) = judge(&m);
        assert_eq!(da, db, "{shape:?}: D's projection does not start at zero");
        // ...and judges by the condition once the projection has weights.
        let embed = match &mut m.d {
            gan::Discriminator::ScaledProjected(p) => &mut p.embed,
            gan::Discriminator::ConvProjected(p) => &mut p.embed,
            _ => unreachable!(),
        };
        embed.weight = burn::module::Param::from_tensor(embed.weight.val().ones_like());
        let (da, db) = judge(&m);
        assert!(da.iter().zip(&db).any(|(p, q)| (p - q).abs() > 1e-6), "{shape:?}: D ignores the condition");
    }
}

#[test]
fn conditions_come_from_the_data_the_request_or_the_kept_rows() {
    let s = ModelSpec { condition: Some(two_attributes()), ..spec(ModelKind::Cvae) };
    let data = crate::data::Dataset {
        images: vec![0; 3 * 16],
        labels: None,
        n: 3,
        shape: s.shape,
        num_classes: 0,
        attributes: Some(crate::data::Attributes {
            names: vec!["Male".into(), "Eyeglasses".into(), "Smiling".into()],
            values: vec![1, 0, 0, 0, 1, 1, 1, 1, 1],
        }),
    };
    // Columns are matched by name, in the model's order (Smiling, Male).
    assert_eq!(s.cond_of_data(&data, &[2, 0]), vec![1.0, 1.0, -1.0, 1.0]);
    assert_eq!(s.cond_default(3), vec![1.0, -1.0, -1.0, 1.0, 1.0, -1.0]);
    let e = s.cond_rows(&condition::Request::Attrs(vec![("Bald".into(), true)]), 1).unwrap_err().to_string();
    assert!(e.contains("not conditioned on 'Bald'") && e.contains("Smiling, Male"), "{e}");
    let e = s.cond_rows(&condition::Request::Class(1), 1).unwrap_err().to_string();
    assert!(e.contains("--class needs a class-conditional model"), "{e}");
    // A class model refuses attributes, and its one-hot rows are what they always were.
    let c = spec(ModelKind::Cgan);
    assert_eq!(c.cond_rows(&condition::Request::Class(2), 1).unwrap(), blocks::one_hot_host(&[2], 10));
    assert!(c.cond_rows(&condition::Request::Attrs(vec![]), 1).unwrap_err().to_string().contains("--attr needs"));
}

#[test]
fn specs_written_before_conditions_were_stored_read_as_their_kind_implies() {
    let mut v = serde_json::to_value(spec(ModelKind::Cgan)).unwrap();
    assert!(v.get("condition").is_none(), "an implied condition is not written");
    v.as_object_mut().unwrap().remove("condition");
    let old: ModelSpec = serde_json::from_value(v).unwrap();
    assert_eq!(*old.condition(), Condition::Class { classes: 10 });
    assert_eq!(old.cond_dim(), 10);
    assert_eq!(spec(ModelKind::Dcgan).cond_dim(), 0);
    let with = ModelSpec { condition: Some(two_attributes()), ..spec(ModelKind::Cvae) };
    let back: ModelSpec = serde_json::from_str(&serde_json::to_string(&with).unwrap()).unwrap();
    assert_eq!(back, with);
}
