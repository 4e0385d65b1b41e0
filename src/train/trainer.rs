//! The training loop, once for every model: batches, the model's step (`step.rs`), logging, the
//! divergence guard (with rollback) and the declared collapse guard, the per-epoch test evaluation,
//! pictures (`artifacts.rs`), checkpoints and the summary.

use super::artifacts::{epoch_pictures, final_pictures};
use super::log::MetricsLog;
use super::progress::{evaluate, fmt_losses, means, progress_bar};
pub use super::step::{check_start, optimizers, spec_for, spec_of, spec_with_captions, step};
use super::tensorboard::TbWriter;
use crate::artifacts::{LoopSecs, Status, Summary};
use crate::backend;
use crate::config::RunConfig;
use crate::data::{Loader, Splits};
use crate::models::blocks::matrix;
use crate::models::{Model, ModelSpec, Net};
use crate::run::RunDir;
use crate::run::checkpoint::{Checkpoint, Meta, Sums, TrainState, decode_optims, encode_optims, load_net};
use crate::util::{Stream, rng};
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::time::Instant;

/// Why training stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Completed,
    MaxSteps,
    Interrupted,
}

/// A NaN/Inf loss stopped the run (the last good checkpoint is kept).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Diverged(pub String);

/// Ctrl-C stopped the run after saving a checkpoint.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

/// Rollbacks allowed by `--on-diverge rollback` before giving up.
pub const MAX_ROLLBACKS: u32 = 3;

/// Train (or continue, from `resume`) until `cfg.epochs` epochs or `cfg.max_steps` steps.
/// Returns the summary that is also written to `summary.json`. With `--on-diverge rollback`, a
/// NaN/Inf loss reloads the last good checkpoint and continues with half the learning rate.
pub fn train(dir: &RunDir, cfg: &RunConfig, data: &Splits, resume: Option<Checkpoint>) -> Result<Summary> {
    train_noted(dir, cfg, data, resume, Vec::new())
}

/// `train`, with warnings (e.g. the checkpoint a resume fell back to) recorded in the run's log
/// and summary.
pub fn train_noted(
    dir: &RunDir,
    cfg: &RunConfig,
    data: &Splits,
    resume: Option<Checkpoint>,
    notes: Vec<String>,
) -> Result<Summary> {
    let mut cfg = cfg.clone();
    let mut resume = resume;
    let mut notes = notes;
    let mut rollbacks = 0;
    loop {
        match run_loop(dir, &cfg, data, resume, std::mem::take(&mut notes)) {
            Err(e) if cfg.on_diverge == crate::config::OnDiverge::Rollback && rollbacks < MAX_ROLLBACKS => {
                let Some(d) = e.downcast_ref::<Diverged>() else { return Err(e) };
                rollbacks += 1;
                let old = cfg.lr;
                cfg.lr /= 2.0;
                crate::util::write_atomic(&dir.config(), cfg.to_toml().as_bytes())?;
                let found = dir.newest_checkpoint()?;
                notes.extend(found.iter().flat_map(|f| f.notes.clone()));
                resume = found.map(|f| f.checkpoint);
                let at = resume.as_ref().map_or("the start".to_string(), |c| format!("step {}", c.meta.state.step));
                let w = format!(
                    "rollback {rollbacks}/{MAX_ROLLBACKS}: {} — restarting from {at} with lr {} (was {old})",
                    d.0, cfg.lr
                );
                eprintln!("warning: {w}");
                notes.push(w);
            }
            other => return other,
        }
    }
}

