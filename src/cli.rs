//! The command line: `train`, `resume`, `sample`, `latent-map`, `data fetch`.

use crate::backend::{self, DeviceChoice};
use crate::config::{Options, RunConfig};
use crate::data;
use crate::models::ModelKind;
use crate::run::{self, RunDir, Which};
use crate::train::checkpoint::Checkpoint;
use crate::util::{Stream, rng};
use crate::viz;
use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "latentlab", version, about = "Train, sample, visualise and compare generative models of images")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Train a model; writes a run folder (config, checkpoints, metrics, pictures, summary).
    Train(TrainArgs),
    /// Continue a run exactly where its last checkpoint stopped.
    Resume(ResumeArgs),
    /// Draw samples from a run's model into a PNG grid or a .npy array.
    Sample(SampleArgs),
    /// Scatter of test-set codes by class and the decoded latent manifold.
    LatentMap(LatentMapArgs),
    /// Latent walks: each row interpolates between two random prior codes.
    Walk(WalkArgs),
    /// Latent vector arithmetic: decode mean(A) − mean(B) + mean(C).
    Arithmetic(ArithmeticArgs),
    /// Export a run's weights (safetensors) or training log (CSV) for other tools.
    Export(ExportArgs),
    /// Measure a run (or a .npy sample file): likelihood bounds, FID/KID, precision/recall,
    /// class coverage, memorisation, sharpness; writes eval.json and prints a table.
    Eval(EvalArgs),
    /// "VAE or GAN?": train (or reuse) runs, evaluate them, write one self-contained HTML report
    /// (+ report.json) with the seeds' table filled by measurements.
    Compare(CompareArgs),
    /// The domain feature network behind FID/KID/precision-recall/coverage.
    Features {
        #[command(subcommand)]
        command: FeaturesCommand,
    },
    /// Training throughput of the models on this machine: samples/s, GFLOP/s, % of peak, threads,
    /// cores busy (real MNIST batches, warm-up then the median step).
    Bench(BenchArgs),
    /// Dataset management.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Models to measure [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub model: Vec<crate::bench::BenchModel>,
    /// Batch size for every model [default: mlp-vae 128, dcgan 64].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Timed steps per model (the median is reported).
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
    /// Untimed steps first (allocator, caches, lazy initialisation).
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Measurement rounds; the medians over rounds are reported. With --pytorch each round runs
    /// latentlab then PyTorch back to back [default: 5 with --pytorch, else 1].
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Worker threads [default: RAYON_NUM_THREADS, else one per core].
    #[arg(long)]
    pub threads: Option<usize>,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// Folder holding mnist/ [default: $LATENTLAB_DATA, else ./data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// One JSON object per model per line instead of the table.
    #[arg(long)]
    pub json: bool,
    /// A Python interpreter with torch: run the same steps in PyTorch (same models, batches, steps
    /// and threads), interleaved round by round with ours, and add its samples/s and the ratio.
    #[arg(long)]
    pub pytorch: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Model to train.
    #[arg(value_enum)]
    pub model: ModelKind,
    /// Run folder [default: runs/<model>-<dataset>-<time>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// TOML file with any of the options below (flags win).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub opts: Options,
}

