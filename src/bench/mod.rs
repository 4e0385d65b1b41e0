//! `latentlab bench`: training throughput of the project's own models on real MNIST batches.
//! Each model runs real steps (forward, backward, Adam) exactly as `train` does: warm-up steps,
//! then the median of timed steps. FLOPs come from the layer shapes (`flops`), the peak is
//! measured on this machine (`peak`), and "cores busy" is process CPU time over wall time during
//! the timed steps.
//!
//! `--pytorch PYTHON` starts `bench/pytorch_ref.py` once, as a server on its stdin/stdout, and
//! measures in `--rounds` interleaved rounds: in each round every model runs here and then in
//! PyTorch, back to back. A shared machine drifts (other tenants, clocks) by more than the
//! differences being measured; interleaving exposes both sides to the same drift, and the ratio
//! reported is the median of the per-round ratios.

pub mod cpu;
pub mod explore;
pub mod flops;
pub mod peak;
mod reference;
mod table;
#[cfg(test)]
mod tests;
mod timing;

pub use reference::{PYTORCH_REF, parse_pytorch};
pub use table::table;
pub use timing::{cpu_seconds, median, threads};

use crate::backend::DeviceChoice;
use crate::config::{Options, RunConfig};
use crate::data::{self, Binarize};
use crate::models::ModelKind;
use anyhow::{Result, bail};
use reference::Reference;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;
use timing::time_model;

/// The benchmarked models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BenchModel {
    /// VAE 784-400-(20,20)/20-400-784, Bernoulli decoder, Adam, batch 128 (the classic MNIST VAE).
    MlpVae,
    /// `train vae`'s default network 784-512-256-(20,20)/20-256-512-784, dynamically binarised
    /// batches, batch 128.
    Vae,
    /// `train dcgan`'s networks and step (D on real + fake, then G), batch 64.
    Dcgan,
    /// The scaled DCGAN of `train dcgan --dataset celeba` at width 64: pytorch/examples' `dcgan`
    /// network, on real 64×64 CelebA faces, batch 64 (the PyTorch side times noise batches of the
    /// same shape: a step's time does not depend on pixel values).
    #[value(name = "dcgan-64")]
    #[serde(rename = "dcgan-64")]
    Dcgan64,
    /// `train stackgan`'s networks and step on MNIST with made captions, batch 64: half the steps
    /// in stage I, half in stage II, as a run spends them (no PyTorch reference).
    Stackgan,
}

impl BenchModel {
    pub const ALL: [BenchModel; 5] =
        [BenchModel::MlpVae, BenchModel::Vae, BenchModel::Dcgan, BenchModel::Dcgan64, BenchModel::Stackgan];

