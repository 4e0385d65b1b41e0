//! Nothing lost, nothing crashes: training killed at random moments (also mid-checkpoint-write)
//! resumes bit-identically; Ctrl-C saves and exits; divergence keeps the last good checkpoint or
//! rolls back; a full disk, a bad output path and wrong combinations end in named errors;
//! results do not depend on the thread count.

mod common;
use common::*;
use latentlab::run::{Which, load_model};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// The VAE defaults (cosine lr, KL warm-up) included: both are functions of the step, so resume stays exact.
const ARGS: [&str; 16] = [
    "--dataset",
    "digits",
    "--epochs",
    "4",
    "--kl-warmup",
    "1",
    "--hidden",
    "64",
    "--latent-dim",
    "4",
    "--checkpoint-every",
    "5",
    "--log-every",
    "3",
    "--seed",
    "11",
];

fn cmd(args: &[&str], cwd: &Path, fault: Option<&str>) -> Command {
    let mut c = Command::new(bin());
    c.args(args).current_dir(cwd).env("LATENTLAB_DATA", shared_data()).stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(f) = fault {
        c.env("LATENTLAB_FAULT", f);
    }
    c
}

fn weights(run: &Path) -> Vec<f32> {
    let (_, m, _, _) = load_model(run, Which::Latest, &burn::prelude::Device::flex()).unwrap();
    m.net.param_values()
}

/// metrics.jsonl without the wall-clock fields.
fn metrics(run: &Path) -> Vec<serde_json::Value> {
    latentlab::train::log::read(&run.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("epoch_secs");
                o.remove("samples_per_sec");
            }
            v
        })
        .collect()
}