#[derive(Args, Debug)]
pub struct ResumeArgs {
    pub run: PathBuf,
    /// Train until this many epochs in total [default: the run's].
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Stop after this many steps in total.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Where the dataset is, if it moved since training.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SampleArgs {
    pub run: PathBuf,
    /// Number of samples.
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// Output: .png (grid) or .npy (N×C×H×W float32 in [0,1]) [default: <run>/final/sample.png].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Class to generate (conditional models).
    #[arg(long)]
    pub class: Option<u8>,
    /// Seed of the prior draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Grid columns [default: √n].
    #[arg(long)]
    pub ncol: Option<usize>,
    #[arg(long, value_enum, default_value_t = Which::Latest)]
    pub checkpoint: Which,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

#[derive(Args, Debug)]
pub struct LatentMapArgs {
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
}

#[derive(Args, Debug)]
pub struct WalkArgs {
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
    /// Output PNG [default: <run>/final/walk.png].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Which::Latest)]
    pub checkpoint: Which,
}

#[derive(Args, Debug)]
pub struct ArithmeticArgs {
    pub run: PathBuf,
    /// Group A: label:K (encoder models) or sample:I,J,… (indices into `sample --seed S`).
    #[arg(long)]
    pub a: viz::arithmetic::Group,
    /// Group B (subtracted).
    #[arg(long)]
    pub b: viz::arithmetic::Group,
    /// Group C (added).
    #[arg(long)]
    pub c: viz::arithmetic::Group,
    /// Seed of the sample sheet that sample:… indices refer to (as given to `sample --seed`).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Test images averaged per label:K group.
    #[arg(long, default_value_t = 64)]
    pub group_size: usize,
    /// Neighbours of the result to show (result + small Gaussian jitter).
    #[arg(long, default_value_t = 4)]
    pub neighbours: usize,
    /// Class to decode with (conditional models).
    #[arg(long, default_value_t = 0)]
    pub class: u8,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output PNG [default: <run>/final/arithmetic.png].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Which::Latest)]
    pub checkpoint: Which,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run folder to evaluate (omit when scoring a file with --samples).
    pub run: Option<PathBuf>,
    /// Score images from a .npy file (N×C×H×W or N×H×W float32 in [0,1]) instead of a run.
    #[arg(long)]
    pub samples: Option<PathBuf>,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// All weights, named by module path (see README for names and layouts).
    Safetensors,
    /// metrics.jsonl flattened to one CSV row per logged line.
    Csv,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    pub run: PathBuf,
    #[arg(long, value_enum, default_value_t = ExportFormat::Safetensors)]
    pub format: ExportFormat,
    /// Output file [default: <run>/final/model.safetensors or <run>/metrics.csv].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Which::Latest)]
    pub checkpoint: Which,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Runs to compare (all on one dataset) [default: train the default VAE and DCGAN on --dataset].
    pub runs: Vec<PathBuf>,
    /// Dataset for the default VAE + DCGAN pair.
    #[arg(long)]
    pub dataset: Option<String>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Report file [default: compare/<dataset>/report.html (report-quick.html with --quick), or report.html for given runs].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Minutes instead of the full protocol: short training (VAE 10,000 updates, DCGAN 5,000, on
    /// any dataset size) and a lighter evaluation (2000 samples, IWAE k = 100 on 1000 test images).
    #[arg(long)]
    pub quick: bool,
    /// Evaluate runs again even if they already have an eval.json.
    #[arg(long)]
    pub reeval: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Subcommand, Debug)]
