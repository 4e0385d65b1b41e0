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

/// A CelebA folder of the first `n` real faces (official layout: `img_align_celeba/` with links
/// to the shared images, and the real attribute and identity rows of those faces, CRLF as the
/// official files) in `dir`; returns its path.
pub fn small_celeba(dir: &Path, n: usize) -> PathBuf {
    let src = shared_data().join("celeba");
    let out = dir.join("celeba");
    std::fs::create_dir_all(out.join("img_align_celeba")).unwrap();
    let attr = std::fs::read_to_string(src.join("list_attr_celeba.txt")).unwrap();
    let mut lines = attr.lines();
    let (_, header) = (lines.next(), lines.next().unwrap());
    let mut rows = format!("{n}\r\n{}\r\n", header.trim_end());
    for l in lines.take(n) {
        let name = l.split_whitespace().next().unwrap();
        std::os::unix::fs::symlink(src.join("img_align_celeba").join(name), out.join("img_align_celeba").join(name))
            .unwrap();
        rows.push_str(l.trim_end());
        rows.push_str("\r\n");
    }
    std::fs::write(out.join("list_attr_celeba.txt"), rows).unwrap();
    let ids: String = std::fs::read_to_string(src.join("identity_CelebA.txt"))
        .unwrap()
        .lines()
        .take(n)
        .map(|l| format!("{}\r\n", l.trim_end()))
        .collect();
    std::fs::write(out.join("identity_CelebA.txt"), ids).unwrap();
    out
}
