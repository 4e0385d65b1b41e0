//! Pictures from a trained run: samples, the latent map, latent walks, latent arithmetic. Each
//! function writes its files and returns their paths; the CLI prints them.

use super::OpenRun;
pub use super::arithmetic::{ArithmeticRequest, arithmetic};
use crate::backend::{self, DeviceChoice};
use crate::models::Model;
use crate::models::stackgan::Stage;
use crate::run::Which;
use crate::util::{Stream, rng};
use crate::viz;
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct SampleRequest {
    pub run: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// Output: .png (grid) or .npy (N×C×H×W float32 in [0,1]) [default: <run>/final/sample.png].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Class to generate (class-conditional models).
    #[arg(long)]
    pub class: Option<u8>,
    /// Attributes to generate (models trained with --condition attributes), e.g.
    /// Smiling,Eyeglasses,-Male (a minus: absent; unnamed ones at their average). Repeat for
    /// several: one row of --n samples per set, the same codes in every row.
    #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["class", "text"])]
    pub attr: Vec<String>,
    /// Caption to draw (text models; repeat for several: one row of --n samples per caption, the
    /// same codes in every row).
    #[arg(long, conflicts_with = "class")]
    pub text: Vec<String>,
    /// Which stage's images a StackGAN gives.
    #[arg(long, value_enum, default_value_t = Stage::Two)]
    pub stage: Stage,
    /// Seed of the prior draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Grid columns [default: √n].
    #[arg(long)]
    pub ncol: Option<usize>,
    /// GANs trained with --ema: sample from G's own weights instead of their moving average (to
    /// see, or score with `eval --samples`, what the average changes).
    #[arg(long)]
    pub no_average: bool,
    #[arg(long, value_enum, default_value_t = Which::Latest)]
    pub checkpoint: Which,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

#[derive(Args, Debug, Clone)]
pub struct LatentMapRequest {
    pub run: PathBuf,
    /// Output folder [default: <run>/final].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Test images to encode for the scatter.
    #[arg(long, default_value_t = 5000)]
    pub n: usize,
    /// Manifold grid size (images per side).
    #[arg(long, default_value_t = 20)]
    pub grid: usize,
    /// Class whose manifold to draw (conditional models).
    #[arg(long, default_value_t = 0)]
    pub class: u8,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Which::Latest)]
    pub checkpoint: Which,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

#[derive(Args, Debug, Clone)]
pub struct WalkRequest {
    pub run: PathBuf,
    /// Number of walks (rows).
    #[arg(long, default_value_t = 8)]
    pub rows: usize,
    /// Images per walk, both ends included.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Spherical interpolation (keeps Gaussian codes at a typical norm).
    #[arg(long)]
    pub slerp: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Class of every row (conditional models) [default: row i is class i mod K].
    #[arg(long)]
    pub class: Option<u8>,
    /// Attributes of every image (attribute-conditioned models), e.g. Smiling,-Male
    /// [default: row i has the i-th kept real attribute combination].
    #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["class", "text"])]
    pub attr: Option<String>,
    /// Caption of every image (text models); with --to, each row walks from this caption to that
    /// one with its code fixed.
    #[arg(long, conflicts_with = "class")]
    pub text: Option<String>,
    /// The caption a walk ends at (with --text).
    #[arg(long, requires = "text")]
    pub to: Option<String>,
    /// Output PNG [default: <run>/final/walk.png].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Which::Latest)]
    pub checkpoint: Which,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

/// Samples from the prior as a PNG grid or a .npy array.
pub fn sample(a: SampleRequest) -> Result<PathBuf> {
    if a.n == 0 || a.n > 1_000_000 {
        bail!("--n must be between 1 and 1000000, got {}", a.n);
    }
    let mut run = OpenRun::open(&a.run, a.checkpoint, backend::device(a.device)?)?;
    if a.no_average {
        match &mut run.model.net {
            crate::models::Net::Gan(m) if m.g_ema.is_some() => m.g_ema = None,
            _ => bail!("--no-average: {} keeps no weight average (train a GAN with --ema)", a.run.display()),
        }
    }
    let model = &run.model;
    check_stage(model, a.stage)?;
    let (imgs, rows) = if !a.attr.is_empty() {
        if a.attr.len() * a.n > 1_000_000 {
            bail!("--n × attribute sets must be at most 1000000");
        }
        let mut cond = Vec::new();
        for set in &a.attr {
            cond.extend(run.conds(a.n, &super::request(None, Some(set))?)?);
        }
        (model.decode_host(&run.prior_sheet(a.n, a.seed).repeat(a.attr.len()), &cond), a.attr.len())
    } else if a.text.is_empty() {
        let imgs = if model.spec.kind.decl().text {
            // Class captions ("a seven"), or the run's kept training captions where it has no classes.
            let cond = run.conds(a.n, &super::request(a.class, None)?)?;
            model.decode_bow_host(&run.prior_sheet(a.n, a.seed), &cond, a.stage)
        } else {
            run.sample(a.n, a.seed, &run.conds(a.n, &super::request(a.class, None)?)?)
        };
        (imgs, 1)
    } else {
        if a.text.len() * a.n > 1_000_000 {
            bail!("--n × captions must be at most 1000000");
        }
        let z = run.prior_sheet(a.n, a.seed).repeat(a.text.len());
        let captions: Vec<String> = a.text.iter().flat_map(|c| std::iter::repeat_n(c.clone(), a.n)).collect();
        (model.decode_text_host(&z, &captions, a.stage)?, a.text.len())
    };
    let out = a.out.unwrap_or_else(|| run.dir.final_file("sample.png"));
    match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("npy") => viz::grid::save_npy(&imgs, model.spec.shape, &out)?,
        Some("png") => {
            let square = (a.n as f64).sqrt().ceil() as usize;
            let ncol = a.ncol.unwrap_or(if rows > 1 { a.n } else { square });
            viz::grid::save_grid(&imgs, model.spec.shape, ncol, &out)?
        }
        _ => bail!("--out {}: use a .png (image grid) or .npy (array) file name", out.display()),
    }
    Ok(out)
}

