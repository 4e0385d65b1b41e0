//! The application layer: what each command does, as functions the CLI, `compare` and the tests all
//! call. Requests are plain structs (their flags and defaults declared once, with clap); results are
//! returned, never printed — `cli` prints them.

pub mod arithmetic;
pub mod compare;
pub mod evaluation;
pub mod explore;
pub mod pictures;
pub mod study;
pub mod training;

use crate::config::RunConfig;
use crate::data::{self, Splits};
use crate::models::Model;
use crate::models::condition::Request;
use crate::run::checkpoint::TrainState;
use crate::run::{RunDir, Which};
use anyhow::{Result, bail};
use burn::prelude::Device;
use clap::Args;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// A run opened for reading: its folder, config, model and training counters.
pub struct OpenRun {
    pub dir: RunDir,
    pub cfg: RunConfig,
    pub model: Model,
    pub state: TrainState,
    pub class_names: Vec<String>,
}

impl OpenRun {
    pub fn open(path: &Path, which: Which, device: Device) -> Result<OpenRun> {
        let (cfg, model, state, class_names) = crate::run::load_model(path, which, &device)?;
        Ok(OpenRun { dir: RunDir { path: path.to_path_buf() }, cfg, model, state, class_names })
    }

    /// The run's dataset, from `data_dir` when given (the data moved), else where it trained.
    pub fn data(&self, data_dir: Option<&Path>) -> Result<Splits> {
        data::load_with(&self.cfg.dataset, data_dir.or(self.cfg.data_dir.as_deref()), &self.cfg.transform())
    }

    /// `--class` must be given to a class-conditional model and name one of its classes.
    pub fn check_class(&self, class: u8) -> Result<()> {
        let spec = &self.model.spec;
        if !spec.is_conditioned() {
            bail!(
                "--class {class}: model '{}' of {} is not conditional; train a cvae or cgan to generate a chosen class",
                spec.kind.name(),
                self.dir.path.display()
            );
        }
        if !spec.has_classes() {
            bail!(
                "--class {class}: model '{}' of {} is not conditioned on a class but on {} (use --attr)",
                spec.kind.name(),
                self.dir.path.display(),
                spec.condition().describe()
            );
        }
        if class as usize >= spec.num_classes {
            bail!(
                "--class {class} out of range: the model knows classes 0..{} ({})",
                spec.num_classes - 1,
                self.class_names.join(", ")
            );
        }
        Ok(())
    }

    /// Labels of `n` generated images of a class-conditioned model: `class` for all, or the
    /// classes in turn (image i is class i mod K); none for any other model.
    pub fn labels(&self, n: usize, class: Option<u8>) -> Result<Vec<u8>> {
        let spec = &self.model.spec;
        match class {
            Some(c) => self.check_class(c).map(|()| vec![c; n]),
            None if spec.has_classes() => Ok((0..n).map(|i| (i % spec.num_classes) as u8).collect()),
            None => Ok(vec![]),
        }
    }

    /// Condition rows of `n` generated images (`models::condition`): what `--class` or `--attr`
    /// asks for, or the default rows; errors name the run and what does not fit.
    pub fn conds(&self, n: usize, req: &Request) -> Result<Vec<f32>> {
        if let Request::Class(c) = req {
            self.check_class(*c)?;
        }
        self.model.spec.cond_rows(req, n).map_err(|e| anyhow::anyhow!("{}: {e}", self.dir.path.display()))
    }

    /// `n` prior draws of `seed` [n × latent]: the codes of the sheet `sample --seed` draws.
    pub fn prior_sheet(&self, n: usize, seed: u64) -> Vec<f32> {
        self.model.prior(n, &mut crate::util::rng(seed, crate::util::Stream::Sample, 0))
    }

    /// `n` images from prior draws of `seed` (the stream `sample --seed` uses), decoded with the
    /// condition rows `cond` (empty: the default ones).
    pub fn sample(&self, n: usize, seed: u64, cond: &[f32]) -> Vec<f32> {
        self.model.decode_host(&self.prior_sheet(n, seed), cond)
    }
}

/// The condition a user asked for with `--class` and `--attr` (at most one of them).
pub fn request(class: Option<u8>, attr: Option<&str>) -> Result<Request> {
    match (class, attr) {
        (Some(_), Some(_)) => {
            bail!("--class and --attr: give one (a class-conditional or an attribute-conditional model)")
        }
        (Some(c), None) => Ok(Request::Class(c)),
        (None, Some(a)) => {
            Ok(Request::Attrs(crate::models::condition::parse_attrs(a).map_err(|e| anyhow::anyhow!("--attr {e}"))?))
        }
        (None, None) => Ok(Request::Default),
    }
}

/// A request with every option at its declared default, given only its positional arguments (and
/// any flags in `args`): the one place defaults live is the request's clap declaration.
pub fn with_defaults<A: Args + clap::FromArgMatches>(args: &[&OsStr]) -> A {
    let cmd = A::augment_args(clap::Command::new("latentlab").no_binary_name(true));
    let m = cmd.try_get_matches_from(args).expect("request defaults parse");
    A::from_arg_matches(&m).expect("request defaults parse")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// All weights, named by module path (see README for names and layouts).
    Safetensors,
    /// metrics.jsonl flattened to one CSV row per logged line.
    Csv,
}

#[derive(Args, Debug, Clone)]
pub struct ExportRequest {
    pub run: PathBuf,
    #[arg(long, value_enum, default_value_t = ExportFormat::Safetensors)]
    pub format: ExportFormat,
    /// Output file [default: <run>/final/model.safetensors or <run>/metrics.csv].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Which::Latest)]
    pub checkpoint: Which,
}

/// What `export` wrote: the file, and the tensors (name, shape) or the number of CSV rows.
pub enum Exported {
    Weights { out: PathBuf, tensors: Vec<(String, Vec<usize>)> },
    Csv { out: PathBuf, rows: usize },
}

pub fn export(a: ExportRequest) -> Result<Exported> {
    match a.format {
        ExportFormat::Safetensors => {
            let run = OpenRun::open(&a.run, a.checkpoint, crate::backend::device(crate::backend::DeviceChoice::Cpu)?)?;
            let out = a.out.unwrap_or_else(|| run.dir.final_file("model.safetensors"));
            let tensors = crate::export::safetensors(&run.model, &out)?;
            Ok(Exported::Weights { out, tensors })
        }
        ExportFormat::Csv => {
            let (dir, _) = RunDir::open(&a.run)?;
            let out = a.out.unwrap_or_else(|| dir.path.join("metrics.csv"));
            let rows = crate::export::metrics_csv(&dir.metrics(), &out)?;
            Ok(Exported::Csv { out, rows })
        }
    }
}
