//! CPU kernels of the softmax family: one row per task (rayon over rows), lane-wise max and sums.
//! Called by `super` with checked operands.

use crate::tensor::{dot_lanes, max_lanes, pool, sum_lanes, Float, Tensor};
use crate::{with_dtype, Result};
use num_traits::{Float as _, Zero as _};
use rayon::prelude::*;

/// Rows at least this many → parallel over rows.
const PAR_ROWS: usize = 64;

/// Mask element offset of the start of each row, and the mask's stride along the last axis, from
/// the mask's broadcast strides `st` (one per axis of x).
fn mask_rows(x_shape: &[usize], st: &[usize]) -> (Vec<usize>, usize) {
    let r = x_shape.len();
    let lead = &x_shape[..r - 1];
    let rows: usize = lead.iter().product();
    let mut offs = Vec::with_capacity(rows);
    let mut idx = vec![0usize; lead.len()];
    for _ in 0..rows {
        offs.push(idx.iter().zip(st).map(|(i, s)| i * s).sum());
        for a in (0..lead.len()).rev() {
            idx[a] += 1;
            if idx[a] < lead[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    (offs, st[r - 1])
}

/// `x + mask` for one row into `out`, the mask given as (buffer, row offset, stride along the row):
/// stride 1 is a full mask row, stride 0 one value for the whole row.
#[inline]
fn add_mask<T: Float>(out: &mut [T], x: &[T], mask: Option<(&[T], usize, usize)>) {
    match mask {
        None => out.copy_from_slice(x),
        Some((ms, off, 1)) => out
            .iter_mut()
            .zip(x.iter().zip(&ms[off..off + x.len()]))
            .for_each(|(o, (&v, &m))| *o = v + m),
        Some((ms, off, 0)) => {
            let m = ms[off];
            out.iter_mut().zip(x).for_each(|(o, &v)| *o = v + m);
        }
        Some((ms, off, st)) => out
            .iter_mut()
            .zip(x)
            .enumerate()
            .for_each(|(j, (o, &v))| *o = v + ms[off + j * st]),
    }
}

#[inline(always)]
fn softmax_row<T: Float>(out: &mut [T], x: &[T], mask: Option<(&[T], usize, usize)>, log: bool) {
    add_mask(out, x, mask);
    // Plain comparisons (not NaN-aware `max`) so the reduction vectorises; a NaN input still
    // propagates through the sums below.
    let mx = max_lanes(out);
    if mx == T::neg_infinity() {
        // Fully masked row.
        out.fill(if log { T::neg_infinity() } else { T::zero() });
        return;
    }
    if log {
        let mut e = [T::zero(); 64];
        let mut sum = T::zero();
        for c in out.chunks(64) {
            let e = &mut e[..c.len()];
            e.iter_mut().zip(c).for_each(|(e, &v)| *e = (v - mx).fexp());
            sum += sum_lanes(e);
        }
        let shift = mx + sum.ln();
        out.iter_mut().for_each(|o| *o -= shift);
    } else {
        out.iter_mut().for_each(|o| *o = (*o - mx).fexp());
        let inv = T::one() / sum_lanes(out);
        out.iter_mut().for_each(|o| *o *= inv);
    }
}

/// `softmax(x + mask)` (or its log) along the last axis; the mask comes with its broadcast
/// strides.
pub(super) fn forward(x: &Tensor, mask: Option<(&Tensor, &[usize])>, log: bool) -> Result<Tensor> {
    let n = x.shape()[x.rank() - 1];
    let mrows = mask.map(|(_, st)| mask_rows(x.shape(), st));
    let mask = mask.map(|(m, _)| m);
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
                crate::ops::simd::run(#[inline(always)] || softmax_row(o, xr, mk, log));
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
pub(super) fn backward(g: &Tensor, y: &Tensor, log: bool) -> Result<Tensor> {
    let n = *y.shape().last().unwrap_or(&1);
    with_dtype!(g.dtype(), T => {
        let gs = g.as_slice::<T>()?;
        let ys = y.as_slice::<T>()?;
        let mut out = pool::take::<T>(gs.len());
        if let Some(rows) = gs.len().checked_div(n) {
            let row = |(o, (g, y)): (&mut [T], (&[T], &[T]))| crate::ops::simd::run(#[inline(always)] || {
                if log {
                    // Masked entries (y = −∞) are constants: they pass no gradient and take none.
                    // dx_j = g_j − p_j · Σ_{k unmasked} g_k for unmasked j, 0 for masked j.
                    let s: T = g.iter().zip(y).filter(|(_, &y)| y != T::neg_infinity()).map(|(&g, _)| g).sum();
                    for ((o, &g), &y) in o.iter_mut().zip(g).zip(y) {
                        *o = if y == T::neg_infinity() { T::zero() } else { g - y.exp() * s };
                    }
                } else {
                    let s: T = dot_lanes(g, y);
                    for ((o, &g), &y) in o.iter_mut().zip(g).zip(y) {
                        *o = y * (g - s);
                    }
                }
            });
            if rows >= PAR_ROWS {
                out.par_chunks_mut(n).zip(gs.par_chunks(n).zip(ys.par_chunks(n))).for_each(row);
            } else {
                out.chunks_mut(n).zip(gs.chunks(n).zip(ys.chunks(n))).for_each(row);
            }
        }
        Tensor::from_vec(out, g.shape())
    })
}
