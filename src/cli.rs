//! The command line: parses arguments, calls the application layer (`app`), prints what it returns.

use crate::app::compare::{self, CompareRequest};
use crate::app::evaluation::{self, EvalRequest};
use crate::app::explore::ExploreRequest;
use crate::app::pictures::{self, ArithmeticRequest, LatentMapRequest, SampleRequest, WalkRequest};
use crate::app::training::{self, ResumeRequest, TrainRequest, Trained};
use crate::app::{self, ExportRequest, Exported};
use crate::backend::DeviceChoice;
use crate::data;
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
    Train(TrainRequest),
    /// Continue a run exactly where its last checkpoint stopped.
    Resume(ResumeRequest),
    /// Draw samples from a run's model into a PNG grid or a .npy array.
    Sample(SampleRequest),
    /// Scatter of test-set codes by class and the decoded latent manifold.
    LatentMap(LatentMapRequest),
    /// Latent walks: each row interpolates between two random prior codes.
    Walk(WalkRequest),
    /// Latent vector arithmetic: decode mean(A) − mean(B) + mean(C).
    Arithmetic(ArithmeticRequest),
    /// Export a run's weights (safetensors) or training log (CSV) for other tools.
    Export(ExportRequest),
    /// Measure a run (or a .npy sample file): likelihood bounds, FID/KID, precision/recall,
    /// class coverage, memorisation, sharpness; writes eval.json and prints a table.
    Eval(EvalRequest),
    /// "VAE or GAN?": train (or reuse) runs, evaluate them, write one self-contained HTML report
    /// (+ report.json) with the seeds' table filled by measurements.
    Compare(CompareRequest),
    /// "VAE or GAN?" over seeds: every claim with its per-seed values, mean, 95 % interval and
    /// in how many seeds it holds. Runs here (a pool of processes) or as Slurm job arrays;
    /// rerunning continues it. `study status|report <folder>` look at one.
    Study(crate::app::study::StudyArgs),
    /// Walk runs' latent spaces in the browser: serves a page (map, sliders, walks, arithmetic,
    /// live training curves) on 127.0.0.1 until Ctrl-C.
    Explore(ExploreRequest),
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
    /// Also time the loop as `train` runs it (data, step, logging, test pass, pictures,
    /// checkpoints): EPOCHS epochs of each model's default run after each round's bare steps, and
    /// the loop's rate ÷ the step's with where the rest went [default models: vae, dcgan, stackgan].
    #[arg(long = "loop", value_name = "EPOCHS", num_args = 0..=1, default_missing_value = "1")]
    pub loop_epochs: Option<u64>,
    /// Instead of training steps: the explorer's decode latency for these runs (a grid of 64
    /// images requested over HTTP `--steps` times after `--warmup`; median and 90th percentile).
    #[arg(long, num_args = 1.., value_name = "RUN")]
    pub explore: Vec<PathBuf>,
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
    crate::kernels::check_env()?;
    crate::kernels::init_pool(threads)?;
    match cli.command {
        Command::Train(a) => {
            crate::util::install_interrupt_handler();
            print_trained(&training::start(a)?);
            Ok(())
        }
        Command::Resume(a) => {
            crate::util::install_interrupt_handler();
            print_trained(&training::resume(a)?);
            Ok(())
        }
        Command::Sample(a) => print_paths(&[pictures::sample(a)?]),
        Command::LatentMap(a) => print_paths(&pictures::latent_map(a)?),
        Command::Walk(a) => print_paths(&[pictures::walk(a)?]),
        Command::Arithmetic(a) => {
            let n = a.neighbours;
            let out = pictures::arithmetic(a)?;
            println!(
                "{}: mean(A), mean(B), mean(C), then mean(A) − mean(B) + mean(C) and {n} neighbours",
                out.png.display()
            );
            if let Some((json, c)) = &out.checked {
                print!("{}", crate::app::arithmetic::summary(c, json));
            }
            Ok(())
        }
        Command::Eval(a) => {
            let e = evaluation::evaluate(a)?;
            print!("{}", e.table);
            print_paths(&[e.out])
        }
        Command::Export(a) => {
            match app::export(a)? {
                Exported::Weights { out, tensors } => {
                    for (name, shape) in tensors {
                        println!("{name:<40} {shape:?}");
                    }
                    println!("{}", out.display());
                }
                Exported::Csv { out, rows } => println!("{}: {rows} rows", out.display()),
            }
            Ok(())
        }
        Command::Explore(a) => {
            let server = app::explore::start(a)?;
            for w in &server.warnings {
                eprintln!("warning: {w}");
            }
            // The URL is the first line on stdout (scripts and tests read it), flushed at once.
            println!("{}", server.url());
            use std::io::Write;
            std::io::stdout().flush()?;
            eprintln!("serving until Ctrl-C");
            server.serve()
        }
        Command::Compare(a) => {
            crate::util::install_interrupt_handler();
            let c = compare::compare(a)?;
            println!("{:<62} {:<14} because", "claim", "verdict");
            for claim in &c.report.claims {
                println!("{:<62} {:<14} {}", claim.claim, claim.verdict, claim.reason);
            }
            println!("{} and {} ({:.0} s)", c.html.display(), c.json.display(), c.seconds);
            Ok(())
        }
        Command::Study(a) => study_command(a),
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

fn study_command(a: crate::app::study::StudyArgs) -> Result<()> {
    use crate::app::study::{self as st, Launched, StudyCommand};
    match a.command {
        Some(StudyCommand::Cell { study, index }) => {
            crate::util::install_interrupt_handler();
            st::cell(&study, index)
        }
        Some(StudyCommand::Status { study }) => {
            let rows = st::status(&study)?;
            println!(
                "{:<5} {:<16} {:<8} {:<5} {:<12} {:<8} {:<22} detail",
                "cell", "dataset", "model", "seed", "state", "attempts", "slurm task"
            );
            let mut counts = std::collections::BTreeMap::new();
            for r in &rows {
                *counts.entry(r.state.name()).or_insert(0) += 1;
                let detail = match &r.state {
                    crate::study::CellState::Failed(e) => e.lines().next().unwrap_or("").to_string(),
                    crate::study::CellState::Running | crate::study::CellState::Interrupted => {
                        crate::study::progress(&r.run).unwrap_or_else(|| crate::study::tail(&r.log, 1))
                    }
                    _ => String::new(),
                };
                println!(
                    "{:<5} {:<16} {:<8} {:<5} {:<12} {:<8} {:<22} {}",
                    r.cell.index,
                    r.cell.dataset,
                    r.cell.model.name(),
                    r.cell.seed,
                    r.state.name(),
                    r.attempts,
                    r.slurm_task.as_deref().unwrap_or("—"),
                    detail.chars().take(100).collect::<String>()
                );
            }
            for r in rows.iter().filter(|r| matches!(r.state, crate::study::CellState::Failed(_))) {
                println!("\n--- cell {} ({}) failed; the end of {}:", r.cell.index, r.cell.label(), r.log.display());
                println!("{}", crate::study::tail(&r.log, 8));
            }
            let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
            println!("{} runs: {}", rows.len(), summary.join(", "));
            Ok(())
        }
        Some(StudyCommand::Report { study }) => {
            let (report, html) = st::report(&study)?;
            print_study(&report);
            println!("{}", html.display());
            Ok(())
        }
        None => match st::study(a.run)? {
            Launched::Ran { report, html, failed, seconds } => {
                print_study(&report);
                println!("{} ({seconds:.0} s)", html.display());
                if !failed.is_empty() {
                    bail!("{} run(s) failed: {}", failed.len(), failed.join("; "));
                }
                Ok(())
            }
            Launched::Submitted { dir, submissions } => {
                if submissions.is_empty() {
                    println!("nothing to submit: every run of {} is done, queued or running", dir.display());
                }
                for s in &submissions {
                    println!(
                        "submitted job {} ({}, {} runs): {}",
                        s.job_id,
                        s.model.name(),
                        s.cells.len(),
                        s.script.display()
                    );
                }
                println!("follow it with `latentlab study status {}`", dir.display());
                Ok(())
            }
        },
    }
}

fn print_study(r: &crate::study::report::StudyReport) {
    use crate::study::report::{interval_line, verdict_line};
    println!("{} of {} runs finished ({} protocol; {})", r.cells_done, r.cells_total, r.protocol, r.interval_method);
    for d in &r.datasets {
        println!("\n{}: {} of {} seeds finished", d.dataset, d.seeds_done.len(), d.seeds_planned);
        for c in &d.claims {
            println!("  {:<60} {:<26} {}", c.claim, interval_line(c), verdict_line(c));
        }
    }
}

fn print_trained(t: &Trained) {
    let s = &t.summary;
    let test = serde_json::to_string(&s.test).unwrap_or_default();
    println!(
        "{}: {} after {} epoch(s), {} steps, {:.1} s, {:.0} samples/s; test {test}",
        t.dir.path.display(),
        s.status,
        s.epochs,
        s.steps,
        s.wall_secs,
        s.train_samples_per_sec.unwrap_or(0.0),
    );
}

fn print_paths(paths: &[PathBuf]) -> Result<()> {
    for p in paths {
        println!("{}", p.display());
    }
    Ok(())
}

fn bench(a: BenchArgs) -> Result<()> {
    if !a.explore.is_empty() {
        if a.loop_epochs.is_some() {
            bail!("--loop times training runs; --explore times the explorer: use one of them");
        }
        let rows = crate::bench::explore::decode_latency(&a.explore, a.warmup, a.steps, a.device)?;
        if a.json {
            for r in &rows {
                println!("{}", serde_json::to_string(r)?);
            }
        } else {
            print!("{}", crate::bench::explore::latency_table(&rows));
        }
        return Ok(());
    }
    if a.loop_epochs == Some(0) {
        bail!("--loop EPOCHS must be at least 1");
    }
    use crate::bench::BenchModel;
    let models = match (a.model.is_empty(), a.loop_epochs) {
        (false, _) => a.model,
        (true, Some(_)) => vec![BenchModel::Vae, BenchModel::Dcgan, BenchModel::Stackgan],
        (true, None) => BenchModel::ALL.to_vec(),
    };
    let opts = crate::bench::BenchOptions {
        models,
        batch: a.batch,
        warmup: a.warmup,
        steps: a.steps,
        rounds: a.rounds.unwrap_or(if a.pytorch.is_some() { 5 } else { 1 }),
        device: a.device,
        data_dir: a.data_dir,
        pytorch: a.pytorch,
        loop_epochs: a.loop_epochs,
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
