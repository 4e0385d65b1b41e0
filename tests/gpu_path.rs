//! The GPU code path (`--features wgpu`): every command on `--device wgpu`, and checkpoints that move
//! between the device and the CPU both ways. burn's own kernels run there (ours are Flex-only), so
//! this is the code a CUDA or Vulkan GPU runs. Without a GPU, Mesa's software Vulkan adapter
//! (lavapipe, Debian's `mesa-vulkan-drivers`) runs it, slowly: the runs are small. With no adapter
//! at all the tests say so and pass, unless `LATENTLAB_REQUIRE_WGPU=1` (CI) makes that a failure.
#![cfg(feature = "wgpu")]

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gpu-path-cache")
}

/// The CLI with this file's feature-network cache; panics with its stderr when it fails.
fn ok(args: &[&str], cwd: &Path) -> String {
    let (success, out, err) = cli_env(args, cwd, &[("LATENTLAB_CACHE", &cache())]);
    assert!(success, "latentlab {} failed:\n{err}", args.join(" "));
    out + &err
}

/// Whether wgpu finds an adapter here (the probe `--device wgpu` itself makes).
fn adapter() -> bool {
    let Err(e) = latentlab::backend::device(latentlab::backend::DeviceChoice::Wgpu) else { return true };
    let err = format!("{e:#}");
    assert!(err.contains("no graphics adapter found"), "an error other than a missing adapter:\n{err}");
    let required = std::env::var("LATENTLAB_REQUIRE_WGPU").is_ok_and(|v| v == "1");
    assert!(!required, "LATENTLAB_REQUIRE_WGPU=1 but wgpu has no adapter here:\n{err}");
    eprintln!("SKIPPED: no wgpu adapter here (install mesa-vulkan-drivers for the software one)");
    false
}

fn json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

fn png(p: &Path) -> Vec<u8> {
    image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).into_luma8().into_raw()
}

/// A VAE trained on the device learns what the same run learns on the CPU (same seed: the same
/// batches, codes and noise; only the float order differs), its pictures and its evaluation on
/// the device match the CPU's from the same checkpoint, and runs resume across devices.
#[test]
fn a_vae_trains_samples_and_evaluates_on_wgpu_as_on_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    if !adapter() {
        return;
    }
    let train = |device: &str, out: &str| {
        let log = ok(&["train", "vae", "--dataset", "digits", "--epochs", "6", "--device", device, "--out", out], cwd);
        if device == "wgpu" {
            assert!(log.contains("--device wgpu: "), "the adapter is named once:\n{log}");
            assert_eq!(log.matches("--device wgpu: ").count(), 1, "{log}");
        }
        json(&cwd.join(out).join("summary.json"))
    };
    let (g, c) = (train("wgpu", "gpu"), train("cpu", "cpu"));
    assert_eq!(g["device"], "wgpu");
    let (lg, lc) = (g["test"]["loss"].as_f64().unwrap(), c["test"]["loss"].as_f64().unwrap());
    // Measured on lavapipe: equal to 6 digits. A real GPU sums in other orders.
    assert!(rel(lg, lc) < 1e-3, "test −ELBO on wgpu {lg} vs CPU {lc}");
    assert!(lg < 27.0, "the model learned nothing: test loss {lg}");

    // The device's pictures of the GPU-trained checkpoint are the CPU's, to rounding.
    for device in ["wgpu", "cpu"] {
        let out = format!("sample-{device}.png");
        ok(&["sample", "gpu", "--n", "16", "--device", device, "--out", &out], cwd);
    }
    let (a, b) = (png(&cwd.join("sample-wgpu.png")), png(&cwd.join("sample-cpu.png")));
    assert_eq!(a.len(), b.len());
    let worst = a.iter().zip(&b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
    assert!(worst <= 2, "wgpu and CPU samples of one checkpoint differ by {worst}/255");
    // The library opens a checkpoint onto a device as well.
    let open = |d| latentlab::Run::open_on(cwd.join("gpu"), latentlab::Which::Latest, d).unwrap().sample(8, 3).unwrap();
    let (on_gpu, on_cpu) = (open(latentlab::DeviceChoice::Wgpu), open(latentlab::DeviceChoice::Cpu));
    let far = on_gpu.data.iter().zip(&on_cpu.data).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(far < 1e-3, "Run::open_on: wgpu and CPU samples differ by {far}");
    for (args, file) in [
        (vec!["walk", "gpu", "--device", "wgpu", "--rows", "2"], "final/walk.png"),
        (vec!["latent-map", "gpu", "--device", "wgpu", "--n", "300", "--grid", "5"], "final/latent-scatter.png"),
        (
            vec![
                "arithmetic",
                "gpu",
                "--device",
                "wgpu",
                "--a",
                "label:3:thick",
                "--b",
                "label:3:thin",
                "--c",
                "label:7:thin",
            ],
            "final/arithmetic.png",
        ),
    ] {
        ok(&args, cwd);
        assert!(cwd.join("gpu").join(file).is_file(), "{} wrote no {file}", args[0]);
    }

    // Evaluation on the device (model samples, IWAE, feature network) against the same on the CPU.
    let eval = |device: &str| {
        let out = format!("eval-{device}.json");
        let args = [
            "eval", "gpu", "--device", device, "--n", "300", "--iwae-k", "20", "--iwae-n", "100", "--nn-n", "300",
            "--out", &out,
        ];
        ok(&args, cwd);
        json(&cwd.join(&out))
    };
    let (eg, ec) = (eval("wgpu"), eval("cpu"));
    for (key, tol) in
        [("fid", 1e-3), ("iwae_nll", 1e-4), ("elbo", 1e-4), ("precision", 1e-9), ("classifier_score", 1e-3)]
    {
        let (x, y) = (eg[key].as_f64().unwrap(), ec[key].as_f64().unwrap());
        assert!(rel(x, y) <= tol || (x - y).abs() < 1e-9, "{key}: wgpu {x} vs CPU {y}");
    }

    // A run started on the device finishes on the CPU (the other way round: the DCGAN below).
    ok(&["resume", "gpu", "--epochs", "7", "--device", "cpu"], cwd);
    let s = json(&cwd.join("gpu/summary.json"));
    assert_eq!((s["epochs"].as_u64(), s["status"].as_str()), (Some(7), Some("completed")), "{s}");
    assert_eq!(s["device"], "cpu");
}

