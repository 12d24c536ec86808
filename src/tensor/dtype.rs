//! Element types. Kernels are written once, generic over [`Float`], and instantiated for f32 and f64
//! with [`with_dtype!`](crate::with_dtype).

use super::pool::Pooled;
use super::storage::CpuStorage;

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_in_bytes(&self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }

    /// Parses `f32` or `f64`.
    pub fn parse(s: &str) -> crate::Result<DType> {
        match s {
            "f32" => Ok(DType::F32),
            "f64" => Ok(DType::F64),
            _ => Err(crate::Error::Invalid {
                op: "dtype",
                detail: format!("unknown dtype `{s}` (expected f32 or f64)"),
            }),
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
        })
    }
}

/// A floating-point element type that the CPU kernels support.
pub trait Float:
    num_traits::Float
    + Pooled
    + std::fmt::Debug
    + std::fmt::Display
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + ndarray::ScalarOperand
    + ndarray::LinalgScalar
    + 'static
{
    const DTYPE: DType;
    /// Wraps an owned buffer as CPU storage.
    fn into_storage(v: Vec<Self>) -> CpuStorage;
    /// Borrows the buffer if the storage holds this type.
    fn slice(s: &CpuStorage) -> Option<&[Self]>;
    /// Mutably borrows the buffer if the storage holds this type.
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]>;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// erf, needed by the exact GELU (not in `num_traits`).
    fn erf(self) -> Self;
}

impl Float for f32 {
    const DTYPE: DType = DType::F32;
    fn into_storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F32(v)
    }
    fn slice(s: &CpuStorage) -> Option<&[Self]> {
        match s {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]> {
        match s {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn erf(self) -> Self {
        fast_erf_f32(self)
    }
}

impl Float for f64 {
    const DTYPE: DType = DType::F64;
    fn into_storage(v: Vec<Self>) -> CpuStorage {
        CpuStorage::F64(v)
    }
    fn slice(s: &CpuStorage) -> Option<&[Self]> {
        match s {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn slice_mut(s: &mut CpuStorage) -> Option<&mut [Self]> {
        match s {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn erf(self) -> Self {
        libm::erf(self)
    }
}

/// Runs `$body` with the type alias `$T` bound to the Rust type of `$dtype`.
///
/// ```ignore
/// with_dtype!(x.dtype(), T => { let xs = x.as_slice::<T>()?; ... })
/// ```
#[macro_export]
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::tensor::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::tensor::DType::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}

/// erf in single precision as a rational function on [−4, 4] (|erf| rounds to 1 outside), the
/// approximation Eigen and TensorFlow use for `float`: ~5× faster than `libm::erff`, which made
/// exact GELU a sixth of a BERT forward+backward. Max abs error vs f64 erf is checked in
/// `tests/erf.rs` (< 1e-6, below f32 resolution of the GELU around it). Plain `a * b + c`, not
/// `mul_add`: without `target-feature=+fma` the latter is a slow software call.
#[inline]
pub fn fast_erf_f32(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_6e-5;
    p = p * x2 + -7.349_906e-4;
    p = p * x2 + -2.954_6e-3;
    p = p * x2 + -1.609_603_3e-2;
    p *= x;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329_3e-3;
    q = q * x2 + -1.426_474e-2;
    p / q
}
