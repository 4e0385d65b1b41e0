use super::*;

#[test]
fn shuffling_is_a_permutation_fixed_by_seed() {
    let d = Dataset {
        images: (0..50).map(|i| i as u8).collect(),
        labels: None,
        n: 50,
        shape: ImageShape { channels: 1, height: 1, width: 1 },
        num_classes: 0,
        attributes: None,
    };
    let l = Loader::new(&d, 8, Binarize::None, Range::Unit, 3);
    let o = l.order(0);
    let mut s = o.clone();
    s.sort();
    assert_eq!(s, (0..50).collect::<Vec<_>>());
    assert_eq!(o, l.order(0));
    assert_ne!(o, l.order(1));
    assert_eq!(l.batches_per_epoch(), 7);
    assert_eq!(l.batch(&o, 6, 0).n, 2);
}

#[test]
fn dynamic_binarisation_is_bernoulli_of_the_pixel() {
    let d = Dataset {
        images: vec![64; 20000],
        labels: None,
        n: 1,
        shape: ImageShape { channels: 1, height: 100, width: 200 },
        num_classes: 0,
        attributes: None,
    };
    let l = Loader::new(&d, 1, Binarize::Dynamic, Range::Unit, 1);
    let b = l.batch(&[0], 0, 0);
    assert!(b.x.iter().all(|&v| v == 0.0 || v == 1.0));
    let mean = b.x.iter().sum::<f32>() / b.x.len() as f32;
    assert!((mean - 64.0 / 255.0).abs() < 0.02, "{mean}");
    // resampled per step, identical for the same step
    assert_ne!(b.x, l.batch(&[0], 0, 1).x);
    assert_eq!(b.x, l.batch(&[0], 0, 0).x);
    let sym = Loader::new(&d, 1, Binarize::None, Range::Symmetric, 1).batch(&[0], 0, 0);
    assert!((sym.x[0] - (64.0 / 127.5 - 1.0)).abs() < 1e-6);
}
