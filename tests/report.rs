//! The comparison report end to end: `compare --dataset digits --quick` trains a VAE and a DCGAN
//! (capped at 300 updates each: the pipeline, not the verdicts, is under test; the full quick
//! protocol took 95 s of CI), evaluates them and writes report.html + report.json; headless Chromium must render the page
//! with every picture decoded (a screenshot is kept under target/test-artifacts/).

mod common;
use base64::Engine;
use common::cdp::chromium;
use common::*;
use std::path::{Path, PathBuf};

fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-cache")
}

fn cli_cached(args: &[&str], cwd: &Path) -> (bool, String, String) {
    cli_env(args, cwd, &[("LATENTLAB_CACHE", &cache())])
}

fn headless(browser: &str, extra: &[&str], page: &Path, profile: &Path) -> std::process::Output {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    std::process::Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .unwrap()
}

#[test]
fn compare_writes_a_self_contained_report_that_chromium_renders() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, err) = cli_cached(
        &["compare", "--dataset", "digits", "--quick", "--max-steps", "300", "--out", "cmp/report.html"],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(stdout.contains("VAE samples are blurry"), "{stdout}");
    let html_path = dir.path().join("cmp/report.html");
    let html = std::fs::read_to_string(&html_path).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("cmp/report.json")).unwrap()).unwrap();

    // The data: two runs, the seeds' claims, each judged from numbers.
    assert_eq!(json["runs"].as_array().unwrap().len(), 2);
    assert_eq!(json["runs"][0]["model"], "vae");
    assert_eq!(json["runs"][1]["model"], "dcgan");
    for run in ["vae-quick", "dcgan-quick"] {
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("cmp").join(run).join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(summary["steps"], 300, "{run}: --max-steps caps the training");
    }
    let claims = json["claims"].as_array().unwrap();
    assert_eq!(claims.len(), 7);
    for c in claims {
        let v = c["verdict"].as_str().unwrap();
        assert!(["holds", "does not hold", "partly", "not measurable"].contains(&v), "{c}");
        assert!(!c["reason"].as_str().unwrap().is_empty());
        assert!(html.contains(c["claim"].as_str().unwrap()));
    }
    assert!(json["runs"][0]["eval"]["iwae_nll"].is_number());
    assert!(json["runs"][1]["eval"]["iwae_nll"].is_null());
    assert!(json["runs"][0]["eval"]["protocol"]["feature_network"]["sha256"].is_string());

    // Self-contained: no external resources; every picture is an inline PNG that decodes.
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    let srcs: Vec<&str> =
        html.split("src=\"data:image/png;base64,").skip(1).map(|s| &s[..s.find('"').unwrap()]).collect();
    assert!(srcs.len() >= 12, "only {} pictures", srcs.len());
    for s in &srcs {
        let png = base64::engine::general_purpose::STANDARD.decode(s).unwrap();
        assert!(image::load_from_memory(&png).unwrap().width() > 0);
    }

    // A real browser: the DOM after load has both tables and every image decoded; keep a screenshot.
    let Some(browser) = chromium() else { return };
    let profile = dir.path().join("profile");
    let dom = headless(&browser, &["--dump-dom"], &html_path, &profile);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.status.success(), "chromium failed: {}", String::from_utf8_lossy(&dom.stderr));
    assert!(dom_text.contains("id=\"claims\"") && dom_text.contains("id=\"table\""));
    let want = format!("data-images=\"{0}/{0}\"", srcs.len());
    assert!(dom_text.contains(&want), "not every image rendered: expected {want} in the DOM");
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let out = headless(
        &browser,
        &[&format!("--screenshot={}", shot.display()), "--window-size=1280,2400"],
        &html_path,
        &profile,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let img = image::open(&shot).unwrap().to_rgb8();
    assert_eq!(img.width(), 1280);
    // Not a blank page: many distinct colours.
    let distinct: std::collections::HashSet<[u8; 3]> = img.pixels().step_by(97).map(|p| p.0).collect();
    assert!(distinct.len() > 20, "screenshot looks blank ({} colours)", distinct.len());
}

#[test]
fn compare_refuses_bad_requests_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = cli_cached(&["compare"], dir.path());
    assert!(!ok && err.contains("--dataset"), "{err}");
    let (ok, _, err) = cli_cached(&["compare", "no/such/run"], dir.path());
    assert!(!ok && err.contains("no/such/run"), "{err}");
    let (ok, _, err) = cli_cached(&["compare", "no/such/run", "--max-steps", "5"], dir.path());
    assert!(!ok && err.contains("--max-steps caps the default pair"), "{err}");
    // Runs on different datasets cannot share one table.
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let opts = |ds: &str| {
        quick_config(
            latentlab::models::ModelKind::Ae,
            ds,
            latentlab::config::Options { max_steps: Some(5), ..Default::default() },
        )
    };
    train_run(&a, &opts("digits"));
    train_run(&b, &opts("mnist"));
    for r in [&a, &b] {
        std::fs::write(r.join("eval.json"), "{}").unwrap();
    }
    let (ok, _, err) = cli_cached(&["compare", a.to_str().unwrap(), b.to_str().unwrap()], dir.path());
    assert!(!ok && err.contains("different datasets"), "{err}");
}
