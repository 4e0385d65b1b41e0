//! Verdicts from numbers. Every threshold is a named constant here, every verdict carries the
//! numbers it came from, and no text is chosen without a measurement behind it.

use super::{RunReport, Training};
use crate::models::ModelKind;
use serde::Serialize;
use serde_json::Value;

/// Detrended loss coefficient of variation below which training counts as smooth.
pub const SMOOTH_CV: f64 = 0.05;
/// |D(x) − D(G(z))| above which the discriminator is winning rather than at the ½/½ equilibrium.
pub const D_GAP: f64 = 0.2;
/// Sharpness relative to real images: below = blurry, above `NOISY` = noisier than real.
pub const BLURRY: f64 = 0.5;
pub const NOISY: f64 = 1.5;
/// KL(p̂(y) ‖ uniform) above which class frequencies are uneven.
pub const UNEVEN_KL: f64 = 0.05;
/// nn_ratio band of "as close to the training set as unseen real images".
pub const NN_LOW: f64 = 0.9;
pub const NN_HIGH: f64 = 1.1;
/// A model is far from trained — verdicts resting on its samples are provisional — when its
/// samples' classifier score is below this fraction of real test images' score (the dataset's
/// classifier cannot tell what most samples are)…
pub const UNTRAINED_SCORE: f64 = 0.5;
/// …or when fewer than this fraction of samples fall inside the real images' manifold (precision).
pub const UNTRAINED_PRECISION: f64 = 0.1;

/// The one claim that needs no samples: it is never provisional.
const LIKELIHOOD_CLAIM: &str = "A VAE gives a likelihood (bound); a GAN gives none";

/// Whether a run is trained far enough for sample-based verdicts, and the numbers behind it.
#[derive(Clone, Debug, Serialize)]
pub struct Readiness {
    pub provisional: bool,
    pub reason: String,
}

/// `provisional` when the samples' classifier score is below `UNTRAINED_SCORE` × the real images'
/// or their precision is below `UNTRAINED_PRECISION`.
pub fn readiness(e: &Value) -> Readiness {
    let score = num(e, "classifier_score");
    let real = e["coverage_real"]["classifier_score"].as_f64();
    let precision = num(e, "precision");
    let mut why = vec![];
    if let (Some(s), Some(r)) = (score, real)
        && s < UNTRAINED_SCORE * r
    {
        why.push(format!("classifier score {s:.2} < {UNTRAINED_SCORE} × real images' {r:.2}"));
    }
    if let Some(p) = precision
        && p < UNTRAINED_PRECISION
    {
        why.push(format!("precision {p:.3} < {UNTRAINED_PRECISION}"));
    }
    match (why.is_empty(), score.or(precision)) {
        (false, _) => Readiness { provisional: true, reason: format!("far from trained: {}", why.join("; ")) },
        (true, Some(_)) => Readiness {
            provisional: false,
            reason: format!(
                "trained enough to judge: classifier score {} (real {}), precision {}",
                f(score, 2),
                f(real, 2),
                f(precision, 3)
            ),
        },
        (true, None) => Readiness { provisional: false, reason: "not checked (no sample metrics)".into() },
    }
}

/// One cell: the measured numbers in words and the verdict that follows.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    pub value: String,
    pub verdict: String,
    /// good | bad | neutral (for colouring).
    pub tone: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct RunVerdicts {
    pub stability: Cell,
    pub quality: Cell,
    pub diversity: Cell,
    pub generalisation: Cell,
    pub likelihood: Cell,
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v[k].as_f64()
}

fn sharp_ratio(e: &Value) -> Option<f64> {
    Some(num(e, "sharpness")? / num(e, "sharpness_real")?.max(1e-12))
}

fn covered_all(e: &Value) -> Option<(u64, usize)> {
    let c = e["classes_covered"].as_u64()?;
    let k = e["class_histogram"].as_array().map(|a| a.len())?;
    Some((c, k))
}

fn d_gap(t: &Training) -> Option<f64> {
    Some((t.d_real? - t.d_fake?).abs())
}

fn f(v: Option<f64>, prec: usize) -> String {
    v.map_or("—".into(), |x| format!("{x:.prec$}"))
}

