//! CPU kernels of the layout family: copies through ndarray views, a tiled 2-D transpose, run
//! copies for narrow. Called by `super` with checked operands.

use crate::tensor::{pool, Tensor};
use crate::{with_dtype, Error, Result};
use ndarray::{Axis, Slice};

/// Axes reordered: output axis i is input axis `perm[i]`.
pub(super) fn permute(x: &Tensor, perm: &[usize]) -> Result<Tensor> {
    if perm == [1, 0] {
        return with_dtype!(x.dtype(), T => transpose2::<T>(x));
    }
    with_dtype!(x.dtype(), T => {
        let v = x.view::<T>()?.permuted_axes(perm.to_vec());
        let mut out = pool::take::<T>(v.len());
        for (o, &e) in out.iter_mut().zip(v.iter()) {
            *o = e;
        }
        Tensor::from_vec(out, v.shape())
    })
}

/// A `[rows, cols]` matrix transposed in 32 × 32 tiles (both sides stay in cache), in parallel
/// over bands of 32 output rows.
fn transpose2<T: crate::tensor::Float>(x: &Tensor) -> Result<Tensor> {
    use rayon::prelude::*;
    let (r, c) = (x.shape()[0], x.shape()[1]);
    let a = x.as_slice::<T>()?;
    let mut out = pool::take::<T>(r * c);
    const B: usize = 32;
    if r > 0 {
        out.par_chunks_mut(B * r).enumerate().for_each(|(band, o)| {
            let j0 = band * B;
            let nj = o.len() / r;
            for i0 in (0..r).step_by(B) {
                for i in i0..(i0 + B).min(r) {
                    let row = &a[i * c + j0..i * c + j0 + nj];
                    for (dj, &v) in row.iter().enumerate() {
                        o[dj * r + i] = v;
                    }
                }
            }
        });
    }
    Tensor::from_vec(out, &[c, r])
}

/// `len` elements of `axis` from `start`.
pub(super) fn narrow(x: &Tensor, axis: usize, start: usize, len: usize) -> Result<Tensor> {
    // Row-major: for every index of the axes before `axis`, one contiguous run of
    // `len · inner` elements is copied.
    let shape = x.shape();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let (run, stride) = (len * inner, shape[axis] * inner);
    let mut out_shape = shape.to_vec();
    out_shape[axis] = len;
    with_dtype!(x.dtype(), T => {
        let a = x.as_slice::<T>()?;
        let mut out = pool::take::<T>(outer * run);
        if run > 0 {
            for (o, chunk) in out.chunks_mut(run).zip(a.chunks(stride)) {
                o.copy_from_slice(&chunk[start * inner..start * inner + run]);
            }
        }
        Tensor::from_vec(out, &out_shape)
    })
}

/// Gradient of narrow: `g` placed at `start` along `axis` in zeros of `in_shape`.
pub(super) fn narrow_backward(
    g: &Tensor,
    in_shape: &[usize],
    axis: usize,
    start: usize,
) -> Result<Tensor> {
    with_dtype!(g.dtype(), T => {
        let mut out = ndarray::ArrayD::<T>::zeros(in_shape);
        let len = g.shape()[axis];
        out.slice_axis_mut(Axis(axis), Slice::from(start..start + len)).assign(&g.view::<T>()?);
        Tensor::from_ndarray(out)
    })
}

/// Joins tensors along `axis` (all other axes equal).
pub(super) fn concat(xs: &[&Tensor], axis: usize) -> Result<Tensor> {
    let first = xs[0];
    with_dtype!(first.dtype(), T => {
        let views = xs.iter().map(|x| x.view::<T>()).collect::<Result<Vec<_>>>()?;
        let out = ndarray::concatenate(Axis(axis), &views)
            .map_err(|e| Error::Internal(format!("concat on axis {axis}: {e}")))?;
        Tensor::from_ndarray(out)
    })
}

/// Entries `indices` of `axis`, in that order (repeats allowed).
pub(super) fn index_select(x: &Tensor, axis: usize, indices: &[usize]) -> Result<Tensor> {
    with_dtype!(x.dtype(), T => Tensor::from_ndarray(x.view::<T>()?.select(Axis(axis), indices)))
}

/// Gradient of index-select: scatter-add `g` back to the selected entries.
pub(super) fn index_select_backward(
    g: &Tensor,
    in_shape: &[usize],
    axis: usize,
    indices: &[usize],
) -> Result<Tensor> {
    with_dtype!(g.dtype(), T => {
        let mut out = ndarray::ArrayD::<T>::zeros(in_shape);
        let gv = g.view::<T>()?;
        for (i, &idx) in indices.iter().enumerate() {
            let mut dst = out.index_axis_mut(Axis(axis), idx);
            dst += &gv.index_axis(Axis(axis), i);
        }
        Tensor::from_ndarray(out)
    })
}
