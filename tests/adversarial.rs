//! The adversarial family on real data: the game moves the right way, detach isolates G, batch norm
//! statistics update only in training, conditioning works, runs resume exactly.

mod common;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use common::{cli, quick_config, shared_data, train_run};
use latentlab::config::Options;
use latentlab::data::ImageShape;
use latentlab::models::blocks::{matrix, to_vec};
use latentlab::models::game::GameLoss;
use latentlab::models::gan::{Adversary, Discriminator, Generator};
use latentlab::models::{DecoderKind, ModelKind, ModelSpec, Net, Prior};
use latentlab::train::adversarial::bce_logits;
use latentlab::train::log;

fn spec(kind: ModelKind, shape: ImageShape) -> ModelSpec {
    ModelSpec {
        kind,
        shape,
        num_classes: 10,
        latent_dim: 8,
        hidden: vec![],
        decoder: DecoderKind::Bernoulli,
        decoder_sigma: None,
        beta: 1.0,
        prior: Prior::Gaussian,
        arch: Default::default(),
        objective: Default::default(),
        d_conv3: kind.decl().d_conv3,
        ema: None,
        width: None,
        text: None,
        condition: None,
    }
}

fn adversary(kind: ModelKind, shape: ImageShape, device: &Device) -> Adversary {
    match Net::new(&spec(kind, shape), 3, device) {
        Net::Gan(m) => m,
        _ => unreachable!(),
    }
}

fn steps(run: &std::path::Path) -> Vec<serde_json::Value> {
    log::read(&run.join("metrics.jsonl")).unwrap().into_iter().filter(|l| l["kind"] == "step").collect()
}

#[test]
fn gan_game_moves_the_right_way_on_mnist() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("gan");
    let cfg = quick_config(
        ModelKind::Gan,
        "mnist",
        Options { max_steps: Some(60), log_every: Some(20), ..Default::default() },
    );
    let s = train_run(&run, &cfg);
    let l = steps(&run);
    // Early on D separates real from fake: D(x) above D(G(z)).
    let (dr, df) = (l[0]["train"]["d_real"].as_f64().unwrap(), l[0]["train"]["d_fake"].as_f64().unwrap());
    assert!(dr > df + 0.05, "D(x) {dr} vs D(G(z)) {df}");
    for k in ["d_loss", "g_loss", "d_grad_norm", "g_grad_norm"] {
        assert!(l[2]["train"][k].as_f64().unwrap().is_finite(), "{k} missing");
    }
    assert!(s["test"]["d_real"].as_f64().unwrap() > 0.0);
    assert!(run.join("final/d_outputs.png").is_file() && run.join("final/samples.png").is_file());
}