pub fn judge_run(kind: ModelKind, t: &Training, e: &Value) -> RunVerdicts {
    // Stability.
    let events = t.warnings.len() + usize::from(t.status == "diverged");
    let mut parts =
        vec![format!("{} oscillation {} (detrended CV, last {} logs)", t.loss_name, f(t.loss_cv, 3), t.loss_points)];
    if let (Some(r), Some(fk)) = (t.d_real, t.d_fake) {
        parts.push(format!("D(x) {r:.2}, D(G(z)) {fk:.2}"));
    }
    parts.push(format!("{events} NaN/collapse event(s)"));
    let smooth = t.loss_cv.map(|c| c < SMOOTH_CV);
    let balanced = d_gap(t).is_none_or(|g| g <= D_GAP);
    let value = parts.join("; ");
    let stability = if t.status == "diverged" {
        Cell { value, verdict: "diverged".into(), tone: "bad" }
    } else if events == 0 && smooth == Some(true) && balanced {
        Cell { value, verdict: "easy: smooth loss, no events".into(), tone: "good" }
    } else if events == 0 && smooth.is_none() && balanced {
        Cell { value, verdict: "no events; too few logged steps to judge oscillation".into(), tone: "neutral" }
    } else {
        let mut why = vec![];
        if smooth == Some(false) {
            why.push("oscillating loss");
        }
        if !balanced {
            why.push("D far from the ½/½ equilibrium");
        }
        if events > 0 {
            why.push("guard events");
        }
        Cell { value, verdict: format!("hard: {}", why.join(", ")), tone: "bad" }
    };

    // Image quality.
    let sr = sharp_ratio(e);
    let quality = Cell {
        value: format!(
            "FID {} (floor {}), KID {}, precision {}, sharpness {}× real",
            f(num(e, "fid"), 2),
            f(num(e, "fid_floor"), 2),
            f(num(e, "kid"), 4),
            f(num(e, "precision"), 3),
            f(sr, 2)
        ),
        verdict: match sr {
            Some(r) if r < BLURRY => "blurry (smoother than real images)".into(),
            Some(r) if r > NOISY => "noisy: sharper than real, speckle/artifacts".into(),
            Some(_) => "sharp (real-like detail)".into(),
            None => "not measured".into(),
        },
        tone: match sr {
            Some(r) if (BLURRY..=NOISY).contains(&r) => "good",
            Some(_) => "bad",
            None => "neutral",
        },
    };

    // Diversity.
    let cov = covered_all(e);
    let kl = num(e, "class_kl");
    let diversity = Cell {
        value: format!(
            "recall {}, classes {}, KL to uniform {}",
            f(num(e, "recall"), 3),
            cov.map_or("—".into(), |(c, k)| format!("{c}/{k}")),
            f(kl, 3)
        ),
        verdict: match (cov, kl) {
            (Some((c, k)), _) if (c as usize) < k => format!("mode collapse: {} class(es) missing", k - c as usize),
            (_, Some(kl)) if kl > UNEVEN_KL => "all classes, unevenly (partial mode collapse)".into(),
            (Some(_), Some(_)) => "all classes, evenly".into(),
            _ => "not measured".into(),
        },
        tone: match (cov, kl) {
            (Some((c, k)), Some(kl)) if c as usize == k && kl <= UNEVEN_KL => "good",
            (Some(_), _) => "bad",
            _ => "neutral",
        },
    };

    // Generalisation.
    let nn = num(e, "nn_ratio");
    let copies = e["memorization"]["exact_copies"].as_u64();
    let generalisation = Cell {
        value: format!(
            "nn ratio {} (median sample→train / test→train), {} exact copies",
            f(nn, 3),
            copies.map_or("—".into(), |c| c.to_string())
        ),
        verdict: match nn {
            Some(r) if r < NN_LOW => "memorises: samples sit closer to training images than unseen images do".into(),
            Some(r) if r > NN_HIGH => "creates new images (farther from the training set than real images)".into(),
            Some(_) => "generalises: as close to the training set as unseen real images".into(),
            None => "not measured".into(),
        },
        tone: match nn {
            Some(r) if r < NN_LOW => "bad",
            Some(_) => "good",
            None => "neutral",
        },
    };

    // Likelihood.
    let likelihood = match num(e, "iwae_nll") {
        Some(v) => Cell {
            value: format!("IWAE NLL {v:.2} nats (k = {}), ELBO {}", e["iwae_k"], f(num(e, "elbo"), 2)),
            verdict: "defined (upper bound on −log p(x))".into(),
            tone: "good",
        },
        None => Cell {
            value: "—".into(),
            verdict: if kind.is_gan() {
                "not defined (a GAN's density is implicit)".into()
            } else {
                "not defined (deterministic decoder)".into()
            },
            tone: "neutral",
        },
    };
    RunVerdicts { stability, quality, diversity, generalisation, likelihood }
}

