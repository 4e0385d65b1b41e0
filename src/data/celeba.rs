//! CelebA in its official layout: `img_align_celeba/*.jpg`, `list_attr_celeba.txt` (40 binary
//! attributes per image) and, optionally, `identity_CelebA.txt` (who is in each image). Only the
//! images present are read; attribute and identity rows for missing images are ignored, so a
//! partial download works.
//!
//! Images get the transform of pytorch/examples' DCGAN (`Resize(size)` + `CenterCrop(size)`): the
//! shorter side is resized to `size` and the centre cropped square (`folder::decode`), 64 px by
//! default. Decoded sets are cached like image folders, keyed by every image's name, size and
//! mtime, the annotation files' size and mtime, and the transform.
//!
//! Split: with identities, the test set is every image whose identity is a multiple of 10, so no
//! person is on both sides; without, every 10th image as for image folders. Both keep file order.

use super::{Dataset, ImageShape, Splits, folder};
use anyhow::{Context, Result, anyhow, bail};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const ATTR_FILE: &str = "list_attr_celeba.txt";
pub const IDENTITY_FILE: &str = "identity_CelebA.txt";
pub const IMAGE_DIR: &str = "img_align_celeba";
pub const DEFAULT_SIZE: usize = 64;
pub const HOMEPAGE: &str = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html";
const MAGIC: &[u8; 8] = b"LLCELEB1";

/// Binary attributes of n images: `values` is n×k row-major, 1 = present, 0 = absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attributes {
    pub names: Vec<String>,
    pub values: Vec<u8>,
}

impl Attributes {
    /// Number of attributes.
    pub fn k(&self) -> usize {
        self.names.len()
    }
    /// Number of images.
    pub fn n(&self) -> usize {
        self.values.len().checked_div(self.k()).unwrap_or(0)
    }
    pub fn row(&self, i: usize) -> &[u8] {
        let k = self.k();
        &self.values[i * k..(i + 1) * k]
    }
    /// The attribute called `name`: exact match first, then ignoring case.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .position(|n| n == name)
            .or_else(|| self.names.iter().position(|n| n.eq_ignore_ascii_case(name)))
    }
    /// The rows of the given images, in that order.
    pub fn subset(&self, idx: &[usize]) -> Attributes {
        let mut values = Vec::with_capacity(idx.len() * self.k());
        for &i in idx {
            values.extend_from_slice(self.row(i));
        }
        Attributes { names: self.names.clone(), values }
    }
    /// Share of images with attribute `j` (0 when there are no images).
    pub fn rate(&self, j: usize) -> f64 {
        let n = self.n();
        if n == 0 {
            return 0.0;
        }
        (0..n).filter(|&i| self.values[i * self.k() + j] == 1).count() as f64 / n as f64
    }
}

/// Whether `dir` holds a CelebA download (its attribute file, directly).
pub fn is_celeba(dir: &Path) -> bool {
    dir.join(ATTR_FILE).is_file()
}

fn at(path: &Path, line: usize, msg: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{}, line {line}: {msg}", path.display())
}

/// The non-blank lines of a text file with their 1-based numbers, CR stripped. Blank lines are
/// allowed only at the end (a final newline); non-UTF-8 is an error naming the line.
fn lines<'a>(bytes: &'a [u8], path: &Path) -> Result<Vec<(usize, &'a str)>> {
    let mut out = Vec::new();
    let mut blank_at = None;
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw).map_err(|_| at(path, i + 1, "not UTF-8 text"))?;
        if line.trim().is_empty() {
            blank_at.get_or_insert(i + 1);
            continue;
        }
        if let Some(b) = blank_at {
            return Err(at(path, b, "empty line before the end of the file"));
        }
        out.push((i + 1, line));
    }
    Ok(out)
}

/// `s` cut to a length that fits in a one-line message.
fn short(s: &str) -> String {
    if s.chars().count() <= 40 { s.to_string() } else { format!("{}…", s.chars().take(40).collect::<String>()) }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".jpg", ".jpeg", ".png"].iter().any(|e| lower.len() > e.len() && lower.ends_with(e))
}

/// A parsed attribute file: every row's values, and where each image's row is.
struct AttrTable<'a> {
    names: Vec<String>,
    rows: HashMap<&'a str, usize>,
    values: Vec<u8>,
}

