//! Class-coloured scatter plots of 2-D codes, with the legend in its own column.

use super::{DESC_PX, FONT, LEGEND_W, NO_CLASS, PALETTE, SCATTER_SIZE, TICK_PX, TITLE_PX};
use super::{extent, fmt_tick, padded, render_png};
use anyhow::{Result, bail};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

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
