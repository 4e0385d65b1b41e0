use super::*;
use crate::eval::report::RealCoverage;
use crate::report::{RunReport, Training};

fn training(cv: f64, d: Option<(f64, f64)>) -> Training {
    Training {
        epochs: 1,
        steps: 10,
        train_seconds: 1.0,
        samples_per_sec: None,
        status: Some(Status::Completed),
        warnings: vec![],
        loss_name: "loss".into(),
        loss_cv: Some(cv),
        loss_points: 10,
        d_real: d.map(|x| x.0),
        d_fake: d.map(|x| x.1),
        recipe: "test".into(),
    }
}

fn eval(fid: f64, sharp: f64, recall: f64, covered: usize, kl: f64, nn: f64, nll: Option<f64>) -> EvalReport {
    EvalReport {
        fid: Some(fid),
        fid_floor: Some(1.0),
        kid: Some(0.01),
        precision: Some(0.8),
        recall: Some(recall),
        sharpness: Some(sharp),
        sharpness_real: Some(1.0),
        classes_covered: Some(covered),
        class_histogram: Some(vec![1; 10]),
        class_kl: Some(kl),
        nn_ratio: Some(nn),
        iwae_nll: nll,
        iwae_k: Some(5000),
        elbo: nll.map(|v| -v - 4.0),
        ..Default::default()
    }
}

fn run(model: ModelKind, t: Training, e: EvalReport) -> RunReport {
    let verdicts = judge_run(model, &t, &e);
    let readiness = readiness(&e);
    RunReport {
        name: model.name().into(),
        path: "x".into(),
        model,
        dataset: "mnist".into(),
        family: model.family(),
        training: t,
        eval: e,
        verdicts,
        readiness,
        pictures: vec![],
    }
}

#[test]
fn run_verdicts_follow_the_thresholds() {
    let v = judge_run(ModelKind::Vae, &training(0.01, None), &eval(30.0, 0.3, 0.7, 10, 0.01, 0.8, Some(90.0)));
    assert!(v.stability.verdict.starts_with("easy"));
    assert!(v.quality.verdict.starts_with("blurry"));
    assert_eq!(v.diversity.verdict, "all classes, evenly");
    assert!(v.generalisation.verdict.starts_with("memorises"));
    assert!(v.likelihood.value.contains("90.00"));
    let g = judge_run(ModelKind::Dcgan, &training(0.2, Some((0.8, 0.2))), &eval(5.0, 2.0, 0.3, 8, 0.3, 1.2, None));
    assert!(g.stability.verdict.contains("oscillating") && g.stability.verdict.contains("equilibrium"));
    assert!(g.quality.verdict.starts_with("noisy"));
    assert!(g.diversity.verdict.contains("2 class(es) missing"));
    assert!(g.generalisation.verdict.starts_with("creates"));
    assert!(g.likelihood.verdict.contains("implicit"));
    let s = judge_run(ModelKind::Dcgan, &training(0.01, Some((0.55, 0.45))), &eval(5.0, 0.9, 0.6, 10, 0.2, 1.0, None));
    assert!(s.stability.verdict.starts_with("easy") && s.quality.verdict.starts_with("sharp"));
    assert!(s.diversity.verdict.contains("unevenly") && s.generalisation.verdict.starts_with("generalises"));
}

#[test]
fn claims_follow_the_measurements_both_ways() {
    let vae = run(ModelKind::Vae, training(0.01, None), eval(30.0, 0.3, 0.7, 10, 0.01, 0.8, Some(90.0)));
    let gan = run(ModelKind::Dcgan, training(0.2, Some((0.8, 0.2))), eval(5.0, 0.9, 0.3, 8, 0.3, 1.2, None));
    let c = judge_claims(&[vae, gan]);
    assert_eq!(c.len(), 7);
    assert!(c.iter().all(|c| c.verdict == "holds"), "{c:#?}");
    // The opposite numbers give the opposite verdicts.
    let vae = run(ModelKind::Vae, training(0.3, None), eval(3.0, 1.0, 0.2, 7, 0.5, 1.3, Some(90.0)));
    let gan = run(ModelKind::Dcgan, training(0.01, Some((0.5, 0.5))), eval(50.0, 0.4, 0.9, 10, 0.0, 0.7, None));
    let c = judge_claims(&[vae.clone(), gan]);
    for (i, claim) in c.iter().enumerate().take(6) {
        assert_eq!(claim.verdict, "does not hold", "claim {i}: {claim:#?}");
    }
    // Without D outputs the equilibrium claim cannot be judged.
    let mut quiet = gan_run_without_d();
    quiet.training.d_real = None;
    let c = judge_claims(&[vae.clone(), quiet]);
    assert_eq!(c[1].verdict, "not measurable");
    // One family alone cannot test a comparison.
    assert!(judge_claims(&[vae]).iter().all(|c| c.verdict == "not measurable"));
}

