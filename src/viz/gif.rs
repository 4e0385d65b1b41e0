//! The training-progress GIF: one frame per saved sample grid.

use anyhow::{Context, Result, bail};
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame};
use std::path::{Path, PathBuf};

/// How many frame durations the last frame is shown for, so the final samples linger before the loop restarts.
pub const LAST_FRAME_HOLD: u32 = 3;

/// Animated GIF from PNG frames (e.g. samples/epoch-001.png …), `delay_ms` per frame, looping forever; the last frame held 3×.
/// Frames of different sizes are an error naming the file. Written atomically.
///
/// The hold is a single frame with a 3× delay (not repeated frames), so the GIF has `frames.len()` frames.
/// GIF delays are in centiseconds: `delay_ms` is rounded down to a multiple of 10.
pub fn gif_from_pngs(frames: &[PathBuf], out: &Path, delay_ms: u32) -> Result<()> {
    if frames.is_empty() {
        bail!("cannot make {}: no frames", out.display());
    }
    let mut bytes = Vec::new();
    {
        // Speed 10: NeuQuant is only used for frames with > 256 colours (colour samples); grayscale grids are
        // exact, and speed 1 would make colour GIFs take seconds per frame for no visible gain.
        let mut enc = GifEncoder::new_with_speed(&mut bytes, 10);
        enc.set_repeat(Repeat::Infinite)?;
        let mut size = None;
        for (i, path) in frames.iter().enumerate() {
            // Frames are decoded one at a time so memory stays at one frame however long the run was.
            let img =
                image::open(path).with_context(|| format!("cannot read GIF frame {}", path.display()))?.to_rgba8();
            match size {
                None => size = Some((img.dimensions(), path)),
                Some(((w, h), first)) if (w, h) != img.dimensions() => bail!(
                    "GIF frame {} is {}×{}, but {} is {w}×{h}: all frames must have the same size",
                    path.display(),
                    img.width(),
                    img.height(),
                    first.display()
                ),
                Some(_) => {}
            }
            let hold = if i + 1 == frames.len() { LAST_FRAME_HOLD } else { 1 };
            let delay = Delay::from_numer_denom_ms(delay_ms.saturating_mul(hold), 1);
            enc.encode_frame(Frame::from_parts(img, 0, 0, delay))
                .with_context(|| format!("cannot encode GIF frame {}", path.display()))?;
        }
        // Dropping the encoder writes the GIF trailer into `bytes`.
    }
    crate::util::write_atomic(out, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::AnimationDecoder;
    use image::codecs::gif::GifDecoder;

    fn write_frame(dir: &Path, name: &str, (w, h): (u32, u32), shade: u8) -> PathBuf {
        let path = dir.join(name);
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([shade, (x * 7) as u8, (y * 5) as u8])).save(&path).unwrap();
        path
    }

    #[test]
    fn gif_has_all_frames_and_holds_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let frames: Vec<PathBuf> =
            (0..3).map(|i| write_frame(dir.path(), &format!("epoch-{i:03}.png"), (20, 12), 60 * i as u8)).collect();
        let out = dir.path().join("progress.gif");
        gif_from_pngs(&frames, &out, 100).unwrap();

        let dec = GifDecoder::new(std::io::BufReader::new(std::fs::File::open(&out).unwrap())).unwrap();
        let decoded = dec.into_frames().collect_frames().unwrap();
        assert_eq!(decoded.len(), 3);
        let delays: Vec<u32> = decoded
            .iter()
            .map(|f| {
                let (n, d) = f.delay().numer_denom_ms();
                n / d
            })
            .collect();
        assert_eq!(delays, [100, 100, 300]);
        for (f, i) in decoded.iter().zip(0u8..) {
            assert_eq!(f.buffer().dimensions(), (20, 12));
            // The frames are ≤ 256 colours, so they survive the palette exactly.
            assert_eq!(f.buffer().get_pixel(3, 4).0, [60 * i, 21, 20, 255]);
        }
    }

    #[test]
    fn mismatched_sizes_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let frames = vec![
            write_frame(dir.path(), "epoch-001.png", (20, 12), 0),
            write_frame(dir.path(), "epoch-002.png", (20, 12), 0),
            write_frame(dir.path(), "epoch-003.png", (21, 12), 0),
        ];
        let out = dir.path().join("progress.gif");
        let err = gif_from_pngs(&frames, &out, 100).unwrap_err().to_string();
        assert!(err.contains("epoch-003.png") && err.contains("21×12"), "{err}");
        assert!(!out.exists(), "no partial GIF on error");

        let err = gif_from_pngs(&[], &out, 100).unwrap_err().to_string();
        assert!(err.contains("no frames"), "{err}");
        let err = gif_from_pngs(&[dir.path().join("missing.png")], &out, 100).unwrap_err();
        assert!(format!("{err:#}").contains("missing.png"), "{err:#}");
    }
}