    pub fn name(self) -> &'static str {
        match self {
            BenchModel::MlpVae => "mlp-vae",
            BenchModel::Vae => "vae",
            BenchModel::Dcgan => "dcgan",
            BenchModel::Dcgan64 => "dcgan-64",
            BenchModel::Stackgan => "stackgan",
        }
    }

    /// Whether `bench/pytorch_ref.py` has this model.
    fn has_reference(self) -> bool {
        self != BenchModel::Stackgan
    }

    /// The dataset its batches come from (images of the shape `train` would see).
    fn dataset(self) -> (&'static str, data::Transform) {
        match self {
            BenchModel::Dcgan64 => ("celeba", data::Transform { image_size: Some(64), channels: None }),
            _ => ("mnist", data::Transform::default()),
        }
    }

    fn default_batch(self) -> usize {
        match self {
            BenchModel::MlpVae | BenchModel::Vae => 128,
            BenchModel::Dcgan | BenchModel::Dcgan64 | BenchModel::Stackgan => 64,
        }
    }

    /// The run configuration `train` would use for this model.
    fn config(
        self,
        batch: usize,
        device: DeviceChoice,
        data_dir: Option<PathBuf>,
        shape: data::ImageShape,
    ) -> Result<RunConfig> {
        let (kind, opts) = match self {
            BenchModel::MlpVae => (
                ModelKind::Vae,
                Options {
                    hidden: Some(vec![400]),
                    latent_dim: Some(20),
                    binarize: Some(Binarize::None),
                    ..Default::default()
                },
            ),
            BenchModel::Vae => (ModelKind::Vae, Options::default()),
            BenchModel::Dcgan => (ModelKind::Dcgan, Options::default()),
            BenchModel::Stackgan => (ModelKind::Stackgan, Options::default()),
            BenchModel::Dcgan64 => (
                ModelKind::Dcgan,
                Options { width: Some(crate::models::pyramid::REFERENCE_WIDTH), ..Default::default() },
            ),
        };
        let (dataset, t) = self.dataset();
        let given = Options {
            batch_size: Some(batch),
            device: Some(device),
            data_dir,
            dataset: Some(dataset.into()),
            image_size: t.image_size,
            ..opts
        };
        RunConfig::resolve_for(kind, given, shape)
    }

    /// FLOPs per sample of one step (see `flops`).
    fn flops(self, shape: data::ImageShape) -> u64 {
        match self {
            BenchModel::MlpVae => flops::mlp_vae_step(shape.len(), &[400], 20),
            BenchModel::Vae => flops::mlp_vae_step(shape.len(), &[512, 256], 20),
            BenchModel::Dcgan => flops::dcgan_step(shape, 100),
            BenchModel::Dcgan64 => {
                let (g, d) = flops::scaled_dcgan_layers(shape, crate::models::pyramid::REFERENCE_WIDTH, 100);
                flops::gan_step(&g, &d)
            }
            // Not counted yet: the table shows no GFLOP/s for it.
            BenchModel::Stackgan => 0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub models: Vec<BenchModel>,
    /// Overrides every model's batch size.
    pub batch: Option<usize>,
    pub warmup: usize,
    pub steps: usize,
    /// Interleaved rounds (each: every model here, then in PyTorch); medians over rounds.
    pub rounds: usize,
    pub device: DeviceChoice,
    pub data_dir: Option<PathBuf>,
    /// A Python with torch: also run `bench/pytorch_ref.py` with the same settings.
    pub pytorch: Option<PathBuf>,
    /// Also time the loop as `train` runs it: this many epochs of the model's default run
    /// (data, step, logging, test pass, pictures, checkpoints) after each round's bare steps.
    pub loop_epochs: Option<u64>,
}

/// One row of the table (and one JSON line).
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    pub model: &'static str,
    pub device: DeviceChoice,
    pub batch: usize,
    pub steps: usize,
    pub rounds: usize,
    /// Median over rounds of each round's median step.
    pub median_step_ms: f64,
    /// Median over rounds of each round's mean step (slow steps included, as a run sees them).
    pub mean_step_ms: f64,
    pub samples_per_sec: f64,
    pub flops_per_sample: u64,
    pub gflops_per_sec: f64,
    /// The CPU's measured FMA peak; None on a GPU (no CPU ceiling applies there).
    pub peak_gflops: Option<f64>,
    pub peak_isa: Option<&'static str>,
    pub pct_of_peak: Option<f64>,
    pub threads: usize,
    /// Process CPU seconds per wall second over the timed steps (None where unmeasurable).
    pub cores_busy: Option<f64>,
    /// latentlab samples/s of each round.
    pub round_samples_per_sec: Vec<f64>,
    pub pytorch_samples_per_sec: Option<f64>,
    /// PyTorch samples/s of each round.
    pub round_pytorch_samples_per_sec: Vec<f64>,
    /// Median over rounds of latentlab samples/s ÷ PyTorch samples/s in the same round.
    pub vs_pytorch: Option<f64>,
    /// `--loop`: samples/s of the epochs as `train` runs them (median over rounds).
    pub loop_samples_per_sec: Option<f64>,
    /// `--loop`: median over rounds of the loop's rate ÷ the bare step's rate in the same round.
    pub loop_vs_step: Option<f64>,
    /// `--loop`: where the loop's time went, summed over rounds.
    pub loop_secs: Option<crate::artifacts::LoopSecs>,
    /// The CPU it ran on (the host's, on a GPU device).
    pub cpu: cpu::Cpu,
}

/// One model in one round.
#[derive(Clone)]
struct Round {
    /// Samples/s at the median step.
    sps: f64,
    median_step: f64,
    mean_step: f64,
    cores_busy: Option<f64>,
    pytorch_sps: Option<f64>,
    looped: Option<crate::artifacts::LoopSecs>,
}

