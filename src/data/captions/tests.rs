use super::*;
use crate::data::ImageShape;
use std::sync::OnceLock;

const SHAPE: ImageShape = ImageShape { channels: 1, height: 28, width: 28 };

/// A 28×28 image with a 3 px wide vertical bar over rows 2..26 whose column shifts by `shear` px
/// per row going up (positive: top leans right).
fn bar(shear: f32) -> Vec<u8> {
    let mut img = vec![0u8; 28 * 28];
    for y in 2..26 {
        let off = ((14.0 - y as f32) * shear).round() as i32;
        for x in 0..3 {
            img[y * 28 + (12 + off + x) as usize] = 255;
        }
    }
    img
}

#[test]
fn a_vertical_bar_is_3_px_thick_and_upright() {
    let [thick, slant, width] = measure(AttributeSet::Handwriting, &bar(0.0), SHAPE);
    assert!((thick - 3.0).abs() < 0.2 * 3.0, "{thick}");
    assert!(slant.abs() < 1e-6, "{slant}");
    assert!((width - 3.0 / 28.0).abs() < 1e-6, "{width}");
}

#[test]
fn a_sheared_bar_is_slanted_the_way_it_leans() {
    let right = measure(AttributeSet::Handwriting, &bar(0.5), SHAPE)[1];
    let left = measure(AttributeSet::Handwriting, &bar(-0.5), SHAPE)[1];
    assert!(right > 0.3, "{right}");
    assert!(left < -0.3, "{left}");
}

#[test]
fn box_width_size_and_shade_including_colour() {
    // Columns 5..=14 (10 px), rows 3..=8 (6 px), grey 200.
    let mut img = vec![0u8; 28 * 28];
    for y in 3..9 {
        for x in 5..15 {
            img[y * 28 + x] = 200;
        }
    }
    let [shade, size, width] = measure(AttributeSet::Objects, &img, SHAPE);
    assert!((width - 10.0 / 28.0).abs() < 1e-6, "{width}");
    assert!((size - 60.0 / 784.0).abs() < 1e-6, "{size}");
    assert!((shade - 200.0 / 255.0).abs() < 1e-6, "{shade}");
    assert_eq!(measure(AttributeSet::Handwriting, &img, SHAPE)[2], width);
    // RGB: (255, 0, 255) has mean 170 (ink), (255, 0, 0) has mean 85 (not ink).
    let plane = 4 * 4;
    let mut rgb = vec![0u8; 3 * plane];
    for i in 0..plane {
        rgb[i] = 255;
        if i % 4 < 2 {
            rgb[2 * plane + i] = 255;
        }
    }
    let s = ImageShape { channels: 3, height: 4, width: 4 };
    let [shade, size, width] = measure(AttributeSet::Objects, &rgb, s);
    // The column beside the ink (mean 85) counts 85/170 of a column in the sub-pixel width.
    assert_eq!((size, width), (0.5, 2.5 / 4.0));
    assert!((shade - 170.0 / 255.0).abs() < 1e-6, "{shade}");
    // Blank, and too short for its shape: zeros, no panic.
    assert_eq!(measure(AttributeSet::Handwriting, &[0; 784], SHAPE), [0.0; 3]);
    assert_eq!(measure(AttributeSet::Handwriting, &[255; 5], SHAPE), [0.0; 3]);
}

fn mnist() -> &'static Splits {
    static S: OnceLock<Splits> = OnceLock::new();
    S.get_or_init(|| crate::data::load("mnist", None).expect("MNIST under LATENTLAB_DATA"))
}

#[test]
fn mnist_terciles_split_each_class_in_thirds() {
    let train = &mnist().train;
    let th = Thresholds::fit(AttributeSet::Handwriting, train).unwrap();
    assert_eq!(th.cuts.len(), 10);
    let m = measure_all(AttributeSet::Handwriting, train);
    let labels = train.labels.as_ref().unwrap();
    let names = AttributeSet::Handwriting.attributes();
    for c in 0..10 {
        let idx: Vec<usize> = (0..train.n).filter(|&i| labels[i] as usize == c).collect();
        for (a, (name, _)) in names.iter().enumerate() {
            let share =
                |l: Level| idx.iter().filter(|&&i| th.level(c, a, m[i][a]) == l).count() as f64 / idx.len() as f64;
            let (lo, hi) = (share(Level::Low), share(Level::High));
            eprintln!("class {c} {name}: low {:.3} high {:.3} cuts {:?}", lo, hi, th.cuts[c][a]);
            assert!((0.30..=0.37).contains(&lo) && (0.30..=0.37).contains(&hi), "class {c} {name}: {lo} {hi}");
        }
    }
    // Sanity: the thin ones really are thinner than the thick ones.
    let ones: Vec<usize> = (0..train.n).filter(|&i| labels[i] == 1).collect();
    let mean_at = |l: Level| {
        let v: Vec<f32> = ones.iter().filter(|&&i| th.level(1, 0, m[i][0]) == l).map(|&i| m[i][0]).collect();
        v.iter().sum::<f32>() / v.len() as f32
    };
    assert!(mean_at(Level::Low) < mean_at(Level::High));
}

