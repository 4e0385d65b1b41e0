//! Sample arrays as users save them (`eval --samples`): every form written by the real numpy
//! (tests/arrays.py) loads as the same float32 N×C×H×W values; bad values and shapes are named
//! errors; and `eval` scores a channels-last uint8 .npz end to end. Python as in tests/interop.rs:
//! $LATENTLAB_PYTHON, else target/pyenv/bin/python, else python3, with numpy;
//! LATENTLAB_SKIP_PYTHON=1 skips the tests that need it.

mod common;
use common::*;
use latentlab::data::ImageShape;
use latentlab::data::arrays::{Layout, load_samples};
use latentlab::eval::evaluate::check_samples;
use std::path::{Path, PathBuf};

fn python() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates: Vec<PathBuf> = std::env::var_os("LATENTLAB_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([manifest.join("target/pyenv/bin/python"), PathBuf::from("python3")])
        .collect();
    for c in candidates {
        let ok = std::process::Command::new(&c).args(["-c", "import numpy"]).output().is_ok_and(|o| o.status.success());
        if ok {
            return Some(c);
        }
    }
    if std::env::var("LATENTLAB_SKIP_PYTHON").is_ok_and(|v| v == "1") {
        eprintln!("LATENTLAB_SKIP_PYTHON=1: skipping the numpy array check");
        return None;
    }
    panic!("this test needs Python with numpy (pip install numpy), or LATENTLAB_SKIP_PYTHON=1");
}

/// Run tests/arrays.py into `dir` (with extra arguments); None when Python is skipped.
fn numpy_writes(dir: &Path, extra: &[&str]) -> Option<()> {
    let py = python()?;
    let out = std::process::Command::new(py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/arrays.py"))
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("ok arrays"), "arrays.py failed:\n{text}");
    Some(())
}

const RGB: ImageShape = ImageShape { channels: 3, height: 4, width: 5 };
const GRAY: ImageShape = ImageShape { channels: 1, height: 4, width: 5 };

fn reference(path: &Path) -> Vec<f32> {
    let b =
        std::fs::read(path.with_extension(format!("{}.ref.f32", path.extension().unwrap().to_str().unwrap()))).unwrap();
    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn every_numpy_form_loads_as_the_same_nchw_float32() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(()) = numpy_writes(d, &[]) else { return };
    use Layout::*;
    #[rustfmt::skip]
    let cases = [
        ("f32_nchw.npy", None, RGB, Nchw), ("f64_nchw.npy", None, RGB, Nchw), ("f16_nchw.npy", None, RGB, Nchw),
        ("f32_nhwc.npy", None, RGB, Nhwc), ("f64_nhwc.npy", None, RGB, Nhwc),
        ("u8_nchw.npy", None, RGB, Nchw), ("u8_nhwc.npy", None, RGB, Nhwc),
        ("f32_nhw.npy", None, GRAY, Nhw), ("u8_nhw.npy", None, GRAY, Nhw),
        ("be_f4_nchw.npy", None, RGB, Nchw), ("be_f8_nhwc.npy", None, RGB, Nhwc), ("be_f2_nchw.npy", None, RGB, Nchw),
        ("fortran_f32_nchw.npy", None, RGB, Nchw), ("fortran_u8_nhwc.npy", None, RGB, Nhwc),
        ("fortran_f64_nhw.npy", None, GRAY, Nhw),
        ("one_key.npz", None, RGB, Nchw), ("compressed_u8_nhwc.npz", None, RGB, Nhwc),
        ("several_keys.npz", Some("images"), RGB, Nhwc),
    ];
    for (file, key, shape, layout) in cases {
        let p = d.join(file);
        let s = load_samples(&p, key, shape, None).unwrap_or_else(|e| panic!("{file}: {e:#}"));
        let want = reference(&p);
        assert_eq!((s.layout, s.n, s.images.len()), (layout, 2, want.len()), "{file}");
        // uint8 / 255 may round differently in f32 and in numpy's f64: one ulp.
        let worst = s.images.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-7, "{file}: differs from numpy's values by {worst}");
        assert!(s.note.contains(file) && s.note.contains(&layout.name()[..4]), "{file}: {}", s.note);
        check_samples(&[s.n, shape.channels, shape.height, shape.width], &s.images, shape, &p, s.layout).unwrap();
    }
    let s = load_samples(&d.join("u8_nhwc.npy"), None, RGB, None).unwrap();
    assert!(s.note.contains("uint8") && s.note.contains("1/255"), "{}", s.note);
    let s = load_samples(&d.join("be_f8_nhwc.npy"), None, RGB, None).unwrap();
    assert!(s.note.contains("float64 (big-endian)"), "{}", s.note);
}

#[test]
fn npz_keys_are_chosen_or_listed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(()) = numpy_writes(d, &[]) else { return };
    let several = d.join("several_keys.npz");
    let e = format!("{:#}", load_samples(&several, None, RGB, None).unwrap_err());
    assert!(e.contains("several_keys.npz") && e.contains("--key"), "{e}");
    assert!(e.contains("'labels'") && e.contains("'images'") && e.contains("'z'"), "{e}");
    let e = format!("{:#}", load_samples(&several, Some("nope"), RGB, None).unwrap_err());
    assert!(e.contains("no array 'nope'") && e.contains("'images'"), "{e}");
    // `z` is float64 NCHW: a key chooses any array, not only the first.
    let s = load_samples(&several, Some("z"), RGB, None).unwrap();
    assert_eq!(s.layout, Layout::Nchw);
    let e = format!("{:#}", load_samples(&d.join("f32_nchw.npy"), Some("x"), RGB, None).unwrap_err());
    assert!(e.contains("f32_nchw.npy") && e.contains(".npz"), "{e}");
}