#[test]
fn dcgan_and_cgan_and_aae_train_on_real_data() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("dcgan");
    let cfg =
        quick_config(ModelKind::Dcgan, "digits", Options { epochs: Some(2), log_every: Some(8), ..Default::default() });
    train_run(&run, &cfg);
    let l = steps(&run);
    let first = &l[0]["train"];
    assert!(first["d_real"].as_f64().unwrap() > first["d_fake"].as_f64().unwrap(), "{first}");

    let run = dir.path().join("aae");
    let cfg = quick_config(
        ModelKind::Aae,
        "mnist",
        Options { max_steps: Some(150), log_every: Some(50), hidden: Some(vec![256]), ..Default::default() },
    );
    train_run(&run, &cfg);
    let r: Vec<f64> = steps(&run).iter().map(|l| l["train"]["recon"].as_f64().unwrap()).collect();
    assert!(r[0] > r[2] + 20.0, "AAE reconstruction did not fall: {r:?}");

    let run = dir.path().join("cgan");
    let cfg = quick_config(ModelKind::Cgan, "digits", Options { epochs: Some(1), ..Default::default() });
    train_run(&run, &cfg);
    let cwd = dir.path();
    let (ok, _, err) = cli(&["sample", "cgan", "--class", "3", "--n", "4", "--out", "c3.npy"], cwd);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&["sample", "cgan", "--class", "8", "--n", "4", "--out", "c8.npy"], cwd);
    assert!(ok, "{err}");
    let (d3, a) = latentlab::viz::grid::read_npy(&cwd.join("c3.npy")).unwrap();
    let (_, b) = latentlab::viz::grid::read_npy(&cwd.join("c8.npy")).unwrap();
    assert_eq!(d3, vec![4, 1, 8, 8]);
    assert!(a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 1e-3), "the class had no effect on the samples");
    // A GAN has no encoder: commands that need one say so.
    let (ok, _, err) = cli(&["latent-map", "cgan"], cwd);
    assert!(!ok && err.contains("no encoder"), "{err}");
    let (ok, _, err) = cli(&["walk", "cgan", "--rows", "3", "--steps", "5", "--slerp", "--out", "w.png"], cwd);
    assert!(ok, "{err}");
    // Arithmetic on a GAN picks codes from a sample sheet; label groups need an encoder.
    let (ok, _, err) = cli(
        &["arithmetic", "cgan", "--a", "sample:0,1", "--b", "sample:2", "--c", "sample:3,4", "--out", "a.png"],
        cwd,
    );
    assert!(ok, "{err}");
    assert!(cwd.join("a.png").is_file());
    let (ok, _, err) = cli(&["arithmetic", "cgan", "--a", "label:1", "--b", "sample:2", "--c", "sample:3"], cwd);
    assert!(!ok && err.contains("needs an encoder"), "{err}");
    let w = image::open(cwd.join("w.png")).unwrap();
    // 8×8 images scaled ×7 = 56 px, 2 px gutters: 5 columns, 3 rows.
    assert_eq!((w.width(), w.height()), (5 * 58 + 2, 3 * 58 + 2));
}

#[test]
fn detach_keeps_the_d_step_away_from_g() {
    let device = Device::flex().autodiff();
    let shape = ImageShape { channels: 1, height: 28, width: 28 };
    let m = adversary(ModelKind::Gan, shape, &device);
    let x = Tensor::<2>::ones([4, 784], &device);
    let z = Tensor::<2>::ones([4, 8], &device);
    let g_weight = |m: &Adversary| match &m.g {
        Generator::Mlp(g) => g.net.layers[0].weight.val(),
        _ => unreachable!(),
    };
    // The training step's own D loss: no gradient may reach G through the fake images.
    for game in [GameLoss::NonSaturating, GameLoss::LeastSquares] {
        let fake = m.generate(z.clone(), None);
        let (loss, _, _) = latentlab::train::adversarial::d_loss(&m, x.clone(), fake, None, game, 1.0);
        let grads = loss.backward();
        assert!(g_weight(&m).grad(&grads).is_none(), "{game:?}: D's loss reached G");
        assert!(!GradientsParams::from_grads(grads, &m.d).is_empty(), "{game:?}: D got no gradient");
    }
    // Without the detach the same loss does reach G (so the check above can fail).
    let fake = m.generate(z, None);
    let loss = bce_logits(m.discriminate(x, None), 1.0) + bce_logits(m.discriminate(fake, None), 0.0);
    assert!(g_weight(&m).grad(&loss.backward()).is_some());
}

#[test]
fn batch_norm_statistics_update_only_in_training() {
    let device = Device::flex().autodiff();
    let shape = ImageShape { channels: 1, height: 8, width: 8 };
    let m = adversary(ModelKind::Dcgan, shape, &device);
    let bn_mean = |m: &Adversary| match &m.d {
        Discriminator::Conv(d) => to_vec(d.bn2.running_mean.value_sync()),
        _ => unreachable!(),
    };
    let before = bn_mean(&m);
    let x = matrix((0..4 * 64).map(|i| (i % 7) as f32 / 7.0).collect(), 4, 64, &device);
    let eval = m.valid();
    let _ =
        eval.discriminate(matrix((0..4 * 64).map(|i| (i % 7) as f32 / 7.0).collect(), 4, 64, &Device::flex()), None);
    assert_eq!(bn_mean(&eval), before, "evaluation changed the running mean");
    let _ = m.discriminate(x, None);
    assert_ne!(bn_mean(&m), before, "training forward did not update the running mean");
}

