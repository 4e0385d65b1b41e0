//! TensorBoard event files, read back by TensorBoard's own EventAccumulator (tests/tb_read.py):
//! every scalar of metrics.jsonl with its steps and values, the learning rate, one sample grid per
//! epoch, and a resumed run that reads exactly like an uninterrupted one. Python: $LATENTLAB_PYTHON,
//! else target/pyenv/bin/python (what .ci/run creates), else python3 — it must have tensorboard
//! (`pip install tensorboard`); LATENTLAB_SKIP_PYTHON=1 skips the reader checks.

mod common;
use common::*;
use serde_json::Value;
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn python() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates: Vec<PathBuf> = std::env::var_os("LATENTLAB_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([manifest.join("target/pyenv/bin/python"), PathBuf::from("python3")])
        .collect();
    for c in candidates {
        let ok = std::process::Command::new(&c)
            .args(["-c", "import tensorboard.backend.event_processing.event_accumulator"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(c);
        }
    }
    if std::env::var("LATENTLAB_SKIP_PYTHON").is_ok_and(|v| v == "1") {
        eprintln!("LATENTLAB_SKIP_PYTHON=1: skipping the TensorBoard reader check");
        return None;
    }
    panic!("the TensorBoard test needs Python with tensorboard (pip install tensorboard), or LATENTLAB_SKIP_PYTHON=1");
}

/// What TensorBoard's reader makes of `run/tb`.
fn read(py: &Path, run: &Path, purge: bool) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tb_read.py");
    let mut c = std::process::Command::new(py);
    c.arg(script).arg(run.join("tb"));
    if !purge {
        c.arg("--no-purge");
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "tb_read.py failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Values as float32, the event files' type (exact: JSON may be 1 ulp off in float64).
type Scalars = BTreeMap<String, Vec<(u64, f32)>>;

fn scalars(r: &Value) -> Scalars {
    r["scalars"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(t, pts)| {
            let pts = pts.as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap() as f32));
            (t.clone(), pts.collect())
        })
        .collect()
}

/// The scalars metrics.jsonl implies, as float32 (the event files' type), with `lr(step)` at each
/// logged step.
fn expected(run: &Path, lr: impl Fn(u64) -> f64) -> Scalars {
    let mut want = Scalars::new();
    let mut put = |tag: String, step: u64, v: f64| want.entry(tag).or_default().push((step, v as f32));
    for l in latentlab::train::log::read(&run.join("metrics.jsonl")).unwrap() {
        let step = l["step"].as_u64().unwrap();
        let parts: &[(&str, &str)] = match l["kind"].as_str().unwrap() {
            "step" => {
                put("train/lr".into(), step, lr(step));
                &[("train", "train")]
            }
            "epoch" => &[("test", "test"), ("train", "train_epoch")],
            _ => continue,
        };
        for (part, prefix) in parts {
            for (k, v) in l[*part].as_object().unwrap() {
                put(format!("{prefix}/{k}"), step, v.as_f64().unwrap());
            }
        }
    }
    want
}

fn train(d: &Path, name: &str, args: &[&str]) -> PathBuf {
    let run = d.join(name);
    let base = ["train", "gan", "--dataset", "digits", "--latent-dim", "8", "--batch-size", "64"];
    let (ok, _, err) = cli(&[&base[..], args, &["--log-every", "5", "--out", run.to_str().unwrap()]].concat(), d);
    assert!(ok, "{err}");
    run
}

fn resume(d: &Path, run: &Path, args: &[&str]) {
    let (ok, _, err) = cli(&[&["resume", run.to_str().unwrap()][..], args].concat(), d);
    assert!(ok, "{err}");
}