fn run_loop(
    dir: &RunDir,
    cfg: &RunConfig,
    data: &Splits,
    resume: Option<Checkpoint>,
    notes: Vec<String>,
) -> Result<Summary> {
    let base = backend::device(cfg.device)?;
    let ad = base.clone().autodiff();
    // Text models train on captions: the data's own, or ones made from its labels and pixels.
    let (mut spec, captions) = spec_with_captions(cfg, data)?;
    // A run keeps the architecture it started with: a DCGAN from before D's 3×3 layer resumes
    // without it (the layer is the release's, not the config's).
    if let Some(ck) = &resume {
        spec.d_conv3 = ck.meta.spec.d_conv3;
        spec.width = ck.meta.spec.width;
    }
    if let (Some(w), None) = (cfg.width, spec.width) {
        bail!(
            "--width {w} sets the scaled convolutional networks (DCGAN, LSGAN, --arch conv VAE) of square images of side {:?}; \
             these are {}×{} images",
            crate::models::pyramid::SIDES,
            data.train.shape.height,
            data.train.shape.width
        );
    }
    spec.validate()?;
    let log = MetricsLog::new(dir.metrics());

    let (mut net, mut optims, mut state): (Net, Vec<ModuleOptimizer>, TrainState) = match resume {
        None => (Net::new(&spec, cfg.seed, &ad), optimizers(&spec), TrainState::default()),
        Some(ck) => {
            if ck.meta.spec != spec {
                bail!(
                    "checkpoint of {} does not match its config on this data (checkpoint: {:?}; config: {:?})",
                    dir.path.display(),
                    ck.meta.spec,
                    spec
                );
            }
            let net = load_net(&ck, &ad, &dir.latest())?;
            let optims = decode_optims(&ck.optim, optimizers(&spec)).map_err(|e| {
                anyhow::anyhow!("checkpoint {}: optimiser state unreadable: {e}", dir.latest().display())
            })?;
            log.truncate_after(ck.meta.state.step)?;
            (net, optims, ck.meta.state)
        }
    };

    // One event file per session; its START event orphans what an interrupted session logged after
    // the checkpoint this one starts from, as `truncate_after` does for metrics.jsonl.
    let mut tb = if cfg.tensorboard { Some(TbWriter::create(&dir.tb(), state.step + 1)?) } else { None };

    for w in notes {
        log.append(&json!({"kind": "warning", "step": state.step, "message": w}))?;
        state.warnings.push(w);
    }
    let range = spec.kind.range();
    let loader = Loader::new(&data.train, cfg.batch_size, cfg.binarize, range, cfg.seed);
    let test_loader = Loader::new(&data.test, 1000, cfg.binarize, range, cfg.seed);
    let test_batches = test_loader.eval_batches(1000);
    let nb = loader.batches_per_epoch() as u64;
    // The schedule spans the run as configured (epochs, or --max-steps when that comes first).
    let total_steps = cfg.max_steps.map_or(cfg.epochs * nb, |m| m.min(cfg.epochs * nb));
    let stage_two_from = super::stack::stage_two_from(total_steps);
    let show_progress = std::io::stderr().is_terminal();

    let mut stop = Stop::Completed;
    let session_start = Instant::now();
    let wall_before = state.wall_secs;
    // The step of the checkpoint on disk: a stop right after a save does not save the same step
    // again (that would turn previous.ckpt into a copy of latest).
    let mut saved_at = state.step;
    // A timed warm-up: after a few steps, one line says how long the rest will take here.
    let mut eta = Eta::new(state.step);
    let slower_from = (!captions.is_empty()).then_some(stage_two_from);
    let left = Left { total: total_steps, nb, test_n: data.test.n as u64, slower_from };
    // Where this session's wall time goes (summary.json `loop_secs`; `bench --loop` reports it).
    let mut phases = LoopSecs::default();
    let mut writer = CheckpointWriter::default();
    // The test losses of the last epoch end: the final ones when no step came after it.
    let mut last_test: Option<(u64, Value)> = None;
    let mut lap = Instant::now();

    'epochs: while state.epoch < cfg.epochs {
        let epoch = state.epoch;
        let order = loader.order(epoch);
        let pb = progress_bar(nb, epoch + 1, cfg.epochs, show_progress);
        pb.set_position(state.batch_in_epoch);
        let epoch_start = Instant::now();
        let mut epoch_samples = 0u64;
        // The batches come from their own thread, one ahead (`Loader::prefetch`); the scope ends
        // that thread with the epoch, or when training stops inside it.
        let (trained, ended) = std::thread::scope(|s| -> Result<(Net, bool)> {
            let mut net = net;
            let batches = loader.prefetch(s, &order, state.batch_in_epoch as usize, state.step);
            while state.batch_in_epoch < nb {
                if cfg.max_steps.is_some_and(|m| state.step >= m) {
                    stop = Stop::MaxSteps;
                    pb.finish_and_clear();
                    return Ok((net, true));
                }
                if crate::util::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                    stop = Stop::Interrupted;
                    pb.finish_and_clear();
                    return Ok((net, true));
                }
                phases.other += lap_secs(&mut lap);
                let batch = batches.recv().context("the batch thread of training stopped")?;
                let x = matrix(batch.x, batch.n, spec.shape.len(), &ad);
                let noise = &mut rng(cfg.seed, Stream::Noise, state.step);
                let lr = cfg.lr * cfg.lr_schedule.factor(state.step, total_steps);
                // KL warm-up: the KL weight rises linearly over the first kl_warmup epochs.
                let warm =
                    (cfg.kl_warmup > 0).then(|| (state.step as f64 / cfg.kl_warmup.saturating_mul(nb) as f64).min(1.0));
                let warm_spec = warm.filter(|&w| w < 1.0).map(|w| ModelSpec { beta: spec.beta * w, ..spec.clone() });
                let step_spec = warm_spec.as_ref().unwrap_or(&spec);
                let text = (!captions.is_empty()).then(|| {
                    let lo = state.batch_in_epoch as usize * cfg.batch_size;
                    let idx = &order[lo..(lo + cfg.batch_size).min(order.len())];
                    let stage = if state.step < stage_two_from { 1 } else { 2 };
                    super::stack::text_batch(&captions, idx, &batch.labels, cfg.seed, state.step, stage)
                });
                // Text models draw their captions above; the others' condition comes with the images.
                let cond = if text.is_some() { Vec::new() } else { spec.cond_of_data(&data.train, &batch.idx) };
                phases.data += lap_secs(&mut lap);
                let (next, values) = step(net, &mut optims, step_spec, cfg, lr, x, &cond, text.as_ref(), noise);
                net = next;
                phases.step += lap_secs(&mut lap);
                let mut values = values;
                if injected_nan(state.step + 1) {
                    values[0].1 = f64::NAN;
                }
                if let Some((name, v)) = values.iter().find(|(_, v)| !v.is_finite()) {
                    writer.finish()?;
                    let ck = if dir.latest().exists() { dir.latest().display().to_string() } else { "none yet".into() };
                    write_summary(
                        dir,
                        cfg,
                        &state,
                        Status::Diverged,
                        None,
                        0.0,
                        Some(format!("{name} = {v} at step {}", state.step)),
                    )?;
                    return Err(Diverged(format!(
                        "training diverged at step {} (epoch {}): loss term '{name}' is {v}. The last good checkpoint is \
                         kept ({ck}); try a lower --lr, or --on-diverge rollback",
                        state.step + 1,
                        epoch + 1
                    ))
                    .into());
                }
                state.step += 1;
                state.batch_in_epoch += 1;
                epoch_samples += batch.n as u64;
                for (k, v) in &values {
                    for sums in [&mut state.running, &mut state.epoch_sums] {
                        let acc = sums.entry(k.to_string()).or_default();
                        acc.0 += v * batch.n as f64;
                        acc.1 += batch.n as u64;
                    }
                }
                if state.step % cfg.log_every == 0 {
                    if let Some(w) =
                        collapse_warning(spec.kind.decl().collapse_below, &state.running, state.step, cfg.log_every)
                    {
                        eprintln!("warning: {w}");
                        log.append(&json!({"kind": "warning", "step": state.step, "message": w}))?;
                        state.warnings.push(w);
                    }
                    let line =
                        json!({"kind": "step", "step": state.step, "epoch": epoch + 1, "train": means(&state.running)});
                    log.append(&line)?;
                    if let Some(tb) = &mut tb {
                        tb.metrics(&line)?;
                        tb.scalar("train/lr", state.step, lr)?;
                    }
                    state.running.clear();
                }
                if checkpoint_due(state.step, cfg.checkpoint_every, state.batch_in_epoch, nb) {
                    phases.log += lap_secs(&mut lap);
                    tb.as_mut().map(TbWriter::flush).transpose()?;
                    net.sync_running_stats();
                    state.wall_secs = wall_before + session_start.elapsed().as_secs_f64();
                    save_checkpoint(&mut writer, dir, cfg, &spec, data, &net, &optims, &state, false)?;
                    saved_at = state.step;
                    phases.checkpoint += lap_secs(&mut lap);
                }
                if let Some(msg) = eta.update(state.step, left, batch.n) {
                    if show_progress { pb.println(&msg) } else { eprintln!("{msg}") }
                }
                if show_progress && state.step % 10 == 0 {
                    pb.set_message(format!("loss {:.2}", values[0].1));
                }
                pb.inc(1);
                phases.log += lap_secs(&mut lap);
                phases.samples += batch.n as u64;
                phases.steps += 1;
            }
            Ok((net, false))
        })?;
        net = trained;
        if ended {
            break 'epochs;
        }
        pb.finish_and_clear();

        // Epoch end: test losses, pictures, checkpoint.
        let epoch_secs = epoch_start.elapsed().as_secs_f64();
        net.sync_running_stats();
        state.epoch += 1;
        state.batch_in_epoch = 0;
        let model = Model { spec: spec.clone(), net: net.valid(), device: base.clone() };
        phases.other += lap_secs(&mut lap);
        let test = evaluate(&model, &data.test, &test_batches);
        last_test = Some((state.step, test.clone()));
        phases.test += lap_secs(&mut lap);
        let train_means = means(&std::mem::take(&mut state.epoch_sums));
        let sps = epoch_samples as f64 / epoch_secs.max(1e-9);
        let line = json!({
            "kind": "epoch", "step": state.step, "epoch": state.epoch, "train": train_means, "test": test,
            "epoch_secs": epoch_secs, "samples_per_sec": sps,
        });
        log.append(&line)?;
        eprintln!(
            "epoch {}/{}  train {}  test {}  {:.1} s  {:.0} samples/s",
            state.epoch,
            cfg.epochs,
            fmt_losses(&train_means),
            fmt_losses(&test),
            epoch_secs,
            sps
        );
        phases.log += lap_secs(&mut lap);
        let grid = epoch_pictures(dir, cfg, &model, data, state.epoch)?;
        if let Some(tb) = &mut tb {
            tb.metrics(&line)?;
            tb.png("samples", state.step, &grid)?;
            tb.flush()?;
        }
        phases.pictures += lap_secs(&mut lap);
        let test_loss = test["loss"].as_f64().unwrap_or(f64::INFINITY);
        // A GAN's test "loss" is D's; lower is not better, so its best checkpoint is not tracked.
        let improved = spec.kind.decl().held_out.lower_is_better && state.best_test_loss.is_none_or(|b| test_loss < b);
        if improved {
            state.best_test_loss = Some(test_loss);
        }
        state.wall_secs = wall_before + session_start.elapsed().as_secs_f64();
        save_checkpoint(&mut writer, dir, cfg, &spec, data, &net, &optims, &state, improved)?;
        saved_at = state.step;
        phases.checkpoint += lap_secs(&mut lap);
    }
    phases.other += lap_secs(&mut lap);
    net.sync_running_stats();
    tb.as_mut().map(TbWriter::flush).transpose()?;
    if (stop == Stop::MaxSteps || stop == Stop::Interrupted) && saved_at != state.step {
        state.wall_secs = wall_before + session_start.elapsed().as_secs_f64();
        save_checkpoint(&mut writer, dir, cfg, &spec, data, &net, &optims, &state, false)?;
    }
    phases.checkpoint += lap_secs(&mut lap);
    // The last write in flight is waited for once per run, as the final pictures are.
    writer.finish()?;
    phases.last += lap_secs(&mut lap);
    if stop == Stop::Interrupted {
        write_summary(dir, cfg, &state, Status::Interrupted, None, 0.0, None)?;
        return Err(Interrupted(format!(
            "interrupted at step {} (epoch {}): checkpoint saved; continue with `latentlab resume {}`",
            state.step,
            state.epoch + 1,
            dir.path.display()
        ))
        .into());
    }

    // Final pictures, curves and summary from the model as it ends.
    let model = Model { spec: spec.clone(), net: net.valid(), device: base };
    let test = match last_test {
        Some((step, test)) if step == state.step => test,
        _ => evaluate(&model, &data.test, &test_batches),
    };
    final_pictures(dir, cfg, &model, data)?;
    phases.last += lap_secs(&mut lap);
    if crate::util::fault("kill-before-summary") {
        // A kill at the worst moment of the final phase: pictures written, no summary yet.
        // SAFETY: raising a signal at the own process has no memory-safety preconditions.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    // A session that only wrote the final phase (its training had ended) reports the rate the
    // epochs logged.
    let sps = if phases.samples > 0 {
        phases.samples as f64 / (phases.data + phases.step).max(1e-9)
    } else {
        logged_rate(dir)
    };
    let status = if stop == Stop::Completed { Status::Completed } else { Status::MaxSteps };
    let summary = write_summary(dir, cfg, &state, status, Some(test), sps, None)?;
    let summary = Summary { loop_secs: Some(phases), ..summary };
    summary.save(&dir.summary())?;
    Ok(summary)
}

