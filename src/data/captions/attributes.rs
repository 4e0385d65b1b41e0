//! Attributes measured from an image's pixels, and their per-class tercile levels.

use crate::data::{Dataset, ImageShape};
use anyhow::{Result, bail};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Which attributes a dataset's captions talk about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttributeSet {
    /// Handwritten digits: thickness, slant, width.
    Handwriting,
    /// Anything else: shade, size, width.
    Objects,
}

/// Attributes per set.
pub const ATTRS: usize = 3;

/// Grey level (channel mean) from which a pixel counts as ink.
pub const INK: u32 = 128;

impl AttributeSet {
    /// (name, [low word, high word]) of each of the 3 attributes.
    pub fn attributes(self) -> [(&'static str, [&'static str; 2]); ATTRS] {
        match self {
            AttributeSet::Handwriting => {
                [("thickness", ["thin", "thick"]), ("slant", ["upright", "slanted"]), ("width", ["narrow", "wide"])]
            }
            AttributeSet::Objects => {
                [("shade", ["dark", "light"]), ("size", ["small", "large"]), ("width", ["narrow", "wide"])]
            }
        }
    }

    /// "mnist" and "digits" → Handwriting, anything else → Objects.
    pub fn for_dataset(name: &str) -> AttributeSet {
        match name {
            "mnist" | "digits" => AttributeSet::Handwriting,
            _ => AttributeSet::Objects,
        }
    }
}

/// Measurements of one image (C×H×W bytes; colour images use the channel mean), in attribute order.
///
/// Ink is grey ≥ 128. Handwriting: thickness = 2·A/P (A ink pixels, P 4-neighbour edges between
/// ink and non-ink or the border), slant = −μ11/μ02 of the grey-weighted central moments (x right,
/// y down: positive when the top leans right), width = ink bounding-box width / image width, to
/// sub-pixel precision: each column of the box and the one beside it on either side counts its
/// brightest pixel relative to the image's brightest (a sharp box counts exactly its columns).
/// Objects: shade = mean grey of the ink / 255, size = A/(H·W), width as above. Every value is 0
/// where it is undefined (no ink, μ02 = 0), and all are 0 when `image` is shorter than `shape`.
pub fn measure(set: AttributeSet, image: &[u8], shape: ImageShape) -> [f32; ATTRS] {
    let (c, h, w) = (shape.channels, shape.height, shape.width);
    let plane = h * w;
    if c == 0 || plane == 0 || image.len() < shape.len() {
        return [0.0; ATTRS];
    }
    // Channel sums: ink where sum ≥ 128·C, grey = sum / C.
    let sums: Vec<u32> = if c == 1 {
        image[..plane].iter().map(|&v| v as u32).collect()
    } else {
        (0..plane).map(|i| (0..c).map(|k| image[k * plane + i] as u32).sum()).collect()
    };
    let cut = INK * c as u32;
    let ink = |y: usize, x: usize| sums[y * w + x] >= cut;
    let (mut area, mut perimeter, mut ink_sum) = (0u64, 0u64, 0u64);
    let (mut x0, mut x1) = (usize::MAX, 0usize);
    // Grey-weighted raw moments.
    let (mut s, mut sx, mut sy, mut sxy, mut syy) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for y in 0..h {
        for x in 0..w {
            let v = sums[y * w + x];
            if v > 0 {
                let (g, fx, fy) = (v as f64, x as f64, y as f64);
                s += g;
                sx += g * fx;
                sy += g * fy;
                sxy += g * fx * fy;
                syy += g * fy * fy;
            }
            if v < cut {
                continue;
            }
            area += 1;
            ink_sum += v as u64;
            x0 = x0.min(x);
            x1 = x1.max(x);
            perimeter += (y == 0 || !ink(y - 1, x)) as u64
                + (y + 1 == h || !ink(y + 1, x)) as u64
                + (x == 0 || !ink(y, x - 1)) as u64
                + (x + 1 == w || !ink(y, x + 1)) as u64;
        }
    }
    // Sub-pixel bounding box: each column of the ink box, and the one beside it on either side,
    // counts its brightest pixel relative to the image's brightest, so anti-aliased edges count in
    // part and widths rarely tie (a sharp box counts exactly its columns).
    let width = if area == 0 {
        0.0
    } else {
        let col = |x: usize| (0..h).map(|y| sums[y * w + x]).max().unwrap_or(0);
        let top = sums.iter().copied().max().unwrap_or(1) as f32;
        let cols = x0.saturating_sub(1)..=(x1 + 1).min(w - 1);
        cols.map(|x| col(x) as f32 / top).sum::<f32>() / w as f32
    };
    match set {
        AttributeSet::Handwriting => {
            let thickness = if perimeter == 0 { 0.0 } else { 2.0 * area as f32 / perimeter as f32 };
            let slant = if s > 0.0 {
                let mu11 = sxy - sx * sy / s;
                let mu02 = syy - sy * sy / s;
                // μ02 is a difference of large sums: treat rounding-level values as 0.
                if mu02 > 1e-9 * syy.max(1.0) { (-mu11 / mu02) as f32 } else { 0.0 }
            } else {
                0.0
            };
            [thickness, slant, width]
        }
        AttributeSet::Objects => {
            let shade = if area == 0 { 0.0 } else { ink_sum as f32 / (area as f32 * c as f32 * 255.0) };
            [shade, area as f32 / plane as f32, width]
        }
    }
}