#[test]
fn event_files_hold_the_metrics_lr_and_sample_grids_and_resume_shows_each_step_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 24 batches per epoch: 3 epochs end at steps 24, 48, 72.
    let full = train(d, "full", &["--epochs", "3", "--lr-schedule", "constant"]);
    assert!(full.join("tb").is_dir(), "tensorboard is on by default");

    // Stopped, resumed past an epoch end, then that session "crashes": its checkpoint is lost, so
    // the last one is at step 30 and steps 31..55 (an epoch end among them) are orphaned.
    let part = train(d, "part", &["--epochs", "3", "--lr-schedule", "constant", "--max-steps", "30"]);
    let ck = part.join("checkpoints/latest.ckpt");
    let ck30 = std::fs::read(&ck).unwrap();
    resume(d, &part, &["--max-steps", "55"]);
    std::fs::write(&ck, ck30).unwrap();
    resume(d, &part, &["--epochs", "3"]);

    // Cosine schedule: the rate falls at each logged step.
    let cosine =
        train(d, "cosine", &["--epochs", "1", "--lr-schedule", "cosine", "--max-steps", "20", "--lr", "0.001"]);
    // Opted out: no folder at all.
    let off = train(d, "off", &["--max-steps", "5", "--tensorboard", "false"]);
    assert!(!off.join("tb").exists(), "--tensorboard false wrote tb/");
    assert!(off.join("metrics.jsonl").is_file());

    let Some(py) = python() else { return };
    let cfg = |run: &Path| latentlab::run::RunDir::open(run).unwrap().1;

    // Every scalar of metrics.jsonl, at its steps, with its value (float32), and nothing else.
    let r = read(&py, &full, true);
    let lr = cfg(&full).lr;
    let want = expected(&full, |_| lr);
    let got = scalars(&r);
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for t in ["train/loss", "train/d_real", "train/d_fake", "train/lr", "test/loss", "test/d_real", "test/d_fake"] {
        assert!(got.contains_key(t), "{t} missing: {:?}", got.keys());
    }
    assert_eq!(got, want);
    assert_eq!(got["train/loss"].len(), 72 / 5);
    assert_eq!(got["test/loss"].iter().map(|p| p.0).collect::<Vec<_>>(), [24, 48, 72]);

    // One sample grid per epoch: the bytes of samples/epoch-NNN.png, with its size.
    let imgs = r["images"]["samples"].as_array().unwrap();
    assert_eq!(imgs.len(), 3);
    for (i, im) in imgs.iter().enumerate() {
        let png = full.join(format!("samples/epoch-{:03}.png", i + 1));
        let (w, h) = image::image_dimensions(&png).unwrap();
        assert_eq!(im["step"], 24 * (i as u64 + 1));
        assert_eq!((im["width"].as_u64(), im["height"].as_u64()), (Some(w as u64), Some(h as u64)));
        assert_eq!((im["png_width"].as_u64(), im["png_height"].as_u64()), (Some(w as u64), Some(h as u64)));
        assert_eq!(im["sha256"], format!("{:x}", sha2::Sha256::digest(std::fs::read(&png).unwrap())));
    }

    // Resumed twice, one session orphaned: the reader shows each step once, as uninterrupted.
    let rp = read(&py, &part, true);
    assert_eq!(rp["files"], 3);
    assert_eq!(scalars(&rp), got, "the resumed run reads differently from the uninterrupted one");
    assert_eq!(rp["images"], r["images"]);
    // …which is the purge at work: without it the orphaned session's steps show twice.
    let raw = scalars(&read(&py, &part, false));
    assert!(raw["train/loss"].len() > got["train/loss"].len(), "no orphaned steps: the test exercises nothing");

    // The scheduled rate of each logged step's update (step s runs with the factor of s − 1).
    let c = cfg(&cosine);
    let sched = |s: u64| c.lr * c.lr_schedule.factor(s - 1, 20);
    let got = scalars(&read(&py, &cosine, true));
    assert_eq!(got["train/lr"], expected(&cosine, sched)["train/lr"]);
    assert_eq!(got["train/lr"].iter().map(|p| p.0).collect::<Vec<_>>(), [5, 10, 15, 20]);
    assert!(got["train/lr"].windows(2).all(|w| w[1].1 < w[0].1), "{:?}", got["train/lr"]);
}
