//! Colour faces (a few hundred real CelebA faces at 16–32 px): the scaled networks train from the
//! CLI with the defaults chosen for colour images, resume keeps them, the 28×28 networks stay as
//! they were, and a width that cannot apply is refused by name.

mod common;
use common::{cli_env, small_celeba};
use latentlab::config::{Options, RunConfig};
use latentlab::data::ImageShape;
use latentlab::models::gan::{Discriminator, Generator};
use latentlab::models::{Arch, DecoderKind, ModelKind, Net};
use latentlab::run::checkpoint::Checkpoint;
use std::path::Path;

fn cache(dir: &Path) -> [(&'static str, std::path::PathBuf); 1] {
    [("LATENTLAB_CACHE", dir.join("cache"))]
}

fn run(args: &[&str], dir: &Path) -> String {
    let env = cache(dir);
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let (ok, out, err) = cli_env(args, dir, &env);
    assert!(ok, "latentlab {args:?} failed:\n{err}");
    out + &err
}

fn step_values(run: &Path, key: &str) -> Vec<f64> {
    latentlab::train::log::read(&run.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|l| l["kind"] == "step")
        .map(|l| l["train"][key].as_f64().unwrap())
        .collect()
}

/// `train dcgan` on 32 px faces builds Radford's scaled networks (3 up-convolutions from 4×4,
/// D mirroring them), D learns to tell real faces from G's, and `resume` carries on with the same
/// networks.
#[test]
fn scaled_dcgan_trains_on_faces_and_resumes_with_its_networks() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_celeba(dir.path(), 300);
    let out = dir.path().join("gan");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let common = ["--image-size", "32", "--width", "8", "--batch-size", "16", "--log-every", "5"];
    let mut args = vec!["train", "dcgan", "--dataset", d, "--out", o, "--max-steps", "30", "--ema", "0.999"];
    args.extend(common);
    run(&args, dir.path());
    let ck = Checkpoint::load(&out.join("checkpoints/latest.ckpt")).unwrap();
    let spec = &ck.meta.spec;
    assert_eq!(spec.shape, ImageShape { channels: 3, height: 32, width: 32 });
    assert_eq!((spec.width, spec.d_conv3), (Some(8), false));
    let Net::Gan(m) = Net::new(spec, 0, &burn::prelude::Device::flex()) else { panic!("not a GAN") };
    let (Generator::Scaled(g), Discriminator::Scaled(dd)) = (&m.g, &m.d) else { panic!("not the scaled networks") };
    assert_eq!((g.ups.len(), dd.body.downs.len()), (3, 3));
    // D separates real faces from G's early in the game.
    let (real, fake) = (step_values(&out, "d_real"), step_values(&out, "d_fake"));
    let last = real.len() - 1;
    assert!(real[last] > fake[last] + 0.2, "D(x) {} vs D(G(z)) {}", real[last], fake[last]);

    run(&["resume", o, "--max-steps", "40"], dir.path());
    let after = Checkpoint::load(&out.join("checkpoints/latest.ckpt")).unwrap();
    assert_eq!((after.meta.state.step, after.meta.spec.width), (40, Some(8)));
    let png = image::open(out.join("final/samples.png")).unwrap();
    assert!(png.color().has_color(), "face samples are saved in colour");

    // With G's weight average, --no-average samples G itself, and differs.
    assert_eq!(after.meta.spec.ema, Some(0.999));
    let npy = |extra: &[&str], name: &str| {
        let p = dir.path().join(name);
        let mut args = vec!["sample", o, "--n", "8", "--out", p.to_str().unwrap()];
        args.extend(extra);
        run(&args, dir.path());
        std::fs::read(p).unwrap()
    };
    assert_ne!(npy(&[], "avg.npy"), npy(&["--no-average"], "raw.npy"));
    let env = cache(dir.path());
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let plain = dir.path().join("plain");
    let p = plain.to_str().unwrap();
    let mut args = vec!["train", "dcgan", "--dataset", d, "--out", p, "--max-steps", "2", "--ema", "0"];
    args.extend(common);
    run(&args, dir.path());
    let (ok, _, err) = cli_env(&["sample", p, "--no-average"], dir.path(), &env);
    assert!(!ok && err.contains("keeps no weight average"), "{err}");
}

/// `train vae` on colour faces gets the recipe for them without being told: the scaled conv
/// bodies, a Gaussian decoder on raw levels (Bernoulli pixels of a photograph mean nothing), and
/// its loss falls.
#[test]
fn vae_on_faces_defaults_to_the_scaled_conv_gaussian_recipe_and_learns() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_celeba(dir.path(), 300);
    let out = dir.path().join("vae");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    run(
        &[
            "train",
            "vae",
            "--dataset",
            d,
            "--out",
            o,
            "--image-size",
            "16",
            "--width",
            "8",
            "--max-steps",
            "80",
            "--log-every",
            "10",
        ],
        dir.path(),
    );
    let cfg = RunConfig::from_toml(&std::fs::read_to_string(out.join("config.toml")).unwrap(), &out).unwrap();
    assert_eq!(
        (cfg.arch, cfg.decoder, cfg.binarize),
        (Arch::Conv, DecoderKind::Gaussian, latentlab::data::Binarize::None)
    );
    let spec = Checkpoint::load(&out.join("checkpoints/latest.ckpt")).unwrap().meta.spec;
    assert_eq!(spec.width, Some(8));
    let loss = step_values(&out, "loss");
    assert!(loss.last().unwrap() < &(loss[0] - 100.0), "−ELBO did not fall: {loss:?}");
}

