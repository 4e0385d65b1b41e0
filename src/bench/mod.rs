//! `latentlab bench`: training throughput of the project's own models on real MNIST batches.
//! Each model runs real steps (forward, backward, Adam) exactly as `train` does: warm-up steps,
//! then the median of timed steps. FLOPs come from the layer shapes (`flops`), the peak is
//! measured on this machine (`peak`), and "cores busy" is process CPU time over wall time during
//! the timed steps. `--pytorch PYTHON` runs the same steps in PyTorch right after, in the same
//! process tree, for a side-by-side ratio.

pub mod flops;
pub mod peak;

use crate::backend::{self, DeviceChoice};
use crate::config::{Options, RunConfig};
use crate::data::{self, Batch, Binarize, Loader};
use crate::models::blocks::matrix;
use crate::models::{ModelKind, Net};
use crate::train::trainer::{optimizers, spec_for};
use crate::util::{Stream, rng};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The benchmarked models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BenchModel {
    /// VAE 784-400-(20,20)/20-400-784, Bernoulli decoder, Adam, batch 128 (the classic MNIST VAE).
    MlpVae,
    /// `train dcgan`'s networks and step (D on real + fake, then G), batch 64.
    Dcgan,
}

impl BenchModel {
    pub const ALL: [BenchModel; 2] = [BenchModel::MlpVae, BenchModel::Dcgan];

    pub fn name(self) -> &'static str {
        match self {
            BenchModel::MlpVae => "mlp-vae",
            BenchModel::Dcgan => "dcgan",
        }
    }

    fn default_batch(self) -> usize {
        match self {
            BenchModel::MlpVae => 128,
            BenchModel::Dcgan => 64,
        }
    }

    /// The run configuration `train` would use for this model.
    fn config(self, batch: usize, device: DeviceChoice, data_dir: Option<PathBuf>) -> Result<RunConfig> {
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
            BenchModel::Dcgan => (ModelKind::Dcgan, Options::default()),
        };
        RunConfig::resolve(kind, Options { batch_size: Some(batch), device: Some(device), data_dir, ..opts })
    }
}

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub models: Vec<BenchModel>,
    /// Overrides every model's batch size.
    pub batch: Option<usize>,
    pub warmup: usize,
    pub steps: usize,
    pub device: DeviceChoice,
    pub data_dir: Option<PathBuf>,
    /// A Python with torch: also run `bench/pytorch_ref.py` with the same settings.
    pub pytorch: Option<PathBuf>,
}

/// One row of the table (and one JSON line).
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    pub model: &'static str,
    pub device: DeviceChoice,
    pub batch: usize,
    pub steps: usize,
    pub median_step_ms: f64,
    pub samples_per_sec: f64,
    pub flops_per_sample: u64,
    pub gflops_per_sec: f64,
    pub peak_gflops: f64,
    pub peak_isa: &'static str,
    pub pct_of_peak: f64,
    pub threads: usize,
    /// Process CPU seconds per wall second over the timed steps (None where unmeasurable).
    pub cores_busy: Option<f64>,
    pub pytorch_samples_per_sec: Option<f64>,
    /// latentlab samples/s ÷ PyTorch samples/s.
    pub vs_pytorch: Option<f64>,
}

/// CPU seconds (user + system) this process has used so far.
pub fn cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: rc == 0, so the struct was written.
        let u = unsafe { u.assume_init() };
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
        Some(t(u.ru_utime) + t(u.ru_stime))
    }
    #[cfg(not(unix))]
    None
}

/// Median of a non-empty slice.
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

/// Timings of one model's steps.
struct Timed {
    step_secs: Vec<f64>,
    cores_busy: Option<f64>,
}

fn time_model(model: BenchModel, batch: usize, opts: &BenchOptions, data: &data::Splits) -> Result<Timed> {
    let cfg = model.config(batch, opts.device, opts.data_dir.clone())?;
    let spec = spec_for(&cfg, data);
    spec.validate()?;
    let ad = backend::device(opts.device)?.autodiff();
    let mut net = Net::new(&spec, cfg.seed, &ad);
    let mut optims = optimizers(&spec);
    let loader = Loader::new(&data.train, batch, cfg.binarize, spec.kind.range(), cfg.seed);
    let order = loader.order(0);
    let nb = data.train.n / batch; // whole batches only
    if nb == 0 {
        bail!("bench: the training set has {} images, fewer than one batch of {batch}", data.train.n);
    }
    let batches: Vec<Batch> = (0..nb.min(64)).map(|b| loader.batch(&order, b, b as u64)).collect();
    let total = opts.warmup + opts.steps;
    let mut step_secs = Vec::with_capacity(opts.steps);
    let (mut cpu0, mut wall0) = (None, Instant::now());
    for s in 0..total {
        if s == opts.warmup {
            cpu0 = cpu_seconds();
            wall0 = Instant::now();
        }
        let b = &batches[s % batches.len()];
        let t0 = Instant::now();
        let x = matrix(b.x.clone(), b.n, spec.shape.len(), &ad);
        let noise = &mut rng(cfg.seed, Stream::Noise, s as u64);
        // Every step ends by reading its losses to the host, so the clock sees finished work.
        let (next, values) = crate::train::trainer::step(net, &mut optims, &spec, &cfg, x, &b.labels, noise);
        net = next;
        if let Some((name, v)) = values.iter().find(|(_, v)| !v.is_finite()) {
            bail!("bench {}: loss term '{name}' became {v} at step {s}", model.name());
        }
        if s >= opts.warmup {
            step_secs.push(t0.elapsed().as_secs_f64());
        }
    }
    let wall = wall0.elapsed().as_secs_f64();
    let cores_busy = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) if wall > 0.0 => Some((b - a) / wall),
        _ => None,
    };
    Ok(Timed { step_secs, cores_busy })
}

