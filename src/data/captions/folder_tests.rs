use super::*;
use crate::data::folder::list_images;
use std::path::Path;

/// A folder of tiny 8×8 grey PNGs at the given relative paths; image k has grey level 10·k + 5 and,
/// on its right half from row 2·(k % 4) down, a white block (so sizes differ).
fn make_folder(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (k, n) in names.iter().enumerate() {
        let p = dir.path().join(n);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let img = image::GrayImage::from_fn(8, 8, |x, y| {
            image::Luma([if x >= 4 && y as usize >= k % 4 * 2 { 255 } else { 10 * k as u8 + 5 }])
        });
        img.save(&p).unwrap();
    }
    dir
}

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn load(dir: &Path) -> Result<Option<Vec<Vec<String>>>> {
    load_folder(dir, &list_images(dir).unwrap())
}

fn err(dir: &Path) -> String {
    format!("{:#}", load(dir).expect_err("should be refused"))
}

const ABC: [&str; 3] = ["a.png", "b.png", "sub/c.png"];

#[test]
fn captions_txt_with_two_captions_for_one_image() {
    let d = make_folder(&ABC);
    write(
        d.path(),
        "captions.txt",
        "# my captions\n\na.png\tA first one\r\na.png\ta second, different\nb.png\t the b \n./sub/c.png\tthe c\n",
    );
    let caps = load(d.path()).unwrap().unwrap();
    assert_eq!(caps, [vec!["A first one", "a second, different"], vec!["the b"], vec!["the c"]]);
}

#[test]
fn captions_jsonl_with_caption_and_captions() {
    let d = make_folder(&ABC);
    write(
        d.path(),
        "captions.jsonl",
        "{\"file\": \"a.png\", \"caption\": \"x marks\"}\n\n{\"file\": \"b.png\", \"captions\": [\"y\", \"z z\"], \"label\": 3}\n\
         {\"file\": \"sub/c.png\", \"caption\": \"ünïcode ok\"}\n",
    );
    let caps = load(d.path()).unwrap().unwrap();
    assert_eq!(caps, [vec!["x marks"], vec!["y", "z z"], vec!["ünïcode ok"]]);
}

#[test]
fn per_image_txt_files_and_no_source_at_all() {
    let d = make_folder(&ABC);
    assert_eq!(load(d.path()).unwrap(), None);
    write(d.path(), "a.txt", "one\n\ntwo\n");
    write(d.path(), "b.txt", "three");
    write(d.path(), "sub/c.txt", "four\n");
    write(d.path(), "notes.txt", "not an image's captions");
    assert_eq!(load(d.path()).unwrap().unwrap(), [vec!["one", "two"], vec!["three"], vec!["four"]]);
}

/// Each bad captions file, and what its error must contain.
#[test]
fn bad_caption_files_name_the_file_and_line() {
    let long = format!("a.png\t{}\n", "x".repeat(1001));
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        ("captions.txt", b"a.png\tok\nb.png no tab\n".to_vec(), vec!["captions.txt:2", "TAB"]),
        (
            "captions.txt",
            b"a.png\tok\n#\na/b.png\tx\n".to_vec(),
            vec!["captions.txt:3: no image 'a/b.png' in the folder"],
        ),
        ("captions.txt", b"/etc/passwd\tx\n".to_vec(), vec!["captions.txt:1", "'/etc/passwd'", "absolute"]),
        ("captions.txt", b"a.png\tok\nsub/../../x.png\tx\n".to_vec(), vec!["captions.txt:2", ".."]),
        ("captions.txt", b"a.png\tok\nC:\\x.png\tx\n".to_vec(), vec!["captions.txt:2", "absolute"]),
        ("captions.txt", b"a.png\t   \n".to_vec(), vec!["captions.txt:1", "empty caption"]),
        ("captions.txt", b"a.png\tok\nb.png\t... !!\n".to_vec(), vec!["captions.txt:2", "no words"]),
        ("captions.txt", b"a.png\tok\nb.png\tbad \xff byte\n".to_vec(), vec!["captions.txt:2", "UTF-8"]),
        ("captions.txt", long.into_bytes(), vec!["captions.txt:1", "1001 characters"]),
        ("captions.txt", b"a.png\tok\nb.png\tok\n".to_vec(), vec!["captions.txt", "'sub/c.png'", "1 of 3"]),
        (
            "captions.jsonl",
            b"{\"file\": \"a.png\", \"caption\": \"ok\"}\n{oops\n".to_vec(),
            vec!["captions.jsonl:2", "invalid JSON"],
        ),
        ("captions.jsonl", b"\n{\"caption\": \"ok\"}\n".to_vec(), vec!["captions.jsonl:2", "missing \"file\""]),
        (
            "captions.jsonl",
            b"{\"file\": 3, \"caption\": \"ok\"}\n".to_vec(),
            vec!["captions.jsonl:1", "\"file\" must be a string"],
        ),
        (
            "captions.jsonl",
            b"{\"file\": \"a.png\", \"captions\": \"ok\"}\n".to_vec(),
            vec!["captions.jsonl:1", "array of strings"],
        ),
        (
            "captions.jsonl",
            b"{\"file\": \"a.png\", \"captions\": [\"ok\", 1]}\n".to_vec(),
            vec!["captions.jsonl:1", "array of strings"],
        ),
        ("captions.jsonl", b"{\"file\": \"a.png\"}\n".to_vec(), vec!["captions.jsonl:1", "missing \"caption\""]),
        ("captions.jsonl", b"[\"a.png\", \"x\"]\n".to_vec(), vec!["captions.jsonl:1", "JSON object"]),
        (
            "captions.jsonl",
            b"{\"file\": \"nope.png\", \"caption\": \"x\"}\n".to_vec(),
            vec!["captions.jsonl:1", "'nope.png'"],
        ),
        ("a.txt", b"fine\n\n  ?? \n".to_vec(), vec!["a.txt:3", "no words"]),
        ("a.txt", b"fine\n".to_vec(), vec!["per-image .txt", "'b.png'", "2 of 3"]),
    ];
    for (file, text, wants) in cases {
        let d = make_folder(&ABC);
        write(d.path(), file, &text);
        let e = err(d.path());
        for w in wants {
            assert!(e.contains(w), "{file} {:?}: error {e:?} lacks {w:?}", String::from_utf8_lossy(&text));
        }
    }
}

