//! latentlab: train, sample, visualise and compare deep generative models of images.
//!
//! Layers (data flows one way): `data` (files → datasets → batches) → `models` (networks, their
//! losses, and the registry where each model declares itself) → `run` (the run folder: paths,
//! checkpoints, the writer lock) → `train` (the loop and the step of each optimiser pattern) →
//! `eval`, `viz`, `report` (metrics, pictures, the comparison) → `app` (what each command does) →
//! `cli` (parse, call `app`, print).

pub mod app;
pub mod artifacts;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod config;
pub mod data;
pub mod eval;
pub mod export;
pub mod kernels;
pub mod models;
pub mod report;
pub mod run;
pub mod train;
pub mod util;
pub mod viz;