/// The scatter of test-set codes by class and the decoded latent manifold.
pub fn latent_map(a: LatentMapRequest) -> Result<Vec<PathBuf>> {
    let run = OpenRun::open(&a.run, a.checkpoint, backend::device(a.device)?)?;
    let model = &run.model;
    if a.grid < 2 || a.grid > 100 {
        bail!("--grid must be between 2 and 100, got {}", a.grid);
    }
    // Models without classes ignore --class (its default is 0).
    if model.spec.has_classes() {
        run.check_class(a.class)?;
    }
    let data = run.data(a.data_dir.as_deref())?;
    let out = a.out.unwrap_or_else(|| run.dir.final_dir());
    viz::latent::latent_map(model, &data, &out, a.n.max(1), a.class, a.grid)
}

/// Latent walks: each row interpolates between two prior codes.
pub fn walk(a: WalkRequest) -> Result<PathBuf> {
    if a.rows == 0 || a.rows > 100 || a.steps < 2 || a.steps > 100 {
        bail!("--rows must be 1..=100 and --steps 2..=100 (got {} and {})", a.rows, a.steps);
    }
    let run = OpenRun::open(&a.run, a.checkpoint, backend::device(a.device)?)?;
    let model = &run.model;
    let k = model.spec.num_classes;
    if let Some(c) = a.class {
        run.check_class(c)?;
    }
    let ends = model.prior(2 * a.rows, &mut rng(a.seed, Stream::Sample, 1));
    let l = model.spec.latent_dim;
    let mut z = Vec::with_capacity(a.rows * a.steps * l);
    let mut labels = Vec::new();
    // One condition per row: the one asked for, else the default rows in turn.
    let req = super::request(a.class, a.attr.as_deref())?;
    let row_conds = run.conds(a.rows, &req)?;
    let d = model.spec.cond_dim();
    let mut cond = Vec::new();
    for r in 0..a.rows {
        let (za, zb) = (&ends[2 * r * l..(2 * r + 1) * l], &ends[(2 * r + 1) * l..(2 * r + 2) * l]);
        for p in viz::walk::interpolate(za, zb, a.steps, a.slerp) {
            z.extend(p);
        }
        if model.spec.has_classes() {
            labels.extend(std::iter::repeat_n(a.class.unwrap_or((r % k) as u8), a.steps));
        }
        if d > 0 {
            cond.extend(row_conds[r * d..(r + 1) * d].repeat(a.steps));
        }
    }
    let imgs = match (&a.text, &a.to) {
        (None, _) if model.spec.kind.decl().text => model.decode_bow_host(&z, &cond, Stage::Two),
        (None, _) => model.decode_host(&z, &cond),
        (Some(t), None) => model.decode_text_host(&z, std::slice::from_ref(t), Stage::Two)?,
        // Each row: one code (the row's first end), the caption blended from --text to --to.
        (Some(from), Some(to)) => {
            let v = model.text()?.vocab.len();
            let bags = [bag(model, from)?, bag(model, to)?];
            let mut zs = Vec::with_capacity(z.len());
            let mut bows = Vec::with_capacity(a.rows * a.steps * v);
            for r in 0..a.rows {
                for s in 0..a.steps {
                    let t = s as f32 / (a.steps - 1) as f32;
                    zs.extend_from_slice(&ends[2 * r * l..(2 * r + 1) * l]);
                    bows.extend(bags[0].iter().zip(&bags[1]).map(|(x, y)| (1.0 - t) * x + t * y));
                }
            }
            model.decode_bow_host(&zs, &bows, Stage::Two)
        }
    };
    let out = a.out.unwrap_or_else(|| run.dir.final_file("walk.png"));
    viz::grid::save_grid(&imgs, model.spec.shape, a.steps, &out)?;
    Ok(out)
}

/// The bag of words of a typed caption (an error names words the model never saw).
fn bag(model: &Model, caption: &str) -> Result<Vec<f32>> {
    let t = model.text()?;
    Ok(t.bags(&[t.tokens(caption)?]))
}

/// `--stage one` is for StackGAN runs only.
fn check_stage(model: &Model, stage: Stage) -> Result<()> {
    if stage == Stage::One && !model.spec.kind.decl().text {
        bail!("--stage one: model '{}' has one stage (only stackgan draws in two)", model.spec.kind.name());
    }
    Ok(())
}