/// Seconds since `lap`, which moves to now.
fn lap_secs(lap: &mut Instant) -> f64 {
    let now = Instant::now();
    let s = now.duration_since(*lap).as_secs_f64();
    *lap = now;
    s
}

/// The one estimate of a session: steps from the 3rd on (allocation and caches warm) until 2 s
/// and 5 steps (or 10 s) have passed, then the rest of the run at that rate.
struct Eta {
    first: u64,
    from: Option<(Instant, u64)>,
    samples: u64,
    said: bool,
}

/// What is left of a run, for the estimate: `nb` steps per epoch, `test_n` test images scored at
/// each epoch end and at the run's end, `slower_from` a StackGAN's stage II, whose steps cost
/// about twice stage I's (measured 1.9× on 64×64 faces, 2.2× on digits).
#[derive(Clone, Copy)]
struct Left {
    total: u64,
    nb: u64,
    test_n: u64,
    slower_from: Option<u64>,
}

impl Left {
    /// Seconds to the end from `step`, at `per_step` seconds a step of `n` images. A test pass
    /// scores `test_n` images forward only, about a third of a training step's cost per image
    /// (measured: 3.6 % of a VAE epoch, 5.1 % of a DCGAN's, 6.8 % of a StackGAN's; this gives
    /// 5.6 % for MNIST's 10,000 test images against 60,000 training ones).
    fn secs(&self, step: u64, per_step: f64, n: usize) -> f64 {
        let steps = match self.slower_from {
            Some(from) if step < from => {
                (from.min(self.total) - step) as f64 + 2.0 * self.total.saturating_sub(from) as f64
            }
            _ => self.total.saturating_sub(step) as f64,
        };
        let passes = self.test_passes(step) as f64;
        steps * per_step + passes * self.test_n as f64 * per_step / n.max(1) as f64 / 3.0
    }

