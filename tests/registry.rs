//! The model registry end to end: a model added through it alone (the least-squares GAN) trains,
//! evaluates and is compared; options a model does not use are refused; one process writes a run.

mod common;
use common::*;
use latentlab::app::compare::{self, CompareRequest};
use latentlab::app::evaluation::{self, EvalRequest};
use latentlab::app::with_defaults;
use latentlab::config::Options;
use latentlab::models::ModelKind;
use std::path::Path;
use std::process::{Command, Stdio};

fn steps(run: &Path) -> Vec<serde_json::Value> {
    latentlab::train::log::read(&run.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|l| l["kind"] == "step")
        .collect()
}

fn light_eval(run: &Path) {
    let mut e: EvalRequest = with_defaults(&[run.as_os_str()]);
    (e.n, e.nn_n, e.iwae_k) = (400, 400, 20);
    evaluation::evaluate(e).unwrap();
}

#[test]
fn lsgan_trains_evaluates_and_appears_in_compare() {
    let dir = tempfile::tempdir().unwrap();
    let ls = dir.path().join("lsgan");
    let s = train_run(
        &ls,
        &quick_config(
            ModelKind::Lsgan,
            "digits",
            Options { max_steps: Some(60), log_every: Some(20), ..Default::default() },
        ),
    );
    // D's raw outputs (not sigmoids): early on it separates real from fake; ½ is the optimum.
    let first = &steps(&ls)[0]["train"];
    let (dr, df) = (first["d_real"].as_f64().unwrap(), first["d_fake"].as_f64().unwrap());
    assert!(dr > df, "D(x) {dr} vs D(G(z)) {df}");
    assert!(s["units"].as_str().unwrap().contains("least-squares"), "{s}");
    // The held-out D loss is the least-squares one: ½E(D(x)−1)² + ½E D(G(z))² is at most ½ + ½·max D².
    let test = &s["test"];
    let (tl, tr, tf) =
        (test["loss"].as_f64().unwrap(), test["d_real"].as_f64().unwrap(), test["d_fake"].as_f64().unwrap());
    assert!(tl >= 0.5 * (1.0 - tr).powi(2) + 0.5 * tf.powi(2) - 1e-6, "Jensen: {tl} {tr} {tf}");

    let vae = dir.path().join("vae");
    train_run(&vae, &quick_config(ModelKind::Vae, "digits", Options { epochs: Some(3), ..Default::default() }));
    for r in [&vae, &ls] {
        light_eval(r);
    }
    let eval: serde_json::Value = serde_json::from_slice(&std::fs::read(ls.join("eval.json")).unwrap()).unwrap();
    assert!(eval["fid"].as_f64().unwrap() > 0.0 && eval["iwae_nll"].is_null(), "{eval}");

    let mut req: CompareRequest = with_defaults(&[vae.as_os_str(), ls.as_os_str()]);
    req.out = Some(dir.path().join("report.html"));
    let c = compare::compare(req).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&c.json).unwrap()).unwrap();
    let runs = json["runs"].as_array().unwrap();
    let lsgan = runs.iter().find(|r| r["model"] == "lsgan").expect("lsgan in the report");
    assert_eq!(lsgan["family"], "GAN", "{lsgan}");
    assert!(!json["claims"].as_array().unwrap().is_empty());
    assert!(ls.join("final/walk.png").is_file() && ls.join("final/arithmetic.png").is_file());
}

#[test]
fn options_a_model_ignores_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = cli(&["train", "aae", "--decoder", "gaussian", "--dataset", "digits"], dir.path());
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--decoder does not apply to model 'aae'"), "{err}");
    // The same from a --config file.
    std::fs::write(dir.path().join("c.toml"), "d-steps = 3\n").unwrap();
    let (ok, _, err) = cli(&["train", "vae", "--config", "c.toml"], dir.path());
    assert!(!ok && err.contains("--d-steps does not apply to model 'vae'"), "{err}");
    assert!(!dir.path().join("runs").exists(), "a refused run left a folder");
}

fn spawn_train(dir: &Path, out: &str, steps: &str) -> std::process::Child {
    Command::new(bin())
        .args(["train", "vae", "--dataset", "digits", "--out", out, "--max-steps", steps, "--epochs", "500"])
        .current_dir(dir)
        .env("LATENTLAB_DATA", shared_data())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn one_process_writes_a_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = spawn_train(dir.path(), "r", "1000000");
    let lock = dir.path().join("r/.lock");
    let t0 = std::time::Instant::now();
    while !(lock.is_file() && std::fs::read_to_string(&lock).is_ok_and(|s| !s.is_empty())) {
        assert!(t0.elapsed().as_secs() < 60, "the first writer never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (ok, _, err) = cli(&["resume", "r", "--max-steps", "10"], dir.path());
    assert!(!ok, "a second writer was let in");
    assert!(
        err.contains("being written by another latentlab process") && err.contains(&format!("pid {}", first.id())),
        "{err}"
    );
    let (ok, _, err) = cli(&["train", "vae", "--dataset", "digits", "--out", "r"], dir.path());
    assert!(!ok && (err.contains("already holds a run") || err.contains("being written")), "{err}");
    // SIGKILL: the OS drops the lock with the process, so the run can be resumed at once.
    first.kill().unwrap();
    first.wait().unwrap();
    let (ok, _, err) = cli(&["resume", "r", "--max-steps", "5"], dir.path());
    assert!(ok, "{err}");

    // Two `train --out X` started together: exactly one trains.
    let (a, b) = (spawn_train(dir.path(), "x", "20"), spawn_train(dir.path(), "x", "20"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(a.status.success() as u8 + b.status.success() as u8, 1, "{a:?} {b:?}");
    let loser = if a.status.success() { &b } else { &a };
    let msg = String::from_utf8_lossy(&loser.stderr);
    assert!(msg.contains("already holds a run") || msg.contains("being written"), "{msg}");
}
