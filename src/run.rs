//! A run is a folder: `config.toml`, `checkpoints/{latest,best}.ckpt`, `metrics.jsonl`,
//! `samples/`, `final/`, `summary.json`. Every command after `train` takes one.

use crate::config::RunConfig;
use crate::models::{Model, Net};
use crate::train::checkpoint::{Checkpoint, TrainState};
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::prelude::Device;
use burn::store::ModuleRecord;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// A new run folder; refuses to overwrite an existing run.
    pub fn create(path: &Path) -> Result<RunDir> {
        if path.join("config.toml").exists() {
            bail!(
                "{} already holds a run; continue it with `latentlab resume {}` or choose another --out",
                path.display(),
                path.display()
            );
        }
        for sub in ["checkpoints", "samples", "final"] {
            std::fs::create_dir_all(path.join(sub))
                .with_context(|| format!("cannot create run folder {}", path.join(sub).display()))?;
        }
        Ok(RunDir { path: path.to_path_buf() })
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
    pub fn best(&self) -> PathBuf {
        self.path.join("checkpoints/best.ckpt")
    }
    pub fn metrics(&self) -> PathBuf {
        self.path.join("metrics.jsonl")
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
}

/// `runs/<model>-<dataset>-<YYYYmmdd-HHMMSS>`.
pub fn default_path(cfg: &RunConfig) -> PathBuf {
    let ds: String = Path::new(&cfg.dataset)
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| cfg.dataset.clone())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .take(40)
        .collect();
    PathBuf::from("runs").join(format!("{}-{ds}-{}", cfg.model.name(), chrono::Local::now().format("%Y%m%d-%H%M%S")))
}

/// Which checkpoint of a run to load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    #[default]
    Latest,
    Best,
}

/// Rebuild a network from checkpoint bytes on `device`; errors name the file.
pub fn load_net(ck: &Checkpoint, device: &Device, origin: &Path) -> Result<Net> {
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(ck.model.clone()))
        .map_err(|e| anyhow::anyhow!("checkpoint {}: model weights unreadable: {e:?}", origin.display()))?;
    Net::new(&ck.meta.spec, 0, device).try_load_record(record).map_err(|e| {
        anyhow::anyhow!("checkpoint {}: weights do not fit the model in its config: {e:?}", origin.display())
    })
}

/// Load a run's model for inference.
pub fn load_model(run: &Path, which: Which, device: &Device) -> Result<(RunConfig, Model, TrainState, Vec<String>)> {
    let (dir, cfg) = RunDir::open(run)?;
    let path = match which {
        Which::Latest => dir.latest(),
        Which::Best => dir.best(),
    };
    if !path.exists() {
        bail!("{} has no checkpoint yet ({} missing)", run.display(), path.display());
    }
    let ck = Checkpoint::load(&path)?;
    let net = load_net(&ck, device, &path)?;
    let model = Model { spec: ck.meta.spec.clone(), net, device: device.clone() };
    Ok((cfg, model, ck.meta.state, ck.meta.class_names))
}
