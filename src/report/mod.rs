//! The comparison report: the seeds' VAE-vs-GAN table with every cell a measured number and a
//! verdict that follows from the numbers (`verdict.rs`), the pictures of every run, and the
//! protocol of every number — as one self-contained HTML file (`html.rs`) plus `report.json`.

pub mod html;
pub mod verdict;

use crate::artifacts::{Status, Summary};
use crate::eval::EvalReport;
use crate::models::ModelKind;
use crate::run::RunDir;
use crate::train::log;
use anyhow::{Context, Result, bail};
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One picture of a run, by title and file.
#[derive(Clone, Debug, Serialize)]
pub struct Picture {
    pub title: String,
    pub path: PathBuf,
}

/// Training behaviour read from `metrics.jsonl` and `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Training {
    pub epochs: u64,
    pub steps: u64,
    pub train_seconds: f64,
    pub samples_per_sec: Option<f64>,
    /// None when the run has no summary.json (shown as "unknown").
    #[serde(serialize_with = "status_or_unknown")]
    pub status: Option<Status>,
    pub warnings: Vec<String>,
    /// The loss whose steadiness is judged (`loss` for likelihood models, `g_loss` for GANs).
    pub loss_name: String,
    /// Oscillation of the logged loss over the last third of training (`detrended_cv`).
    pub loss_cv: Option<f64>,
    /// Logged loss points in that window.
    pub loss_points: usize,
    /// Mean D(x) and D(G(z)) over the last epoch's training steps (adversarial models).
    pub d_real: Option<f64>,
    pub d_fake: Option<f64>,
    /// How the run was trained, in words (updates, batch, learning rate and schedule, options).
    pub recipe: String,
}

fn status_or_unknown<S: Serializer>(s: &Option<Status>, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.map_or("unknown", Status::as_str))
}

#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub name: String,
    pub path: PathBuf,
    /// Serialised as its name ("vae", "dcgan"…).
    pub model: ModelKind,
    pub dataset: String,
    pub family: crate::models::Family,
    pub training: Training,
    pub eval: EvalReport,
    pub verdicts: verdict::RunVerdicts,
    /// Whether the model is trained far enough for verdicts that rest on its samples.
    pub readiness: verdict::Readiness,
    pub pictures: Vec<Picture>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub dataset: String,
    pub generated_by: String,
    pub runs: Vec<RunReport>,
    pub claims: Vec<verdict::Claim>,
}

/// Read what a finished run left behind (`eval.json` must exist).
pub fn read_run(path: &Path) -> Result<RunReport> {
    let (dir, cfg) = RunDir::open(path)?;
    let eval_path = dir.eval();
    let eval: EvalReport = serde_json::from_slice(&std::fs::read(&eval_path).with_context(|| {
        format!("{} has no eval.json; run `latentlab eval {}` first", path.display(), path.display())
    })?)
    .with_context(|| format!("{} is not a valid eval.json", eval_path.display()))?;
    // A run stopped before its first summary has none; one that is there must be readable.
    let summary = if dir.summary().exists() { Some(Summary::load(&dir.summary())?) } else { None };
    let metrics = if dir.metrics().exists() { log::read(&dir.metrics())? } else { vec![] };
    let kind = cfg.model;
    let loss_name = if kind.is_gan() { "g_loss" } else { "loss" };
    // The architecture as trained (a checkpoint's spec; older DCGAN runs have the two-conv D).
    let spec = crate::run::checkpoint::Checkpoint::load(&dir.latest()).ok().map(|c| c.meta.spec);
    let training = training(&metrics, summary.as_ref(), loss_name, recipe(&cfg, summary.as_ref(), spec.as_ref()));
    let name = path.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| path.display().to_string());
    let pictures = [
        ("Samples", "samples.png"),
        ("Stage I samples (StackGAN; the same codes and captions)", "samples-stage1.png"),
        ("Captions × samples (StackGAN; one caption per row, the same codes in every row)", "captions.png"),
        ("Reconstructions (top: test images, bottom: reconstructions)", "reconstructions.png"),
        ("Latent walks", "walk.png"),
        ("Latent arithmetic", "arithmetic.png"),
        ("Latent scatter (test codes by class)", "latent-scatter.png"),
        ("Decoded latent manifold", "latent-manifold.png"),
        ("Losses", "loss.png"),
        ("D(x) and D(G(z))", "d_outputs.png"),
        ("Samples beside their 3 nearest training images", "nearest.png"),
    ]
    .into_iter()
    .map(|(t, p)| (t, dir.final_file(p)))
    .filter(|(_, p)| p.is_file())
    .map(|(t, p)| Picture { title: t.into(), path: p })
    .collect();
    let verdicts = verdict::judge_run(kind, &training, &eval);
    let readiness = verdict::readiness(&eval);
    Ok(RunReport {
        name,
        path: path.to_path_buf(),
        model: kind,
        dataset: cfg.dataset.clone(),
        family: kind.family(),
        training,
        eval,
        verdicts,
        readiness,
        pictures,
    })
}

