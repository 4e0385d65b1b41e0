//! Checkpoint file: everything needed to continue a run exactly — weights, optimiser state, the
//! training counters (the RNG state is a function of seed and step, see `util::rng`) and the
//! config — in one file with a checksum, written atomically.
//!
//! Layout: `LLCKPT01`, then three length-prefixed (u64 LE) sections: JSON meta, model burnpack,
//! optimiser burnpack; then the SHA-256 of everything before it.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

const MAGIC: &[u8; 8] = b"LLCKPT01";

/// Training counters saved with every checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Completed epochs.
    pub epoch: u64,
    /// Batches already done in the current (incomplete) epoch.
    pub batch_in_epoch: u64,
    /// Optimiser steps taken.
    pub step: u64,
    pub best_test_loss: Option<f64>,
    /// Training wall time so far (seconds), across resumes.
    pub wall_secs: f64,
    /// Loss sums (sum, images) since the last step log and since the epoch began, so the
    /// averages a resumed run logs are those of an uninterrupted one.
    #[serde(default)]
    pub running: Sums,
    #[serde(default)]
    pub epoch_sums: Sums,
    /// Collapse-guard warnings raised so far.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Per-term (sum of per-image values × images, images).
pub type Sums = std::collections::BTreeMap<String, (f64, u64)>;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    pub state: TrainState,
    /// The run config as TOML, so a checkpoint alone says what it is.
    pub config: String,
    /// The architecture, so pictures and samples need no dataset.
    pub spec: crate::models::ModelSpec,
    pub class_names: Vec<String>,
    pub latentlab_version: String,
}

#[derive(Debug)]
pub struct Checkpoint {
    pub meta: Meta,
    pub model: Vec<u8>,
    pub optim: Vec<u8>,
}

impl Checkpoint {
    pub fn encode(&self) -> Vec<u8> {
        let meta = serde_json::to_vec(&self.meta).expect("meta serialises");
        crate::util::frame(MAGIC, &[&meta, &self.model, &self.optim])
    }

    pub fn decode(bytes: &[u8]) -> std::result::Result<Checkpoint, String> {
        let secs = crate::util::unframe(bytes, MAGIC, "checkpoint", &["meta", "model", "optimiser"])?;
        let meta: Meta = serde_json::from_slice(secs[0]).map_err(|e| format!("meta section: {e}"))?;
        Ok(Checkpoint { meta, model: secs[1].to_vec(), optim: secs[2].to_vec() })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        crate::util::write_atomic(path, &self.encode())
    }

    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes =
            std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read checkpoint {}: {e}", path.display()))?;
        match Checkpoint::decode(&bytes) {
            Ok(c) => Ok(c),
            Err(e) => bail!("checkpoint {}: {e}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ck() -> Checkpoint {
        Checkpoint {
            meta: Meta {
                state: TrainState {
                    epoch: 2,
                    batch_in_epoch: 3,
                    step: 40,
                    best_test_loss: Some(1.5),
                    wall_secs: 2.0,
                    ..Default::default()
                },
                config: "model = \"vae\"".into(),
                spec: crate::models::ModelSpec {
                    kind: crate::models::ModelKind::Vae,
                    shape: crate::data::ImageShape { channels: 1, height: 2, width: 2 },
                    num_classes: 0,
                    latent_dim: 2,
                    hidden: vec![3],
                    decoder: crate::models::DecoderKind::Bernoulli,
                    decoder_sigma: None,
                    beta: 1.0,
                    prior: crate::models::Prior::Gaussian,
                    arch: Default::default(),
                    objective: Default::default(),
                    ema: None,
                },
                class_names: vec![],
                latentlab_version: "x".into(),
            },
            model: vec![1, 2, 3],
            optim: vec![4; 100],
        }
    }

    #[test]
    fn round_trip_and_corruption_detected() {
        let bytes = ck().encode();
        let back = Checkpoint::decode(&bytes).unwrap();
        assert_eq!(back.meta.state, ck().meta.state);
        assert_eq!((back.model, back.optim), (vec![1, 2, 3], vec![4; 100]));
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(Checkpoint::decode(&bytes[..cut]).is_err(), "truncated at {cut} accepted");
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(Checkpoint::decode(&flipped).unwrap_err().contains("checksum"));
    }
}
