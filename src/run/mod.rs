//! A run is a folder: `config.toml`, `checkpoints/{latest,best}.ckpt`, `metrics.jsonl`,
//! `samples/`, `final/`, `tb/`, `summary.json`, `eval.json`. Every command after `train` takes one; every
//! path inside it is spelled here. One process writes a run at a time (`RunLock`).

pub mod checkpoint;
pub mod lock;

pub use lock::RunLock;

use crate::config::RunConfig;
use crate::models::Model;
use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use checkpoint::{Checkpoint, TrainState, load_net};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// A new run folder, locked for this process; refuses to overwrite an existing run (checked
    /// under the lock, so two `train --out X` started together cannot both start).
    pub fn create(path: &Path) -> Result<(RunDir, RunLock)> {
        let refuse = || {
            anyhow::anyhow!(
                "{} already holds a run; continue it with `latentlab resume {}` or choose another --out",
                path.display(),
                path.display()
            )
        };
        if path.join("config.toml").exists() {
            return Err(refuse());
        }
        for sub in ["checkpoints", "samples", "final"] {
            std::fs::create_dir_all(path.join(sub))
                .with_context(|| format!("cannot create run folder {}", path.join(sub).display()))?;
        }
        let dir = RunDir { path: path.to_path_buf() };
        let lock = dir.lock()?;
        if dir.config().exists() {
            return Err(refuse());
        }
        Ok((dir, lock))
    }

    /// The paths of a run folder at `path` (nothing is read or checked).
    pub fn at(path: &Path) -> RunDir {
        RunDir { path: path.to_path_buf() }
    }

    /// Hold the run's write lock until the returned guard drops (or the process dies).
    pub fn lock(&self) -> Result<RunLock> {
        RunLock::acquire(&self.path)
    }

    /// An existing run folder and its config.
    pub fn open(path: &Path) -> Result<(RunDir, RunConfig)> {
        let cfg_path = path.join("config.toml");
        if !path.is_dir() {
            bail!("run folder {} does not exist", path.display());
        }
        let text = std::fs::read_to_string(&cfg_path)
            .with_context(|| format!("{} is not a run folder (no readable config.toml)", path.display()))?;
        let cfg = RunConfig::from_toml(&text, &cfg_path)?;
        Ok((RunDir { path: path.to_path_buf() }, cfg))
    }

    /// Remove temp files a killed process left mid-write (they are never read: a complete write
    /// is renamed into place).
    pub fn remove_stale_temp_files(&self) {
        for sub in
            [self.path.clone(), self.path.join("checkpoints"), self.path.join("final"), self.path.join("samples")]
        {
            let Ok(entries) = std::fs::read_dir(&sub) else { continue };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with('.') && name.contains(".tmp-") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    pub fn config(&self) -> PathBuf {
        self.path.join("config.toml")
    }
    pub fn latest(&self) -> PathBuf {
        self.path.join("checkpoints/latest.ckpt")
    }
    /// The checkpoint `latest.ckpt` replaced: what a resume falls back to when latest is corrupt.
    pub fn previous(&self) -> PathBuf {
        self.path.join("checkpoints/previous.ckpt")
    }
    pub fn best(&self) -> PathBuf {
        self.path.join("checkpoints/best.ckpt")
    }
    pub fn metrics(&self) -> PathBuf {
        self.path.join("metrics.jsonl")
    }
    /// TensorBoard event files (`--tensorboard`).
    pub fn tb(&self) -> PathBuf {
        self.path.join("tb")
    }
    pub fn samples(&self) -> PathBuf {
        self.path.join("samples")
    }
    pub fn final_dir(&self) -> PathBuf {
        self.path.join("final")
    }
    pub fn summary(&self) -> PathBuf {
        self.path.join("summary.json")
    }
    pub fn eval(&self) -> PathBuf {
        self.path.join("eval.json")
    }
    /// A picture or file of `final/`.
    pub fn final_file(&self, name: &str) -> PathBuf {
        self.final_dir().join(name)
    }
    pub fn checkpoint(&self, which: Which) -> PathBuf {
        match which {
            Which::Latest => self.latest(),
            Which::Best => self.best(),
        }
    }
}

/// The checkpoint a run continues from, and what was passed over to find it.
pub struct Found {
    pub checkpoint: Checkpoint,
    pub path: PathBuf,
    /// Why `latest.ckpt` was not used, when it was not (empty when it was).
    pub notes: Vec<String>,
}

impl RunDir {
    /// The newest checkpoint that verifies: `latest.ckpt`, or when that is missing or corrupt,
    /// whichever of `previous.ckpt` and `best.ckpt` is further along. `None` when the run has no
    /// checkpoint at all; an error naming every file when none verifies.
    pub fn newest_checkpoint(&self) -> Result<Option<Found>> {
        let latest = self.latest();
        let mut failures = Vec::new();
        if latest.exists() {
            match Checkpoint::load(&latest) {
                Ok(checkpoint) => return Ok(Some(Found { checkpoint, path: latest, notes: vec![] })),
                Err(e) => failures.push(format!("{e:#}")),
            }
        }
        let mut good: Option<(Checkpoint, PathBuf)> = None;
        for path in [self.previous(), self.best()] {
            if !path.exists() {
                continue;
            }
            match Checkpoint::load(&path) {
                Ok(c) if good.as_ref().is_none_or(|(g, _)| c.meta.state.step > g.meta.state.step) => {
                    good = Some((c, path))
                }
                Ok(_) => {}
                Err(e) => failures.push(format!("{e:#}")),
            }
        }
        match good {
            None if failures.is_empty() => Ok(None),
            None => bail!("no checkpoint of {} verifies: {}", self.path.display(), failures.join("; ")),
            Some((checkpoint, path)) => {
                let why = if latest.exists() {
                    failures[0].clone()
                } else {
                    format!("{} is missing (the run was killed while saving it)", latest.display())
                };
                let note = format!(
                    "{why}; continuing from {} (step {}), the newest checkpoint that verifies",
                    path.display(),
                    checkpoint.meta.state.step
                );
                Ok(Some(Found { checkpoint, path, notes: vec![note] }))
            }
        }
    }
}

/// `runs/<model>-<dataset>-<YYYYmmdd-HHMMSS>`.
pub fn default_path(cfg: &RunConfig) -> PathBuf {
    let ds: String = dataset_slug(&cfg.dataset).chars().take(40).collect();
    PathBuf::from("runs").join(format!("{}-{ds}-{}", cfg.model.name(), chrono::Local::now().format("%Y%m%d-%H%M%S")))
}

/// A dataset name or folder as a path component: its last part, with anything but ASCII letters,
/// digits and '-' replaced by '_'.
pub fn dataset_slug(dataset: &str) -> String {
    Path::new(dataset)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| dataset.to_string())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect()
}

/// Which checkpoint of a run to load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    #[default]
    Latest,
    Best,
}

/// Load a run's model for inference.
pub fn load_model(run: &Path, which: Which, device: &Device) -> Result<(RunConfig, Model, TrainState, Vec<String>)> {
    let (dir, cfg) = RunDir::open(run)?;
    let path = dir.checkpoint(which);
    if !path.exists() {
        bail!("{} has no checkpoint yet ({} missing)", run.display(), path.display());
    }
    let ck = Checkpoint::load(&path)?;
    let net = load_net(&ck, device, &path)?;
    let model = Model { spec: ck.meta.spec.clone(), net, device: device.clone() };
    Ok((cfg, model, ck.meta.state, ck.meta.class_names))
}
