//! Batched matrix multiply, forward and backward.
//!
//! `C = op(A) · op(B)` with `op(X) = Xᵀ` when the flag is set; A is `[..., m, k]` (`[..., k, m]`
//! when transposed), B is `[..., k, n]` (`[..., n, k]`) with either A's batch dims or no batch dims
//! (a weight shared by every row). Transposes are strides, never copies.
//!
//! Backward (llm.c `matmul_backward`):
//!   dop(A) = dC · op(B)ᵀ      dop(B) = op(A)ᵀ · dC
//! and a transposed operand receives the transpose of that, again as strides.
//! A shared 2-D B sums its gradient over the batch; when A is not transposed the batch folds into
//! the rows and that sum is one GEMM.

use super::gemm::{gemm_batched, Mat, Overlap};
use crate::tensor::{pool, Float, Tensor};
use crate::{with_dtype, Error, Result};
use num_traits::One;

/// Shapes of one matmul, derived and checked once.
#[derive(Debug, Clone)]
pub struct MatMulDims {
    pub batch_dims: Vec<usize>,
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    /// B has no batch dims and is shared by every batch item.
    pub b_shared: bool,
}

impl MatMulDims {
    pub fn new(a: &[usize], b: &[usize], ta: bool, tb: bool) -> Result<MatMulDims> {
        let err = |why: &str| Error::Shape {
            op: "matmul",
            detail: format!(
                "cannot multiply {a:?}{} by {b:?}{}: {why}",
                if ta { "ᵀ" } else { "" },
                if tb { "ᵀ" } else { "" }
            ),
        };
        if a.len() < 2 || b.len() < 2 {
            return Err(err("both operands need at least 2 dims"));
        }
        let (ar, ac) = (a[a.len() - 2], a[a.len() - 1]);
        let (br, bc) = (b[b.len() - 2], b[b.len() - 1]);
        let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
        let (k2, n) = if tb { (bc, br) } else { (br, bc) };
        if k != k2 {
            return Err(err(&format!("inner dims {k} and {k2} differ")));
        }
        let batch_dims = a[..a.len() - 2].to_vec();
        let b_shared = b.len() == 2;
        if !b_shared && b[..b.len() - 2] != batch_dims[..] {
            return Err(err(
                "batch dims differ (B must have A's batch dims or none)",
            ));
        }
        Ok(MatMulDims {
            batch: batch_dims.iter().product(),
            batch_dims,
            m,
            k,
            n,
            b_shared,
        })
    }

    pub fn out_shape(&self) -> Vec<usize> {
        let mut s = self.batch_dims.clone();
        s.extend([self.m, self.n]);
        s
    }
}

/// `op(A) · op(B)`.
pub fn forward(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> Result<Tensor> {
    a.same_dtype("matmul", b)?;
    let dims = MatMulDims::new(a.shape(), b.shape(), ta, tb)?;
    with_dtype!(a.dtype(), T => {
        let mut out = pool::take::<T>(dims.batch * dims.m * dims.n);
        gemm_into::<T>(&mut out, a.as_slice()?, b.as_slice()?, &dims, ta, tb, false)?;
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
pub fn backward(
    dc: &Tensor,
    a: Option<&Tensor>,
    b: Option<&Tensor>,
    a_shape: &[usize],
    b_shape: &[usize],
    ta: bool,
    tb: bool,
    need: [bool; 2],
) -> Result<[Option<Tensor>; 2]> {
    let d = MatMulDims::new(a_shape, b_shape, ta, tb)?;
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
