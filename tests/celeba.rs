//! CelebA in its official layout, read from the real files in ../shared/data/celeba: small copies
//! (real images and annotation lines, plus rows for images not downloaded) check attributes, the
//! identity split, resolution and every malformed-file error; the shared folder itself loads at
//! 32 px with the attribute shares its README states.

mod common;
use latentlab::data::{self, Transform, celeba, folder};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn real() -> PathBuf {
    common::shared_data().join("celeba")
}

/// The real attribute file's lines (CR stripped): [0] count, [1] names, [i + 1] image i (1-based).
fn real_attr_lines() -> Vec<String> {
    std::fs::read_to_string(real().join("list_attr_celeba.txt")).unwrap().lines().map(String::from).collect()
}

fn real_identity_lines() -> Vec<String> {
    std::fs::read_to_string(real().join("identity_CelebA.txt")).unwrap().lines().map(String::from).collect()
}

/// Image `i`'s attribute values and identity, parsed with plain string splitting.
fn real_row(attr: &[String], i: usize) -> Vec<u8> {
    attr[i + 1].split_whitespace().skip(1).map(|v| u8::from(v == "1")).collect()
}
fn real_identity(ids: &[String], i: usize) -> u32 {
    ids[i - 1].split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Nothing goes to the user's cache: loads through `data::load_with` cache under target/.
fn use_test_cache() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("celeba-cache");
        // SAFETY: set once, before any test of this binary reads the environment through latentlab.
        unsafe { std::env::set_var("LATENTLAB_CACHE", dir) };
    });
}

/// A CelebA folder at `root` with real images 1..=`images`, real attribute rows 1..=`rows` (rows
/// beyond `images` stand for a partial download) and, if `identities`, real identity lines 1..=`rows`.
fn make(root: &Path, images: usize, rows: usize, identities: bool) {
    let imgs = root.join("img_align_celeba");
    std::fs::create_dir_all(&imgs).unwrap();
    for i in 1..=images {
        let name = format!("{i:06}.jpg");
        std::fs::copy(real().join("img_align_celeba").join(&name), imgs.join(&name)).unwrap();
    }
    let attr = real_attr_lines();
    let mut lines = vec![rows.to_string(), attr[1].clone()];
    lines.extend((1..=rows).map(|i| attr[i + 1].clone()));
    write_lines(&root.join("list_attr_celeba.txt"), &lines);
    if identities {
        let ids = real_identity_lines();
        write_lines(&root.join("identity_CelebA.txt"), &ids[..rows]);
    }
}

fn write_lines(p: &Path, lines: &[String]) {
    std::fs::write(p, lines.iter().map(|l| format!("{l}\r\n")).collect::<String>()).unwrap();
}

fn attr_lines(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join("list_attr_celeba.txt")).unwrap().lines().map(String::from).collect()
}

#[test]
fn a_partial_download_loads_real_attributes_with_an_identity_split() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("celeba");
    make(&root, 200, 250, true);
    let cache = dir.path().join("cache");
    let s = celeba::load(&root, Some(16), None, Some(&cache)).unwrap();
    assert_eq!(s.name, "celeba");
    assert!(s.class_names.is_empty() && s.train.labels.is_none() && s.train.num_classes == 0);
    assert_eq!(s.train.shape, data::ImageShape { channels: 3, height: 16, width: 16 });

    // The split, worked out here from the identity file: test = identity % 10 == 0, file order.
    let (attr, ids) = (real_attr_lines(), real_identity_lines());
    let (test_imgs, train_imgs): (Vec<usize>, Vec<usize>) =
        (1..=200).partition(|&i| real_identity(&ids, i).is_multiple_of(10));
    assert_eq!((s.train.n, s.test.n), (train_imgs.len(), test_imgs.len()));
    assert!(!test_imgs.is_empty());
    let id_set = |v: &[usize]| v.iter().map(|&i| real_identity(&ids, i)).collect::<HashSet<_>>();
    assert!(id_set(&train_imgs).is_disjoint(&id_set(&test_imgs)));

    for (set, imgs) in [(&s.train, &train_imgs), (&s.test, &test_imgs)] {
        let a = set.attributes.as_ref().unwrap();
        assert_eq!(a.names, attr[1].split_whitespace().collect::<Vec<_>>());
        assert_eq!(a.k(), 40);
        for (j, &i) in imgs.iter().enumerate() {
            assert_eq!(a.row(j), real_row(&attr, i), "image {i}");
        }
        // Pixels in the same order as the attributes.
        let last = *imgs.last().unwrap();
        let path = root.join(format!("img_align_celeba/{last:06}.jpg"));
        assert_eq!(set.image(set.n - 1), folder::decode(&path, 16, 3).unwrap());
    }

    // Image 000001 (identity 2880, so in the test set): Smiling and Male as its line says.
    assert_eq!(real_identity(&ids, 1), 2880);
    let a = s.test.attributes.as_ref().unwrap();
    let fields: Vec<&str> = attr[2].split_whitespace().collect();
    assert_eq!(fields[0], "000001.jpg");
    let col = |name: &str| attr[1].split_whitespace().position(|n| n == name).unwrap();
    for name in ["Smiling", "Male", "Young"] {
        let want = u8::from(fields[1 + col(name)] == "1");
        assert_eq!(a.row(0)[a.index(name).unwrap()], want, "{name}");
        assert_eq!(a.index(&name.to_lowercase()), a.index(name));
    }

    // Cached: one file, and the second load gives the same bytes.
    assert_eq!(std::fs::read_dir(cache.join("celeba")).unwrap().count(), 1);
    let again = celeba::load(&root, Some(16), None, Some(&cache)).unwrap();
    assert_eq!((again.train.images, again.test.images), (s.train.images, s.test.images));

    // Grey on request.
    let g = celeba::load(&root, Some(16), Some(1), None).unwrap();
    assert_eq!(g.test.shape, data::ImageShape { channels: 1, height: 16, width: 16 });
}

