//! Charts as PNG files: line charts (loss and discriminator curves), stacked line panels, and
//! class-coloured scatter plots of 2-D codes.
//!
//! Everything is rendered into an in-memory RGB buffer, encoded with `image` and written with
//! `util::write_atomic`, so a crash mid-plot never leaves a truncated PNG behind.

use anyhow::{Context, Result, bail};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
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
        plotters::style::register_font(FONT, FontStyle::Normal, include_bytes!("../../assets/DejaVuSans.ttf"))
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

/// Log-scaled y axis with 1-2-5 style ticks. plotters' own log axis only ticks powers of ten, so a loss
/// curve spanning 85..400 got a single labelled tick.
struct LogAxis {
    ln: RangedCoordf64,
    range: Range<f64>,
}

impl LogAxis {
    /// `range` must be positive.
    fn new(range: Range<f64>) -> Self {
        LogAxis { ln: (range.start.ln()..range.end.ln()).into(), range }
    }

    /// `m × 10^k` for every multiplier `m` and decade `k` that falls inside the range.
    fn ticks(&self, mults: &[f64]) -> Vec<f64> {
        let Range { start: lo, end: hi } = self.range;
        let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        (k0..=k1).flat_map(|k| mults.iter().map(move |m| m * 10f64.powi(k))).filter(|v| (lo..=hi).contains(v)).collect()
    }
}

impl Ranged for LogAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.ln.map(&value.ln(), limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let max = hint.max_num_points().max(2);
        let decades = self.ticks(&[1.0]);
        if decades.len() > max {
            // Many decades: label every n-th power of ten.
            let step = decades.len().div_ceil(max);
            return decades.into_iter().step_by(step).collect();
        }
        // The sparsest tick set that still gives at least three labels.
        let mut best = decades;
        for mults in [&[1.0, 2.0, 5.0][..], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]] {
            if best.len() >= 3 {
                break;
            }
            let t = self.ticks(mults);
            if t.len() > max {
                break;
            }
            best = t;
        }
        // Less than one "digit" of range (e.g. 101..104): log spacing is visually linear anyway.
        if best.len() < 2 { RangedCoordf64::from(self.range.clone()).key_points(hint) } else { best }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// One chart (title, axes, series, legend) in `area`.
fn draw_lines(area: &Area, title: &str, x_label: &str, y_label: &str, series: &[Series], log_y: bool) -> Result<()> {
    // Non-finite points (diverged losses, NaN logs) are dropped rather than poisoning the ranges.
    let clean: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect())
        .collect();
    let all = || clean.iter().flatten();
    let x_range = padded(extent(all().map(|p| p.0)).unwrap_or((0.0, 1.0)));
    let y_ext = extent(all().map(|p| p.1)).unwrap_or((0.0, 1.0));
    let mut builder = ChartBuilder::on(area);
    builder.caption(title, (FONT, TITLE_PX)).margin(12).margin_right(24).x_label_area_size(48).y_label_area_size(76);
    // A log axis only makes sense if every plotted value is positive; otherwise fall back to linear.
    if log_y && y_ext.0 > 0.0 && all().next().is_some() {
        let r = padded((y_ext.0.log10(), y_ext.1.log10()));
        let chart = builder.build_cartesian_2d(x_range, LogAxis::new(10f64.powf(r.start)..10f64.powf(r.end)))?;
        finish_lines(chart, x_label, y_label, series, &clean)
    } else {
        let chart = builder.build_cartesian_2d(x_range, padded(y_ext))?;
        finish_lines(chart, x_label, y_label, series, &clean)
    }
}