    /// Test passes still to come: one per epoch end, one more where the run stops mid-epoch.
    fn test_passes(&self, step: u64) -> u64 {
        let nb = self.nb.max(1);
        self.total.div_ceil(nb).saturating_sub(step / nb)
    }
}

impl Eta {
    fn new(step: u64) -> Eta {
        Eta { first: step, from: None, samples: 0, said: false }
    }

    fn update(&mut self, step: u64, left: Left, n: usize) -> Option<String> {
        if self.said {
            return None;
        }
        let Some((t0, s0)) = self.from else {
            if step >= self.first + 3 {
                self.from = Some((Instant::now(), step));
            }
            return None;
        };
        self.samples += n as u64;
        let secs = t0.elapsed().as_secs_f64();
        if !((secs >= 2.0 && step >= s0 + 5) || (secs >= 10.0 && step > s0)) {
            return None;
        }
        self.said = true;
        let rest = left.secs(step, secs / (step - s0) as f64, n);
        Some(format!(
            "about {} on this machine for the remaining {} steps and {} test passes ({:.0} samples/s; pictures add a little)",
            if rest >= 90.0 { format!("{:.0} min", rest / 60.0) } else { format!("{rest:.0} s") },
            left.total.saturating_sub(step),
            left.test_passes(step),
            self.samples as f64 / secs
        ))
    }
}