#[test]
fn without_identities_every_tenth_image_is_held_out() {
    let dir = tempfile::tempdir().unwrap();
    make(dir.path(), 40, 45, false);
    let s = celeba::load(dir.path(), Some(8), None, None).unwrap();
    assert_eq!((s.train.n, s.test.n), (36, 4));
    let attr = real_attr_lines();
    let a = s.test.attributes.as_ref().unwrap();
    for (j, i) in [10, 20, 30, 40].into_iter().enumerate() {
        assert_eq!(a.row(j), real_row(&attr, i));
    }
}

#[test]
fn celeba_resolves_by_name_and_by_path_with_image_size() {
    use_test_cache();
    let dir = tempfile::tempdir().unwrap();
    make(&dir.path().join("celeba"), 30, 30, false);
    let t = Transform { image_size: Some(12), channels: None };
    let by_name = data::load_with("celeba", Some(dir.path()), &t).unwrap();
    let root = dir.path().join("celeba");
    let by_path = data::load_with(root.to_str().unwrap(), None, &t).unwrap();
    for s in [&by_name, &by_path] {
        assert_eq!(s.name, "celeba");
        assert_eq!(s.train.shape, data::ImageShape { channels: 3, height: 12, width: 12 });
        assert_eq!((s.train.n, s.test.n), (27, 3));
        assert!(s.train.attributes.is_some());
    }
    assert_eq!(by_name.train.images, by_path.train.images);

    let empty = tempfile::tempdir().unwrap();
    let e = format!("{:#}", data::load_with("celeba", Some(empty.path()), &t).unwrap_err());
    for part in [
        "dataset 'celeba' not found",
        &empty.path().join("celeba").display().to_string(),
        "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html",
        "img_align_celeba/",
        "list_attr_celeba.txt",
    ] {
        assert!(e.contains(part), "{part} missing from: {e}");
    }
}

/// A change to a CelebA folder's files.
type Edit = Box<dyn FnOnce(&Path)>;
/// A line's replacement (None drops it), given its 0-based index.
type LineEdit = fn(usize, &str) -> Option<String>;

/// Load a 5-image folder after `edit` changed its files; the error message.
fn error_after(edit: impl FnOnce(&Path)) -> String {
    let dir = tempfile::tempdir().unwrap();
    make(dir.path(), 5, 8, true);
    edit(dir.path());
    format!("{:#}", celeba::load(dir.path(), Some(8), None, None).expect_err("a malformed folder loads"))
}

/// Rewrite the attribute file line by line (`f` gets 0-based indices; line n is index n - 1).
fn edit_attr(f: impl Fn(usize, &str) -> Option<String>) -> impl FnOnce(&Path) {
    move |root: &Path| {
        let lines: Vec<String> = attr_lines(root).iter().enumerate().filter_map(|(i, l)| f(i, l)).collect();
        write_lines(&root.join("list_attr_celeba.txt"), &lines);
    }
}

/// A line without its last field.
fn drop_last(l: &str) -> String {
    let l = l.trim_end();
    l[..l.rfind(' ').unwrap()].trim_end().to_string()
}

