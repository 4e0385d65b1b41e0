//! A log-scaled y axis whose ticks read well on loss curves.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use std::ops::Range;

/// Log-scaled y axis with 1-2-5 style ticks. plotters' own log axis only ticks powers of ten, so a loss
/// curve spanning 85..400 got a single labelled tick.
pub(super) struct LogAxis {
    ln: RangedCoordf64,
    range: Range<f64>,
}

impl LogAxis {
    /// `range` must be positive.
    pub(super) fn new(range: Range<f64>) -> Self {
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