/// Mean samples/s over the epochs `metrics.jsonl` logged (0 when it logged none).
fn logged_rate(dir: &RunDir) -> f64 {
    let rates: Vec<f64> = super::log::read(&dir.metrics())
        .unwrap_or_default()
        .iter()
        .filter(|v| v["kind"] == "epoch")
        .filter_map(|v| v["samples_per_sec"].as_f64())
        .collect();
    if rates.is_empty() { 0.0 } else { rates.iter().sum::<f64>() / rates.len() as f64 }
}

/// The `nan-at-step-N` fault (see `util::fault`), fired once per process.
fn injected_nan(step: u64) -> bool {
    static FIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    #[cfg(test)]
    if tests::NAN_AT.with(|n| n.get() == Some(step) && n.take().is_some()) {
        return true;
    }
    crate::util::fault(&format!("nan-at-step-{step}")) && !FIRED.swap(true, std::sync::atomic::Ordering::SeqCst)
}

/// A mid-epoch checkpoint is due every `every` steps (0: epoch ends only, which save anyway).
fn checkpoint_due(step: u64, every: u64, batch_in_epoch: u64, batches_per_epoch: u64) -> bool {
    every > 0 && step.is_multiple_of(every) && batch_in_epoch < batches_per_epoch
}

/// The declared collapse guard: D's mean loss since the last log below the model's floor means D
/// wins outright and G gets no gradient to learn from. Models without a floor (a critic whose loss
/// is unbounded below) are never warned.
fn collapse_warning(floor: Option<f64>, running: &Sums, step: u64, log_every: u64) -> Option<String> {
    let floor = floor?;
    let (s, n) = running.get("d_loss").filter(|(_, n)| *n > 0)?;
    let mean = s / *n as f64;
    (mean < floor).then(|| {
        format!(
            "step {step}: D's loss averages {mean:.2e} over the last {log_every} steps: D wins outright and G gets no \
             useful gradient (collapse/failure mode); try --label-smoothing 0.1 or a lower --lr"
        )
    })
}

