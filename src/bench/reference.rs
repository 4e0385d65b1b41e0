//! The PyTorch side of `--pytorch`: `bench/pytorch_ref.py` as a long-lived server, one JSON request
//! and one JSON answer per line.

use super::BenchModel;
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// The PyTorch reference script, shipped inside the binary.
pub const PYTORCH_REF: &str = include_str!("../../bench/pytorch_ref.py");

/// `bench/pytorch_ref.py --serve`: one process for all rounds, one JSON request per line.
pub(super) struct Reference {
    python: PathBuf,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    dir: PathBuf,
}

impl Reference {
    pub(super) fn start(python: &Path, mnist: &Path, threads: usize) -> Result<Reference> {
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
    pub(super) fn measure(&mut self, model: BenchModel, batch: usize, steps: usize, warmup: usize) -> Result<f64> {
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

    /// Waits (up to 3 s) until the reference process stops using the CPU: PyTorch's OpenMP workers
    /// spin after its last step (~10 ms on the 2-core Zen 4 VM), and a latentlab round timed during
    /// that spin would share the cores with them.
    pub(super) fn wait_idle(&self) {
        wait_idle(self.child.id(), Duration::from_secs(3));
    }

    pub(super) fn finish(mut self) {
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

/// Of all threads of process `pid`: nanoseconds spent on a CPU or runnable and waiting for one
/// (`/proc/PID/task/*/schedstat`, its first two fields), and whether one is runnable now (state R
/// in `stat`; the counters only move when a thread is switched, so a spinner that other work keeps
/// off the cores for a whole poll shows only here). None where these are unreadable (not Linux).
fn demand(pid: u32) -> Option<(u64, bool)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let (mut total, mut runnable) = (0u64, false);
    for t in tasks.flatten() {
        // A thread that exits between the listing and the read is simply not counted.
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
            total += s.split_whitespace().take(2).filter_map(|v| v.parse::<u64>().ok()).sum::<u64>();
        }
        if let Ok(s) = std::fs::read_to_string(t.path().join("stat")) {
            // "pid (comm) S …": the state follows the last ')' (comm may hold spaces and parens).
            runnable |= s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('R'));
        }
    }
    Some((total, runnable))
}

/// Polls every 10 ms until process `pid` neither ran nor waited to run for 1 ms of the last 10 ms
/// and has no runnable thread, or `limit` passed; returns how long it waited (0 where its scheduler
/// statistics are unreadable).
pub(super) fn wait_idle(pid: u32, limit: Duration) -> Duration {
    let t0 = Instant::now();
    let Some((mut last, _)) = demand(pid) else { return Duration::ZERO };
    while t0.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(10));
        let Some((now, runnable)) = demand(pid) else { break };
        if now.saturating_sub(last) < 1_000_000 && !runnable {
            break;
        }
        last = now;
    }
    t0.elapsed()
}

fn tempfile_dir() -> Result<PathBuf> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("latentlab-bench-{}-{k}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}
