//! Reductions over axes: sum, mean (any set of axes) and max (one axis, gradient routed to the
//! first maximal element). `keepdim` keeps reduced axes as size 1.
//!
//! Backward of sum/mean broadcasts the upstream gradient back over the reduced axes (÷ count for
//! mean); backward of max scatters it to the saved argmax.

mod cpu;

use super::no_kernel;
use crate::tensor::shape::check_axis;
use crate::{Device, Result, Tensor};

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
    match x.device() {
        Device::Cpu => cpu::sum_forward(x, axes, &out_shape, kind),
        d @ Device::Cuda(_) => Err(no_kernel("sum", d)),
    }
}

/// Broadcasts `g` (reduced shape) back to `in_shape`, scaled by 1/count for mean.
pub fn sum_backward(
    g: &Tensor,
    in_shape: &[usize],
    axes: &[usize],
    kind: ReduceKind,
) -> Result<Tensor> {
    match g.device() {
        Device::Cpu => cpu::sum_backward(g, in_shape, axes, kind),
        d @ Device::Cuda(_) => Err(no_kernel("sum backward", d)),
    }
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
    match x.device() {
        Device::Cpu => cpu::max_forward(x, axis, &out_shape),
        d @ Device::Cuda(_) => Err(no_kernel("max", d)),
    }
}

/// Scatters `g` to the argmax positions; every other element gets zero.
pub fn max_backward(
    g: &Tensor,
    in_shape: &[usize],
    axis: usize,
    argmax: &[usize],
) -> Result<Tensor> {
    check_axis("max backward", axis, in_shape.len())?;
    if argmax.len() != g.numel() {
        crate::shape_bail!(
            "max backward",
            "{} argmax entries for a gradient of {} elements",
            argmax.len(),
            g.numel()
        );
    }
    match g.device() {
        Device::Cpu => cpu::max_backward(g, in_shape, axis, argmax),
        d @ Device::Cuda(_) => Err(no_kernel("max backward", d)),
    }
}
