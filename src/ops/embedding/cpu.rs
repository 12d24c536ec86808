//! CPU kernels of the embedding family (row copies over rayon; a serial scatter-add backward).
//! Called by `super` with checked operands.

use crate::tensor::{pool, Tensor};
use crate::{with_dtype, Result};
use rayon::prelude::*;

/// `out[..., :] = table[ids[...], :]` into an output of `shape`.
pub(super) fn forward(table: &Tensor, ids: &[usize], shape: &[usize]) -> Result<Tensor> {
    let c = table.shape()[1];
    with_dtype!(table.dtype(), T => {
        let ts = table.as_slice::<T>()?;
        let mut out = pool::take::<T>(ids.len() * c);
        if c > 0 {
            out.par_chunks_mut(c).zip(ids.par_iter()).for_each(|(o, &id)| o.copy_from_slice(&ts[id * c..(id + 1) * c]));
        }
        Tensor::from_vec(out, shape)
    })
}

/// Gradient of the table: `dtable[id] += g[row]` for each gathered row.
pub(super) fn backward(g: &Tensor, ids: &[usize], table_shape: &[usize]) -> Result<Tensor> {
    let c = table_shape[1];
    with_dtype!(g.dtype(), T => {
        let gs = g.as_slice::<T>()?;
        let mut out = pool::take_zeroed::<T>(table_shape[0] * c);
        for (r, &id) in ids.iter().enumerate() {
            for j in 0..c {
                out[id * c + j] += gs[r * c + j];
            }
        }
        Tensor::from_vec(out, table_shape)
    })
}
