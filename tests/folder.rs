//! Beyond MNIST: a folder of rendered shapes (PNG and JPEG, RGB, class = subfolder) and the
//! CIFAR-10 binary format, both generated here; DCGAN and VAE train on 32×32 RGB.

mod common;
use common::*;
use latentlab::data::{self, cifar, folder};
use std::path::Path;

/// `n` images per class of filled circles / squares in random colours on a dark background.
fn render_shapes(root: &Path, n: usize) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for class in ["circles", "squares"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..n {
            let (w, h) = (48u32, 40u32);
            let colour = image::Rgb([rng.random_range(80..255), rng.random_range(80..255), rng.random_range(80..255)]);
            let (cx, cy, r) = (rng.random_range(16..32i32), rng.random_range(14..26i32), rng.random_range(6..12i32));
            let img = image::RgbImage::from_fn(w, h, |x, y| {
                let (dx, dy) = (x as i32 - cx, y as i32 - cy);
                let inside =
                    if class == "circles" { dx * dx + dy * dy <= r * r } else { dx.abs() <= r && dy.abs() <= r };
                if inside { colour } else { image::Rgb([20, 20, 30]) }
            });
            let ext = if i % 5 == 0 { "jpg" } else { "png" };
            img.save(root.join(class).join(format!("{i:03}.{ext}"))).unwrap();
        }
    }
}

#[test]
fn a_folder_of_images_loads_resized_cropped_and_labelled() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    render_shapes(&root, 30);
    let cache = dir.path().join("cache");
    let s = folder::load(&root, Some(32), Some(3), Some(&cache)).unwrap();
    assert_eq!(s.class_names, vec!["circles", "squares"]);
    assert_eq!((s.train.n, s.test.n), (54, 6));
    assert_eq!(s.train.shape, data::ImageShape { channels: 3, height: 32, width: 32 });
    assert_eq!(s.train.num_classes, 2);
    let labels = s.train.labels.as_ref().unwrap();
    assert!(labels.contains(&0) && labels.contains(&1));
    // Cached: the second load reads the cache file and gives the same bytes.
    let files: Vec<_> = std::fs::read_dir(cache.join("folders")).unwrap().collect();
    assert_eq!(files.len(), 1);
    let again = folder::load(&root, Some(32), Some(3), Some(&cache)).unwrap();
    assert_eq!(again.train.images, s.train.images);
    // Grey: one channel.
    let g = folder::load(&root, Some(16), Some(1), None).unwrap();
    assert_eq!(g.train.shape, data::ImageShape { channels: 1, height: 16, width: 16 });
}

#[test]
fn decode_resizes_the_shorter_side_and_crops_the_centre() {
    let dir = tempfile::tempdir().unwrap();
    // 64×32: left half red, right half blue. Shorter side is already 32, so the crop is x 16..48.
    let img =
        image::RgbImage::from_fn(64, 32, |x, _| if x < 32 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) });
    let p = dir.path().join("half.png");
    img.save(&p).unwrap();
    let v = folder::decode(&p, 32, 3).unwrap();
    let plane = 32 * 32;
    assert_eq!(v.len(), 3 * plane);
    assert_eq!((v[0], v[2 * plane]), (255, 0), "left edge of the crop is red");
    assert_eq!((v[31], v[2 * plane + 31]), (0, 255), "right edge of the crop is blue");
    // Downscaled by 2 to 16×32 → crop 16×16: same halves.
    let v = folder::decode(&p, 16, 3).unwrap();
    assert_eq!((v[0], v[2 * 256 + 15]), (255, 255));
}

#[test]
fn bad_folders_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = folder::load(&empty, None, None, None).unwrap_err().to_string();
    assert!(e.contains("empty") && e.contains("no PNG or JPEG"), "{e}");
    let bad = dir.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("a.png"), b"not a png at all").unwrap();
    std::fs::write(bad.join("b.png"), b"nor this").unwrap();
    let e = format!("{:#}", folder::load(&bad, Some(32), Some(3), None).unwrap_err());
    assert!(e.contains(".png") && e.contains("cannot decode"), "{e}");
    render_shapes(&dir.path().join("ok"), 2);
    let e = folder::load(&dir.path().join("ok"), Some(32), Some(2), None).unwrap_err().to_string();
    assert!(e.contains("--channels"), "{e}");
    // Fixed-shape datasets refuse a resize.
    let e = data::load_with("digits", Some(&shared_data()), &data::Transform { image_size: Some(32), channels: None })
        .unwrap_err()
        .to_string();
    assert!(e.contains("--image-size") && e.contains("8×8"), "{e}");
}

