//! Charts as PNG files: line charts (loss and discriminator curves), stacked line panels, and
//! class-coloured scatter plots of 2-D codes.
//!
//! Everything is rendered into an in-memory RGB buffer, encoded with `image` and written with
//! `util::write_atomic`, so a crash mid-plot never leaves a truncated PNG behind.

mod lines;
mod scatter;
#[cfg(test)]
mod tests;

pub use lines::{line_chart, line_panels};
pub use scatter::scatter;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::ops::Range;
use std::path::Path;
use std::sync::Once;

/// A named series of (x, y) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Size of a single line chart.
pub(crate) const CHART_SIZE: (u32, u32) = (800, 500);
/// Size of one panel of `line_panels` (the image is `PANEL_SIZE.1 × panels` tall).
pub(crate) const PANEL_SIZE: (u32, u32) = (800, 420);
/// Size of a scatter plot; the rightmost `LEGEND_W` pixels hold the class legend.
pub(crate) const SCATTER_SIZE: (u32, u32) = (800, 600);
pub(crate) const LEGEND_W: u32 = 160;

/// Tableau-10 (matplotlib's default cycle): distinct, colour-blind-friendlier than pure hues.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
/// Unlabelled points: lighter than palette entry 7 so the two greys stay apart.
pub(crate) const NO_CLASS: RGBColor = RGBColor(190, 190, 190);

const FONT: &str = "sans-serif";
const TITLE_PX: u32 = 22;
const DESC_PX: u32 = 16;
const TICK_PX: u32 = 13;

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// plotters' `ab_glyph` backend loads no system fonts; every family we name must be registered.
fn ensure_font() {
    static FONT_ONCE: Once = Once::new();
    FONT_ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, include_bytes!("../../../assets/DejaVuSans.ttf"))
            .unwrap_or_else(|_| panic!("bundled DejaVuSans.ttf is not a valid font"));
    });
}

/// Render with `draw` onto a white `w`×`h` canvas and write it as a PNG, atomically.
fn render_png(path: &Path, (w, h): (u32, u32), draw: impl FnOnce(&Area) -> Result<()>) -> Result<()> {
    ensure_font();
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).context("plot buffer has the wrong size")?;
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png).with_context(|| format!("cannot encode {}", path.display()))?;
    crate::util::write_atomic(path, &png.into_inner())
}

/// Tick labels: short decimals for ordinary magnitudes, 6-significant-digit scientific otherwise;
/// trailing zeros are trimmed so float noise (0.30000000000000004) reads as "0.3".
fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        let s = format!("{v:.5e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = if mant.contains('.') { mant.trim_end_matches('0').trim_end_matches('.') } else { mant };
        format!("{mant}e{exp}")
    } else {
        let s = format!("{v:.6}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".to_string() } else { s.to_string() }
    }
}

/// (min, max) of the values, `None` when there are none.
fn extent(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    vals.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// An axis range with 5% padding; a degenerate (single-valued) extent gets a visible width.
fn padded((lo, hi): (f64, f64)) -> Range<f64> {
    let span = hi - lo;
    if span > f64::EPSILON * lo.abs().max(hi.abs()) && span.is_finite() {
        lo - 0.05 * span..hi + 0.05 * span
    } else {
        let d = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
        lo - d..hi + d
    }
}