/// The recipe of a run as one line: what was trained, how long and how (`spec`: the architecture
/// the run's checkpoint holds, where there is one).
pub fn recipe(
    cfg: &crate::config::RunConfig,
    summary: Option<&Summary>,
    spec: Option<&crate::models::ModelSpec>,
) -> String {
    let mut parts = vec![format!(
        "{} updates of batch {} ({} epoch(s))",
        summary.map_or("?".into(), |s| s.steps.to_string()),
        cfg.batch_size,
        summary.map_or("?".into(), |s| s.epochs.to_string())
    )];
    parts.push(format!("Adam lr {}, {:?} schedule", cfg.lr, cfg.lr_schedule).to_lowercase());
    if cfg.kl_warmup > 0 {
        parts.push(format!("KL weight warmed up over {} epoch(s)", cfg.kl_warmup));
    }
    if cfg.beta != 1.0 && cfg.model.has_encoder() && !cfg.model.is_adversarial() {
        parts.push(format!("β = {}", cfg.beta));
    }
    if let crate::models::Objective::Iwae { k } = cfg.objective {
        parts.push(format!("IWAE objective, k = {k}"));
    }
    if cfg.model.decl().text {
        parts.push(format!(
            "stage I for the first half of the updates, then stage II with stage I frozen; conditioning-augmentation \
             KL weight {}",
            cfg.beta
        ));
    }
    if spec.is_some_and(|s| s.d_conv3) {
        parts.push("D with a 3×3 convolution on its last feature map".into());
    }
    if cfg.model.is_adversarial() {
        parts.push(format!("{} D step(s) per G step", cfg.d_steps));
        if cfg.label_smoothing > 0.0 {
            parts.push(format!("label smoothing {}", cfg.label_smoothing));
        }
    }
    if cfg.prior == crate::models::Prior::Mixture {
        parts.push(format!("codes from the {}-Gaussian mixture prior", crate::models::prior::MIXTURE_COMPONENTS));
    }
    if let Some(d) = cfg.lr_d {
        parts.push(format!("D's lr {d} (two time-scale updates)"));
    }
    if cfg.model.is_gan() {
        parts.push(match cfg.ema {
            Some(d) => format!("samples from an exponential moving average of G's weights (decay {d})"),
            None => "samples from G's own weights (no weight averaging)".into(),
        });
    }
    parts.push(format!("seed {}", cfg.seed));
    parts.join("; ")
}

fn training(metrics: &[Value], summary: Option<&Summary>, loss_name: &str, recipe: String) -> Training {
    let steps: Vec<&Value> = metrics.iter().filter(|m| m["kind"] == "step").collect();
    let window = &steps[steps.len() - steps.len() / 3..];
    let vals: Vec<f64> = window.iter().filter_map(|m| m["train"][loss_name].as_f64()).collect();
    let loss_cv = detrended_cv(&vals);
    // D(x), D(G(z)): the last epoch's training means, or for a run shorter than an epoch the mean
    // of the logged steps in the window.
    let last_epoch = metrics.iter().rev().find(|m| m["kind"] == "epoch");
    let d = |k: &str| {
        last_epoch.and_then(|m| m["train"][k].as_f64()).or_else(|| {
            let v: Vec<f64> = window.iter().filter_map(|m| m["train"][k].as_f64()).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        })
    };
    Training {
        epochs: summary.map_or(0, |s| s.epochs),
        steps: summary.map_or(0, |s| s.steps),
        train_seconds: summary.map_or(0.0, |s| s.wall_secs),
        samples_per_sec: summary.and_then(|s| s.train_samples_per_sec),
        status: summary.map(|s| s.status),
        warnings: summary.map(|s| s.warnings.clone()).unwrap_or_default(),
        loss_name: loss_name.into(),
        loss_cv,
        loss_points: vals.len(),
        d_real: d("d_real"),
        d_fake: d("d_fake"),
        recipe,
    }
}

