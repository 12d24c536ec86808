//! Layout ops: permute (and transpose), narrow (slice), concat, index-select. Reshape needs no
//! kernel (`Tensor::reshape` shares the buffer, on any device). Tensors stay contiguous, so every
//! layout change is a copy; backward applies the inverse layout change:
//!
//!   permute: the inverse permutation   narrow: g placed at `start` in zeros
//!   concat: narrow of g per input      index_select: scatter-add of g to the selected entries

mod cpu;

use super::{common_device, no_kernel};
use crate::tensor::shape::check_axis;
use crate::{Device, Error, Result, Tensor};

/// Checks that `perm` is a permutation of `0..rank`.
pub fn check_perm(perm: &[usize], rank: usize) -> Result<()> {
    let mut seen = vec![false; rank];
    if perm.len() != rank
        || perm
            .iter()
            .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
    {
        crate::invalid_bail!(
            "permute",
            "{perm:?} is not a permutation of the {rank} axes"
        );
    }
    Ok(())
}

/// The inverse permutation.
pub fn inverse_perm(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

/// Axes reordered: output axis i is input axis `perm[i]`.
pub fn permute(x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    check_perm(perm, x.rank())?;
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(x.clone());
    }
    match x.device() {
        Device::Cpu => cpu::permute(x, perm),
        d @ Device::Cuda(_) => Err(no_kernel("permute", d)),
    }
}

/// `len` elements of `axis` from `start`.
pub fn narrow(x: &Tensor, axis: usize, start: usize, len: usize) -> Result<Tensor> {
    check_axis("narrow", axis, x.rank())?;
    if start + len > x.shape()[axis] {
        crate::invalid_bail!(
            "narrow",
            "range {start}..{} exceeds axis {axis} of size {} (shape {:?})",
            start + len,
            x.shape()[axis],
            x.shape()
        );
    }
    match x.device() {
        Device::Cpu => cpu::narrow(x, axis, start, len),
        d @ Device::Cuda(_) => Err(no_kernel("narrow", d)),
    }
}

/// Gradient of narrow: `g` placed at `start` along `axis` in zeros of `in_shape`.
pub fn narrow_backward(
    g: &Tensor,
    in_shape: &[usize],
    axis: usize,
    start: usize,
) -> Result<Tensor> {
    check_axis("narrow backward", axis, in_shape.len())?;
    let fits = g.rank() == in_shape.len()
        && g.shape()
            .iter()
            .zip(in_shape)
            .enumerate()
            .all(
                |(i, (&a, &b))| {
                    if i == axis {
                        start + a <= b
                    } else {
                        a == b
                    }
                },
            );
    if !fits {
        crate::shape_bail!(
            "narrow backward",
            "gradient {:?} at {start} on axis {axis} does not fit {in_shape:?}",
            g.shape()
        );
    }
    match g.device() {
        Device::Cpu => cpu::narrow_backward(g, in_shape, axis, start),
        d @ Device::Cuda(_) => Err(no_kernel("narrow backward", d)),
    }
}

/// Joins tensors along `axis` (all other axes equal).
pub fn concat(xs: &[&Tensor], axis: usize) -> Result<Tensor> {
    let first = xs.first().ok_or_else(|| Error::Invalid {
        op: "concat",
        detail: "needs at least one tensor".into(),
    })?;
    check_axis("concat", axis, first.rank())?;
    for x in xs {
        first.same_dtype("concat", x)?;
        let ok = x.rank() == first.rank()
            && x.shape()
                .iter()
                .zip(first.shape())
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b);
        if !ok {
            crate::shape_bail!(
                "concat",
                "shapes {:?} and {:?} differ outside axis {axis}",
                first.shape(),
                x.shape()
            );
        }
    }
    match common_device("concat", xs.iter().copied())? {
        Device::Cpu => cpu::concat(xs, axis),
        d @ Device::Cuda(_) => Err(no_kernel("concat", d)),
    }
}

/// Entries `indices` of `axis`, in that order (repeats allowed).
pub fn index_select(x: &Tensor, axis: usize, indices: &[usize]) -> Result<Tensor> {
    check_axis("index_select", axis, x.rank())?;
    let n = x.shape()[axis];
    if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
        crate::invalid_bail!(
            "index_select",
            "index {bad} out of range for axis {axis} of size {n}"
        );
    }
    match x.device() {
        Device::Cpu => cpu::index_select(x, axis, indices),
        d @ Device::Cuda(_) => Err(no_kernel("index_select", d)),
    }
}

/// Gradient of index-select: scatter-add `g` back to the selected entries.
pub fn index_select_backward(
    g: &Tensor,
    in_shape: &[usize],
    axis: usize,
    indices: &[usize],
) -> Result<Tensor> {
    check_axis("index_select backward", axis, in_shape.len())?;
    if g.rank() != in_shape.len()
        || g.shape()[axis] != indices.len()
        || indices.iter().any(|&i| i >= in_shape[axis])
    {
        crate::shape_bail!(
            "index_select backward",
            "gradient {:?} with {} indices does not fit {in_shape:?}",
            g.shape(),
            indices.len()
        );
    }
    match g.device() {
        Device::Cpu => cpu::index_select_backward(g, in_shape, axis, indices),
        d @ Device::Cuda(_) => Err(no_kernel("index_select backward", d)),
    }
}
