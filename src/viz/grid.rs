//! Image grids (PNG) and sample arrays (.npy) from images in [0,1], N×C×H×W.

use crate::data::ImageShape;
use anyhow::{Result, bail};
use std::path::Path;

/// Tile `images` (N × shape, values in [0,1]) into a grid with `ncol` columns, 2-pixel gutters,
/// each image scaled up by an integer factor so small images (8×8, 28×28) stay visible.
pub fn grid_image(images: &[f32], shape: ImageShape, ncol: usize) -> image::RgbImage {
    let n = images.len() / shape.len().max(1);
    let ncol = ncol.clamp(1, n.max(1));
    let nrow = n.div_ceil(ncol).max(1);
    let scale = (56 / shape.height.max(1)).clamp(1, 8) as u32;
    let (h, w) = (shape.height as u32 * scale, shape.width as u32 * scale);
    let pad = 2u32;
    let mut img = image::RgbImage::from_pixel(
        ncol as u32 * (w + pad) + pad,
        nrow as u32 * (h + pad) + pad,
        image::Rgb([40, 40, 40]),
    );
    let plane = shape.height * shape.width;
    for k in 0..n {
        let (gy, gx) = ((k / ncol) as u32, (k % ncol) as u32);
        let base = &images[k * shape.len()..(k + 1) * shape.len()];
        for y in 0..h {
            for x in 0..w {
                let (sy, sx) = ((y / scale) as usize, (x / scale) as usize);
                let px = |c: usize| (base[c * plane + sy * shape.width + sx].clamp(0.0, 1.0) * 255.0).round() as u8;
                let rgb = if shape.channels >= 3 { [px(0), px(1), px(2)] } else { [px(0); 3] };
                img.put_pixel(pad + gx * (w + pad) + x, pad + gy * (h + pad) + y, image::Rgb(rgb));
            }
        }
    }
    img
}

/// Encode an RGB image as PNG and write it atomically.
pub fn save_png(img: &image::RgbImage, path: &Path) -> Result<()> {
    crate::util::write_atomic(path, &png_bytes(img)?)
}

/// An RGB image encoded as PNG.
pub fn png_bytes(img: &image::RgbImage) -> Result<Vec<u8>> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)?;
    Ok(buf.into_inner())
}

pub fn save_grid(images: &[f32], shape: ImageShape, ncol: usize, path: &Path) -> Result<()> {
    save_png(&grid_image(images, shape, ncol), path)
}

/// numpy `.npy` (format 1.0): little-endian float32, C order, shape N×C×H×W.
pub fn npy_bytes(images: &[f32], shape: ImageShape) -> Vec<u8> {
    let n = images.len() / shape.len().max(1);
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {}, {}, {}), }}",
        shape.channels, shape.height, shape.width
    );
    // Magic (6) + version (2) + header length (2) + dict + padding + '\n' is a multiple of 64.
    let total = (10 + dict.len() + 1).div_ceil(64) * 64;
    let mut out = Vec::with_capacity(total + images.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    for v in images {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

pub fn save_npy(images: &[f32], shape: ImageShape, path: &Path) -> Result<()> {
    crate::util::write_atomic(path, &npy_bytes(images, shape))
}

/// Read back a float32 .npy written by `save_npy` (shape, values); for tests and `eval --samples`.
pub fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let b = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        bail!("{}: not a .npy file", path.display());
    }
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    let Some(header) = b.get(10..10 + hl).and_then(|h| std::str::from_utf8(h).ok()) else {
        bail!("{}: truncated .npy header", path.display());
    };
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        bail!("{}: only little-endian float32 C-order arrays are supported", path.display());
    }
    let s = header.split("'shape': (").nth(1).and_then(|r| r.split(')').next()).unwrap_or("");
    let dims: Vec<usize> = s.split(',').filter_map(|t| t.trim().parse().ok()).collect();
    let data = &b[10 + hl..];
    let need = dims.iter().try_fold(4usize, |a, &d| a.checked_mul(d));
    if dims.is_empty() || need != Some(data.len()) {
        bail!(
            "{}: payload is {} bytes, but shape {dims:?} needs {}",
            path.display(),
            data.len(),
            need.map_or("more than fits in memory".to_string(), |n| n.to_string())
        );
    }
    Ok((dims, data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_and_header_alignment() {
        let shape = ImageShape { channels: 1, height: 2, width: 3 };
        let v: Vec<f32> = (0..12).map(|i| i as f32 / 11.0).collect();
        let bytes = npy_bytes(&v, shape);
        let hl = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hl) % 64, 0);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.npy");
        save_npy(&v, shape, &p).unwrap();
        let (dims, back) = read_npy(&p).unwrap();
        assert_eq!(dims, vec![2, 1, 2, 3]);
        assert_eq!(back, v);
    }

    #[test]
    fn grid_places_images_in_cells() {
        let shape = ImageShape { channels: 1, height: 28, width: 28 };
        let mut v = vec![0f32; 3 * 784];
        v[784..2 * 784].fill(1.0); // second image white
        let img = grid_image(&v, shape, 2);
        // scale 2 → 56 px cells, 2 px gutters: 2 columns, 2 rows
        assert_eq!(img.dimensions(), (2 * 58 + 2, 2 * 58 + 2));
        assert_eq!(img.get_pixel(2 + 10, 2 + 10).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(2 + 58 + 10, 2 + 10).0, [255, 255, 255]);
    }
}
