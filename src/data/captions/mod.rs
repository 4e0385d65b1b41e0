//! Captions for text-to-image models: generated from labels and pixel measurements, or read from
//! the user's image folder.
//!
//! # Generated captions
//!
//! Labelled datasets without caption files (MNIST, Fashion-MNIST, digits, labelled folders) get
//! captions generated from the class and three attributes measured from the pixels (ink = grey
//! ≥ 128; colour images use the channel mean):
//!
//! | set | attribute | low word | high word | measurement |
//! |---|---|---|---|---|
//! | handwriting (`mnist`, `digits`) | thickness | thin | thick | 2·ink area / ink perimeter |
//! | | slant | upright | slanted | −μ11/μ02 of the grey-weighted moments (top leaning right > 0) |
//! | | width | narrow | wide | ink bounding-box width / image width |
//! | objects (everything else) | shade | dark | light | mean grey of the ink / 255 |
//! | | size | small | large | ink area / image area |
//! | | width | narrow | wide | as above |
//!
//! Each attribute is cut at its per-class terciles over the training set: the lowest third of a
//! class gets the low word, the highest third the high word, the middle third is not mentioned.
//! Every image gets several phrasings: "a thick slanted seven", "a seven that is thick and
//! slanted", "a thick seven", "a slanted seven" (nothing mentioned: "a seven", "a picture of a
//! seven").
//!
//! # Caption files in an image folder
//!
//! A folder's own captions take precedence over generated ones. Exactly one source is read:
//!
//! - **`captions.txt`** at the folder root: one `relative/path/to/image.png<TAB>caption` per line
//!   (the path as the folder lists it, '/'-separated, relative to the folder root; a TAB, then
//!   the caption). Blank lines and lines starting with `#` are ignored. An image may appear on
//!   several lines to give it several captions.
//! - **`captions.jsonl`** at the folder root: one JSON object per line (blank lines ignored),
//!   `{"file": "relative/path.png", "caption": "…"}` or
//!   `{"file": "relative/path.png", "captions": ["…", "…"]}` (both keys may be given; other keys
//!   are ignored). An image may appear on several lines.
//! - **a `.txt` beside each image** with the same stem (`cats/cat1.png` → `cats/cat1.txt`): one
//!   caption per non-empty line. Used only when neither root file exists.
//!
//! Rules, for every format: files are UTF-8 (a leading BOM is allowed) and at most 64 MiB; paths
//! must be relative, without `..`, and name an image of the folder (PNG/JPEG, hidden files
//! skipped); a caption is trimmed, must have at least one word and at most 1,000 characters;
//! every image needs at least one caption (identical captions of one image count once). Having
//! both `captions.txt` and `captions.jsonl` is an error. Errors name the file and its 1-based
//! line (`captions.txt:3: no image 'a/b.png' in the folder …`).
//!
//! Captions split like the images: every 10th image in path order (`folder::test_indices`) is test.

mod attributes;
pub mod faces;
mod folder;
#[cfg(test)]
mod folder_tests;
#[cfg(test)]
mod tests;
mod text;

pub use attributes::{ATTRS, AttributeSet, INK, Level, Thresholds, measure, measure_all};
pub use folder::{MAX_CAPTION_CHARS, MAX_FILE_BYTES, load_folder};
pub use text::{Intent, attribute_hits, class_words, intent, phrasings, tokenize};

use super::{Dataset, NAMES, Splits, celeba, cifar};
use anyhow::{Result, bail};
use rayon::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Captions of a run's data: the folder's own captions when it has them; otherwise generated from
/// labels.
#[derive(Clone, Debug)]
pub struct TextData {
    /// Per train image, ≥ 1 caption.
    pub train: Vec<Vec<String>>,
    pub test: Vec<Vec<String>>,
    /// Generated captions: the attribute set and thresholds (so agreement can be scored); None for
    /// user captions.
    pub thresholds: Option<Thresholds>,
    /// Words naming the classes (empty if unlabelled).
    pub class_words: Vec<String>,
    /// Captions made from human-annotated attributes (`faces`): the attribute names.
    pub attributes: Option<Vec<String>>,
}

impl TextData {
    /// Whether the captions are read with negation scope (`faces::scoped_tokens`): the face
    /// grammar says what is absent.
    pub fn negation(&self) -> bool {
        self.attributes.is_some()
    }
}

/// Whether `dataset_arg` names an image folder (as `data::load` reads it; CelebA has its own split).
fn is_folder(dataset_arg: &str) -> bool {
    let p = Path::new(dataset_arg);
    p.is_dir() && !NAMES.contains(&dataset_arg) && cifar::find(p).is_none() && !celeba::is_celeba(p)
}

