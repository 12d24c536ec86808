//! Reductions over axes: sum, mean (any set of axes) and max (one axis, gradient routed to the
//! first maximal element). `keepdim` keeps reduced axes as size 1.
//!
//! Backward of sum/mean broadcasts the upstream gradient back over the reduced axes (÷ count for
//! mean); backward of max scatters it to the saved argmax.

use crate::tensor::{pool, shape::check_axis, Float, Tensor};
use crate::{with_dtype, Result};
use ndarray::{Axis, IxDyn};
use num_traits::One;

/// Sum or mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceKind {
    Sum,
    Mean,
}

/// Sorted, de-duplicated, checked axes.
pub fn normalize_axes(op: &'static str, axes: &[usize], rank: usize) -> Result<Vec<usize>> {
    let mut a = axes.to_vec();
    for &ax in &a {
        check_axis(op, ax, rank)?;
    }
    a.sort_unstable();
    a.dedup();
    Ok(a)
}

/// Shape after reducing `axes` with keepdim (size 1) or without (removed).
pub fn reduced_shape(shape: &[usize], axes: &[usize], keepdim: bool) -> Vec<usize> {
    let mut out = Vec::with_capacity(shape.len());
    for (i, &d) in shape.iter().enumerate() {
        if axes.contains(&i) {
            if keepdim {
                out.push(1);
            }
        } else {
            out.push(d);
        }
    }
    out
}

/// Sum or mean of `x` over `axes` (sorted, checked).
pub fn sum_forward(x: &Tensor, axes: &[usize], keepdim: bool, kind: ReduceKind) -> Result<Tensor> {
    let out_shape = reduced_shape(x.shape(), axes, keepdim);
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
        Tensor::from_ndarray(v)?.reshape(&out_shape)
    })
}

/// Broadcasts `g` (reduced shape) back to `in_shape`, scaled by 1/count for mean.
pub fn sum_backward(
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
pub fn max_forward(x: &Tensor, axis: usize, keepdim: bool) -> Result<(Tensor, Vec<usize>)> {
    check_axis("max", axis, x.rank())?;
    if x.shape()[axis] == 0 {
        crate::invalid_bail!(
            "max",
            "cannot take the max over an empty axis {axis} of {:?}",
            x.shape()
        );
    }
    let out_shape = reduced_shape(x.shape(), &[axis], keepdim);
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
        Ok((Tensor::from_vec(vals, &out_shape)?, idx))
    })
}

/// Scatters `g` to the argmax positions; every other element gets zero.
pub fn max_backward(
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