pub enum FeaturesCommand {
    /// Train (or load from the cache) a dataset's feature network and print its accuracy and hash.
    Train {
        #[arg(long, default_value = "mnist")]
        dataset: String,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Retrain even if a cached network exists.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download a dataset's official files and verify their SHA-256.
    Fetch {
        /// mnist or fashion-mnist.
        name: String,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Mirror to download from instead of the official location.
        #[arg(long)]
        base_url: Option<String>,
    },
}

pub fn run(cli: Cli) -> Result<()> {
    let threads = match &cli.command {
        Command::Bench(a) => a.threads,
        _ => None,
    };
    if threads == Some(0) {
        bail!("--threads must be at least 1");
    }
    crate::kernels::init_pool(threads)?;
    match cli.command {
        Command::Train(a) => {
            crate::util::install_interrupt_handler();
            train(a)
        }
        Command::Resume(a) => {
            crate::util::install_interrupt_handler();
            resume(a)
        }
        Command::Sample(a) => sample(a),
        Command::LatentMap(a) => latent_map(a),
        Command::Walk(a) => walk(a),
        Command::Arithmetic(a) => arithmetic(a),
        Command::Eval(a) => eval(a),
        Command::Export(a) => export(a),
        Command::Compare(a) => {
            crate::util::install_interrupt_handler();
            compare(a)
        }
        Command::Features { command: FeaturesCommand::Train { dataset, data_dir, force } } => {
            let splits = data::load(&dataset, data_dir.as_deref())?;
            let dir = data::data_dir(data_dir.as_deref());
            let f = crate::eval::features::load_or_train(&splits, &dir, force, true)?;
            let acc = crate::eval::features::accuracy(&f, &splits.test)?;
            println!(
                "feature network for '{}': test accuracy {:.2} %, weights sha256 {}, {}",
                splits.name,
                acc * 100.0,
                f.hash(),
                f.path.display()
            );
            Ok(())
        }
        Command::Bench(a) => bench(a),
        Command::Data { command: DataCommand::Fetch { name, data_dir, base_url } } => {
            let dir = data::data_dir(data_dir.as_deref());
            for p in data::fetch::fetch(&name, &dir, base_url.as_deref())? {
                println!("{}", p.display());
            }
            Ok(())
        }
    }
}

fn bench(a: BenchArgs) -> Result<()> {
    let models = if a.model.is_empty() { crate::bench::BenchModel::ALL.to_vec() } else { a.model };
    let opts = crate::bench::BenchOptions {
        models,
        batch: a.batch,
        warmup: a.warmup,
        steps: a.steps,
        rounds: a.rounds.unwrap_or(if a.pytorch.is_some() { 5 } else { 1 }),
        device: a.device,
        data_dir: a.data_dir,
        pytorch: a.pytorch,
    };
    let rows = crate::bench::run(&opts)?;
    if a.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print!("{}", crate::bench::table(&rows));
    }
    Ok(())
}

fn train(a: TrainArgs) -> Result<()> {
    let file = match &a.config {
        Some(p) => Options::from_file(p)?,
        None => Options::default(),
    };
    let cfg = RunConfig::resolve(a.model, a.opts.or(file))?;
    let data = data::load_with(&cfg.dataset, cfg.data_dir.as_deref(), &cfg.transform())?;
    let out = a.out.unwrap_or_else(|| run::default_path(&cfg));
    let dir = RunDir::create(&out)?;
    crate::util::write_atomic(&dir.config(), cfg.to_toml().as_bytes())?;
    eprintln!(
        "training {} on {} ({} train / {} test images) → {}",
        cfg.model.name(),
        data.name,
        data.train.n,
        data.test.n,
        out.display()
    );
    let summary = crate::train::train(&dir, &cfg, &data, None)?;
    print_summary(&dir, &summary);
    Ok(())
}

fn resume(a: ResumeArgs) -> Result<()> {
    let (dir, mut cfg) = RunDir::open(&a.run)?;
    dir.remove_stale_temp_files();
    // Killed before its first checkpoint: nothing was saved, so start again from step 0.
    let ck = if dir.latest().exists() { Some(Checkpoint::load(&dir.latest())?) } else { None };
    if let Some(e) = a.epochs {
        cfg.epochs = e;
    }
    // A new --max-steps replaces the old; giving --epochs alone lifts an old step limit.
    cfg.max_steps = a.max_steps.or(if a.epochs.is_some() { None } else { cfg.max_steps });
    if a.data_dir.is_some() {
        cfg.data_dir = a.data_dir;
    }
    cfg.validate()?;
    if let Some(st) = ck.as_ref().map(|c| &c.meta.state)
        && st.epoch >= cfg.epochs
        && cfg.max_steps.is_none_or(|m| st.step >= m)
    {
        bail!(
            "{} already finished {} epoch(s) ({} steps); pass --epochs N with N > {} to train further",
            a.run.display(),
            st.epoch,
            st.step,
            st.epoch
        );
    }
    crate::util::write_atomic(&dir.config(), cfg.to_toml().as_bytes())?;
    let data = data::load_with(&cfg.dataset, cfg.data_dir.as_deref(), &cfg.transform())?;
    match &ck {
        Some(c) => eprintln!("resuming {} at epoch {} step {}", a.run.display(), c.meta.state.epoch, c.meta.state.step),
        None => {
            eprintln!("{} has no checkpoint yet: training from step 0", a.run.display());
            crate::train::log::MetricsLog::new(dir.metrics()).truncate_after(0)?;
        }
    }
    let summary = crate::train::train(&dir, &cfg, &data, ck)?;
    print_summary(&dir, &summary);
    Ok(())
}

