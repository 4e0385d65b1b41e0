//! Timing our own steps: real training steps (forward, backward, Adam) on real batches, and the
//! process CPU time that gives "cores busy".

use super::{BenchModel, BenchOptions};
use crate::artifacts::LoopSecs;
use crate::backend;
use crate::data::{self, Batch, Loader};
use crate::models::Net;
use crate::models::blocks::matrix;
use crate::run::RunDir;
use crate::train::trainer::{optimizers, spec_with_captions};
use crate::util::{Stream, rng};
use anyhow::{Result, bail};
use std::time::Instant;

/// CPU seconds (user + system) this process has used so far.
pub fn cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: rc == 0, so the struct was written.
        let u = unsafe { u.assume_init() };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
        Some(t(u.ru_utime) + t(u.ru_stime))
    }
    #[cfg(not(unix))]
    None
}

/// Median of a non-empty slice.
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

/// Timings of one model's steps.
pub(super) struct Timed {
    /// The median step; for a StackGAN the mean of its two stages' medians (a run spends half its
    /// steps in each).
    pub(super) median_step: f64,
    /// The mean step: what a run's throughput follows, slow steps included.
    pub(super) mean_step: f64,
    pub(super) cores_busy: Option<f64>,
}

pub(super) fn time_model(model: BenchModel, batch: usize, opts: &BenchOptions, data: &data::Splits) -> Result<Timed> {
    let cfg = model.config(batch, opts.device, opts.data_dir.clone(), data.train.shape)?;
    let (spec, captions) = spec_with_captions(&cfg, data)?;
    spec.validate()?;
    let ad = backend::device(opts.device)?.autodiff();
    let mut net = Net::new(&spec, cfg.seed, &ad);
    let mut optims = optimizers(&spec);
    let loader = Loader::new(&data.train, batch, cfg.binarize, spec.kind.range(), cfg.seed);
    let order = loader.order(0);
    let nb = data.train.n / batch; // whole batches only
    if nb == 0 {
        bail!("bench: the training set has {} images, fewer than one batch of {batch}", data.train.n);
    }
    let batches: Vec<Batch> = (0..nb.min(64)).map(|b| loader.batch(&order, b, b as u64)).collect();
    let conds: Vec<Vec<f32>> = batches.iter().map(|b| spec.cond_of_data(&data.train, &b.idx)).collect();
    let total = opts.warmup + opts.steps;
    let mut step_secs = Vec::with_capacity(opts.steps);
    let (mut cpu0, mut wall0) = (None, Instant::now());
    for s in 0..total {
        if s == opts.warmup {
            cpu0 = cpu_seconds();
            wall0 = Instant::now();
        }
        let b = &batches[s % batches.len()];
        let t0 = Instant::now();
        let x = matrix(b.x.clone(), b.n, spec.shape.len(), &ad);
        let noise = &mut rng(cfg.seed, Stream::Noise, s as u64);
        let stage = if s < opts.warmup + opts.steps / 2 { 1 } else { 2 };
        let text = (!captions.is_empty())
            .then(|| crate::train::stack::text_batch(&captions, &b.idx, &b.labels, cfg.seed, s as u64, stage));
        // Every step ends by reading its losses to the host, so the clock sees finished work.
        let (next, values) = crate::train::trainer::step(
            net,
            &mut optims,
            &spec,
            &cfg,
            cfg.lr,
            x,
            &conds[s % batches.len()],
            text.as_ref(),
            noise,
        );
        net = next;
        if let Some((name, v)) = values.iter().find(|(_, v)| !v.is_finite()) {
            bail!("bench {}: loss term '{name}' became {v} at step {s}", model.name());
        }
        if s >= opts.warmup {
            step_secs.push(t0.elapsed().as_secs_f64());
        }
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cores_busy = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) if wall > 0.0 => Some((b - a) / wall),
        _ => None,
    };
    let median_step = if captions.is_empty() {
        median(&step_secs)
    } else {
        let (one, two) = step_secs.split_at(step_secs.len() / 2);
        if one.is_empty() { median(two) } else { 0.5 * (median(one) + median(two)) }
    };
    let mean_step = step_secs.iter().sum::<f64>() / step_secs.len() as f64;
    Ok(Timed { median_step, mean_step, cores_busy })
}

/// `bench --loop`: `epochs` epochs of the model's default run, trained by `train` itself into a
/// scratch run folder in the current directory (where runs usually live, so checkpoints see the
/// same disk), which is removed afterwards. Returns where the time went.
pub(super) fn time_loop(
    model: BenchModel,
    batch: usize,
    epochs: u64,
    opts: &BenchOptions,
    data: &data::Splits,
) -> Result<LoopSecs> {
    let mut cfg = model.config(batch, opts.device, opts.data_dir.clone(), data.train.shape)?;
    cfg.epochs = epochs;
    let path = std::path::PathBuf::from(format!(".latentlab-bench-loop-{}-{}", std::process::id(), model.name()));
    let (dir, lock) = RunDir::create(&path)?;
    eprintln!("bench --loop: {} epoch(s) of `train {}` as a run trains them", epochs, cfg.model.name());
    let trained = crate::train::train(&dir, &cfg, data, None);
    drop(lock);
    let _ = std::fs::remove_dir_all(&path);
    let summary = trained?;
    summary.loop_secs.ok_or_else(|| anyhow::anyhow!("bench --loop {}: the run reported no loop times", model.name()))
}

/// The worker threads burn's CPU backend uses (rayon's global pool).
pub fn threads() -> usize {
    rayon::current_num_threads()
}
