//! CPU kernels of the norm family: one fused pass per row (rayon over rows), compiled
//! for the CPU's SIMD level ([`crate::ops::simd`]). Called by `super`
//! with checked operands.

use crate::tensor::{pool, sum_by_lanes, sum_lanes, Float, Tensor};
use crate::{with_dtype, Result};
use num_traits::{One, Zero};
use rayon::prelude::*;

const PAR_ROWS: usize = 32;

/// Elements per block of rows in the weight and bias gradients (fixed: the summation order does
/// not depend on the number of threads).
const WB_BLOCK: usize = 1 << 14;

/// Returns `(y, mean, rstd)`; `mean` is `None` for RMSNorm (`rms = true`); `c` is the last axis.
#[allow(clippy::type_complexity)]
pub(super) fn forward(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    eps: f64,
    rms: bool,
    c: usize,
) -> Result<(Tensor, Option<Tensor>, Tensor)> {
    let rows = x.numel() / c.max(1);
    let lead = &x.shape()[..x.rank() - 1];
    with_dtype!(x.dtype(), T => {
        let xs = x.as_slice::<T>()?;
        let ws = w.as_slice::<T>()?;
        let bs = b.map(|b| b.as_slice::<T>()).transpose()?;
        let mut y = pool::take::<T>(xs.len());
        let mut mean = vec![T::zero(); rows];
        let mut rstd = vec![T::zero(); rows];
        let eps = T::from_f64(eps);
        let inv_c = T::one() / T::from_f64(c as f64);
        let row = |((yr, xr), (mu, rs)): ((&mut [T], &[T]), (&mut T, &mut T))| crate::ops::simd::run(#[inline(always)] || {
            let m = if rms { T::zero() } else { sum_lanes(xr) * inv_c };
            let var = sum_by_lanes(xr.len(), |j| (xr[j] - m) * (xr[j] - m)) * inv_c;
            let r = (var + eps).sqrt().recip();
            for (j, (o, &v)) in yr.iter_mut().zip(xr).enumerate() {
                let n = (v - m) * r;
                *o = n * ws[j] + bs.map_or(T::zero(), |b| b[j]);
            }
            *mu = m;
            *rs = r;
        });
        if c > 0 {
            if rows >= PAR_ROWS {
                y.par_chunks_mut(c).zip(xs.par_chunks(c)).zip(mean.par_iter_mut().zip(rstd.par_iter_mut())).for_each(row);
            } else {
                y.chunks_mut(c).zip(xs.chunks(c)).zip(mean.iter_mut().zip(rstd.iter_mut())).for_each(row);
            }
        }
        let mean = if rms { None } else { Some(Tensor::from_vec(mean, lead)?) };
        Ok((Tensor::from_vec(y, x.shape())?, mean, Tensor::from_vec(rstd, lead)?))
    })
}

/// Gradients `[dx, dw, db]`, each computed only if `need` says so (`db` never for RMSNorm).
pub(super) fn backward(
    g: &Tensor,
    x: &Tensor,
    w: &Tensor,
    mean: Option<&Tensor>,
    rstd: &Tensor,
    need: [bool; 3],
) -> Result<[Option<Tensor>; 3]> {
    let c = *x.shape().last().unwrap_or(&0);
    let rows = x.numel() / c.max(1);
    with_dtype!(x.dtype(), T => {
        let gs = g.as_slice::<T>()?;
        let xs = x.as_slice::<T>()?;
        let ws = w.as_slice::<T>()?;
        let ms = mean.map(|m| m.as_slice::<T>()).transpose()?;
        let rs = rstd.as_slice::<T>()?;
        let inv_c = T::one() / T::from_f64(c.max(1) as f64);
        let mut dx = None;
        if need[0] && c > 0 {
            let mut out = pool::take::<T>(xs.len());
            let row = |(r, o): (usize, &mut [T])| crate::ops::simd::run(#[inline(always)] || {
                // term 1: mean(dn), term 2: mean(dn·n)
                let (gr, xr) = (&gs[r * c..(r + 1) * c], &xs[r * c..(r + 1) * c]);
                let (mu, rr) = (ms.map_or(T::zero(), |m| m[r]), rs[r]);
                let s1 = sum_by_lanes(c, |j| gr[j] * ws[j]);
                let s2 = sum_by_lanes(c, |j| gr[j] * ws[j] * ((xr[j] - mu) * rr));
                let (s1, s2) = (if ms.is_some() { s1 * inv_c } else { T::zero() }, s2 * inv_c);
                for (j, o) in o.iter_mut().enumerate() {
                    let dn = gr[j] * ws[j];
                    *o = rr * (dn - s1 - (xr[j] - mu) * rr * s2);
                }
            });
            if rows >= PAR_ROWS {
                out.par_chunks_mut(c).enumerate().for_each(row);
            } else {
                out.chunks_mut(c).enumerate().for_each(row);
            }
            dx = Some(Tensor::from_vec(out, x.shape())?);
        }
        let mut dw = None;
        let mut db = None;
        if need[1] || need[2] {
            // Column sums over rows, in fixed blocks of rows (each summed in row order, then the
            // blocks in order): parallel, and the same result for any number of threads.
            let rows_per_block = (WB_BLOCK / c.max(1)).max(1);
            let block = |(bi, gb): (usize, &[T])| {
                let mut w_acc = vec![T::zero(); c];
                let mut b_acc = vec![T::zero(); c];
                crate::ops::simd::run(#[inline(always)] || {
                    for (k, gr) in gb.chunks_exact(c).enumerate() {
                        let r = bi * rows_per_block + k;
                        let xr = &xs[r * c..(r + 1) * c];
                        let (mu, rr) = (ms.map_or(T::zero(), |m| m[r]), rs[r]);
                        for (((wa, ba), &gv), &xv) in w_acc.iter_mut().zip(b_acc.iter_mut()).zip(gr).zip(xr) {
                            *wa += gv * ((xv - mu) * rr);
                            *ba += gv;
                        }
                    }
                });
                (w_acc, b_acc)
            };
            let partials: Vec<(Vec<T>, Vec<T>)> = if c == 0 {
                Vec::new()
            } else if rows >= PAR_ROWS {
                gs.par_chunks(rows_per_block * c).enumerate().map(block).collect()
            } else {
                gs.chunks(rows_per_block * c).enumerate().map(block).collect()
            };
            let mut w_acc = vec![T::zero(); c];
            let mut b_acc = vec![T::zero(); c];
            for (pw, pb) in &partials {
                w_acc.iter_mut().zip(pw).for_each(|(a, &v)| *a += v);
                b_acc.iter_mut().zip(pb).for_each(|(a, &v)| *a += v);
            }
            if need[1] {
                dw = Some(Tensor::from_vec(w_acc, &[c])?);
            }
            if need[2] {
                db = Some(Tensor::from_vec(b_acc, &[c])?);
            }
        }
        Ok([dx, dw, db])
    })
}
