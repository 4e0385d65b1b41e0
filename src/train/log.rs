//! `metrics.jsonl`: one JSON object per line — `{"kind":"step",…}` every `log_every` steps and
//! `{"kind":"epoch",…}` with test losses at each epoch end.

use anyhow::{Context, Result};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct MetricsLog {
    path: PathBuf,
}

impl MetricsLog {
    pub fn new(path: PathBuf) -> Self {
        MetricsLog { path }
    }

    pub fn append(&self, v: &Value) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        writeln!(f, "{v}").with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Drop lines logged after `step` (written after the checkpoint a resume starts from), so a
    /// resumed run's log equals an uninterrupted one.
    pub fn truncate_after(&self, step: u64) -> Result<()> {
        if !self.path.exists() {
            return Ok(());
        }
        let kept: Vec<Value> = read(&self.path)?
            .into_iter()
            .filter(|v| v.get("step").and_then(Value::as_u64).is_some_and(|s| s <= step))
            .collect();
        let text: String = kept.iter().map(|v| format!("{v}\n")).collect();
        crate::util::write_atomic(&self.path, text.as_bytes())
    }
}

/// All parseable lines of a metrics file (a torn last line from a crash is skipped).
pub fn read(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}