/// The convolutional GAN path (conv, transposed conv, batch norm, two optimisers) on the device:
/// a short DCGAN run started on the CPU stops at a checkpoint, resumes on the device (both
/// optimisers' state and the batch-norm statistics move across), and samples there.
#[test]
fn a_dcgan_resumes_on_wgpu_from_the_cpu_and_trains_there() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    if !adapter() {
        return;
    }
    ok(&["train", "dcgan", "--dataset", "digits", "--max-steps", "8", "--device", "cpu", "--out", "gan"], cwd);
    assert_eq!(json(&cwd.join("gan/summary.json"))["steps"], 8);
    ok(&["resume", "gan", "--max-steps", "12", "--device", "wgpu"], cwd);
    let s = json(&cwd.join("gan/summary.json"));
    assert_eq!((s["steps"].as_u64(), s["device"].as_str()), (Some(12), Some("wgpu")), "{s}");
    for k in ["d_real", "d_fake", "g_loss"] {
        assert!(s["test"][k].as_f64().is_some_and(f64::is_finite), "{k}: {s}");
    }
    ok(&["sample", "gan", "--n", "9", "--device", "wgpu", "--out", "s.png"], cwd);
    let px = png(&cwd.join("s.png"));
    assert!(px.iter().any(|&p| p > 0) && px.iter().any(|&p| p < 255), "a blank sample sheet");
}

/// No adapter: `--device wgpu` is one error that says what to install, not a panic.
#[test]
fn without_an_adapter_wgpu_is_an_error_that_says_what_to_install() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .args(["train", "vae", "--dataset", "digits", "--epochs", "1", "--device", "wgpu", "--out", "r"])
        .current_dir(tmp.path())
        .env("LATENTLAB_DATA", shared_data())
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .env("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent/egl.json")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--device wgpu: no graphics adapter found") && err.contains("mesa-vulkan-drivers"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!tmp.path().join("r").exists(), "a run folder was left behind");
}
