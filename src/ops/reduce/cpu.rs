//! CPU kernels of the reduction family (ndarray axis sums and lanes). Called by `super` with
//! checked operands.

use super::{reduced_shape, ReduceKind};
use crate::tensor::{pool, Float, Tensor};
use crate::{with_dtype, Result};
use ndarray::{Axis, IxDyn};
use num_traits::One;
use rayon::prelude::*;

/// Sum or mean of `x` over `axes` (sorted, checked).
pub(super) fn sum_forward(
    x: &Tensor,
    axes: &[usize],
    out_shape: &[usize],
    kind: ReduceKind,
) -> Result<Tensor> {
    let count: usize = axes.iter().map(|&a| x.shape()[a]).product();
    with_dtype!(x.dtype(), T => {
        let mut v = x.view::<T>()?.to_owned();
        for &ax in axes.iter().rev() {
            v = v.sum_axis(Axis(ax));
        }
        if kind == ReduceKind::Mean {
            let s = T::one() / T::from_f64(count.max(1) as f64);
            v.mapv_inplace(|e| e * s);
        }
        Tensor::from_ndarray(v)?.reshape(out_shape)
    })
}

/// Broadcasts `g` (reduced shape) back to `in_shape`, scaled by 1/count for mean.
pub(super) fn sum_backward(
    g: &Tensor,
    in_shape: &[usize],
    axes: &[usize],
    kind: ReduceKind,
) -> Result<Tensor> {
    let kept = reduced_shape(in_shape, axes, true);
    let g = g.reshape(&kept)?;
    let count: usize = axes.iter().map(|&a| in_shape[a]).product();
    with_dtype!(g.dtype(), T => {
        let s = match kind {
            ReduceKind::Sum => T::one(),
            ReduceKind::Mean => T::one() / T::from_f64(count.max(1) as f64),
        };
        // Reduced axes that form one block a0..a1 (a mean over tokens, a sum over the last axes):
        // out[o, r, i] = s·g[o, i], written slice by slice.
        let contiguous_block = axes.windows(2).all(|w| w[1] == w[0] + 1);
        if let (true, Some(&a0), Some(&a1)) = (contiguous_block, axes.first(), axes.last()) {
            let outer: usize = in_shape[..a0].iter().product();
            let red: usize = in_shape[a0..=a1].iter().product();
            let inner: usize = in_shape[a1 + 1..].iter().product();
            let gs = g.as_slice::<T>()?;
            let mut out = pool::take::<T>(outer * red * inner);
            if inner > 0 && red > 0 {
                let fill = |(o, dst): (usize, &mut [T])| {
                    let src = &gs[o * inner..(o + 1) * inner];
                    for row in dst.chunks_exact_mut(inner) {
                        row.iter_mut().zip(src).for_each(|(d, &v)| *d = v * s);
                    }
                };
                if out.len() >= 1 << 15 && outer > 1 {
                    out.par_chunks_mut(red * inner).enumerate().for_each(fill);
                } else {
                    out.chunks_mut(red * inner).enumerate().for_each(fill);
                }
            }
            return Tensor::from_vec(out, in_shape);
        }
        let gv = g.view::<T>()?;
        let Some(b) = gv.broadcast(IxDyn(in_shape)) else {
            crate::shape_bail!("sum backward", "{:?} does not broadcast to {in_shape:?}", g.shape());
        };
        let mut out = pool::take::<T>(b.len());
        for (o, &e) in out.iter_mut().zip(b.iter()) {
            *o = e * s;
        }
        Tensor::from_vec(out, in_shape)
    })
}

/// Max over one axis; returns the values and the argmax (index along the axis) of each lane.
pub(super) fn max_forward(
    x: &Tensor,
    axis: usize,
    out_shape: &[usize],
) -> Result<(Tensor, Vec<usize>)> {
    with_dtype!(x.dtype(), T => {
        let lanes = x.view::<T>()?.map_axis(Axis(axis), |lane| {
            let mut best = 0;
            for (i, &v) in lane.iter().enumerate() {
                if v > lane[best] || (lane[best].is_nan() && !v.is_nan()) {
                    best = i;
                }
            }
            (lane[best], best)
        });
        let vals: Vec<T> = lanes.iter().map(|p| p.0).collect();
        let idx: Vec<usize> = lanes.iter().map(|p| p.1).collect();
        Ok((Tensor::from_vec(vals, out_shape)?, idx))
    })
}

/// Scatters `g` to the argmax positions; every other element gets zero.
pub(super) fn max_backward(
    g: &Tensor,
    in_shape: &[usize],
    axis: usize,
    argmax: &[usize],
) -> Result<Tensor> {
    let outer: usize = in_shape[..axis].iter().product();
    let n = in_shape[axis];
    let inner: usize = in_shape[axis + 1..].iter().product();
    with_dtype!(g.dtype(), T => {
        let gs = g.as_slice::<T>()?;
        let mut out = pool::take_zeroed::<T>(outer * n * inner);
        for o in 0..outer {
            for i in 0..inner {
                let lane = o * inner + i;
                out[(o * n + argmax[lane]) * inner + i] = gs[lane];
            }
        }
        Tensor::from_vec(out, in_shape)
    })
}