/// Mesh, lines and legend; generic over the y coordinate so linear and log axes share the code.
fn finish_lines<'a, 'b: 'a, Y>(
    mut chart: ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, Y>>,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    clean: &[Vec<(f64, f64)>],
) -> Result<()>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .axis_desc_style((FONT, DESC_PX))
        .label_style((FONT, TICK_PX))
        .x_labels(8)
        .y_labels(7)
        .x_label_formatter(&|v| fmt_tick(*v))
        .y_label_formatter(&|v| fmt_tick(*v))
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(RGBColor(245, 245, 245))
        .draw()?;
    for (i, (s, pts)) in series.iter().zip(clean).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let ann = chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?;
        if !s.name.is_empty() {
            ann.label(s.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
        }
        // Sparse series (e.g. one test loss per epoch) get markers so single points stay visible.
        if pts.len() <= 50 {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
    }
    if series.iter().any(|s| !s.name.is_empty()) {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()?;
    }
    Ok(())
}

/// Line chart PNG (e.g. loss curves; D(x)/D(G(z)) curves). Skips non-finite points. Multiple series share axes,
/// each a distinct colour, with a legend. `log_y` uses a log scale when all y > 0. Written atomically (render to an
/// RGB buffer, encode PNG with `image`, util::write_atomic) — never a half-written file.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<()> {
    if series.is_empty() {
        bail!("line chart '{title}' ({}): no series to plot", path.display());
    }
    render_png(path, CHART_SIZE, |root| draw_lines(root, title, x_label, y_label, series, log_y))
}

/// Several line charts stacked vertically in one PNG (one panel per (title, y_label, series) entry), same x label.
pub fn line_panels(path: &Path, x_label: &str, panels: &[(String, String, Vec<Series>)]) -> Result<()> {
    if panels.is_empty() {
        bail!("line panels ({}): no panels to plot", path.display());
    }
    if let Some((title, _, _)) = panels.iter().find(|p| p.2.is_empty()) {
        bail!("line panels ({}): panel '{title}' has no series", path.display());
    }
    let (w, h) = PANEL_SIZE;
    render_png(path, (w, h * panels.len() as u32), |root| {
        for (area, (title, y_label, series)) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
            draw_lines(area, title, x_label, y_label, series, false)?;
        }
        Ok(())
    })
}

/// Legend text for class `k`: its name when known, shortened to fit the legend column.
fn class_label(k: u8, class_names: &[String]) -> String {
    let name = class_names.get(k as usize).cloned().unwrap_or_else(|| format!("class {k}"));
    if name.chars().count() > 15 { format!("{}…", name.chars().take(14).collect::<String>()) } else { name }
}