#[test]
fn captions_are_generated_for_all_of_mnist() {
    let s = mnist();
    let t = for_splits("mnist", s).unwrap();
    assert_eq!((t.train.len(), t.test.len()), (s.train.n, s.test.n));
    assert!(t.train.iter().chain(&t.test).all(|c| c.len() >= 2));
    assert_eq!(t.thresholds.as_ref().map(|t| t.set), Some(AttributeSet::Handwriting));
    let labels = s.train.labels.as_ref().unwrap();
    for i in [0, 1, 59_999] {
        let w = &t.class_words[labels[i] as usize];
        assert!(
            t.train[i].iter().all(|c| c.ends_with(w.as_str()) || c.contains(&format!(" {w} "))),
            "{:?}",
            t.train[i]
        );
    }
    let vocab = vocabulary(&t.train, false);
    for w in ["a", "an", "seven", "thick", "thin", "upright", "slanted", "narrow", "wide", "picture"] {
        assert!(vocab.binary_search(&w.to_string()).is_ok(), "{w} missing from {vocab:?}");
    }
    assert!(vocab.windows(2).all(|p| p[0] < p[1]));
}

#[test]
fn fashion_and_digits_get_their_attribute_sets() {
    for (name, set, word) in
        [("fashion-mnist", AttributeSet::Objects, "ankle boot"), ("digits", AttributeSet::Handwriting, "nine")]
    {
        let s = crate::data::load(name, None).unwrap();
        let t = for_splits(name, &s).unwrap();
        assert_eq!(t.thresholds.as_ref().unwrap().set, set);
        assert_eq!((t.train.len(), t.test.len()), (s.train.n, s.test.n));
        let labels = s.train.labels.as_ref().unwrap();
        let i = labels.iter().position(|&l| l == 9).unwrap();
        assert!(t.train[i].iter().all(|c| c.contains(word)), "{:?}", t.train[i]);
        let it = intent(&t.train[i][0], set, &t.class_words);
        assert_eq!(it.class, Some(9));
        let m = measure(set, s.train.image(i), s.train.shape);
        let hits = attribute_hits(&it, m, t.thresholds.as_ref().unwrap(), 0);
        assert!(hits.iter().all(|h| h.is_none_or(|h| h)), "{hits:?}");
    }
}

#[test]
fn one_mnist_image_reads_back_its_own_caption() {
    let s = mnist();
    let set = AttributeSet::Handwriting;
    let th = Thresholds::fit(set, &s.train).unwrap();
    let words = class_words(&s.class_names);
    // The first training image with no Mid attribute: every word is mentioned.
    let (i, m, levels) = (0..s.train.n)
        .map(|i| {
            let m = measure(set, s.train.image(i), s.train.shape);
            (i, m, th.levels(s.train.label(i).unwrap() as usize, m))
        })
        .find(|(_, _, l)| !l.contains(&Level::Mid))
        .unwrap();
    let class = s.train.label(i).unwrap() as usize;
    let ps = phrasings(set, &words[class], levels);
    assert_eq!(ps.len(), 5, "{ps:?}");
    let expected: Vec<&str> =
        set.attributes().iter().zip(levels).map(|((_, [lo, hi]), l)| if l == Level::Low { *lo } else { *hi }).collect();
    let all_words: Vec<&str> = set.attributes().iter().flat_map(|(_, w)| w.to_vec()).collect();
    for (k, p) in ps.iter().enumerate() {
        let toks = tokenize(p);
        let mentioned: Vec<&str> = all_words.iter().copied().filter(|w| toks.iter().any(|t| t == w)).collect();
        assert!(mentioned.iter().all(|w| expected.contains(w)), "{p}: {mentioned:?} vs {expected:?}");
        if k < 2 {
            assert_eq!(mentioned.len(), 3, "{p}");
        }
        let it = intent(p, set, &words);
        assert_eq!(it.class, Some(class), "{p}");
        for a in 0..ATTRS {
            assert!(it.levels[a].is_none_or(|l| l == levels[a]), "{p}: {:?} vs {levels:?}", it.levels);
        }
        if k < 2 {
            assert_eq!(it.levels, levels.map(Some), "{p}");
        }
        let hits = attribute_hits(&it, m, &th, 0);
        assert!(hits.iter().all(|h| h.is_none_or(|h| h)), "{p}: {hits:?}");
        assert_eq!(hits.iter().filter(|h| h.is_some()).count(), mentioned.len());
    }
    // A caption asking for the opposite levels misses on every attribute.
    let opposite: Vec<&str> =
        set.attributes().iter().zip(levels).map(|((_, [lo, hi]), l)| if l == Level::Low { *hi } else { *lo }).collect();
    let it = intent(&format!("a {} {}", opposite.join(" "), words[class]), set, &words);
    assert_eq!(attribute_hits(&it, m, &th, 0), [Some(false); 3]);
}

