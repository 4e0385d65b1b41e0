//! Conditioning on attributes, end to end on a few hundred real CelebA faces at 16 px: a cVAE on a
//! dataset with attributes and no classes conditions on all 40 by default and learns to use them;
//! a DCGAN conditioned on named attributes gets a projection discriminator, samples and walks with
//! `--attr`, resumes, and is scored for agreement with its conditions; every misuse of
//! `--condition`, `--attr` and `--class` is an error naming it, and leaves no run folder behind.

mod common;
use common::{cli_env, small_celeba};
use latentlab::models::gan::Discriminator;
use latentlab::models::{Condition, Net};
use latentlab::run::Which;
use latentlab::run::checkpoint::Checkpoint;
use std::path::Path;

fn env(dir: &Path) -> [(&'static str, std::path::PathBuf); 1] {
    [("LATENTLAB_CACHE", dir.join("cache"))]
}

fn cli(args: &[&str], dir: &Path) -> (bool, String) {
    let e = env(dir);
    let e: Vec<(&str, &Path)> = e.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let (ok, out, err) = cli_env(args, dir, &e);
    (ok, out + &err)
}

fn run(args: &[&str], dir: &Path) -> String {
    let (ok, out) = cli(args, dir);
    assert!(ok, "latentlab {args:?} failed:\n{out}");
    out
}

fn fails(args: &[&str], dir: &Path, wants: &[&str]) {
    let (ok, out) = cli(args, dir);
    assert!(!ok, "latentlab {args:?} should fail");
    for w in wants {
        assert!(out.contains(w), "latentlab {args:?}: the error should say '{w}':\n{out}");
    }
    assert!(!out.contains("panicked"), "{out}");
}

/// Held-out −ELBO of a run's model on its test faces, with their own attribute rows or with
/// every row replaced by another face's.
fn test_loss(run_dir: &Path, cache: &Path, shuffled: bool) -> f64 {
    let device = burn::prelude::Device::flex();
    let (cfg, model, _, _) = latentlab::run::load_model(run_dir, Which::Latest, &device).unwrap();
    let data = latentlab::data::celeba::load(Path::new(&cfg.dataset), cfg.image_size, None, Some(cache)).unwrap();
    let test = &data.test;
    let mut idx: Vec<usize> = (0..test.n).collect();
    if shuffled {
        idx.rotate_left(test.n / 2);
    }
    let cond = model.spec.cond_of_data(test, &idx);
    let loader =
        latentlab::data::Loader::new(test, test.n, latentlab::data::Binarize::None, model.spec.kind.range(), 0);
    let b = &loader.eval_batches(test.n)[0];
    let l = model.spec.latent_dim;
    let x = latentlab::models::blocks::matrix(b.x.clone(), b.n, model.spec.shape.len(), &device);
    let eps = latentlab::models::blocks::matrix(vec![0.0; b.n * l], b.n, l, &device);
    let losses = model.net.losses(&model.spec, x, &cond, eps);
    losses.values()[0].1
}

/// A cVAE on CelebA (attributes, no classes) conditions on all 40 attributes without being told,
/// and after a short run its decoder uses them: the test faces' −ELBO with their own attributes is
/// lower than with another face's.
#[test]
fn a_cvae_on_faces_conditions_on_their_attributes_and_uses_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_celeba(dir.path(), 400);
    let out = dir.path().join("cvae");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let size = ["--image-size", "16", "--width", "8", "--batch-size", "32", "--log-every", "10"];
    let mut args = vec!["train", "cvae", "--dataset", d, "--out", o, "--max-steps", "150", "--seed", "3"];
    args.extend(size);
    run(&args, dir.path());
    let spec = Checkpoint::load(&out.join("checkpoints/latest.ckpt")).unwrap().meta.spec;
    let Condition::Attributes { names, rates, examples } = &*spec.condition() else {
        panic!("not conditioned on attributes: {:?}", spec.condition())
    };
    assert_eq!((names.len(), rates.len()), (40, 40));
    assert_eq!((names[20].as_str(), names[31].as_str()), ("Male", "Smiling"));
    assert!(examples.iter().all(|e| e.len() == 40) && examples.len() > 300, "kept rows: {}", examples.len());
    let own = test_loss(&out, &dir.path().join("cache"), false);
    let other = test_loss(&out, &dir.path().join("cache"), true);
    eprintln!("test −ELBO with their own attributes {own:.1}, with another face's {other:.1}");
    assert!(own < other - 1.0, "the decoder ignores the attributes: −ELBO {own} with their own, {other} with others'");
}

