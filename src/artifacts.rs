//! Typed run artifacts: what `train` leaves in `summary.json`, read back by type so that a
//! misspelt key is a compile error rather than a silent blank. (`eval.json` is
//! `crate::eval::EvalReport`.)
//!
//! Fields are declared in alphabetical order on purpose: the files used to be written from a
//! `serde_json::Value`, whose map sorts its keys, and this order keeps new files byte-identical.

use crate::models::ModelKind;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// How a training session ended, serialised as the strings `summary.json` has always held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Every requested epoch ran.
    #[serde(rename = "completed")]
    Completed,
    /// `--max-steps` stopped the run before its last epoch.
    #[serde(rename = "stopped at --max-steps")]
    MaxSteps,
    /// Ctrl-C: a checkpoint was saved; `latentlab resume` continues.
    #[serde(rename = "interrupted")]
    Interrupted,
    /// A NaN/Inf loss stopped the run.
    #[serde(rename = "diverged")]
    Diverged,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::MaxSteps => "stopped at --max-steps",
            Status::Interrupted => "interrupted",
            Status::Diverged => "diverged",
        }
    }
    /// Whether training reached the end it was asked for (a run to reuse, not to resume).
    pub fn finished(self) -> bool {
        matches!(self, Status::Completed | Status::MaxSteps)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `summary.json`. The identity of the run (model, dataset, status, progress) is required; what
/// describes it further defaults when an older file lacks it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(default)]
    pub best_test_loss: Option<f64>,
    pub dataset: String,
    /// The compute device in words ("cpu", "cuda"…).
    #[serde(default)]
    pub device: String,
    /// Completed epochs.
    pub epochs: u64,
    /// Why training stopped, when it failed (diverged: which loss term, at which step).
    #[serde(default)]
    pub error: Option<String>,
    pub model: ModelKind,
    #[serde(default)]
    pub seed: u64,
    pub status: Status,
    /// Optimiser steps taken.
    pub steps: u64,
    /// Mean test losses per term (None for interrupted or diverged runs; a NaN mean is null).
    #[serde(default)]
    pub test: Option<BTreeMap<String, Option<f64>>>,
    #[serde(default)]
    pub threads: usize,
    /// Training throughput (0 when the run stopped before its final summary).
    #[serde(default)]
    pub train_samples_per_sec: Option<f64>,
    /// What the numbers under `test` measure, in words.
    #[serde(default)]
    pub units: String,
    /// Training wall time (seconds), across resumes.
    #[serde(default)]
    pub wall_secs: f64,
    /// Collapse-guard warnings raised during training.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Where the wall time of the session that finished the run went, by phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_secs: Option<LoopSecs>,
}

/// Wall seconds of one training session by phase: what `bench --loop` compares with the bare
/// step, so that time spent around the step cannot grow unseen.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoopSecs {
    /// Batch assembly: gathering, binarisation, captions, upload.
    pub data: f64,
    /// The optimiser steps (forward, backward, update, losses read back).
    pub step: f64,
    /// Loss sums, metrics.jsonl, TensorBoard scalars, progress and guards.
    pub log: f64,
    /// Checkpoints, mid-epoch and at epoch ends.
    pub checkpoint: f64,
    /// The per-epoch test pass.
    pub test: f64,
    /// Per-epoch sample grids.
    pub pictures: f64,
    /// The rest of the epochs (shuffling, epoch bookkeeping).
    pub other: f64,
    /// The end of the run: the last checkpoint write, the final test pass and pictures.
    pub last: f64,
    /// Steps and samples this session trained.
    pub steps: u64,
    pub samples: u64,
}

impl LoopSecs {
    /// The epochs' wall time (everything but the end of the run).
    pub fn epochs(&self) -> f64 {
        self.data + self.step + self.log + self.checkpoint + self.test + self.pictures + self.other
    }

    /// Samples/s of the epochs, everything in them counted.
    pub fn rate(&self) -> f64 {
        self.samples as f64 / self.epochs().max(1e-9)
    }

