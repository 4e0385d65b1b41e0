//! The face feature network (a multi-label attribute classifier) on real CelebA faces, and
//! attribute coverage (`attribute_gap`) read by it. The faces are decoded here from the official
//! files (the first images of /work/shared/data/celeba, split by identity so that no person is
//! on both sides), independently of the CelebA reader.

use latentlab::data::{Attributes, Dataset, ImageShape, Splits};
use latentlab::eval::attr_net;
use latentlab::eval::attributes::{gap_of_probs, rates};
use latentlab::eval::evaluate::{self, EvalOptions, Metric, Source};
use latentlab::eval::features::{self, Features, NetKind, Recipe};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Once, OnceLock};

fn celeba() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/celeba");
    assert!(p.join("list_attr_celeba.txt").is_file(), "tests need CelebA at {}", p.display());
    p
}

/// Point the user cache at a temporary folder before anything reads it, so no test writes a
/// cached network beside the shared data. Every test calls this first.
fn setup() {
    static ONCE: Once = Once::new();
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    ONCE.call_once(|| {
        let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
        // SAFETY: every test of this binary calls `setup` before it does anything else, and
        // `call_once` holds them all until this write is done: no thread reads the environment
        // concurrently.
        unsafe { std::env::set_var("LATENTLAB_CACHE", dir.path()) };
    });
}

/// The annotations: attribute names, and per image (file name) its 0/1 row and its identity.
struct Annotations {
    names: Vec<String>,
    rows: HashMap<String, Vec<u8>>,
    ids: HashMap<String, u32>,
}

fn annotations() -> &'static Annotations {
    static A: OnceLock<Annotations> = OnceLock::new();
    A.get_or_init(|| {
        let text = std::fs::read_to_string(celeba().join("list_attr_celeba.txt")).unwrap();
        let mut lines = text.lines();
        let _count = lines.next().unwrap();
        let names: Vec<String> = lines.next().unwrap().split_whitespace().map(String::from).collect();
        assert_eq!(names.len(), 40);
        let mut rows = HashMap::new();
        for l in lines {
            let mut f = l.split_whitespace();
            let Some(name) = f.next() else { continue };
            let v: Vec<u8> = f.map(|s| u8::from(s == "1")).collect();
            assert_eq!(v.len(), 40, "{l}");
            rows.insert(name.to_string(), v);
        }
        let ids = std::fs::read_to_string(celeba().join("identity_CelebA.txt"))
            .unwrap()
            .lines()
            .filter_map(|l| {
                let (a, b) = l.split_once(' ')?;
                Some((a.to_string(), b.trim().parse().ok()?))
            })
            .collect();
        Annotations { names, rows, ids }
    })
}

/// Images `first..first+n` (file order) decoded at `size` px in colour: a dataset with their
/// attributes, and each image's identity.
fn faces(first: usize, n: usize, size: usize) -> (Dataset, Vec<u32>) {
    let a = annotations();
    let files: Vec<String> = (first + 1..=first + n).map(|i| format!("{i:06}.jpg")).collect();
    let dir = celeba().join("img_align_celeba");
    let decoded: Vec<Vec<u8>> =
        files.par_iter().map(|f| latentlab::data::folder::decode(&dir.join(f), size, 3).unwrap()).collect();
    let values = files.iter().flat_map(|f| a.rows[f].clone()).collect();
    let ids = files.iter().map(|f| a.ids[f]).collect();
    let data = Dataset {
        images: decoded.concat(),
        labels: None,
        n,
        shape: ImageShape { channels: 3, height: size, width: size },
        num_classes: 0,
        attributes: Some(Attributes { names: a.names.clone(), values }),
    };
    (data, ids)
}

fn indices(ids: &[u32], keep: impl Fn(u32) -> bool) -> Vec<usize> {
    (0..ids.len()).filter(|&i| keep(ids[i])).collect()
}

