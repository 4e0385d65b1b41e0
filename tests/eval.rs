//! Evaluation on real data (the 8×8 digits set keeps it fast): the feature network and its cache,
//! the likelihood bounds of a trained VAE, end-to-end `eval` of runs and of sample files.

mod common;
use common::*;
use latentlab::config::Options;
use latentlab::eval::{coverage, evaluate, features, likelihood};
use latentlab::models::ModelKind;
use std::path::{Path, PathBuf};

fn digits() -> latentlab::data::Splits {
    latentlab::data::load("digits", Some(&shared_data())).unwrap()
}

/// One cache for the whole test binary (trained once, then loaded).
fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("eval-cache")
}

fn feats(data: &latentlab::data::Splits) -> features::Features {
    features::load_or_train(data, &cache(), false, false).unwrap()
}

#[test]
fn feature_network_classifies_and_its_cache_round_trips() {
    let data = digits();
    let f = feats(&data);
    let acc = features::accuracy(&f, &data.test).unwrap();
    assert!(acc > 0.9, "digits feature network test accuracy {acc}");
    // Loading again gives the very same network.
    let again = features::load(&f.path, &burn::prelude::Device::flex()).unwrap();
    assert_eq!(again.meta.weights_sha256, f.meta.weights_sha256);
    assert_eq!(again.embed_dataset(&data.test).unwrap().features, f.embed_dataset(&data.test).unwrap().features);

    // A corrupted copy is refused with a named error…
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.llfeat");
    let mut bytes = std::fs::read(&f.path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&bad, &bytes).unwrap();
    let err = features::load(&bad, &burn::prelude::Device::flex()).err().unwrap().to_string();
    assert!(err.contains("bad.llfeat") && err.contains("checksum"), "{err}");
    std::fs::write(&bad, &bytes[..100]).unwrap();
    assert!(features::load(&bad, &burn::prelude::Device::flex()).is_err());
}

#[test]
fn training_the_feature_network_is_deterministic() {
    let data = digits();
    let r = features::Recipe { epochs: 2, batch_size: 128, lr: 1e-3, seed: 9 };
    let (a, ma) = features::train(&data, &r, false).unwrap();
    let (_, mb) = features::train(&data, &r, false).unwrap();
    assert_eq!(ma.weights_sha256, mb.weights_sha256);
    assert_eq!(features::content_hash(&a), ma.weights_sha256);
}

#[test]
fn coverage_of_the_test_set_matches_its_label_histogram() {
    let data = digits();
    let f = feats(&data);
    let e = f.embed_dataset(&data.test).unwrap();
    let c = coverage::coverage(&e.probs, e.classes).unwrap();
    assert_eq!(c.classes_covered, 10);
    // KL of the true label histogram to uniform, computed independently.
    let mut h = [0f64; 10];
    for &y in data.test.labels.as_ref().unwrap() {
        h[y as usize] += 1.0;
    }
    let n = data.test.n as f64;
    let kl: f64 = h.iter().filter(|&&c| c > 0.0).map(|&c| (c / n) * ((c / n) * 10.0).ln()).sum();
    assert!((c.class_kl - kl).abs() < 0.02, "classifier KL {} vs label KL {kl}", c.class_kl);
    assert!(c.class_kl < 0.05);
}

#[test]
fn iwae_bound_is_above_the_elbo_and_tightens_with_k_on_a_trained_vae() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = quick_config(
        ModelKind::Vae,
        "digits",
        Options { epochs: Some(15), latent_dim: Some(4), hidden: Some(vec![64]), ..Default::default() },
    );
    train_run(dir.path(), &cfg);
    let device = burn::prelude::Device::flex();
    let (_, model, _, _) = latentlab::run::load_model(dir.path(), latentlab::run::Which::Latest, &device).unwrap();
    let data = digits();
    let test = data.test.head(100);
    let x = features::unit(&test.images);
    let lvm = likelihood::VaeLvm::from_net(&model.spec, &model.net).unwrap();
    let d = test.shape.len();
    let b1 = likelihood::bounds(&lvm, &x, &[], d, 1, 0, &mut |_| {}).unwrap();
    let b50 = likelihood::bounds(&lvm, &x, &[], d, 50, 0, &mut |_| {}).unwrap();
    let b500 = likelihood::bounds(&lvm, &x, &[], d, 500, 0, &mut |_| {}).unwrap();
    for i in 0..100 {
        assert!(b500.iwae[i] >= b500.elbo[i] - 1e-9, "image {i}: IWAE {} < ELBO {}", b500.iwae[i], b500.elbo[i]);
    }
    assert!(b50.iwae_nll() < b1.iwae_nll() && b500.iwae_nll() < b50.iwae_nll() + 0.05);
    assert!(
        b500.iwae_nll() < -b500.elbo_mean() - 0.1,
        "IWAE {} not tighter than ELBO {}",
        b500.iwae_nll(),
        b500.elbo_mean()
    );
    // K=1 IWAE is the one-sample ELBO.
    assert!((b1.iwae_nll() + b1.elbo_mean()).abs() < 1e-9);
}

fn write_npy(path: &Path, imgs: &[f32], shape: latentlab::data::ImageShape) {
    latentlab::viz::grid::save_npy(imgs, shape, path).unwrap();
}

