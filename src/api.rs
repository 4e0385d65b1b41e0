//! The library API: open a trained run and sample, encode and decode with it; train a run from a
//! configuration built in code; score any images with latentlab's metrics.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let run = latentlab::Run::open("runs/vae-mnist")?;
//! let images = run.sample(16, 0)?; // 16 images, N×C×H×W floats in [0, 1]
//! let z = run.encode(&images)?; // encoder models: 16 × latent_dim posterior means
//! let again = run.decode(&z)?;
//! again.save_png("again.png", 4)?;
//! # Ok(())
//! # }
//! ```
//!
//! Every function returns `anyhow::Result`; errors are one line that names the file or argument
//! at fault. Computation runs on the CPU with latentlab's own kernels; results are the same bits
//! as the command line's (`Run::sample(n, seed)` is `latentlab sample --n N --seed S`).

use crate::app::OpenRun;
use crate::backend::{self, DeviceChoice};
use crate::data;
use crate::eval::evaluate::Source;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

pub use crate::config::{Options, RunConfig};
pub use crate::data::ImageShape;
pub use crate::eval::EvalReport;
pub use crate::eval::evaluate::{EvalOptions, Metric};
pub use crate::models::ModelKind;
pub use crate::run::Which;

/// `n` images of one `shape`, stored N×C×H×W as float32 in [0, 1] (row-major, like a C-order
/// numpy array of that shape).
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    pub shape: ImageShape,
    pub n: usize,
    pub data: Vec<f32>,
}

impl Images {
    /// Wrap `data` (N×C×H×W, values in [0, 1]); errors if the length is not a whole number of
    /// images or a value is outside [0, 1] or not finite.
    pub fn new(shape: ImageShape, data: Vec<f32>) -> Result<Images> {
        let per = shape.len();
        if per == 0 || !data.len().is_multiple_of(per) {
            bail!("{} values are not a whole number of {per}-value images of shape {shape:?}", data.len());
        }
        if let Some(i) = data.iter().position(|v| !(0.0..=1.0).contains(v)) {
            bail!("value {} at index {i} is outside [0, 1]", data[i]);
        }
        Ok(Images { shape, n: data.len() / per, data })
    }

    /// Image `i` (C×H×W values).
    pub fn image(&self, i: usize) -> &[f32] {
        let per = self.shape.len();
        &self.data[i * per..(i + 1) * per]
    }

    /// A PNG grid with `ncol` columns (written atomically).
    pub fn save_png(&self, path: impl AsRef<Path>, ncol: usize) -> Result<()> {
        crate::viz::grid::save_grid(&self.data, self.shape, ncol.max(1), path.as_ref())
    }

    /// A numpy `.npy` file, N×C×H×W float32.
    pub fn save_npy(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::viz::grid::save_npy(&self.data, self.shape, path.as_ref())
    }
}

/// A trained run (a run folder and the model of one of its checkpoints).
pub struct Run {
    inner: OpenRun,
}

impl Run {
    /// Open the run folder `path` at its latest checkpoint.
    pub fn open(path: impl AsRef<Path>) -> Result<Run> {
        Run::open_checkpoint(path, Which::Latest)
    }

    /// Open the run folder `path` at its latest or best checkpoint.
    pub fn open_checkpoint(path: impl AsRef<Path>, which: Which) -> Result<Run> {
        Run::open_on(path, which, DeviceChoice::Cpu)
    }

    /// Open a checkpoint onto a device: decoding and [`Run::evaluate`] run there (a checkpoint
    /// trained on any device opens on any other).
    pub fn open_on(path: impl AsRef<Path>, which: Which, device: DeviceChoice) -> Result<Run> {
        Ok(Run { inner: OpenRun::open(path.as_ref(), which, backend::device(device)?)? })
    }

    /// Train a new run of `config` into the folder `out` (which must not hold a run yet) and open it.
    /// Build the config with [`RunConfig::resolve`] from the model's defaults and [`Options`].
    pub fn train(config: &RunConfig, out: impl AsRef<Path>) -> Result<Run> {
        let out = out.as_ref().to_path_buf();
        crate::app::training::start_with(config, out.clone())?;
        Run::open(out)
    }

    pub fn path(&self) -> &Path {
        &self.inner.dir.path
    }
    pub fn model(&self) -> ModelKind {
        self.inner.model.spec.kind
    }
    pub fn config(&self) -> &RunConfig {
        &self.inner.cfg
    }
    /// The shape of the images the model makes.
    pub fn shape(&self) -> ImageShape {
        self.inner.model.spec.shape
    }
    pub fn latent_dim(&self) -> usize {
        self.inner.model.spec.latent_dim
    }
    /// Class names of the dataset it trained on (what `class` arguments index).
    pub fn classes(&self) -> &[String] {
        &self.inner.class_names
    }

    /// `n` samples from the prior, drawn with `seed`. A conditional model cycles through its
    /// classes (image i is class i mod K), as `latentlab sample` does.
    pub fn sample(&self, n: usize, seed: u64) -> Result<Images> {
        self.sample_labels(n, seed, None)
    }

    /// `n` samples of class `class` (conditional models).
    pub fn sample_class(&self, n: usize, class: u8, seed: u64) -> Result<Images> {
        self.sample_labels(n, seed, Some(class))
    }

