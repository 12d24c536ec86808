//! The reduction behind every broadcasting backward: a gradient summed over the axes that
//! broadcasting expanded, with a fast path for bias-like targets (the trailing axes), summed in
//! an order that does not depend on the number of threads.

use super::{simd, PAR_MIN};
use crate::tensor::{Float, Tensor};
use crate::{with_dtype, Result};
use ndarray::Axis;
use rayon::prelude::*;

/// Rows of this many elements form one block of [`sum_rows`] (fixed, so the order of the
/// additions, hence the result, does not depend on the number of threads).
const SUM_BLOCK: usize = 1 << 14;

/// Columns per parallel task of [`sum_rows`] on wide rows.
const SUM_COLS: usize = 1024;

/// `out[j] = Σ_r g[r·m + j]`: rows summed block by block in parallel (each block in row order),
/// then the block partials in block order; rows of ≥ `SUM_BLOCK / 4` elements are split by
/// columns instead (each column summed in row order).
fn sum_rows<T: Float>(g: &[T], m: usize) -> Vec<T> {
    if m >= SUM_BLOCK / 4 {
        // Wide rows: split the columns instead; each column slice sums every row in order.
        let mut out = vec![T::zero(); m];
        let cols = |(c, o): (usize, &mut [T])| {
            let (start, w) = (c * SUM_COLS, o.len());
            simd(
                #[inline(always)]
                || {
                    for r in g.chunks_exact(m) {
                        o.iter_mut()
                            .zip(&r[start..start + w])
                            .for_each(|(a, &v)| *a += v);
                    }
                },
            )
        };
        if g.len() >= PAR_MIN {
            out.par_chunks_mut(SUM_COLS).enumerate().for_each(cols);
        } else {
            out.chunks_mut(SUM_COLS).enumerate().for_each(cols);
        }
        return out;
    }
    let rows_per_block = (SUM_BLOCK / m).max(1);
    let block = |rows: &[T]| {
        let mut acc = vec![T::zero(); m];
        simd(
            #[inline(always)]
            || {
                for r in rows.chunks_exact(m) {
                    acc.iter_mut().zip(r).for_each(|(a, &v)| *a += v);
                }
            },
        );
        acc
    };
    let partials: Vec<Vec<T>> = if g.len() >= PAR_MIN {
        g.par_chunks(rows_per_block * m).map(block).collect()
    } else {
        g.chunks(rows_per_block * m).map(block).collect()
    };
    let mut out = vec![T::zero(); m];
    for p in &partials {
        simd(
            #[inline(always)]
            || out.iter_mut().zip(p).for_each(|(o, &v)| *o += v),
        );
    }
    out
}

/// Sums `g` over the axes that broadcasting expanded, giving a tensor of `shape`.
pub(in crate::ops::elementwise) fn sum_to_shape(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    // A bias-like target (the trailing axes of g, leading 1s aside): sum of g's rows.
    let core: &[usize] = {
        let first = shape.iter().position(|&d| d != 1).unwrap_or(shape.len());
        &shape[first..]
    };
    let m: usize = core.iter().product();
    if !core.is_empty() && m > 0 && g.shape().ends_with(core) {
        return with_dtype!(g.dtype(), T => {
            Tensor::from_vec(sum_rows(g.as_slice::<T>()?, m), shape)
        });
    }
    with_dtype!(g.dtype(), T => {
        let mut v = g.view::<T>()?.to_owned();
        let extra = g.rank() - shape.len();
        for _ in 0..extra {
            v = v.sum_axis(Axis(0));
        }
        for (i, &d) in shape.iter().enumerate() {
            if d == 1 && v.shape()[i] != 1 {
                v = v.sum_axis(Axis(i)).insert_axis(Axis(i));
            }
        }
        Tensor::from_ndarray(v)
    })
}