/// Scatter of 2-D points coloured by class (10-colour categorical palette, cycling past 10; class None = grey),
/// with a legend naming `class_names[k]`. Points are small circles; good for ~10k points. Axis labels `x_label`/`y_label`.
pub fn scatter(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f32, f32, Option<u8>)],
    class_names: &[String],
) -> Result<()> {
    let pts: Vec<(f64, f64, Option<u8>)> = points
        .iter()
        .filter(|(x, y, _)| x.is_finite() && y.is_finite())
        .map(|&(x, y, c)| (x as f64, y as f64, c))
        .collect();
    if pts.is_empty() {
        bail!("scatter '{title}' ({}): no finite points to plot", path.display());
    }
    let color = |c: Option<u8>| c.map_or(NO_CLASS, |k| PALETTE[k as usize % PALETTE.len()]);
    let x_range = padded(extent(pts.iter().map(|p| p.0)).unwrap_or((0.0, 1.0)));
    let y_range = padded(extent(pts.iter().map(|p| p.1)).unwrap_or((0.0, 1.0)));
    let mut classes: Vec<Option<u8>> = pts.iter().map(|p| p.2).collect();
    classes.sort_unstable();
    classes.dedup();
    // Labelled classes first, the unlabelled group (if any) last.
    let unlabelled = classes.iter().take_while(|c| c.is_none()).count();
    classes.rotate_left(unlabelled);

    render_png(path, SCATTER_SIZE, |root| {
        let body = root.titled(title, (FONT, TITLE_PX))?;
        let (plot, legend) = body.split_horizontally(SCATTER_SIZE.0 - LEGEND_W);
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(76)
            .build_cartesian_2d(x_range, y_range)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .axis_desc_style((FONT, DESC_PX))
            .label_style((FONT, TICK_PX))
            .x_label_formatter(&|v| fmt_tick(*v))
            .y_label_formatter(&|v| fmt_tick(*v))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(RGBColor(245, 245, 245))
            .draw()?;
        // Opaque 2-px dots: 10k of them stay legible and each keeps its exact class colour.
        chart.draw_series(pts.iter().map(|&(x, y, c)| Circle::new((x, y), 2, color(c).filled())))?;

        // The legend lives in its own column so it never hides points.
        let row = 22;
        let fits = ((SCATTER_SIZE.1 as i32 - 60) / row).max(1) as usize;
        let font = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        for (i, &c) in classes.iter().enumerate() {
            let y = 30 + i as i32 * row;
            if i + 1 == fits && classes.len() > fits {
                legend.draw(&Text::new(format!("… {} more", classes.len() - i), (12, y), font.clone()))?;
                break;
            }
            let name = c.map_or_else(|| "unlabelled".to_string(), |k| class_label(k, class_names));
            legend.draw(&Circle::new((16, y), 6, color(c).filled()))?;
            legend.draw(&Text::new(name, (30, y), font.clone()))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(c: RGBColor) -> [u8; 3] {
        [c.0, c.1, c.2]
    }

    /// Pixels within the x-range `[x0, x1)` equal to `c`.
    fn count_color(img: &image::RgbImage, c: RGBColor, x0: u32, x1: u32) -> usize {
        img.enumerate_pixels().filter(|(x, _, p)| (x0..x1).contains(x) && p.0 == rgb(c)).count()
    }

    fn non_white(img: &image::RgbImage) -> usize {
        img.pixels().filter(|p| p.0 != [255, 255, 255]).count()
    }

    fn sine(name: &str, phase: f64) -> Series {
        Series { name: name.into(), points: (0..200).map(|i| (i as f64, (i as f64 / 20.0 + phase).sin())).collect() }
    }

    #[test]
    fn line_chart_renders_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        line_chart(&path, "Loss", "step", "loss", &[sine("train", 0.0), sine("test", 1.0)], false).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), CHART_SIZE);
        assert!(non_white(&img) > 5000, "only {} non-white pixels", non_white(&img));
        assert!(count_color(&img, PALETTE[0], 0, CHART_SIZE.0) > 300, "first series colour missing");
        assert!(count_color(&img, PALETTE[1], 0, CHART_SIZE.0) > 300, "second series colour missing");
        // No temp file left beside the output.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn line_chart_skips_nan_and_supports_log_scale() {
        let dir = tempfile::tempdir().unwrap();
        let mut pts: Vec<(f64, f64)> = (1..100).map(|i| (i as f64, 100.0 / i as f64)).collect();
        pts[10].1 = f64::NAN;
        pts[20].1 = f64::INFINITY;
        pts[30].0 = f64::NAN;
        let s = [Series { name: "loss".into(), points: pts }];
        for log_y in [false, true] {
            let path = dir.path().join(format!("nan-{log_y}.png"));
            line_chart(&path, "NaN inside", "step", "loss", &s, log_y).unwrap();
            let img = image::open(&path).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), CHART_SIZE);
            assert!(count_color(&img, PALETTE[0], 0, CHART_SIZE.0) > 300, "series missing (log_y={log_y})");
        }
        // log_y with a non-positive value falls back to a linear axis instead of failing.
        let path = dir.path().join("neg.png");
        line_chart(&path, "t", "x", "y", &[sine("s", 0.0)], true).unwrap();
        assert!(count_color(&image::open(&path).unwrap().to_rgb8(), PALETTE[0], 0, CHART_SIZE.0) > 300);
    }

    #[test]
    fn line_chart_degenerate_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.png");
        let err = line_chart(&path, "Loss", "step", "loss", &[], false).unwrap_err().to_string();
        assert!(err.contains("no series"), "{err}");
        assert!(!path.exists());
        // A single point and an all-NaN series still give a valid image.
        let s = [
            Series { name: "one".into(), points: vec![(3.0, 2.0)] },
            Series { name: "nan".into(), points: vec![(f64::NAN, 1.0)] },
        ];
        line_chart(&path, "Loss", "step", "loss", &s, true).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert!(count_color(&img, PALETTE[0], 0, CHART_SIZE.0) > 10, "single point marker missing");
    }

    #[test]
    fn line_panels_stacks_panels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("panels.png");
        let panels = vec![
            ("recon".to_string(), "nats".to_string(), vec![sine("train", 0.0)]),
            ("kl".to_string(), "nats".to_string(), vec![sine("train", 0.5), sine("test", 2.0)]),
        ];
        line_panels(&path, "step", &panels).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (PANEL_SIZE.0, 2 * PANEL_SIZE.1));
        // Each panel has its own first-series line.
        for k in 0..2 {
            let band = image::imageops::crop_imm(&img, 0, k * PANEL_SIZE.1, PANEL_SIZE.0, PANEL_SIZE.1).to_image();
            assert!(count_color(&band, PALETTE[0], 0, PANEL_SIZE.0) > 300, "panel {k} has no line");
        }
        let err = line_panels(&path, "step", &[]).unwrap_err().to_string();
        assert!(err.contains("no panels"), "{err}");
    }

    #[test]
    fn scatter_shows_both_classes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scatter.png");
        // Two clusters of 5000 points each, on a deterministic jittered lattice.
        let pts: Vec<(f32, f32, Option<u8>)> = (0..10_000)
            .map(|i| {
                let (class, j) = ((i % 2) as u8, (i / 2) as f32);
                let (dx, dy) = ((j * 0.618).fract() - 0.5, (j * 0.382).fract() - 0.5);
                let cx = if class == 0 { -3.0 } else { 3.0 };
                (cx + 2.0 * dx, 2.0 * dy, Some(class))
            })
            .collect();
        let names = vec!["zero".to_string(), "one".to_string()];
        scatter(&path, "codes", "z1", "z2", &pts, &names).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), SCATTER_SIZE);
        let plot_w = SCATTER_SIZE.0 - LEGEND_W;
        // Counted left of the legend column, so legend swatches alone cannot pass this.
        for (k, &c) in PALETTE[..2].iter().enumerate() {
            let n = count_color(&img, c, 0, plot_w);
            assert!(n > 2000, "class {k} colour on only {n} plot pixels");
            assert!(count_color(&img, c, plot_w, SCATTER_SIZE.0) > 0, "class {k} legend swatch missing");
        }
        assert_eq!(count_color(&img, PALETTE[2], 0, SCATTER_SIZE.0), 0, "unused class colour drawn");

        // Unlabelled points are grey; an all-NaN input is an error.
        let grey: Vec<_> = pts.iter().map(|&(x, y, _)| (x, y, None)).collect();
        scatter(&path, "codes", "z1", "z2", &grey, &[]).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert!(count_color(&img, NO_CLASS, 0, plot_w) > 2000);
        let err = scatter(&path, "t", "x", "y", &[(f32::NAN, 0.0, Some(0))], &names).unwrap_err().to_string();
        assert!(err.contains("no finite points"), "{err}");
    }

    #[test]
    fn log_axis_ticks() {
        assert_eq!(LogAxis::new(85.0..400.0).key_points(7), [90.0, 100.0, 200.0, 300.0, 400.0]);
        assert_eq!(LogAxis::new(0.5..5e4).key_points(7), [1.0, 10.0, 100.0, 1000.0, 10000.0]);
        let t = LogAxis::new(1e-8..1e3).key_points(7);
        assert!((3..=7).contains(&t.len()), "{t:?}");
        let t = LogAxis::new(101.0..104.0).key_points(7);
        assert!(t.len() >= 2 && t.iter().all(|v| (101.0..=104.0).contains(v)), "{t:?}");
    }

    #[test]
    fn tick_format() {
        assert_eq!(fmt_tick(0.30000000000000004), "0.3");
        assert_eq!(fmt_tick(1500.0), "1500");
        assert_eq!(fmt_tick(-0.0), "0");
        assert_eq!(fmt_tick(1e-5), "1e-5");
        assert_eq!(fmt_tick(2.5e7), "2.5e7");
    }
}
