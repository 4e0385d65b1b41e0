//! latentlab: train, sample, visualise and compare deep generative models of images.
//!
//! Layers (data flows one way): `data` (files → datasets → batches) → `models` (networks and their
//! losses) → `train` (optimiser loops, checkpoints, logs) → `viz` (pictures from checkpoints).
//! `run` ties a run folder together; `cli` is the command-line surface.

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