/// Oscillation of a logged loss: the standard deviation of its residuals around a straight-line
/// fit (so a loss that is still falling steadily is not called unstable) over |mean|.
pub fn detrended_cv(v: &[f64]) -> Option<f64> {
    if v.len() < 4 {
        return None;
    }
    let n = v.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = v.iter().sum::<f64>() / n;
    let sxx: f64 = (0..v.len()).map(|i| (i as f64 - mx).powi(2)).sum();
    let sxy: f64 = v.iter().enumerate().map(|(i, y)| (i as f64 - mx) * (y - my)).sum();
    let slope = sxy / sxx;
    let ss: f64 = v.iter().enumerate().map(|(i, y)| (y - my - slope * (i as f64 - mx)).powi(2)).sum();
    Some((ss / (n - 2.0)).sqrt() / my.abs().max(1e-12))
}

/// Assemble a report from evaluated runs, which must all be on one dataset.
pub fn build(runs: &[PathBuf]) -> Result<Report> {
    if runs.is_empty() {
        bail!("no runs to compare");
    }
    let reports: Vec<RunReport> = runs.iter().map(|p| read_run(p)).collect::<Result<_>>()?;
    let dataset = reports[0].dataset.clone();
    if let Some(other) = reports.iter().find(|r| r.dataset != dataset) {
        bail!(
            "runs are on different datasets ({} is on '{}', {} on '{}'); compare runs of one dataset",
            reports[0].path.display(),
            dataset,
            other.path.display(),
            other.dataset
        );
    }
    let claims = verdict::judge_claims(&reports);
    Ok(Report { dataset, generated_by: format!("latentlab {}", env!("CARGO_PKG_VERSION")), runs: reports, claims })
}

/// Write `report.html` and `report.json` (atomically) beside each other.
pub fn write(report: &Report, html_path: &Path) -> Result<PathBuf> {
    let page = html::render(report)?;
    crate::util::write_atomic(html_path, page.as_bytes())?;
    let json_path = html_path.with_extension("json");
    crate::util::write_atomic(&json_path, serde_json::to_string_pretty(report)?.as_bytes())?;
    Ok(json_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Training numbers come from the typed summary; without one they are unknown, as before.
    #[test]
    fn training_reads_the_typed_summary() {
        let s: Summary = serde_json::from_str(include_str!("../../tests/fixtures/summary-dcgan.json")).unwrap();
        let t = training(&[], Some(&s), "g_loss", String::new());
        assert_eq!((t.epochs, t.steps, t.status), (0, 10, Some(Status::MaxSteps)));
        assert_eq!((t.train_seconds, t.samples_per_sec), (s.wall_secs, s.train_samples_per_sec));
        let t = training(&[], None, "loss", String::new());
        assert_eq!((t.steps, t.status, t.samples_per_sec), (0, None, None));
        let cfg = crate::config::RunConfig::resolve(ModelKind::Vae, Default::default()).unwrap();
        assert!(recipe(&cfg, Some(&s), None).starts_with("10 updates of batch"), "{}", recipe(&cfg, Some(&s), None));
        assert!(recipe(&cfg, None, None).starts_with("? updates"));
        assert!(!recipe(&cfg, None, None).contains("mixture"));
        let opts = crate::config::Options { prior: Some(crate::models::Prior::Mixture), ..Default::default() };
        let cfg = crate::config::RunConfig::resolve(ModelKind::Dcgan, opts).unwrap();
        assert!(
            recipe(&cfg, None, None).contains("codes from the 10-Gaussian mixture prior"),
            "{}",
            recipe(&cfg, None, None)
        );
        // D's 3×3 layer is named where the run's checkpoint has it, and only there.
        let spec =
            crate::train::trainer::spec_of(&cfg, crate::data::ImageShape { channels: 1, height: 28, width: 28 }, 10);
        let s = |d_conv3| crate::models::ModelSpec { d_conv3, ..spec.clone() };
        assert!(recipe(&cfg, None, Some(&s(true))).contains("D with a 3×3 convolution"));
        assert!(!recipe(&cfg, None, Some(&s(false))).contains("3×3"));
    }

    /// A summary.json that is there but unreadable is an error naming it, not a silent blank.
    #[test]
    fn a_broken_summary_is_a_named_error() {
        let dir = tempfile::tempdir().unwrap();
        let (run, _lock) = RunDir::create(&dir.path().join("r")).unwrap();
        let cfg = crate::config::RunConfig::resolve(ModelKind::Vae, Default::default()).unwrap();
        crate::util::write_atomic(&run.config(), cfg.to_toml().as_bytes()).unwrap();
        std::fs::write(run.path.join("eval.json"), "{}").unwrap();
        std::fs::write(run.summary(), r#"{"model": "vae", "status": "finished"}"#).unwrap();
        let err = format!("{:#}", read_run(&run.path).unwrap_err());
        assert!(err.contains("summary.json"), "{err}");
        std::fs::remove_file(run.summary()).unwrap();
        let r = read_run(&run.path).unwrap();
        assert_eq!((r.training.status, r.eval.fid), (None, None));
    }
}
