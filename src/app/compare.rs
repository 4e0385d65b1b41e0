//! "VAE or GAN?": train (or reuse) the default pair or compare given runs — pictures, evaluation,
//! the report — through the same application functions the commands use.

use super::evaluation::{self, EvalRequest};
use super::pictures::{self, ArithmeticRequest, LatentMapRequest, WalkRequest};
use super::training::{self, ResumeRequest};
use super::with_defaults;
use crate::artifacts::Summary;
use crate::backend::DeviceChoice;
use crate::config::{Options, RunConfig};
use crate::data;
use crate::models::{Family, ModelKind};
use crate::report::Report;
use crate::run::RunDir;
use anyhow::{Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct CompareRequest {
    /// Runs to compare (all on one dataset) [default: train the default VAE and DCGAN on --dataset].
    pub runs: Vec<PathBuf>,
    /// Dataset for the default VAE + DCGAN pair.
    #[arg(long)]
    pub dataset: Option<String>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Image folders and CelebA: side of the square images the default pair trains on
    /// [default: 32; CelebA 64].
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Report file [default: compare/<dataset>/report.html (report-quick.html with --quick), or report.html for given runs].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Minutes instead of the full protocol: short training (VAE 10,000 updates, DCGAN 3,500, on
    /// any dataset size) and a lighter evaluation (2000 samples, IWAE k = 100 on 1000 test images).
    #[arg(long)]
    pub quick: bool,
    /// Cap each model of the default pair at this many updates (a smoke test of the protocol, not
    /// a result: the report's verdicts are then about undertrained models).
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Evaluate runs again even if they already have an eval.json.
    #[arg(long)]
    pub reeval: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where training, pictures and evaluation run.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

/// What `compare` wrote.
pub struct Compared {
    pub report: Report,
    pub html: PathBuf,
    pub json: PathBuf,
    pub seconds: f64,
}

/// The quick protocol's evaluation (the full one is `eval`'s defaults).
fn quick_eval(e: &mut EvalRequest) {
    (e.n, e.iwae_k, e.iwae_n, e.nn_n) = (2000, 100, Some(1000), 2000);
}

pub fn compare(a: CompareRequest) -> Result<Compared> {
    let t0 = std::time::Instant::now();
    let (runs, out) = if a.runs.is_empty() {
        let Some(ds) = &a.dataset else {
            bail!("give runs to compare, or --dataset NAME to train and compare the default VAE and DCGAN")
        };
        let base = match &a.out {
            Some(o) => {
                o.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new(".")).to_path_buf()
            }
            None => PathBuf::from("compare").join(ds.replace(['/', '\\'], "_")),
        };
        let mut runs = Vec::new();
        for kind in [ModelKind::Vae, ModelKind::Dcgan] {
            let path = base.join(if a.quick { format!("{}-quick", kind.name()) } else { kind.name().to_string() });
            let given = Options {
                dataset: Some(ds.clone()),
                data_dir: a.data_dir.clone(),
                image_size: a.image_size,
                seed: Some(a.seed),
                device: Some(a.device),
                max_steps: a.max_steps,
                ..Default::default()
            };
            ensure_trained(kind, &path, given, a.quick)?;
            runs.push(path);
        }
        // The quick protocol has its own runs and its own page, so it never overwrites the full one.
        let page = if a.quick { "report-quick.html" } else { "report.html" };
        (runs, a.out.clone().unwrap_or_else(|| base.join(page)))
    } else {
        if a.dataset.is_some() {
            bail!("--dataset is for training the default pair; given runs are compared on their own dataset");
        }
        if a.max_steps.is_some() {
            bail!("--max-steps caps the default pair's training (with --dataset); given runs are compared as they are");
        }
        // One dataset for all, checked before any picture or evaluation work.
        let mut first: Option<(PathBuf, String)> = None;
        for r in &a.runs {
            let (_, cfg) = RunDir::open(r)?;
            match &first {
                None => first = Some((r.clone(), cfg.dataset)),
                Some((p, ds)) if *ds != cfg.dataset => bail!(
                    "runs are on different datasets ({} is on '{ds}', {} on '{}'); compare runs of one dataset",
                    p.display(),
                    r.display(),
                    cfg.dataset
                ),
                Some(_) => {}
            }
        }
        (a.runs.clone(), a.out.clone().unwrap_or_else(|| PathBuf::from("report.html")))
    };
    for r in &runs {
        ensure_pictures(r, a.data_dir.clone(), a.device)?;
        if a.reeval || !RunDir::at(r).eval().is_file() {
            evaluate_run(r, a.data_dir.clone(), a.seed, a.quick, a.device)?;
        }
    }
    let report = crate::report::build(&runs)?;
    let json = crate::report::write(&report, &out)?;
    Ok(Compared { report, html: out, json, seconds: t0.elapsed().as_secs_f64() })
}

/// Evaluate a run by the protocol (`quick` or full) into its eval.json.
pub(crate) fn evaluate_run(
    run: &Path,
    data_dir: Option<PathBuf>,
    seed: u64,
    quick: bool,
    device: DeviceChoice,
) -> Result<()> {
    eprintln!("evaluating {}…", run.display());
    let mut e: EvalRequest = with_defaults(&[run.as_os_str()]);
    (e.data_dir, e.seed, e.device) = (data_dir, seed, device);
    if quick {
        quick_eval(&mut e);
    } else if is_scaled(run)? {
        // IWAE at k = 5000 over 12,288-d colour faces is hours on 2 cores; the bound at
        // k = 100 on 1,000 test faces is minutes (the protocol says which).
        (e.iwae_k, e.iwae_n) = (100, Some(1000));
    }
    evaluation::evaluate(e)?;
    Ok(())
}

/// Whether a run's images are of a size the scaled networks serve (faces at 64×64).
fn is_scaled(run: &Path) -> Result<bool> {
    let Some(found) = RunDir::at(run).newest_checkpoint()? else { bail!("{} has no checkpoint", run.display()) };
    Ok(crate::models::pyramid::depth(found.checkpoint.meta.spec.shape).is_some())
}

/// Train a default run into `path`, or finish it if it stopped early; a completed run is reused.
pub(crate) fn ensure_trained(kind: ModelKind, path: &Path, given: Options, quick: bool) -> Result<()> {
    // A summary that cannot be read is a run to finish (or to train), not an error.
    let done = Summary::load(&RunDir::at(path).summary()).is_ok_and(|s| s.status.finished());
    if done {
        eprintln!("reusing {}", path.display());
        return Ok(());
    }
    if RunDir::at(path).config().is_file() {
        let (data_dir, device) = (given.data_dir.clone(), given.device);
        training::resume(ResumeRequest { run: path.to_path_buf(), epochs: None, max_steps: None, data_dir, device })?;
        return Ok(());
    }
    // The budget is a number of updates, not epochs: a 9,000-image folder gets as much training
    // as MNIST. Epochs are whatever the budget takes on this dataset.
    let (defaults, data) = training::resolve_with_data(kind, given.clone())?;
    let shape = data.train.shape;
    let updates = compare_updates(&defaults, quick, shape, data.train.n);
    let per_epoch = data.train.n.div_ceil(defaults.batch_size).max(1) as u64;
    let opts = Options {
        // A given step limit (a study's smoke test) cuts the protocol short.
        epochs: Some(given.max_steps.map_or(updates, |m| m.min(updates)).div_ceil(per_epoch)),
        max_steps: Some(given.max_steps.map_or(updates, |m| m.min(updates))),
        // Enough logged points in a short run to judge loss oscillation.
        log_every: quick.then_some(10),
        ..given
    };
    training::start_with(&RunConfig::resolve_for(kind, opts, shape)?, path.to_path_buf())?;
    Ok(())
}

/// Optimiser updates `compare` gives each model. The full protocol trains as long as the default
/// `train` does on MNIST, or, on the sizes of the scaled networks (faces at 64×64), exactly the
/// default `train` run on this data (its recipe is for these images already); `--quick` fits
/// training and evaluation of both into about five minutes on 2 cores.
pub fn compare_updates(defaults: &RunConfig, quick: bool, shape: data::ImageShape, n_train: usize) -> u64 {
    let scaled = crate::models::pyramid::depth(shape).is_some();
    let gan = defaults.model.family() == Family::Adversarial;
    match (scaled, quick) {
        (true, true) if gan => 1_000,
        (true, true) => 2_500,
        (true, false) => defaults.epochs * n_train.div_ceil(defaults.batch_size) as u64,
        (false, true) if gan => 3_500,
        (false, true) => 10_000,
        (false, false) => defaults.epochs * 60_000u64.div_ceil(defaults.batch_size as u64),
    }
}

/// The pictures the report shows that training does not already write.
pub(crate) fn ensure_pictures(run_path: &Path, data_dir: Option<PathBuf>, device: DeviceChoice) -> Result<()> {
    let (dir, cfg) = RunDir::open(run_path)?;
    let run = [run_path.as_os_str()];
    if !dir.final_file("walk.png").is_file() {
        let mut w: WalkRequest = with_defaults(&run);
        (w.rows, w.slerp, w.device) = (6, true, device);
        pictures::walk(w)?;
    }
    if !dir.final_file("arithmetic.png").is_file() {
        // Faces: the paper's smiling woman − neutral woman + neutral man (by annotation for encoder
        // models, by the attribute classifier for GANs). Otherwise encoder models: the stroke-width
        // example on labelled data; GANs: groups from a sample sheet.
        let faces =
            crate::data::load_with(&cfg.dataset, data_dir.as_deref().or(cfg.data_dir.as_deref()), &cfg.transform())?
                .test
                .attributes
                .is_some();
        let groups: [&str; 3] = if faces {
            ["attr:Smiling,-Male", "attr:-Smiling,-Male", "attr:-Smiling,Male"]
        } else if cfg.model.has_encoder() {
            ["label:3:thick", "label:3:thin", "label:7:thin"]
        } else {
            ["sample:0,1,2,3", "sample:4,5,6,7", "sample:8,9,10,11"]
        };
        let mut args: Vec<&std::ffi::OsStr> = run.to_vec();
        for (flag, g) in ["--a", "--b", "--c"].iter().zip(groups) {
            args.extend([std::ffi::OsStr::new(flag), std::ffi::OsStr::new(g)]);
        }
        let mut r: ArithmeticRequest = with_defaults(&args);
        (r.data_dir, r.device) = (data_dir.clone(), device);
        if let Err(e) = pictures::arithmetic(r) {
            eprintln!("note: no arithmetic picture for {}: {e:#}", run_path.display());
        }
    }
    if cfg.model.has_encoder() && !dir.final_file("latent-scatter.png").is_file() {
        let mut m: LatentMapRequest = with_defaults(&run);
        (m.data_dir, m.device) = (data_dir, device);
        pictures::latent_map(m)?;
    }
    Ok(())
}