fn parse_attributes<'a>(bytes: &'a [u8], path: &Path) -> Result<AttrTable<'a>> {
    let lines = lines(bytes, path)?;
    let Some(&(l1, first)) = lines.first() else {
        bail!("{} is empty (line 1 should be the number of rows, line 2 the attribute names)", path.display());
    };
    let count: usize = first
        .trim()
        .parse()
        .map_err(|_| at(path, l1, format!("should be the number of rows, found '{}'", short(first.trim()))))?;
    let Some(&(l2, header)) = lines.get(1) else {
        bail!("{}, line {}: the file ends before the header of attribute names", path.display(), l1 + 1);
    };
    let names: Vec<String> = header.split_ascii_whitespace().map(String::from).collect();
    for (j, n) in names.iter().enumerate() {
        if names[..j].contains(n) {
            return Err(at(path, l2, format!("attribute '{n}' is named twice")));
        }
    }
    let k = names.len();
    let body = &lines[2..];
    let mut rows = HashMap::with_capacity(body.len());
    let mut values = Vec::with_capacity(body.len() * k);
    for (r, &(ln, line)) in body.iter().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let name = fields.next().unwrap_or_default();
        if !is_image_name(name) {
            return Err(at(path, ln, format!("'{}' is not an image file name (.jpg/.png)", short(name))));
        }
        let mut got = 0;
        for f in fields {
            values.push(match f {
                "1" => 1,
                "-1" => 0,
                _ => return Err(at(path, ln, format!("value '{}' of {name} is not 1 or -1", short(f)))),
            });
            got += 1;
        }
        if got != k {
            return Err(at(path, ln, format!("row has {got} values, the header names {k}")));
        }
        if let Some(prev) = rows.insert(name, r) {
            return Err(at(path, ln, format!("second row for {name} (the first is on line {})", body[prev].0)));
        }
    }
    if count != body.len() {
        bail!("{}: line 1 says {count} rows, the file has {}", path.display(), body.len());
    }
    Ok(AttrTable { names, rows, values })
}

/// `image identity` per line → identity by image name.
fn parse_identities<'a>(bytes: &'a [u8], path: &Path) -> Result<HashMap<&'a str, u32>> {
    let lines = lines(bytes, path)?;
    let mut ids = HashMap::with_capacity(lines.len());
    let mut first_line = HashMap::new();
    for (ln, line) in lines {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let [name, id] = fields[..] else {
            return Err(at(path, ln, format!("expected 2 fields (image identity), found {}", fields.len())));
        };
        if !is_image_name(name) {
            return Err(at(path, ln, format!("'{}' is not an image file name (.jpg/.png)", short(name))));
        }
        let id: u32 =
            id.parse().map_err(|_| at(path, ln, format!("identity '{}' of {name} is not a number", short(id))))?;
        if let Some(prev) = first_line.insert(name, ln) {
            return Err(at(path, ln, format!("second line for {name} (the first is line {prev})")));
        }
        ids.insert(name, id);
    }
    Ok(ids)
}

struct ImageFile {
    name: String,
    path: PathBuf,
    len: u64,
    mtime: Option<u128>,
}

fn mtime(m: &std::fs::Metadata) -> Option<u128> {
    m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_nanos())
}