#[test]
fn eval_of_the_test_set_against_itself_is_perfect() {
    let data = digits();
    let _ = feats(&data);
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("test.npy");
    write_npy(&npy, &features::unit(&data.test.images), data.test.shape);
    let out = dir.path().join("e.json");
    let (ok, stdout, err) = cli_cached(
        &["eval", "--samples", npy.to_str().unwrap(), "--dataset", "digits", "--out", out.to_str().unwrap()],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(stdout.contains("FID"), "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(v["fid"].as_f64().unwrap().abs() < 1e-6, "FID of the test set with itself: {}", v["fid"]);
    assert!(v["fid_floor"].as_f64().unwrap() > 0.1, "train vs test should differ: {}", v["fid_floor"]);
    assert!(v["kid"].as_f64().unwrap() < 0.0 + 1e-9, "unbiased KID of identical sets is ≤ 0: {}", v["kid"]);
    assert_eq!(v["precision"].as_f64().unwrap(), 1.0);
    assert_eq!(v["recall"].as_f64().unwrap(), 1.0);
    assert_eq!(v["classes_covered"].as_u64().unwrap(), 10);
    assert!((v["nn_ratio"].as_f64().unwrap() - 1.0).abs() < 1e-9, "same images, same distances");
    assert!((v["sharpness"].as_f64().unwrap() - v["sharpness_real"].as_f64().unwrap()).abs() < 1e-9);
    assert!(v["iwae_nll"].is_null(), "a sample file has no likelihood");
    assert!(v["protocol"]["feature_network"]["sha256"].as_str().unwrap().len() == 64);
    assert!(dir.path().join("e.nearest.png").is_file());
}

#[test]
fn eval_of_runs_fills_the_metrics_that_apply() {
    let dir = tempfile::tempdir().unwrap();
    let vae = dir.path().join("vae");
    train_run(&vae, &quick_config(ModelKind::Vae, "digits", Options { epochs: Some(3), ..Default::default() }));
    let gan = dir.path().join("gan");
    train_run(&gan, &quick_config(ModelKind::Gan, "digits", Options { max_steps: Some(30), ..Default::default() }));
    let _ = feats(&digits());
    let (ok, _, err) = cli_cached(
        &["eval", vae.to_str().unwrap(), "--n", "300", "--iwae-k", "20", "--iwae-n", "50", "--nn-n", "100"],
        dir.path(),
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(vae.join("eval.json")).unwrap()).unwrap();
    for k in ["fid", "fid_floor", "kid", "precision", "recall", "classes_covered", "class_kl", "classifier_score"] {
        assert!(v[k].is_number(), "{k} missing: {v}");
    }
    for k in ["iwae_nll", "elbo", "nn_ratio", "sharpness", "sharpness_real"] {
        assert!(v[k].is_number(), "{k} missing: {v}");
    }
    assert_eq!(v["iwae_k"].as_u64(), Some(20));
    assert!(v["iwae_nll"].as_f64().unwrap() <= -v["elbo"].as_f64().unwrap());
    assert!(v["latent"]["axes"].as_array().unwrap().len() == 20);
    assert!(vae.join("final/nearest.png").is_file());

    let (ok, stdout, err) =
        cli_cached(&["eval", gan.to_str().unwrap(), "--n", "300", "--metrics", "nll,fid,coverage"], dir.path());
    assert!(ok, "{err}");
    assert!(stdout.contains("not defined"), "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(gan.join("eval.json")).unwrap()).unwrap();
    assert!(v["iwae_nll"].is_null() && v["fid"].is_number() && v["precision"].is_null());
}

#[test]
fn cvae_samples_of_class_k_are_classified_as_k() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = quick_config(ModelKind::Cvae, "digits", Options { epochs: Some(40), ..Default::default() });
    train_run(dir.path(), &cfg);
    let data = digits();
    let f = feats(&data);
    let device = burn::prelude::Device::flex();
    let (_, model, _, _) = latentlab::run::load_model(dir.path(), latentlab::run::Which::Latest, &device).unwrap();
    let imgs = evaluate::generate(&model, 500, 1);
    let e = f.embed(&imgs).unwrap();
    let pred = features::argmax_rows(&e.probs, e.classes);
    let hits = pred.iter().enumerate().filter(|(i, p)| **p == i % 10).count();
    assert!(hits as f64 / 500.0 > 0.6, "only {hits}/500 conditional samples classified as their class");
}

#[test]
fn bad_sample_files_are_named_errors() {
    let data = digits();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.npy");
    write_npy(&wrong, &vec![0.5; 3 * 28 * 28], latentlab::data::ImageShape { channels: 1, height: 28, width: 28 });
    let (ok, _, err) = cli_cached(&["eval", "--samples", wrong.to_str().unwrap(), "--dataset", "digits"], dir.path());
    assert!(!ok && err.contains("wrong.npy") && err.contains("1×8×8"), "{err}");
    let range = dir.path().join("range.npy");
    write_npy(&range, &vec![-0.7; 4 * 64], data.test.shape);
    let (ok, _, err) = cli_cached(&["eval", "--samples", range.to_str().unwrap(), "--dataset", "digits"], dir.path());
    assert!(!ok && err.contains("range.npy") && err.contains("outside [0, 1]"), "{err}");
    let (ok, _, err) = cli_cached(&["eval", "--samples", range.to_str().unwrap()], dir.path());
    assert!(!ok && err.contains("--dataset"), "{err}");
    let (ok, _, err) = cli_cached(&["eval"], dir.path());
    assert!(!ok && err.contains("nothing to evaluate"), "{err}");
}

fn cli_cached(args: &[&str], cwd: &Path) -> (bool, String, String) {
    cli_env(args, cwd, &[("LATENTLAB_CACHE", &cache())])
}