#[test]
fn killed_at_random_moments_the_run_resumes_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    let ok = cmd(&[&["train", "vae", "--out", reference.to_str().unwrap()][..], &ARGS[..]].concat(), dir.path(), None)
        .status()
        .unwrap()
        .success();
    assert!(ok);

    let victim = dir.path().join("victim");
    let v = victim.to_str().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut kills, mut during_write, mut attempts) = (0, 0, 0);
    loop {
        attempts += 1;
        assert!(attempts < 60, "the run never finished");
        let first = !victim.join("config.toml").exists();
        let args: Vec<&str> =
            if first { [&["train", "vae", "--out", v][..], &ARGS[..]].concat() } else { vec!["resume", v] };
        // Slow checkpoint writes (the first attempts, then every other one) make kills land inside them.
        let fault = (attempts <= 4 || attempts % 2 == 0).then_some("slow-write");
        let mut child = cmd(&args, dir.path(), fault).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_millis(rng.random_range(100..1500));
        let mut finished = None;
        while Instant::now() < deadline {
            if let Some(s) = child.try_wait().unwrap() {
                finished = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        match finished {
            Some(s) if s.success() => break,
            Some(s) => panic!("attempt {attempts} failed on its own: {s}"),
            None => {
                let tmp_before = temp_files(&victim.join("checkpoints"));
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                if tmp_before > 0 || temp_files(&victim.join("checkpoints")) > 0 {
                    during_write += 1;
                }
                // After any kill the folder is loadable: a checkpoint is either the old or the new one.
                if victim.join("checkpoints/latest.ckpt").exists() {
                    latentlab::run::checkpoint::Checkpoint::load(&victim.join("checkpoints/latest.ckpt"))
                        .expect("a checkpoint is never half-written");
                }
            }
        }
    }
    eprintln!("{kills} kills ({during_write} with a checkpoint write in flight) over {attempts} attempts");
    assert!(kills >= 3, "only {kills} kills: the test did not exercise resume");
    assert_eq!(metrics(&victim), metrics(&reference), "metrics differ after kills");
    assert_eq!(weights(&victim), weights(&reference), "weights differ after kills");
    assert_eq!(temp_files(&victim.join("checkpoints")), 0, "stale temp files left after resume");
}

fn temp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|e| e.flatten().filter(|e| e.file_name().to_string_lossy().contains(".tmp-")).count())
        .unwrap_or(0)
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let args =
        ["train", "vae", "--out", r, "--dataset", "digits", "--epochs", "500", "--hidden", "64", "--log-every", "2"];
    let child = cmd(&args, dir.path(), None).spawn().unwrap();
    let t0 = Instant::now();
    while latentlab::train::log::read(&run.join("metrics.jsonl")).map(|v| v.len()).unwrap_or(0) < 3 {
        assert!(t0.elapsed() < Duration::from_secs(60), "training did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("checkpoint saved") && err.contains("latentlab resume"), "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "interrupted");
    let ck = latentlab::run::checkpoint::Checkpoint::load(&run.join("checkpoints/latest.ckpt")).unwrap();
    assert_eq!(ck.meta.state.step, summary["steps"].as_u64().unwrap());
    // And it continues from there.
    let target = (ck.meta.state.epoch + 1).to_string();
    let out = cmd(&["resume", r, "--epochs", &target], dir.path(), None).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn divergence_keeps_the_last_good_checkpoint_or_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("nan");
    let r = run.to_str().unwrap();
    let base =
        ["train", "vae", "--dataset", "digits", "--max-steps", "40", "--checkpoint-every", "10", "--hidden", "64"];
    let out = cmd(&[&base[..], &["--out", r]].concat(), dir.path(), Some("nan-at-step-25")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("diverged at step 25") && err.contains("'loss'") && err.contains("latest.ckpt"), "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "diverged");
    let ck = latentlab::run::checkpoint::Checkpoint::load(&run.join("checkpoints/latest.ckpt")).unwrap();
    // Checkpoints every 10 steps and at epoch ends (12 steps per digits epoch): 10, 12, 20, 24.
    assert_eq!(ck.meta.state.step, 24, "the last good checkpoint is the one before the NaN");

    let run = dir.path().join("rollback");
    let r = run.to_str().unwrap();
    let out = cmd(&[&base[..], &["--out", r, "--on-diverge", "rollback"]].concat(), dir.path(), Some("nan-at-step-25"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["steps"], 40);
    let warnings = summary["warnings"].to_string();
    assert!(warnings.contains("rollback 1/3") && warnings.contains("step 24"), "{warnings}");
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(cfg.contains("lr = 0.0005"), "{cfg}");
}

#[test]
fn a_full_disk_keeps_the_previous_checkpoint_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let ok = cmd(
        &["train", "vae", "--out", r, "--dataset", "digits", "--max-steps", "12", "--hidden", "32"],
        dir.path(),
        None,
    )
    .status()
    .unwrap()
    .success();
    assert!(ok);
    let before = weights(&run);
    let out = cmd(&["resume", r, "--max-steps", "30"], dir.path(), Some("enospc")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("No space left on device"), "{err}");
    assert!(err.contains(&run.display().to_string()), "error should name the file: {err}");
    assert_eq!(weights(&run), before, "the previous checkpoint must survive");
    assert_eq!(temp_files(&run.join("checkpoints")), 0);
}

fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn killed_in_its_final_phase_the_run_is_finished_by_resume_without_training() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let args = ["train", "vae", "--out", r, "--dataset", "digits", "--epochs", "2", "--hidden", "32"];
    // SIGKILL after the final pictures, before the summary: the worst moment of the final phase.
    let out = cmd(&args, dir.path(), Some("kill-before-summary")).output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!run.join("summary.json").exists());
    let before = weights(&run);

    let out = cmd(&["resume", r], dir.path(), None).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("before its final pictures and summary"), "{err}");
    let s = summary(&run);
    assert_eq!(
        (s["status"].as_str(), s["steps"].as_u64(), s["epochs"].as_u64()),
        (Some("completed"), Some(24), Some(2))
    );
    assert!(s["train_samples_per_sec"].as_f64().unwrap() > 0.0, "the rate the epochs logged: {s}");
    assert!(run.join("final/samples.png").is_file());
    assert_eq!(weights(&run), before, "finishing must not train further");
    let steps = metrics(&run).iter().filter(|v| v["kind"] == "epoch").count();
    assert_eq!(steps, 2, "one epoch line per epoch");

    // Now it is complete, and says so.
    let out = cmd(&["resume", r], dir.path(), None).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("already finished 2 epoch(s)"), "{err}");
}

fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_corrupt_latest_checkpoint_falls_back_to_the_newest_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let args = [
        "train",
        "vae",
        "--out",
        r,
        "--dataset",
        "digits",
        "--max-steps",
        "20",
        "--checkpoint-every",
        "5",
        "--hidden",
        "32",
    ];
    assert!(cmd(&args, dir.path(), None).status().unwrap().success());
    let load = |p: &str| latentlab::run::checkpoint::Checkpoint::load(&run.join(p));
    // Saved at 5, 10, 12 (epoch end), 15, 20 (the step limit): latest 20 keeps 15 as previous.
    assert_eq!(load("checkpoints/previous.ckpt").unwrap().meta.state.step, 15);
    flip_a_byte(&run.join("checkpoints/latest.ckpt"));

    let out = cmd(&["resume", r, "--max-steps", "30"], dir.path(), None).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("checksum mismatch") && err.contains("previous.ckpt (step 15)"), "{err}");
    let s = summary(&run);
    assert_eq!(s["steps"], 30);
    assert!(s["warnings"].to_string().contains("previous.ckpt (step 15)"), "{s}");
    // Steps 16–20 were trained again: the log holds each logged step once.
    let logged: Vec<u64> =
        metrics(&run).iter().filter(|v| v["kind"] == "step").map(|v| v["step"].as_u64().unwrap()).collect();
    let mut dedup = logged.clone();
    dedup.dedup();
    assert_eq!(logged, dedup, "steps logged twice after the fall-back");

    // Nothing verifies: an error that names every file, and no training.
    for f in ["latest", "previous", "best"] {
        let p = run.join(format!("checkpoints/{f}.ckpt"));
        if p.exists() {
            flip_a_byte(&p);
        }
    }
    let out = cmd(&["resume", r, "--max-steps", "40"], dir.path(), None).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("no checkpoint of") && err.contains("latest.ckpt") && err.contains("previous.ckpt"), "{err}");
}

#[test]
fn wrong_combinations_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An output path under a regular file (a read-only directory does not stop root, CI's user).
    std::fs::write(d.join("file"), b"x").unwrap();
    let (ok, _, err) = cli(&["train", "vae", "--dataset", "digits", "--out", "file/run", "--max-steps", "1"], d);
    assert!(!ok && err.contains("file/run"), "{err}");
    // A checkpoint of another model in a run folder.
    let vae: PathBuf = d.join("vae");
    let gan: PathBuf = d.join("gan");
    for (m, p) in [("vae", &vae), ("gan", &gan)] {
        let (ok, _, err) =
            cli(&["train", m, "--dataset", "digits", "--max-steps", "3", "--out", p.to_str().unwrap()], d);
        assert!(ok, "{err}");
    }
    std::fs::copy(gan.join("checkpoints/latest.ckpt"), vae.join("checkpoints/latest.ckpt")).unwrap();
    let (ok, _, err) = cli(&["resume", vae.to_str().unwrap(), "--max-steps", "5"], d);
    assert!(!ok && err.contains("does not match"), "{err}");
    // An 8×8 model evaluated against 28×28 data.
    let (ok, _, err) = cli(&["eval", gan.to_str().unwrap(), "--dataset", "mnist", "--metrics", "fid"], d);
    assert!(!ok && err.contains("'mnist'") && err.contains("28"), "{err}");
    // An empty folder as a dataset.
    std::fs::create_dir(d.join("empty")).unwrap();
    let (ok, _, err) = cli(&["train", "vae", "--dataset", "empty"], d);
    assert!(!ok && err.contains("empty"), "{err}");
    // Every error is one line.
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for threads in ["1", "2"] {
        let run = dir.path().join(format!("t{threads}"));
        let ok = cmd(
            &[
                "train",
                "vae",
                "--dataset",
                "mnist",
                "--max-steps",
                "8",
                "--out",
                run.to_str().unwrap(),
                "--log-every",
                "2",
            ],
            dir.path(),
            None,
        )
        .env("RAYON_NUM_THREADS", threads)
        .status()
        .unwrap()
        .success();
        assert!(ok);
        runs.push(run);
    }
    assert_eq!(metrics(&runs[0]), metrics(&runs[1]));
    assert_eq!(weights(&runs[0]), weights(&runs[1]));
}
