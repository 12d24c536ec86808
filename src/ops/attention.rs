//! Scaled dot-product attention as two fused kernels around a softmax, so that the pre-softmax
//! scores and the softmax pattern are real tensors (hook points) while no layout copy is made:
//!
//!   scores[b,h,i,j] = scale · Σ_d q[b,i,h,d] · k[b,j,h/g,d]          (`scores`)
//!   pattern         = softmax(scores + mask)                          (`ops::softmax`)
//!   z[b,i,h,d]      = Σ_j pattern[b,h,i,j] · v[b,j,h/g,d]              (`apply`)
//!
//! q, z are `[batch, pos, n_heads, d_head]`; k, v are `[batch, key_pos, n_kv_heads, d_head]` with
//! `g = n_heads / n_kv_heads` query heads per key/value head (grouped-query attention; g = 1 is
//! plain multi-head attention). Each (batch, head) product is a strided GEMM on the original
//! buffers: head h of q is a `pos × d_head` matrix with row stride `n_heads·d_head`.
//!
//! Backward (per head, K/V of a group summed over its query heads):
//!   dQ = scale·dS·K     dK = scale·Σ_h dSᵀ·Q     dP = dZ·Vᵀ     dV = Σ_h Pᵀ·dZ

use super::gemm::{gemm_batched, Mat, Overlap};
use crate::tensor::{pool, Float, Tensor};
use crate::{with_dtype, Result};
use num_traits::One;

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

/// `scale · Q·Kᵀ` per head → `[batch, n_heads, q_pos, k_pos]`.
pub fn scores(q: &Tensor, k: &Tensor, scale: f64) -> Result<Tensor> {
    q.same_dtype("attention scores", k)?;
    let [b, tq, h, tk, hk, d] = dims("attention scores", q.shape(), k.shape(), true)?;
    let g = h / hk;
    with_dtype!(q.dtype(), T => {
        let mut out = pool::take::<T>(b * h * tq * tk);
        let qm = Mat::strided(tq, d, h * d);
        let km = Mat::strided(tk, d, hk * d);
        gemm_batched(b * h, &mut out, Mat::row_major(tq, tk), q.as_slice::<T>()?, qm, k.as_slice::<T>()?, km.t(),
            |i| { let (bi, hi) = (i / h, i % h); [i * tq * tk, bi * tq * h * d + hi * d, bi * tk * hk * d + (hi / g) * d] },
            Overlap::Disjoint, false, T::from_f64(scale))?;
        Tensor::from_vec(out, &[b, h, tq, tk])
    })
}

/// Gradients `[dq, dk]` of [`scores`] from `ds` `[batch, n_heads, q_pos, k_pos]`.
pub fn scores_backward(
    ds: &Tensor,
    q: &Tensor,
    k: &Tensor,
    scale: f64,
    need: [bool; 2],
) -> Result<[Option<Tensor>; 2]> {
    let [b, tq, h, tk, hk, d] = dims("attention scores backward", q.shape(), k.shape(), true)?;
    let g = h / hk;
    with_dtype!(q.dtype(), T => {
        let dss = ds.as_slice::<T>()?;
        let dsm = Mat::row_major(tq, tk);
        let qm = Mat::strided(tq, d, h * d);
        let km = Mat::strided(tk, d, hk * d);
        let s = T::from_f64(scale);
        let mut dq = None;
        let mut dk = None;
        if need[0] {
            let mut out = pool::take::<T>(q.numel());
            gemm_batched(b * h, &mut out, qm, dss, dsm, k.as_slice::<T>()?, km,
                |i| { let (bi, hi) = (i / h, i % h); [bi * tq * h * d + hi * d, i * tq * tk, bi * tk * hk * d + (hi / g) * d] },
                Overlap::Disjoint, false, s)?;
            dq = Some(Tensor::from_vec(out, q.shape())?);
        }
        if need[1] {
            // Items ordered (batch, query head): the g heads of one kv head are consecutive.
            let mut out = pool::take_zeroed::<T>(k.numel());
            gemm_batched(b * h, &mut out, km, dss, dsm.t(), q.as_slice::<T>()?, qm,
                |i| { let (bi, hi) = (i / h, i % h); [bi * tk * hk * d + (hi / g) * d, i * tq * tk, bi * tq * h * d + hi * d] },
                Overlap::Groups(g), true, s)?;
            dk = Some(Tensor::from_vec(out, k.shape())?);
        }
        Ok([dq, dk])
    })
}

/// `P·V` per head → `[batch, q_pos, n_heads, d_head]`.
pub fn apply(p: &Tensor, v: &Tensor) -> Result<Tensor> {
    p.same_dtype("attention apply", v)?;
    if p.rank() != 4 {
        crate::shape_bail!(
            "attention apply",
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
    let [b, tq, h, tk, hk, d] = dims("attention apply", &qshape, v.shape(), false)?;
    if p.shape()[3] != tk {
        crate::shape_bail!(
            "attention apply",
            "pattern {:?} has {} keys but values {:?} have {tk}",
            p.shape(),
            p.shape()[3],
            v.shape()
        );
    }
    let g = h / hk;
    with_dtype!(p.dtype(), T => {
        let mut out = pool::take::<T>(b * tq * h * d);
        gemm_batched(b * h, &mut out, Mat::strided(tq, d, h * d), p.as_slice::<T>()?, Mat::row_major(tq, tk), v.as_slice::<T>()?, Mat::strided(tk, d, hk * d),
            |i| { let (bi, hi) = (i / h, i % h); [bi * tq * h * d + hi * d, i * tq * tk, bi * tk * hk * d + (hi / g) * d] },
            Overlap::Disjoint, false, T::one())?;
        Tensor::from_vec(out, &[b, tq, h, d])
    })
}

/// Gradients `[dpattern, dv]` of [`apply`] from `dz` `[batch, q_pos, n_heads, d_head]`.
pub fn apply_backward(
    dz: &Tensor,
    p: &Tensor,
    v: &Tensor,
    need: [bool; 2],
) -> Result<[Option<Tensor>; 2]> {
    let [b, tq, h, tk, hk, d] = dims("attention apply backward", dz.shape(), v.shape(), true)?;
    let g = h / hk;
    with_dtype!(p.dtype(), T => {
        let dzs = dz.as_slice::<T>()?;
        let zm = Mat::strided(tq, d, h * d);
        let vm = Mat::strided(tk, d, hk * d);
        let pm = Mat::row_major(tq, tk);
        let mut dp = None;
        let mut dv = None;
        if need[0] {
            let mut out = pool::take::<T>(p.numel());
            gemm_batched(b * h, &mut out, pm, dzs, zm, v.as_slice::<T>()?, vm.t(),
                |i| { let (bi, hi) = (i / h, i % h); [i * tq * tk, bi * tq * h * d + hi * d, bi * tk * hk * d + (hi / g) * d] },
                Overlap::Disjoint, false, T::one())?;
            dp = Some(Tensor::from_vec(out, p.shape())?);
        }
        if need[1] {
            let mut out = pool::take_zeroed::<T>(v.numel());
            gemm_batched(b * h, &mut out, vm, p.as_slice::<T>()?, pm.t(), dzs, zm,
                |i| { let (bi, hi) = (i / h, i % h); [bi * tk * hk * d + (hi / g) * d, i * tq * tk, bi * tq * h * d + hi * d] },
                Overlap::Groups(g), true, T::one())?;
            dv = Some(Tensor::from_vec(out, v.shape())?);
        }
        Ok([dp, dv])
    })
}
