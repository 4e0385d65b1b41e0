//! The 8×8 `digits` set (UCI optdigits test part, as shipped by scikit-learn): gzip CSV, 64 counts
//! in 0..=16 then the label, one image per line.

use super::{Dataset, ImageShape};
use anyhow::{Context, Result, bail};
use std::path::Path;

/// Read `digits.csv(.gz)`; counts 0..=16 are rescaled to bytes 0..=255.
pub fn read(path: &Path) -> Result<Dataset> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let bytes = super::idx::maybe_gunzip(raw).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let text = std::str::from_utf8(&bytes).with_context(|| format!("{}: not UTF-8 text", path.display()))?;
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (ln, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let vals: Vec<&str> = line.split(',').collect();
        if vals.len() != 65 {
            bail!("{}: line {}: {} columns, expected 65 (64 pixels + label)", path.display(), ln + 1, vals.len());
        }
        for (c, v) in vals.iter().enumerate() {
            let x: u32 = v.trim().parse().with_context(|| {
                format!("{}: line {} column {}: '{v}' is not an integer", path.display(), ln + 1, c + 1)
            })?;
            if c < 64 {
                if x > 16 {
                    bail!("{}: line {} column {}: {x} outside 0..=16", path.display(), ln + 1, c + 1);
                }
                images.push(((x * 255 + 8) / 16) as u8);
            } else {
                if x > 9 {
                    bail!("{}: line {}: label {x} outside 0..=9", path.display(), ln + 1);
                }
                labels.push(x as u8);
            }
        }
    }
    if labels.is_empty() {
        bail!("{}: no rows", path.display());
    }
    Ok(Dataset {
        n: labels.len(),
        images,
        labels: Some(labels),
        shape: ImageShape { channels: 1, height: 8, width: 8 },
        num_classes: 10,
        attributes: None,
    })
}