fn print_summary(dir: &RunDir, s: &serde_json::Value) {
    println!(
        "{}: {} after {} epoch(s), {} steps, {:.1} s, {:.0} samples/s; test {}",
        dir.path.display(),
        s["status"].as_str().unwrap_or("?"),
        s["epochs"],
        s["steps"],
        s["wall_secs"].as_f64().unwrap_or(0.0),
        s["train_samples_per_sec"].as_f64().unwrap_or(0.0),
        s["test"]
    );
}

fn sample(a: SampleArgs) -> Result<()> {
    if a.n == 0 || a.n > 1_000_000 {
        bail!("--n must be between 1 and 1000000, got {}", a.n);
    }
    let device = backend::device(a.device)?;
    let (_, model, _, class_names) = run::load_model(&a.run, a.checkpoint, &device)?;
    let labels = match a.class {
        Some(c) if !model.spec.kind.is_conditional() => bail!(
            "--class {c}: model '{}' of {} is not conditional; train a cvae to generate a chosen class",
            model.spec.kind.name(),
            a.run.display()
        ),
        Some(c) if c as usize >= model.spec.num_classes => {
            bail!(
                "--class {c} out of range: the model knows classes 0..{} ({})",
                model.spec.num_classes - 1,
                class_names.join(", ")
            )
        }
        Some(c) => vec![c; a.n],
        // Unconditional call of a conditional model: cycle through the classes.
        None if model.spec.kind.is_conditional() => (0..a.n).map(|i| (i % model.spec.num_classes) as u8).collect(),
        None => vec![],
    };
    let z = model.prior(a.n, &mut rng(a.seed, Stream::Sample, 0));
    let imgs = model.decode_host(&z, &labels);
    let out = a.out.unwrap_or_else(|| a.run.join("final/sample.png"));
    match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("npy") => viz::grid::save_npy(&imgs, model.spec.shape, &out)?,
        Some("png") => {
            let ncol = a.ncol.unwrap_or_else(|| (a.n as f64).sqrt().ceil() as usize);
            viz::grid::save_grid(&imgs, model.spec.shape, ncol, &out)?
        }
        _ => bail!("--out {}: use a .png (image grid) or .npy (array) file name", out.display()),
    }
    println!("{}", out.display());
    Ok(())
}

fn latent_map(a: LatentMapArgs) -> Result<()> {
    let device = backend::device(DeviceChoice::Cpu)?;
    let (cfg, model, _, _) = run::load_model(&a.run, a.checkpoint, &device)?;
    if a.grid < 2 || a.grid > 100 {
        bail!("--grid must be between 2 and 100, got {}", a.grid);
    }
    if model.spec.kind.is_conditional() && a.class as usize >= model.spec.num_classes {
        bail!("--class {} out of range: the model has {} classes", a.class, model.spec.num_classes);
    }
    let data = data::load_with(&cfg.dataset, a.data_dir.as_deref().or(cfg.data_dir.as_deref()), &cfg.transform())?;
    let out = a.out.unwrap_or_else(|| a.run.join("final"));
    for p in viz::latent::latent_map(&model, &data, &out, a.n.max(1), a.class, a.grid)? {
        println!("{}", p.display());
    }
    Ok(())
}