/// Run the benchmark; rows in `opts.models` order.
pub fn run(opts: &BenchOptions) -> Result<Vec<BenchRow>> {
    if opts.steps == 0 {
        bail!("--steps must be at least 1");
    }
    if opts.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    // Each dataset the requested models need, loaded once.
    let mut sets: Vec<(&str, data::Splits)> = Vec::new();
    for m in &opts.models {
        let (name, t) = m.dataset();
        if !sets.iter().any(|(n, _)| *n == name) {
            sets.push((name, data::load_with(name, opts.data_dir.as_deref(), &t)?));
        }
    }
    let data_of = |m: BenchModel| &sets.iter().find(|(n, _)| *n == m.dataset().0).expect("loaded above").1;
    let threads = threads();
    let cpu = cpu::Cpu::detect();
    let mut reference = match &opts.pytorch {
        Some(py) => Some(Reference::start(py, &data::data_dir(opts.data_dir.as_deref()).join("mnist"), threads)?),
        None => None,
    };
    if opts.pytorch.is_some() && opts.device != DeviceChoice::Cpu {
        bail!("--pytorch compares CPU steps (its reference runs on the CPU); leave out --device or use --device cpu");
    }
    let peak = (opts.device == DeviceChoice::Cpu).then(|| peak::measure(threads, Duration::from_millis(200)));
    let batches: Vec<usize> = opts.models.iter().map(|m| opts.batch.unwrap_or(m.default_batch())).collect();
    if batches.contains(&0) {
        bail!("--batch must be at least 1");
    }
    let mut rounds: Vec<Vec<Round>> = vec![Vec::new(); opts.models.len()];
    for _ in 0..opts.rounds {
        for (i, (&m, &batch)) in opts.models.iter().zip(&batches).enumerate() {
            if let Some(r) = reference.as_ref() {
                r.wait_idle();
            }
            let t = time_model(m, batch, opts, data_of(m))?;
            let theirs = match reference.as_mut() {
                Some(r) if m.has_reference() => Some(r.measure(m, batch, opts.steps, opts.warmup)?),
                _ => None,
            };
            let looped = match opts.loop_epochs {
                Some(e) => Some(timing::time_loop(m, batch, e, opts, data_of(m))?),
                None => None,
            };
            rounds[i].push(Round {
                sps: batch as f64 / t.median_step,
                median_step: t.median_step,
                mean_step: t.mean_step,
                cores_busy: t.cores_busy,
                pytorch_sps: theirs,
                looped,
            });
        }
    }
    if let Some(r) = reference {
        r.finish();
    }
    let mut rows = Vec::new();
    for ((&m, &batch), rs) in opts.models.iter().zip(&batches).zip(rounds) {
        let ours: Vec<f64> = rs.iter().map(|r| r.sps).collect();
        let theirs: Vec<f64> = rs.iter().filter_map(|r| r.pytorch_sps).collect();
        let ratios: Vec<f64> = rs.iter().filter_map(|r| r.pytorch_sps.map(|t| r.sps / t)).collect();
        let busy: Vec<f64> = rs.iter().filter_map(|r| r.cores_busy).collect();
        let loop_rates: Vec<f64> = rs.iter().filter_map(|r| r.looped.as_ref().map(|l| l.rate())).collect();
        let loop_ratios: Vec<f64> = rs.iter().filter_map(|r| r.looped.as_ref().map(|l| l.rate() / r.sps)).collect();
        let loop_secs = rs.iter().filter_map(|r| r.looped.clone()).reduce(|a, b| a.plus(&b));
        let sps = median(&ours);
        let flops_per_sample = m.flops(data_of(m).train.shape);
        let gflops = sps * flops_per_sample as f64 / 1e9;
        let counted = flops_per_sample > 0;
        rows.push(BenchRow {
            model: m.name(),
            device: opts.device,
            batch,
            steps: opts.steps,
            rounds: opts.rounds,
            median_step_ms: median(&rs.iter().map(|r| r.median_step).collect::<Vec<_>>()) * 1e3,
            mean_step_ms: median(&rs.iter().map(|r| r.mean_step).collect::<Vec<_>>()) * 1e3,
            samples_per_sec: sps,
            flops_per_sample,
            gflops_per_sec: gflops,
            peak_gflops: peak.as_ref().map(|p| p.gflops),
            peak_isa: peak.as_ref().map(|p| p.isa),
            pct_of_peak: peak.as_ref().filter(|_| counted).map(|p| 100.0 * gflops / p.gflops),
            threads,
            cores_busy: (!busy.is_empty()).then(|| median(&busy)),
            round_samples_per_sec: ours,
            pytorch_samples_per_sec: (!theirs.is_empty()).then(|| median(&theirs)),
            round_pytorch_samples_per_sec: theirs,
            vs_pytorch: (!ratios.is_empty()).then(|| median(&ratios)),
            loop_samples_per_sec: (!loop_rates.is_empty()).then(|| median(&loop_rates)),
            loop_vs_step: (!loop_ratios.is_empty()).then(|| median(&loop_ratios)),
            loop_secs,
            cpu: cpu.clone(),
        });
    }
    Ok(rows)
}
