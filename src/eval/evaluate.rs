//! `latentlab eval`: run every applicable metric on a run (or on a sample file) and write
//! `eval.json` — each value beside the protocol that produced it.

use super::features::{Embedding, Features, unit};
use super::{coverage, fid, kid, knn, likelihood, prd, sharpness, stats};
use crate::data::{Binarize, Dataset, ImageShape, Loader, Range, Splits};
use crate::models::{Model, ModelKind};
use crate::util::{Stream, rng};
use anyhow::{Context, Result, bail};
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use std::collections::BTreeMap;
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
}

pub const ALL: [Metric; 8] = [
    Metric::Nll,
    Metric::Fid,
    Metric::Kid,
    Metric::Prd,
    Metric::Coverage,
    Metric::Memorization,
    Metric::Sharpness,
    Metric::Latent,
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
        [Fid, Kid, Prd, Coverage, Sharpness, Memorization].iter().any(|m| self.metrics.contains(m))
    }
    /// Whether any requested metric uses the feature network (which may have to be trained).
    pub fn needs_features(&self) -> bool {
        use Metric::*;
        [Fid, Kid, Prd, Coverage, Memorization, Latent].iter().any(|m| self.metrics.contains(m))
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

/// Check a sample array against the dataset: N×C×H×W with the dataset's C, H, W and values in [0,1].
pub fn check_samples(dims: &[usize], values: &[f32], shape: ImageShape, origin: &Path) -> Result<()> {
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
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite() || **v < -1e-3 || **v > 1.0 + 1e-3) {
        bail!(
            "{}: value {v} at flat index {i} is outside [0, 1] (images must be in [0,1]; for tanh outputs in \
             [-1,1] use (x + 1) / 2)",
            origin.display()
        );
    }
    Ok(())
}

struct Timer(BTreeMap<&'static str, f64>);
impl Timer {
    fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let t = Instant::now();
        let r = f();
        *self.0.entry(name).or_default() += t.elapsed().as_secs_f64();
        r
    }
}

fn quantile_obj(v: &[f32]) -> Value {
    let qs = [0.05, 0.25, 0.5, 0.75, 0.95];
    let q = stats::quantiles(v, &qs);
    json!({"q05": q[0], "q25": q[1], "median": q[2], "q75": q[3], "q95": q[4], "mean": stats::mean_std(v).0})
}