fn walk(a: WalkArgs) -> Result<()> {
    if a.rows == 0 || a.rows > 100 || a.steps < 2 || a.steps > 100 {
        bail!("--rows must be 1..=100 and --steps 2..=100 (got {} and {})", a.rows, a.steps);
    }
    let device = backend::device(DeviceChoice::Cpu)?;
    let (_, model, _, _) = run::load_model(&a.run, a.checkpoint, &device)?;
    let k = model.spec.num_classes;
    if let Some(c) = a.class {
        if !model.spec.kind.is_conditional() {
            bail!("--class {c}: model '{}' is not conditional", model.spec.kind.name());
        }
        if c as usize >= k {
            bail!("--class {c} out of range: the model has {k} classes");
        }
    }
    let ends = model.prior(2 * a.rows, &mut rng(a.seed, Stream::Sample, 1));
    let l = model.spec.latent_dim;
    let mut z = Vec::with_capacity(a.rows * a.steps * l);
    let mut labels = Vec::new();
    for r in 0..a.rows {
        let (za, zb) = (&ends[2 * r * l..(2 * r + 1) * l], &ends[(2 * r + 1) * l..(2 * r + 2) * l]);
        for p in viz::walk::interpolate(za, zb, a.steps, a.slerp) {
            z.extend(p);
        }
        if model.spec.kind.is_conditional() {
            labels.extend(std::iter::repeat_n(a.class.unwrap_or((r % k) as u8), a.steps));
        }
    }
    let imgs = model.decode_host(&z, &labels);
    let out = a.out.unwrap_or_else(|| a.run.join("final/walk.png"));
    viz::grid::save_grid(&imgs, model.spec.shape, a.steps, &out)?;
    println!("{}", out.display());
    Ok(())
}

fn arithmetic(a: ArithmeticArgs) -> Result<()> {
    use viz::arithmetic::{Group, combine, select_stroke};
    let device = backend::device(DeviceChoice::Cpu)?;
    let (cfg, model, _, _) = run::load_model(&a.run, a.checkpoint, &device)?;
    let spec = model.spec.clone();
    let l = spec.latent_dim;
    if spec.kind.is_conditional() && a.class as usize >= spec.num_classes {
        bail!("--class {} out of range: the model has {} classes", a.class, spec.num_classes);
    }
    let cond = |n: usize| if spec.kind.is_conditional() { vec![a.class; n] } else { vec![] };
    // The sample sheet `sample --seed S` draws; indices past its length are refused.
    let sheet = |idx: &[usize]| -> Result<Vec<Vec<f32>>> {
        let n = idx.iter().max().map_or(0, |m| m + 1);
        if n > 100_000 {
            bail!("sample index {} too large (at most 99999)", n - 1);
        }
        let z = model.prior(n, &mut rng(a.seed, Stream::Sample, 0));
        Ok(idx.iter().map(|&i| z[i * l..(i + 1) * l].to_vec()).collect())
    };
    let mut data = None;
    let mut codes = |g: &Group| -> Result<Vec<Vec<f32>>> {
        match g {
            Group::Samples(idx) => sheet(idx),
            Group::Label(k, stroke) => {
                if !spec.kind.has_encoder() {
                    bail!(
                        "label:{k} needs an encoder, and '{}' has none; pick images from a sample sheet with sample:I,J,…",
                        spec.kind.name()
                    );
                }
                if data.is_none() {
                    data = Some(data::load_with(
                        &cfg.dataset,
                        a.data_dir.as_deref().or(cfg.data_dir.as_deref()),
                        &cfg.transform(),
                    )?);
                }
                let d = data.as_ref().expect("loaded above");
                let Some(labels) = &d.test.labels else { bail!("label:{k}: the dataset has no labels") };
                let of_class: Vec<(usize, u64)> = (0..d.test.n)
                    .filter(|&i| labels[i] == *k)
                    .map(|i| (i, d.test.image(i).iter().map(|&p| p as u64).sum()))
                    .collect();
                let mut idx = select_stroke(of_class, *stroke);
                idx.truncate(a.group_size.max(1));
                if idx.is_empty() {
                    bail!("label:{k}: no test image has label {k} ({} classes)", d.test.num_classes);
                }
                let sub = d.test.subset(&idx);
                let loader = data::Loader::new(&sub, idx.len(), data::Binarize::None, spec.kind.range(), 0);
                let b = &loader.eval_batches(idx.len())[0];
                let z = model.encode_host(&b.x, &b.labels)?;
                Ok(z.chunks(l).map(<[f32]>::to_vec).collect())
            }
        }
    };
    let (ga, gb, gc) = (codes(&a.a)?, codes(&a.b)?, codes(&a.c)?);
    let [ma, mb, mc, r] = combine(&ga, &gb, &gc)?;
    let mut z: Vec<f32> = [ma, mb, mc, r.clone()].concat();
    let jitter = crate::util::normal_vec(&mut rng(a.seed, Stream::Sample, 2), a.neighbours * l);
    for j in jitter.chunks(l) {
        z.extend(r.iter().zip(j).map(|(x, e)| x + 0.25 * e));
    }
    let n = 4 + a.neighbours;
    let imgs = model.decode_host(&z, &cond(n));
    let out = a.out.unwrap_or_else(|| a.run.join("final/arithmetic.png"));
    viz::grid::save_grid(&imgs, spec.shape, n, &out)?;
    println!("{}: mean(A) − mean(B) + mean(C) = 4th image; then {} neighbours", out.display(), a.neighbours);
    Ok(())
}