/// Measurements of every image of `ds`, in order.
pub fn measure_all(set: AttributeSet, ds: &Dataset) -> Vec<[f32; ATTRS]> {
    (0..ds.n).into_par_iter().map(|i| measure(set, ds.image(i), ds.shape)).collect()
}

/// Where a measurement falls among its class's training values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Level {
    Low,
    Mid,
    High,
}

/// Per-class tercile cuts of each attribute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub set: AttributeSet,
    /// [class][attr] = (lower tercile, upper tercile)
    pub cuts: Vec<[(f32, f32); ATTRS]>,
}

impl Thresholds {
    /// Per-class terciles of each measurement over `train` (needs labels); classes with no images
    /// get the all-class terciles. There is one entry per class up to `num_classes` (or the largest
    /// label + 1). Cuts sit on measured values and are chosen, among those values, so that the
    /// shares below the lower cut and at or above the upper cut come closest to 1/3 (ties in
    /// discrete measurements such as width cannot be split).
    pub fn fit(set: AttributeSet, train: &Dataset) -> Result<Thresholds> {
        let Some(labels) = train.labels.as_deref() else {
            bail!("attribute thresholds need class labels, and this training set has none");
        };
        if train.n == 0 {
            bail!("attribute thresholds need training images, and the training set is empty");
        }
        let measured = measure_all(set, train);
        Ok(Thresholds::from_measurements(set, &measured, labels, train.num_classes))
    }

    /// `fit` on measurements already taken (`measured[i]` of the image labelled `labels[i]`).
    pub fn from_measurements(
        set: AttributeSet,
        measured: &[[f32; ATTRS]],
        labels: &[u8],
        num_classes: usize,
    ) -> Thresholds {
        let k = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0).max(num_classes);
        let mut per_class: Vec<[Vec<f32>; ATTRS]> = (0..k).map(|_| Default::default()).collect();
        let mut all: [Vec<f32>; ATTRS] = Default::default();
        for (m, &l) in measured.iter().zip(labels) {
            for a in 0..ATTRS {
                per_class[l as usize][a].push(m[a]);
                all[a].push(m[a]);
            }
        }
        let all_cuts = cuts_of(&mut all);
        let cuts = per_class.iter_mut().map(|v| if v[0].is_empty() { all_cuts } else { cuts_of(v) }).collect();
        Thresholds { set, cuts }
    }

    /// value < lower → Low, value ≥ upper → High, else Mid. A class without cuts of its own (out of
    /// range) uses class 0's; with none at all every value is Mid.
    pub fn level(&self, class: usize, attr: usize, value: f32) -> Level {
        let Some(&(lo, hi)) = self.cuts.get(class).or(self.cuts.first()).and_then(|c| c.get(attr)) else {
            return Level::Mid;
        };
        if value < lo {
            Level::Low
        } else if value >= hi {
            Level::High
        } else {
            Level::Mid
        }
    }

    /// The levels of all attributes of one image of `class`.
    pub fn levels(&self, class: usize, measured: [f32; ATTRS]) -> [Level; ATTRS] {
        std::array::from_fn(|a| self.level(class, a, measured[a]))
    }
}

fn cuts_of(values: &mut [Vec<f32>; ATTRS]) -> [(f32, f32); ATTRS] {
    std::array::from_fn(|a| {
        let v = &mut values[a];
        v.sort_by(f32::total_cmp);
        let n = v.len() as f64;
        (cut_near(v, n / 3.0), cut_near(v, 2.0 * n / 3.0))
    })
}

/// A value `c` of sorted `v` whose count of values below it is closest to `target`.
fn cut_near(v: &[f32], target: f64) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let j = (target.floor() as usize).min(v.len() - 1);
    // The run of values equal to v[j] starts at `a`; the next distinct value starts at `b`.
    let a = v.partition_point(|x| *x < v[j]);
    let b = v.partition_point(|x| *x <= v[j]);
    if b < v.len() && (b as f64 - target).abs() < (target - a as f64).abs() { v[b] } else { v[a] }
}
