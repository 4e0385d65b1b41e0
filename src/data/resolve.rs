//! How dataset names and paths resolve to files, and loading them into train/test splits.

use super::{Dataset, ImageShape, Splits, celeba, cifar, digits, folder, idx};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The data directory: `--data-dir`, else `$LATENTLAB_DATA`, else `./data`.
pub fn data_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os("LATENTLAB_DATA") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from("data"),
    }
}

/// Known dataset names.
pub const NAMES: [&str; 5] = ["mnist", "fashion-mnist", "digits", "cifar10", "celeba"];

/// How an image folder or CelebA is turned into tensors (other datasets have a fixed shape).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transform {
    pub image_size: Option<usize>,
    pub channels: Option<usize>,
}

pub const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// Find a file trying the name with and without `.gz`.
fn find_gz(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()].into_iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Load a dataset by name (`mnist`, `fashion-mnist`, `digits`, `cifar10`, `celeba`) or by path to an
/// IDX images file, a CIFAR-10 binary folder, a CelebA folder or a folder of images.
pub fn load(spec: &str, data_dir_flag: Option<&Path>) -> Result<Splits> {
    load_with(spec, data_dir_flag, &Transform::default())
}

/// `load` with the image-folder transform (it applies to CelebA too); for fixed-shape datasets the
/// transform must match.
pub fn load_with(spec: &str, data_dir_flag: Option<&Path>, t: &Transform) -> Result<Splits> {
    let p = Path::new(spec);
    let cache = crate::util::user_cache_dir();
    if spec == "celeba" {
        let d = data_dir(data_dir_flag).join("celeba");
        if !celeba::is_celeba(&d) {
            bail!(
                "dataset 'celeba' not found: no {}. CelebA comes from {}: put its {}/ folder (the aligned \
                 JPEGs, 000001.jpg …) and {} (optionally {} too) in {} (set --data-dir or LATENTLAB_DATA)",
                d.join(celeba::ATTR_FILE).display(),
                celeba::HOMEPAGE,
                celeba::IMAGE_DIR,
                celeba::ATTR_FILE,
                celeba::IDENTITY_FILE,
                d.display()
            );
        }
        return celeba::load(&d, t.image_size, t.channels, cache.as_deref());
    }
    if p.is_dir() && !NAMES.contains(&spec) && celeba::is_celeba(p) {
        return celeba::load(p, t.image_size, t.channels, cache.as_deref());
    }
    // A known name means the dataset, even if the working directory has a folder of that name
    // (write ./mnist for the folder).
    if p.is_dir() && !NAMES.contains(&spec) && cifar::find(p).is_none() {
        return folder::load(p, t.image_size, t.channels, cache.as_deref());
    }
    let splits = load_fixed(spec, data_dir_flag)?;
    let s = splits.train.shape;
    if t.image_size.is_some_and(|z| z != s.height || z != s.width) || t.channels.is_some_and(|c| c != s.channels) {
        bail!(
            "--image-size/--channels resize image folders only; dataset '{spec}' has fixed {}×{}×{} images",
            s.channels,
            s.height,
            s.width
        );
    }
    Ok(splits)
}