#[test]
fn dcgan_and_vae_train_on_32x32_rgb_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shapes");
    render_shapes(&root, 20);
    for (name, model, arch) in [("dcgan", "dcgan", "mlp"), ("vae", "vae", "mlp"), ("conv-vae", "vae", "conv")] {
        let run = dir.path().join(name);
        let r = run.to_str().unwrap();
        let mut args =
            vec!["train", model, "--dataset", root.to_str().unwrap(), "--image-size", "32", "--channels", "3"];
        args.extend(["--max-steps", "6", "--batch-size", "16", "--out", r]);
        if model == "vae" {
            args.extend(["--arch", arch]);
        }
        let (ok, _, err) = cli(&args, dir.path());
        assert!(ok, "{name}: {err}");
        let png = image::open(run.join("final/samples.png")).unwrap().to_rgb8();
        // Colour grid: some pixel has differing channels.
        assert!(png.pixels().any(|p| p.0[0] != p.0[1] || p.0[1] != p.0[2]), "{name}: grid is grey");
        let npy = dir.path().join(format!("{name}.npy"));
        let (ok, _, err) = cli(&["sample", r, "--n", "4", "--out", npy.to_str().unwrap()], dir.path());
        assert!(ok, "{err}");
        let (dims, _) = latentlab::viz::grid::read_npy(&npy).unwrap();
        assert_eq!(dims, vec![4, 3, 32, 32]);
        // The run remembers its transform: resume reloads the folder the same way.
        let (ok, _, err) = cli(&["resume", r, "--max-steps", "8"], dir.path());
        assert!(ok, "{name} resume: {err}");
    }
}

fn cifar_records(n: usize, seed: u8) -> Vec<u8> {
    let mut b = Vec::with_capacity(n * cifar::RECORD);
    for i in 0..n {
        b.push((i % 10) as u8);
        b.extend((0..3072).map(|p| (p as u8).wrapping_mul(seed).wrapping_add(i as u8)));
    }
    b
}

#[test]
fn cifar10_binary_batches_load_and_bad_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("cifar10/cifar-10-batches-bin");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("data_batch_1.bin"), cifar_records(20, 3)).unwrap();
    std::fs::write(d.join("data_batch_2.bin"), cifar_records(10, 5)).unwrap();
    std::fs::write(d.join("test_batch.bin"), cifar_records(5, 7)).unwrap();
    let s = data::load("cifar10", Some(dir.path())).unwrap();
    assert_eq!((s.train.n, s.test.n), (30, 5));
    assert_eq!(s.train.shape, data::ImageShape { channels: 3, height: 32, width: 32 });
    assert_eq!(s.class_names[0], "airplane");
    assert_eq!(s.train.labels.as_ref().unwrap()[13], 3);
    // Record 0 of batch 1: pixel p is p·3 (wrapping); the red plane comes first.
    assert_eq!(&s.train.images[..4], &[0, 3, 6, 9]);
    // Also by path.
    assert_eq!(data::load(d.to_str().unwrap(), None).unwrap().train.n, 30);

    std::fs::write(d.join("test_batch.bin"), &cifar_records(5, 7)[..1000]).unwrap();
    let e = data::load("cifar10", Some(dir.path())).unwrap_err().to_string();
    assert!(e.contains("test_batch.bin") && e.contains("1000 bytes"), "{e}");
    let mut bad = cifar_records(2, 1);
    bad[cifar::RECORD] = 12;
    std::fs::write(d.join("test_batch.bin"), bad).unwrap();
    let e = data::load("cifar10", Some(dir.path())).unwrap_err().to_string();
    assert!(e.contains("record 1") && e.contains("label 12"), "{e}");
    let e = data::load("cifar10", Some(&dir.path().join("nowhere"))).unwrap_err().to_string();
    assert!(e.contains("cifar10") && e.contains("cifar-10-binary.tar.gz"), "{e}");
}

#[test]
fn conv_vae_learns_and_is_refused_where_it_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("cv");
    let (ok, _, err) = cli(
        &["train", "vae", "--arch", "conv", "--dataset", "digits", "--epochs", "4", "--out", run.to_str().unwrap()],
        dir.path(),
    );
    assert!(ok, "{err}");
    let epochs: Vec<f64> = latentlab::train::log::read(&run.join("metrics.jsonl"))
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "epoch")
        .map(|m| m["test"]["loss"].as_f64().unwrap())
        .collect();
    assert!(epochs[3] < epochs[0] - 1.0, "conv VAE test loss did not fall: {epochs:?}");
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(cfg.contains("arch = \"conv\""), "{cfg}");
    let (ok, _, err) = cli(&["train", "gan", "--arch", "conv", "--dataset", "digits", "--max-steps", "1"], dir.path());
    assert!(!ok && err.contains("--arch does not apply to model 'gan'"), "{err}");
}