/// The first 1,000 faces at 32 px: people whose identity is 0 or 1 mod 5 (~400 faces) are held
/// out, the others (~600) train. Held-out A (0 mod 5) and B (1 mod 5) share no person.
struct Setup {
    splits: Splits,
    a: Dataset,
    b: Dataset,
}

fn setup_faces() -> Setup {
    let (all, ids) = faces(0, 1000, 32);
    let held_out = indices(&ids, |id| id % 5 < 2);
    let train = indices(&ids, |id| id % 5 >= 2);
    let splits = Splits {
        name: "celeba-first-1000".into(),
        train: all.subset(&train),
        test: all.subset(&held_out),
        class_names: vec![],
    };
    let (a, b) = (all.subset(&indices(&ids, |id| id % 5 == 0)), all.subset(&indices(&ids, |id| id % 5 == 1)));
    Setup { splits, a, b }
}

fn probs(f: &Features, d: &Dataset) -> Vec<f32> {
    features::attribute_probs(f, &features::unit(&d.images)).unwrap()
}

#[test]
fn attribute_network_reads_faces_and_attribute_gap_tells_real_from_grey() {
    setup();
    let t0 = std::time::Instant::now();
    let s = setup_faces();
    let (train, test) = (&s.splits.train, &s.splits.test);
    assert!((550..=650).contains(&train.n) && (350..=450).contains(&test.n), "{} / {}", train.n, test.n);
    // 30 passes over ~600 faces (≈ 2 epochs' worth of the full training set): ~15 s.
    let recipe = Recipe { epochs: 30, batch_size: 32, lr: 1e-3, seed: 5 };
    let (net, meta) = attr_net::train(&s.splits, &recipe, false).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!((meta.kind, meta.classes, meta.attribute_names.len()), (NetKind::Attributes, 0, 40));
    let f = Features::in_memory(net.into(), meta);

    // Held-out accuracy, recomputed here from the probabilities and the annotations.
    let attrs = test.attributes.as_ref().unwrap();
    let k = attrs.k();
    let p = probs(&f, test);
    let mut acc = vec![0f64; k];
    for (row, y) in p.chunks(k).zip(attrs.values.chunks(k)) {
        for j in 0..k {
            acc[j] += f64::from(u8::from(row[j] > 0.5) == y[j]) / test.n as f64;
        }
    }
    for (a, b) in acc.iter().zip(&f.meta.attribute_accuracy) {
        assert!((a - b).abs() < 1e-9, "recorded accuracy {b} vs recomputed {a}");
    }
    let mean_acc = acc.iter().sum::<f64>() / k as f64;
    assert!((mean_acc - f.meta.test_accuracy).abs() < 1e-9);
    // Majority baseline: always answer each attribute's more common value on the held-out faces.
    let baseline = (0..k)
        .map(|j| {
            let r = attrs.values.chunks(k).filter(|y| y[j] == 1).count() as f64 / test.n as f64;
            r.max(1.0 - r)
        })
        .sum::<f64>()
        / k as f64;
    let male = attrs.index("Male").unwrap();
    eprintln!(
        "{} train / {} held-out faces, {secs:.1} s: mean accuracy {mean_acc:.4} vs majority {baseline:.4}; Male {:.3}",
        train.n, test.n, acc[male]
    );
    assert!(mean_acc > baseline, "mean held-out accuracy {mean_acc} does not beat the majority baseline {baseline}");
    assert!(acc[male] >= 0.7, "Male accuracy {}", acc[male]);

    // Two disjoint groups of real held-out people (~200 each): their attribute rates differ only
    // by sampling noise, |r̂ₐ − r̂ᵦ| ≈ √(r(1−r)·(1/200 + 1/200)) ≤ 0.05 per attribute at worst
    // (r = ½) and far less for rare attributes, so the mean over 40 stays well below 0.05.
    let (pa, pb) = (probs(&f, &s.a), probs(&f, &s.b));
    let real_gap = gap_of_probs(&pa, &pb, k).unwrap();
    // Constant grey images all get the same probabilities, so every attribute's rate among them
    // is 0 or 1 and its gap to a real rate r is r or 1 − r — at least min(r, 1 − r). The mean of
    // that bound over the attributes is the share of "minority" answers among real faces (gender,
    // smiling, open mouth, make-up… are near 50/50), far above sampling noise.
    let grey = vec![0.5f32; 200 * test.shape.len()];
    let pg = features::attribute_probs(&f, &grey).unwrap();
    let grey_gap = gap_of_probs(&pg, &pa, k).unwrap();
    let ra = rates(&pa, k).unwrap();
    let bound = ra.iter().map(|r| r.min(1.0 - r)).sum::<f64>() / k as f64;
    eprintln!(
        "attribute gap: real A vs real B {:.4} (worst {} {:.3}); grey vs real A {:.4} (bound {bound:.4})",
        real_gap.mean, f.meta.attribute_names[real_gap.worst], real_gap.worst_gap, grey_gap.mean
    );
    assert!(grey_gap.mean >= bound - 1e-12, "{} < {bound}", grey_gap.mean);
    assert!(real_gap.mean < 0.05, "real vs real attribute gap {}", real_gap.mean);
    assert!(grey_gap.mean > 0.15, "grey vs real attribute gap {}", grey_gap.mean);

    // `eval` wiring: held-out faces judged as samples against the held-out set, with class
    // coverage requested too. FID/KID/PRD run on the same 128-d features; coverage is skipped
    // with a note; the attribute task fills its block.
    let o = EvalOptions {
        metrics: vec![Metric::Fid, Metric::Kid, Metric::Prd, Metric::Coverage, Metric::Attributes],
        kid_subsets: 10,
        kid_subset_size: 100,
        ..Default::default()
    };
    let src = Source::Samples { images: features::unit(&s.a.images), origin: "held-out A".into() };
    let r = evaluate::evaluate(&src, &s.splits, Some(&f), &o).unwrap();
    assert!(r.fid.unwrap().is_finite() && r.kid.unwrap().is_finite() && r.precision.unwrap() > 0.5);
    assert_eq!((r.classes_covered, r.classifier_score, r.class_histogram.is_none()), (None, None, true));
    assert!(r.notes.coverage.as_deref().unwrap().starts_with("no class labels"));
    assert!(r.protocol.coverage.as_deref().unwrap().starts_with("no class labels"));
    assert_eq!(r.protocol.feature_network.as_ref().unwrap().kind.as_deref(), Some("attributes"));
    // The "samples" (A) and the real set (the first |A| held-out faces) are both real held-out
    // faces, so their gap is sampling noise as for A vs B above.
    let gap = r.attribute_gap.unwrap();
    assert!(gap < 0.05, "{gap}");
    let rates_block = r.attribute_rates.as_ref().unwrap();
    assert_eq!(rates_block.len(), 40);
    let worst = r.attribute_gap_worst.as_ref().unwrap();
    let max = rates_block.iter().map(|a| a.gap).fold(0.0, f64::max);
    assert_eq!(worst.gap, max);
    let mean = rates_block.iter().map(|a| a.gap).sum::<f64>() / 40.0;
    assert!((mean - gap).abs() < 1e-12);
    // Annotated rates are those of the first n_real held-out faces.
    let real = test.head(r.protocol.n_real);
    let ann = real.attributes.as_ref().unwrap();
    assert!((rates_block[male].annotated.unwrap() - ann.rate(male)).abs() < 1e-12);
    // The floor compares training faces (which the network was fit to) with held-out ones, so it
    // is not pure sampling noise here; still, real faces of either kind are far nearer each
    // other than grey is to them.
    assert!(r.attribute_gap_floor.unwrap() < grey_gap.mean, "{:?}", r.attribute_gap_floor);
    let t = evaluate::table(&r);
    assert!(t.contains("attribute gap (↓)") && t.contains("note (coverage): no class labels"), "{t}");
}

