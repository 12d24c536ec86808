//! `Tensor`: an immutable, reference-counted, contiguous row-major array of f32 or f64 on a
//! [`Device`]. Tensors know nothing about the tape; [`crate::autodiff::Var`] wraps them for that.
//!
//! Cloning a tensor is cheap (an `Arc`). Constructors come in pairs: `*_on` takes the [`Device`]
//! (`zeros_on`, `ones_on`, `full_on`, `scalar_on`, `from_f64_on`, `from_vec_on`), the plain name is
//! its shorthand on the CPU. [`Tensor::to_device`] moves data between devices, and
//! [`Tensor::to_vec_f64`] always returns host values, wherever the tensor lives.
//!
//! CPU kernels read the data through [`Tensor::as_slice`] or an ndarray view ([`Tensor::view`])
//! and build outputs with [`Tensor::from_vec`] (host-only calls: they fail with
//! [`Error::DeviceUnsupported`] on another device).

mod device;
mod dtype;
pub mod pool;
pub mod shape;
mod storage;

pub use device::Device;
pub use dtype::{
    dot_lanes, fast_erf_f32, fast_exp_f32, fast_tanh_f32, max_lanes, sum_by_lanes, sum_lanes,
    DType, Float,
};
pub use storage::{CpuStorage, CudaStorage, Storage};

use crate::{Error, Result};
use std::sync::Arc;

/// An n-dimensional array. Always contiguous; shape is checked by every op.
#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    shape: Vec<usize>,
    dtype: DType,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor[{:?}, {}, {}]",
            self.shape,
            self.dtype,
            self.device()
        )
    }
}

