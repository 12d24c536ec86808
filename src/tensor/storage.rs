//! Storage: the data of a tensor on its device. CPU storage is a contiguous row-major buffer;
//! buffers return to the [`pool`](super::pool) when dropped. Copies between devices happen here
//! ([`Storage::copy_to`]); kernels dispatch on the device in `crate::ops` (one `match` per op).

use super::pool;
use crate::{Device, Error, Result};

/// Host buffer of one dtype.
#[derive(Debug)]
pub enum CpuStorage {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Drop for CpuStorage {
    fn drop(&mut self) {
        match self {
            CpuStorage::F32(v) => pool::give(std::mem::take(v)),
            CpuStorage::F64(v) => pool::give(std::mem::take(v)),
        }
    }
}

impl CpuStorage {
    /// A copy in a fresh (pooled) buffer.
    fn duplicate(&self) -> CpuStorage {
        fn copy<T: super::Float>(v: &[T]) -> Vec<T> {
            let mut out = pool::take::<T>(v.len());
            out.copy_from_slice(v);
            out
        }
        match self {
            CpuStorage::F32(v) => CpuStorage::F32(copy(v)),
            CpuStorage::F64(v) => CpuStorage::F64(copy(v)),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// CUDA storage. Without the `cuda` feature this type has no values, so code that matches on
/// [`Storage`] stays free of `#[cfg]` and the CUDA arm is statically unreachable.
#[derive(Debug)]
pub enum CudaStorage {}

/// Device storage of a tensor.
#[derive(Debug)]
pub enum Storage {
    Cpu(CpuStorage),
    Cuda(CudaStorage),
}

impl Storage {
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Cuda(c) => match *c {},
        }
    }

    /// The host buffer, or an error naming `op` when the data lives elsewhere.
    pub fn cpu(&self, op: &'static str) -> Result<&CpuStorage> {
        match self {
            Storage::Cpu(c) => Ok(c),
            Storage::Cuda(_) => Err(Error::DeviceUnsupported {
                op,
                device: self.device().to_string(),
            }),
        }
    }

    /// A copy of the data on `device` (the host↔device transfers of a GPU backend go here).
    pub fn copy_to(&self, device: Device) -> Result<Storage> {
        device.ensure_available()?;
        match (self, device) {
            (Storage::Cpu(c), Device::Cpu) => Ok(Storage::Cpu(c.duplicate())),
            (Storage::Cpu(_), Device::Cuda(_)) => Err(Error::DeviceUnsupported {
                op: "to_device",
                device: device.to_string(),
            }),
            (Storage::Cuda(c), _) => match *c {},
        }
    }

    pub fn cpu_mut(&mut self, _op: &'static str) -> Result<&mut CpuStorage> {
        match self {
            Storage::Cpu(c) => Ok(c),
            Storage::Cuda(c) => match *c {},
        }
    }
}
