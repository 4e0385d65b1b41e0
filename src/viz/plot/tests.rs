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
    line_chart(&path, "Loss", "step", "loss", &[sine("train", 0.0), sine("test", 1.0)]).unwrap();
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
    let path = dir.path().join("nan.png");
    line_chart(&path, "NaN inside", "step", "loss", &s).unwrap();
    let img = image::open(&path).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), CHART_SIZE);
    assert!(count_color(&img, PALETTE[0], 0, CHART_SIZE.0) > 300, "series missing");
}

#[test]
fn line_chart_degenerate_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.png");
    let err = line_chart(&path, "Loss", "step", "loss", &[]).unwrap_err().to_string();
    assert!(err.contains("no series"), "{err}");
    assert!(!path.exists());
    // A single point and an all-NaN series still give a valid image.
    let s = [
        Series { name: "one".into(), points: vec![(3.0, 2.0)] },
        Series { name: "nan".into(), points: vec![(f64::NAN, 1.0)] },
    ];
    line_chart(&path, "Loss", "step", "loss", &s).unwrap();
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
fn tick_format() {
    assert_eq!(fmt_tick(0.30000000000000004), "0.3");
    assert_eq!(fmt_tick(1500.0), "1500");
    assert_eq!(fmt_tick(-0.0), "0");
    assert_eq!(fmt_tick(1e-5), "1e-5");
    assert_eq!(fmt_tick(2.5e7), "2.5e7");
}
