//! Embedding gather: rows of a `[d_vocab, d_model]` table picked by integer ids. Backward
//! scatter-adds the upstream rows into a zero `[d_vocab, d_model]` gradient (only computed when the
//! table's gradient is requested: attribution methods interpolate the gathered output instead).

mod cpu;

use super::no_kernel;
use crate::{Device, Result, Tensor};

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
    match table.device() {
        Device::Cpu => cpu::forward(table, ids, &shape),
        d @ Device::Cuda(_) => Err(no_kernel("embedding", d)),
    }
}

/// Gradient of the table: `dtable[id] += g[row]` for each gathered row.
pub fn backward(g: &Tensor, ids: &[usize], table_shape: &[usize]) -> Result<Tensor> {
    if table_shape.len() != 2 || g.numel() != ids.len() * table_shape[1] {
        crate::shape_bail!(
            "embedding backward",
            "gradient {:?} does not fit {} ids of a {table_shape:?} table",
            g.shape(),
            ids.len()
        );
    }
    match g.device() {
        Device::Cpu => cpu::backward(g, ids, table_shape),
        d @ Device::Cuda(_) => Err(no_kernel("embedding backward", d)),
    }
}
