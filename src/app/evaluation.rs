//! Evaluate a run (or a .npy/.npz file of samples) against its dataset; writes eval.json.

use super::OpenRun;
use crate::backend::{self, DeviceChoice};
use crate::data;
use crate::run::Which;
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct EvalRequest {
    /// Run folder to evaluate (omit when scoring a file with --samples).
    pub run: Option<PathBuf>,
    /// Score images from a .npy or .npz file instead of a run: float32/64/16 in [0,1] or uint8
    /// in 0–255, laid out N×C×H×W, N×H×W×C or N×H×W (inferred from the dataset's image shape).
    #[arg(long)]
    pub samples: Option<PathBuf>,
    /// Array of the --samples .npz to score [default: its only array].
    #[arg(long, requires = "samples")]
    pub key: Option<String>,
    /// Axis order of the --samples array, when its shape fits more than one (e.g. 3×3×3 images).
    #[arg(long, value_enum, requires = "samples")]
    pub layout: Option<data::arrays::Layout>,
    /// Dataset to compare with [default: the run's; required with --samples].
    #[arg(long)]
    pub dataset: Option<String>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Generated samples (and real images) for the sample-based metrics.
    #[arg(long, default_value_t = 10_000)]
    pub n: usize,
    /// Importance samples per test image for the IWAE bound.
    #[arg(long, default_value_t = 5000)]
    pub iwae_k: usize,
    /// Test images for the likelihood bounds [default: the whole test set].
    #[arg(long)]
    pub iwae_n: Option<usize>,
    /// Samples and test images whose nearest training images are searched.
    #[arg(long, default_value_t = 10_000)]
    pub nn_n: usize,
    /// Metrics to compute, comma-separated [default: all that apply].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub metrics: Vec<crate::eval::evaluate::Metric>,
    /// Seed of every random draw of the evaluation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output JSON [default: <run>/eval.json, or <samples>.eval.json].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Which::Latest)]
    pub checkpoint: Which,
    /// Where the model's samples, the likelihood bounds and the feature network run.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

/// What an evaluation wrote: the table to show and the JSON file.
pub struct Evaluated {
    pub table: String,
    pub out: PathBuf,
}

/// Measure, and write the report as JSON.
pub fn evaluate(a: EvalRequest) -> Result<Evaluated> {
    use crate::eval::evaluate::{self, EvalOptions, Source};
    let device = backend::device(a.device)?;
    let mut o = EvalOptions {
        n: a.n,
        iwae_k: a.iwae_k,
        iwae_n: a.iwae_n,
        nn_n: a.nn_n,
        seed: a.seed,
        verbose: true,
        ..Default::default()
    };
    if !a.metrics.is_empty() {
        o.metrics = a.metrics.clone();
    }
    let (report, out) = match (&a.run, &a.samples) {
        (Some(_), Some(_)) => bail!("give either a run folder or --samples FILE, not both"),
        (None, None) => bail!("nothing to evaluate: give a run folder, or --samples FILE.npy|.npz --dataset NAME"),
        (None, Some(file)) => {
            let Some(ds) = &a.dataset else {
                bail!("--samples {}: also give --dataset NAME to compare the samples with", file.display())
            };
            let data = data::load(ds, a.data_dir.as_deref())?;
            let s = data::arrays::load_samples(file, a.key.as_deref(), data.test.shape, a.layout)?;
            eprintln!("{}", s.note);
            let shape = data.test.shape;
            let dims = [s.n, shape.channels, shape.height, shape.width];
            evaluate::check_samples(&dims, &s.images, shape, file, s.layout)?;
            let images = s.images;
            let feats = features_for(&o, &data, a.data_dir.as_deref(), &device)?;
            let out = a.out.clone().unwrap_or_else(|| file.with_extension("eval.json"));
            o.nearest_png = Some(out.with_extension("nearest.png"));
            let src = Source::Samples { images, origin: file.clone() };
            (evaluate::evaluate(&src, &data, feats.as_ref(), &o)?, out)
        }
        (Some(run_path), None) => {
            let run = OpenRun::open(run_path, a.checkpoint, device.clone())?;
            let (cfg, model, state) = (&run.cfg, &run.model, &run.state);
            let ds = a.dataset.clone().unwrap_or(cfg.dataset.clone());
            let dd = a.data_dir.clone().or(cfg.data_dir.clone());
            let data = data::load_with(&ds, dd.as_deref(), &cfg.transform())?;
            if data.test.shape != model.spec.shape {
                bail!(
                    "dataset '{ds}' has {:?} images but the model of {} makes {:?}",
                    data.test.shape,
                    run_path.display(),
                    model.spec.shape
                );
            }
            let feats = features_for(&o, &data, dd.as_deref(), &device)?;
            o.nearest_png = Some(run.dir.final_file("nearest.png"));
            let info = serde_json::json!({
                "path": run_path.display().to_string(), "model": model.spec.kind.name(), "dataset": ds,
                "epochs": state.epoch, "steps": state.step, "train_seconds": state.wall_secs,
                "checkpoint": format!("{:?}", a.checkpoint).to_lowercase(),
            });
            let src = Source::Model { model, binarize: cfg.binarize, run: info };
            (evaluate::evaluate(&src, &data, feats.as_ref(), &o)?, a.out.clone().unwrap_or_else(|| run.dir.eval()))
        }
    };
    crate::util::write_atomic(&out, serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(Evaluated { table: evaluate::table(&report), out })
}

/// The feature network when a requested metric needs it (trained and cached on first use).
pub fn features_for(
    o: &crate::eval::evaluate::EvalOptions,
    data: &data::Splits,
    data_dir: Option<&std::path::Path>,
    device: &burn::prelude::Device,
) -> Result<Option<crate::eval::features::Features>> {
    o.needs_features()
        .then(|| {
            crate::eval::features::load_or_train(data, &data::data_dir(data_dir), false, o.verbose)
                .map(|f| f.to_device(device))
        })
        .transpose()
}
