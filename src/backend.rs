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
        DeviceChoice::Cuda => {
            // cudarc loads the driver lazily and panics without it: ask for it first.
            let found = ["libcuda.so.1", "libcuda.so"].iter().any(|name| {
                let c = std::ffi::CString::new(*name).expect("no NUL");
                // SAFETY: dlopen with a valid C string; the handle is kept (cudarc opens it again).
                !unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_LAZY) }.is_null()
            });
            if !found {
                bail!(
                    "--device cuda: no NVIDIA driver here (libcuda.so.1 cannot be loaded); install the driver or \
                     add its folder to LD_LIBRARY_PATH, or train on --device cpu"
                );
            }
            Ok(Device::cuda(0))
        }
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
