//! `latentlab eval`: run every applicable metric on a run (or on a sample file) and write
//! `eval.json` — each value beside the protocol that produced it. The metrics themselves are
//! tasks in `tasks/`; this file chooses them, prepares what they share and files their results
//! into an [`EvalReport`].

use super::features::{Features, NetKind};
pub use super::report::{EvalReport, table};
use super::report::{FeatureNetwork, RealCoverage};
use super::tasks::{self, Timer, nll::Nll};
use crate::data::arrays::Layout;
use crate::data::{Binarize, ImageShape, Splits};
use crate::models::Model;
use crate::util::{Stream, rng};
use anyhow::{Result, bail};
use rand::seq::SliceRandom;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Metric {
    /// ELBO and IWAE bound (VAE/CVAE).
    Nll,
    /// Fréchet distance in feature space, with its floor.
    Fid,
    /// Kernel distance (unbiased MMD², cubic kernel).
    Kid,
    /// Precision and recall (k-NN balls in feature space).
    Prd,
    /// Class histogram, classes covered, KL to uniform, classifier score.
    Coverage,
    /// Nearest-training-image distances of samples vs of test images.
    Memorization,
    /// Variance of the Laplacian, samples vs real.
    Sharpness,
    /// Code statistics and how often prior draws decode to recognisable images (encoder models).
    Latent,
    /// Text–image agreement and stage I vs stage II (text models).
    Text,
    /// Attribute rates of samples vs real images and their mean gap (attribute networks: CelebA).
    Attributes,
}

pub const ALL: [Metric; 10] = [
    Metric::Nll,
    Metric::Fid,
    Metric::Kid,
    Metric::Prd,
    Metric::Coverage,
    Metric::Memorization,
    Metric::Sharpness,
    Metric::Latent,
    Metric::Text,
    Metric::Attributes,
];

#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Generated samples (and real images they are compared with).
    pub n: usize,
    pub iwae_k: usize,
    /// Test images for the likelihood bounds [default: all].
    pub iwae_n: Option<usize>,
    /// Samples and test images whose nearest training images are searched.
    pub nn_n: usize,
    pub metrics: Vec<Metric>,
    pub seed: u64,
    pub kid_subsets: usize,
    pub kid_subset_size: usize,
    pub prd_k: usize,
    /// Where the picture of samples beside their nearest training images goes.
    pub nearest_png: Option<PathBuf>,
    pub verbose: bool,
}

impl EvalOptions {
    /// Whether any requested metric looks at generated samples.
    pub fn needs_samples(&self) -> bool {
        use Metric::*;
        [Fid, Kid, Prd, Coverage, Sharpness, Memorization, Attributes].iter().any(|m| self.metrics.contains(m))
    }
    /// Whether any requested metric uses the feature network (which may have to be trained).
    pub fn needs_features(&self) -> bool {
        use Metric::*;
        [Fid, Kid, Prd, Coverage, Memorization, Latent, Text, Attributes].iter().any(|m| self.metrics.contains(m))
    }
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            n: 10_000,
            iwae_k: 5000,
            iwae_n: None,
            nn_n: 10_000,
            metrics: ALL.to_vec(),
            seed: 0,
            kid_subsets: 100,
            kid_subset_size: 1000,
            prd_k: 3,
            nearest_png: None,
            verbose: false,
        }
    }
}

/// What is being evaluated: a run's model, or images from a file.
pub enum Source<'a> {
    Model { model: &'a Model, binarize: Binarize, run: Value },
    Samples { images: Vec<f32>, origin: PathBuf },
}

/// Check a sample array against the dataset: N×C×H×W with the dataset's C, H, W (or N×H×W for one
/// channel) and finite values in [0,1]. `layout` is how the file held the images, so that a bad
/// value is named by the index the user would type in numpy, beside its image position.
pub fn check_samples(dims: &[usize], values: &[f32], shape: ImageShape, origin: &Path, layout: Layout) -> Result<()> {
    let want = [shape.channels, shape.height, shape.width];
    let ok = match dims.len() {
        4 => dims[1..] == want,
        3 => shape.channels == 1 && dims[1..] == want[1..],
        _ => false,
    };
    if !ok {
        bail!(
            "{}: samples have shape {dims:?} but the dataset's images are {}×{}×{} (expected N×{}×{}×{})",
            origin.display(),
            shape.channels,
            shape.height,
            shape.width,
            shape.channels,
            shape.height,
            shape.width
        );
    }
    if dims[0] < 2 {
        bail!("{}: need at least 2 samples, got {}", origin.display(), dims[0]);
    }
    // A little slack for values that were rounded on their way to [0,1].
    let bad = |v: f32| !v.is_finite() || !(-1e-3..=1.0 + 1e-3).contains(&v);
    if let Some(i) = values.iter().position(|&v| bad(v)) {
        let v = values[i];
        let (lo, hi) = values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let plane = shape.height * shape.width;
        let pos = [
            i / shape.len().max(1),
            i / plane.max(1) % shape.channels.max(1),
            i / shape.width.max(1) % shape.height.max(1),
            i % shape.width.max(1),
        ];
        let idx = layout.index(pos);
        let saved = layout.dims(dims[0], shape);
        let flat = idx.iter().zip(&saved).fold(0, |a, (&i, &d)| a * d + i);
        let what = if v.is_finite() { "is outside [0, 1]" } else { "is not a finite number" };
        bail!(
            "{}: value {v} at index {idx:?} (flat index {flat}; image {}, channel {}, row {}, column {}) {what}; \
             finite values found span [{lo}, {hi}] (images must be in [0,1]; for tanh outputs in [-1,1] use (x + 1) / 2)",
            origin.display(),
            pos[0],
            pos[1],
            pos[2],
            pos[3]
        );
    }
    Ok(())
}

