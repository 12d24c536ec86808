//! The probe's device-side reductions: running f64 sums over the rows of a chunk, updated in
//! place (no temporaries, so a path of many chunks allocates one accumulator per boundary), and
//! the per-row dot product over the last axis. Each is a per-device kernel: the CPU loops here;
//! another device adds its arm.

use crate::ops::elementwise::{binary_forward, Binary};
use crate::ops::reduce::{sum_forward, ReduceKind};
use crate::tensor::Float;
use crate::{with_dtype, DType, Device, Error, Result, Tensor};

/// `Σ_c t[r, ..., c] · d[..., c]`: each row of `t` `[rows, ...]` times `d` (one row's shape),
/// summed over the last axis, in f64, on `t`'s device: `[rows, ...]` without the last axis.
pub fn row_dot_last(t: &Tensor, d: &Tensor) -> Result<Tensor> {
    let mut shape = vec![1];
    shape.extend_from_slice(d.shape());
    let d = d.to_dtype(DType::F64)?.reshape(&shape)?;
    let prod = binary_forward(&t.to_dtype(DType::F64)?, &d, Binary::Mul)?;
    sum_forward(&prod, &[t.rank() - 1], false, ReduceKind::Sum)
}

/// The accumulator for rows like `t`'s (zeros of one row, created on first use), as a mutable f64
/// slice, and the row length.
fn acc_slot<'a>(acc: &'a mut Option<Tensor>, t: &Tensor) -> Result<(&'a mut [f64], usize)> {
    let rows = t.shape().first().copied().unwrap_or(0);
    let per = t.numel() / rows.max(1);
    if acc.is_none() {
        *acc = Some(Tensor::zeros_on(&t.shape()[1..], DType::F64, t.device())?);
    }
    let a = acc.as_mut().expect("set above");
    if a.numel() != per || a.dtype() != DType::F64 {
        return Err(Error::Mismatch {
            what: "accumulator".into(),
            detail: format!("holds {:?}, the rows have {:?}", a.shape(), &t.shape()[1..]),
        });
    }
    let dst = a
        .as_mut_slice_if_unique::<f64>()
        .ok_or_else(|| Error::Internal("accumulator is shared".into()))?;
    Ok((dst, per))
}

fn cpu_only(op: &'static str, t: &Tensor) -> Result<()> {
    match t.device() {
        Device::Cpu => Ok(()),
        d => Err(crate::ops::no_kernel(op, d)),
    }
}

/// `acc += Σ_r w_r · t[r]` (rows in order, f64) in place on the device.
pub fn add_weighted(acc: &mut Option<Tensor>, t: &Tensor, w: &[f64]) -> Result<()> {
    cpu_only("add_weighted", t)?;
    let rows = t.shape().first().copied().unwrap_or(0);
    if rows != w.len() {
        return Err(Error::Mismatch {
            what: "add_weighted".into(),
            detail: format!("{} weights for {rows} rows", w.len()),
        });
    }
    let (dst, per) = acc_slot(acc, t)?;
    with_dtype!(t.dtype(), T => {
        let src = t.as_slice::<T>()?;
        for (r, &wr) in w.iter().enumerate() {
            for (d, x) in dst.iter_mut().zip(&src[r * per..(r + 1) * per]) {
                *d += wr * Float::to_f64(*x);
            }
        }
    });
    Ok(())
}

/// `acc += Σ_r f(t[r])` elementwise (rows in order, f64) in place on the device.
pub fn add_rows_map(acc: &mut Option<Tensor>, t: &Tensor, f: impl Fn(f64) -> f64) -> Result<()> {
    cpu_only("add_rows_map", t)?;
    let rows = t.shape().first().copied().unwrap_or(0);
    let (dst, per) = acc_slot(acc, t)?;
    with_dtype!(t.dtype(), T => {
        let src = t.as_slice::<T>()?;
        for r in 0..rows {
            for (d, x) in dst.iter_mut().zip(&src[r * per..(r + 1) * per]) {
                *d += f(Float::to_f64(*x));
            }
        }
    });
    Ok(())
}

/// Conductance over consecutive rows: `acc += Σ_k g_k ⊙ (y_{k+1} − y_k)` in f64, in place on the
/// device, continuing from `carry` (the previous chunk's last y and g, f64) and leaving this
/// chunk's last row there.
pub fn add_conductance(
    acc: &mut Option<Tensor>,
    carry: &mut Option<(Vec<f64>, Vec<f64>)>,
    y: &Tensor,
    g: &Tensor,
) -> Result<()> {
    cpu_only("add_conductance", y)?;
    y.same_shape("add_conductance", g)?;
    let rows = y.shape().first().copied().unwrap_or(0);
    if rows == 0 {
        return Ok(());
    }
    let (dst, per) = acc_slot(acc, y)?;
    with_dtype!(y.dtype(), T => {
        let (ys, gs) = (y.as_slice::<T>()?, g.as_slice::<T>()?);
        let row = |s: &[T], k: usize| -> Vec<f64> {
            s[k * per..(k + 1) * per].iter().map(|v| Float::to_f64(*v)).collect()
        };
        if let Some((py, pg)) = carry.as_ref() {
            for i in 0..per {
                dst[i] += pg[i] * (Float::to_f64(ys[i]) - py[i]);
            }
        }
        for k in 1..rows {
            let (yk, yp, gp) = (&ys[k * per..], &ys[(k - 1) * per..], &gs[(k - 1) * per..]);
            for i in 0..per {
                let (yn, yo) = (Float::to_f64(yk[i]), Float::to_f64(yp[i]));
                dst[i] += Float::to_f64(gp[i]) * (yn - yo);
            }
        }
        *carry = Some((row(ys, rows - 1), row(gs, rows - 1)));
    });
    Ok(())
}

/// The final value of an accumulator on the host, or an error if no chunk ran.
pub fn finish_acc(acc: Option<Tensor>) -> Result<Vec<f64>> {
    acc.ok_or_else(|| Error::Internal("no rows were accumulated".into()))?
        .to_vec_f64()
}
