//! Device selection. Models and training are written once against burn's device-dispatched
//! tensors; which backend runs them is a cargo feature plus this run-time choice.

use anyhow::{Result, bail};
use burn::prelude::Device;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceChoice {
    /// burn's Flex CPU backend (default).
    #[default]
    Cpu,
    /// NVIDIA GPU (build with `--features cuda`).
    Cuda,
    /// Any GPU through wgpu (build with `--features wgpu`).
    Wgpu,
}

/// The plain (inference) device for a choice; training uses `.autodiff()` of it.
pub fn device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        DeviceChoice::Cuda => Ok(Device::cuda(0)),
        #[cfg(not(feature = "cuda"))]
        DeviceChoice::Cuda => bail!(
            "--device cuda: this binary was built without CUDA; rebuild with `cargo build --release --features cuda`"
        ),
        #[cfg(feature = "wgpu")]
        DeviceChoice::Wgpu => Ok(Device::wgpu(burn::prelude::DeviceKind::DefaultDevice)),
        #[cfg(not(feature = "wgpu"))]
        DeviceChoice::Wgpu => bail!(
            "--device wgpu: this binary was built without wgpu; rebuild with `cargo build --release --features wgpu`"
        ),
    }
}
