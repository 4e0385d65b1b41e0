//! The runs being explored. Each loads its model once per checkpoint: requests share the loaded
//! run, and a newer checkpoint written by a training process is picked up by the next request.

use super::http::{ApiError, ApiResult};
use crate::app::OpenRun;
use crate::data::Dataset;
use crate::run::{RunDir, Which};
use burn::prelude::Device;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub struct ExploredRun {
    /// The name in URLs: the folder's name, made unique and URL-safe.
    pub id: String,
    pub path: PathBuf,
    which: Which,
    data_dir: Option<PathBuf>,
    device: Device,
    loaded: Mutex<Option<Arc<Loaded>>>,
    /// Checkpoints loaded so far (shown in /api/runs: one per checkpoint, however many clients).
    pub loads: AtomicUsize,
}

/// A run's model and test set, as of one checkpoint.
pub struct Loaded {
    pub run: OpenRun,
    /// The checkpoint file's (modified time, length) when it was read.
    stamp: Option<(SystemTime, u64)>,
    /// The test split, or why it is unavailable (the data moved: pass --data-dir).
    pub test: Result<Dataset, String>,
    /// Latent maps already computed, by number of test codes.
    pub spaces: Mutex<HashMap<usize, Arc<Value>>>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl ExploredRun {
    pub fn new(id: String, path: PathBuf, which: Which, data_dir: Option<PathBuf>, device: Device) -> Self {
        ExploredRun { id, path, which, data_dir, device, loaded: Mutex::new(None), loads: AtomicUsize::new(0) }
    }

    pub fn dir(&self) -> RunDir {
        RunDir::at(&self.path)
    }

    /// The run as of its newest checkpoint; loads it (once: concurrent requests wait for the same
    /// load) when it was never loaded or the checkpoint changed since.
    pub fn get(&self) -> ApiResult<Arc<Loaded>> {
        let ck = self.dir().checkpoint(self.which);
        let now = stamp(&ck);
        let mut slot = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = slot.as_ref()
            && (l.stamp == now || now.is_none())
        {
            return Ok(l.clone());
        }
        match OpenRun::open(&self.path, self.which, self.device.clone()) {
            Ok(run) => {
                self.loads.fetch_add(1, Ordering::Relaxed);
                let test = run.data(self.data_dir.as_deref()).map(|s| s.test).map_err(|e| format!("{e:#}"));
                let l = Arc::new(Loaded { run, stamp: now, test, spaces: Mutex::new(HashMap::new()) });
                *slot = Some(l.clone());
                Ok(l)
            }
            // A checkpoint caught mid-replace: keep answering from the one already loaded.
            Err(_) if slot.is_some() => Ok(slot.as_ref().expect("checked").clone()),
            Err(e) => Err(ApiError::conflict(format!("run '{}': {e:#}", self.id))),
        }
    }
}

impl Loaded {
    pub fn test(&self) -> ApiResult<&Dataset> {
        self.test.as_ref().map_err(|e| ApiError::conflict(format!("the run's test images are unavailable: {e}")))
    }
}
