#![allow(dead_code)]
//! Helpers shared by the integration tests: the real datasets in ../shared/data and small runs.

pub mod cdp;
use latentlab::config::{Options, RunConfig};
use latentlab::models::ModelKind;
use std::path::{Path, PathBuf};

pub fn shared_data() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    assert!(p.join("mnist").is_dir(), "tests need the datasets at {}", p.display());
    p
}

/// A config for a quick run on the shared data.
pub fn quick_config(model: ModelKind, dataset: &str, opts: Options) -> RunConfig {
    let base = Options { dataset: Some(dataset.into()), data_dir: Some(shared_data()), ..Default::default() };
    RunConfig::resolve(model, opts.or(base)).unwrap()
}

/// Train a fresh run in `dir` with `cfg` (as `train` does); returns the summary.
pub fn train_run(dir: &Path, cfg: &RunConfig) -> serde_json::Value {
    serde_json::to_value(latentlab::app::training::start_with(cfg, dir.to_path_buf()).unwrap().summary).unwrap()
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_latentlab")
}

/// Run the CLI; returns (success, stdout, stderr).
pub fn cli(args: &[&str], cwd: &Path) -> (bool, String, String) {
    cli_env(args, cwd, &[])
}

/// `cli` with extra environment variables (e.g. a test's own LATENTLAB_CACHE).
pub fn cli_env(args: &[&str], cwd: &Path, env: &[(&str, &Path)]) -> (bool, String, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("LATENTLAB_DATA", shared_data())
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}
