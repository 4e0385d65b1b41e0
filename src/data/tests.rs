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

#[test]
fn integer_binarisation_gives_the_float_tests_bits() {
    use crate::util::{Stream, rng};
    use rand::Rng;
    // Every grey level, at the edges of its threshold and over a stream of draws: the integer
    // test gives exactly the bits of `random::<f32>() * 255 < p`, the test runs were made with.
    let on = |m: u32, p: u8| (m as f32 / (1u32 << 24) as f32) * 255.0 < p as f32;
    let t = super::loader::thresholds();
    for p in 0..=255u8 {
        let th = t[p as usize];
        if th > 0 {
            assert!(on(th - 1, p), "level {p}: draw {} below the threshold must be on", th - 1);
        }
        if th < 1 << 24 {
            assert!(!on(th, p), "level {p}: draw {th} at the threshold must be off");
        }
    }
    let images: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut old = rng(7, Stream::Binarize, 3);
    let want: Vec<f32> =
        images.iter().map(|&p| if old.random::<f32>() * 255.0 < p as f32 { 1.0 } else { 0.0 }).collect();
    let mut r = rng(7, Stream::Binarize, 3);
    let mut got = Vec::new();
    binarize_into(&images, &mut r, (0.0, 1.0), &mut got);
    assert_eq!(got, want);
    // The stream ends where the sequential draws ended.
    assert_eq!(r.random::<u32>(), old.random::<u32>());
    let mut sym = Vec::new();
    binarize_into(&images, &mut rng(7, Stream::Binarize, 3), (-1.0, 1.0), &mut sym);
    assert_eq!(sym, want.iter().map(|v| v * 2.0 - 1.0).collect::<Vec<_>>());
    // A second stream from the same seed: the same bits, the same end.
    let mut serial = rng(7, Stream::Binarize, 3);
    let mut one = Vec::new();
    binarize_into(&images, &mut serial, (0.0, 1.0), &mut one);
    assert_eq!(one, want);
    assert_eq!(serial.get_word_pos(), rng(7, Stream::Binarize, 3).get_word_pos() + images.len() as u128);
}

/// Training's batch thread hands over exactly `Loader::batch`'s batches, from any batch of an
/// epoch (a resumed run starts mid-epoch), one step a batch, and stops when the epoch ends.
#[test]
fn prefetched_batches_are_the_loaders_own() {
    let n: usize = 300;
    let d = Dataset {
        images: (0..n * 784).map(|i| (i.wrapping_mul(2_654_435_761usize) >> 7) as u8).collect(),
        labels: Some((0..n).map(|i| (i % 10) as u8).collect()),
        n,
        shape: ImageShape { channels: 1, height: 28, width: 28 },
        num_classes: 10,
        attributes: None,
    };
    for binarize in [Binarize::Dynamic, Binarize::None] {
        let l = Loader::new(&d, 64, binarize, Range::Unit, 5);
        let order = l.order(2);
        for from in [0, 3] {
            let step = 1000 + from as u64;
            let got: Vec<Batch> = std::thread::scope(|s| l.prefetch(s, &order, from, step).iter().collect());
            assert_eq!(got.len(), l.batches_per_epoch() - from);
            for (k, b) in got.iter().enumerate() {
                let want = l.batch(&order, from + k, step + k as u64);
                assert_eq!((&b.x, &b.labels, &b.idx, b.n), (&want.x, &want.labels, &want.idx, want.n), "batch {k}");
            }
        }
    }
}
