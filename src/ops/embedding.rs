//! Embedding gather: rows of a `[d_vocab, d_model]` table picked by integer ids. Backward
//! scatter-adds the upstream rows into a zero `[d_vocab, d_model]` gradient (only computed when the
//! table's gradient is requested: attribution methods interpolate the gathered output instead).

use crate::tensor::{pool, Tensor};
use crate::{with_dtype, Result};
use rayon::prelude::*;

/// `out[..., :] = table[ids[...], :]`; output shape is `ids_shape + [d_model]`.
pub fn forward(table: &Tensor, ids: &[usize], ids_shape: &[usize]) -> Result<Tensor> {
    if table.rank() != 2 {
        crate::shape_bail!(
            "embedding",
            "table must be [d_vocab, d_model], got {:?}",
            table.shape()
        );
    }
    if ids.len() != ids_shape.iter().product::<usize>() {
        crate::shape_bail!(
            "embedding",
            "{} ids do not fill shape {ids_shape:?}",
            ids.len()
        );
    }
    let (v, c) = (table.shape()[0], table.shape()[1]);
    if let Some(&bad) = ids.iter().find(|&&i| i >= v) {
        crate::invalid_bail!(
            "embedding",
            "token id {bad} out of range for a vocabulary of {v}"
        );
    }
    let mut shape = ids_shape.to_vec();
    shape.push(c);
    with_dtype!(table.dtype(), T => {
        let ts = table.as_slice::<T>()?;
        let mut out = pool::take::<T>(ids.len() * c);
        if c > 0 {
            out.par_chunks_mut(c).zip(ids.par_iter()).for_each(|(o, &id)| o.copy_from_slice(&ts[id * c..(id + 1) * c]));
        }
        Tensor::from_vec(out, &shape)
    })
}

/// Gradient of the table: `dtable[id] += g[row]` for each gathered row.
pub fn backward(g: &Tensor, ids: &[usize], table_shape: &[usize]) -> Result<Tensor> {
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
