//! The training loop, once for every model: batches, the model family's step (`likelihood` or
//! `adversarial`), logging, the divergence and collapse guards, per-epoch test evaluation, fixed-noise
//! sample grids, reconstructions, checkpoints, metrics and the summary.

use super::checkpoint::{Checkpoint, Meta, Sums, TrainState};
use super::log::MetricsLog;
use crate::backend;
use crate::config::RunConfig;
use crate::data::{Batch, Loader, Range, Splits};
use crate::models::blocks::{matrix, one_hot};
use crate::models::{Model, ModelSpec, Net};
use crate::run::{RunDir, load_net};
use crate::util::{Stream, normal_vec, rng};
use crate::viz;
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::time::Instant;

/// The model spec a config implies on a dataset.
pub fn spec_for(cfg: &RunConfig, data: &Splits) -> ModelSpec {
    ModelSpec {
        kind: cfg.model,
        shape: data.train.shape,
        num_classes: data.train.num_classes,
        latent_dim: cfg.latent_dim,
        hidden: cfg.hidden.clone(),
        decoder: cfg.decoder,
        decoder_sigma: cfg.decoder_sigma,
        beta: cfg.beta,
        prior: cfg.prior,
        arch: cfg.arch,
        objective: cfg.objective,
        ema: cfg.ema,
    }
}

/// Fresh optimisers of a model's recipe, in the order its step function uses them.
pub fn optimizers(spec: &ModelSpec) -> Vec<ModuleOptimizer> {
    spec.kind.decl().optimizers.iter().map(|a| super::optim::FusedAdam::new(a.beta1).init()).collect()
}

/// Optimiser states as one byte blob: count, then length-prefixed burnpack records.
fn encode_optims(optims: &[ModuleOptimizer]) -> Result<Vec<u8>> {
    let mut out = (optims.len() as u64).to_le_bytes().to_vec();
    for o in optims {
        let b = o.into_bytes().map_err(|e| anyhow::anyhow!("cannot serialise optimiser state: {e:?}"))?;
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(&b);
    }
    Ok(out)
}