/// The JPEG/PNG files directly in `dir`, sorted by name (hidden files skipped).
fn list(dir: &Path) -> Result<Vec<ImageFile>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read folder {}", dir.display()))?;
    let mut out = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("cannot read folder {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !is_image_name(&name) {
            continue;
        }
        let path = e.path();
        let m = std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if m.is_file() {
            out.push(ImageFile { name, path, len: m.len(), mtime: mtime(&m) });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[derive(Serialize, Deserialize)]
struct CacheMeta {
    n: usize,
    shape: ImageShape,
}

/// Load a CelebA folder as train/test splits with attributes; `size` defaults to 64 and `channels`
/// to 3 (1 gives grey).
pub fn load(root: &Path, size: Option<usize>, channels: Option<usize>, cache_dir: Option<&Path>) -> Result<Splits> {
    let size = size.unwrap_or(DEFAULT_SIZE);
    if !(4..=512).contains(&size) {
        bail!("--image-size must be between 4 and 512, got {size}");
    }
    let channels = match channels.unwrap_or(3) {
        c @ (1 | 3) => c,
        c => bail!("--channels must be 1 (grey) or 3 (RGB), got {c}"),
    };
    let attr_path = root.join(ATTR_FILE);
    if !attr_path.is_file() {
        bail!("CelebA folder {} has no {ATTR_FILE} (the official attribute file, from {HOMEPAGE})", root.display());
    }
    let attr_bytes = read(&attr_path)?;
    let table = parse_attributes(&attr_bytes, &attr_path)?;
    let id_path = root.join(IDENTITY_FILE);
    let id_bytes = if id_path.is_file() { Some(read(&id_path)?) } else { None };
    let ids = id_bytes.as_deref().map(|b| parse_identities(b, &id_path)).transpose()?;

    let img_dir = root.join(IMAGE_DIR);
    if !img_dir.is_dir() {
        bail!("CelebA folder {} has no {IMAGE_DIR}/ folder of images", root.display());
    }
    let files = list(&img_dir)?;
    if files.len() < 2 {
        bail!("{} holds {} image(s); need at least 2 to hold out a test set", img_dir.display(), files.len());
    }
    let k = table.names.len();
    let mut values = Vec::with_capacity(files.len() * k);
    let mut identity = Vec::with_capacity(if ids.is_some() { files.len() } else { 0 });
    for f in &files {
        let Some(&r) = table.rows.get(f.name.as_str()) else {
            bail!("image {} has no row in {}", f.path.display(), attr_path.display());
        };
        values.extend_from_slice(&table.values[r * k..(r + 1) * k]);
        if let Some(ids) = &ids {
            let Some(&id) = ids.get(f.name.as_str()) else {
                bail!("image {} has no line in {}", f.path.display(), id_path.display());
            };
            identity.push(id);
        }
    }
    let attributes = Attributes { names: table.names, values };

    let shape = ImageShape { channels, height: size, width: size };
    let key = cache_key(root, &files, &[&attr_path, &id_path], size, channels);
    let cache_file = cache_dir.map(|d| d.join("celeba").join(format!("{key}.llceleba")));
    let cached = cache_file.as_deref().filter(|p| p.is_file()).and_then(|p| read_cache(p, files.len(), shape).ok());
    let images = match cached {
        Some(c) => c,
        None => {
            let mut images = vec![0u8; files.len() * shape.len()];
            images.par_chunks_mut(shape.len()).zip(&files).try_for_each(|(out, f)| -> Result<()> {
                out.copy_from_slice(&folder::decode(&f.path, size, channels)?);
                Ok(())
            })?;
            if let Some(p) = &cache_file {
                // A cache that cannot be written only costs time next run.
                let meta = serde_json::to_vec(&CacheMeta { n: files.len(), shape }).expect("meta serialises");
                let _ = crate::util::write_atomic(p, &crate::util::frame(MAGIC, &[&meta, &images]));
            }
            images
        }
    };
    let all = Dataset { images, labels: None, n: files.len(), shape, num_classes: 0, attributes: Some(attributes) };

    let test_idx: Vec<usize> = if ids.is_some() {
        (0..all.n).filter(|&i| identity[i].is_multiple_of(10)).collect()
    } else {
        folder::test_indices(all.n)
    };
    if test_idx.is_empty() || test_idx.len() == all.n {
        bail!(
            "{}: splitting {} images by identity (test = identity % 10 == 0) leaves the {} set empty; \
             add images of more people",
            root.display(),
            all.n,
            if test_idx.is_empty() { "test" } else { "training" }
        );
    }
    let mut is_test = vec![false; all.n];
    test_idx.iter().for_each(|&i| is_test[i] = true);
    let train_idx: Vec<usize> = (0..all.n).filter(|&i| !is_test[i]).collect();
    Ok(Splits {
        name: "celeba".into(),
        train: all.subset(&train_idx),
        test: all.subset(&test_idx),
        class_names: vec![],
    })
}

fn cache_key(root: &Path, files: &[ImageFile], annotations: &[&Path], size: usize, channels: usize) -> String {
    let mut h = Sha256::new();
    let abs = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    h.update(format!("celeba v1 {size} {channels} {}\n", abs.display()));
    for p in annotations {
        let m = std::fs::metadata(p).ok();
        h.update(format!("{:?} {:?}\n", m.as_ref().map(|m| m.len()), m.as_ref().and_then(mtime)));
    }
    for f in files {
        h.update(format!("{}\t{}\t{:?}\n", f.name, f.len, f.mtime));
    }
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn read_cache(path: &Path, n: usize, shape: ImageShape) -> Result<Vec<u8>> {
    let mut b = std::fs::read(path)?;
    let secs = crate::util::unframe(&b, MAGIC, "CelebA cache", &["meta", "images"]).map_err(anyhow::Error::msg)?;
    let meta: CacheMeta = serde_json::from_slice(secs[0])?;
    if meta.n != n || meta.shape != shape || secs[1].len() != n * shape.len() {
        bail!("cache does not match");
    }
    // Keep the images in place rather than copying (a full CelebA at 64 px is 2.5 GB).
    let start = secs[1].as_ptr() as usize - b.as_ptr() as usize;
    let len = secs[1].len();
    b.truncate(start + len);
    b.drain(..start);
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr_err(text: &str) -> String {
        attr_err_in("list_attr_celeba.txt", text)
    }
    fn attr_err_in(file: &str, text: &str) -> String {
        format!("{:#}", parse_attributes(text.as_bytes(), Path::new(file)).err().expect("an error"))
    }

    #[test]
    fn parses_crlf_runs_of_spaces_and_trailing_newlines() {
        let text = "2\r\nA B  \r\n1.jpg  1 -1\r\n2.png\t-1\t 1\r\n\r\n";
        let t = parse_attributes(text.as_bytes(), Path::new("x")).unwrap();
        assert_eq!(t.names, ["A", "B"]);
        assert_eq!(t.values, [1, 0, 0, 1]);
        assert_eq!(t.rows["2.png"], 1);
    }

    #[test]
    fn malformed_attribute_files_name_the_line() {
        assert!(attr_err("").contains("is empty"));
        assert!(attr_err("x\nA\n").contains("line 1: should be the number of rows, found 'x'"));
        assert!(attr_err("1\n").contains("line 2: the file ends before the header"));
        assert!(attr_err("1\nA B\n1.jpg 1\n").contains("line 3: row has 1 values, the header names 2"));
        assert!(attr_err("1\nA\n1.jpg 0\n").contains("line 3: value '0' of 1.jpg is not 1 or -1"));
        assert!(attr_err("1\nA\n1.txt 1\n").contains("line 3: '1.txt' is not an image file name"));
        assert!(
            attr_err("2\nA\n1.jpg 1\n1.jpg -1\n").contains("line 4: second row for 1.jpg (the first is on line 3)")
        );
        assert!(attr_err_in("f", "3\nA\n1.jpg 1\n2.jpg -1\n").contains("f: line 1 says 3 rows, the file has 2"));
        assert!(attr_err("2\nA\n1.jpg 1\n\n2.jpg -1\n").contains("line 4: empty line"));
        let bad = [b"1\nA\n1.jpg 1\xff\n".as_slice()].concat();
        let e = format!("{:#}", parse_attributes(&bad, Path::new("f")).err().unwrap());
        assert!(e.contains("line 3: not UTF-8"), "{e}");
    }

    #[test]
    fn malformed_identity_files_name_the_line() {
        let err =
            |t: &str| format!("{:#}", parse_identities(t.as_bytes(), Path::new("identity_CelebA.txt")).unwrap_err());
        let ok = parse_identities(b"1.jpg 7\r\n2.jpg\t30\r\n", Path::new("f")).unwrap();
        assert_eq!((ok["1.jpg"], ok["2.jpg"]), (7, 30));
        assert!(err("1.jpg 7\n2.jpg\n").contains("identity_CelebA.txt, line 2: expected 2 fields"));
        assert!(err("1.jpg 7 8\n").contains("line 1: expected 2 fields (image identity), found 3"));
        assert!(err("1.jpg x\n").contains("line 1: identity 'x' of 1.jpg is not a number"));
        assert!(err("1 7\n").contains("line 1: '1' is not an image file name"));
        assert!(err("1.jpg 7\n1.jpg 8\n").contains("line 2: second line for 1.jpg (the first is line 1)"));
    }

    #[test]
    fn attribute_helpers() {
        let a = Attributes { names: vec!["Male".into(), "Smiling".into()], values: vec![1, 0, 0, 0, 1, 1] };
        assert_eq!((a.k(), a.n()), (2, 3));
        assert_eq!(a.row(2), [1, 1]);
        assert_eq!(a.index("smiling"), Some(1));
        assert_eq!(a.index("Bald"), None);
        assert!((a.rate(0) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(a.subset(&[2, 0]).values, [1, 1, 1, 0]);
    }
}