    /// Samples/s of the steps alone.
    pub fn step_rate(&self) -> f64 {
        self.samples as f64 / self.step.max(1e-9)
    }

    /// Two sessions' times together.
    pub fn plus(&self, o: &LoopSecs) -> LoopSecs {
        LoopSecs {
            data: self.data + o.data,
            step: self.step + o.step,
            log: self.log + o.log,
            checkpoint: self.checkpoint + o.checkpoint,
            test: self.test + o.test,
            pictures: self.pictures + o.pictures,
            other: self.other + o.other,
            last: self.last + o.last,
            steps: self.steps + o.steps,
            samples: self.samples + o.samples,
        }
    }
}

impl Summary {
    /// Read `summary.json`; errors name the file.
    pub fn load(path: &Path) -> Result<Summary> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not a valid summary.json", path.display()))
    }

    /// Write it atomically, pretty-printed (the format `load` reads).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::util::write_atomic(path, serde_json::to_string_pretty(self)?.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const VAE: &str = include_str!("../tests/fixtures/summary-vae.json");
    const DCGAN: &str = include_str!("../tests/fixtures/summary-dcgan.json");

    /// Files written by today's `write_summary` load and re-serialise to the same JSON.
    #[test]
    fn summary_round_trips_todays_format() {
        for text in [VAE, DCGAN] {
            let s: Summary = serde_json::from_str(text).unwrap();
            assert_eq!(s.status, Status::MaxSteps);
            let want: Value = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_value(&s).unwrap(), want, "summary.json changed shape");
            // Key order too (compared with the untyped writer's bytes for the same content).
            assert_eq!(serde_json::to_string_pretty(&s).unwrap(), serde_json::to_string_pretty(&want).unwrap());
        }
        let s: Summary = serde_json::from_str(DCGAN).unwrap();
        assert_eq!(s.model, ModelKind::Dcgan);
        assert!(s.test.unwrap()["d_real"].is_some());
    }

    #[test]
    fn every_status_string_the_trainer_writes_is_a_status() {
        for st in [Status::Completed, Status::MaxSteps, Status::Interrupted, Status::Diverged] {
            assert_eq!(serde_json::to_value(st).unwrap(), json!(st.as_str()));
            assert_eq!(serde_json::from_value::<Status>(json!(st.to_string())).unwrap(), st);
        }
        assert!(serde_json::from_value::<Status>(json!("finished")).is_err());
    }

    /// An interrupted run's summary (null test, zero throughput) and an older file missing the
    /// descriptive fields both load.
    #[test]
    fn tolerant_of_interrupted_and_older_files() {
        let mut v: Value = serde_json::from_str(VAE).unwrap();
        v["status"] = json!("interrupted");
        v["test"] = Value::Null;
        v["error"] = json!("loss = NaN at step 3");
        let s: Summary = serde_json::from_value(v).unwrap();
        assert_eq!((s.status, s.test, s.error.as_deref()), (Status::Interrupted, None, Some("loss = NaN at step 3")));
        let old = json!({"model": "vae", "dataset": "mnist", "status": "completed", "epochs": 3, "steps": 90});
        let s: Summary = serde_json::from_value(old).unwrap();
        assert_eq!((s.train_samples_per_sec, s.warnings.len(), s.best_test_loss), (None, 0, None));
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("summary.json");
        let err = format!("{:#}", Summary::load(&p).unwrap_err());
        assert!(err.contains("summary.json"), "{err}");
        std::fs::write(&p, r#"{"model": "vae"}"#).unwrap();
        let err = format!("{:#}", Summary::load(&p).unwrap_err());
        assert!(err.contains(&p.display().to_string()) && err.contains("dataset"), "{err}");
        std::fs::write(&p, VAE).unwrap();
        let s = Summary::load(&p).unwrap();
        s.save(&p).unwrap();
        assert_eq!(Summary::load(&p).unwrap(), s);
    }
}
