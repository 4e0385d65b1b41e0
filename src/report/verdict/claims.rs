//! The seeds' claims, each judged by comparing the VAE-family runs with the GAN runs.

use super::{BLURRY, D_GAP, NN_LOW, covered_all, d_gap, f, sharp_ratio};
use crate::eval::EvalReport;
use crate::models::ModelKind;
use crate::report::RunReport;
use serde::Serialize;

/// The one claim that needs no samples: it is never provisional.
const LIKELIHOOD_CLAIM: &str = "A VAE gives a likelihood (bound); a GAN gives none";

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
    /// The one number the verdict turns on, for judging it over seeds (`study`); None where the
    /// verdict is not a comparison of measurements (likelihood) or was not measurable.
    pub stat: Option<Stat>,
}

/// The number a claim turns on (mostly a VAE − GAN difference) and the side of `threshold` on
/// which the claim holds.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Stat {
    pub name: String,
    pub value: f64,
    pub threshold: f64,
    /// The claim holds when `value > threshold` (else when `value < threshold`).
    pub holds_above: bool,
}

impl Stat {
    fn new(name: &str, value: Option<f64>, threshold: f64, holds_above: bool) -> Option<Stat> {
        value.filter(|v| v.is_finite()).map(|value| Stat { name: name.into(), value, threshold, holds_above })
    }
}

fn diff(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? - b?)
}

fn mean(v: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let xs: Vec<f64> = v.flatten().collect();
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The seeds' claims, judged by comparing the VAE-family runs (vae, cvae) with the GAN runs.
/// With runs of only one family the claims are listed as not measurable.
pub fn judge_claims(runs: &[RunReport]) -> Vec<Claim> {
    let vae: Vec<&RunReport> = runs.iter().filter(|r| matches!(r.model, ModelKind::Vae | ModelKind::Cvae)).collect();
    let gan: Vec<&RunReport> = runs.iter().filter(|r| r.model.is_gan()).collect();
    let both = !vae.is_empty() && !gan.is_empty();
    let untrained: Vec<String> =
        vae.iter().chain(&gan).filter(|r| r.readiness.provisional).map(|r| r.name.clone()).collect();
    let m = |rs: &[&RunReport], g: &dyn Fn(&RunReport) -> Option<f64>| mean(rs.iter().map(|r| g(r)));
    // One metric of a run's eval.json, by field: a typo does not compile.
    let ev = |g: fn(&EvalReport) -> Option<f64>| move |r: &RunReport| g(&r.eval);
    let mut out = Vec::new();
    // Every claim but the likelihood one rests on the models' samples or training dynamics.
    let mut push = |claim: &str, vs: String, gs: String, verdict: &str, reason: String, stat: Option<Stat>| {
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
            stat: if both { stat } else { None },
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
        Stat::new("VAE − GAN loss oscillation", diff(vcv, gcv), 0.0, false),
    );

    // 2. The game does not settle at ½.
    let gaps: Vec<f64> = gan.iter().filter_map(|r| d_gap(&r.training)).collect();
    let off = gaps.iter().any(|&g| g > D_GAP);
    let widest = gaps.iter().cloned().fold(None, |a: Option<f64>, g| Some(a.map_or(g, |a| a.max(g))));
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
        format!("largest |D(x) − D(G(z))| at the end of training is {} (threshold {D_GAP})", f(widest, 2)),
        Stat::new("GAN |D(x) − D(G(z))|", widest, D_GAP, true),
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
        Stat::new("VAE − GAN sharpness (× real)", diff(vs, gs), 0.0, false),
    );

    // 4. Quality by FID.
    let (vf, gf) = (m(&vae, &ev(|e| e.fid)), m(&gan, &ev(|e| e.fid)));
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
        Stat::new("VAE − GAN FID", diff(vf, gf), 0.0, true),
    );

    // 5. Mode collapse.
    let (vr, gr) = (m(&vae, &ev(|e| e.recall)), m(&gan, &ev(|e| e.recall)));
    let (vk, gk) = (m(&vae, &ev(|e| e.class_kl)), m(&gan, &ev(|e| e.class_kl)));
    let missing = |rs: &[&RunReport]| -> usize {
        rs.iter().filter_map(|r| covered_all(&r.eval)).map(|(c, k)| k.saturating_sub(c)).sum()
    };
    let (vm, gm) = (missing(&vae), missing(&gan));
    let lower_recall = matches!((vr, gr), (Some(a), Some(b)) if b < a);
    // Faces have attributes, not classes: evenness is then how far the attribute rates stray.
    let (va, ga) = (m(&vae, &ev(|e| e.attribute_gap)), m(&gan, &ev(|e| e.attribute_gap)));
    let by_attributes = vk.is_none() && gk.is_none() && va.is_some() && ga.is_some();
    let more_uneven = if by_attributes {
        matches!((va, ga), (Some(a), Some(b)) if b > a)
    } else {
        matches!((vk, gk), (Some(a), Some(b)) if b > a) || gm > vm
    };
    let verdict = match (lower_recall, more_uneven) {
        (true, true) => "holds",
        (false, false) => "does not hold",
        _ => "partly",
    };
    let side = |r: Option<f64>, k: Option<f64>, a: Option<f64>, missing: usize| {
        if by_attributes {
            format!("recall {}, attribute gap {}", f(r, 3), f(a, 3))
        } else {
            format!("recall {}, KL to uniform {}, {missing} classes missing", f(r, 3), f(k, 3))
        }
    };
    push(
        "GANs are prone to mode collapse (less diversity)",
        side(vr, vk, va, vm),
        side(gr, gk, ga, gm),
        verdict,
        format!(
            "GAN recall is {} the VAE's; its {} {}",
            if lower_recall { "below" } else { "not below" },
            if by_attributes { "attribute rates are" } else { "class frequencies are" },
            match (by_attributes, more_uneven) {
                (true, true) => "further from the real ones",
                (true, false) => "no further from the real ones",
                (false, true) => "less even",
                (false, false) => "no less even",
            }
        ),
        Stat::new("VAE − GAN recall", diff(vr, gr), 0.0, true),
    );

    // 6. Memorise vs create.
    let (vn, gn) = (m(&vae, &ev(|e| e.nn_ratio)), m(&gan, &ev(|e| e.nn_ratio)));
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
        Stat::new("VAE − GAN nn ratio", diff(vn, gn), 0.0, false),
    );

    // 7. Likelihood.
    let vl = m(&vae, &ev(|e| e.iwae_nll));
    let gl = gan.iter().any(|r| r.eval.iwae_nll.is_some());
    push(
        LIKELIHOOD_CLAIM,
        format!("IWAE NLL {} nats", f(vl, 2)),
        "not defined".into(),
        if vl.is_some() && !gl { "holds" } else { "does not hold" },
        "IWAE bound computed where the model defines p(x|z) and q(z|x)".into(),
        None,
    );
    out
}
