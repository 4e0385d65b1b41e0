//! `latentlab bench --explore RUN…`: how long the explorer takes to answer the page's largest
//! routine request, a grid of 64 decoded images, measured end to end over HTTP on 127.0.0.1
//! (JSON parsing, decoding, 64 PNG encodings, the response) — what a user waits for.

use crate::app::explore::{ExploreRequest, start};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Instant;

/// Images per request: the page's background grid asks for 12×12 (144), a walk for 24, the
/// issue's yardstick is a grid of 64.
pub const GRID: usize = 64;

#[derive(Debug, Serialize)]
pub struct DecodeLatency {
    pub run: String,
    pub model: String,
    pub latent_dim: usize,
    pub images: usize,
    pub requests: usize,
    pub median_ms: f64,
    pub p90_ms: f64,
}

pub fn decode_latency(
    runs: &[PathBuf],
    warmup: usize,
    requests: usize,
    device: crate::backend::DeviceChoice,
) -> Result<Vec<DecodeLatency>> {
    if requests == 0 {
        bail!("--steps must be at least 1");
    }
    let mut req: ExploreRequest = crate::app::with_defaults(&[runs[0].as_os_str()]);
    req.runs = runs.to_vec();
    (req.port, req.device) = (0, device);
    let server = start(req)?;
    let base = server.url();
    std::thread::spawn(move || server.serve());
    let list: Value = serde_json::from_str(&ureq::get(&format!("{base}api/runs")).call()?.into_string()?)?;
    let mut out = Vec::new();
    for (run, path) in list["runs"].as_array().context("run list")?.iter().zip(runs) {
        let id = run["id"].as_str().context("run id")?;
        let Some(l) = run["latent_dim"].as_u64() else {
            bail!("{}: {}", path.display(), run["error"].as_str().unwrap_or("cannot be loaded"));
        };
        let l = l as usize;
        // A fixed grid of codes spread over ±2 along every axis.
        let codes: Vec<Vec<f32>> =
            (0..GRID).map(|i| (0..l).map(|j| ((i * 7 + j * 3) % 9) as f32 / 2.0 - 2.0).collect()).collect();
        let body = json!({ "codes": codes }).to_string();
        let url = format!("{base}api/runs/{id}/decode");
        let mut ms = Vec::with_capacity(requests);
        for k in 0..warmup + requests {
            let t = Instant::now();
            let text = ureq::post(&url)
                .set("Content-Type", "application/json")
                .send_string(&body)
                .with_context(|| format!("decode request to {url}"))?
                .into_string()?;
            let reply: Value = serde_json::from_str(&text)?;
            let dt = t.elapsed().as_secs_f64() * 1e3;
            if reply["images"].as_array().map(Vec::len) != Some(GRID) {
                bail!("decode answered {reply}");
            }
            if k >= warmup {
                ms.push(dt);
            }
        }
        ms.sort_by(f64::total_cmp);
        out.push(DecodeLatency {
            run: path.display().to_string(),
            model: run["model"].as_str().unwrap_or("").into(),
            latent_dim: l,
            images: GRID,
            requests,
            median_ms: super::median(&ms),
            p90_ms: ms[((ms.len() - 1) as f64 * 0.9).round() as usize],
        });
    }
    Ok(out)
}

pub fn latency_table(rows: &[DecodeLatency]) -> String {
    let mut s = format!("{:<40} {:<8} {:>6} {:>10} {:>8}\n", "run", "model", "latent", "median ms", "p90 ms");
    for r in rows {
        s += &format!("{:<40} {:<8} {:>6} {:>10.1} {:>8.1}\n", r.run, r.model, r.latent_dim, r.median_ms, r.p90_ms);
    }
    s += &format!(
        "(decode {GRID} codes → {GRID} PNGs over HTTP on 127.0.0.1, {} requests each)\n",
        rows.first().map_or(0, |r| r.requests)
    );
    s
}
