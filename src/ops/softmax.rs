//! Softmax and log-softmax along the last axis, with an optional additive mask (padding or causal)
//! that broadcasts to the input (e.g. `[batch, 1, 1, key_pos]` or `[1, 1, query_pos, key_pos]` for
//! scores `[batch, n_heads, query_pos, key_pos]`). Masked entries hold a large negative value or -inf;
//! a row that is masked everywhere gives zeros (softmax) rather than NaN.
//!
//! Backward (y = softmax(x + m)):   dx = y ⊙ (g − Σ_j g_j y_j)
//! Backward (y = log_softmax):       dx = g − exp(y) · Σ_j g_j
//! The mask is a constant: it gets no gradient.

use crate::tensor::{pool, shape::broadcast_strides, Float, Tensor};
use crate::{with_dtype, Result};
use rayon::prelude::*;

/// Rows at least this many → parallel over rows.
const PAR_ROWS: usize = 64;

/// Mask element offset of the start of each row, and the mask's stride along the last axis.
fn mask_rows(x_shape: &[usize], mask: &Tensor) -> Result<(Vec<usize>, usize)> {
    let st = broadcast_strides("softmax mask", mask.shape(), x_shape)?;
    let r = x_shape.len();
    let lead = &x_shape[..r - 1];
    let rows: usize = lead.iter().product();
    let mut offs = Vec::with_capacity(rows);
    let mut idx = vec![0usize; lead.len()];
    for _ in 0..rows {
        offs.push(idx.iter().zip(&st).map(|(i, s)| i * s).sum());
        for a in (0..lead.len()).rev() {
            idx[a] += 1;
            if idx[a] < lead[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    Ok((offs, st[r - 1]))
}

fn softmax_row<T: Float>(out: &mut [T], x: &[T], mask: Option<(&[T], usize, usize)>, log: bool) {
    let m = |j: usize| match mask {
        Some((ms, off, s)) => ms[off + j * s],
        None => T::zero(),
    };
    let mut mx = T::neg_infinity();
    for (j, &v) in x.iter().enumerate() {
        mx = mx.max(v + m(j));
    }
    if mx == T::neg_infinity() {
        // Fully masked row.
        out.fill(if log { T::neg_infinity() } else { T::zero() });
        return;
    }
    let mut sum = T::zero();
    for (j, (o, &v)) in out.iter_mut().zip(x).enumerate() {
        let e = (v + m(j) - mx).exp();
        *o = e;
        sum += e;
    }
    if log {
        let lse = sum.ln();
        for (j, (o, &v)) in out.iter_mut().zip(x).enumerate() {
            *o = v + m(j) - mx - lse;
        }
    } else {
        let inv = T::one() / sum;
        out.iter_mut().for_each(|o| *o *= inv);
    }
}

/// `softmax(x + mask)` (or its log) along the last axis.
pub fn forward(x: &Tensor, mask: Option<&Tensor>, log: bool) -> Result<Tensor> {
    let op = if log { "log_softmax" } else { "softmax" };
    if x.rank() == 0 {
        crate::shape_bail!(op, "needs at least one axis, got a scalar");
    }
    let n = x.shape()[x.rank() - 1];
    if let Some(m) = mask {
        x.same_dtype(op, m)?;
    }
    let mrows = mask.map(|m| mask_rows(x.shape(), m)).transpose()?;
    with_dtype!(x.dtype(), T => {
        let xs = x.as_slice::<T>()?;
        let ms = mask.map(|m| m.as_slice::<T>()).transpose()?;
        let mut out = pool::take::<T>(xs.len());
        if let Some(rows) = xs.len().checked_div(n) {
            let row = |(r, (o, xr)): (usize, (&mut [T], &[T]))| {
                let mk = match (&ms, &mrows) {
                    (Some(ms), Some((offs, s))) => Some((*ms, offs[r], *s)),
                    _ => None,
                };
                softmax_row(o, xr, mk, log);
            };
            if rows >= PAR_ROWS {
                out.par_chunks_mut(n).zip(xs.par_chunks(n)).enumerate().for_each(row);
            } else {
                out.chunks_mut(n).zip(xs.chunks(n)).enumerate().for_each(row);
            }
        }
        Tensor::from_vec(out, x.shape())
    })
}

/// Gradient wrt x from the saved output y.
pub fn backward(g: &Tensor, y: &Tensor, log: bool) -> Result<Tensor> {
    let n = *y.shape().last().unwrap_or(&1);
    with_dtype!(g.dtype(), T => {
        let gs = g.as_slice::<T>()?;
        let ys = y.as_slice::<T>()?;
        let mut out = pool::take::<T>(gs.len());
        if let Some(rows) = gs.len().checked_div(n) {
            let row = |(o, (g, y)): (&mut [T], (&[T], &[T]))| {
                if log {
                    let s: T = g.iter().copied().sum();
                    for ((o, &g), &y) in o.iter_mut().zip(g).zip(y) {
                        *o = g - y.exp() * s;
                    }
                } else {
                    let s: T = g.iter().zip(y).map(|(&g, &y)| g * y).sum();
                    for ((o, &g), &y) in o.iter_mut().zip(g).zip(y) {
                        *o = y * (g - s);
                    }
                }
            };
            if rows >= PAR_ROWS {
                out.par_chunks_mut(n).zip(gs.par_chunks(n).zip(ys.par_chunks(n))).for_each(row);
            } else {
                out.chunks_mut(n).zip(gs.chunks(n).zip(ys.chunks(n))).for_each(row);
            }
        }
        Tensor::from_vec(out, g.shape())
    })
}
