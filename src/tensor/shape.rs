//! Shape helpers: contiguous strides, numpy broadcasting, axis normalisation.

use crate::{Error, Result};

/// Row-major strides (in elements) of a contiguous tensor of `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// The numpy broadcast of two shapes, or a shape error naming `op`.
pub fn broadcast_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::Shape {
                    op,
                    detail: format!("shapes {a:?} and {b:?} do not broadcast"),
                })
            }
        };
    }
    Ok(out)
}

/// Strides that read a contiguous tensor of `shape` as if it had shape `target` (stride 0 on
/// broadcast axes). `shape` must broadcast to `target`.
pub fn broadcast_strides(
    op: &'static str,
    shape: &[usize],
    target: &[usize],
) -> Result<Vec<usize>> {
    if shape.len() > target.len() {
        return Err(Error::Shape {
            op,
            detail: format!("{shape:?} has more axes than {target:?}"),
        });
    }
    let off = target.len() - shape.len();
    let cs = contiguous_strides(shape);
    let mut out = vec![0; target.len()];
    for i in 0..shape.len() {
        if shape[i] == target[off + i] {
            out[off + i] = cs[i];
        } else if shape[i] != 1 {
            return Err(Error::Shape {
                op,
                detail: format!("{shape:?} does not broadcast to {target:?}"),
            });
        }
    }
    Ok(out)
}

/// Checks an axis against a rank.
pub fn check_axis(op: &'static str, axis: usize, rank: usize) -> Result<usize> {
    if axis >= rank {
        return Err(Error::Invalid {
            op,
            detail: format!("axis {axis} out of range for a tensor of rank {rank}"),
        });
    }
    Ok(axis)
}