#[test]
fn mixture_prior_puts_codes_on_the_circle() {
    let mut r = latentlab::util::rng(1, latentlab::util::Stream::Sample, 0);
    let z = latentlab::models::prior::sample_prior(Prior::Mixture, 2000, 2, &mut r);
    let radii: Vec<f32> = z.chunks(2).map(|p| (p[0] * p[0] + p[1] * p[1]).sqrt()).collect();
    let near = radii.iter().filter(|&&r| (r - 4.0).abs() < 1.5).count();
    assert!(near > 1900, "{near} of 2000 draws near radius 4");
    let mean_r = radii.iter().sum::<f32>() / 2000.0;
    assert!((mean_r - 4.0).abs() < 0.1, "{mean_r}");
}

/// `--prior mixture` for a GAN: G's training codes come from the run's prior (with the same seed,
/// and so the same initial weights and batches, the first step's D(G(z)) differs from a Gaussian
/// run's), the run keeps its prior, and the loaded model samples from it.
#[test]
fn gan_trains_and_samples_from_its_prior() {
    let dir = tempfile::tempdir().unwrap();
    let train = |prior, name: &str| {
        let run = dir.path().join(name);
        let opts =
            Options { max_steps: Some(2), log_every: Some(1), prior: Some(prior), seed: Some(2), ..Default::default() };
        train_run(&run, &quick_config(ModelKind::Dcgan, "digits", opts));
        run
    };
    let (gauss, mix) = (train(Prior::Gaussian, "gaussian"), train(Prior::Mixture, "mixture"));
    let d_fake = |run: &std::path::Path| steps(run)[0]["train"]["d_fake"].as_f64().unwrap();
    assert_ne!(d_fake(&gauss), d_fake(&mix), "G's first batch did not come from the mixture");
    let model = latentlab::run::load_model(&mix, latentlab::run::Which::Latest, &Device::flex()).unwrap().1;
    assert_eq!(model.spec.prior, Prior::Mixture);
    let z = model.prior(500, &mut latentlab::util::rng(0, latentlab::util::Stream::Sample, 0));
    let l = model.spec.latent_dim;
    let on_circle = z.chunks(l).filter(|c| ((c[0] * c[0] + c[1] * c[1]).sqrt() - 4.0).abs() < 1.5).count();
    assert!(on_circle > 480, "{on_circle} of 500 sample codes near the mixture's circle");
}

#[test]
fn adversarial_resume_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = |max_steps| {
        quick_config(
            ModelKind::Dcgan,
            "digits",
            Options { epochs: Some(2), max_steps, log_every: Some(5), seed: Some(4), ..Default::default() },
        )
    };
    let full = dir.path().join("full");
    train_run(&full, &cfg(None));
    let part = dir.path().join("part");
    train_run(&part, &cfg(Some(30))); // 24 batches per epoch: stops mid-epoch 2
    let (rd, mut c) = latentlab::run::RunDir::open(&part).unwrap();
    c.max_steps = None;
    let ck = latentlab::run::checkpoint::Checkpoint::load(&rd.latest()).unwrap();
    let data = latentlab::data::load("digits", Some(&shared_data())).unwrap();
    latentlab::train::train(&rd, &c, &data, Some(ck)).unwrap();
    let w = |r: &std::path::Path| {
        latentlab::run::load_model(r, latentlab::run::Which::Latest, &Device::flex()).unwrap().1.net.param_values()
    };
    assert_eq!(w(&full), w(&part));
    let strip = |r: &std::path::Path| -> Vec<serde_json::Value> {
        log::read(&r.join("metrics.jsonl"))
            .unwrap()
            .into_iter()
            .map(|mut v| {
                v.as_object_mut().unwrap().retain(|k, _| k != "epoch_secs" && k != "samples_per_sec");
                v
            })
            .collect()
    };
    assert_eq!(strip(&full), strip(&part));
}

