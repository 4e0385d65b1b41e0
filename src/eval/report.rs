//! `eval.json` as a type. Its JSON is exactly what the untyped builder wrote before, so files of
//! either age load with either code:
//! - the headline metrics are always written, `null` when not measured (`Option`, never a default);
//! - the detailed blocks (`class_histogram`, `coverage_real`, `memorization`, `latent`, `notes`)
//!   are left out when not measured, and so are the attribute metrics (`attribute_gap` …), which
//!   only datasets with an attribute network (CelebA) have;
//! - fields are declared in alphabetical order because the old writer's map sorted its keys, and
//!   this keeps new files (and report.json, which embeds them) byte-identical;
//! - a NaN serialises as `null` (JSON has no NaN); where a number is not optional it reads back
//!   as NaN instead of failing the whole file.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EvalReport {
    /// Attribute networks: mean over attributes of |rate among samples − rate among real test
    /// images|, both rates read by the attribute network (probability > 0.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute_gap: Option<f64>,
    /// The same gap for real training images vs the same test images: the sampling-noise floor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute_gap_floor: Option<f64>,
    /// The attribute whose rate differs most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute_gap_worst: Option<WorstAttribute>,
    /// Per attribute: its rate among samples, among real test images, annotated, and the gap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute_rates: Option<Vec<AttributeRate>>,
    /// Attribute-conditioned models: how often the attribute network reads on a sample the
    /// attributes it was drawn with, beside chance (conditions shuffled) and the ceiling (the
    /// network's accuracy on real test faces).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition_agreement: Option<ConditionAgreement>,
    /// Samples per class (argmax of the dataset's classifier).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_histogram: Option<Vec<usize>>,
    /// KL(p̂(y) ‖ uniform) of the samples, nats.
    pub class_kl: Option<f64>,
    pub classes_covered: Option<usize>,
    pub classifier_score: Option<f64>,
    /// The same coverage numbers for real test images (the scale the samples' are read on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage_real: Option<RealCoverage>,
    pub elbo: Option<f64>,
    pub fid: Option<f64>,
    /// FID of real training images vs the same test images: the best a model can reach here.
    pub fid_floor: Option<f64>,
    pub iwae_k: Option<usize>,
    pub iwae_nll: Option<f64>,
    pub kid: Option<f64>,
    pub kid_std: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latent: Option<Latent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memorization: Option<Memorization>,
    /// median(sample→train) / median(test→train) in pixels.
    pub nn_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Notes::is_empty")]
    pub notes: Notes,
    pub precision: Option<f64>,
    pub protocol: Protocol,
    pub recall: Option<f64>,
    /// Variance of the Laplacian of samples, and of real test images.
    pub sharpness: Option<f64>,
    pub sharpness_real: Option<f64>,
    /// Text models: text–image agreement and stage I vs stage II.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<crate::eval::tasks::text::TextScores>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorstAttribute {
    pub attribute: String,
    #[serde(deserialize_with = "nan_if_null")]
    pub gap: f64,
}

/// Agreement of samples with the attributes they were drawn with, mean and per attribute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConditionAgreement {
    #[serde(deserialize_with = "nan_if_null")]
    pub mean: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub chance: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub ceiling: f64,
    /// The same three as balanced accuracy (the mean of the shares right among samples drawn with
    /// and without each attribute), so rare attributes do not count as agreement by default; chance
    /// is ½ there.
    #[serde(deserialize_with = "nan_if_null")]
    pub balanced: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub balanced_chance: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub balanced_ceiling: f64,
    pub per_attribute: Vec<AttributeAgreement>,
}

/// One conditioned attribute's agreement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributeAgreement {
    pub name: String,
    /// Share of samples whose reading (P > 0.5) equals the condition.
    #[serde(deserialize_with = "nan_if_null")]
    pub agreement: f64,
    /// The same share with the conditions of other samples (a seeded shuffle).
    #[serde(deserialize_with = "nan_if_null")]
    pub chance: f64,
    /// The network's accuracy on the real test images' annotations.
    #[serde(deserialize_with = "nan_if_null")]
    pub ceiling: f64,
    /// Balanced accuracy of the samples, of the shuffle, and of real test images.
    #[serde(deserialize_with = "nan_if_null")]
    pub balanced: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub balanced_chance: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub balanced_ceiling: f64,
}

/// One attribute's share of images that have it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributeRate {
    /// Share of the real test images annotated with it (reference only: the gap compares the
    /// classifier's readings on both sides).
    pub annotated: Option<f64>,
    /// |samples − real|.
    #[serde(deserialize_with = "nan_if_null")]
    pub gap: f64,
    pub name: String,
    /// Share of real test images the attribute network says have it.
    #[serde(deserialize_with = "nan_if_null")]
    pub real: f64,
    /// Share of samples the attribute network says have it.
    #[serde(deserialize_with = "nan_if_null")]
    pub samples: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RealCoverage {
    #[serde(deserialize_with = "nan_if_null")]
    pub class_kl: f64,
    pub classes_covered: usize,
    #[serde(deserialize_with = "nan_if_null")]
    pub classifier_score: f64,
}

/// Why a requested metric has no value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Notes {
    /// Class coverage was requested but the dataset has no class labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<String>,
    /// Fewer test images than samples: the real reference sets are smaller than n.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_real: Option<String>,
    /// The model defines no likelihood.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nll: Option<String>,
}

impl Notes {
    pub fn is_empty(&self) -> bool {
        self.coverage.is_none() && self.n_real.is_none() && self.nll.is_none()
    }
    /// (metric, note) in the order eval.json lists them.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("coverage", &self.coverage), ("n_real", &self.n_real), ("nll", &self.nll)]
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_deref()?)))
    }
}