/// The 28×28 networks are the ones measured before the scaled bodies: no width in their spec,
/// D keeps its 3×3 layer; square 16–256 px images get the scaled ones without it.
#[test]
fn only_the_scaled_sizes_get_the_scaled_networks() {
    let cfg = RunConfig::resolve(ModelKind::Dcgan, Options::default()).unwrap();
    let spec = |s| latentlab::train::trainer::spec_of(&cfg, ImageShape { channels: 1, height: s, width: s }, 0);
    assert_eq!((spec(28).width, spec(28).d_conv3), (None, true));
    assert_eq!((spec(64).width, spec(64).d_conv3), (Some(32), false));
    assert_eq!(spec(48).width, None);
    let vae = RunConfig::resolve(ModelKind::Vae, Options::default()).unwrap();
    let s64 = ImageShape { channels: 3, height: 64, width: 64 };
    assert_eq!(latentlab::train::trainer::spec_of(&vae, s64, 0).width, None, "an MLP VAE has no conv body");
    let faces = RunConfig::resolve_for(ModelKind::Vae, Options::default(), s64).unwrap();
    assert_eq!((faces.arch, faces.decoder), (Arch::Conv, DecoderKind::Gaussian));
    let digits =
        RunConfig::resolve_for(ModelKind::Vae, Options::default(), ImageShape { channels: 1, height: 28, width: 28 });
    assert_eq!(digits.unwrap(), vae, "28×28 grey images keep the measured recipe");
    let given = Options { decoder: Some(DecoderKind::Bernoulli), ..Default::default() };
    assert_eq!(RunConfig::resolve_for(ModelKind::Vae, given, s64).unwrap().decoder, DecoderKind::Bernoulli);
}

#[test]
fn a_width_that_cannot_apply_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let env = cache(dir.path());
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let (ok, _, err) =
        cli_env(&["train", "dcgan", "--dataset", "digits", "--width", "32", "--max-steps", "1"], dir.path(), &env);
    assert!(!ok);
    assert!(err.contains("--width") && err.contains("8×8"), "{err}");
    let (ok, _, err) = cli_env(&["train", "gan", "--width", "32"], dir.path(), &env);
    assert!(!ok);
    assert!(err.contains("--width does not apply to model 'gan'"), "{err}");
}

/// `compare` on two small face runs: both evaluated in the face feature network (attribute gap
/// beside FID), the paper's arithmetic checked by the attribute classifier, and a report that
/// Chromium renders with every colour picture decoded.
#[test]
fn compare_on_face_runs_reports_attributes_and_renders() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_celeba(dir.path(), 400);
    let d = data.to_str().unwrap();
    let common = ["--image-size", "16", "--width", "8", "--batch-size", "32", "--log-every", "10"];
    for (model, steps) in [("vae", "120"), ("dcgan", "120")] {
        let out = dir.path().join(model);
        let mut args = vec!["train", model, "--dataset", d, "--out", out.to_str().unwrap(), "--max-steps", steps];
        args.extend(common);
        run(&args, dir.path());
    }
    let out = run(&["compare", "vae", "dcgan", "--out", "cmp/report.html"], dir.path());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cmp/report.json")).unwrap()).unwrap();
    for r in json["runs"].as_array().unwrap() {
        let gap = r["eval"]["attribute_gap"].as_f64();
        assert!(gap.is_some_and(|g| (0.0..=1.0).contains(&g)), "no attribute gap for {}: {out}", r["model"]);
        assert!(r["eval"]["fid"].is_number());
    }
    // The VAE's groups come from annotated test faces; the paper's arithmetic is checked.
    let read = |p: &Path| -> serde_json::Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let checked = read(&dir.path().join("vae/final/arithmetic.json"));
    assert_eq!(checked["result"]["wanted"], "Smiling,Male");
    assert_eq!(checked["groups"][0]["wanted"], "Smiling,-Male");
    assert_eq!(checked["result"]["images"], 5);
    assert!((0.0..=1.0).contains(&checked["result"]["all"].as_f64().unwrap()));
    // A GAN's groups are the samples the classifier sorts into them (a barely trained one may make
    // no smiling women: then compare says so and draws none); groups most faces fall into work.
    let dcgan_json = dir.path().join("dcgan/final/arithmetic.json");
    assert!(dcgan_json.is_file() || out.contains("no arithmetic picture for dcgan"), "{out}");
    let png = dir.path().join("gan-arith.png");
    let args = ["arithmetic", "dcgan", "--a", "attr:-Eyeglasses", "--b", "attr:-Bald", "--c", "attr:-Wearing_Hat"];
    let said = run(&[&args[..], &["--out", png.to_str().unwrap()]].concat(), dir.path());
    let checked = read(&png.with_extension("json"));
    assert_eq!(checked["result"]["wanted"], "-Eyeglasses,Bald,-Wearing_Hat", "{said}");
    assert!(checked["protocol"].as_str().unwrap().contains("the classifier puts in each"));
    let html_path = dir.path().join("cmp/report.html");
    let Some(browser) = common::cdp::chromium() else { return };
    let page = format!("file://{}", html_path.canonicalize().unwrap().display());
    let dom = std::process::Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom"])
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg(page)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    let n = std::fs::read_to_string(&html_path).unwrap().matches("src=\"data:image/png;base64,").count();
    assert!(n >= 8 && dom.contains(&format!("data-images=\"{n}/{n}\"")), "not every picture rendered ({n})");
}
