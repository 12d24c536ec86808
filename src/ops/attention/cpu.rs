//! CPU kernels of the attention family: each (batch, head) product is a strided GEMM
//! ([`gemm_batched`]) on the original buffers. Called by `super` with checked sizes
//! `[batch, q_pos, n_heads, k_pos, n_kv_heads, d_head]`.

use crate::ops::gemm::{gemm_batched, Mat, Overlap};
use crate::tensor::{pool, Float, Tensor};
use crate::{with_dtype, Result};
use num_traits::One;

/// `scale · Q·Kᵀ` per head → `[batch, n_heads, q_pos, k_pos]`.
pub(super) fn scores(q: &Tensor, k: &Tensor, scale: f64, dims: [usize; 6]) -> Result<Tensor> {
    let [b, tq, h, tk, hk, d] = dims;
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
pub(super) fn scores_backward(
    ds: &Tensor,
    q: &Tensor,
    k: &Tensor,
    scale: f64,
    dims: [usize; 6],
    need: [bool; 2],
) -> Result<[Option<Tensor>; 2]> {
    let [b, tq, h, tk, hk, d] = dims;
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
pub(super) fn apply(p: &Tensor, v: &Tensor, dims: [usize; 6]) -> Result<Tensor> {
    let [b, tq, h, tk, hk, d] = dims;
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
pub(super) fn apply_backward(
    dz: &Tensor,
    p: &Tensor,
    v: &Tensor,
    dims: [usize; 6],
    need: [bool; 2],
) -> Result<[Option<Tensor>; 2]> {
    let [b, tq, h, tk, hk, d] = dims;
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
