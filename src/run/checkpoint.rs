//! Checkpoint file: everything needed to continue a run exactly — weights, optimiser state, the
//! training counters (the RNG state is a function of seed and step, see `util::rng`) and the
//! config — in one file with a checksum, written atomically.
//!
//! Layout (`util::frame`): `LLCKPT01`, then three length-prefixed (u64 LE) sections: JSON meta,
//! model burnpack, optimiser states; then the SHA-256 of everything before it. The optimiser
//! section is itself a frame (`LLOPTM01`, one burnpack per optimiser of the model's recipe).

use crate::models::Net;
use anyhow::{Result, bail};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::prelude::Device;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};
use std::path::Path;

const MAGIC: &[u8; 8] = b"LLCKPT01";
const OPTIM_MAGIC: &[u8; 8] = b"LLOPTM01";

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

/// Optimiser states as one frame, one section per optimiser.
pub fn encode_optims(optims: &[ModuleOptimizer]) -> Result<Vec<u8>> {
    let mut parts = Vec::with_capacity(optims.len());
    for o in optims {
        parts.push(o.into_bytes().map_err(|e| anyhow::anyhow!("cannot serialise optimiser state: {e:?}"))?);
    }
    let refs: Vec<&[u8]> = parts.iter().map(|b| &b[..]).collect();
    Ok(crate::util::frame(OPTIM_MAGIC, &refs))
}

/// Restore optimiser states into `fresh` (the model's recipe). Checkpoints written before the
/// states were framed (a u64 count, then length-prefixed records) still load.
pub fn decode_optims(bytes: &[u8], fresh: Vec<ModuleOptimizer>) -> std::result::Result<Vec<ModuleOptimizer>, String> {
    let secs: Vec<&[u8]> = if bytes.starts_with(OPTIM_MAGIC) {
        let names: Vec<String> = (1..=fresh.len()).map(|i| format!("optimiser {i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        crate::util::unframe(bytes, OPTIM_MAGIC, "optimiser state", &names)?
    } else {
        legacy_optim_sections(bytes, fresh.len())?
    };
    fresh
        .into_iter()
        .zip(secs)
        .map(|(o, b)| o.from_bytes(burn::tensor::Bytes::from_bytes_vec(b.to_vec())).map_err(|e| format!("{e:?}")))
        .collect()
}

fn legacy_optim_sections(bytes: &[u8], want: usize) -> std::result::Result<Vec<&[u8]>, String> {
    let read_u64 = |pos: usize| {
        bytes.get(pos..pos + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))).ok_or("truncated")
    };
    let n = read_u64(0)? as usize;
    if n != want {
        return Err(format!("{n} optimiser states, the model needs {want}"));
    }
    let mut pos = 8;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = read_u64(pos)? as usize;
        pos += 8;
        out.push(bytes.get(pos..pos.saturating_add(len)).ok_or("truncated optimiser state")?);
        pos += len;
    }
    Ok(out)
}

/// Rebuild a network from checkpoint bytes on `device`; errors name the file.
pub fn load_net(ck: &Checkpoint, device: &Device, origin: &Path) -> Result<Net> {
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(ck.model.clone()))
        .map_err(|e| anyhow::anyhow!("checkpoint {}: model weights unreadable: {e:?}", origin.display()))?;
    Net::new(&ck.meta.spec, 0, device).try_load_record(record).map_err(|e| {
        anyhow::anyhow!("checkpoint {}: weights do not fit the model in its config: {e:?}", origin.display())
    })
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
                    d_conv3: false,
                    ema: None,
                    width: None,
                    text: None,
                    condition: None,
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

    #[test]
    fn optimiser_states_round_trip_in_both_formats() {
        use crate::train::optim::FusedAdam;
        let fresh = || vec![FusedAdam::new(0.5).init(), FusedAdam::new(0.9).init()];
        let framed = encode_optims(&fresh()).unwrap();
        assert!(framed.starts_with(OPTIM_MAGIC));
        assert_eq!(decode_optims(&framed, fresh()).unwrap().len(), 2);
        // The format before framing: count, then length-prefixed records.
        let mut legacy = 2u64.to_le_bytes().to_vec();
        for o in fresh() {
            let b = o.into_bytes().unwrap();
            legacy.extend_from_slice(&(b.len() as u64).to_le_bytes());
            legacy.extend_from_slice(&b);
        }
        assert_eq!(decode_optims(&legacy, fresh()).unwrap().len(), 2);
        let e = decode_optims(&framed, vec![FusedAdam::new(0.9).init()]).err().unwrap();
        assert!(!e.is_empty());
        assert!(decode_optims(&framed[..framed.len() - 3], fresh()).is_err(), "truncation accepted");
    }

    /// DCGAN checkpoints written before D's 3×3 layer: their spec has no `d_conv3`, reads as false,
    /// and their weights load into the two-conv D they trained; the same weights do not fit the
    /// D that `train dcgan` builds now.
    #[test]
    fn dcgan_checkpoints_from_before_the_3x3_layer_still_load() {
        let device = Device::flex();
        let mut old = ck();
        old.meta.spec.kind = crate::models::ModelKind::Dcgan;
        old.meta.spec.shape = crate::data::ImageShape { channels: 1, height: 28, width: 28 };
        old.meta.spec.latent_dim = 100;
        let net = Net::new(&old.meta.spec, 0, &device);
        old.model = net.into_record().into_bytes().unwrap().to_vec();
        let mut spec = serde_json::to_value(&old.meta.spec).unwrap();
        assert_eq!(spec.as_object_mut().unwrap().remove("d_conv3"), Some(serde_json::Value::Bool(false)));
        old.meta.spec = serde_json::from_value(spec).unwrap();
        assert!(!old.meta.spec.d_conv3);
        let back = Checkpoint::decode(&old.encode()).unwrap();
        assert!(load_net(&back, &device, Path::new("old.ckpt")).is_ok());
        let mut now = back;
        now.meta.spec.d_conv3 = true;
        let e = load_net(&now, &device, Path::new("old.ckpt")).expect_err("two-conv weights accepted by the new D");
        assert!(e.to_string().contains("old.ckpt"), "{e}");
    }
}
