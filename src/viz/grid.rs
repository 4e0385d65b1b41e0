//! Image grids (PNG) and sample arrays (.npy) from images in [0,1], N×C×H×W.

use crate::data::ImageShape;
use anyhow::Result;
use std::path::Path;

/// One image (values in [0,1], C×H×W) as RGB, each pixel a `scale`×`scale` block (grey images
/// repeat their channel).
pub fn image_rgb(pixels: &[f32], shape: ImageShape, scale: u32) -> image::RgbImage {
    let plane = shape.height * shape.width;
    image::RgbImage::from_fn(shape.width as u32 * scale, shape.height as u32 * scale, |x, y| {
        let i = (y / scale) as usize * shape.width + (x / scale) as usize;
        let px = |c: usize| (pixels[c * plane + i].clamp(0.0, 1.0) * 255.0).round() as u8;
        image::Rgb(if shape.channels >= 3 { [px(0), px(1), px(2)] } else { [px(0); 3] })
    })
}

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
    for (k, base) in images.chunks(shape.len()).take(n).enumerate() {
        let (gy, gx) = ((k / ncol) as u32, (k % ncol) as u32);
        let tile = image_rgb(base, shape, scale);
        image::imageops::replace(&mut img, &tile, (pad + gx * (w + pad)) as i64, (pad + gy * (h + pad)) as i64);
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

/// numpy `.npy`: little-endian float32, C order, shape N×C×H×W (written by npyz).
pub fn npy_bytes(images: &[f32], shape: ImageShape) -> Vec<u8> {
    use npyz::WriterBuilder;
    let n = images.len() / shape.len().max(1);
    let dims = [n, shape.channels, shape.height, shape.width].map(|d| d as u64);
    let mut out = Vec::with_capacity(128 + images.len() * 4);
    // Writing into a Vec cannot fail; the shape matches the data by construction.
    let mut w = npyz::WriteOptions::new().default_dtype().shape(&dims).writer(&mut out).begin_nd().unwrap();
    w.extend(images.iter().copied()).unwrap();
    w.finish().unwrap();
    out
}

pub fn save_npy(images: &[f32], shape: ImageShape, path: &Path) -> Result<()> {
    crate::util::write_atomic(path, &npy_bytes(images, shape))
}

/// Read a `.npy` or `.npz` array as (shape as saved, values in C order as f32; uint8 scaled to
/// [0,1]); see [`crate::data::arrays`] for what is accepted.
pub fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    crate::data::arrays::read(path, None).map(|a| (a.dims, a.values))
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
        assert_eq!((10 + hl) % 16, 0, "numpy aligns the data to 16 bytes");
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