fn load_fixed(spec: &str, data_dir_flag: Option<&Path>) -> Result<Splits> {
    let dir = data_dir(data_dir_flag);
    match spec {
        "cifar10" => {
            let Some(d) = cifar::find(&dir.join("cifar10")) else {
                bail!(
                    "dataset 'cifar10' not found: no {}/cifar10/data_batch_1.bin (or cifar-10-batches-bin/ inside it). \
                     Download the binary version (cifar-10-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html \
                     and extract it there",
                    dir.display()
                );
            };
            cifar::load(&d)
        }
        "mnist" | "fashion-mnist" => {
            let d = dir.join(spec);
            let train_img = find_gz(&d, "train-images-idx3-ubyte");
            let Some(train_img) = train_img else {
                bail!(
                    "dataset '{spec}' not found: no {}/train-images-idx3-ubyte(.gz). Point --data-dir or \
                     LATENTLAB_DATA at a folder holding '{spec}/', or run `latentlab data fetch {spec}`",
                    d.display()
                );
            };
            let train = load_idx_pair(&train_img)?;
            let test_img = find_gz(&d, "t10k-images-idx3-ubyte")
                .with_context(|| format!("dataset '{spec}': {} has no t10k-images-idx3-ubyte(.gz)", d.display()))?;
            let test = load_idx_pair(&test_img)?;
            check_same_shape(&train, &test, spec)?;
            let class_names = if spec == "fashion-mnist" {
                FASHION_CLASSES.iter().map(|s| s.to_string()).collect()
            } else {
                (0..10).map(|i| i.to_string()).collect()
            };
            Ok(Splits { name: spec.into(), train, test, class_names })
        }
        "digits" => {
            let d = dir.join("digits");
            let p = find_gz(&d, "digits.csv").with_context(|| {
                format!(
                    "dataset 'digits' not found: no {}/digits.csv.gz (set --data-dir or LATENTLAB_DATA)",
                    d.display()
                )
            })?;
            let all = digits::read(&p)?;
            // Fixed split: the last 297 rows are the test set.
            let n_test = 297;
            let train = all.subset(&(0..all.n - n_test).collect::<Vec<_>>());
            let test = all.subset(&(all.n - n_test..all.n).collect::<Vec<_>>());
            Ok(Splits { name: "digits".into(), train, test, class_names: (0..10).map(|i| i.to_string()).collect() })
        }
        path => {
            let p = Path::new(path);
            if !p.exists() {
                bail!(
                    "unknown dataset '{path}': not one of {} and no such file (give a name or a path to an \
                     *-images-idx3-ubyte(.gz) file)",
                    NAMES.join(", ")
                );
            }
            if let Some(d) = p.is_dir().then(|| cifar::find(p)).flatten() {
                return cifar::load(&d);
            }
            let full = load_idx_pair(p)?;
            // A train-* file with a t10k-* sibling gets that as its test set; otherwise hold out 10 %.
            let fname = p.file_name().unwrap().to_string_lossy().to_string();
            let sibling = fname.strip_prefix("train-").map(|rest| p.with_file_name(format!("t10k-{rest}")));
            let (train, test) = match sibling.filter(|s| s.is_file()) {
                Some(t) => {
                    let test = load_idx_pair(&t)?;
                    check_same_shape(&full, &test, path)?;
                    (full, test)
                }
                None => {
                    let n_test = (full.n / 10).max(1);
                    if full.n < 2 {
                        bail!("dataset '{path}' has {} image(s); need at least 2 to hold out a test set", full.n);
                    }
                    let cut = full.n - n_test;
                    (full.subset(&(0..cut).collect::<Vec<_>>()), full.subset(&(cut..full.n).collect::<Vec<_>>()))
                }
            };
            let k = train.num_classes;
            Ok(Splits { name: path.into(), train, test, class_names: (0..k).map(|i| i.to_string()).collect() })
        }
    }
}

fn check_same_shape(a: &Dataset, b: &Dataset, spec: &str) -> Result<()> {
    if a.shape != b.shape {
        bail!("dataset '{spec}': train images are {:?} but test images are {:?}", a.shape, b.shape);
    }
    Ok(())
}

/// Load an images IDX file and, if present, the labels file beside it
/// (`…images-idx3-ubyte…` → `…labels-idx1-ubyte…`).
pub fn load_idx_pair(images: &Path) -> Result<Dataset> {
    let arr = idx::read(images, 3)?;
    let (n, h, w) = (arr.dims[0], arr.dims[1], arr.dims[2]);
    let fname = images.file_name().unwrap_or_default().to_string_lossy().to_string();
    let label_name =
        fname.replace("images-idx3-ubyte", "labels-idx1-ubyte").replace("images.idx3-ubyte", "labels.idx1-ubyte");
    let mut labels = None;
    if label_name != fname {
        let lp = images.with_file_name(&label_name);
        let lp = if lp.is_file() {
            Some(lp)
        } else {
            // tolerate .gz on one and not the other
            let alt = label_name.strip_suffix(".gz").map(String::from).unwrap_or(format!("{label_name}.gz"));
            Some(images.with_file_name(alt)).filter(|p| p.is_file())
        };
        if let Some(lp) = lp {
            let l = idx::read(&lp, 1)?;
            if l.dims[0] != n {
                bail!("{}: {} labels for {} images in {}", lp.display(), l.dims[0], n, images.display());
            }
            labels = Some(l.data);
        }
    }
    let num_classes = match &labels {
        Some(l) => {
            let max = *l.iter().max().unwrap_or(&0) as usize;
            if max >= 256 {
                bail!("labels out of range");
            }
            (max + 1).max(2)
        }
        None => 0,
    };
    Ok(Dataset {
        images: arr.data,
        labels,
        n,
        shape: ImageShape { channels: 1, height: h, width: w },
        num_classes,
        attributes: None,
    })
}
