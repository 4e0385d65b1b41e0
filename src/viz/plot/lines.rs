//! Line charts: one chart per PNG, or several stacked panels sharing an x label.

use super::{Area, CHART_SIZE, DESC_PX, FONT, PALETTE, PANEL_SIZE, Series, TICK_PX, TITLE_PX};
use super::{extent, fmt_tick, padded, render_png};
use anyhow::{Result, bail};
use plotters::prelude::*;
use std::path::Path;

/// One chart (title, axes, series, legend) in `area`. Non-finite points (diverged losses, NaN logs)
/// are dropped rather than poisoning the ranges.
fn draw_lines(area: &Area, title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<()> {
    let clean: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect())
        .collect();
    let all = || clean.iter().flatten();
    let x_range = padded(extent(all().map(|p| p.0)).unwrap_or((0.0, 1.0)));
    let y_range = padded(extent(all().map(|p| p.1)).unwrap_or((0.0, 1.0)));
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, TITLE_PX))
        .margin(12)
        .margin_right(24)
        .x_label_area_size(48)
        .y_label_area_size(76)
        .build_cartesian_2d(x_range, y_range)?;
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
/// each a distinct colour, with a legend. Written atomically (render to an
/// RGB buffer, encode PNG with `image`, util::write_atomic) — never a half-written file.
pub fn line_chart(path: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<()> {
    if series.is_empty() {
        bail!("line chart '{title}' ({}): no series to plot", path.display());
    }
    render_png(path, CHART_SIZE, |root| draw_lines(root, title, x_label, y_label, series))
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
            draw_lines(area, title, x_label, y_label, series)?;
        }
        Ok(())
    })
}