/// A DCGAN run written before D's 3×3 layer resumes with the two-conv D it trained (its checkpoint
/// says so), not with the one `train dcgan` builds now, and keeps it in its new checkpoints.
#[test]
fn a_dcgan_run_from_before_the_3x3_layer_resumes_with_its_own_d() {
    use latentlab::run::checkpoint::{Checkpoint, encode_optims};
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("old");
    let cfg = |max_steps| {
        quick_config(
            ModelKind::Dcgan,
            "digits",
            Options { epochs: Some(2), max_steps: Some(max_steps), seed: Some(4), ..Default::default() },
        )
    };
    train_run(&run, &cfg(10));
    let (rd, mut c) = latentlab::run::RunDir::open(&run).unwrap();
    // Rewrite the checkpoint as an older release wrote it: two-conv D, spec without the flag.
    let mut ck = Checkpoint::load(&rd.latest()).unwrap();
    assert!(ck.meta.spec.d_conv3, "train dcgan builds D with its 3×3 layer");
    ck.meta.spec.d_conv3 = false;
    ck.model = Net::new(&ck.meta.spec, 4, &Device::flex()).into_record().into_bytes().unwrap().to_vec();
    let fresh = || latentlab::train::optim::FusedAdam::new(0.5).init();
    ck.optim = encode_optims(&[fresh(), fresh()]).unwrap();
    ck.save(&rd.latest()).unwrap();
    c.max_steps = Some(20);
    let data = latentlab::data::load("digits", Some(&shared_data())).unwrap();
    latentlab::train::train(&rd, &c, &data, Some(Checkpoint::load(&rd.latest()).unwrap())).unwrap();
    let after = Checkpoint::load(&rd.latest()).unwrap();
    assert_eq!((after.meta.state.step, after.meta.spec.d_conv3), (20, false));
    let (_, model, ..) = latentlab::run::load_model(&run, latentlab::run::Which::Latest, &Device::flex()).unwrap();
    let Net::Gan(Adversary { d: Discriminator::Conv(d), .. }) = model.net else { panic!("not a DCGAN") };
    assert!(d.conv3.is_none());
}

/// With `--ema`, samples come from the weight average: after each G update the average moves by
/// (1 − decay) toward G, `decode` (what sample, eval and the pictures call) uses it, and a
/// checkpoint restores it — resuming gives the same average as an uninterrupted run.
#[test]
fn ema_generator_is_what_samples_use_and_checkpoints_restore() {
    let device = Device::flex();
    let shape = ImageShape { channels: 1, height: 8, width: 8 };
    let spec = ModelSpec { ema: Some(0.9), ..spec(ModelKind::Dcgan, shape) };
    let Net::Gan(m) = Net::new(&spec, 3, &device) else { unreachable!() };
    let avg0 = latentlab::models::blocks::param_values(m.g_ema.as_ref().unwrap());
    assert_eq!(avg0, latentlab::models::blocks::param_values(&m.g), "the average starts at G");
    // Move G, then blend: avg = 0.9·avg0 + 0.1·g.
    let moved = m.g.clone().map(&mut Shift(0.5));
    let g1 = latentlab::models::blocks::param_values(&moved);
    let m = Adversary { g: moved, ..m }.update_ema(0.9);
    let avg1 = latentlab::models::blocks::param_values(m.g_ema.as_ref().unwrap());
    for ((a, g), a0) in avg1.iter().zip(&g1).zip(&avg0) {
        assert!((a - (0.9 * a0 + 0.1 * g)).abs() < 1e-5, "{a} vs 0.9·{a0} + 0.1·{g}");
    }
    let z = matrix((0..2 * 8).map(|i| (i % 5) as f32 * 0.3 - 0.6).collect(), 2, 8, &device);
    let net = Net::Gan(m);
    let Net::Gan(m) = &net else { unreachable!() };
    let from_net = to_vec(net.decode(&spec, z.clone(), &[]));
    let from_avg = to_vec((m.g_ema.as_ref().unwrap().forward(z.clone()) + 1.0) * 0.5);
    let from_g = to_vec((m.g.forward(z) + 1.0) * 0.5);
    assert_eq!(from_net, from_avg);
    assert_ne!(from_net, from_g);

    // Resume with an average: the same weights, average included, as one uninterrupted run.
    let dir = tempfile::tempdir().unwrap();
    let cfg = |max_steps| {
        quick_config(
            ModelKind::Dcgan,
            "digits",
            Options {
                epochs: Some(2),
                max_steps,
                ema: Some(0.95),
                log_every: Some(5),
                seed: Some(5),
                ..Default::default()
            },
        )
    };
    let (full, part) = (dir.path().join("full"), dir.path().join("part"));
    train_run(&full, &cfg(None));
    train_run(&part, &cfg(Some(30)));
    let (rd, mut c) = latentlab::run::RunDir::open(&part).unwrap();
    c.max_steps = None;
    let ck = latentlab::run::checkpoint::Checkpoint::load(&rd.latest()).unwrap();
    let data = latentlab::data::load("digits", Some(&shared_data())).unwrap();
    latentlab::train::train(&rd, &c, &data, Some(ck)).unwrap();
    let load = |r: &std::path::Path| latentlab::run::load_model(r, latentlab::run::Which::Latest, &device).unwrap().1;
    let (a, b) = (load(&full), load(&part));
    let avg = |m: &latentlab::models::Model| match &m.net {
        Net::Gan(g) => latentlab::models::blocks::param_values(g.g_ema.as_ref().expect("an average")),
        _ => unreachable!(),
    };
    assert_eq!(avg(&a), avg(&b));
    assert_eq!(a.net.param_values(), b.net.param_values());
}