/// Captions of `splits`. `dataset_arg` is the run's --dataset argument (a name or a path); a folder
/// (a directory that is not one of `data::NAMES`, nor a CIFAR-10 or CelebA folder) is read with
/// `load_folder` and split with `folder::test_indices` so captions line up with
/// `splits.train`/`splits.test`.
/// Without caption files, captions are generated from labels; an unlabelled dataset without
/// caption files is an error.
pub fn for_splits(dataset_arg: &str, splits: &Splits) -> Result<TextData> {
    let words = class_words(&splits.class_names);
    let folder = is_folder(dataset_arg);
    if folder {
        let root = Path::new(dataset_arg);
        let files = super::folder::list_images(root)?;
        if let Some(mut caps) = load_folder(root, &files)? {
            let n = caps.len();
            if n != splits.train.n + splits.test.n {
                bail!(
                    "{}: the folder now holds {n} images but the loaded dataset has {} (reload it)",
                    root.display(),
                    splits.train.n + splits.test.n
                );
            }
            let test_idx = super::folder::test_indices(n);
            let mut is_test = vec![false; n];
            test_idx.iter().for_each(|&i| is_test[i] = true);
            let test: Vec<Vec<String>> = test_idx.iter().map(|&i| std::mem::take(&mut caps[i])).collect();
            let train: Vec<Vec<String>> = caps.into_iter().zip(is_test).filter(|(_, t)| !t).map(|(c, _)| c).collect();
            return Ok(TextData { train, test, thresholds: None, class_words: words, attributes: None });
        }
    }
    // Faces annotated by people (CelebA): captions from their attributes.
    if let (Some(a), Some(b)) = (&splits.train.attributes, &splits.test.attributes)
        && splits.train.labels.is_none()
    {
        let make = |at: &super::celeba::Attributes| -> Vec<Vec<String>> {
            (0..at.n()).into_par_iter().map(|i| faces::captions(&at.names, at.row(i))).collect()
        };
        return Ok(TextData {
            train: make(a),
            test: make(b),
            thresholds: None,
            class_words: Vec::new(),
            attributes: Some(a.names.clone()),
        });
    }
    if splits.train.labels.is_none() || splits.test.labels.is_none() {
        let what = if folder { format!("dataset folder {}", dataset_arg) } else { format!("dataset '{dataset_arg}'") };
        bail!(
            "{what} has no class labels to generate captions from, and no captions: add `captions.txt` \
             (one `relative/path.png<TAB>caption` per line), `captions.jsonl` (one \
             {{\"file\": \"relative/path.png\", \"caption\": \"…\"}} per line) or a `.txt` beside each image \
             with one caption per line{}",
            if folder { "" } else { " (only image folders can carry caption files)" }
        );
    }
    if splits.train.n == 0 {
        bail!("dataset '{dataset_arg}' has no training images to caption");
    }
    let set = AttributeSet::for_dataset(dataset_arg);
    let train_m = measure_all(set, &splits.train);
    let labels = splits.train.labels.as_deref().unwrap_or_default();
    let th = Thresholds::from_measurements(set, &train_m, labels, splits.train.num_classes);
    let train = generate(&th, &words, &splits.train, &train_m);
    let test = generate(&th, &words, &splits.test, &measure_all(set, &splits.test));
    Ok(TextData { train, test, thresholds: Some(th), class_words: words, attributes: None })
}

/// Generated captions of every image of `ds` (labelled) from its measurements: the phrasings of
/// each (class, levels) are built once and shared.
pub fn generate(th: &Thresholds, words: &[String], ds: &Dataset, measured: &[[f32; ATTRS]]) -> Vec<Vec<String>> {
    let labels = ds.labels.as_deref().unwrap_or_default();
    let keys: Vec<(u8, [Level; ATTRS])> =
        labels.par_iter().zip(measured).map(|(&l, &m)| (l, th.levels(l as usize, m))).collect();
    let mut table: HashMap<(u8, [Level; ATTRS]), Vec<String>> = HashMap::new();
    for k in &keys {
        table.entry(*k).or_insert_with(|| {
            let w = words.get(k.0 as usize).cloned().unwrap_or_else(|| format!("class {}", k.0));
            phrasings(th.set, &w, k.1)
        });
    }
    keys.par_iter().map(|k| table[k].clone()).collect()
}

/// The vocabulary: sorted unique tokens of all train captions (with `negation`, their scoped
/// tokens: `faces::scoped_tokens`).
pub fn vocabulary(train: &[Vec<String>], negation: bool) -> Vec<String> {
    let words = |c: &String| if negation { faces::scoped_tokens(c) } else { tokenize(c) };
    let set: BTreeSet<String> = train.iter().flatten().flat_map(words).collect();
    set.into_iter().collect()
}