#[test]
fn malformed_attribute_files_are_one_line_errors_naming_file_and_line() {
    let keep = |_: usize, l: &str| Some(l.to_string());
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|r: &Path| std::fs::remove_file(r.join("list_attr_celeba.txt")).unwrap()),
            "has no list_attr_celeba.txt",
        ),
        (
            Box::new(|r: &Path| std::fs::write(r.join("list_attr_celeba.txt"), "").unwrap()),
            "list_attr_celeba.txt is empty",
        ),
        (
            Box::new(|r: &Path| std::fs::write(r.join("list_attr_celeba.txt"), "8\r\n").unwrap()),
            "line 2: the file ends before the header",
        ),
        (
            Box::new(edit_attr(move |i, l| if i == 0 { Some("eight".into()) } else { keep(i, l) })),
            "line 1: should be the number of rows, found 'eight'",
        ),
        // 39 names in the header, 40 values in the rows.
        (
            Box::new(edit_attr(move |i, l| if i == 1 { Some(drop_last(l)) } else { keep(i, l) })),
            "line 3: row has 40 values, the header names 39",
        ),
        (
            Box::new(edit_attr(move |i, l| if i == 4 { Some(drop_last(l)) } else { keep(i, l) })),
            "line 5: row has 39 values, the header names 40",
        ),
        (
            Box::new(edit_attr(move |i, l| if i == 5 { Some(l.replacen("-1", "0", 1)) } else { keep(i, l) })),
            "line 6: value '0' of 000004.jpg is not 1 or -1",
        ),
        (
            Box::new(edit_attr(move |i, l| if i == 6 { Some(l.replace(".jpg", ".txt")) } else { keep(i, l) })),
            "line 7: '000005.txt' is not an image file name",
        ),
        (
            Box::new(edit_attr(move |i, l| if i == 7 { Some(l.replace("000006", "000002")) } else { keep(i, l) })),
            "line 8: second row for 000002.jpg (the first is on line 4)",
        ),
        (
            Box::new(edit_attr(move |i, l| (i != 9).then(|| l.to_string()))),
            "list_attr_celeba.txt: line 1 says 8 rows, the file has 7",
        ),
        (
            Box::new(edit_attr(move |i, l| if i == 0 { Some("7".into()) } else { (i != 4).then(|| l.to_string()) })),
            "000003.jpg has no row in",
        ),
        (
            Box::new(edit_attr(move |i, l| if i == 3 { Some(format!("{l} x")) } else { keep(i, l) })),
            "line 4: value 'x' of 000002.jpg",
        ),
        (
            Box::new(|r: &Path| {
                let p = r.join("list_attr_celeba.txt");
                let mut b = std::fs::read(&p).unwrap();
                let at = b.windows(10).position(|w| w == b"000004.jpg").unwrap();
                b[at + 3] = 0xff;
                std::fs::write(&p, b).unwrap();
            }),
            "line 6: not UTF-8 text",
        ),
    ];
    for (edit, want) in cases {
        let e = error_after(edit);
        assert!(e.contains(want), "wanted '{want}' in: {e}");
        assert!(e.contains("list_attr_celeba.txt") && !e.contains('\n'), "{e}");
        if want.contains("line ") {
            assert!(e.contains("list_attr_celeba.txt, line") || e.contains("list_attr_celeba.txt: line 1"), "{e}");
        }
    }

    // A header that names fewer attributes is fine when every row agrees.
    let dir = tempfile::tempdir().unwrap();
    make(dir.path(), 5, 8, true);
    edit_attr(|i, l| Some(if i == 0 { l.into() } else { drop_last(l) }))(dir.path());
    let s = celeba::load(dir.path(), Some(8), None, None).unwrap();
    let a = s.train.attributes.unwrap();
    assert_eq!(a.k(), 39);
    assert_eq!(a.index("Young"), None);
}

#[test]
fn malformed_identity_files_are_one_line_errors_naming_file_and_line() {
    let edit_ids = |f: LineEdit| {
        move |root: &Path| {
            let p = root.join("identity_CelebA.txt");
            let lines: Vec<String> =
                std::fs::read_to_string(&p).unwrap().lines().enumerate().filter_map(|(i, l)| f(i, l)).collect();
            write_lines(&p, &lines);
        }
    };
    let cases: [(LineEdit, &str); 4] = [
        (
            |i, l| Some(if i == 2 { "000003.jpg".into() } else { l.into() }),
            "identity_CelebA.txt, line 3: expected 2 fields",
        ),
        (
            |i, l| Some(if i == 1 { "000002.jpg someone".into() } else { l.into() }),
            "line 2: identity 'someone' of 000002.jpg is not a number",
        ),
        (
            |i, l| Some(if i == 4 { l.replace("000005", "000001") } else { l.into() }),
            "line 5: second line for 000001.jpg (the first is line 1)",
        ),
        (|i, l| (i != 3).then(|| l.into()), "000004.jpg has no line in"),
    ];
    for (f, want) in cases {
        let e = error_after(edit_ids(f));
        assert!(e.contains(want) && e.contains("identity_CelebA.txt"), "wanted '{want}' in: {e}");
    }
}

#[test]
fn the_shared_celeba_loads_at_32px_with_the_readme_attribute_shares() {
    use_test_cache();
    let t = Transform { image_size: Some(32), channels: None };
    let s = data::load_with("celeba", Some(&common::shared_data()), &t).unwrap();
    assert_eq!(s.train.n + s.test.n, 10_000);
    assert_eq!(s.train.shape, data::ImageShape { channels: 3, height: 32, width: 32 });
    assert!(s.test.n > 500 && s.test.n < 1500, "test set {}", s.test.n);
    let (tr, te) = (s.train.attributes.as_ref().unwrap(), s.test.attributes.as_ref().unwrap());
    for (name, want) in [("Male", 0.422), ("Smiling", 0.482), ("Eyeglasses", 0.067), ("Young", 0.777)] {
        let j = tr.index(name).unwrap();
        let rate = (tr.rate(j) * tr.n() as f64 + te.rate(j) * te.n() as f64) / 10_000.0;
        assert!((rate - want).abs() < 0.005, "{name}: {rate} vs the README's {want}");
    }
    eprintln!("shared CelebA: {} train, {} test", s.train.n, s.test.n);
}