fn eval(a: EvalArgs) -> Result<()> {
    use crate::eval::evaluate::{self, EvalOptions, Source};
    let device = backend::device(DeviceChoice::Cpu)?;
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
        (None, None) => bail!("nothing to evaluate: give a run folder, or --samples FILE.npy --dataset NAME"),
        (None, Some(file)) => {
            let Some(ds) = &a.dataset else {
                bail!("--samples {}: also give --dataset NAME to compare the samples with", file.display())
            };
            let data = data::load(ds, a.data_dir.as_deref())?;
            let (dims, images) = viz::grid::read_npy(file)?;
            evaluate::check_samples(&dims, &images, data.test.shape, file)?;
            let feats = o
                .needs_features()
                .then(|| {
                    crate::eval::features::load_or_train(&data, &data::data_dir(a.data_dir.as_deref()), false, true)
                })
                .transpose()?;
            let out = a.out.clone().unwrap_or_else(|| file.with_extension("eval.json"));
            o.nearest_png = Some(out.with_extension("nearest.png"));
            let src = Source::Samples { images, origin: file.clone() };
            (evaluate::evaluate(&src, &data, feats.as_ref(), &o)?, out)
        }
        (Some(run_path), None) => {
            let (cfg, model, state, _) = run::load_model(run_path, a.checkpoint, &device)?;
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
            let feats = o
                .needs_features()
                .then(|| crate::eval::features::load_or_train(&data, &data::data_dir(dd.as_deref()), false, true))
                .transpose()?;
            o.nearest_png = Some(run_path.join("final/nearest.png"));
            let info = serde_json::json!({
                "path": run_path.display().to_string(), "model": model.spec.kind.name(), "dataset": ds,
                "epochs": state.epoch, "steps": state.step, "train_seconds": state.wall_secs,
                "checkpoint": format!("{:?}", a.checkpoint).to_lowercase(),
            });
            let src = Source::Model { model: &model, binarize: cfg.binarize, run: info };
            (
                evaluate::evaluate(&src, &data, feats.as_ref(), &o)?,
                a.out.clone().unwrap_or_else(|| run_path.join("eval.json")),
            )
        }
    };
    crate::util::write_atomic(&out, serde_json::to_string_pretty(&report)?.as_bytes())?;
    print!("{}", evaluate::table(&report));
    println!("{}", out.display());
    Ok(())
}