/// A GAN whose classifier cannot tell what its samples are makes the sample-based verdicts
/// provisional; the likelihood claim, which needs no samples, stays firm.
#[test]
fn untrained_models_make_verdicts_provisional() {
    let mut e = eval(5.0, 0.9, 0.3, 8, 0.3, 1.2, None);
    e.classifier_score = Some(2.1);
    e.coverage_real = Some(RealCoverage { classifier_score: 9.9, class_kl: 0.0, classes_covered: 10 });
    let r = readiness(&e);
    assert!(r.provisional && r.reason.contains("2.10") && r.reason.contains("9.90"), "{r:?}");
    e.classifier_score = Some(7.5);
    assert!(!readiness(&e).provisional);
    e.precision = Some(0.05);
    assert!(readiness(&e).reason.contains("precision 0.050"));
    e.precision = Some(0.8);
    e.classifier_score = Some(2.1);
    let vae = run(ModelKind::Vae, training(0.01, None), eval(30.0, 0.3, 0.7, 10, 0.01, 0.8, Some(90.0)));
    let gan = run(ModelKind::Dcgan, training(0.2, Some((0.8, 0.2))), e);
    let c = judge_claims(&[vae, gan]);
    assert!(c[..6].iter().all(|c| c.provisional && c.reason.contains("provisional: dcgan")), "{c:#?}");
    assert!(!c[6].provisional);
    assert!(!readiness(&EvalReport::default()).provisional, "no sample metrics: nothing to judge by");
}

fn gan_run_without_d() -> RunReport {
    run(ModelKind::Dcgan, training(0.01, None), eval(50.0, 0.4, 0.9, 10, 0.0, 0.7, None))
}