#[cfg(test)]
mod tests;

/// Checkpoints encoded and written on a thread of their own, so that encoding, the disk and its
/// fsyncs overlap the next steps (they took 5.5 % of a `train vae` epoch). One write in flight at a time, in order; its
/// error is returned by the next `save` or by `finish`. Dropping the writer waits for the write.
#[derive(Default)]
struct CheckpointWriter(Option<std::thread::JoinHandle<Result<()>>>);

impl CheckpointWriter {
    /// Encode (`encode` gives the file's bytes) and write, after the write before it.
    fn save(
        &mut self,
        dir: &RunDir,
        best: bool,
        encode: impl FnOnce() -> Result<Vec<u8>> + Send + 'static,
    ) -> Result<()> {
        self.finish()?;
        let (latest, previous, best) = (dir.latest(), dir.previous(), best.then(|| dir.best()));
        let write = move || -> Result<()> {
            let bytes = encode()?;
            crate::util::write_atomic_keeping(&latest, Some(&previous), &bytes).context("saving checkpoint")?;
            if let Some(best) = best {
                crate::util::write_atomic(&best, &bytes).context("saving best checkpoint")?;
            }
            Ok(())
        };
        let handle = std::thread::Builder::new().name("checkpoint".into()).spawn(write);
        self.0 = Some(handle.context("cannot start the checkpoint writer")?);
        Ok(())
    }

    /// Wait for the write in flight; its error, if it failed.
    fn finish(&mut self) -> Result<()> {
        match self.0.take() {
            Some(h) => h.join().map_err(|_| anyhow::anyhow!("the checkpoint writer panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

#[allow(clippy::too_many_arguments)]
fn save_checkpoint(
    writer: &mut CheckpointWriter,
    dir: &RunDir,
    cfg: &RunConfig,
    spec: &ModelSpec,
    data: &Splits,
    net: &Net,
    optims: &[ModuleOptimizer],
    state: &TrainState,
    best: bool,
) -> Result<()> {
    let meta = Meta {
        state: state.clone(),
        config: cfg.to_toml(),
        spec: spec.clone(),
        class_names: data.class_names.clone(),
        latentlab_version: env!("CARGO_PKG_VERSION").into(),
    };
    // Tensors are immutable: the clones hold this step's weights and moments while training goes on.
    let (net, optims) = (net.clone(), optims.to_vec());
    writer.save(dir, best, move || {
        let model = net.into_record().into_bytes().map_err(|e| anyhow::anyhow!("cannot serialise weights: {e:?}"))?;
        let optim = encode_optims(&optims)?;
        Ok(Checkpoint { meta, model: model.to_vec(), optim: optim.to_vec() }.encode())
    })
}

fn write_summary(
    dir: &RunDir,
    cfg: &RunConfig,
    state: &TrainState,
    status: Status,
    test: Option<Value>,
    samples_per_sec: f64,
    error: Option<String>,
) -> Result<Summary> {
    let s = Summary {
        model: cfg.model,
        dataset: cfg.dataset.clone(),
        status,
        error,
        epochs: state.epoch,
        steps: state.step,
        wall_secs: state.wall_secs,
        train_samples_per_sec: Some(samples_per_sec),
        test: test.map(serde_json::from_value).transpose()?,
        units: cfg.model.decl().held_out.units.into(),
        warnings: state.warnings.clone(),
        best_test_loss: state.best_test_loss,
        seed: cfg.seed,
        device: format!("{:?}", cfg.device).to_lowercase(),
        threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        loop_secs: None,
    };
    s.save(&dir.summary())?;
    Ok(s)
}