fn compare(a: CompareArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    let (runs, out) = if a.runs.is_empty() {
        let Some(ds) = &a.dataset else {
            bail!("give runs to compare, or --dataset NAME to train and compare the default VAE and DCGAN")
        };
        let base = match &a.out {
            Some(o) => {
                o.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new(".")).to_path_buf()
            }
            None => PathBuf::from("compare").join(ds.replace(['/', '\\'], "_")),
        };
        let mut runs = Vec::new();
        for kind in [ModelKind::Vae, ModelKind::Dcgan] {
            let path = base.join(if a.quick { format!("{}-quick", kind.name()) } else { kind.name().to_string() });
            ensure_trained(kind, &path, ds, a.data_dir.clone(), a.quick, a.seed)?;
            runs.push(path);
        }
        // The quick protocol has its own runs and its own page, so it never overwrites the full one.
        let page = if a.quick { "report-quick.html" } else { "report.html" };
        (runs, a.out.clone().unwrap_or_else(|| base.join(page)))
    } else {
        if a.dataset.is_some() {
            bail!("--dataset is for training the default pair; given runs are compared on their own dataset");
        }
        // One dataset for all, checked before any picture or evaluation work.
        let mut first: Option<(PathBuf, String)> = None;
        for r in &a.runs {
            let (_, cfg) = RunDir::open(r)?;
            match &first {
                None => first = Some((r.clone(), cfg.dataset)),
                Some((p, ds)) if *ds != cfg.dataset => bail!(
                    "runs are on different datasets ({} is on '{ds}', {} on '{}'); compare runs of one dataset",
                    p.display(),
                    r.display(),
                    cfg.dataset
                ),
                Some(_) => {}
            }
        }
        (a.runs.clone(), a.out.clone().unwrap_or_else(|| PathBuf::from("report.html")))
    };
    for r in &runs {
        ensure_pictures(r, a.data_dir.clone())?;
        if a.reeval || !r.join("eval.json").is_file() {
            eprintln!("evaluating {}…", r.display());
            eval(EvalArgs {
                run: Some(r.clone()),
                samples: None,
                dataset: None,
                data_dir: a.data_dir.clone(),
                n: if a.quick { 2000 } else { 10_000 },
                iwae_k: if a.quick { 100 } else { 5000 },
                iwae_n: if a.quick { Some(1000) } else { None },
                nn_n: if a.quick { 2000 } else { 10_000 },
                metrics: vec![],
                seed: a.seed,
                out: None,
                checkpoint: Which::Latest,
            })?;
        }
    }
    let report = crate::report::build(&runs)?;
    let json = crate::report::write(&report, &out)?;
    println!("{:<62} {:<14} because", "claim", "verdict");
    for c in &report.claims {
        println!("{:<62} {:<14} {}", c.claim, c.verdict, c.reason);
    }
    println!("{} and {} ({:.0} s)", out.display(), json.display(), t0.elapsed().as_secs_f64());
    Ok(())
}