/// Run the chosen metrics, one task at a time; returns what `eval.json` holds.
/// `feats` may be None when no requested metric needs it (`EvalOptions::needs_features`).
pub fn evaluate(source: &Source, data: &Splits, feats: Option<&Features>, o: &EvalOptions) -> Result<EvalReport> {
    let t_all = Instant::now();
    let mut tm = Timer::default();
    let shape = data.test.shape;
    let feats = match feats {
        Some(f) if f.meta.shape != shape => {
            bail!("feature network is for {:?} images but the dataset has {:?}", f.meta.shape, shape)
        }
        Some(f) => Some(f),
        None if o.needs_features() => bail!("the requested metrics need the feature network"),
        None => None,
    };
    let has = |m: Metric| o.metrics.contains(&m);
    let say = |s: &str| {
        if o.verbose {
            eprintln!("{s}");
        }
    };
    let mut r = EvalReport::default();

    // Samples.
    let (samples, sample_desc) = match source {
        // `--metrics nll` (or latent) alone: no sample is looked at, none is drawn.
        Source::Model { .. } if !o.needs_samples() => {
            (Vec::new(), "none (no requested metric uses samples)".to_string())
        }
        Source::Model { model, .. } => {
            let n = o.n;
            if n < 2 {
                bail!("--n must be at least 2, got {n}");
            }
            say(&format!("generating {n} samples…"));
            let imgs = tm.time("generate", || Ok(generate(model, n, o.seed)))?;
            let desc = if model.spec.has_classes() {
                format!("{n} prior draws (seed {}), classes balanced (i mod {})", o.seed, model.spec.num_classes)
            } else if model.spec.is_conditioned() {
                format!(
                    "{n} prior draws (seed {}), each with one of {} real training attribute rows in turn",
                    o.seed,
                    crate::models::condition::EXAMPLE_ROWS
                )
            } else {
                format!("{n} prior draws (seed {})", o.seed)
            };
            (imgs, desc)
        }
        Source::Samples { images, origin } => {
            (images.clone(), format!("{} images from {}", images.len() / shape.len(), origin.display()))
        }
    };
    let n = samples.len() / shape.len();

    // Real reference sets: the first n test images; an equally large seeded subset of train.
    let n_real = n.min(data.test.n);
    let test = data.test.head(n_real);
    let mut idx: Vec<usize> = (0..data.train.n).collect();
    idx.shuffle(&mut rng(o.seed, Stream::Eval, 7));
    idx.truncate(n_real);
    let train_sub = data.train.subset(&idx);
    r.protocol.samples = sample_desc;
    r.protocol.n = n;
    r.protocol.n_real = n_real;
    r.protocol.seed = o.seed;
    r.protocol.feature_network = feats.map(|f| FeatureNetwork {
        sha256: f.meta.weights_sha256.clone(),
        dataset: f.meta.dataset.clone(),
        kind: Some(f.kind().name().into()),
        test_accuracy: f.meta.test_accuracy,
        path: f.path.display().to_string(),
        layer: "penultimate (128 ReLU units)".into(),
        epochs: f.meta.epochs,
        seed: f.meta.seed,
    });
    if n_real < n {
        r.notes.n_real = Some(format!("only {n_real} test images: real sets are smaller than n"));
    }

    // The attributes an attribute-conditioned model drew each sample with (`generate`'s rows).
    let cond_names = match source {
        Source::Model { model, .. } => model.spec.cond_attributes(),
        Source::Samples { .. } => Vec::new(),
    };
    let cond_rows = match source {
        Source::Model { model, .. } if !cond_names.is_empty() => model.spec.cond_default(n),
        _ => Vec::new(),
    };
    let conditions = (!cond_names.is_empty()).then_some((cond_names.as_slice(), cond_rows.as_slice()));
    let mut cx =
        tasks::Ctx { data, o, feats, samples: &samples, n, test: &test, train_sub: &train_sub, emb: None, conditions };
    // Class coverage needs class probabilities, attribute coverage attribute probabilities.
    let attribute_net = feats.is_some_and(|f| f.kind() == NetKind::Attributes);
    let (class_coverage, attribute_coverage) =
        (has(Metric::Coverage) && !attribute_net, has(Metric::Attributes) && attribute_net);
    let emb = if [Metric::Fid, Metric::Kid, Metric::Prd].iter().any(|&m| has(m)) || class_coverage || attribute_coverage
    {
        say("embedding samples and test images…");
        Some(tasks::embed(&cx, &mut tm)?)
    } else {
        None
    };
    cx.emb = emb.as_ref();

    if has(Metric::Fid) {
        say("FID…");
        let m = tasks::fid::run(&cx, &mut tm)?;
        (r.fid, r.fid_floor, r.protocol.fid) = (Some(m.values.fid), Some(m.values.floor), Some(m.protocol));
    }
    if has(Metric::Kid) {
        say("KID…");
        let m = tasks::kid::run(&cx, &mut tm)?;
        (r.kid, r.kid_std, r.protocol.kid) = (Some(m.values.mean), Some(m.values.std), Some(m.protocol));
    }
    if has(Metric::Prd) {
        say("precision/recall…");
        let m = tasks::prd::run(&cx, &mut tm)?;
        (r.precision, r.recall, r.protocol.prd) = (Some(m.values.precision), Some(m.values.recall), Some(m.protocol));
    }
    if has(Metric::Coverage) && attribute_net {
        r.notes.coverage = Some(tasks::attributes::NO_CLASSES.into());
        r.protocol.coverage = Some(tasks::attributes::NO_CLASSES.into());
    }
    if attribute_coverage {
        say("attribute rates…");
        let m = tasks::attributes::run(&cx, &mut tm)?;
        r.attribute_gap = Some(m.values.gap);
        r.attribute_gap_floor = Some(m.values.floor);
        r.attribute_gap_worst = Some(m.values.worst);
        r.attribute_rates = Some(m.values.per_attribute);
        r.protocol.attributes = Some(m.protocol);
        if let Some(a) = tasks::attributes::agreement(&cx)? {
            r.condition_agreement = Some(a.values);
            r.protocol.condition_agreement = Some(a.protocol);
        }
    }
    if class_coverage {
        let m = tasks::coverage::run(&cx)?;
        let (c, real) = (m.values.samples, m.values.real);
        r.classes_covered = Some(c.classes_covered);
        r.class_kl = Some(c.class_kl);
        r.classifier_score = Some(c.classifier_score);
        r.class_histogram = Some(c.histogram);
        r.coverage_real = Some(RealCoverage {
            classes_covered: real.classes_covered,
            class_kl: real.class_kl,
            classifier_score: real.classifier_score,
        });
        r.protocol.coverage = Some(m.protocol);
    }
    if has(Metric::Sharpness) {
        let m = tasks::sharpness::run(&cx, &mut tm)?;
        (r.sharpness, r.sharpness_real, r.protocol.sharpness) =
            (Some(m.values.samples), Some(m.values.real), Some(m.protocol));
    }
    if has(Metric::Memorization) {
        say("nearest training images…");
        let m = tasks::memorization::run(&cx, &mut tm)?;
        r.nn_ratio = m.values.pixel.ratio;
        r.memorization = Some(m.values);
        r.protocol.memorization = Some(m.protocol);
    }

    if let Source::Model { model, binarize, run } = source {
        r.protocol.run = Some(run.clone());
        if has(Metric::Nll) {
            match tasks::nll::run(model, *binarize, data, o, &mut tm)? {
                Nll::Measured(m) => {
                    (r.iwae_nll, r.iwae_k, r.elbo) = (Some(m.values.iwae_nll), Some(m.values.k), Some(m.values.elbo));
                    r.protocol.nll = Some(m.protocol);
                }
                Nll::Undefined(why) => r.notes.nll = Some(why.into()),
            }
        }
        if has(Metric::Latent) && model.spec.kind.has_encoder() {
            r.latent = Some(tm.time("latent", || tasks::latent::run(model, data, cx.feats()?, o.seed))?);
        }
        if has(Metric::Text) && model.spec.kind.decl().text {
            say("text–image agreement, stage I and II…");
            if let Some(m) = tm.time("text", || tasks::text::run(model, data, cx.feats()?, o.n, o.seed))? {
                (r.text, r.protocol.text) = (Some(m.values), Some(m.protocol));
            }
        }
    }
    r.protocol.seconds = tm.0.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    r.protocol.seconds.insert("total".into(), t_all.elapsed().as_secs_f64());
    Ok(r)
}

/// `n` samples in [0,1] from the prior; conditional models cycle through the classes, or through
/// the real attribute combinations the model keeps (`ModelSpec::cond_default`).
pub fn generate(model: &Model, n: usize, seed: u64) -> Vec<f32> {
    let z = model.prior(n, &mut rng(seed, Stream::Sample, 0));
    model.decode_host(&z, &model.spec.cond_default(n))
}
