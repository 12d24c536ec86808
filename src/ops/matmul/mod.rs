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

mod cpu;

use super::{common_device, no_kernel};
use crate::{Device, Error, Result, Tensor};

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
    match common_device("matmul", [a, b])? {
        Device::Cpu => cpu::forward(a, b, &dims, ta, tb),
        d @ Device::Cuda(_) => Err(no_kernel("matmul", d)),
    }
}

/// Gradients of `C = op(A)·op(B)` for the operands whose flag in `need` is set; `a` (`b`) is the
/// saved operand that the gradient of `b` (`a`) reads.
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
    if dc.shape() != d.out_shape() {
        crate::shape_bail!(
            "matmul backward",
            "gradient {:?} does not match the output {:?}",
            dc.shape(),
            d.out_shape()
        );
    }
    for s in a.iter().chain(b.iter()) {
        dc.same_dtype("matmul backward", s)?;
    }
    match common_device("matmul backward", std::iter::once(dc).chain(a).chain(b))? {
        Device::Cpu => cpu::backward(dc, a, b, &d, a_shape, b_shape, ta, tb, need),
        dev @ Device::Cuda(_) => Err(no_kernel("matmul backward", dev)),
    }
}