/// The worker threads burn's CPU backend uses (rayon's global pool).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Run the benchmark; rows in `opts.models` order.
pub fn run(opts: &BenchOptions) -> Result<Vec<BenchRow>> {
    if opts.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let data = data::load("mnist", opts.data_dir.as_deref())?;
    let threads = threads();
    let peak = peak::measure(threads, Duration::from_millis(200));
    let shape = data.train.shape;
    let mut rows = Vec::new();
    for &m in &opts.models {
        let batch = opts.batch.unwrap_or(m.default_batch());
        if batch == 0 {
            bail!("--batch must be at least 1");
        }
        let t = time_model(m, batch, opts, &data)?;
        let med = median(&t.step_secs);
        let flops_per_sample = match m {
            BenchModel::MlpVae => flops::mlp_vae_step(shape.len(), &[400], 20),
            BenchModel::Dcgan => flops::dcgan_step(shape, 100),
        };
        let sps = batch as f64 / med;
        let gflops = sps * flops_per_sample as f64 / 1e9;
        rows.push(BenchRow {
            model: m.name(),
            device: opts.device,
            batch,
            steps: opts.steps,
            median_step_ms: med * 1e3,
            samples_per_sec: sps,
            flops_per_sample,
            gflops_per_sec: gflops,
            peak_gflops: peak.gflops,
            peak_isa: peak.isa,
            pct_of_peak: 100.0 * gflops / peak.gflops,
            threads,
            cores_busy: t.cores_busy,
            pytorch_samples_per_sec: None,
            vs_pytorch: None,
        });
    }
    if let Some(py) = &opts.pytorch {
        let mnist = data::data_dir(opts.data_dir.as_deref()).join("mnist");
        let refs = pytorch(py, &mnist, opts, threads)?;
        for r in rows.iter_mut() {
            if let Some(&(_, v)) = refs.iter().find(|(n, _)| n == r.model) {
                r.pytorch_samples_per_sec = Some(v);
                r.vs_pytorch = Some(r.samples_per_sec / v);
            }
        }
    }
    Ok(rows)
}

/// The PyTorch reference script, shipped inside the binary.
pub const PYTORCH_REF: &str = include_str!("../../bench/pytorch_ref.py");