    /// `n` samples with the attributes `attrs`, e.g. "Smiling,-Male" (models trained with
    /// `--condition attributes`; unnamed attributes at their mean).
    pub fn sample_attrs(&self, n: usize, attrs: &str, seed: u64) -> Result<Images> {
        if n == 0 || n > 1_000_000 {
            bail!("sample: n must be between 1 and 1000000, got {n}");
        }
        let cond = self.inner.conds(n, &crate::app::request(None, Some(attrs))?)?;
        Ok(Images { shape: self.shape(), n, data: self.inner.sample(n, seed, &cond) })
    }

    fn sample_labels(&self, n: usize, seed: u64, class: Option<u8>) -> Result<Images> {
        if n == 0 || n > 1_000_000 {
            bail!("sample: n must be between 1 and 1000000, got {n}");
        }
        let cond = self.inner.conds(n, &crate::app::request(class, None)?)?;
        Ok(Images { shape: self.shape(), n, data: self.inner.sample(n, seed, &cond) })
    }

    /// Condition rows for encoding or decoding `n` items: a class model needs its class named;
    /// an attribute model gets every attribute at its mean.
    fn labels_for(&self, n: usize, class: Option<u8>) -> Result<Vec<f32>> {
        let spec = &self.inner.model.spec;
        match class {
            None if spec.has_classes() => {
                bail!("model '{}' is conditional: use encode_class/decode_class with the class", self.model().name())
            }
            None if spec.is_conditioned() => Ok(spec.cond_rows(&crate::models::condition::Request::Attrs(vec![]), n)?),
            None => Ok(Vec::new()),
            Some(c) => self.inner.conds(n, &crate::models::condition::Request::Class(c)),
        }
    }

    /// The encoder's code for each image (posterior means for VAEs), `images.n × latent_dim`
    /// values. Errors for GANs, which have no encoder.
    pub fn encode(&self, images: &Images) -> Result<Vec<f32>> {
        self.encode_labels(images, None)
    }

    /// [`Run::encode`] for conditional encoders, all images of class `class`.
    pub fn encode_class(&self, images: &Images, class: u8) -> Result<Vec<f32>> {
        self.encode_labels(images, Some(class))
    }

    fn encode_labels(&self, images: &Images, class: Option<u8>) -> Result<Vec<f32>> {
        if images.shape != self.shape() {
            bail!(
                "encode: images are {:?} but the model of {} takes {:?}",
                images.shape,
                self.path().display(),
                self.shape()
            );
        }
        let labels = self.labels_for(images.n, class)?;
        self.inner.model.encode_host(&images.data, &labels)
    }

    /// Images for codes `z` (`n × latent_dim` values).
    pub fn decode(&self, z: &[f32]) -> Result<Images> {
        let labels = self.labels_for(z.len() / self.latent_dim().max(1), None)?;
        self.decode_labels(z, &labels)
    }

    /// [`Run::decode`] for conditional models, all codes rendered as class `class`.
    pub fn decode_class(&self, z: &[f32], class: u8) -> Result<Images> {
        let labels = self.labels_for(z.len() / self.latent_dim().max(1), Some(class))?;
        self.decode_labels(z, &labels)
    }

    fn decode_labels(&self, z: &[f32], labels: &[f32]) -> Result<Images> {
        let l = self.latent_dim();
        if z.is_empty() || !z.len().is_multiple_of(l) {
            bail!("decode: {} values are not a whole number of {l}-dimensional codes", z.len());
        }
        if let Some(i) = z.iter().position(|v| !v.is_finite()) {
            bail!("decode: code value {} at index {i} is not finite", z[i]);
        }
        Ok(Images { shape: self.shape(), n: z.len() / l, data: self.inner.model.decode_host(z, labels) })
    }

    /// Measure the model against its dataset (what `latentlab eval` computes, without writing files).
    pub fn evaluate(&self, options: &EvalOptions) -> Result<EvalReport> {
        let data = self.inner.data(None)?;
        let dd = self.inner.cfg.data_dir.as_deref();
        let feats = crate::app::evaluation::features_for(options, &data, dd, &self.inner.model.device)?;
        let info = serde_json::json!({"path": self.path().display().to_string(), "model": self.model().name()});
        let src = Source::Model { model: &self.inner.model, binarize: self.inner.cfg.binarize, run: info };
        crate::eval::evaluate::evaluate(&src, &data, feats.as_ref(), options)
    }
}

/// Score `images` from any generator against the test set of `dataset` (a name like "mnist", or a
/// path; `data_dir` where datasets live, default `$LATENTLAB_DATA`) with latentlab's metrics.
pub fn score(images: &Images, dataset: &str, data_dir: Option<&Path>, options: &EvalOptions) -> Result<EvalReport> {
    let data = data::load(dataset, data_dir)?;
    if images.shape != data.test.shape {
        bail!("score: images are {:?} but dataset '{dataset}' has {:?}", images.shape, data.test.shape);
    }
    let feats = crate::app::evaluation::features_for(options, &data, data_dir, &backend::device(DeviceChoice::Cpu)?)?;
    let src = Source::Samples { images: images.data.clone(), origin: PathBuf::from("<images>") };
    crate::eval::evaluate::evaluate(&src, &data, feats.as_ref(), options)
}