fn decode_optims(bytes: &[u8], fresh: Vec<ModuleOptimizer>) -> std::result::Result<Vec<ModuleOptimizer>, String> {
    let read_u64 = |pos: usize| -> std::result::Result<u64, String> {
        bytes
            .get(pos..pos + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            .ok_or_else(|| "truncated".to_string())
    };
    let n = read_u64(0)? as usize;
    if n != fresh.len() {
        return Err(format!("{n} optimiser states, the model needs {}", fresh.len()));
    }
    let mut pos = 8;
    let mut out = Vec::new();
    for o in fresh {
        let len = read_u64(pos)? as usize;
        pos += 8;
        let b = bytes.get(pos..pos.saturating_add(len)).ok_or("truncated optimiser state")?;
        pos += len;
        out.push(o.from_bytes(burn::tensor::Bytes::from_bytes_vec(b.to_vec())).map_err(|e| format!("{e:?}"))?);
    }
    Ok(out)
}

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
pub fn train(dir: &RunDir, cfg: &RunConfig, data: &Splits, resume: Option<Checkpoint>) -> Result<Value> {
    let mut cfg = cfg.clone();
    let mut resume = resume;
    let mut notes = Vec::new();
    let mut rollbacks = 0;
    loop {
        match run_loop(dir, &cfg, data, resume, std::mem::take(&mut notes)) {
            Err(e) if cfg.on_diverge == crate::config::OnDiverge::Rollback && rollbacks < MAX_ROLLBACKS => {
                let Some(d) = e.downcast_ref::<Diverged>() else { return Err(e) };
                rollbacks += 1;
                let old = cfg.lr;
                cfg.lr /= 2.0;
                crate::util::write_atomic(&dir.config(), cfg.to_toml().as_bytes())?;
                resume = if dir.latest().exists() { Some(Checkpoint::load(&dir.latest())?) } else { None };
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

/// One optimiser step of any model kind on batch `x` at learning rate `lr` (what `train` and
/// `bench` both run).
#[allow(clippy::too_many_arguments)]
pub fn step(
    net: Net,
    optims: &mut [ModuleOptimizer],
    spec: &ModelSpec,
    cfg: &RunConfig,
    lr: f64,
    x: burn::prelude::Tensor<2>,
    labels: &[u8],
    noise: &mut rand_chacha::ChaCha8Rng,
) -> (Net, Vec<(&'static str, f64)>) {
    match net {
        Net::Gan(m) => {
            let cond = spec.kind.is_conditional().then(|| one_hot(labels, spec.num_classes, &x.device()));
            let (m, v) = super::adversarial::gan_step(m, optims, spec, cfg, lr, x, cond, noise);
            (Net::Gan(m), v)
        }
        Net::Aae(m) => {
            let (m, v) = super::adversarial::aae_step(m, optims, spec, cfg, lr, x, noise);
            (Net::Aae(m), v)
        }
        other => super::likelihood::step(other, &mut optims[0], spec, lr, x, labels, noise),
    }
}

fn run_loop(
    dir: &RunDir,
    cfg: &RunConfig,
    data: &Splits,
    resume: Option<Checkpoint>,
    notes: Vec<String>,
) -> Result<Value> {
    let base = backend::device(cfg.device)?;
    let ad = base.clone().autodiff();
    let spec = spec_for(cfg, data);
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
    let show_progress = std::io::stderr().is_terminal();

    let mut stop = Stop::Completed;
    let mut step_secs = 0.0f64;
    let mut step_samples = 0u64;
    let session_start = Instant::now();
    let wall_before = state.wall_secs;

    'epochs: while state.epoch < cfg.epochs {
        let epoch = state.epoch;
        let order = loader.order(epoch);
        let pb = progress_bar(nb, epoch + 1, cfg.epochs, show_progress);
        pb.set_position(state.batch_in_epoch);
        let epoch_start = Instant::now();
        let mut epoch_samples = 0u64;
        while state.batch_in_epoch < nb {
            if cfg.max_steps.is_some_and(|m| state.step >= m) {
                stop = Stop::MaxSteps;
                pb.finish_and_clear();
                break 'epochs;
            }
            if crate::util::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                stop = Stop::Interrupted;
                pb.finish_and_clear();
                break 'epochs;
            }
            let t0 = Instant::now();
            let batch = loader.batch(&order, state.batch_in_epoch as usize, state.step);
            let x = matrix(batch.x, batch.n, spec.shape.len(), &ad);
            let noise = &mut rng(cfg.seed, Stream::Noise, state.step);
            let lr = cfg.lr * cfg.lr_schedule.factor(state.step, total_steps);
            // KL warm-up: the KL weight rises linearly over the first kl_warmup epochs.
            let warm =
                (cfg.kl_warmup > 0).then(|| (state.step as f64 / cfg.kl_warmup.saturating_mul(nb) as f64).min(1.0));
            let warm_spec = warm.filter(|&w| w < 1.0).map(|w| ModelSpec { beta: spec.beta * w, ..spec.clone() });
            let step_spec = warm_spec.as_ref().unwrap_or(&spec);
            let (next, values) = step(net, &mut optims, step_spec, cfg, lr, x, &batch.labels, noise);
            net = next;
            let mut values = values;
            if injected_nan(state.step + 1) {
                values[0].1 = f64::NAN;
            }
            if let Some((name, v)) = values.iter().find(|(_, v)| !v.is_finite()) {
                let ck = if dir.latest().exists() { dir.latest().display().to_string() } else { "none yet".into() };
                write_summary(
                    dir,
                    cfg,
                    &state,
                    "diverged",
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
            step_secs += t0.elapsed().as_secs_f64();
            step_samples += batch.n as u64;
            epoch_samples += batch.n as u64;
            for (k, v) in &values {
                for sums in [&mut state.running, &mut state.epoch_sums] {
                    let acc = sums.entry(k.to_string()).or_default();
                    acc.0 += v * batch.n as f64;
                    acc.1 += batch.n as u64;
                }
            }
            if state.step % cfg.log_every == 0 {
                // Collapse guard: a discriminator that wins outright gives G no gradient to learn from.
                if let Some(floor) = spec.kind.decl().collapse_below
                    && let Some((s, n)) = state.running.get("d_loss")
                    && *n > 0
                    && s / (*n as f64) < floor
                {
                    let w = format!(
                        "step {}: D's loss averages {:.2e} over the last {} steps: D wins outright and G gets no \
                         useful gradient (collapse/failure mode); try --label-smoothing 0.1 or a lower --lr",
                        state.step,
                        s / *n as f64,
                        cfg.log_every
                    );
                    eprintln!("warning: {w}");
                    log.append(&json!({"kind": "warning", "step": state.step, "message": w}))?;
                    state.warnings.push(w);
                }
                log.append(
                    &json!({"kind": "step", "step": state.step, "epoch": epoch + 1, "train": means(&state.running)}),
                )?;
                state.running.clear();
            }
            if cfg.checkpoint_every > 0 && state.step % cfg.checkpoint_every == 0 && state.batch_in_epoch < nb {
                net.sync_running_stats();
                state.wall_secs = wall_before + session_start.elapsed().as_secs_f64();
                save_checkpoint(dir, cfg, &spec, data, &net, &optims, &state, false)?;
            }
            if show_progress && state.step % 10 == 0 {
                pb.set_message(format!("loss {:.2}", values[0].1));
            }
            pb.inc(1);
        }
        pb.finish_and_clear();

        // Epoch end: test losses, pictures, checkpoint.
        let epoch_secs = epoch_start.elapsed().as_secs_f64();
        net.sync_running_stats();
        state.epoch += 1;
        state.batch_in_epoch = 0;
        let model = Model { spec: spec.clone(), net: net.valid(), device: base.clone() };
        let test = evaluate(&model, &test_batches);
        let train_means = means(&std::mem::take(&mut state.epoch_sums));
        let sps = epoch_samples as f64 / epoch_secs.max(1e-9);
        log.append(&json!({
            "kind": "epoch", "step": state.step, "epoch": state.epoch, "train": train_means, "test": test,
            "epoch_secs": epoch_secs, "samples_per_sec": sps,
        }))?;
        eprintln!(
            "epoch {}/{}  train {}  test {}  {:.1} s  {:.0} samples/s",
            state.epoch,
            cfg.epochs,
            fmt_losses(&train_means),
            fmt_losses(&test),
            epoch_secs,
            sps
        );
        epoch_pictures(dir, cfg, &model, data, state.epoch)?;
        let test_loss = test["loss"].as_f64().unwrap_or(f64::INFINITY);
        // A GAN's test "loss" is D's; lower is not better, so its best checkpoint is not tracked.
        let improved = spec.kind.decl().held_out.lower_is_better && state.best_test_loss.is_none_or(|b| test_loss < b);
        if improved {
            state.best_test_loss = Some(test_loss);
        }
        state.wall_secs = wall_before + session_start.elapsed().as_secs_f64();
        save_checkpoint(dir, cfg, &spec, data, &net, &optims, &state, improved)?;
    }
    net.sync_running_stats();
    if stop == Stop::MaxSteps || stop == Stop::Interrupted {
        state.wall_secs = wall_before + session_start.elapsed().as_secs_f64();
        save_checkpoint(dir, cfg, &spec, data, &net, &optims, &state, false)?;
    }
    if stop == Stop::Interrupted {
        write_summary(dir, cfg, &state, "interrupted", None, 0.0, None)?;
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
    let test = evaluate(&model, &test_batches);
    final_pictures(dir, cfg, &model, data)?;
    let sps = step_samples as f64 / step_secs.max(1e-9);
    let status = if stop == Stop::Completed { "completed" } else { "stopped at --max-steps" };
    write_summary(dir, cfg, &state, status, Some(test), sps, None)
}

/// The `nan-at-step-N` fault (see `util::fault`), fired once per process.
fn injected_nan(step: u64) -> bool {
    static FIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    crate::util::fault(&format!("nan-at-step-{step}")) && !FIRED.swap(true, std::sync::atomic::Ordering::SeqCst)
}

fn progress_bar(len: u64, epoch: u64, epochs: u64, visible: bool) -> ProgressBar {
    progress(len, &format!("epoch {epoch}/{epochs}"), visible)
}

/// A progress bar on stderr (hidden when `visible` is false or stderr is not a terminal).
pub fn progress(len: u64, prefix: &str, visible: bool) -> ProgressBar {
    let visible = visible && std::io::stderr().is_terminal();
    let pb = ProgressBar::with_draw_target(
        Some(len),
        if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
    );
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(prefix.to_string());
    pb
}

fn means(acc: &Sums) -> Value {
    Value::Object(acc.iter().map(|(k, (s, n))| (k.to_string(), json!(s / (*n).max(1) as f64))).collect())
}

fn fmt_losses(v: &Value) -> String {
    let o = v.as_object().cloned().unwrap_or_default();
    let main = o.get("loss").and_then(Value::as_f64).unwrap_or(f64::NAN);
    let rest: Vec<String> = o
        .iter()
        .filter(|(k, _)| *k != "loss")
        .map(|(k, v)| format!("{k} {:.2}", v.as_f64().unwrap_or(f64::NAN)))
        .collect();
    if rest.is_empty() { format!("{main:.2}") } else { format!("{main:.2} ({})", rest.join(", ")) }
}

/// Mean losses over evaluation batches (per image), with fixed reparameterisation noise.
pub fn evaluate(model: &Model, batches: &[Batch]) -> Value {
    let mut acc = Sums::new();
    let (l, k) = (model.spec.latent_dim, model.spec.objective.draws());
    for (i, b) in batches.iter().enumerate() {
        let x = matrix(b.x.clone(), b.n, model.spec.shape.len(), &model.device);
        let eps = matrix(normal_vec(&mut rng(0x7E57, Stream::Eval, i as u64), b.n * k * l), b.n * k, l, &model.device);
        for (k, v) in model.net.losses(&model.spec, x, &b.labels, eps).values() {
            let e = acc.entry(k.to_string()).or_default();
            e.0 += v * b.n as f64;
            e.1 += b.n as u64;
        }
    }
    means(&acc)
}

/// Fixed codes for the per-epoch sample grid: conditional models get one row per class.
pub fn fixed_grid_codes(model: &Model, seed: u64) -> (Vec<f32>, Vec<u8>, usize) {
    let k = model.spec.num_classes;
    if model.spec.kind.is_conditional() {
        let n = k * 8;
        let z = model.prior(n, &mut rng(seed, Stream::FixedNoise, 0));
        (z, (0..n).map(|i| (i / 8) as u8).collect(), 8)
    } else {
        (model.prior(64, &mut rng(seed, Stream::FixedNoise, 0)), vec![], 8)
    }
}

fn epoch_pictures(dir: &RunDir, cfg: &RunConfig, model: &Model, data: &Splits, epoch: u64) -> Result<()> {
    let (z, labels, ncol) = fixed_grid_codes(model, cfg.seed);
    let imgs = model.decode_host(&z, &labels);
    viz::grid::save_grid(&imgs, model.spec.shape, ncol, &dir.samples().join(format!("epoch-{epoch:03}.png")))?;
    if model.spec.kind.has_encoder() {
        recon_grid(model, data, &dir.samples().join(format!("recon-{epoch:03}.png")))?;
    }
    Ok(())
}

/// Originals (top two rows) above their reconstructions (bottom two rows).
pub fn recon_grid(model: &Model, data: &Splits, path: &std::path::Path) -> Result<()> {
    let head = data.test.head(16);
    let loader = Loader::new(&head, 16, crate::data::Binarize::None, Range::Unit, 0);
    let b = &loader.eval_batches(16)[0];
    let z = model.encode_host(&b.x, &b.labels)?;
    let rec = model.decode_host(&z, &b.labels);
    let mut both = b.x.clone();
    both.extend(rec);
    viz::grid::save_grid(&both, model.spec.shape, 8, path)
}

fn final_pictures(dir: &RunDir, cfg: &RunConfig, model: &Model, data: &Splits) -> Result<()> {
    let fin = dir.final_dir();
    let (z, labels, ncol) = fixed_grid_codes(model, cfg.seed);
    viz::grid::save_grid(&model.decode_host(&z, &labels), model.spec.shape, ncol, &fin.join("samples.png"))?;
    if model.spec.kind.has_encoder() {
        recon_grid(model, data, &fin.join("reconstructions.png"))?;
    }
    loss_curves(dir)?;
    let mut frames: Vec<_> = std::fs::read_dir(dir.samples())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("epoch-")))
        .collect();
    frames.sort();
    if !frames.is_empty() {
        viz::gif::gif_from_pngs(&frames, &dir.samples().join("progress.gif"), 500)?;
    }
    Ok(())
}

/// `final/loss.png`: one panel per loss term, train (logged steps) and test (epoch ends) vs step.
pub fn loss_curves(dir: &RunDir) -> Result<()> {
    use viz::plot::Series;
    if !dir.metrics().exists() {
        return Ok(()); // nothing logged yet (a run shorter than --log-every steps)
    }
    let lines = super::log::read(&dir.metrics())?;
    let mut terms: Vec<String> = Vec::new();
    for l in &lines {
        for part in ["train", "test"] {
            if let Some(o) = l.get(part).and_then(Value::as_object) {
                for k in o.keys() {
                    if !terms.contains(k) {
                        terms.push(k.clone());
                    }
                }
            }
        }
    }
    // The total first, then its terms.
    terms.sort_by_key(|t| (t != "loss", t.clone()));
    let pick = |kind: &str, part: &str, term: &str| -> Vec<(f64, f64)> {
        lines
            .iter()
            .filter(|l| l["kind"] == kind)
            .filter_map(|l| Some((l["step"].as_f64()?, l[part][term].as_f64()?)))
            .collect()
    };
    let panels: Vec<(String, String, Vec<Series>)> = terms
        .iter()
        .map(|t| {
            let mut s = vec![Series { name: "train".into(), points: pick("step", "train", t) }];
            let test = pick("epoch", "test", t);
            if !test.is_empty() {
                s.push(Series { name: "test".into(), points: test });
            }
            let unit = if t.starts_with("d_real") || t.starts_with("d_fake") {
                "mean D output"
            } else if t.contains("grad_norm") {
                "L2 norm"
            } else {
                "nats / image"
            };
            (t.clone(), unit.to_string(), s)
        })
        .filter(|(_, _, s)| s.iter().any(|s| !s.points.is_empty()))
        .collect();
    if panels.is_empty() {
        return Ok(());
    }
    viz::plot::line_panels(&dir.final_dir().join("loss.png"), "step", &panels)?;
    // The adversarial game at a glance: D(x) and D(G(z)) should both approach 1/2.
    let (dr, df) = (pick("step", "train", "d_real"), pick("step", "train", "d_fake"));
    if !dr.is_empty() {
        let half = vec![(dr[0].0, 0.5), (dr[dr.len() - 1].0, 0.5)];
        let s = vec![
            Series { name: "D(x)".into(), points: dr },
            Series { name: "D(G(z))".into(), points: df },
            Series { name: "1/2".into(), points: half },
        ];
        viz::plot::line_chart(
            &dir.final_dir().join("d_outputs.png"),
            "Discriminator outputs",
            "step",
            "mean D",
            &s,
            false,
        )?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn save_checkpoint(
    dir: &RunDir,
    cfg: &RunConfig,
    spec: &ModelSpec,
    data: &Splits,
    net: &Net,
    optims: &[ModuleOptimizer],
    state: &TrainState,
    best: bool,
) -> Result<()> {
    let model =
        net.clone().into_record().into_bytes().map_err(|e| anyhow::anyhow!("cannot serialise weights: {e:?}"))?;
    let optim = encode_optims(optims)?;
    let ck = Checkpoint {
        meta: Meta {
            state: state.clone(),
            config: cfg.to_toml(),
            spec: spec.clone(),
            class_names: data.class_names.clone(),
            latentlab_version: env!("CARGO_PKG_VERSION").into(),
        },
        model: model.to_vec(),
        optim: optim.to_vec(),
    };
    let bytes = ck.encode();
    crate::util::write_atomic(&dir.latest(), &bytes).context("saving checkpoint")?;
    if best {
        crate::util::write_atomic(&dir.best(), &bytes).context("saving best checkpoint")?;
    }
    Ok(())
}

fn write_summary(
    dir: &RunDir,
    cfg: &RunConfig,
    state: &TrainState,
    status: &str,
    test: Option<Value>,
    samples_per_sec: f64,
    error: Option<String>,
) -> Result<Value> {
    let s = json!({
        "model": cfg.model.name(),
        "dataset": cfg.dataset,
        "status": status,
        "error": error,
        "epochs": state.epoch,
        "steps": state.step,
        "wall_secs": state.wall_secs,
        "train_samples_per_sec": samples_per_sec,
        "test": test,
        "units": cfg.model.decl().held_out.units,
        "warnings": state.warnings,
        "best_test_loss": state.best_test_loss,
        "seed": cfg.seed,
        "device": format!("{:?}", cfg.device).to_lowercase(),
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    crate::util::write_atomic(&dir.summary(), serde_json::to_string_pretty(&s)?.as_bytes())?;
    Ok(s)
}
