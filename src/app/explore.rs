//! `latentlab explore`: serve runs' latent spaces to a browser page (`crate::explore`).

use crate::backend::{self, DeviceChoice};
use crate::explore::{ExploredRun, Server};
use crate::run::{RunDir, Which};
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct ExploreRequest {
    /// Run folders to explore (one page each, with a picker when several are given).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// Address to listen on. Anything but a loopback address lets other machines use the server.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, value_enum, default_value_t = Which::Latest)]
    pub checkpoint: Which,
    /// Where the runs' dataset lives now, if it moved since training.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

/// Check the runs and bind the server; the caller prints its URL and calls `serve`.
pub fn start(a: ExploreRequest) -> Result<Server> {
    let device = backend::device(a.device)?;
    let mut runs: Vec<ExploredRun> = Vec::new();
    for path in &a.runs {
        // A folder being trained may have no checkpoint yet: it must only be a run folder.
        RunDir::open(path)?;
        let base: String = path
            .canonicalize()
            .unwrap_or_else(|_| path.clone())
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into())
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
            .collect();
        let mut id = base.clone();
        let mut k = 2;
        while runs.iter().any(|r| r.id == id) {
            id = format!("{base}-{k}");
            k += 1;
        }
        if runs.iter().any(|r| r.path.canonicalize().ok() == path.canonicalize().ok()) {
            bail!("{} is given twice", path.display());
        }
        runs.push(ExploredRun::new(id, path.clone(), a.checkpoint, a.data_dir.clone(), device.clone()));
    }
    Server::bind(&a.host, a.port, runs)
}
