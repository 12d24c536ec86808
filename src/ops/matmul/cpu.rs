//! CPU kernels of the matmul family: every product is one call of [`gemm_batched`] on the
//! operands' buffers, transposes as strides. Called by `super` with checked operands.

use super::MatMulDims;
use crate::ops::gemm::{gemm_batched, Mat, Overlap};
use crate::tensor::{pool, Float, Tensor};
use crate::{with_dtype, Error, Result};
use num_traits::One;

/// `op(A) · op(B)`.
pub(super) fn forward(
    a: &Tensor,
    b: &Tensor,
    dims: &MatMulDims,
    ta: bool,
    tb: bool,
) -> Result<Tensor> {
    with_dtype!(a.dtype(), T => {
        let mut out = pool::take::<T>(dims.batch * dims.m * dims.n);
        gemm_into::<T>(&mut out, a.as_slice()?, b.as_slice()?, dims, ta, tb, false)?;
        Tensor::from_vec(out, &dims.out_shape())
    })
}

/// `out (+)= op(A) · op(B)` on raw buffers.
fn gemm_into<T: Float>(
    out: &mut [T],
    a: &[T],
    b: &[T],
    d: &MatMulDims,
    ta: bool,
    tb: bool,
    acc: bool,
) -> Result<()> {
    let (m, k, n) = (d.m, d.k, d.n);
    let am = if ta {
        Mat::row_major(k, m).t()
    } else {
        Mat::row_major(m, k)
    };
    let bm = if tb {
        Mat::row_major(n, k).t()
    } else {
        Mat::row_major(k, n)
    };
    if d.b_shared && !ta {
        // Fold the batch into the rows: one [batch·m, k] · [k, n] product.
        let am = Mat::row_major(d.batch * m, k);
        return gemm_batched(
            1,
            out,
            Mat::row_major(d.batch * m, n),
            a,
            am,
            b,
            bm,
            |_| [0, 0, 0],
            Overlap::Disjoint,
            acc,
            T::one(),
        );
    }
    let bstride = if d.b_shared { 0 } else { k * n };
    gemm_batched(
        d.batch,
        out,
        Mat::row_major(m, n),
        a,
        am,
        b,
        bm,
        |i| [i * m * n, i * m * k, i * bstride],
        Overlap::Disjoint,
        acc,
        T::one(),
    )
}

/// Gradients of `C = op(A)·op(B)` for the operands whose flag in `need` is set.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    dc: &Tensor,
    a: Option<&Tensor>,
    b: Option<&Tensor>,
    d: &MatMulDims,
    a_shape: &[usize],
    b_shape: &[usize],
    ta: bool,
    tb: bool,
    need: [bool; 2],
) -> Result<[Option<Tensor>; 2]> {
    let (m, k, n) = (d.m, d.k, d.n);
    let missing = |w: &str| Error::Autodiff(format!("matmul backward: saved operand {w} missing"));
    with_dtype!(dc.dtype(), T => {
        let g = dc.as_slice::<T>()?;
        let mut da = None;
        let mut db = None;
        if need[0] {
            // dA (as stored) = dC·op(B)ᵀ, or its transpose op(B)·dCᵀ when A is transposed.
            let b = b.ok_or_else(|| missing("B"))?;
            let bs = b.as_slice::<T>()?;
            let opb = if tb { Mat::row_major(n, k).t() } else { Mat::row_major(k, n) };
            let dcm = Mat::row_major(m, n);
            let mut out = pool::take::<T>(d.batch * m * k);
            let bstride = if d.b_shared { 0 } else { k * n };
            if !ta && d.b_shared {
                let dcm = Mat::row_major(d.batch * m, n);
                gemm_batched(1, &mut out, Mat::row_major(d.batch * m, k), g, dcm, bs, opb.t(), |_| [0, 0, 0], Overlap::Disjoint, false, T::one())?;
            } else if !ta {
                gemm_batched(d.batch, &mut out, Mat::row_major(m, k), g, dcm, bs, opb.t(), |i| [i * m * k, i * m * n, i * bstride], Overlap::Disjoint, false, T::one())?;
            } else {
                gemm_batched(d.batch, &mut out, Mat::row_major(k, m), bs, opb, g, dcm.t(), |i| [i * m * k, i * bstride, i * m * n], Overlap::Disjoint, false, T::one())?;
            }
            da = Some(Tensor::from_vec(out, a_shape)?);
        }
        if need[1] {
            // dB (as stored) = op(A)ᵀ·dC, or its transpose dCᵀ·op(A) when B is transposed.
            let a = a.ok_or_else(|| missing("A"))?;
            let as_ = a.as_slice::<T>()?;
            let opa = if ta { Mat::row_major(k, m).t() } else { Mat::row_major(m, k) };
            let dcm = Mat::row_major(m, n);
            let nb = if d.b_shared { 1 } else { d.batch };
            let overlap = if d.b_shared { Overlap::Groups(d.batch) } else { Overlap::Disjoint };
            let dstride = if d.b_shared { 0 } else { k * n };
            let mut out = if d.b_shared { pool::take_zeroed::<T>(k * n) } else { pool::take::<T>(nb * k * n) };
            if d.b_shared && !ta {
                // Σ_i A_iᵀ dC_i = A_foldᵀ · dC_fold: one GEMM.
                let af = Mat::row_major(d.batch * m, k);
                let gf = Mat::row_major(d.batch * m, n);
                if !tb {
                    gemm_batched(1, &mut out, Mat::row_major(k, n), as_, af.t(), g, gf, |_| [0, 0, 0], Overlap::Disjoint, false, T::one())?;
                } else {
                    gemm_batched(1, &mut out, Mat::row_major(n, k), g, gf.t(), as_, af, |_| [0, 0, 0], Overlap::Disjoint, false, T::one())?;
                }
            } else if !tb {
                gemm_batched(d.batch, &mut out, Mat::row_major(k, n), as_, opa.t(), g, dcm, |i| [i * dstride, i * m * k, i * m * n], overlap, d.b_shared, T::one())?;
            } else {
                gemm_batched(d.batch, &mut out, Mat::row_major(n, k), g, dcm.t(), as_, opa, |i| [i * dstride, i * m * n, i * m * k], overlap, d.b_shared, T::one())?;
            }
            db = Some(Tensor::from_vec(out, b_shape)?);
        }
        Ok([da, db])
    })
}
