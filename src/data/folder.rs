//! A folder of the user's images (PNG/JPEG, any depth): classes are the first-level subfolders
//! when every image sits in one, otherwise the set is unlabelled. Images are converted to grey or
//! RGB, the shorter side resized to the target size and the centre cropped square. Decoded sets
//! are cached (keyed by every file's path, size and mtime plus the transform) so later runs and
//! epochs never decode again. Every 10th image (in path order) is held out as the test set.

use super::{Dataset, ImageShape, Splits};
use anyhow::{Context, Result, bail};
use image::imageops::FilterType;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"LLIMG001";
pub const DEFAULT_SIZE: usize = 32;

fn is_image(p: &Path) -> bool {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| e == "png" || e == "jpg" || e == "jpeg")
}

/// All image files under `root`, sorted by their path relative to it (hidden entries skipped).
pub fn list_images(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).with_context(|| format!("cannot read folder {}", dir.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("cannot read folder {}", dir.display()))?;
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if is_image(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[derive(Serialize, Deserialize)]
struct CacheMeta {
    n: usize,
    shape: ImageShape,
    class_names: Vec<String>,
    labelled: bool,
}

/// Load an image folder as train/test splits; `size` and `channels` default to 32 and the colour of
/// the first image.
pub fn load(root: &Path, size: Option<usize>, channels: Option<usize>, cache_dir: Option<&Path>) -> Result<Splits> {
    let files = list_images(root)?;
    if files.is_empty() {
        bail!(
            "dataset folder {} holds no PNG or JPEG images (put images in it, or one subfolder per class)",
            root.display()
        );
    }
    let size = size.unwrap_or(DEFAULT_SIZE);
    if !(4..=512).contains(&size) {
        bail!("--image-size must be between 4 and 512, got {size}");
    }
    let channels = match channels {
        Some(c @ (1 | 3)) => c,
        Some(c) => bail!("--channels must be 1 (grey) or 3 (RGB), got {c}"),
        None => {
            let first =
                image::open(&files[0]).with_context(|| format!("cannot decode image {}", files[0].display()))?;
            if first.color().has_color() { 3 } else { 1 }
        }
    };
    // Classes: the first path component below the root, if every image has one.
    let rel: Vec<Vec<String>> = files
        .iter()
        .map(|f| {
            f.strip_prefix(root)
                .unwrap_or(f)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect()
        })
        .collect();
    let labelled = rel.iter().all(|r| r.len() >= 2);
    let mut class_names: Vec<String> = if labelled { rel.iter().map(|r| r[0].clone()).collect() } else { vec![] };
    class_names.sort();
    class_names.dedup();
    if class_names.len() > 255 {
        bail!("{}: {} class subfolders; at most 255 are supported", root.display(), class_names.len());
    }

    let key = cache_key(&files, size, channels)?;
    let cache_file = cache_dir.map(|d| d.join("folders").join(format!("{key}.llimg")));
    let shape = ImageShape { channels, height: size, width: size };
    let cached = cache_file.as_deref().filter(|p| p.is_file()).and_then(|p| read_cache(p, shape).ok());
    let (images, labels) = match cached {
        Some(c) => c,
        None => {
            let decoded: Vec<Vec<u8>> = files.par_iter().map(|f| decode(f, size, channels)).collect::<Result<_>>()?;
            let images: Vec<u8> = decoded.concat();
            let labels: Option<Vec<u8>> = labelled
                .then(|| rel.iter().map(|r| class_names.binary_search(&r[0]).expect("class listed") as u8).collect());
            if let Some(p) = &cache_file {
                // A cache that cannot be written only costs time next run.
                let meta = CacheMeta { n: files.len(), shape, class_names: class_names.clone(), labelled };
                let _ = crate::util::write_atomic(p, &encode_cache(&meta, &images, labels.as_deref()));
            }
            (images, labels)
        }
    };
    let all = Dataset {
        n: files.len(),
        images,
        num_classes: if labelled { class_names.len().max(2) } else { 0 },
        labels,
        shape,
        attributes: None,
    };
    if all.n < 2 {
        bail!("dataset folder {} has 1 image; need at least 2 to hold out a test set", root.display());
    }
    let test_idx = test_indices(all.n);
    let train_idx: Vec<usize> = (0..all.n).filter(|i| !test_idx.contains(i)).collect();
    let names = if labelled { class_names } else { vec![] };
    Ok(Splits {
        name: root.display().to_string(),
        train: all.subset(&train_idx),
        test: all.subset(&test_idx),
        class_names: names,
    })
}

/// The test images of a folder of `n` (in path order): every 10th, or the last when there are fewer
/// than 10. Captions read from the folder split by the same rule.
pub fn test_indices(n: usize) -> Vec<usize> {
    (0..n).filter(|i| i % 10 == 9 || (n < 10 && *i == n - 1)).collect()
}

/// Decode one file to `channels`×size×size bytes: shorter side to `size`, centre crop.
pub fn decode(path: &Path, size: usize, channels: usize) -> Result<Vec<u8>> {
    let img = image::open(path).with_context(|| format!("cannot decode image {}", path.display()))?;
    let (w, h) = (img.width().max(1), img.height().max(1));
    let s = size as u32;
    let scale = s as f64 / w.min(h) as f64;
    let (nw, nh) = (((w as f64 * scale).round() as u32).max(s), ((h as f64 * scale).round() as u32).max(s));
    let resized = if (nw, nh) == (w, h) { img } else { img.resize_exact(nw, nh, FilterType::Triangle) };
    let cropped = resized.crop_imm((nw - s) / 2, (nh - s) / 2, s, s);
    // Planar C×H×W, like every other dataset.
    Ok(if channels == 1 {
        cropped.to_luma8().into_raw()
    } else {
        let rgb = cropped.to_rgb8();
        let plane = size * size;
        let mut out = vec![0u8; 3 * plane];
        for (i, p) in rgb.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = p.0[c];
            }
        }
        out
    })
}

fn cache_key(files: &[PathBuf], size: usize, channels: usize) -> Result<String> {
    let mut h = Sha256::new();
    h.update(format!("v1 {size} {channels}\n"));
    for f in files {
        let m = std::fs::metadata(f).with_context(|| format!("cannot read {}", f.display()))?;
        let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos());
        let abs = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
        h.update(format!("{}\t{}\t{mtime:?}\n", abs.display(), m.len()));
    }
    Ok(h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect())
}

fn encode_cache(meta: &CacheMeta, images: &[u8], labels: Option<&[u8]>) -> Vec<u8> {
    let meta = serde_json::to_vec(meta).expect("meta serialises");
    crate::util::frame(MAGIC, &[&meta, images, labels.unwrap_or(&[])])
}

fn read_cache(path: &Path, shape: ImageShape) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
    let b = std::fs::read(path)?;
    let secs =
        crate::util::unframe(&b, MAGIC, "image cache", &["meta", "images", "labels"]).map_err(anyhow::Error::msg)?;
    let meta: CacheMeta = serde_json::from_slice(secs[0])?;
    if meta.shape != shape || secs[1].len() != meta.n * shape.len() {
        bail!("cache does not match");
    }
    Ok((secs[1].to_vec(), meta.labelled.then(|| secs[2].to_vec())))
}