/// Adds a constant to every parameter.
struct Shift(f64);
impl burn::module::ModuleMapper for Shift {
    fn map_float<const D: usize>(&mut self, p: burn::module::Param<Tensor<D>>) -> burn::module::Param<Tensor<D>> {
        let s = self.0;
        p.map(|t| t.add_scalar(s))
    }
}

/// A DCGAN conditioned on attributes trains its projection D matching-aware: D's loss is the real
/// term, half the fake term and half the term of real images given another image's condition
/// (the batch's conditions shifted by one), each recomputed here from D's own outputs.
#[test]
fn a_projected_d_also_learns_that_real_images_with_wrong_conditions_are_fake() {
    let device = Device::flex();
    let shape = ImageShape { channels: 3, height: 16, width: 16 };
    let condition = latentlab::models::Condition::Attributes {
        names: vec!["Male".into(), "Smiling".into()],
        rates: vec![0.4, 0.5],
        examples: vec!["10".into()],
    };
    let spec = ModelSpec { width: Some(4), condition: Some(condition), ..spec(ModelKind::Dcgan, shape) };
    let Net::Gan(mut m) = Net::new(&spec, 5, &device) else { unreachable!() };
    let Discriminator::ScaledProjected(p) = &mut m.d else { panic!("not a projection D") };
    // Give the projection weights so that the condition matters (it starts at zero).
    p.embed.weight = burn::module::Param::from_tensor(p.embed.weight.val().ones_like().mul_scalar(5.0));
    let b = 4;
    // The pixels need not be faces: any images of a shape D takes.
    let pixels: Vec<f32> = (0..b * shape.len()).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let x = matrix(pixels.clone(), b, shape.len(), &device);
    let fake = matrix(pixels.iter().map(|v| -v).collect(), b, shape.len(), &device);
    let rows = vec![1.0, -1.0, -1.0, 1.0, 1.0, 1.0, -1.0, -1.0];
    let cond = matrix(rows.clone(), b, 2, &device);
    let game = GameLoss::NonSaturating;
    let (loss, lr, lf) = latentlab::train::adversarial::d_loss(&m, x.clone(), fake, Some(cond), game, 1.0);
    let shifted: Vec<f32> = rows[2..].iter().chain(&rows[..2]).copied().collect();
    let lw = m.discriminate(x, Some(matrix(shifted, b, 2, &device)));
    let want = to_vec(bce_logits(lr.clone(), 1.0))[0]
        + 0.5 * to_vec(bce_logits(lf, 0.0))[0]
        + 0.5 * to_vec(bce_logits(lw, 0.0))[0];
    let got = to_vec(loss)[0];
    assert!((got - want).abs() < 1e-5, "D's loss {got}, real + ½ fake + ½ mismatched = {want}");
}
