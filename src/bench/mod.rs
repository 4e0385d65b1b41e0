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
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

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
}

impl BenchModel {
    pub const ALL: [BenchModel; 3] = [BenchModel::MlpVae, BenchModel::Vae, BenchModel::Dcgan];

    pub fn name(self) -> &'static str {
        match self {
            BenchModel::MlpVae => "mlp-vae",
            BenchModel::Vae => "vae",
            BenchModel::Dcgan => "dcgan",
        }
    }

    fn default_batch(self) -> usize {
        match self {
            BenchModel::MlpVae | BenchModel::Vae => 128,
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
            BenchModel::Vae => (ModelKind::Vae, Options::default()),
            BenchModel::Dcgan => (ModelKind::Dcgan, Options::default()),
        };
        RunConfig::resolve(kind, Options { batch_size: Some(batch), device: Some(device), data_dir, ..opts })
    }

    /// FLOPs per sample of one step (see `flops`).
    fn flops(self, shape: data::ImageShape) -> u64 {
        match self {
            BenchModel::MlpVae => flops::mlp_vae_step(shape.len(), &[400], 20),
            BenchModel::Vae => flops::mlp_vae_step(shape.len(), &[512, 256], 20),
            BenchModel::Dcgan => flops::dcgan_step(shape, 100),
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
    pub samples_per_sec: f64,
    pub flops_per_sample: u64,
    pub gflops_per_sec: f64,
    pub peak_gflops: f64,
    pub peak_isa: &'static str,
    pub pct_of_peak: f64,
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
        let (next, values) = crate::train::trainer::step(net, &mut optims, &spec, &cfg, cfg.lr, x, &b.labels, noise);
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

/// One model in one round: (samples/s, median step seconds, cores busy, PyTorch samples/s).
type Round = (f64, f64, Option<f64>, Option<f64>);

/// Run the benchmark; rows in `opts.models` order.
pub fn run(opts: &BenchOptions) -> Result<Vec<BenchRow>> {
    if opts.steps == 0 {
        bail!("--steps must be at least 1");
    }
    if opts.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let data = data::load("mnist", opts.data_dir.as_deref())?;
    let threads = threads();
    let mut reference = match &opts.pytorch {
        Some(py) => Some(Reference::start(py, &data::data_dir(opts.data_dir.as_deref()).join("mnist"), threads)?),
        None => None,
    };
    let peak = peak::measure(threads, Duration::from_millis(200));
    let shape = data.train.shape;
    let batches: Vec<usize> = opts.models.iter().map(|m| opts.batch.unwrap_or(m.default_batch())).collect();
    if batches.contains(&0) {
        bail!("--batch must be at least 1");
    }
    let mut rounds: Vec<Vec<Round>> = vec![Vec::new(); opts.models.len()];
    for _ in 0..opts.rounds {
        for (i, (&m, &batch)) in opts.models.iter().zip(&batches).enumerate() {
            let t = time_model(m, batch, opts, &data)?;
            let med = median(&t.step_secs);
            let theirs = match reference.as_mut() {
                Some(r) => Some(r.measure(m, batch, opts.steps, opts.warmup)?),
                None => None,
            };
            rounds[i].push((batch as f64 / med, med, t.cores_busy, theirs));
        }
    }
    if let Some(r) = reference {
        r.finish();
    }
    let mut rows = Vec::new();
    for ((&m, &batch), rs) in opts.models.iter().zip(&batches).zip(rounds) {
        let ours: Vec<f64> = rs.iter().map(|r| r.0).collect();
        let theirs: Vec<f64> = rs.iter().filter_map(|r| r.3).collect();
        let ratios: Vec<f64> = rs.iter().filter_map(|r| r.3.map(|t| r.0 / t)).collect();
        let busy: Vec<f64> = rs.iter().filter_map(|r| r.2).collect();
        let sps = median(&ours);
        let flops_per_sample = m.flops(shape);
        let gflops = sps * flops_per_sample as f64 / 1e9;
        rows.push(BenchRow {
            model: m.name(),
            device: opts.device,
            batch,
            steps: opts.steps,
            rounds: opts.rounds,
            median_step_ms: median(&rs.iter().map(|r| r.1).collect::<Vec<_>>()) * 1e3,
            samples_per_sec: sps,
            flops_per_sample,
            gflops_per_sec: gflops,
            peak_gflops: peak.gflops,
            peak_isa: peak.isa,
            pct_of_peak: 100.0 * gflops / peak.gflops,
            threads,
            cores_busy: (!busy.is_empty()).then(|| median(&busy)),
            round_samples_per_sec: ours,
            pytorch_samples_per_sec: (!theirs.is_empty()).then(|| median(&theirs)),
            round_pytorch_samples_per_sec: theirs,
            vs_pytorch: (!ratios.is_empty()).then(|| median(&ratios)),
        });
    }
    Ok(rows)
}

/// The PyTorch reference script, shipped inside the binary.
pub const PYTORCH_REF: &str = include_str!("../../bench/pytorch_ref.py");

/// `bench/pytorch_ref.py --serve`: one process for all rounds, one JSON request per line.
struct Reference {
    python: PathBuf,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    dir: PathBuf,
}

impl Reference {
    fn start(python: &Path, mnist: &Path, threads: usize) -> Result<Reference> {
        let dir = tempfile_dir()?;
        let script = dir.join("pytorch_ref.py");
        std::fs::write(&script, PYTORCH_REF).with_context(|| format!("writing {}", script.display()))?;
        let err_log = std::fs::File::create(dir.join("stderr.log")).context("creating the reference's log")?;
        let mut child = Command::new(python)
            .arg(&script)
            .arg("--serve")
            .arg("--mnist")
            .arg(mnist)
            .args(["--threads", &threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err_log)
            .spawn()
            .with_context(|| format!("--pytorch {}: cannot run it", python.display()))?;
        let stdin = child.stdin.take().context("reference stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("reference stdout")?);
        let mut r = Reference { python: python.to_path_buf(), child, stdin, stdout, dir };
        let line = r.read_line()?;
        if !line.contains("\"ready\"") {
            return Err(r.failure(&format!("expected a ready line, got {line:?}")));
        }
        Ok(r)
    }

    fn read_line(&mut self) -> Result<String> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap_or(0);
            if n == 0 {
                return Err(self.failure("it exited"));
            }
            if line.trim_start().starts_with('{') {
                return Ok(line.trim().to_string());
            }
        }
    }

    /// An error naming the interpreter and quoting the end of its stderr.
    fn failure(&mut self, what: &str) -> anyhow::Error {
        let _ = self.child.kill();
        let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
        let err = std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        let _ = std::fs::remove_dir_all(&self.dir);
        anyhow::anyhow!(
            "--pytorch {}: the PyTorch reference failed ({what}; {status}): {}",
            self.python.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )
    }

    /// samples/s of `steps` timed steps (after `warmup`) of `model` in PyTorch.
    fn measure(&mut self, model: BenchModel, batch: usize, steps: usize, warmup: usize) -> Result<f64> {
        let req = serde_json::json!({"model": model.name(), "batch": batch, "steps": steps, "warmup": warmup});
        if writeln!(self.stdin, "{req}").and_then(|_| self.stdin.flush()).is_err() {
            return Err(self.failure("its stdin closed"));
        }
        let line = self.read_line()?;
        match parse_pytorch(&line) {
            Ok(v) => match v.iter().find(|(m, _)| m == model.name()) {
                Some(&(_, sps)) => Ok(sps),
                None => Err(self.failure(&format!("answered for another model: {line}"))),
            },
            Err(e) => Err(self.failure(&e.to_string())),
        }
    }

    fn finish(mut self) {
        let _ = writeln!(self.stdin, "{{\"quit\": true}}");
        drop(self.stdin);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("latentlab-bench-{}-{k}", std::process::id()));
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
        if r.rounds > 1 {
            s += &format!(
                "medians over {} rounds of {} steps{}\n",
                r.rounds,
                r.steps,
                if with_ref {
                    "; each round runs latentlab then PyTorch, the ratio is the median of per-round ratios"
                } else {
                    ""
                }
            );
        }
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
            objective: cfg.objective,
            ema: cfg.ema,
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
            rounds: 1,
            median_step_ms: 100.0,
            samples_per_sec: 640.0,
            flops_per_sample: 1_000_000,
            gflops_per_sec: 0.64,
            peak_gflops: 64.0,
            peak_isa: "avx2+fma",
            pct_of_peak: 1.0,
            threads: 2,
            cores_busy: Some(1.9),
            round_samples_per_sec: vec![640.0],
            pytorch_samples_per_sec: Some(1280.0),
            round_pytorch_samples_per_sec: vec![1280.0],
            vs_pytorch: Some(0.5),
        };
        let t = table(&[row]);
        for col in ["samples/s", "GFLOP/s", "% peak", "threads", "cores busy", "vs PyTorch", "0.50×", "1.90"] {
            assert!(t.contains(col), "{col} missing from\n{t}");
        }
    }
}
