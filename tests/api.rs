//! The library API (`latentlab::Run`, `Images`, `score`) on real runs: the same bits as the command
//! line, the shapes it promises, and one-line errors for misuse.

mod common;
use common::*;
use latentlab::{EvalOptions, ImageShape, Images, Metric, ModelKind, Options, Run, RunConfig};

#[test]
fn a_run_samples_encodes_and_decodes_like_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RunConfig::resolve(
        ModelKind::Vae,
        Options {
            dataset: Some("digits".into()),
            data_dir: Some(shared_data()),
            epochs: Some(200),
            latent_dim: Some(8),
            ..Default::default()
        },
    )
    .unwrap();
    let run = Run::train(&cfg, dir.path().join("vae")).unwrap();
    assert_eq!((run.model(), run.latent_dim()), (ModelKind::Vae, 8));
    let shape = ImageShape { channels: 1, height: 8, width: 8 };
    assert_eq!(run.shape(), shape);
    let s = run.sample(10, 3).unwrap();
    assert_eq!((s.n, s.data.len()), (10, 640));
    assert!(s.data.iter().all(|v| (0.0..=1.0).contains(v)));
    // The same draws as `latentlab sample --seed 3`.
    let (ok, _, err) = cli(&["sample", "vae", "--n", "10", "--seed", "3", "--out", "s.npy"], dir.path());
    assert!(ok, "{err}");
    let (_, from_cli) = latentlab::viz::grid::read_npy(&dir.path().join("s.npy")).unwrap();
    assert_eq!(from_cli, s.data);
    let z = run.encode(&s).unwrap();
    assert_eq!(z.len(), 10 * 8);
    assert_eq!(run.decode(&z).unwrap().n, 10);
    // Misuse is a one-line error naming the problem.
    let e = run.decode(&z[..7]).unwrap_err().to_string();
    assert!(e.contains("not a whole number of 8-dimensional codes"), "{e}");
    let wrong = Images::new(ImageShape { channels: 1, height: 4, width: 4 }, vec![0.5; 32]).unwrap();
    assert!(run.encode(&wrong).unwrap_err().to_string().contains("takes"));
    assert!(Images::new(shape, vec![0.5; 63]).is_err());
    assert!(Images::new(shape, vec![1.5; 64]).unwrap_err().to_string().contains("outside [0, 1]"));
    assert!(run.sample_class(4, 1, 0).unwrap_err().to_string().contains("not conditional"));
    // Its metrics, without files.
    let o = EvalOptions { n: 300, metrics: vec![Metric::Fid], ..Default::default() };
    let r = run.evaluate(&o).unwrap();
    assert!(r.fid.unwrap() > 0.0);
    // Any images can be scored: the same images give the same numbers, other images others.
    let samples = run.sample(300, 5).unwrap();
    let a = latentlab::score(&samples, "digits", Some(&shared_data()), &o).unwrap().fid.unwrap();
    let b = latentlab::score(&samples, "digits", Some(&shared_data()), &o).unwrap().fid.unwrap();
    assert_eq!(a, b);
    let grey = Images::new(shape, vec![0.5; 300 * 64]).unwrap();
    let g = latentlab::score(&grey, "digits", Some(&shared_data()), &o).unwrap().fid.unwrap();
    assert!(a.is_finite() && g.is_finite() && a != g, "{a} {g}");
    // A trained model's samples are far closer to the data than uniform noise is.
    let mut state = 9u64;
    let uniform = (0..300 * 64).map(|_| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    });
    let noise = latentlab::score(&Images::new(shape, uniform.collect()).unwrap(), "digits", Some(&shared_data()), &o);
    let n = noise.unwrap().fid.unwrap();
    assert!(a < n / 2.0 && r.fid.unwrap() < n / 2.0, "samples {a}, evaluate {:?}, noise {n}", r.fid);
    let e = latentlab::score(&wrong, "digits", Some(&shared_data()), &o).unwrap_err().to_string();
    assert!(e.contains("dataset 'digits' has"), "{e}");
}

#[test]
fn gans_have_no_encoder_and_conditional_models_take_a_class() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = quick_config(ModelKind::Cgan, "digits", Options { max_steps: Some(5), ..Default::default() });
    train_run(&dir.path().join("cgan"), &cfg);
    let run = Run::open(dir.path().join("cgan")).unwrap();
    let s = run.sample_class(3, 7, 0).unwrap();
    assert!(run.encode_class(&s, 7).unwrap_err().to_string().contains("no encoder"));
    let z = vec![0.0; 2 * run.latent_dim()];
    assert!(run.decode(&z).unwrap_err().to_string().contains("conditional"));
    assert_eq!(run.decode_class(&z, 2).unwrap().n, 2);
    assert!(run.sample_class(1, 10, 0).unwrap_err().to_string().contains("out of range"));
    let e = Run::open(dir.path().join("nope")).err().unwrap().to_string();
    assert!(e.contains("nope"), "{e}");
}