/// One row of the seeds' table tested against the runs.
#[derive(Clone, Debug, Serialize)]
pub struct Claim {
    pub claim: String,
    pub vae: String,
    pub gan: String,
    /// holds | does not hold | partly | not measurable
    pub verdict: String,
    pub reason: String,
    /// The verdict rests on a run that is far from trained (`readiness`): it may change with
    /// more training.
    pub provisional: bool,
}

fn mean(v: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let xs: Vec<f64> = v.flatten().collect();
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The seeds' claims, judged by comparing the VAE-family runs (vae, cvae) with the GAN runs.
/// With runs of only one family the claims are listed as not measurable.
pub fn judge_claims(runs: &[RunReport]) -> Vec<Claim> {
    let vae: Vec<&RunReport> = runs.iter().filter(|r| r.model == "vae" || r.model == "cvae").collect();
    let gan: Vec<&RunReport> = runs.iter().filter(|r| r.family == "GAN").collect();
    let both = !vae.is_empty() && !gan.is_empty();
    let untrained: Vec<String> =
        vae.iter().chain(&gan).filter(|r| r.readiness.provisional).map(|r| r.name.clone()).collect();
    let m = |rs: &[&RunReport], g: &dyn Fn(&RunReport) -> Option<f64>| mean(rs.iter().map(|r| g(r)));
    let ev = |k: &'static str| move |r: &RunReport| num(&r.eval, k);
    let mut out = Vec::new();
    // Every claim but the likelihood one rests on the models' samples or training dynamics.
    let mut push = |claim: &str, vs: String, gs: String, verdict: &str, reason: String| {
        let rests_on_samples = claim != LIKELIHOOD_CLAIM;
        let provisional = both && rests_on_samples && !untrained.is_empty() && verdict != "not measurable";
        let reason = if provisional {
            format!("{reason} — provisional: {} far from trained", untrained.join(", "))
        } else {
            reason
        };
        out.push(Claim {
            claim: claim.into(),
            vae: vs,
            gan: gs,
            verdict: if both { verdict.into() } else { "not measurable".into() },
            reason: if both { reason } else { "needs a VAE run and a GAN run on the same dataset".into() },
            provisional,
        })
    };

    // 1. Optimisation: easy vs hard.
    let cv = |r: &RunReport| r.training.loss_cv;
    let (vcv, gcv) = (m(&vae, &cv), m(&gan, &cv));
    let vev: usize = vae.iter().map(|r| r.training.warnings.len()).sum();
    let gev: usize = gan.iter().map(|r| r.training.warnings.len()).sum();
    let (verdict, reason) = match (vcv, gcv) {
        (Some(a), Some(b)) if a < b && vev == 0 => (
            "holds",
            format!("the VAE's logged loss oscillates less ({a:.3}) than the GAN's ({b:.3}) and raised no events"),
        ),
        (Some(a), Some(b)) => (
            "does not hold",
            format!("VAE oscillation {a:.3} vs GAN {b:.3}, {vev} VAE event(s): the VAE was not the easier one"),
        ),
        _ => {
            ("not measurable", "too few logged steps to measure oscillation (train longer or lower --log-every)".into())
        }
    };
    push(
        "VAE is easy to train, GAN is hard",
        format!("loss oscillation {}, {vev} events", f(vcv, 3)),
        format!("g_loss oscillation {}, {gev} events", f(gcv, 3)),
        verdict,
        reason,
    );

    // 2. The game does not settle at ½.
    let gaps: Vec<f64> = gan.iter().filter_map(|r| d_gap(&r.training)).collect();
    let off = gaps.iter().any(|&g| g > D_GAP);
    let settle_verdict = if gaps.is_empty() {
        "not measurable"
    } else if off {
        "holds"
    } else {
        "does not hold"
    };
    push(
        "GAN training is unstable: D(x) and D(G(z)) do not settle at ½",
        "no discriminator".into(),
        gan.iter()
            .map(|r| format!("D(x) {}, D(G(z)) {}", f(r.training.d_real, 2), f(r.training.d_fake, 2)))
            .collect::<Vec<_>>()
            .join("; "),
        settle_verdict,
        format!(
            "largest |D(x) − D(G(z))| at the end of training is {} (threshold {D_GAP})",
            f(gaps.iter().cloned().fold(None, |a: Option<f64>, g| Some(a.map_or(g, |a| a.max(g)))), 2)
        ),
    );

    // 3. Blurry vs sharp.
    let (vs, gs) = (m(&vae, &|r| sharp_ratio(&r.eval)), m(&gan, &|r| sharp_ratio(&r.eval)));
    let (verdict, reason) = match (vs, gs) {
        (Some(a), Some(b)) if a < b && a < BLURRY => {
            ("holds", format!("VAE samples have {a:.2}× the Laplacian variance of real images, GAN samples {b:.2}×"))
        }
        (Some(a), Some(b)) if a < b => (
            "partly",
            format!("VAE samples are smoother than GAN samples ({a:.2}× vs {b:.2}× real) but not below {BLURRY}×"),
        ),
        (Some(a), Some(b)) => ("does not hold", format!("VAE samples are not smoother: {a:.2}× vs {b:.2}× real")),
        _ => ("not measurable", "sharpness not measured".into()),
    };
    push(
        "VAE samples are blurry, GAN samples are sharp",
        format!("sharpness {}× real", f(vs, 2)),
        format!("sharpness {}× real", f(gs, 2)),
        verdict,
        reason,
    );

    // 4. Quality by FID.
    let (vf, gf) = (m(&vae, &ev("fid")), m(&gan, &ev("fid")));
    let (verdict, reason) = match (vf, gf) {
        (Some(a), Some(b)) if b < a => ("holds", format!("GAN FID {b:.2} < VAE FID {a:.2}")),
        (Some(a), Some(b)) => ("does not hold", format!("GAN FID {b:.2} ≥ VAE FID {a:.2}")),
        _ => ("not measurable", "FID not measured".into()),
    };
    push(
        "GAN samples are closer to the data (FID) than VAE samples",
        format!("FID {}", f(vf, 2)),
        format!("FID {}", f(gf, 2)),
        verdict,
        reason,
    );

    // 5. Mode collapse.
    let (vr, gr) = (m(&vae, &ev("recall")), m(&gan, &ev("recall")));
    let (vk, gk) = (m(&vae, &ev("class_kl")), m(&gan, &ev("class_kl")));
    let missing = |rs: &[&RunReport]| -> usize {
        rs.iter().filter_map(|r| covered_all(&r.eval)).map(|(c, k)| k.saturating_sub(c as usize)).sum()
    };
    let (vm, gm) = (missing(&vae), missing(&gan));
    let lower_recall = matches!((vr, gr), (Some(a), Some(b)) if b < a);
    let more_uneven = matches!((vk, gk), (Some(a), Some(b)) if b > a) || gm > vm;
    let verdict = match (lower_recall, more_uneven) {
        (true, true) => "holds",
        (false, false) => "does not hold",
        _ => "partly",
    };
    push(
        "GANs are prone to mode collapse (less diversity)",
        format!("recall {}, KL to uniform {}, {vm} classes missing", f(vr, 3), f(vk, 3)),
        format!("recall {}, KL to uniform {}, {gm} classes missing", f(gr, 3), f(gk, 3)),
        verdict,
        format!(
            "GAN recall is {} the VAE's; its class frequencies are {} even",
            if lower_recall { "below" } else { "not below" },
            if more_uneven { "less" } else { "no less" }
        ),
    );

    // 6. Memorise vs create.
    let (vn, gn) = (m(&vae, &ev("nn_ratio")), m(&gan, &ev("nn_ratio")));
    let (verdict, reason) = match (vn, gn) {
        (Some(a), Some(b)) if a < b && a < NN_LOW => (
            "holds",
            format!(
                "VAE samples sit closer to their nearest training image ({a:.2}× the test-image distance) than GAN samples ({b:.2}×)"
            ),
        ),
        (Some(a), Some(b)) if a < b => (
            "partly",
            format!(
                "VAE samples are closer to training images than GAN samples ({a:.2}× vs {b:.2}×) but not below {NN_LOW}×"
            ),
        ),
        (Some(a), Some(b)) => {
            ("does not hold", format!("VAE samples are no closer to training images: {a:.2}× vs GAN {b:.2}×"))
        }
        _ => ("not measurable", "nearest neighbours not measured".into()),
    };
    push(
        "VAE memorises, GAN makes new images",
        format!("nn ratio {}", f(vn, 3)),
        format!("nn ratio {}", f(gn, 3)),
        verdict,
        reason,
    );

    // 7. Likelihood.
    let vl = m(&vae, &ev("iwae_nll"));
    let gl = gan.iter().any(|r| num(&r.eval, "iwae_nll").is_some());
    push(
        LIKELIHOOD_CLAIM,
        format!("IWAE NLL {} nats", f(vl, 2)),
        "not defined".into(),
        if vl.is_some() && !gl { "holds" } else { "does not hold" },
        "IWAE bound computed where the model defines p(x|z) and q(z|x)".into(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{RunReport, Training};
    use serde_json::json;

    fn training(cv: f64, d: Option<(f64, f64)>) -> Training {
        Training {
            epochs: 1,
            steps: 10,
            train_seconds: 1.0,
            samples_per_sec: None,
            status: "completed".into(),
            warnings: vec![],
            loss_name: "loss".into(),
            loss_cv: Some(cv),
            loss_points: 10,
            d_real: d.map(|x| x.0),
            d_fake: d.map(|x| x.1),
            recipe: "test".into(),
        }
    }

    fn eval(fid: f64, sharp: f64, recall: f64, covered: u64, kl: f64, nn: f64, nll: Option<f64>) -> Value {
        json!({"fid": fid, "fid_floor": 1.0, "kid": 0.01, "precision": 0.8, "recall": recall, "sharpness": sharp,
               "sharpness_real": 1.0, "classes_covered": covered, "class_histogram": vec![1; 10], "class_kl": kl,
               "nn_ratio": nn, "iwae_nll": nll, "iwae_k": 5000, "elbo": nll.map(|v| -v - 4.0)})
    }

    fn run(model: ModelKind, t: Training, e: Value) -> RunReport {
        let verdicts = judge_run(model, &t, &e);
        let readiness = readiness(&e);
        RunReport {
            name: model.name().into(),
            path: "x".into(),
            model: model.name().into(),
            dataset: "mnist".into(),
            family: if model.is_gan() { "GAN".into() } else { "likelihood".into() },
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
        let s =
            judge_run(ModelKind::Dcgan, &training(0.01, Some((0.55, 0.45))), &eval(5.0, 0.9, 0.6, 10, 0.2, 1.0, None));
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
        e["classifier_score"] = json!(2.1);
        e["coverage_real"] = json!({"classifier_score": 9.9});
        let r = readiness(&e);
        assert!(r.provisional && r.reason.contains("2.10") && r.reason.contains("9.90"), "{r:?}");
        e["classifier_score"] = json!(7.5);
        assert!(!readiness(&e).provisional);
        e["precision"] = json!(0.05);
        assert!(readiness(&e).reason.contains("precision 0.050"));
        e["precision"] = json!(0.8);
        e["classifier_score"] = json!(2.1);
        let vae = run(ModelKind::Vae, training(0.01, None), eval(30.0, 0.3, 0.7, 10, 0.01, 0.8, Some(90.0)));
        let gan = run(ModelKind::Dcgan, training(0.2, Some((0.8, 0.2))), e);
        let c = judge_claims(&[vae, gan]);
        assert!(c[..6].iter().all(|c| c.provisional && c.reason.contains("provisional: dcgan")), "{c:#?}");
        assert!(!c[6].provisional);
        assert!(!readiness(&json!({})).provisional, "no sample metrics: nothing to judge by");
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
}
