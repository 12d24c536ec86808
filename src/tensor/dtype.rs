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
    /// e^x for the hot loops (softmax, GELU): a fast polynomial for f32, `exp` for f64.
    fn fexp(self) -> Self;
    /// tanh for the hot loops: via [`Float::fexp`] for f32, `tanh` for f64.
    fn ftanh(self) -> Self;
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
    #[inline]
    fn fexp(self) -> Self {
        fast_exp_f32(self)
    }
    #[inline]
    fn ftanh(self) -> Self {
        fast_tanh_f32(self)
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
    #[inline]
    fn fexp(self) -> Self {
        self.exp()
    }
    #[inline]
    fn ftanh(self) -> Self {
        self.tanh()
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

/// erf in single precision as a rational function on [−4, 4] (clamped outside, where it returns
/// ±(1 − 1.2e-7), one f32 ulp below 1), the
/// approximation Eigen and TensorFlow use for `float`: ~5× faster than `libm::erff`, which made
/// exact GELU a sixth of a BERT forward+backward. Max abs error vs f64 erf is checked in
/// `tests/erf.rs` (< 1e-6, below f32 resolution of the GELU around it). Plain `a * b + c`, not
/// `mul_add`: without `target-feature=+fma` the latter is a slow software call.
#[inline(always)]
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

/// The argument reduction and polynomial of [`fast_exp_f32`]: `(e^r, n, underflow)` with
/// x = n·ln2 + r (x clamped to [−87.34, 88.72] first; NaN propagates into e^r and n).
#[inline(always)]
fn exp_reduced(x: f32) -> (f32, f32, bool) {
    // Branch-free (selects only) so that loops over it vectorise; NaN propagates through the clamp.
    let underflow = x < -87.336_54;
    let x = x.clamp(-87.336_54, 88.722_83);
    // Round to nearest by adding and subtracting 1.5·2²³ (`round()` would be a libm call).
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    // r = x − n·ln2 in two steps (ln2 = C1 + C2) to keep r accurate.
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let z = r * r;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
    (p * z + r + 1.0, n, underflow)
}

/// e^x in single precision (Cephes `expf`): x = n·ln2 + r with |r| ≤ ln2/2, a degree-7 polynomial
/// for e^r, and 2^n put straight into the exponent bits. Relative error < 3e-7 (checked in
/// `tests/erf.rs`); branch-free apart from the range clamps, so loops over it vectorise, unlike
/// calls into the C library. e^x underflows to 0 below −87.3 (−∞ included) and saturates above 88.7.
#[inline(always)]
pub fn fast_exp_f32(x: f32) -> f32 {
    let (e, n, underflow) = exp_reduced(x);
    // 2^n for n in [−126, 128]: split in two factors n1 + n2 (n1 = n/2 rounded to nearest, n2 the
    // rest, both in [−63, 65]) so n = 128 and subnormal results stay exact; e·2^n1 is always
    // normal, so the product rounds once, at the end, whatever the split. Float arithmetic and
    // one float→int conversion only: no 256-bit integer shifts, which AVX without AVX2 lacks
    // (the vector loop would run at SSE width there). A NaN n (x NaN) becomes 0 for the
    // exponent only; e carries the NaN.
    let n = if n.is_nan() { 0.0 } else { n };
    let n1 = (n * 0.5 + 12_582_912.0) - 12_582_912.0;
    let n2 = n - n1;
    // 2^k built in the exponent field: (k + 127)·2²³ is exact in f32, and its integer value is
    // the bit pattern of 2^k. SAFETY (`to_int_unchecked` needs a finite value in i32's range):
    // x was clamped to [−87.34, 88.73], so n ∈ [−126, 128], n1, n2 ∈ [−63, 65] and
    // (k + 127)·2²³ ∈ [64·2²³, 192·2²³]; NaN was replaced above. (The plain `as i32` saturates,
    // which scalarises vector loops.)
    let pow2 = |k: f32| {
        f32::from_bits(unsafe { ((k + 127.0) * 8_388_608.0).to_int_unchecked::<i32>() } as u32)
    };
    let y = e * pow2(n1) * pow2(n2);
    if underflow {
        0.0
    } else {
        y
    }
}

/// tanh in single precision from [`fast_exp_f32`]: tanh u = sign(u)·(1 − 2/(e^{2|u|} + 1)), which
/// has no cancellation for large |u|; below |u| < 0.004 the odd Taylor series u − u³/3 is used.
/// Absolute error < 3e-7.
#[inline(always)]
pub fn fast_tanh_f32(u: f32) -> f32 {
    let a = u.abs();
    if a < 0.004 {
        return u - u * u * u * (1.0 / 3.0);
    }
    let t = 1.0 - 2.0 / (fast_exp_f32(2.0 * a) + 1.0);
    if u < 0.0 {
        -t
    } else {
        t
    }
}

/// Σ xs with 8 independent partial sums (see [`sum_by_lanes`]).
#[inline]
pub fn sum_lanes<T: Float>(xs: &[T]) -> T {
    sum_by_lanes(xs.len(), |j| xs[j])
}

/// Σ a_i·b_i with 8 independent partial sums (see [`sum_by_lanes`]).
#[inline]
pub fn dot_lanes<T: Float>(a: &[T], b: &[T]) -> T {
    let b = &b[..a.len()];
    sum_by_lanes(a.len(), |j| a[j] * b[j])
}

/// max of xs with 8 lanes (plain comparisons; −∞ for an empty slice).
#[inline]
pub fn max_lanes<T: Float>(xs: &[T]) -> T {
    let mut acc = [T::neg_infinity(); 8];
    let mut it = xs.chunks_exact(8);
    for c in &mut it {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    let mut m = T::neg_infinity();
    for &v in acc.iter().chain(it.remainder()) {
        m = if v > m { v } else { m };
    }
    m
}

/// Σ_{j<n} f(j) with 8 independent partial sums: the compiler keeps them in one SIMD register,
/// which a single running float sum (strictly ordered) never allows. The result differs from the
/// left-to-right sum only by rounding.
#[inline(always)]
pub fn sum_by_lanes<T: Float>(n: usize, f: impl Fn(usize) -> T) -> T {
    let mut acc = [T::zero(); 8];
    let full = n - n % 8;
    let mut j = 0;
    while j < full {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += f(j + l);
        }
        j += 8;
    }
    let mut s = T::zero();
    for k in full..n {
        s += f(k);
    }
    for a in acc {
        s += a;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{exp_reduced, fast_exp_f32};

    /// `fast_exp_f32` builds 2^n with float operations and one float→int conversion (so AVX
    /// without AVX2 vectorises it). It gives the bits of the integer construction it replaced,
    /// `((n/2 + 127) << 23)` and `((n − n/2 + 127) << 23)`, on every 61st f32 bit pattern of
    /// [−100, 100] (3.6 million values, subnormal results and both clamps included), at ±∞ and
    /// for NaN.
    #[test]
    fn exp_exponent_equals_the_integer_construction() {
        let with_shifts = |x: f32| {
            let (e, n, underflow) = exp_reduced(x);
            let n = (n + 12_582_912.0).to_bits() as i32 - 0x4B40_0000;
            let (n1, n2) = (n / 2, n - n / 2);
            let y = e
                * f32::from_bits(((n1 + 127) as u32) << 23)
                * f32::from_bits(((n2 + 127) as u32) << 23);
            if underflow {
                0.0
            } else {
                y
            }
        };
        let mut checked = 0usize;
        let top = 100.0f32.to_bits();
        for sign in [0u32, 0x8000_0000] {
            for b in (0..=top).step_by(61).chain([top]) {
                let x = f32::from_bits(b | sign);
                assert_eq!(fast_exp_f32(x).to_bits(), with_shifts(x).to_bits(), "{x:e}");
                checked += 1;
            }
        }
        assert!(checked > 3_000_000, "{checked}");
        for x in [f32::INFINITY, f32::NEG_INFINITY, 88.722_83, -87.336_54, 0.0] {
            assert_eq!(fast_exp_f32(x).to_bits(), with_shifts(x).to_bits(), "{x}");
        }
        assert!(fast_exp_f32(f32::NAN).is_nan());
    }
}
