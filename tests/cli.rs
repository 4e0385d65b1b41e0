//! The command line as a user runs it: train → sample / latent-map / resume, and its errors.

mod common;
use common::{cli, cli_env};

#[test]
fn train_sample_latent_map_resume_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let (ok, _, err) = cli(
        &[
            "train",
            "cvae",
            "--dataset",
            "digits",
            "--epochs",
            "2",
            "--latent-dim",
            "2",
            "--hidden",
            "32",
            "--out",
            "runs/c",
        ],
        cwd,
    );
    assert!(ok, "{err}");
    let run = cwd.join("runs/c");
    for f in ["config.toml", "summary.json", "metrics.jsonl", "samples/epoch-002.png", "samples/recon-001.png"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        (s["model"].as_str(), s["epochs"].as_u64(), s["status"].as_str()),
        (Some("cvae"), Some(2), Some("completed"))
    );

    // .npy: N×C×H×W float32 in [0,1]
    let (ok, _, err) = cli(&["sample", "runs/c", "--n", "16", "--class", "7", "--out", "s.npy"], cwd);
    assert!(ok, "{err}");
    let (dims, v) = latentlab::viz::grid::read_npy(&cwd.join("s.npy")).unwrap();
    assert_eq!(dims, vec![16, 1, 8, 8]);
    assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
    let (ok, _, err) = cli(&["sample", "runs/c", "--n", "10", "--out", "g.png"], cwd);
    assert!(ok, "{err}");
    let img = image::open(cwd.join("g.png")).unwrap();
    assert!(img.width() > 8 * 4);
    let (ok, _, err) = cli(&["sample", "runs/c", "--class", "10"], cwd);
    assert!(!ok && err.contains("--class 10 out of range"), "{err}");

    let (ok, out, err) = cli(&["latent-map", "runs/c", "--class", "3", "--grid", "8"], cwd);
    assert!(ok, "{err}");
    assert!(out.contains("latent-scatter.png") && run.join("final/latent-manifold.png").is_file());

    // Arithmetic with identical groups decodes the group mean: image 4 equals image 1.
    let (ok, _, err) = cli(
        &[
            "arithmetic",
            "runs/c",
            "--a",
            "label:3",
            "--b",
            "label:3",
            "--c",
            "label:3",
            "--neighbours",
            "0",
            "--out",
            "same.png",
        ],
        cwd,
    );
    assert!(ok, "{err}");
    let img = image::open(cwd.join("same.png")).unwrap().to_luma8();
    let cell = |k: u32| -> Vec<u8> {
        (0..56)
            .flat_map(|y| (0..56).map(move |x| (x, y)))
            .map(|(x, y)| img.get_pixel(2 + k * 58 + x, 2 + y).0[0])
            .collect()
    };
    assert_eq!(cell(0), cell(3));
    let (ok, _, err) = cli(&["arithmetic", "runs/c", "--a", "label:3", "--b", "label:4", "--c", "seven"], cwd);
    assert!(!ok && err.contains("label:K"), "{err}");
    let (ok, _, err) = cli(&["resume", "runs/c"], cwd);
    assert!(!ok && err.contains("already finished 2 epoch(s)"), "{err}");
    let (ok, _, err) = cli(&["resume", "runs/c", "--epochs", "3"], cwd);
    assert!(ok, "{err}");
    assert!(run.join("samples/epoch-003.png").is_file());

    // Refuses to overwrite a run.
    let (ok, _, err) = cli(&["train", "vae", "--dataset", "digits", "--out", "runs/c"], cwd);
    assert!(!ok && err.contains("already holds a run"), "{err}");
}

#[test]
fn class_on_an_unconditional_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) =
        cli(&["train", "ae", "--dataset", "digits", "--max-steps", "3", "--hidden", "16", "--out", "r"], dir.path());
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&["sample", "r", "--class", "1"], dir.path());
    assert!(!ok && err.contains("not conditional"), "{err}");
    let (ok, _, err) = cli(&["sample", "r", "--out", "x.jpg"], dir.path());
    assert!(!ok && err.contains(".png") && err.contains(".npy"), "{err}");
}

#[test]
fn bad_inputs_end_in_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let (ok, _, err) = cli(&["train", "transformer"], cwd);
    assert!(!ok && err.contains("invalid value 'transformer'") && err.contains("vae"), "{err}");
    let (ok, _, err) = cli(&["train", "vae", "--data-dir", "/nonexistent/dir"], cwd);
    assert!(!ok && err.contains("dataset 'mnist' not found") && err.contains("/nonexistent/dir"), "{err}");
    let (ok, _, err) = cli(&["train", "vae", "--lr", "fast"], cwd);
    assert!(!ok && err.contains("--lr"), "{err}");
    let (ok, _, err) = cli(&["train", "vae", "--dataset", "digits", "--batch-size", "0"], cwd);
    assert!(!ok && err.contains("--batch-size"), "{err}");
    let (ok, _, err) = cli(&["train", "vae", "--nonsense"], cwd);
    assert!(!ok && err.contains("--nonsense"), "{err}");
    std::fs::write(cwd.join("bad.toml"), "latent_dim = 3\n").unwrap();
    let (ok, _, err) = cli(&["train", "vae", "--config", "bad.toml"], cwd);
    assert!(!ok && err.contains("bad.toml") && err.contains("latent_dim"), "{err}");
    let (ok, _, err) = cli(&["sample", "no-such-run"], cwd);
    assert!(!ok && err.contains("no-such-run"), "{err}");
    let (ok, _, err) = cli(&["train", "cvae", "--dataset", "digits", "--hidden", "0"], cwd);
    assert!(!ok && err.contains("--hidden"), "{err}");
    // A mistyped kernel choice is refused, not silently run as the default kernels.
    let typo = std::path::Path::new("im2co1");
    let (ok, _, err) = cli_env(&["sample", "no-such-run"], cwd, &[("LATENTLAB_KERNELS", typo)]);
    assert!(!ok && err.contains("LATENTLAB_KERNELS") && err.contains("im2co1") && err.contains("im2col"), "{err}");
}
