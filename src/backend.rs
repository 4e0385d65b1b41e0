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

impl DeviceChoice {
    /// The name `--device` takes.
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda => "cuda",
            DeviceChoice::Wgpu => "wgpu",
        }
    }
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
        DeviceChoice::Wgpu => {
            static ADAPTER: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
            ADAPTER.get_or_init(wgpu_adapter).clone().map_err(anyhow::Error::msg)?;
            Ok(Device::wgpu(burn::prelude::DeviceKind::DefaultDevice))
        }
        #[cfg(not(feature = "wgpu"))]
        DeviceChoice::Wgpu => bail!(
            "--device wgpu: this binary was built without wgpu; rebuild with `cargo build --release --features wgpu`"
        ),
    }
}

/// Find the adapter cubecl will take (its default: wgpu's high-performance choice over every
/// graphics API) and say once which it is; no adapter is an error naming what to install.
#[cfg(feature = "wgpu")]
fn wgpu_adapter() -> Result<(), String> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let all = futures_lite::future::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    if all.is_empty() {
        return Err("--device wgpu: no graphics adapter found (Vulkan, Metal, DX12 or OpenGL); install the GPU's \
                    Vulkan driver (without a GPU, Mesa's software one: `apt install mesa-vulkan-drivers`), or use \
                    --device cpu"
            .into());
    }
    let chosen = match std::env::var("CUBECL_WGPU_DEFAULT_DEVICE") {
        // cubecl picks by this variable instead (e.g. `Cpu` for a software adapter).
        Ok(v) => format!("the adapter CUBECL_WGPU_DEFAULT_DEVICE={v} selects"),
        Err(_) => {
            let opts = wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            };
            match futures_lite::future::block_on(instance.request_adapter(&opts)) {
                Ok(a) => {
                    let i = a.get_info();
                    let soft = if i.device_type == wgpu::DeviceType::Cpu {
                        ", a software adapter: the GPU code path on the CPU, slowly"
                    } else {
                        ""
                    };
                    format!("{} ({:?}{soft})", i.name, i.backend)
                }
                Err(e) => return Err(format!("--device wgpu: no adapter can be used: {e}")),
            }
        }
    };
    eprintln!("--device wgpu: {chosen}");
    Ok(())
}
