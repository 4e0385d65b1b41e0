//! Start a run, resume it: the run folder is created and locked here, the config resolved once.

use crate::artifacts::Summary;
use crate::config::{Options, RunConfig};
use crate::data;
use crate::models::ModelKind;
use crate::run::{self, RunDir};
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct TrainRequest {
    /// Model to train.
    #[arg(value_enum)]
    pub model: ModelKind,
    /// Run folder [default: runs/<model>-<dataset>-<time>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// TOML file with any of the options below (flags win).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub opts: Options,
}

#[derive(Args, Debug, Clone)]
pub struct ResumeRequest {
    pub run: PathBuf,
    /// Train until this many epochs in total [default: the run's].
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Stop after this many steps in total.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Where the dataset is, if it moved since training.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Continue on this device [default: the one the run trained on]. Checkpoints hold host
    /// values, so a run started on a GPU can finish on the CPU and the other way round.
    #[arg(long, value_enum)]
    pub device: Option<crate::backend::DeviceChoice>,
}

/// A finished (or stopped) training session.
pub struct Trained {
    pub dir: RunDir,
    pub summary: Summary,
}

/// The options the user gave: flags over the `--config` file.
fn given(req: &TrainRequest) -> Result<Options> {
    let file = match &req.config {
        Some(p) => Options::from_file(p)?,
        None => Options::default(),
    };
    Ok(req.opts.clone().or(file))
}

/// Train a new run: the config is resolved once more when the images are known, for the
/// defaults that depend on them (`RunConfig::resolve_for`).
pub fn start(req: TrainRequest) -> Result<Trained> {
    let (cfg, data) = resolve_with_data(req.model, given(&req)?)?;
    let out = req.out.unwrap_or_else(|| run::default_path(&cfg));
    start_loaded(&cfg, out, &data)
}

/// The config of `given` options for the images they name, and those images: the dataset is
/// loaded once, then the options are resolved with the image-dependent defaults
/// (`RunConfig::resolve_for`).
pub fn resolve_with_data(model: ModelKind, given: Options) -> Result<(RunConfig, data::Splits)> {
    let first = RunConfig::resolve(model, given.clone())?;
    let data = data::load_with(&first.dataset, first.data_dir.as_deref(), &first.transform())?;
    Ok((RunConfig::resolve_for(model, given, data.train.shape)?, data))
}

/// Train a new run of a resolved config into `out`.
pub fn start_with(cfg: &RunConfig, out: PathBuf) -> Result<Trained> {
    let data = data::load_with(&cfg.dataset, cfg.data_dir.as_deref(), &cfg.transform())?;
    start_loaded(cfg, out, &data)
}

fn start_loaded(cfg: &RunConfig, out: PathBuf, data: &data::Splits) -> Result<Trained> {
    crate::train::trainer::check_start(cfg, data)?;
    // A device this binary or machine lacks is refused before the run folder exists.
    crate::backend::device(cfg.device)?;
    let (dir, _lock) = RunDir::create(&out)?;
    crate::util::write_atomic(&dir.config(), cfg.to_toml().as_bytes())?;
    eprintln!(
        "training {} on {} ({} train / {} test images) → {}",
        cfg.model.name(),
        data.name,
        data.train.n,
        data.test.n,
        out.display()
    );
    let summary = crate::train::train(&dir, cfg, data, None)?;
    Ok(Trained { dir, summary })
}

/// Continue a run from its last checkpoint (or from step 0 if it was killed before its first).
/// A run whose training ended but which was stopped before its final pictures and summary is
/// finished without further training. A corrupt `latest.ckpt` falls back to the newest
/// checkpoint that verifies (`RunDir::newest_checkpoint`), and the run's warnings say so.
pub fn resume(req: ResumeRequest) -> Result<Trained> {
    let (dir, mut cfg) = RunDir::open(&req.run)?;
    let _lock = dir.lock()?;
    dir.remove_stale_temp_files();
    let found = dir.newest_checkpoint()?;
    if let Some(e) = req.epochs {
        cfg.epochs = e;
    }
    // A new --max-steps replaces the old; giving --epochs alone lifts an old step limit.
    cfg.max_steps = req.max_steps.or(if req.epochs.is_some() { None } else { cfg.max_steps });
    if req.data_dir.is_some() {
        cfg.data_dir = req.data_dir;
    }
    if let Some(d) = req.device {
        cfg.device = d;
    }
    crate::backend::device(cfg.device)?;
    cfg.validate()?;
    // Training has nothing left to do when either limit is reached.
    if let Some(st) = found.as_ref().map(|f| &f.checkpoint.meta.state)
        && (st.epoch >= cfg.epochs || cfg.max_steps.is_some_and(|m| st.step >= m))
    {
        // The summary is written last: a finished one at this step means the run is complete.
        let complete = Summary::load(&dir.summary()).is_ok_and(|s| s.status.finished() && s.steps == st.step);
        if complete {
            bail!(
                "{} already finished {} epoch(s) ({} steps); pass --epochs N with N > {} (or --max-steps N with N > {}) \
                 to train further",
                req.run.display(),
                st.epoch,
                st.step,
                st.epoch,
                st.step
            );
        }
        eprintln!(
            "{} ended training at epoch {} step {} but was stopped before its final pictures and summary: writing them",
            req.run.display(),
            st.epoch,
            st.step
        );
    }
    crate::util::write_atomic(&dir.config(), cfg.to_toml().as_bytes())?;
    let data = data::load_with(&cfg.dataset, cfg.data_dir.as_deref(), &cfg.transform())?;
    let notes = found.as_ref().map(|f| f.notes.clone()).unwrap_or_default();
    for n in &notes {
        eprintln!("warning: {n}");
    }
    match &found {
        Some(f) => eprintln!(
            "resuming {} at epoch {} step {}",
            req.run.display(),
            f.checkpoint.meta.state.epoch,
            f.checkpoint.meta.state.step
        ),
        None => {
            eprintln!("{} has no checkpoint yet: training from step 0", req.run.display());
            crate::train::log::MetricsLog::new(dir.metrics()).truncate_after(0)?;
        }
    }
    let summary = crate::train::train_noted(&dir, &cfg, &data, found.map(|f| f.checkpoint), notes)?;
    Ok(Trained { dir, summary })
}