/// Nearest-training-image distances of samples and of test images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Memorization {
    /// Samples within 1e-3 (pixels) of a training image.
    pub exact_copies: usize,
    pub feature: NnDistances,
    /// Samples (and test images) searched.
    pub n: usize,
    pub nearest_png: Option<String>,
    pub pixel: NnDistances,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NnDistances {
    /// median(samples) / median(test); None when the test median is 0.
    pub ratio: Option<f64>,
    pub samples: Quantiles,
    pub test: Quantiles,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    #[serde(deserialize_with = "nan_if_null")]
    pub mean: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub median: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub q05: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub q25: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub q75: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub q95: f64,
}

/// Encoder models: code statistics and how often prior draws decode to recognisable images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latent {
    pub axes: Vec<AxisStats>,
    #[serde(deserialize_with = "nan_if_null")]
    pub confident_fraction_prior: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub confident_fraction_real: f64,
    pub prior: String,
    pub protocol: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AxisStats {
    #[serde(deserialize_with = "nan_if_null")]
    pub mean: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub std: f64,
}

/// What was measured how. The prose entries are each metric's protocol in words; the numbers
/// that decide comparability (n, seeds, the feature network's hash, k) are fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Protocol {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition_agreement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_network: Option<FeatureNetwork>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memorization: Option<String>,
    /// Samples looked at.
    pub n: usize,
    /// Real images in each reference set.
    pub n_real: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nll: Option<NllProtocol>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prd: Option<String>,
    /// The evaluated run as `latentlab eval` describes it (path, model, checkpoint…): echoed
    /// verbatim for the reader, never read back by the program.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<Value>,
    pub samples: String,
    /// Seconds per stage, and "total".
    pub seconds: BTreeMap<String, f64>,
    pub seed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharpness: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The classifier whose feature space FID, KID, precision/recall and coverage are measured in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureNetwork {
    pub dataset: String,
    pub epochs: usize,
    /// "classes" (softmax classifier) or "attributes" (multi-label; `test_accuracy` is then the
    /// mean per-attribute accuracy). Absent in files from before attribute networks: classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub layer: String,
    pub path: String,
    pub seed: u64,
    /// sha256 of its weights: numbers are comparable only under the same hash.
    pub sha256: String,
    #[serde(deserialize_with = "nan_if_null")]
    pub test_accuracy: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NllProtocol {
    pub bound: String,
    pub decoder: String,
    /// Test images scored.
    pub images: usize,
    /// Importance samples per image.
    pub k: usize,
    pub seconds: f64,
    pub seed: u64,
    pub test_set: String,
}

/// serde_json writes NaN as null; read such a null back as NaN rather than rejecting the file.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A number for a table cell: "—" when not measured (or not finite), small values in e-notation.
pub fn cell(x: Option<f64>, prec: usize) -> String {
    match x {
        Some(x) if x.is_finite() => {
            if x.abs() >= 1e-3 || x == 0.0 {
                format!("{x:.prec$}")
            } else {
                format!("{x:.3e}")
            }
        }
        _ => "—".to_string(),
    }
}

/// A table for the terminal.
pub fn table(r: &EvalReport) -> String {
    let f = cell;
    let u = |x: Option<usize>| f(x.map(|v| v as f64), 0);
    let rows = [
        ("FID (↓)", f(r.fid, 3), format!("floor {}", f(r.fid_floor, 3))),
        ("KID (↓)", f(r.kid, 5), format!("± {}", f(r.kid_std, 5))),
        ("precision (↑)", f(r.precision, 4), String::new()),
        ("recall (↑)", f(r.recall, 4), String::new()),
        ("classes covered", u(r.classes_covered), format!("KL to uniform {}", f(r.class_kl, 4))),
        ("classifier score", f(r.classifier_score, 3), String::new()),
        ("IWAE NLL (nats, ↓)", f(r.iwae_nll, 2), format!("k = {}", u(r.iwae_k))),
        ("ELBO (nats)", f(r.elbo, 2), String::new()),
        ("NN ratio", f(r.nn_ratio, 3), "median sample→train / test→train (pixels)".into()),
        ("sharpness", f(r.sharpness, 5), format!("real {}", f(r.sharpness_real, 5))),
    ];
    let mut s = String::new();
    for (name, val, note) in rows {
        s.push_str(&format!("{name:<20} {val:>12}  {note}\n"));
    }
    // Only datasets with an attribute network have these rows.
    if r.attribute_gap.is_some() || r.attribute_gap_worst.is_some() {
        let worst =
            r.attribute_gap_worst.as_ref().map_or("—".into(), |w| format!("{} {}", w.attribute, f(Some(w.gap), 3)));
        let note = format!("floor {}; worst {worst}", f(r.attribute_gap_floor, 4));
        s.push_str(&format!("{:<20} {:>12}  {note}\n", "attribute gap (↓)", f(r.attribute_gap, 4)));
        if let Some(a) = &r.condition_agreement {
            let note = format!(
                "balanced accuracy: chance {}, ceiling {}; plain agreement {} (chance {}, ceiling {}); {} attributes",
                f(Some(a.balanced_chance), 3),
                f(Some(a.balanced_ceiling), 3),
                f(Some(a.mean), 3),
                f(Some(a.chance), 3),
                f(Some(a.ceiling), 3),
                a.per_attribute.len()
            );
            s.push_str(&format!("{:<20} {:>12}  {note}\n", "condition agreement", f(Some(a.balanced), 3)));
        }
    }
    for (k, n) in r.notes.iter() {
        s.push_str(&format!("note ({k}): {n}\n"));
    }
    s
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
