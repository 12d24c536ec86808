//! Devices. `Device::Cuda` always exists as a variant; without the `cuda` feature every attempt to
//! place data on it returns [`Error::NotCompiledWithCuda`]. This file and `storage.rs` are the only
//! places that know whether CUDA was compiled in.

use crate::{Error, Result};

/// Where a tensor's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// Host memory; kernels on ndarray + gemm + rayon.
    #[default]
    Cpu,
    /// A CUDA device by ordinal (feature `cuda`).
    Cuda(usize),
}

impl Device {
    /// Checks that the device can be used in this build.
    pub fn ensure_available(&self) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Cuda(_) if cfg!(feature = "cuda") => Err(Error::DeviceUnsupported {
                op: "Device::Cuda",
                device: format!("{self} (the CUDA backend is not implemented yet; use the CPU)"),
            }),
            Device::Cuda(_) => Err(Error::NotCompiledWithCuda("Device::Cuda")),
        }
    }

    /// Parses `cpu`, `cuda` or `cuda:N`.
    pub fn parse(s: &str) -> Result<Device> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(i)) => Ok(Device::Cuda(i)),
                _ => Err(Error::Invalid {
                    op: "device",
                    detail: format!("unknown device `{s}` (expected cpu, cuda or cuda:N)"),
                }),
            },
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}
