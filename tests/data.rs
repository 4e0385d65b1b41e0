//! The dataset layer on the real files in ../shared/data.

mod common;
use common::shared_data;
use latentlab::data;

#[test]
fn mnist_loads_with_the_published_counts() {
    let s = data::load("mnist", Some(&shared_data())).unwrap();
    assert_eq!((s.train.n, s.test.n), (60000, 10000));
    assert_eq!((s.train.shape.height, s.train.shape.width, s.train.num_classes), (28, 28, 10));
    let mut counts = [0usize; 10];
    for &l in s.test.labels.as_ref().unwrap() {
        counts[l as usize] += 1;
    }
    // From the dataset README (test label counts 0–9).
    assert_eq!(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    assert_eq!(*s.train.images.iter().max().unwrap(), 255);
}

#[test]
fn fashion_and_digits_load() {
    let f = data::load("fashion-mnist", Some(&shared_data())).unwrap();
    assert_eq!((f.train.n, f.test.n), (60000, 10000));
    assert_eq!(f.class_names[9], "Ankle boot");
    let d = data::load("digits", Some(&shared_data())).unwrap();
    assert_eq!(d.train.n + d.test.n, 1797);
    assert_eq!((d.train.shape.height, d.train.shape.width), (8, 8));
    assert_eq!(*d.train.images.iter().max().unwrap(), 255); // 16 → 255
}

#[test]
fn idx_path_with_labels_beside_it_and_a_held_out_split() {
    let dir = tempfile::tempdir().unwrap();
    // A small IDX pair written from real MNIST test images, without a t10k sibling.
    let s = data::load("mnist", Some(&shared_data())).unwrap();
    let head = s.test.head(50);
    let img = dir.path().join("my-images-idx3-ubyte.gz");
    data::idx::write(&img, &[50, 28, 28], &head.images).unwrap();
    data::idx::write(&dir.path().join("my-labels-idx1-ubyte.gz"), &[50], head.labels.as_ref().unwrap()).unwrap();
    let p = data::load(img.to_str().unwrap(), None).unwrap();
    assert_eq!((p.train.n, p.test.n), (45, 5));
    assert_eq!(p.train.image(3), head.image(3));
    assert_eq!(p.test.labels.as_ref().unwrap()[..], head.labels.as_ref().unwrap()[45..]);
    // The official layout: train-* gets its t10k-* sibling as the test set.
    let t = data::load(shared_data().join("mnist/train-images-idx3-ubyte.gz").to_str().unwrap(), None).unwrap();
    assert_eq!((t.train.n, t.test.n), (60000, 10000));
}

#[test]
fn missing_and_unknown_datasets_are_named() {
    let empty = tempfile::tempdir().unwrap();
    let e = data::load("mnist", Some(empty.path())).unwrap_err().to_string();
    assert!(e.contains("dataset 'mnist' not found") && e.contains("data fetch mnist"), "{e}");
    let e = data::load("cifar-77", Some(empty.path())).unwrap_err().to_string();
    assert!(e.contains("unknown dataset 'cifar-77'"), "{e}");
    // A truncated real file: named, not a panic.
    let bytes = std::fs::read(shared_data().join("mnist/t10k-labels-idx1-ubyte.gz")).unwrap();
    let p = empty.path().join("cut-images-idx3-ubyte.gz");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = data::load(p.to_str().unwrap(), None).unwrap_err().to_string();
    assert!(e.contains("cut-images-idx3-ubyte.gz") && e.contains("gzip"), "{e}");
}
