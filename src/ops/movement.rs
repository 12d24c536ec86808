//! Layout ops: permute (and transpose), narrow (slice), concat, index-select. Reshape needs no
//! kernel (`Tensor::reshape` shares the buffer). Tensors stay contiguous, so permute copies through
//! an ndarray view; backward applies the inverse layout change.

use crate::tensor::{pool, shape::check_axis, Tensor};
use crate::{with_dtype, Error, Result};
use ndarray::{Axis, Slice};

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
pub fn narrow_backward(
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
    with_dtype!(first.dtype(), T => {
        let views = xs.iter().map(|x| x.view::<T>()).collect::<Result<Vec<_>>>()?;
        let out = ndarray::concatenate(Axis(axis), &views).map_err(|e| Error::Msg(e.to_string()))?;
        Tensor::from_ndarray(out)
    })
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
    with_dtype!(x.dtype(), T => Tensor::from_ndarray(x.view::<T>()?.select(Axis(axis), indices)))
}

/// Gradient of index-select: scatter-add `g` back to the selected entries.
pub fn index_select_backward(
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
