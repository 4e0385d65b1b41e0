//! Verdicts from numbers. Every threshold is a named constant here, every verdict carries the
//! numbers it came from, and no text is chosen without a measurement behind it. The numbers are
//! read from the typed `EvalReport` and `Training`: a misspelt metric is a compile error, not a
//! silent "—". Per-run verdicts are here, the seeds' claims across runs in `claims.rs`.

mod claims;
#[cfg(test)]
mod tests;

pub use claims::{Claim, Stat, judge_claims};

use super::Training;
use crate::artifacts::Status;
use crate::eval::EvalReport;
use crate::models::ModelKind;
use serde::Serialize;

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

/// Whether a run is trained far enough for sample-based verdicts, and the numbers behind it.
#[derive(Clone, Debug, Serialize)]
pub struct Readiness {
    pub provisional: bool,
    pub reason: String,
}

/// `provisional` when the samples' classifier score is below `UNTRAINED_SCORE` × the real images'
/// or their precision is below `UNTRAINED_PRECISION`.
pub fn readiness(e: &EvalReport) -> Readiness {
    let score = e.classifier_score;
    let real = e.coverage_real.as_ref().map(|c| c.classifier_score);
    let precision = e.precision;
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

fn sharp_ratio(e: &EvalReport) -> Option<f64> {
    Some(e.sharpness? / e.sharpness_real?.max(1e-12))
}

/// (classes covered, classes).
fn covered_all(e: &EvalReport) -> Option<(usize, usize)> {
    Some((e.classes_covered?, e.class_histogram.as_ref()?.len()))
}

fn d_gap(t: &Training) -> Option<f64> {
    Some((t.d_real? - t.d_fake?).abs())
}

fn f(v: Option<f64>, prec: usize) -> String {
    v.map_or("—".into(), |x| format!("{x:.prec$}"))
}

pub fn judge_run(kind: ModelKind, t: &Training, e: &EvalReport) -> RunVerdicts {
    // Stability.
    let diverged = t.status == Some(Status::Diverged);
    let events = t.warnings.len() + usize::from(diverged);
    let mut parts =
        vec![format!("{} oscillation {} (detrended CV, last {} logs)", t.loss_name, f(t.loss_cv, 3), t.loss_points)];
    if let (Some(r), Some(fk)) = (t.d_real, t.d_fake) {
        parts.push(format!("D(x) {r:.2}, D(G(z)) {fk:.2}"));
    }
    parts.push(format!("{events} NaN/collapse event(s)"));
    let smooth = t.loss_cv.map(|c| c < SMOOTH_CV);
    let balanced = d_gap(t).is_none_or(|g| g <= D_GAP);
    let value = parts.join("; ");
    let stability = if diverged {
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
            f(e.fid, 2),
            f(e.fid_floor, 2),
            f(e.kid, 4),
            f(e.precision, 3),
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
    let kl = e.class_kl;
    let diversity = Cell {
        value: format!(
            "recall {}, classes {}, KL to uniform {}",
            f(e.recall, 3),
            cov.map_or("—".into(), |(c, k)| format!("{c}/{k}")),
            f(kl, 3)
        ),
        verdict: match (cov, kl) {
            (Some((c, k)), _) if c < k => format!("mode collapse: {} class(es) missing", k - c),
            (_, Some(kl)) if kl > UNEVEN_KL => "all classes, unevenly (partial mode collapse)".into(),
            (Some(_), Some(_)) => "all classes, evenly".into(),
            _ => "not measured".into(),
        },
        tone: match (cov, kl) {
            (Some((c, k)), Some(kl)) if c == k && kl <= UNEVEN_KL => "good",
            (Some(_), _) => "bad",
            _ => "neutral",
        },
    };

    // Generalisation.
    let nn = e.nn_ratio;
    let copies = e.memorization.as_ref().map(|m| m.exact_copies);
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
    let likelihood = match e.iwae_nll {
        Some(v) => Cell {
            value: format!(
                "IWAE NLL {v:.2} nats (k = {}), ELBO {}",
                e.iwae_k.map_or("—".into(), |k| k.to_string()),
                f(e.elbo, 2)
            ),
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