#[test]
fn detrended_oscillation_ignores_a_steady_decline() {
    let line: Vec<f64> = (0..20).map(|i| 100.0 - i as f64).collect();
    assert!(crate::report::detrended_cv(&line).unwrap() < 1e-9);
    let zigzag: Vec<f64> = (0..20).map(|i| 10.0 + if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
    let cv = crate::report::detrended_cv(&zigzag).unwrap();
    assert!((cv - 0.1).abs() < 0.01, "{cv}");
    assert!(crate::report::detrended_cv(&[1.0, 2.0]).is_none());
}

/// An eval.json from before a metric existed (the key absent, not null) loads with that metric
/// None, and the report shows "—" for exactly that number: every other cell is unchanged.
#[test]
fn an_old_eval_json_missing_a_metric_shows_a_dash_for_exactly_that_metric() {
    let text = include_str!("../../../tests/fixtures/eval-vae.json");
    let full: EvalReport = serde_json::from_str(text).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
    v.as_object_mut().unwrap().remove("kid");
    let old: EvalReport = serde_json::from_value(v).unwrap();
    assert_eq!(old.kid, None);
    let t = training(0.01, None);
    let (a, b) = (judge_run(ModelKind::Vae, &t, &full), judge_run(ModelKind::Vae, &t, &old));
    assert!(a.quality.value.contains(&format!("KID {:.4},", full.kid.unwrap())), "{}", a.quality.value);
    assert_eq!(b.quality.value, a.quality.value.replace(&format!("KID {:.4},", full.kid.unwrap()), "KID —,"));
    assert_eq!((&b.quality.verdict, b.quality.tone), (&a.quality.verdict, a.quality.tone));
    for (x, y) in [(&a.stability, &b.stability), (&a.diversity, &b.diversity), (&a.likelihood, &b.likelihood)] {
        assert_eq!((&x.value, &x.verdict), (&y.value, &y.verdict));
    }
    assert_eq!(a.generalisation.value, b.generalisation.value);
}

/// Sides are chosen by `ModelKind`, not by the words shown: a CVAE counts as a VAE, a cGAN as a
/// GAN, and an AE or AAE as neither.
#[test]
fn claims_pick_sides_by_model_kind() {
    let cvae = run(ModelKind::Cvae, training(0.01, None), eval(30.0, 0.3, 0.7, 10, 0.01, 0.8, Some(90.0)));
    let cgan = run(ModelKind::Cgan, training(0.2, Some((0.8, 0.2))), eval(5.0, 0.9, 0.3, 8, 0.3, 1.2, None));
    assert!(judge_claims(&[cvae.clone(), cgan.clone()]).iter().all(|c| c.verdict == "holds"));
    let ae = run(ModelKind::Ae, training(0.01, None), eval(30.0, 0.3, 0.7, 10, 0.01, 0.8, None));
    let aae = run(ModelKind::Aae, training(0.01, None), eval(30.0, 0.3, 0.7, 10, 0.01, 0.8, None));
    assert!(judge_claims(&[ae.clone(), cgan]).iter().all(|c| c.verdict == "not measurable"));
    assert!(judge_claims(&[cvae, aae.clone()]).iter().all(|c| c.verdict == "not measurable"));
    // The words report.json has always shown.
    let shown = |r: &RunReport| serde_json::to_value(r).unwrap();
    let (a, e) = (shown(&aae), shown(&ae));
    assert_eq!((&a["model"], &a["family"]), (&serde_json::json!("aae"), &serde_json::json!("adversarial autoencoder")));
    assert_eq!(
        (&e["family"], &e["training"]["status"]),
        (&serde_json::json!("likelihood"), &serde_json::json!("completed"))
    );
    assert_eq!(serde_json::to_value(ModelKind::Dcgan.family()).unwrap(), "GAN");
    let unknown = Training { status: None, ..training(0.01, None) };
    assert_eq!(serde_json::to_value(&unknown).unwrap()["status"], "unknown");
}

#[test]
fn a_diverged_status_is_a_diverged_verdict() {
    let t = Training { status: Some(Status::Diverged), ..training(0.01, None) };
    let v = judge_run(ModelKind::Vae, &t, &EvalReport::default());
    assert_eq!((v.stability.verdict.as_str(), v.stability.tone), ("diverged", "bad"));
    assert!(v.stability.value.contains("1 NaN/collapse event(s)"));
    assert_eq!(v.quality.verdict, "not measured");
}

/// Faces have attributes, not classes: the mode-collapse claim weighs recall with how far each
/// model's attribute rates stray from the real ones (`attribute_gap`).
#[test]
fn mode_collapse_on_faces_reads_the_attribute_gap() {
    let faces = |recall: f64, gap: f64| EvalReport {
        classes_covered: None,
        class_histogram: None,
        class_kl: None,
        attribute_gap: Some(gap),
        ..eval(10.0, 0.5, recall, 0, 0.0, 1.0, None)
    };
    let claim = |v: EvalReport, g: EvalReport| {
        let vae = run(ModelKind::Vae, training(0.01, None), v);
        let gan = run(ModelKind::Dcgan, training(0.2, Some((0.8, 0.2))), g);
        judge_claims(&[vae, gan]).into_iter().find(|c| c.claim.contains("mode collapse")).unwrap()
    };
    let c = claim(faces(0.5, 0.05), faces(0.2, 0.12));
    assert_eq!(c.verdict, "holds");
    assert!(c.reason.contains("attribute rates are further from the real ones"), "{}", c.reason);
    assert!(c.gan.contains("attribute gap 0.120"), "{}", c.gan);
    let c = claim(faces(0.006, 0.10), faces(0.02, 0.08));
    assert_eq!(c.verdict, "does not hold", "{}", c.reason);
}