#[test]
fn two_root_files_and_oversized_files_are_refused() {
    let d = make_folder(&ABC);
    write(d.path(), "captions.txt", "a.png\tx\n");
    write(d.path(), "captions.jsonl", "");
    let e = err(d.path());
    assert!(e.contains("captions.txt") && e.contains("captions.jsonl") && e.contains("both"), "{e}");
    std::fs::remove_file(d.path().join("captions.jsonl")).unwrap();
    // A sparse file one byte over the limit: refused from its size, before reading.
    let f = std::fs::File::create(d.path().join("captions.txt")).unwrap();
    f.set_len(MAX_FILE_BYTES + 1).unwrap();
    let e = err(d.path());
    assert!(e.contains("captions.txt") && e.contains("64.0 MiB"), "{e}");
}

#[test]
fn arbitrary_caption_files_never_panic() {
    use rand::{Rng, SeedableRng};
    let d = make_folder(&ABC);
    let pieces: [&[u8]; 16] = [
        b"a.png",
        b"\t",
        b"\n",
        b"{",
        b"}",
        b"\"file\"",
        b":",
        b"\"a.png\"",
        b"\"captions\"",
        b"[",
        b"]",
        b"..",
        b"/",
        b"\xff",
        b" ok ",
        b"#",
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for round in 0..300 {
        let text: Vec<u8> =
            (0..rng.random_range(0..40)).flat_map(|_| pieces[rng.random_range(0..16)].to_vec()).collect();
        let name = ["captions.txt", "captions.jsonl", "a.txt"][round % 3];
        write(d.path(), name, &text);
        let _ = load(d.path());
        std::fs::remove_file(d.path().join(name)).unwrap();
    }
}

fn splits_of(dir: &Path) -> crate::data::Splits {
    crate::data::folder::load(dir, Some(8), None, None).unwrap()
}

#[test]
fn folder_captions_line_up_with_the_split_images() {
    let names: Vec<String> = (0..12).map(|k| format!("img{k:02}.png")).collect();
    let d = make_folder(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let lines: String = names.iter().enumerate().map(|(k, n)| format!("{n}\timage {k}\n")).collect();
    write(d.path(), "captions.txt", lines);
    let s = splits_of(d.path());
    let t = for_splits(d.path().to_str().unwrap(), &s).unwrap();
    assert!(t.thresholds.is_none() && t.class_words.is_empty());
    assert_eq!(t.test, [vec!["image 9"]]);
    assert_eq!(t.train.len(), 11);
    assert_eq!(t.train[9], ["image 10"]);
    // Image k's top-left pixel is 10·k + 5: captions and images agree.
    for (caps, ds) in [(&t.train, &s.train), (&t.test, &s.test)] {
        for (i, c) in caps.iter().enumerate() {
            let k: u8 = c[0].strip_prefix("image ").unwrap().parse().unwrap();
            assert_eq!(ds.image(i)[0], 10 * k + 5, "{c:?}");
        }
    }
    assert_eq!(vocabulary(&t.train, false), ["0", "1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "image"]);
}

#[test]
fn labelled_folder_without_captions_gets_object_captions() {
    let names: Vec<String> =
        (0..20).map(|k| format!("{}/{k:02}.png", if k % 2 == 0 { "Cat" } else { "dog" })).collect();
    let d = make_folder(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let s = splits_of(d.path());
    let t = for_splits(d.path().to_str().unwrap(), &s).unwrap();
    assert_eq!(t.class_words, ["cat", "dog"]);
    assert_eq!(t.thresholds.as_ref().unwrap().set, AttributeSet::Objects);
    assert_eq!((t.train.len(), t.test.len()), (s.train.n, s.test.n));
    for (caps, ds) in [(&t.train, &s.train), (&t.test, &s.test)] {
        for (i, c) in caps.iter().enumerate() {
            let word = &t.class_words[ds.label(i).unwrap() as usize];
            assert!(c.len() >= 2 && c.iter().all(|p| p.contains(word.as_str())), "{c:?}");
        }
    }
    let vocab = vocabulary(&t.train, false);
    assert!(["small", "large"].iter().any(|w| vocab.contains(&w.to_string())), "{vocab:?}");
}

#[test]
fn unlabelled_folder_without_captions_is_an_error_naming_it() {
    let d = make_folder(&ABC);
    let s = splits_of(d.path());
    let arg = d.path().to_str().unwrap();
    let e = format!("{:#}", for_splits(arg, &s).unwrap_err());
    assert!(
        e.contains(arg)
            && e.contains("captions.txt")
            && e.contains("captions.jsonl")
            && e.contains("beside each image"),
        "{e}"
    );
}
