//! CIFAR-10 binary format (`cifar-10-batches-bin`): records of 1 label byte + 3072 pixel bytes
//! (1024 R, 1024 G, 1024 B, each 32×32 row-major) in `data_batch_1..5.bin` and `test_batch.bin`.

use super::{Dataset, ImageShape, Splits};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

pub const RECORD: usize = 1 + 3 * 32 * 32;
pub const CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// The folder holding the batches: `dir` itself or its `cifar-10-batches-bin/`.
pub fn find(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("cifar-10-batches-bin")].into_iter().find(|d| d.join("data_batch_1.bin").is_file())
}

/// Read one batch file.
pub fn read_batch(path: &Path) -> Result<Dataset> {
    let b = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if b.is_empty() || !b.len().is_multiple_of(RECORD) {
        bail!(
            "{}: {} bytes is not a whole number of CIFAR-10 records ({RECORD} bytes: 1 label + 3072 pixels)",
            path.display(),
            b.len()
        );
    }
    let n = b.len() / RECORD;
    let mut images = Vec::with_capacity(n * (RECORD - 1));
    let mut labels = Vec::with_capacity(n);
    for (i, r) in b.chunks_exact(RECORD).enumerate() {
        if r[0] > 9 {
            bail!("{}: record {i} has label {}, CIFAR-10 labels are 0..=9", path.display(), r[0]);
        }
        labels.push(r[0]);
        images.extend_from_slice(&r[1..]);
    }
    Ok(Dataset {
        images,
        labels: Some(labels),
        n,
        shape: ImageShape { channels: 3, height: 32, width: 32 },
        num_classes: 10,
        attributes: None,
    })
}

fn concat(parts: Vec<Dataset>) -> Dataset {
    let mut all = parts[0].clone();
    for p in &parts[1..] {
        all.images.extend_from_slice(&p.images);
        if let (Some(a), Some(b)) = (all.labels.as_mut(), p.labels.as_ref()) {
            a.extend_from_slice(b);
        }
        all.n += p.n;
    }
    all
}

/// Load the train batches present (1..5, at least the first) and the test batch.
pub fn load(dir: &Path) -> Result<Splits> {
    let mut train = Vec::new();
    for k in 1..=5 {
        let p = dir.join(format!("data_batch_{k}.bin"));
        if p.is_file() {
            train.push(read_batch(&p)?);
        }
    }
    if train.is_empty() {
        bail!("{}: no data_batch_1.bin (not a CIFAR-10 binary folder)", dir.display());
    }
    let test_path = dir.join("test_batch.bin");
    if !test_path.is_file() {
        bail!("{}: test_batch.bin missing", dir.display());
    }
    let test = read_batch(&test_path)?;
    let class_names = std::fs::read_to_string(dir.join("batches.meta.txt"))
        .ok()
        .map(|t| t.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect::<Vec<_>>())
        .filter(|v| v.len() == 10)
        .unwrap_or_else(|| CLASSES.iter().map(|s| s.to_string()).collect());
    Ok(Splits { name: dir.display().to_string(), train: concat(train), test, class_names })
}