/// `load_or_train` trains an attribute network for a dataset with attributes and no labels,
/// caches it under its own name, and loads it back identical; a class network refuses
/// `attribute_probs`.
#[test]
fn attribute_network_is_cached_and_loads_back() {
    setup();
    let (all, ids) = faces(2000, 120, 16);
    let splits = Splits {
        name: "celeba-tiny".into(),
        train: all.subset(&indices(&ids, |id| id % 4 != 0)),
        test: all.subset(&indices(&ids, |id| id % 4 == 0)),
        class_names: vec![],
    };
    let data_dir = tempfile::tempdir().unwrap();
    let f = features::load_or_train(&splits, data_dir.path(), false, false).unwrap();
    assert_eq!(f.kind(), NetKind::Attributes);
    assert!(f.path.file_name().unwrap().to_string_lossy().contains("-attr-"), "{}", f.path.display());
    assert!(f.path.starts_with(std::env::var_os("LATENTLAB_CACHE").unwrap()), "{}", f.path.display());
    assert_eq!(f.attribute_names().len(), 40);
    assert_eq!(f.meta.attribute_accuracy.len(), 40);
    let acc = features::accuracy(&f, &splits.test).unwrap();
    assert!((acc - f.meta.test_accuracy).abs() < 1e-9);

    let again = features::load_or_train(&splits, data_dir.path(), false, false).unwrap();
    assert_eq!(again.meta, f.meta, "loaded from the cache, not retrained");
    let (ea, eb) = (f.embed_dataset(&splits.test).unwrap(), again.embed_dataset(&splits.test).unwrap());
    assert_eq!((ea.features, ea.probs, ea.kind, ea.classes), (eb.features, eb.probs, NetKind::Attributes, 40));

    let digits = latentlab::data::load("digits", Some(&celeba().join(".."))).unwrap();
    let (net, meta) =
        features::train(&digits, &Recipe { epochs: 1, batch_size: 128, lr: 1e-3, seed: 1 }, false).unwrap();
    let class_net = Features::in_memory(net.into(), meta);
    assert_eq!(class_net.embed_dataset(&digits.test).unwrap().kind, NetKind::Classes);
    let err = features::attribute_probs(&class_net, &features::unit(&digits.test.images)).unwrap_err();
    assert!(err.to_string().contains("class network"), "{err}");
}