/// Run the chosen metrics; returns the eval.json object.
/// `feats` may be None when no requested metric needs it (`EvalOptions::needs_features`).
pub fn evaluate(source: &Source, data: &Splits, feats: Option<&Features>, o: &EvalOptions) -> Result<Value> {
    let t_all = Instant::now();
    let mut tm = Timer(BTreeMap::new());
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
    let mut out = serde_json::Map::new();
    for k in [
        "fid",
        "fid_floor",
        "kid",
        "kid_std",
        "precision",
        "recall",
        "classes_covered",
        "class_kl",
        "classifier_score",
        "iwae_nll",
        "iwae_k",
        "elbo",
        "nn_ratio",
        "sharpness",
        "sharpness_real",
    ] {
        out.insert(k.into(), Value::Null);
    }
    let mut protocol = serde_json::Map::new();
    let mut notes = serde_json::Map::new();

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
            let desc = if model.spec.kind.is_conditional() {
                format!("{n} prior draws (seed {}), classes balanced (i mod {})", o.seed, model.spec.num_classes)
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
    protocol.insert("samples".into(), json!(sample_desc));
    protocol.insert("n".into(), json!(n));

    // Real reference sets: the first n test images; an equally large seeded subset of train.
    let n_real = n.min(data.test.n);
    let test = data.test.head(n_real);
    let mut idx: Vec<usize> = (0..data.train.n).collect();
    idx.shuffle(&mut rng(o.seed, Stream::Eval, 7));
    idx.truncate(n_real);
    let train_sub = data.train.subset(&idx);
    protocol.insert("n_real".into(), json!(n_real));
    if let Some(feats) = feats {
        protocol.insert(
            "feature_network".into(),
            json!({
                "sha256": feats.meta.weights_sha256, "dataset": feats.meta.dataset, "test_accuracy": feats.meta.test_accuracy,
                "path": feats.path.display().to_string(), "layer": "penultimate (128 ReLU units)", "epochs": feats.meta.epochs,
                "seed": feats.meta.seed,
            }),
        );
    }
    // Present whenever a metric that uses it was requested (checked above).
    let feats = || feats.context("feature network");
    protocol.insert("seed".into(), json!(o.seed));
    if n_real < n {
        notes.insert("n_real".into(), json!(format!("only {n_real} test images: real sets are smaller than n")));
    }

    let need_embed = [Metric::Fid, Metric::Kid, Metric::Prd, Metric::Coverage].iter().any(|&m| has(m));
    let mut emb: Option<(Embedding, Embedding)> = None;
    if need_embed {
        say("embedding samples and test images…");
        let s = tm.time("features", || feats()?.embed(&samples))?;
        let t = tm.time("features", || feats()?.embed_dataset(&test))?;
        emb = Some((s, t));
    }

    if has(Metric::Fid)
        && let Some((s, t)) = &emb
    {
        say("FID…");
        let tr = tm.time("features", || feats()?.embed_dataset(&train_sub))?;
        let d = super::features::FEATURE_DIM;
        out.insert("fid".into(), json!(tm.time("fid", || fid::fid(&s.features, &t.features, d))?));
        out.insert("fid_floor".into(), json!(tm.time("fid", || fid::fid(&tr.features, &t.features, d))?));
        protocol.insert(
            "fid".into(),
            json!(format!(
                "Fréchet distance of feature Gaussians (f64, symmetric eigendecomposition): {n} samples vs {n_real} test \
                 images; floor = {n_real} random training images vs the same test images"
            )),
        );
    }
    if has(Metric::Kid)
        && let Some((s, t)) = &emb
    {
        say("KID…");
        let k = tm.time("kid", || {
            kid::kid(&s.features, &t.features, super::features::FEATURE_DIM, o.kid_subsets, o.kid_subset_size, o.seed)
        })?;
        out.insert("kid".into(), json!(k.mean));
        out.insert("kid_std".into(), json!(k.std));
        protocol.insert(
            "kid".into(),
            json!(format!(
                "unbiased MMD², kernel (x·y/d + 1)³, {} subsets of {} (samples vs test)",
                k.subsets, k.subset_size
            )),
        );
    }
    if has(Metric::Prd)
        && let Some((s, t)) = &emb
    {
        say("precision/recall…");
        let pr =
            tm.time("prd", || prd::precision_recall(&t.features, &s.features, super::features::FEATURE_DIM, o.prd_k))?;
        out.insert("precision".into(), json!(pr.precision));
        out.insert("recall".into(), json!(pr.recall));
        protocol.insert(
            "prd".into(),
            json!(format!("Kynkäänniemi et al. 2019, k = {} nearest-neighbour balls in feature space", pr.k)),
        );
    }
    if has(Metric::Coverage)
        && let Some((s, t)) = &emb
    {
        let c = coverage::coverage(&s.probs, s.classes)?;
        let real = coverage::coverage(&t.probs, t.classes)?;
        out.insert("classes_covered".into(), json!(c.classes_covered));
        out.insert("class_kl".into(), json!(c.class_kl));
        out.insert("classifier_score".into(), json!(c.classifier_score));
        out.insert("class_histogram".into(), json!(c.histogram));
        out.insert(
            "coverage_real".into(),
            json!({"classes_covered": real.classes_covered, "class_kl": real.class_kl, "classifier_score": real.classifier_score}),
        );
        protocol.insert(
            "coverage".into(),
            json!(format!(
                "classifier argmax over {n} samples; a class is covered with ≥ {} samples; KL(p̂(y) ‖ uniform) in nats; \
                 classifier score = exp E KL(p(y|x) ‖ p(y))",
                c.coverage_threshold
            )),
        );
    }
    if has(Metric::Sharpness) {
        let s = tm
            .time("sharpness", || sharpness::laplacian_variance(&samples, shape.channels, shape.height, shape.width))?;
        let r = tm.time("sharpness", || {
            sharpness::laplacian_variance(&unit(&test.images), shape.channels, shape.height, shape.width)
        })?;
        out.insert("sharpness".into(), json!(s));
        out.insert("sharpness_real".into(), json!(r));
        protocol.insert(
            "sharpness".into(),
            json!("variance of the 3×3 Laplacian response over each image's interior, mean over images ([0,1] pixels)"),
        );
    }
    if has(Metric::Memorization) {
        say("nearest training images…");
        let m = o.nn_n.min(n).min(data.test.n);
        let v = tm.time("memorization", || {
            memorization(&samples, &data.train, &data.test, m, feats()?, o.nearest_png.as_deref())
        })?;
        out.insert("nn_ratio".into(), v["pixel"]["ratio"].clone());
        out.insert("memorization".into(), v);
        protocol.insert(
            "memorization".into(),
            json!(format!(
                "L2 distance to the nearest of all {} training images, pixel space ([0,1]) and feature space, for {m} \
                 samples and {m} test images; nn_ratio = median(sample→train) / median(test→train) in pixels \
                 (< 1: samples sit closer to training images than unseen real images do)",
                data.train.n
            )),
        );
    }

    if let Source::Model { model, binarize, run } = source {
        protocol.insert("run".into(), run.clone());
        if has(Metric::Nll) {
            match likelihood::VaeLvm::from_net(&model.spec, &model.net) {
                Some(lvm) => {
                    let v = tm.time("nll", || nll(&lvm, model, data, *binarize, o))?;
                    out.insert("iwae_nll".into(), v["iwae_nll"].clone());
                    out.insert("iwae_k".into(), v["k"].clone());
                    out.insert("elbo".into(), v["elbo"].clone());
                    protocol.insert("nll".into(), v["protocol"].clone());
                }
                None => {
                    notes.insert(
                        "nll".into(),
                        json!(match model.spec.kind {
                            ModelKind::Ae | ModelKind::Aae =>
                                "not defined: a deterministic encoder/decoder has no likelihood model",
                            _ => "not defined: a GAN has no likelihood (implicit density)",
                        }),
                    );
                }
            }
        }
        if has(Metric::Latent) && model.spec.kind.has_encoder() {
            out.insert("latent".into(), tm.time("latent", || latent_diagnostics(model, data, feats()?, o.seed))?);
        }
    }
    if !notes.is_empty() {
        out.insert("notes".into(), Value::Object(notes));
    }
    let mut timing: serde_json::Map<String, Value> = tm.0.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    timing.insert("total".into(), json!(t_all.elapsed().as_secs_f64()));
    protocol.insert("seconds".into(), Value::Object(timing));
    out.insert("protocol".into(), Value::Object(protocol));
    Ok(Value::Object(out))
}

/// `n` samples in [0,1] from the prior; conditional models cycle through the classes.
pub fn generate(model: &Model, n: usize, seed: u64) -> Vec<f32> {
    let labels: Vec<u8> = if model.spec.kind.is_conditional() {
        (0..n).map(|i| (i % model.spec.num_classes) as u8).collect()
    } else {
        vec![]
    };
    let z = model.prior(n, &mut rng(seed, Stream::Sample, 0));
    model.decode_host(&z, &labels)
}

fn nll(lvm: &likelihood::VaeLvm, model: &Model, data: &Splits, binarize: Binarize, o: &EvalOptions) -> Result<Value> {
    let n = o.iwae_n.unwrap_or(data.test.n).min(data.test.n);
    let test = data.test.head(n);
    // Binarised runs are scored on one fixed dynamic binarisation of the test set (the standard
    // protocol); grey-level runs on the grey test set.
    let bin = if binarize == Binarize::None { Binarize::None } else { Binarize::Dynamic };
    let batches = Loader::new(&test, 1000, bin, Range::Unit, 0).eval_batches(1000);
    let x: Vec<f32> = batches.iter().flat_map(|b| b.x.iter().copied()).collect();
    let labels: Vec<u8> = batches.iter().flat_map(|b| b.labels.iter().copied()).collect();
    let pb = crate::train::progress(n as u64, &format!("IWAE k={}", o.iwae_k), o.verbose);
    let t = Instant::now();
    let b =
        likelihood::bounds(lvm, &x, &labels, test.shape.len(), o.iwae_k, o.seed, &mut |d| pb.set_position(d as u64))?;
    pb.finish_and_clear();
    let test_set = match bin {
        Binarize::None => {
            "grey-level test images in [0,1] (not binarised: not comparable with binarised-MNIST numbers)".to_string()
        }
        _ => "test images dynamically binarised once with the fixed seed 0x7E57".to_string(),
    };
    let decoder = match model.spec.decoder {
        crate::models::DecoderKind::Bernoulli => "Bernoulli decoder: nats of the binary image",
        crate::models::DecoderKind::Gaussian => "Gaussian decoder: density in nats, constant included",
    };
    Ok(json!({
        "iwae_nll": b.iwae_nll(),
        "elbo": b.elbo_mean(),
        "k": o.iwae_k,
        "protocol": {
            "images": n, "k": o.iwae_k, "seed": o.seed, "test_set": test_set, "decoder": decoder,
            "bound": "IWAE_K = log-mean-exp of K importance weights (max subtracted, f64 accumulation); ELBO = mean log-weight of the same draws",
            "seconds": t.elapsed().as_secs_f64(),
        }
    }))
}

/// Nearest training images of samples and of test images, in pixels and in features.
fn memorization(
    samples: &[f32],
    train: &Dataset,
    test: &Dataset,
    m: usize,
    feats: &Features,
    png: Option<&Path>,
) -> Result<Value> {
    let d = train.shape.len();
    let s = &samples[..m * d];
    let t = unit(&test.images[..m * d]);
    let tr = unit(&train.images);
    let ns = knn::nearest(s, &tr, d, 3)?;
    let nt = knn::nearest(&t, &tr, d, 1)?;
    let ds: Vec<f32> = ns.iter().map(|v| v[0].1).collect();
    let dt: Vec<f32> = nt.iter().map(|v| v[0].1).collect();
    let fs = feats.embed(s)?;
    let ft = feats.embed(&t)?;
    let ftr = feats.embed(&tr)?;
    let k = super::features::FEATURE_DIM;
    let fds: Vec<f32> = knn::nearest(&fs.features, &ftr.features, k, 1)?.iter().map(|v| v[0].1).collect();
    let fdt: Vec<f32> = knn::nearest(&ft.features, &ftr.features, k, 1)?.iter().map(|v| v[0].1).collect();
    let med = |v: &[f32]| stats::quantiles(v, &[0.5])[0];
    let ratio = |a: &[f32], b: &[f32]| {
        let mb = med(b);
        if mb > 0.0 { Some(med(a) / mb) } else { None }
    };
    if let Some(p) = png {
        // Rows: a sample, then its 3 nearest training images.
        let rows = m.min(8);
        let mut img = Vec::with_capacity(rows * 4 * d);
        for (i, nn) in ns.iter().take(rows).enumerate() {
            img.extend_from_slice(&s[i * d..(i + 1) * d]);
            for &(j, _) in nn {
                img.extend_from_slice(&tr[j * d..(j + 1) * d]);
            }
        }
        crate::viz::grid::save_grid(&img, train.shape, 4, p)?;
    }
    Ok(json!({
        "n": m,
        "pixel": {"samples": quantile_obj(&ds), "test": quantile_obj(&dt), "ratio": ratio(&ds, &dt)},
        "feature": {"samples": quantile_obj(&fds), "test": quantile_obj(&fdt), "ratio": ratio(&fds, &fdt)},
        "exact_copies": ds.iter().filter(|&&v| v < 1e-3).count(),
        "nearest_png": png.map(|p| p.display().to_string()),
    }))
}

/// Encoder models: per-axis code statistics on test images and how often prior draws decode to
/// images the classifier is confident about (≥ 0.9), beside the same rate for real test images.
pub fn latent_diagnostics(model: &Model, data: &Splits, feats: &Features, seed: u64) -> Result<Value> {
    let n = data.test.n.min(5000);
    let test = data.test.head(n);
    let batches = Loader::new(&test, 1000, Binarize::None, Range::Unit, 0).eval_batches(1000);
    let mut codes = Vec::new();
    for b in &batches {
        codes.extend(model.encode_host(&b.x, &b.labels)?);
    }
    let l = model.spec.latent_dim;
    let axes: Vec<Value> = (0..l)
        .map(|j| {
            let col: Vec<f32> = codes.chunks(l).map(|r| r[j]).collect();
            let (m, s) = stats::mean_std(&col);
            json!({"mean": m, "std": s})
        })
        .collect();
    let imgs = generate(model, n, seed);
    let conf = |e: &Embedding| {
        e.probs.chunks(e.classes).filter(|r| r.iter().cloned().fold(0f32, f32::max) >= 0.9).count() as f64
            / e.n.max(1) as f64
    };
    let prior_conf = conf(&feats.embed(&imgs)?);
    let real_conf = conf(&feats.embed_dataset(&test)?);
    Ok(json!({
        "axes": axes,
        "prior": format!("{:?}", model.spec.prior).to_lowercase(),
        "confident_fraction_prior": prior_conf,
        "confident_fraction_real": real_conf,
        "protocol": format!("codes of {n} test images; {n} prior draws decoded and classified, confident = max softmax ≥ 0.9"),
    }))
}

/// A table for the terminal.
pub fn table(v: &Value) -> String {
    let f = |k: &str, prec: usize| match &v[k] {
        Value::Null => "—".to_string(),
        Value::Number(x) => {
            let x = x.as_f64().unwrap_or(f64::NAN);
            if x.abs() >= 1e-3 || x == 0.0 { format!("{x:.prec$}") } else { format!("{x:.3e}") }
        }
        other => other.to_string(),
    };
    let rows = [
        ("FID (↓)", f("fid", 3), format!("floor {}", f("fid_floor", 3))),
        ("KID (↓)", f("kid", 5), format!("± {}", f("kid_std", 5))),
        ("precision (↑)", f("precision", 4), String::new()),
        ("recall (↑)", f("recall", 4), String::new()),
        ("classes covered", f("classes_covered", 0), format!("KL to uniform {}", f("class_kl", 4))),
        ("classifier score", f("classifier_score", 3), String::new()),
        ("IWAE NLL (nats, ↓)", f("iwae_nll", 2), format!("k = {}", f("iwae_k", 0))),
        ("ELBO (nats)", f("elbo", 2), String::new()),
        ("NN ratio", f("nn_ratio", 3), "median sample→train / test→train (pixels)".into()),
        ("sharpness", f("sharpness", 5), format!("real {}", f("sharpness_real", 5))),
    ];
    let mut s = String::new();
    for (name, val, note) in rows {
        s.push_str(&format!("{name:<20} {val:>12}  {note}\n"));
    }
    if let Some(notes) = v.get("notes").and_then(Value::as_object) {
        for (k, n) in notes {
            s.push_str(&format!("note ({k}): {}\n", n.as_str().unwrap_or_default()));
        }
    }
    s
}
