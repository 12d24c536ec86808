//! CPU kernels of the softmax family: one row per task (rayon over rows), lane-wise max and sums.
//! Called by `super` with checked operands.

use crate::tensor::{dot_lanes, max_lanes, pool, sum_lanes, Float, Tensor};
use crate::{with_dtype, Result};
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

/// `out[j] = f(src[j], t[j])` over one row, where the source is `x` or, when `x` is `None`, the
/// row `out` itself holds (in place: the same operations in the same order, so the same bits).
#[inline(always)]
fn zip_row<T: Float>(out: &mut [T], x: Option<&[T]>, t: &[T], f: impl Fn(T, T) -> T) {
    match x {
        Some(x) => out
            .iter_mut()
            .zip(x)
            .zip(t)
            .for_each(|((o, &v), &w)| *o = f(v, w)),
        None => out.iter_mut().zip(t).for_each(|(o, &w)| *o = f(*o, w)),
    }
}

/// `out[j] = f(j, src[j])` over one row, the source as in [`zip_row`].
#[inline(always)]
fn map_row<T: Float>(out: &mut [T], x: Option<&[T]>, f: impl Fn(usize, T) -> T) {
    match x {
        Some(x) => out
            .iter_mut()
            .zip(x)
            .enumerate()
            .for_each(|(j, (o, &v))| *o = f(j, v)),
        None => out.iter_mut().enumerate().for_each(|(j, o)| *o = f(j, *o)),
    }
}

/// `x + mask` for one row into `out` (`x` `None`: `out` holds the row), the mask given as
/// (buffer, row offset, stride along the row): stride 1 is a full mask row, stride 0 one value
/// for the whole row.
#[inline]
fn add_mask<T: Float>(out: &mut [T], x: Option<&[T]>, mask: Option<(&[T], usize, usize)>) {
    match mask {
        None => {
            if let Some(x) = x {
                out.copy_from_slice(x);
            }
        }
        Some((ms, off, 1)) => {
            let n = out.len();
            zip_row(out, x, &ms[off..off + n], |v, m| v + m);
        }
        Some((ms, off, 0)) => {
            let m = ms[off];
            map_row(out, x, |_, v| v + m);
        }
        Some((ms, off, st)) => map_row(out, x, |j, v| v + ms[off + j * st]),
    }
}

/// One row of softmax (or log-softmax) of `x + mask` into `out`; `x` is `None` when `out` holds
/// the row itself (in place; the same operations in the same order, so the same bits).
#[inline(always)]
fn softmax_row<T: Float>(
    out: &mut [T],
    x: Option<&[T]>,
    mask: Option<(&[T], usize, usize)>,
    log: bool,
) {
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
/// strides. When `x` is the only handle to its buffer the result is written over it (no new
/// buffer, one memory pass less: the attention scores, which no backward reads); else into a new
/// one. The values are the same either way.
pub(super) fn forward(
    mut x: Tensor,
    mask: Option<(&Tensor, &[usize])>,
    log: bool,
) -> Result<Tensor> {
    let n = x.shape()[x.rank() - 1];
    let mrows = mask.map(|(_, st)| mask_rows(x.shape(), st));
    let mask = mask.map(|(m, _)| m);
    let shape = x.shape().to_vec();
    if n == 0 {
        return Ok(x);
    }
    with_dtype!(x.dtype(), T => {
        let ms = mask.map(|m| m.as_slice::<T>()).transpose()?;
        let mk = |r: usize| match (&ms, &mrows) {
            (Some(ms), Some((offs, s))) => Some((*ms, offs[r], *s)),
            _ => None,
        };
        if let Some(xs) = x.as_mut_slice_if_unique::<T>() {
            let row = |(r, o): (usize, &mut [T])| {
                crate::ops::simd::run(#[inline(always)] || softmax_row(o, None, mk(r), log));
            };
            if xs.len() / n.max(1) >= PAR_ROWS {
                xs.par_chunks_mut(n).enumerate().for_each(row);
            } else {
                xs.chunks_mut(n).enumerate().for_each(row);
            }
            return Ok(x);
        }
        let xs = x.as_slice::<T>()?;
        let mut out = pool::take::<T>(xs.len());
        if let Some(rows) = xs.len().checked_div(n) {
            let row = |(r, (o, xr)): (usize, (&mut [T], &[T]))| {
                crate::ops::simd::run(#[inline(always)] || softmax_row(o, Some(xr), mk(r), log));
            };
            if rows >= PAR_ROWS {
                out.par_chunks_mut(n).zip(xs.par_chunks(n)).enumerate().for_each(row);
            } else {
                out.chunks_mut(n).zip(xs.chunks(n)).enumerate().for_each(row);
            }
        }
        Tensor::from_vec(out, &shape)
    })
}

/// dx of one row from its upstream gradient `g` and saved output `y`, into `o` (`g` `None`: `o`
/// holds the upstream gradient on entry, written over in place).
#[inline(always)]
fn grad_row<T: Float>(o: &mut [T], g: Option<&[T]>, y: &[T], log: bool) {
    let gs = g.unwrap_or(o);
    if log {
        // Masked entries (y = −∞) are constants: they pass no gradient and take none.
        // dx_j = g_j − p_j · Σ_{k unmasked} g_k for unmasked j, 0 for masked j.
        let s: T = log_grad_sum(gs, y);
        zip_row(o, g, y, |g, y| {
            if y == T::neg_infinity() {
                T::zero()
            } else {
                g - y.exp() * s
            }
        });
    } else {
        let s: T = dot_lanes(gs, y);
        zip_row(o, g, y, |g, y| y * (g - s));
    }
}

/// Σ of the upstream gradient over the unmasked entries of a log-softmax row.
#[inline(always)]
fn log_grad_sum<T: Float>(g: &[T], y: &[T]) -> T {
    g.iter()
        .zip(y)
        .filter(|(_, &y)| y != T::neg_infinity())
        .map(|(&g, _)| g)
        .sum()
}

/// Gradient wrt x from the saved output y, written over `g` when this is the only handle to its
/// buffer (else into a new one; the values are the same).
pub(super) fn backward(mut g: Tensor, y: &Tensor, log: bool) -> Result<Tensor> {
    let n = *y.shape().last().unwrap_or(&1);
    if n == 0 {
        return Ok(g);
    }
    let shape = g.shape().to_vec();
    with_dtype!(g.dtype(), T => {
        let ys = y.as_slice::<T>()?;
        let par = ys.len() / n >= PAR_ROWS;
        if let Some(gs) = g.as_mut_slice_if_unique::<T>() {
            let row = |(o, y): (&mut [T], &[T])| {
                crate::ops::simd::run(#[inline(always)] || grad_row(o, None, y, log));
            };
            if par {
                gs.par_chunks_mut(n).zip(ys.par_chunks(n)).for_each(row);
            } else {
                gs.chunks_mut(n).zip(ys.chunks(n)).for_each(row);
            }
            return Ok(g);
        }
        let gs = g.as_slice::<T>()?;
        let mut out = pool::take::<T>(gs.len());
        let row = |(o, (g, y)): (&mut [T], (&[T], &[T]))| {
            crate::ops::simd::run(#[inline(always)] || grad_row(o, Some(g), y, log));
        };
        if par {
            out.par_chunks_mut(n).zip(gs.par_chunks(n).zip(ys.par_chunks(n))).for_each(row);
        } else {
            out.chunks_mut(n).zip(gs.chunks(n).zip(ys.chunks(n))).for_each(row);
        }
        Tensor::from_vec(out, &shape)
    })
}
