//! Scaled dot-product attention as two fused kernels around a softmax, so that the pre-softmax
//! scores and the softmax pattern are real tensors (hook points) while no layout copy is made:
//!
//! ```text
//! scores[b,h,i,j] = scale · Σ_d q[b,i,h,d] · k[b,j,h/g,d]          (`scores`)
//! pattern         = softmax(scores + mask)                          (`ops::softmax`)
//! z[b,i,h,d]      = Σ_j pattern[b,h,i,j] · v[b,j,h/g,d]              (`apply`)
//! ```
//!
//! q, z are `[batch, pos, n_heads, d_head]`; k, v are `[batch, key_pos, n_kv_heads, d_head]` with
//! `g = n_heads / n_kv_heads` query heads per key/value head (grouped-query attention; g = 1 is
//! plain multi-head attention). Each (batch, head) product is a strided GEMM on the original
//! buffers: head h of q is a `pos × d_head` matrix with row stride `n_heads·d_head`.
//!
//! Backward (per head, K/V of a group summed over its query heads):
//!   dQ = scale·dS·K     dK = scale·Σ_h dSᵀ·Q     dP = dZ·Vᵀ     dV = Σ_h Pᵀ·dZ

mod cpu;

use super::{common_device, no_kernel};
use crate::{Device, Result, Tensor};

/// Checked sizes `[batch, q_pos, n_heads, k_pos, n_kv_heads, d_head]`.
fn dims(op: &'static str, q: &[usize], kv: &[usize], d_last: bool) -> Result<[usize; 6]> {
    if q.len() != 4 || kv.len() != 4 {
        crate::shape_bail!(
            op,
            "expected [batch, pos, heads, d_head] operands, got {q:?} and {kv:?}"
        );
    }
    let (b, tq, h, d) = (q[0], q[1], q[2], q[3]);
    let (bk, tk, hk, dk) = (kv[0], kv[1], kv[2], kv[3]);
    if b != bk || (d_last && d != dk) || hk == 0 || h % hk != 0 {
        crate::shape_bail!(op, "incompatible shapes {q:?} and {kv:?} (batch and d_head must match; n_heads must be a multiple of n_kv_heads)");
    }
    Ok([b, tq, h, tk, hk, d])
}

/// Checked sizes of a pattern `[batch, n_heads, q_pos, k_pos]` applied to values `v`.
fn apply_dims(op: &'static str, p: &Tensor, v: &Tensor) -> Result<[usize; 6]> {
    if p.rank() != 4 {
        crate::shape_bail!(
            op,
            "pattern must be [batch, n_heads, q_pos, k_pos], got {:?}",
            p.shape()
        );
    }
    let qshape = [
        p.shape()[0],
        p.shape()[2],
        p.shape()[1],
        *v.shape().last().unwrap_or(&0),
    ];
    let dims = dims(op, &qshape, v.shape(), false)?;
    if p.shape()[3] != dims[3] {
        crate::shape_bail!(
            op,
            "pattern {:?} has {} keys but values {:?} have {}",
            p.shape(),
            p.shape()[3],
            v.shape(),
            dims[3]
        );
    }
    Ok(dims)
}

/// `scale · Q·Kᵀ` per head → `[batch, n_heads, q_pos, k_pos]`.
pub fn scores(q: &Tensor, k: &Tensor, scale: f64) -> Result<Tensor> {
    const OP: &str = "attention scores";
    q.same_dtype(OP, k)?;
    let dims = dims(OP, q.shape(), k.shape(), true)?;
    match common_device(OP, [q, k])? {
        Device::Cpu => cpu::scores(q, k, scale, dims),
        d @ Device::Cuda(_) => Err(no_kernel(OP, d)),
    }
}

/// Gradients `[dq, dk]` of [`scores`] from `ds` `[batch, n_heads, q_pos, k_pos]`.
pub fn scores_backward(
    ds: &Tensor,
    q: &Tensor,
    k: &Tensor,
    scale: f64,
    need: [bool; 2],
) -> Result<[Option<Tensor>; 2]> {
    const OP: &str = "attention scores backward";
    let dims = dims(OP, q.shape(), k.shape(), true)?;
    let [b, tq, h, tk, ..] = dims;
    if ds.shape() != [b, h, tq, tk] {
        crate::shape_bail!(
            OP,
            "gradient {:?} does not fit q {:?} and k {:?}",
            ds.shape(),
            q.shape(),
            k.shape()
        );
    }
    q.same_dtype(OP, k)?;
    q.same_dtype(OP, ds)?;
    match common_device(OP, [ds, q, k])? {
        Device::Cpu => cpu::scores_backward(ds, q, k, scale, dims, need),
        d @ Device::Cuda(_) => Err(no_kernel(OP, d)),
    }
}

/// `P·V` per head → `[batch, q_pos, n_heads, d_head]`.
pub fn apply(p: &Tensor, v: &Tensor) -> Result<Tensor> {
    const OP: &str = "attention apply";
    p.same_dtype(OP, v)?;
    let dims = apply_dims(OP, p, v)?;
    match common_device(OP, [p, v])? {
        Device::Cpu => cpu::apply(p, v, dims),
        d @ Device::Cuda(_) => Err(no_kernel(OP, d)),
    }
}

/// Gradients `[dpattern, dv]` of [`apply`] from `dz` `[batch, q_pos, n_heads, d_head]`.
pub fn apply_backward(
    dz: &Tensor,
    p: &Tensor,
    v: &Tensor,
    need: [bool; 2],
) -> Result<[Option<Tensor>; 2]> {
    const OP: &str = "attention apply backward";
    let dims = apply_dims(OP, p, v)?;
    let [b, tq, h, _, _, d] = dims;
    if dz.shape() != [b, tq, h, d] {
        crate::shape_bail!(
            OP,
            "gradient {:?} does not fit pattern {:?} and values {:?}",
            dz.shape(),
            p.shape(),
            v.shape()
        );
    }
    p.same_dtype(OP, v)?;
    p.same_dtype(OP, dz)?;
    match common_device(OP, [dz, p, v])? {
        Device::Cpu => cpu::apply_backward(dz, p, v, dims, need),
        dev @ Device::Cuda(_) => Err(no_kernel(OP, dev)),
    }
}
