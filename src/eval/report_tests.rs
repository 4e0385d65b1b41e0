use super::*;

/// eval.json files written by the untyped builder before `EvalReport` existed: a VAE run (every
/// metric, latent diagnostics) and a DCGAN run evaluated with `--metrics
/// nll,fid,coverage,memorization,sharpness,latent` (KID/PRD null, a note on the likelihood).
const VAE: &str = include_str!("../../tests/fixtures/eval-vae.json");
const DCGAN: &str = include_str!("../../tests/fixtures/eval-dcgan.json");

#[test]
fn todays_eval_json_round_trips_byte_for_byte() {
    for text in [VAE, DCGAN] {
        let r: EvalReport = serde_json::from_str(text).unwrap();
        let want: Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), want, "same keys, same nesting, same values");
        // Same bytes as the untyped code writes for this content (key order included). Not the file's
        // own bytes: serde_json's default float parsing may move a last digit, for both alike.
        assert_eq!(serde_json::to_string_pretty(&r).unwrap(), serde_json::to_string_pretty(&want).unwrap());
    }
    let vae: EvalReport = serde_json::from_str(VAE).unwrap();
    assert_eq!((vae.iwae_k, vae.latent.as_ref().map(|l| l.axes.len())), (Some(5), Some(20)));
    assert_eq!(vae.protocol.nll.as_ref().unwrap().k, 5);
    assert_eq!(vae.protocol.feature_network.as_ref().unwrap().sha256.len(), 64);
    let gan: EvalReport = serde_json::from_str(DCGAN).unwrap();
    assert_eq!((gan.kid, gan.precision, gan.iwae_nll, gan.latent.is_none()), (None, None, None, true));
    assert!(gan.notes.nll.as_deref().unwrap().contains("GAN"));
    assert!(gan.memorization.unwrap().pixel.ratio.unwrap() > 1.0);
}

/// An older file that lacks a metric altogether (not even null) loads with that metric None, and
/// the table shows "—" for exactly that metric.
#[test]
fn a_missing_metric_is_none_and_shows_as_a_dash_only_there() {
    let full: EvalReport = serde_json::from_str(VAE).unwrap();
    let mut v: Value = serde_json::from_str(VAE).unwrap();
    v.as_object_mut().unwrap().remove("recall");
    let old: EvalReport = serde_json::from_value(v).unwrap();
    assert_eq!(old.recall, None);
    assert_eq!(EvalReport { recall: full.recall, ..old.clone() }, full, "nothing else changed");
    let (a, b) = (table(&full), table(&old));
    let differ: Vec<(&str, &str)> = a.lines().zip(b.lines()).filter(|(x, y)| x != y).collect();
    assert_eq!(differ.len(), 1, "{differ:?}");
    assert!(differ[0].0.starts_with("recall") && differ[0].0.contains("0.0000"), "{differ:?}");
    assert!(differ[0].1.starts_with("recall") && differ[0].1.trim_end().ends_with('—'), "{differ:?}");
}

#[test]
fn the_table_reads_every_headline_metric() {
    let r: EvalReport = serde_json::from_str(VAE).unwrap();
    let t = table(&r);
    for want in ["FID (↓)", "floor 20.736", "k = 5", "sharpness", "real 0.96359"] {
        assert!(t.contains(want), "{want} not in\n{t}");
    }
    let gan: EvalReport = serde_json::from_str(DCGAN).unwrap();
    let t = table(&gan);
    assert!(t.contains("k = —") && t.contains("note (nll): not defined: a GAN"), "{t}");
    assert_eq!(cell(Some(f64::NAN), 2), "—");
    assert_eq!(cell(Some(4.671e-12), 5), "4.671e-12");
}

/// `{}` (a hand-made placeholder) loads as "nothing measured"; a NaN that serde_json wrote as
/// null inside a block reads back as NaN instead of rejecting the file.
#[test]
fn empty_and_nan_files_load() {
    let r: EvalReport = serde_json::from_str("{}").unwrap();
    assert_eq!(r, EvalReport::default());
    let mut v: Value = serde_json::from_str(VAE).unwrap();
    v["latent"]["axes"][0]["std"] = Value::Null;
    let r: EvalReport = serde_json::from_value(v).unwrap();
    assert!(r.latent.unwrap().axes[0].std.is_nan());
    let nan = EvalReport { fid: Some(f64::NAN), ..Default::default() };
    let back: EvalReport = serde_json::from_str(&serde_json::to_string(&nan).unwrap()).unwrap();
    assert_eq!(back.fid, None);
}

/// An attribute-network report: its fields survive a round trip, the table gains exactly one
/// row for them, and a class-network report (the fixtures) writes none of their keys.
#[test]
fn attribute_metrics_round_trip_and_show_in_the_table() {
    let mut r: EvalReport = serde_json::from_str(VAE).unwrap();
    let before = table(&r);
    r.attribute_gap = Some(0.0375);
    r.attribute_gap_floor = Some(0.0125);
    r.attribute_gap_worst = Some(WorstAttribute { attribute: "Smiling".into(), gap: 0.25 });
    r.attribute_rates =
        Some(vec![AttributeRate { annotated: Some(0.5), gap: 0.25, name: "Smiling".into(), real: 0.45, samples: 0.2 }]);
    r.notes.coverage = Some("no class labels: skipped".into());
    let back: EvalReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
    let t = table(&r);
    assert_eq!(t.lines().count(), before.lines().count() + 2, "one metric row, one note\n{t}");
    let row = t.lines().find(|l| l.starts_with("attribute gap")).unwrap();
    assert!(row.contains("0.0375") && row.contains("floor 0.0125") && row.contains("worst Smiling 0.250"), "{row}");
    assert!(t.contains("note (coverage): no class labels"), "{t}");
    for text in [VAE, DCGAN] {
        let v = serde_json::to_value(serde_json::from_str::<EvalReport>(text).unwrap()).unwrap();
        assert!(v.as_object().unwrap().keys().all(|k| !k.starts_with("attribute")));
    }
}
