//! StackGAN end to end on real digits: training both stages, text–image agreement above chance,
//! typed captions (and the errors for words it never saw), caption walks, the report section.

mod common;
use common::*;
use latentlab::app::evaluation::{self, EvalRequest};
use latentlab::app::with_defaults;
use latentlab::config::Options;
use latentlab::eval::evaluate::Metric;
use latentlab::models::ModelKind;

#[test]
fn a_short_stackgan_follows_its_captions_better_than_chance() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("sg");
    // 60 epochs of 1,500 digits: 720 steps per stage, seconds on 2 cores. (Stage I's picture is
    // 4×4 here, too small to carry a class: stage II has to read it from its own condition.)
    let cfg = quick_config(
        ModelKind::Stackgan,
        "digits",
        Options { epochs: Some(60), log_every: Some(100), seed: Some(1), ..Default::default() },
    );
    let s = train_run(&run, &cfg);
    assert_eq!(s["status"], "completed", "{s}");
    // Stage I for the first half of the steps, then stage II.
    let stages: Vec<f64> = latentlab::train::log::read(&run.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "step")
        .map(|l| l["train"]["stage"].as_f64().unwrap())
        .collect();
    assert!(stages.first() == Some(&1.0) && stages.last() == Some(&2.0), "{stages:?}");
    for f in ["final/samples.png", "final/samples-stage1.png", "final/captions.png", "samples/stage1-060.png"] {
        assert!(run.join(f).is_file(), "{f}");
    }
    let rows = std::fs::read_to_string(run.join("final/captions.txt")).unwrap();
    assert_eq!(rows.lines().next(), Some("a seven"), "{rows}");
    assert_eq!(rows.lines().count(), 7, "the class alone, then each of 6 attribute words: {rows}");

    let mut e: EvalRequest = with_defaults(&[run.as_os_str()]);
    (e.n, e.nn_n) = (297, 100);
    e.metrics = vec![Metric::Fid, Metric::Text];
    evaluation::evaluate(e).unwrap();
    let eval: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("eval.json")).unwrap()).unwrap();
    let t = &eval["text"];
    let class = |v: &serde_json::Value| v["class"].as_f64().unwrap();
    let (two, chance, real) = (class(&t["stages"][1]["agreement"]), class(&t["chance"]), class(&t["real"]));
    assert_eq!(t["stages"][0]["stage"], "I");
    assert!(real > 0.85, "the classifier reads real digits: {real}");
    assert!(chance < 0.25, "a permuted caption names the right class about 1 time in 10: {chance}");
    assert!(two > chance + 0.25, "stage II samples follow their captions' class: {two} vs chance {chance}\n{t}");
    // Real images under their own generated captions: every named attribute agrees by construction.
    assert_eq!(t["real"]["attributes_mean"].as_f64(), Some(1.0), "{t}");
    assert!(eval["protocol"]["text"].as_str().unwrap().contains("permuted caption"));

    // Typed captions: a grid of rows, words it never saw named, --text only for text models.
    let out = dir.path().join("sevens.png");
    let r = run.to_str().unwrap();
    let args =
        ["sample", r, "--text", "a thick seven", "--text", "a thin seven", "--n", "4", "--out", out.to_str().unwrap()];
    let (ok, _, err) = cli(&args, dir.path());
    assert!(ok, "{err}");
    let img = image::open(&out).unwrap();
    assert!(img.height() < img.width(), "two rows of four: {}×{}", img.width(), img.height());
    let (ok, _, err) = cli(&["sample", run.to_str().unwrap(), "--text", "a purple seven"], dir.path());
    assert!(!ok && err.contains("'purple'") && err.contains("never seen in training"), "{err}");
    let (ok, _, err) = cli(&["sample", run.to_str().unwrap(), "--text", "a seven", "--class", "3"], dir.path());
    assert!(!ok && err.contains("--class"), "{err}");
    let walk = dir.path().join("walk.png");
    let (ok, _, err) = cli(
        &[
            "walk",
            run.to_str().unwrap(),
            "--text",
            "a thin four",
            "--to",
            "a thick four",
            "--rows",
            "2",
            "--steps",
            "5",
            "--out",
            walk.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(ok && walk.is_file(), "{err}");
    let (ok, _, err) = cli(&["walk", run.to_str().unwrap(), "--to", "a four"], dir.path());
    assert!(!ok && err.contains("--text"), "{err}");

    // The comparison report gains the text section.
    let report = latentlab::report::build(std::slice::from_ref(&run)).unwrap();
    let html = dir.path().join("report.html");
    latentlab::report::write(&report, &html).unwrap();
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Text to image: sg") && page.contains("permuted captions (chance)"), "text section");
    assert!(page.contains("Stage I samples"), "stage I picture");
    assert!(
        report.runs[0].training.recipe.contains("then stage II with stage I frozen"),
        "the recipe names the stages"
    );
}

#[test]
fn text_options_are_refused_where_they_do_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let vae = dir.path().join("vae");
    train_run(&vae, &quick_config(ModelKind::Vae, "digits", Options { max_steps: Some(2), ..Default::default() }));
    let (ok, _, err) = cli(&["sample", vae.to_str().unwrap(), "--text", "a seven"], dir.path());
    assert!(!ok && err.contains("not conditioned on text"), "{err}");
    let (ok, _, err) = cli(&["sample", vae.to_str().unwrap(), "--stage", "one"], dir.path());
    assert!(!ok && err.contains("--stage one"), "{err}");
    // An unlabelled folder without captions cannot train a text model: the error names the folder.
    let imgs = dir.path().join("plain");
    std::fs::create_dir(&imgs).unwrap();
    for i in 0..12u8 {
        image::GrayImage::from_pixel(8, 8, image::Luma([i * 20])).save(imgs.join(format!("{i}.png"))).unwrap();
    }
    let out = dir.path().join("sg");
    let args = [
        "train",
        "stackgan",
        "--dataset",
        imgs.to_str().unwrap(),
        "--image-size",
        "8",
        "--max-steps",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    let (ok, _, err) = cli(&args, dir.path());
    assert!(!ok && err.contains("plain") && err.contains("captions"), "{err}");
}