impl Tensor {
    /// Wraps a host buffer (CPU); `data.len()` must equal the product of `shape`.
    pub fn from_vec<T: Float>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::Shape {
                op: "from_vec",
                detail: format!("{} elements do not fill shape {shape:?} ({n})", data.len()),
            });
        }
        Ok(Tensor {
            storage: Arc::new(Storage::Cpu(T::into_storage(data))),
            shape: shape.to_vec(),
            dtype: T::DTYPE,
        })
    }

    /// The values of a host buffer in a tensor on `device`.
    pub fn from_vec_on<T: Float>(data: Vec<T>, shape: &[usize], device: Device) -> Result<Tensor> {
        device.ensure_available()?;
        Tensor::from_vec(data, shape)?.to_device(device)
    }

    /// Builds a CPU tensor of `dtype` from f64 values (converted).
    pub fn from_f64(data: &[f64], shape: &[usize], dtype: DType) -> Result<Tensor> {
        crate::with_dtype!(dtype, T => {
            let mut v = pool::take::<T>(data.len());
            for (o, &x) in v.iter_mut().zip(data) {
                *o = T::from_f64(x);
            }
            Tensor::from_vec(v, shape)
        })
    }

    /// Builds a tensor of `dtype` on `device` from f64 values (converted).
    pub fn from_f64_on(
        data: &[f64],
        shape: &[usize],
        dtype: DType,
        device: Device,
    ) -> Result<Tensor> {
        device.ensure_available()?;
        Tensor::from_f64(data, shape, dtype)?.to_device(device)
    }

    /// A CPU tensor filled with `value` (shorthand of [`Tensor::full_on`] on the CPU).
    pub fn full(value: f64, shape: &[usize], dtype: DType) -> Tensor {
        let n: usize = shape.iter().product();
        crate::with_dtype!(dtype, T => {
            let mut v = pool::take::<T>(n);
            v.fill(T::from_f64(value));
            Tensor { storage: Arc::new(Storage::Cpu(T::into_storage(v))), shape: shape.to_vec(), dtype }
        })
    }

    /// A tensor on `device` filled with `value`.
    pub fn full_on(value: f64, shape: &[usize], dtype: DType, device: Device) -> Result<Tensor> {
        match device {
            Device::Cpu => Ok(Tensor::full(value, shape, dtype)),
            Device::Cuda(_) => {
                device.ensure_available()?;
                Tensor::full(value, shape, dtype).to_device(device)
            }
        }
    }

    /// CPU zeros.
    pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(0.0, shape, dtype)
    }

    /// Zeros on `device`.
    ///
    /// ```
    /// use gradpath::{DType, Device, Tensor};
    /// let z = Tensor::zeros_on(&[2, 3], DType::F32, Device::Cpu)?;
    /// assert_eq!(z.device(), Device::Cpu);
    /// // Host values, wherever the tensor lives; moving to where it is already shares the buffer.
    /// assert_eq!(z.to_vec_f64()?, vec![0.0; 6]);
    /// assert!(z.to_device(Device::Cpu)?.same_storage(&z));
    /// // Without `--features cuda`, asking for a GPU is a clear error.
    /// assert!(Tensor::zeros_on(&[2], DType::F32, Device::Cuda(0)).is_err());
    /// # Ok::<(), gradpath::Error>(())
    /// ```
    pub fn zeros_on(shape: &[usize], dtype: DType, device: Device) -> Result<Tensor> {
        Tensor::full_on(0.0, shape, dtype, device)
    }

    /// CPU ones.
    pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(1.0, shape, dtype)
    }

    /// Ones on `device`.
    pub fn ones_on(shape: &[usize], dtype: DType, device: Device) -> Result<Tensor> {
        Tensor::full_on(1.0, shape, dtype, device)
    }

    /// A 0-dimensional CPU tensor.
    pub fn scalar(value: f64, dtype: DType) -> Tensor {
        Tensor::full(value, &[], dtype)
    }

    /// A 0-dimensional tensor on `device`.
    pub fn scalar_on(value: f64, dtype: DType, device: Device) -> Result<Tensor> {
        Tensor::full_on(value, &[], dtype, device)
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Size of axis `i`, or an error naming `op`.
    pub fn dim(&self, op: &'static str, i: usize) -> Result<usize> {
        shape::check_axis(op, i, self.rank())?;
        Ok(self.shape[i])
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn device(&self) -> Device {
        self.storage.device()
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Number of handles sharing this tensor's buffer (tests use it to see saved tensors freed).
    pub fn handle_count(&self) -> usize {
        Arc::strong_count(&self.storage)
    }

    /// Whether two handles share one buffer.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// The data as a slice of `T` (host only; `T` must be this tensor's dtype).
    pub fn as_slice<T: Float>(&self) -> Result<&[T]> {
        let cpu = self.storage.cpu("as_slice")?;
        T::slice(cpu).ok_or(Error::DType {
            op: "as_slice",
            lhs: self.dtype,
            rhs: T::DTYPE,
        })
    }

    /// Mutable access when this handle is the only owner of its buffer (used to accumulate in
    /// place); `None` when the buffer is shared.
    pub fn as_mut_slice_if_unique<T: Float>(&mut self) -> Option<&mut [T]> {
        let st = Arc::get_mut(&mut self.storage)?;
        T::slice_mut(st.cpu_mut("as_mut_slice").ok()?)
    }

    /// An ndarray view of the data.
    pub fn view<T: Float>(&self) -> Result<ndarray::ArrayViewD<'_, T>> {
        let s = self.as_slice::<T>()?;
        ndarray::ArrayViewD::from_shape(ndarray::IxDyn(&self.shape), s)
            .map_err(|e| Error::Internal(format!("view of {:?}: {e}", self.shape)))
    }

    /// Builds a tensor from an ndarray array (copied into standard layout if needed).
    pub fn from_ndarray<T: Float>(a: ndarray::ArrayD<T>) -> Result<Tensor> {
        let shape = a.shape().to_vec();
        let v = if a.is_standard_layout() {
            a.into_raw_vec_and_offset().0
        } else {
            let mut v = pool::take::<T>(a.len());
            for (o, x) in v.iter_mut().zip(a.iter()) {
                *o = *x;
            }
            v
        };
        Tensor::from_vec(v, &shape)
    }

    /// The data converted to f64, on the host (copied there from another device).
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        let host = self.to_device(Device::Cpu)?;
        crate::with_dtype!(self.dtype, T => Ok(host.as_slice::<T>()?.iter().map(|x| x.to_f64()).collect()))
    }

    /// The value of a one-element tensor.
    pub fn to_scalar(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::Shape {
                op: "to_scalar",
                detail: format!("tensor of shape {:?} is not a scalar", self.shape),
            });
        }
        Ok(self.to_vec_f64()?[0])
    }

    /// A copy converted to `dtype`, on the same device (a cheap clone when it already is).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype {
            return Ok(self.clone());
        }
        Tensor::from_f64_on(&self.to_vec_f64()?, &self.shape, dtype, self.device())
    }

    /// The tensor on `device`: a cheap clone (shared buffer) when it is there already, else a copy.
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        device.ensure_available()?;
        if device == self.device() {
            return Ok(self.clone());
        }
        Ok(Tensor {
            storage: Arc::new(self.storage.copy_to(device)?),
            shape: self.shape.clone(),
            dtype: self.dtype,
        })
    }

    /// Same data, new shape (same number of elements). Shares the buffer.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if n != self.numel() {
            return Err(Error::Shape {
                op: "reshape",
                detail: format!(
                    "cannot reshape {:?} ({} elements) to {shape:?} ({n})",
                    self.shape,
                    self.numel()
                ),
            });
        }
        Ok(Tensor {
            storage: self.storage.clone(),
            shape: shape.to_vec(),
            dtype: self.dtype,
        })
    }

    /// Checks that `other` has this tensor's dtype (error names `op`).
    pub fn same_dtype(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.dtype != other.dtype {
            return Err(Error::DType {
                op,
                lhs: self.dtype,
                rhs: other.dtype,
            });
        }
        Ok(())
    }

    /// Checks that `other` lives on this tensor's device (error names `op`).
    pub fn same_device(&self, op: &'static str, other: &Tensor) -> Result<()> {
        let (a, b) = (self.device(), other.device());
        if a != b {
            return Err(Error::Mismatch {
                what: op.to_string(),
                detail: format!(
                    "operands on different devices: {a} and {b} (move one with `to_device`)"
                ),
            });
        }
        Ok(())
    }

    /// Checks that `other` has exactly this shape (error names `op`).
    pub fn same_shape(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.shape != other.shape {
            return Err(Error::Shape {
                op,
                detail: format!("shapes {:?} and {:?} differ", self.shape, other.shape),
            });
        }
        Ok(())
    }

    /// Largest absolute elementwise difference to `other` (same shape, any devices), in f64.
    pub fn max_abs_diff(&self, other: &Tensor) -> Result<f64> {
        self.same_shape("max_abs_diff", other)?;
        let a = self.to_vec_f64()?;
        let b = other.to_vec_f64()?;
        Ok(a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max))
    }
}
