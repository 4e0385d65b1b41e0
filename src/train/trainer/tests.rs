//! The loop with a tiny model on real data (the digits dataset): checkpoint cadence, rollback on a
//! NaN, and the declared guards.

use super::*;
use crate::config::{OnDiverge, Options};
use crate::models::ModelKind;
use std::cell::Cell;

thread_local! {
    /// Step whose loss the next run on this thread sees as NaN (once).
    pub(super) static NAN_AT: Cell<Option<u64>> = const { Cell::new(None) };
}

fn tiny(dir: &std::path::Path, opts: Options) -> (RunDir, RunConfig, Splits) {
    let data_dir = crate::data::data_dir(None);
    let base = Options {
        dataset: Some("digits".into()),
        data_dir: Some(data_dir),
        batch_size: Some(32),
        hidden: Some(vec![16]),
        latent_dim: Some(2),
        log_every: Some(2),
        ..Default::default()
    };
    let cfg = RunConfig::resolve(ModelKind::Ae, opts.or(base)).unwrap();
    let data = crate::data::load(&cfg.dataset, cfg.data_dir.as_deref()).unwrap();
    let (run, _lock) = RunDir::create(dir).unwrap();
    crate::util::write_atomic(&run.config(), cfg.to_toml().as_bytes()).unwrap();
    (run, cfg, data)
}

#[test]
fn mid_epoch_checkpoints_follow_the_cadence() {
    let dir = tempfile::tempdir().unwrap();
    let (run, cfg, data) =
        tiny(dir.path(), Options { max_steps: Some(7), checkpoint_every: Some(3), ..Default::default() });
    // Stop the loop at step 7 by max-steps; the last mid-epoch checkpoint before it was at step 6.
    let mut capped = cfg.clone();
    capped.max_steps = Some(6);
    train(&run, &capped, &data, None).unwrap();
    assert_eq!(Checkpoint::load(&run.latest()).unwrap().meta.state.step, 6);
    assert!(checkpoint_due(3, 3, 3, 10) && checkpoint_due(6, 3, 6, 10));
    assert!(!checkpoint_due(4, 3, 4, 10) && !checkpoint_due(3, 0, 3, 10));
    // At an epoch's end the epoch checkpoint is written instead.
    assert!(!checkpoint_due(10, 5, 10, 10));
}

#[test]
fn a_nan_rolls_back_to_the_last_checkpoint_with_half_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        max_steps: Some(12),
        checkpoint_every: Some(4),
        on_diverge: Some(OnDiverge::Rollback),
        ..Default::default()
    };
    let (run, cfg, data) = tiny(dir.path(), opts);
    NAN_AT.with(|n| n.set(Some(7)));
    let summary = train(&run, &cfg, &data, None).unwrap();
    let warnings = summary.warnings.join("\n");
    assert!(warnings.contains("rollback 1/3") && warnings.contains("step 4"), "{warnings}");
    let (_, stored) = RunDir::open(&run.path).unwrap();
    assert_eq!(stored.lr, cfg.lr / 2.0);
    assert_eq!(summary.steps, 12);
    // Without rollback the same NaN stops the run and keeps the checkpoint of step 4.
    let dir = tempfile::tempdir().unwrap();
    let (run, cfg, data) =
        tiny(dir.path(), Options { max_steps: Some(12), checkpoint_every: Some(4), ..Default::default() });
    NAN_AT.with(|n| n.set(Some(7)));
    let e = train(&run, &cfg, &data, None).unwrap_err();
    assert!(e.downcast_ref::<Diverged>().is_some(), "{e}");
    assert_eq!(Checkpoint::load(&run.latest()).unwrap().meta.state.step, 4);
}

#[test]
fn the_collapse_guard_is_the_models_declared_floor() {
    let sums = |mean: f64| Sums::from([("d_loss".to_string(), (mean * 64.0, 64))]);
    let gan = ModelKind::Gan.decl().collapse_below;
    assert!(collapse_warning(gan, &sums(0.001), 50, 50).unwrap().contains("D wins outright"));
    assert!(collapse_warning(gan, &sums(1.2), 50, 50).is_none());
    // A model without a floor (a critic's loss may be negative) is never warned.
    assert!(collapse_warning(None, &sums(-3.0), 50, 50).is_none());
    assert!(collapse_warning(ModelKind::Vae.decl().collapse_below, &sums(0.0), 50, 50).is_none());
    assert!(collapse_warning(gan, &Sums::new(), 50, 50).is_none());
}

/// The estimate: the steps left at the measured rate, plus a third of a step's cost per test
/// image for each epoch end still to come (and one for a run that stops mid-epoch); a StackGAN's
/// stage-II steps count double.
#[test]
fn estimate_counts_steps_test_passes_and_stage_two() {
    // 10 epochs of 469 steps, 10,000 test images, 0.01 s a step of 128 images, at step 100.
    let left = Left { total: 4690, nb: 469, test_n: 10_000, slower_from: None };
    assert_eq!(left.test_passes(100), 10);
    let want = 4590.0 * 0.01 + 10.0 * 10_000.0 * (0.01 / 128.0) / 3.0;
    assert!((left.secs(100, 0.01, 128) - want).abs() < 1e-9, "{} vs {want}", left.secs(100, 0.01, 128));
    // Stopping mid-epoch (--max-steps 1000): epochs end at 469 and 938, and the run's end tests once more.
    let capped = Left { total: 1000, ..left };
    assert_eq!(capped.test_passes(100), 3);
    assert_eq!(capped.test_passes(500), 2);
    // Stage II from step 2345: its 2345 steps count as 4690.
    let stack = Left { slower_from: Some(2345), test_n: 0, ..left };
    assert!((stack.secs(100, 0.01, 64) - (2245.0 + 4690.0) * 0.01).abs() < 1e-9);
    assert!((stack.secs(3000, 0.01, 64) - 1690.0 * 0.01).abs() < 1e-9);
}