/// Train a default run into `path`, or finish it if it stopped early; a completed run is reused.
fn ensure_trained(
    kind: ModelKind,
    path: &std::path::Path,
    dataset: &str,
    data_dir: Option<PathBuf>,
    quick: bool,
    seed: u64,
) -> Result<()> {
    let done = std::fs::read(path.join("summary.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|s| s["status"] != "interrupted" && s["status"] != "diverged");
    if done {
        eprintln!("reusing {}", path.display());
        return Ok(());
    }
    if path.join("checkpoints/latest.ckpt").is_file() {
        return resume(ResumeArgs { run: path.to_path_buf(), epochs: None, max_steps: None, data_dir });
    }
    // The budget is a number of updates, not epochs: a 9,000-image folder gets as much training
    // as MNIST. Epochs are whatever the budget takes on this dataset.
    let defaults = crate::config::RunConfig::resolve(kind, Options::default())?;
    let updates = compare_updates(&defaults, quick);
    let n = data::load(dataset, data_dir.as_deref())?.train.n;
    let per_epoch = n.div_ceil(defaults.batch_size).max(1) as u64;
    let opts = Options {
        dataset: Some(dataset.to_string()),
        data_dir,
        seed: Some(seed),
        epochs: Some(updates.div_ceil(per_epoch)),
        max_steps: Some(updates),
        // Enough logged points in a short run to judge loss oscillation.
        log_every: quick.then_some(10),
        ..Default::default()
    };
    train(TrainArgs { model: kind, out: Some(path.to_path_buf()), config: None, opts })
}

/// Optimiser updates `compare` gives each model: the full protocol trains as long as the default
/// `train` does on MNIST; `--quick` fits training and evaluation of both into about five minutes.
pub fn compare_updates(defaults: &crate::config::RunConfig, quick: bool) -> u64 {
    match (defaults.model, quick) {
        (ModelKind::Dcgan, true) => 5_000,
        (_, true) => 10_000,
        (_, false) => defaults.epochs * 60_000u64.div_ceil(defaults.batch_size as u64),
    }
}

/// The pictures the report shows that training does not already write.
fn ensure_pictures(run_path: &std::path::Path, data_dir: Option<PathBuf>) -> Result<()> {
    let (_, cfg) = RunDir::open(run_path)?;
    let fin = run_path.join("final");
    if !fin.join("walk.png").is_file() {
        walk(WalkArgs {
            run: run_path.to_path_buf(),
            rows: 6,
            steps: 10,
            slerp: true,
            seed: 0,
            class: None,
            out: None,
            checkpoint: Which::Latest,
        })?;
    }
    if !fin.join("arithmetic.png").is_file() {
        // Encoder models: the stroke-width example on labelled data; GANs: groups from a sample sheet.
        let groups: [&str; 3] = if cfg.model.has_encoder() {
            ["label:3:thick", "label:3:thin", "label:7:thin"]
        } else {
            ["sample:0,1,2,3", "sample:4,5,6,7", "sample:8,9,10,11"]
        };
        let parse = |g: &str| g.parse::<viz::arithmetic::Group>().map_err(anyhow::Error::msg);
        let r = arithmetic(ArithmeticArgs {
            run: run_path.to_path_buf(),
            a: parse(groups[0])?,
            b: parse(groups[1])?,
            c: parse(groups[2])?,
            seed: 0,
            group_size: 64,
            neighbours: 4,
            class: 0,
            data_dir: data_dir.clone(),
            out: None,
            checkpoint: Which::Latest,
        });
        if let Err(e) = r {
            eprintln!("note: no arithmetic picture for {}: {e:#}", run_path.display());
        }
    }
    if cfg.model.has_encoder() && !fin.join("latent-scatter.png").is_file() {
        latent_map(LatentMapArgs {
            run: run_path.to_path_buf(),
            out: None,
            n: 5000,
            grid: 20,
            class: 0,
            data_dir,
            checkpoint: Which::Latest,
        })?;
    }
    Ok(())
}

fn export(a: ExportArgs) -> Result<()> {
    match a.format {
        ExportFormat::Safetensors => {
            let device = backend::device(DeviceChoice::Cpu)?;
            let (_, model, _, _) = run::load_model(&a.run, a.checkpoint, &device)?;
            let out = a.out.unwrap_or_else(|| a.run.join("final/model.safetensors"));
            for (name, shape) in crate::export::safetensors(&model, &out)? {
                println!("{name:<40} {shape:?}");
            }
            println!("{}", out.display());
        }
        ExportFormat::Csv => {
            let (dir, _) = RunDir::open(&a.run)?;
            let out = a.out.unwrap_or_else(|| a.run.join("metrics.csv"));
            let n = crate::export::metrics_csv(&dir.metrics(), &out)?;
            println!("{}: {n} rows", out.display());
        }
    }
    Ok(())
}