/// `dcgan --condition attributes:…` builds the projection discriminator, trains, samples one row
/// per `--attr` set with the same codes, walks with `--attr`, resumes with the same spec, and
/// `eval` scores its agreement with the conditions beside chance and ceiling.
#[test]
fn a_dcgan_conditioned_on_named_attributes_samples_walks_resumes_and_is_scored() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_celeba(dir.path(), 300);
    let out = dir.path().join("cgan");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let mut args = vec!["train", "dcgan", "--dataset", d, "--out", o, "--max-steps", "20"];
    args.extend(["--condition", "attributes:Male,smiling,Eyeglasses", "--image-size", "16", "--width", "4"]);
    run(&args, dir.path());
    let spec = Checkpoint::load(&out.join("checkpoints/latest.ckpt")).unwrap().meta.spec;
    assert_eq!(spec.cond_attributes(), ["Male", "Smiling", "Eyeglasses"], "names as the dataset spells them");
    let Net::Gan(m) = Net::new(&spec, 0, &burn::prelude::Device::flex()) else { panic!("not a GAN") };
    assert!(matches!(m.d, Discriminator::ScaledProjected(_)), "D is not conditioned by projection");

    let npy = dir.path().join("s.npy");
    run(
        &[
            "sample",
            o,
            "--attr",
            "Male,-Smiling",
            "--attr",
            "-Male,Smiling",
            "--n",
            "3",
            "--out",
            npy.to_str().unwrap(),
        ],
        dir.path(),
    );
    let arr = latentlab::data::arrays::read(&npy, None).unwrap();
    assert_eq!(arr.dims, vec![6, 3, 16, 16]);
    let img = 3 * 16 * 16;
    let (a, b) = (&arr.values[..img], &arr.values[3 * img..4 * img]);
    assert!(
        a.iter().zip(b).any(|(p, q)| (p - q).abs() > 1e-4),
        "the same code under other attributes drew the same face"
    );
    run(&["walk", o, "--attr", "Eyeglasses", "--rows", "2", "--steps", "3"], dir.path());
    assert!(out.join("final/walk.png").exists());
    run(&["resume", o, "--max-steps", "25"], dir.path());
    assert_eq!(Checkpoint::load(&out.join("checkpoints/latest.ckpt")).unwrap().meta.state.step, 25);

    run(&["eval", o, "--n", "200", "--metrics", "attributes"], dir.path());
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("eval.json")).unwrap()).unwrap();
    let a = &r["condition_agreement"];
    let names: Vec<&str> = a["per_attribute"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Male", "Smiling", "Eyeglasses"]);
    for key in ["mean", "chance", "ceiling", "balanced", "balanced_chance", "balanced_ceiling"] {
        let v = a[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    // The ceiling is the network's accuracy on real faces: far above what reading nothing gives.
    assert!(a["ceiling"].as_f64().unwrap() > 0.6, "{a}");
    assert!(r["protocol"]["condition_agreement"].as_str().unwrap().contains("chance = the same against"));
}

/// Misuse names the flag and the problem, and a `--condition` the data cannot give leaves no run
/// folder that would block the corrected command.
#[test]
fn conditions_the_model_or_data_cannot_take_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_celeba(dir.path(), 120);
    let d = data.to_str().unwrap();
    let bad = dir.path().join("bad");
    let b = bad.to_str().unwrap();
    let base = ["--image-size", "16", "--width", "4", "--max-steps", "3"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        let mut v = vec!["train", "dcgan", "--dataset", d, "--out", b];
        v.extend(base);
        v.extend(extra);
        v
    };
    fails(&with(&["--condition", "attributes:Smilling"]), dir.path(), &["no attribute 'Smilling'", "Smiling"]);
    assert!(!bad.exists(), "a refused --condition left {b} behind");
    fails(&with(&["--condition", "colour"]), dir.path(), &["--condition 'colour'", "attributes:NAME"]);
    fails(&with(&["--condition", "class"]), dir.path(), &["--condition class needs a dataset with class labels"]);
    fails(
        &["train", "vae", "--dataset", d, "--out", b, "--condition", "attributes"],
        dir.path(),
        &["--condition does not apply to model 'vae'"],
    );
    fails(
        &["train", "dcgan", "--dataset", "digits", "--out", b, "--condition", "attributes", "--max-steps", "2"],
        dir.path(),
        &["--condition attributes needs a dataset with attributes"],
    );
    assert!(!bad.exists());

    // A model conditioned on two attributes: --attr names one it does not know, --class.
    let out = dir.path().join("ok");
    let o = out.to_str().unwrap();
    let mut args = vec!["train", "dcgan", "--dataset", d, "--out", o, "--condition", "attributes:Male,Eyeglasses"];
    args.extend(base);
    run(&args, dir.path());
    fails(&["sample", o, "--attr", "Male,Bald"], dir.path(), &["not conditioned on 'Bald'", "Male, Eyeglasses"]);
    fails(&["sample", o, "--attr", "Male,,"], dir.path(), &["--attr", "a minus for absent"]);
    fails(&["sample", o, "--class", "1"], dir.path(), &["--class 1", "not conditioned on a class", "2 attributes"]);
    // An unconditional run refuses --attr.
    let plain = dir.path().join("plain");
    let p = plain.to_str().unwrap();
    let mut args = vec!["train", "dcgan", "--dataset", d, "--out", p];
    args.extend(base);
    run(&args, dir.path());
    fails(&["sample", p, "--attr", "Male"], dir.path(), &["--attr needs a model conditioned on attributes"]);
}