/// Run the PyTorch reference with the same models, batches, steps and threads; (model, samples/s).
fn pytorch(python: &Path, mnist: &Path, opts: &BenchOptions, threads: usize) -> Result<Vec<(String, f64)>> {
    let dir = tempfile_dir()?;
    let script = dir.join("pytorch_ref.py");
    std::fs::write(&script, PYTORCH_REF).with_context(|| format!("writing {}", script.display()))?;
    let models: Vec<&str> = opts.models.iter().map(|m| m.name()).collect();
    let mut cmd = std::process::Command::new(python);
    cmd.arg(&script)
        .arg("--mnist")
        .arg(mnist)
        .args(["--models", &models.join(",")])
        .args(["--threads", &threads.to_string()])
        .args(["--steps", &opts.steps.to_string()])
        .args(["--warmup", &opts.warmup.to_string()]);
    for m in &opts.models {
        let flag = match m {
            BenchModel::MlpVae => "--vae-batch",
            BenchModel::Dcgan => "--dcgan-batch",
        };
        cmd.args([flag, &opts.batch.unwrap_or(m.default_batch()).to_string()]);
    }
    let out = cmd.output().with_context(|| format!("--pytorch {}: cannot run it", python.display()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        bail!(
            "--pytorch {}: the PyTorch reference failed ({}): {}",
            python.display(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    parse_pytorch(&String::from_utf8_lossy(&out.stdout))
}

/// (model, samples/s) from the reference script's JSON lines.
pub fn parse_pytorch(stdout: &str) -> Result<Vec<(String, f64)>> {
    let mut v = Vec::new();
    for line in stdout.lines().filter(|l| l.trim_start().starts_with('{')) {
        let j: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("PyTorch reference printed a bad line: {line}"))?;
        match (j["model"].as_str(), j["samples_per_sec"].as_f64()) {
            (Some(m), Some(s)) if s.is_finite() && s > 0.0 => v.push((m.to_string(), s)),
            _ => bail!("PyTorch reference line lacks model/samples_per_sec: {line}"),
        }
    }
    if v.is_empty() {
        bail!("the PyTorch reference printed no results");
    }
    Ok(v)
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("latentlab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

/// The human-readable table.
pub fn table(rows: &[BenchRow]) -> String {
    let with_ref = rows.iter().any(|r| r.pytorch_samples_per_sec.is_some());
    let mut s = format!(
        "{:<8} {:>5} {:>10} {:>9} {:>9} {:>8} {:>7} {:>10}",
        "model", "batch", "samples/s", "step ms", "GFLOP/s", "% peak", "threads", "cores busy"
    );
    if with_ref {
        s += &format!(" {:>11} {:>10}", "PyTorch s/s", "vs PyTorch");
    }
    s.push('\n');
    for r in rows {
        s += &format!(
            "{:<8} {:>5} {:>10.0} {:>9.2} {:>9.1} {:>7.1}% {:>7} {:>10}",
            r.model,
            r.batch,
            r.samples_per_sec,
            r.median_step_ms,
            r.gflops_per_sec,
            r.pct_of_peak,
            r.threads,
            r.cores_busy.map_or("n/a".into(), |c| format!("{c:.2}")),
        );
        if with_ref {
            s += &format!(
                " {:>11} {:>10}",
                r.pytorch_samples_per_sec.map_or("-".into(), |v| format!("{v:.0}")),
                r.vs_pytorch.map_or("-".into(), |v| format!("{v:.2}×"))
            );
        }
        s.push('\n');
    }
    if let Some(r) = rows.first() {
        s += &format!(
            "peak assumed: {:.1} GFLOP/s f32 = {} threads running {} FMA loops, measured now; FLOPs = 2 × the \
             linear/conv multiply-adds of forward and backward (README, \"Speed\")\n",
            r.peak_gflops, r.threads, r.peak_isa
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::prelude::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    /// The FLOP model's multiply-adds equal the weight-matrix sizes of the network bench builds
    /// (for fully connected layers, multiply-adds per sample = weights), counted from the module.
    #[test]
    fn mlp_vae_flops_match_the_real_network() {
        let cfg = BenchModel::MlpVae.config(128, DeviceChoice::Cpu, None).unwrap();
        let spec = crate::models::ModelSpec {
            kind: cfg.model,
            shape: data::ImageShape { channels: 1, height: 28, width: 28 },
            num_classes: 10,
            latent_dim: cfg.latent_dim,
            hidden: cfg.hidden.clone(),
            decoder: cfg.decoder,
            decoder_sigma: cfg.decoder_sigma,
            beta: cfg.beta,
            prior: cfg.prior,
            arch: cfg.arch,
        };
        let net = Net::new(&spec, 0, &Device::flex());
        struct Weights(u64);
        impl ModuleVisitor for Weights {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                if D == 2 {
                    self.0 += p.val().shape().num_elements() as u64;
                }
            }
        }
        let mut w = Weights(0);
        net.visit(&mut w);
        let macs: u64 = flops::mlp_vae_layers(784, &[400], 20).iter().sum();
        assert_eq!(w.0, macs);
    }

    #[test]
    fn parses_reference_lines_and_rejects_garbage() {
        let v = parse_pytorch("warning: x\n{\"model\": \"dcgan\", \"samples_per_sec\": 780.5}\n").unwrap();
        assert_eq!(v, vec![("dcgan".to_string(), 780.5)]);
        assert!(parse_pytorch("").unwrap_err().to_string().contains("no results"));
        assert!(parse_pytorch("{\"model\": 1}").unwrap_err().to_string().contains("lacks"));
    }

    #[test]
    fn table_has_every_column() {
        let row = BenchRow {
            model: "dcgan",
            device: DeviceChoice::Cpu,
            batch: 64,
            steps: 3,
            median_step_ms: 100.0,
            samples_per_sec: 640.0,
            flops_per_sample: 1_000_000,
            gflops_per_sec: 0.64,
            peak_gflops: 64.0,
            peak_isa: "avx2+fma",
            pct_of_peak: 1.0,
            threads: 2,
            cores_busy: Some(1.9),
            pytorch_samples_per_sec: Some(1280.0),
            vs_pytorch: Some(0.5),
        };
        let t = table(&[row]);
        for col in ["samples/s", "GFLOP/s", "% peak", "threads", "cores busy", "vs PyTorch", "0.50×", "1.90"] {
            assert!(t.contains(col), "{col} missing from\n{t}");
        }
    }
}
