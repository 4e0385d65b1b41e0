//! latentlab: train, sample, visualise and compare deep generative models of images.
//!
//! As a library, use the API re-exported here: [`Run`] (open a trained run; sample, encode,
//! decode, evaluate; train a new one from a [`RunConfig`] built in code) and [`score`] (latentlab's
//! metrics for any images). See `examples/` for complete programs. The modules below it are the
//! program's internals, public for its command line and tests but hidden from these docs and not
//! a stable interface.
//!
//! ```no_run
//! use latentlab::{ModelKind, Options, Run, RunConfig};
//! # fn main() -> anyhow::Result<()> {
//! let config = RunConfig::resolve(ModelKind::Vae, Options { epochs: Some(5), ..Default::default() })?;
//! let run = Run::train(&config, "runs/my-vae")?;
//! run.sample(64, 0)?.save_png("samples.png", 8)?;
//! # Ok(())
//! # }
//! ```
//!
//! Layers (data flows one way): `data` (files → datasets → batches) → `models` (networks, their
//! losses, and the registry where each model declares itself) → `run` (the run folder: paths,
//! checkpoints, the writer lock) → `train` (the loop and the step of each optimiser pattern) →
//! `eval`, `viz`, `report` (metrics, pictures, the comparison) → `app` (what each command does) →
//! `cli` (parse, call `app`, print); `api` is the library's face.

// The internals' doc comments write shapes and ranges as [B, D] and [0,1] and double as `--help`
// text (plain, not markdown), so rustdoc's link and HTML lints are for the API above only.
mod api;
pub use api::{EvalOptions, EvalReport, ImageShape, Images, Metric, ModelKind, Options, Run, RunConfig, Which, score};
pub use backend::DeviceChoice;

#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod app;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod artifacts;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod backend;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod bench;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod cli;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod config;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod data;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod eval;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod explore;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod export;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod kernels;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod models;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod report;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod run;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod study;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod train;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod util;
#[doc(hidden)]
#[allow(rustdoc::all)]
pub mod viz;