/// The standard recipe on all of the CelebA folder at 64 px (the cached network `eval` uses):
/// prints per-attribute held-out accuracy and the training time. Minutes; run by hand with
/// `cargo test --release --test face_features -- --ignored --nocapture`.
#[test]
#[ignore]
fn standard_recipe_on_celeba_64() {
    setup();
    let cache = tempfile::tempdir().unwrap();
    let splits = latentlab::data::celeba::load(&celeba(), Some(64), Some(3), Some(cache.path())).unwrap();
    eprintln!("{} train / {} test faces", splits.train.n, splits.test.n);
    let t0 = std::time::Instant::now();
    let (_, meta) = attr_net::train(&splits, &attr_net::standard_recipe(&splits), true).unwrap();
    let attrs = splits.test.attributes.as_ref().unwrap();
    let mut majority = 0.0;
    for (j, (name, acc)) in meta.attribute_names.iter().zip(&meta.attribute_accuracy).enumerate() {
        let r = attrs.rate(j);
        majority += r.max(1.0 - r) / attrs.k() as f64;
        eprintln!("{name:<22} {acc:.3}  (majority {:.3})", r.max(1.0 - r));
    }
    eprintln!("mean {:.4} (majority {majority:.4}); {:.0} s", meta.test_accuracy, t0.elapsed().as_secs_f64());
}