#[test]
fn bad_values_and_shapes_name_the_file_the_place_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(()) = numpy_writes(d, &[]) else { return };
    let dims = [2, 3, 4, 5];
    // NaN at numpy index [1, 2, 3, 0] of an N×H×W×C array: flat 99; image 1, channel 0, row 2, col 3.
    let p = d.join("nan_nhwc.npy");
    let s = load_samples(&p, None, RGB, None).unwrap();
    let e = check_samples(&dims, &s.images, RGB, &p, s.layout).unwrap_err().to_string();
    assert!(e.contains("nan_nhwc.npy") && e.contains("[1, 2, 3, 0]") && e.contains("flat index 99"), "{e}");
    assert!(e.contains("image 1, channel 0, row 2, column 3") && e.contains("not a finite number"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    // 1.5 at [0, 1, 2, 3] of N×C×H×W: flat 33; the range found ends at 1.5.
    let p = d.join("range_nchw.npy");
    let s = load_samples(&p, None, RGB, None).unwrap();
    let e = check_samples(&dims, &s.images, RGB, &p, s.layout).unwrap_err().to_string();
    assert!(e.contains("range_nchw.npy") && e.contains("value 1.5 at index [0, 1, 2, 3]"), "{e}");
    assert!(e.contains("flat index 33") && e.contains("outside [0, 1]") && e.contains(", 1.5]"), "{e}");
    // N×W×H×C fits no layout: both shapes are named.
    let e = format!("{:#}", load_samples(&d.join("wrong_shape.npy"), None, RGB, None).unwrap_err());
    assert!(e.contains("wrong_shape.npy") && e.contains("[2, 5, 4, 3]") && e.contains("3×4×5"), "{e}");
    assert!(e.contains("N×3×4×5 (NCHW)") && e.contains("N×4×5×3 (NHWC)"), "{e}");
    // A layout that does not fit is refused, naming the shape it needs.
    let e = format!("{:#}", load_samples(&d.join("f32_nchw.npy"), None, RGB, Some(Layout::Nhwc)).unwrap_err());
    assert!(e.contains("[2, 3, 4, 5]") && e.contains("[2, 4, 5, 3]"), "{e}");
}

#[test]
fn ambiguous_shapes_assume_nchw_and_the_layout_flag_overrides() {
    // 3×3×3 images: N×3×3×3 fits both NCHW and NHWC. No Python needed.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cube.npy");
    let shape = ImageShape { channels: 3, height: 3, width: 3 };
    let v: Vec<f32> = (0..54).map(|i| i as f32 / 53.0).collect();
    latentlab::viz::grid::save_npy(&v, shape, &p).unwrap();
    let s = load_samples(&p, None, shape, None).unwrap();
    assert_eq!((s.layout, &s.images), (Layout::Nchw, &v));
    assert!(s.note.contains("ambiguous") && s.note.contains("--layout"), "{}", s.note);
    let s = load_samples(&p, None, shape, Some(Layout::Nhwc)).unwrap();
    assert_eq!(s.layout, Layout::Nhwc);
    // Image 1, channel 2, row 1, column 2 is N×C×H×W element 27 + 18 + 3 + 2; channels-last
    // stored it at 27 + 1·9 + 2·3 + 2.
    assert_eq!(s.images[27 + 18 + 3 + 2], v[27 + 9 + 6 + 2]);
    assert!(!s.note.contains("ambiguous"), "{}", s.note);
}

#[test]
fn eval_scores_a_channels_last_uint8_npz_written_by_numpy() {
    let data = latentlab::data::load("digits", Some(&shared_data())).unwrap();
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("eval-cache");
    latentlab::eval::features::load_or_train(&data, &cache, false, false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raw = d.join("digits.u8");
    std::fs::write(&raw, &data.test.images).unwrap();
    let n = data.test.n.to_string();
    let Some(()) = numpy_writes(d, &[raw.to_str().unwrap(), &n]) else { return };
    let npz = d.join("digits_nhwc.npz");
    let out = d.join("e.json");
    let args = ["eval", "--samples", npz.to_str().unwrap(), "--dataset", "digits", "--metrics", "fid"];
    let (ok, _, err) = cli_env(&args, d, &[("LATENTLAB_CACHE", &cache)]);
    assert!(!ok && err.contains("'images'") && err.contains("'labels'") && err.contains("--key"), "{err}");
    let args = [&args[..], &["--key", "images", "--out", out.to_str().unwrap()]].concat();
    let (ok, stdout, err) = cli_env(&args, d, &[("LATENTLAB_CACHE", &cache)]);
    assert!(ok, "{err}");
    assert!(err.contains("digits_nhwc.npz['images']: uint8") && err.contains("NHWC"), "{err}");
    assert!(stdout.contains("FID"), "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    // The test set itself, so the same FID as its float32 NCHW copy: zero.
    assert!(v["fid"].as_f64().unwrap().abs() < 1e-6, "FID of the test set with itself: {}", v["fid"]);
}