#[test]
fn phrasings_follow_the_rules() {
    use Level::*;
    let h = AttributeSet::Handwriting;
    assert_eq!(
        phrasings(h, "seven", [High, High, Mid]),
        ["a thick slanted seven", "a seven that is thick and slanted", "a thick seven", "a slanted seven"]
    );
    assert_eq!(phrasings(h, "seven", [Mid, Mid, Mid]), ["a seven", "a picture of a seven"]);
    assert_eq!(phrasings(h, "eight", [Mid, Low, Mid]), ["an upright eight", "an eight that is upright"]);
    assert_eq!(phrasings(h, "one", [Mid; 3]), ["a one", "a picture of a one"]);
    assert_eq!(
        phrasings(AttributeSet::Objects, "ankle boot", [Low, High, Low]),
        [
            "a dark large narrow ankle boot",
            "an ankle boot that is dark, large and narrow",
            "a dark ankle boot",
            "a large ankle boot",
            "a narrow ankle boot"
        ]
    );
}

#[test]
fn class_words_and_attribute_sets() {
    let names: Vec<String> = ["0", "7", "T-shirt/top", "Ankle boot", "10"].iter().map(|s| s.to_string()).collect();
    assert_eq!(class_words(&names), ["zero", "seven", "t-shirt/top", "ankle boot", "10"]);
    assert_eq!(AttributeSet::for_dataset("mnist"), AttributeSet::Handwriting);
    assert_eq!(AttributeSet::for_dataset("digits"), AttributeSet::Handwriting);
    assert_eq!(AttributeSet::for_dataset("fashion-mnist"), AttributeSet::Objects);
    assert_eq!(AttributeSet::Objects.attributes()[0], ("shade", ["dark", "light"]));
}

#[test]
fn tokenize_lowercases_and_strips_punctuation() {
    assert_eq!(tokenize("A thick, slanted Seven."), ["a", "thick", "slanted", "seven"]);
    assert_eq!(tokenize("  a t-shirt/top! "), ["a", "t-shirt/top"]);
    assert_eq!(tokenize("thin,wide (zero)"), ["thin", "wide", "zero"]);
    assert!(tokenize(" ... -- ").is_empty());
}

#[test]
fn intent_prefers_the_longest_class_and_ignores_contradictions() {
    let words: Vec<String> = ["boot", "ankle boot", "bag"].iter().map(|s| s.to_string()).collect();
    let o = AttributeSet::Objects;
    let it = intent("A small, LIGHT ankle boot", o, &words);
    assert_eq!(it, Intent { class: Some(1), levels: [Some(Level::High), Some(Level::Low), None] });
    assert_eq!(intent("a boot", o, &words).class, Some(0));
    let it = intent("a dark and light bag that is wide", o, &words);
    assert_eq!(it, Intent { class: Some(2), levels: [None, None, Some(Level::High)] });
    assert_eq!(intent("something else", o, &words), Intent { class: None, levels: [None; 3] });
    // Class words are not read as attributes ("large" is part of the class here).
    let w2: Vec<String> = vec!["large dog".into()];
    assert_eq!(intent("a large dog", o, &w2).levels, [None; 3]);
    // No class in the caption: the fallback class decides the thresholds.
    let th = Thresholds { set: o, cuts: vec![[(0.2, 0.8); 3], [(0.5, 0.9); 3]] };
    let it = intent("a dark thing", o, &words);
    assert_eq!(attribute_hits(&it, [0.3, 0.0, 0.0], &th, 0), [Some(false), None, None]);
    assert_eq!(attribute_hits(&it, [0.3, 0.0, 0.0], &th, 1), [Some(true), None, None]);
}

#[test]
fn empty_classes_get_the_all_class_terciles() {
    let m: Vec<[f32; ATTRS]> = (0..30).map(|i| [i as f32; 3]).collect();
    let labels: Vec<u8> = (0..30).map(|i| if i < 15 { 0 } else { 2 }).collect();
    let th = Thresholds::from_measurements(AttributeSet::Objects, &m, &labels, 4);
    assert_eq!(th.cuts.len(), 4);
    assert_eq!(th.cuts[1], [(10.0, 20.0); 3]);
    assert_eq!(th.cuts[3], th.cuts[1]);
    assert_eq!(th.cuts[0], [(5.0, 10.0); 3]);
    assert_eq!(th.level(0, 0, 4.9), Level::Low);
    assert_eq!(th.level(0, 0, 5.0), Level::Mid);
    assert_eq!(th.level(0, 0, 10.0), Level::High);
    // Ties: a value held by half the class cannot be split, the cut lands on a side of it.
    let m: Vec<[f32; ATTRS]> = (0..12).map(|i| [if i < 6 { 1.0 } else { i as f32 }; 3]).collect();
    let th = Thresholds::from_measurements(AttributeSet::Objects, &m, &[0; 12], 1);
    assert_eq!(th.cuts[0][0], (6.0, 8.0));
}
