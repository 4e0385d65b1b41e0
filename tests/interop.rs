//! Interop with the Python ecosystem, checked by the real tools: `samples.npy` loads with
//! numpy.load (shape, dtype, range); the exported safetensors file loads with
//! safetensors.numpy.load_file (names, shapes); a numpy forward pass from those weights reproduces
//! latentlab's decoder for fixed codes (MLP models). Python: $LATENTLAB_PYTHON, else
//! target/pyenv/bin/python (what .ci/run creates), else python3 — it must have numpy and
//! safetensors (`pip install numpy safetensors`); LATENTLAB_SKIP_PYTHON=1 skips.

mod common;
use common::*;
use latentlab::run::{Which, load_model};
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
            .args(["-c", "import numpy, safetensors.numpy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(c);
        }
    }
    if std::env::var("LATENTLAB_SKIP_PYTHON").is_ok_and(|v| v == "1") {
        eprintln!("LATENTLAB_SKIP_PYTHON=1: skipping the Python interop check");
        return None;
    }
    panic!(
        "the interop test needs Python with numpy and safetensors (pip install numpy safetensors), or LATENTLAB_SKIP_PYTHON=1"
    );
}

fn check(kind: &str, model: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = d.join("run");
    let r = run.to_str().unwrap();
    let (ok, _, err) = cli(&["train", model, "--dataset", "digits", "--max-steps", "30", "--out", r], d);
    assert!(ok, "{err}");
    let npy = d.join("samples.npy");
    let (ok, _, err) = cli(&["sample", r, "--n", "50", "--out", npy.to_str().unwrap()], d);
    assert!(ok, "{err}");
    let st = d.join("model.safetensors");
    let (ok, stdout, err) = cli(&["export", r, "--format", "safetensors", "--out", st.to_str().unwrap()], d);
    assert!(ok, "{err}");
    // The names and shapes the CLI printed are what Python must find.
    let names: Vec<(String, Vec<usize>)> = stdout
        .lines()
        .filter_map(|l| {
            let (n, s) = l.split_once(" [")?;
            let shape = s.trim_end_matches(']').split(", ").map(|v| v.parse().unwrap()).collect();
            Some((n.trim().to_string(), shape))
        })
        .collect();
    assert!(!names.is_empty(), "{stdout}");
    let names_path = d.join("names.json");
    std::fs::write(&names_path, serde_json::to_vec(&names).unwrap()).unwrap();

    // Fixed codes and latentlab's own decoding of them.
    let (_, m, _, _) = load_model(&run, Which::Latest, &burn::prelude::Device::flex()).unwrap();
    let l = m.spec.latent_dim;
    let z: Vec<f32> = (0..5 * l).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let decoded = m.decode_host(&z, &[]);
    let shape = latentlab::data::ImageShape { channels: 1, height: 1, width: l };
    latentlab::viz::grid::save_npy(&z, shape, &d.join("z.npy")).unwrap();
    latentlab::viz::grid::save_npy(&decoded, m.spec.shape, &d.join("decoded.npy")).unwrap();

    let Some(py) = python() else { return };
    let s = m.spec.shape;
    let out = std::process::Command::new(py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop.py"))
        .args([npy.to_str().unwrap(), "50", &s.channels.to_string(), &s.height.to_string(), &s.width.to_string()])
        .args([st.to_str().unwrap(), names_path.to_str().unwrap(), kind])
        .args([d.join("z.npy").to_str().unwrap(), d.join("decoded.npy").to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python check failed:\n{text}");
    assert!(text.contains(&format!("ok {kind}")), "{text}");
}

#[test]
fn vae_outputs_load_in_numpy_and_safetensors_and_the_decoder_matches() {
    check("vae", "vae");
}

#[test]
fn gan_outputs_load_in_numpy_and_safetensors_and_the_generator_matches() {
    check("gan", "gan");
}

#[test]
fn metrics_export_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = d.join("run");
    let r = run.to_str().unwrap();
    let (ok, _, err) =
        cli(&["train", "vae", "--dataset", "digits", "--epochs", "2", "--log-every", "5", "--out", r], d);
    assert!(ok, "{err}");
    let csv = d.join("m.csv");
    let (ok, _, err) = cli(&["export", r, "--format", "csv", "--out", csv.to_str().unwrap()], d);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(&header[..3], &["step", "epoch", "kind"]);
    assert!(header.contains(&"train.loss") && header.contains(&"test.kl"), "{header:?}");
    let jsonl = latentlab::train::log::read(&run.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.len() - 1, jsonl.len());
    // Values are the log's, to the digit.
    let col = header.iter().position(|h| *h == "train.loss").unwrap();
    let first: f64 = lines[1].split(',').nth(col).unwrap().parse().unwrap();
    assert_eq!(first, jsonl[0]["train"]["loss"].as_f64().unwrap());
}
