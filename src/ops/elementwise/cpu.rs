//! CPU kernels of the elementwise family: each unary's `f` and `df` side by side, loops compiled for
//! the CPU's SIMD level ([`crate::ops::simd`]), large tensors split over rayon; broadcasting and iteration are ndarray's.
//! Called by `super` with checked operands.

use super::{Binary, Unary};
use crate::tensor::{pool, Float, Tensor};
use crate::{with_dtype, Result};
use ndarray::{IxDyn, Zip};
use num_traits::Zero;
use rayon::prelude::*;

mod sum;
pub(super) use sum::sum_to_shape;

/// Element count above which maps run in parallel.
const PAR_MIN: usize = 1 << 15;
const CHUNK: usize = 1 << 14;

/// √(2/π), for the tanh form of GELU.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// 1/√(2π), for the derivative of the erf form of GELU.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

impl Unary {
    #[inline(always)]
    fn f<T: Float>(&self, x: T) -> T {
        let c = T::from_f64;
        match *self {
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Sqrt => x.sqrt(),
            Unary::Rsqrt => x.sqrt().recip(),
            Unary::Tanh => x.tanh(),
            Unary::Powf(p) => x.powf(c(p)),
            Unary::GeluErf => {
                c(0.5) * x * (T::one() + (x * c(std::f64::consts::FRAC_1_SQRT_2)).erf())
            }
            Unary::GeluTanh => {
                let u = c(SQRT_2_OVER_PI) * (x + c(0.044715) * x * x * x);
                c(0.5) * x * (T::one() + u.ftanh())
            }
            Unary::Silu => x / (T::one() + (-x).fexp()),
            Unary::Relu => x.max(T::zero()),
            Unary::Affine { mul, add } => c(mul) * x + c(add),
        }
    }

    /// dy/dx from the saved value `s` (x or y, see [`Unary::saves_output`]).
    #[inline(always)]
    fn df<T: Float>(&self, s: T) -> T {
        let c = T::from_f64;
        match *self {
            Unary::Exp => s,                             // d e^x = y
            Unary::Log => s.recip(),                     // d ln x = 1/x
            Unary::Sqrt => c(0.5) / s,                   // d √x = 1/(2y)
            Unary::Rsqrt => c(-0.5) * s * s * s,         // d x^-½ = -½ y³
            Unary::Tanh => T::one() - s * s,             // d tanh = 1 - y²
            Unary::Powf(p) => c(p) * s.powf(c(p - 1.0)), // d x^p = p x^(p-1)
            Unary::GeluErf => {
                // Φ(x) + x·φ(x)
                let cdf = c(0.5) * (T::one() + (s * c(std::f64::consts::FRAC_1_SQRT_2)).erf());
                cdf + s * c(INV_SQRT_2PI) * (c(-0.5) * s * s).fexp()
            }
            Unary::GeluTanh => {
                // ½(1+t) + ½x(1-t²)·√(2/π)(1 + 3·0.044715x²), t = tanh(u)
                let u = c(SQRT_2_OVER_PI) * (s + c(0.044715) * s * s * s);
                let t = u.ftanh();
                let du = c(SQRT_2_OVER_PI) * (T::one() + c(3.0 * 0.044715) * s * s);
                c(0.5) * (T::one() + t) + c(0.5) * s * (T::one() - t * t) * du
            }
            Unary::Silu => {
                // σ(x)(1 + x(1-σ(x)))
                let sg = T::one() / (T::one() + (-s).fexp());
                sg * (T::one() + s * (T::one() - sg))
            }
            Unary::Relu => {
                if s > T::zero() {
                    T::one()
                } else {
                    T::zero()
                }
            }
            Unary::Affine { mul, .. } => c(mul),
        }
    }
}

/// Runs `$body` with `$k` bound to `$op` as a constant of its variant, one arm per variant, so
/// that `$k.f(..)` / `$k.df(..)` inline without a per-element `match`.
macro_rules! specialise {
    ($op:expr, $k:ident => $body:expr) => {
        match $op {
            Unary::Exp => {
                const $k: Unary = Unary::Exp;
                $body
            }
            Unary::Log => {
                const $k: Unary = Unary::Log;
                $body
            }
            Unary::Sqrt => {
                const $k: Unary = Unary::Sqrt;
                $body
            }
            Unary::Rsqrt => {
                const $k: Unary = Unary::Rsqrt;
                $body
            }
            Unary::Tanh => {
                const $k: Unary = Unary::Tanh;
                $body
            }
            Unary::GeluErf => {
                const $k: Unary = Unary::GeluErf;
                $body
            }
            Unary::GeluTanh => {
                const $k: Unary = Unary::GeluTanh;
                $body
            }
            Unary::Silu => {
                const $k: Unary = Unary::Silu;
                $body
            }
            Unary::Relu => {
                const $k: Unary = Unary::Relu;
                $body
            }
            other @ (Unary::Powf(_) | Unary::Affine { .. }) => {
                #[allow(non_snake_case)]
                let $k = other;
                $body
            }
        }
    };
}

/// Runs `body` at the CPU's SIMD level ([`crate::ops::simd`]).
#[inline(always)]
fn simd(body: impl FnOnce()) {
    crate::ops::simd::run(body)
}

fn zip_chunk<T: Float>(o: &mut [T], a: &[T], b: &[T], f: &impl Fn(T, T) -> T) {
    simd(
        #[inline(always)]
        || {
            o.iter_mut()
                .zip(a.iter().zip(b))
                .for_each(|(o, (&a, &b))| *o = f(a, b))
        },
    )
}

fn map_chunk<T: Float>(o: &mut [T], a: &[T], f: &impl Fn(T) -> T) {
    simd(
        #[inline(always)]
        || o.iter_mut().zip(a).for_each(|(o, &a)| *o = f(a)),
    )
}

/// Applies `f` to every element pair of two equal-length slices into `out`, in parallel when big.
fn zip_map<T: Float>(out: &mut [T], a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) {
    if out.len() >= PAR_MIN {
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(o, (a, b))| zip_chunk(o, a, b, &f));
    } else {
        zip_chunk(out, a, b, &f);
    }
}

fn map<T: Float>(out: &mut [T], a: &[T], f: impl Fn(T) -> T + Sync) {
    if out.len() >= PAR_MIN {
        out.par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK))
            .for_each(|(o, a)| map_chunk(o, a, &f));
    } else {
        map_chunk(out, a, &f);
    }
}

/// `y = f(x)`.
pub(super) fn unary_forward(x: &Tensor, op: Unary) -> Result<Tensor> {
    with_dtype!(x.dtype(), T => {
        let mut out = pool::take::<T>(x.numel());
        let xs = x.as_slice::<T>()?;
        // One loop per variant (the match is outside the loop), so each loop is specialised.
        specialise!(op, K => map(&mut out, xs, #[inline(always)] |v| K.f(v)));
        Tensor::from_vec(out, x.shape())
    })
}

/// `dx = g · f'(saved)`; `saved` is x or y as [`Unary::saves_output`] says (ignored for affine).
pub(super) fn unary_backward(g: &Tensor, saved: Option<&Tensor>, op: Unary) -> Result<Tensor> {
    with_dtype!(g.dtype(), T => {
        let mut out = pool::take::<T>(g.numel());
        let gs = g.as_slice::<T>()?;
        match saved {
            Some(s) => {
                let ss = s.as_slice::<T>()?;
                specialise!(op, K => zip_map(&mut out, gs, ss, #[inline(always)] |g, s| g * K.df(s)));
            }
            None => map(&mut out, gs, |g| g * op.df(T::zero())),
        }
        Tensor::from_vec(out, g.shape())
    })
}

/// [`unary_backward`] into `g`'s own buffer when `g` is its only owner and the rule reads a saved
/// value (else as [`unary_backward`]).
pub(super) fn unary_backward_owned(
    mut g: Tensor,
    saved: Option<&Tensor>,
    op: Unary,
) -> Result<Tensor> {
    if let Some(s) = saved {
        with_dtype!(g.dtype(), T => {
            let ss = s.as_slice::<T>()?;
            if let Some(gs) = g.as_mut_slice_if_unique::<T>() {
                specialise!(op, K => zip_in_place(gs, ss, #[inline(always)] |g, s| g * K.df(s)));
                return Ok(g);
            }
        });
    }
    unary_backward(&g, saved, op)
}

/// `o[i] = f(o[i], b[i])` in place, in parallel when big.
fn zip_in_place<T: Float>(o: &mut [T], b: &[T], f: impl Fn(T, T) -> T + Sync) {
    let chunk = |(o, b): (&mut [T], &[T])| {
        simd(
            #[inline(always)]
            || o.iter_mut().zip(b).for_each(|(o, &b)| *o = f(*o, b)),
        )
    };
    if o.len() >= PAR_MIN {
        o.par_chunks_mut(CHUNK)
            .zip(b.par_chunks(CHUNK))
            .for_each(chunk);
    } else {
        chunk((o, b));
    }
}

/// Elements per parallel task for loops over whole rows of `m` elements: as many rows as fit
/// in [`CHUNK`], at least one.
fn row_task(m: usize) -> usize {
    m * (CHUNK / m).max(1)
}

/// Applies `f` over the broadcast of `a` and `b` (shape `out_shape`).
fn broadcast_map<T: Float>(
    a: &Tensor,
    b: &Tensor,
    out_shape: &[usize],
    f: impl Fn(T, T) -> T + Sync + Send,
) -> Result<Tensor> {
    let n: usize = out_shape.iter().product();
    let mut out = pool::take::<T>(n);
    let suffix =
        |s: &[usize]| s.len() <= out_shape.len() && s == &out_shape[out_shape.len() - s.len()..];
    if a.shape() == out_shape && b.shape() == out_shape {
        zip_map(&mut out, a.as_slice()?, b.as_slice()?, f);
    } else if a.shape() == out_shape && suffix(b.shape()) && b.numel() > 0 {
        // Row-wise: b repeats every b.numel() elements (a bias over the last axes).
        let (av, bv, m) = (a.as_slice::<T>()?, b.as_slice::<T>()?, b.numel());
        let row = |(o, x): (&mut [T], &[T])| zip_chunk(o, x, bv, &f);
        if n >= PAR_MIN {
            let rows = row_task(m);
            out.par_chunks_mut(rows)
                .zip(av.par_chunks(rows))
                .for_each(|(o, x)| o.chunks_mut(m).zip(x.chunks(m)).for_each(row));
        } else {
            out.chunks_mut(m).zip(av.chunks(m)).for_each(row);
        }
    } else {
        let av = a.view::<T>()?;
        let bv = b.view::<T>()?;
        let sh = IxDyn(out_shape);
        let (Some(av), Some(bv)) = (av.broadcast(sh.clone()), bv.broadcast(sh.clone())) else {
            crate::shape_bail!(
                "broadcast",
                "{:?} and {:?} do not broadcast to {out_shape:?}",
                a.shape(),
                b.shape()
            );
        };
        let mut ov = ndarray::ArrayViewMutD::from_shape(sh, &mut out)
            .map_err(|e| crate::Error::Internal(format!("broadcast to {out_shape:?}: {e}")))?;
        let z = Zip::from(&mut ov).and(&av).and(&bv);
        if n >= PAR_MIN {
            z.par_for_each(|o, &x, &y| *o = f(x, y));
        } else {
            z.for_each(|o, &x, &y| *o = f(x, y));
        }
    }
    Tensor::from_vec(out, out_shape)
}

/// `a ∘ b` with numpy broadcasting to `out_shape`.
pub(super) fn binary_forward(
    a: &Tensor,
    b: &Tensor,
    out_shape: &[usize],
    op: Binary,
) -> Result<Tensor> {
    // One loop per operation (the match is outside the loop), so each loop vectorises.
    with_dtype!(a.dtype(), T => match op {
        Binary::Add => broadcast_map::<T>(a, b, out_shape, #[inline(always)] |x, y| x + y),
        Binary::Sub => broadcast_map::<T>(a, b, out_shape, #[inline(always)] |x, y| x - y),
        Binary::Mul => broadcast_map::<T>(a, b, out_shape, #[inline(always)] |x, y| x * y),
        Binary::Div => broadcast_map::<T>(a, b, out_shape, #[inline(always)] |x, y| x / y),
    })
}

/// Gradients of `a ∘ b` with respect to a and b (each only if `need` says so).
pub(super) fn binary_backward(
    g: &Tensor,
    a: Option<&Tensor>,
    b: Option<&Tensor>,
    a_shape: &[usize],
    b_shape: &[usize],
    op: Binary,
    need: [bool; 2],
) -> Result<[Option<Tensor>; 2]> {
    let out_shape = g.shape().to_vec();
    let missing =
        || crate::Error::Autodiff(format!("{} backward: saved operand missing", op.name()));
    let mut da = None;
    let mut db = None;
    with_dtype!(g.dtype(), T => {
        if need[0] {
            da = Some(match op {
                Binary::Add | Binary::Sub => sum_to_shape(g, a_shape)?,
                // d(a·b)/da = b ; d(a/b)/da = 1/b
                Binary::Mul => sum_to_shape(&broadcast_map::<T>(g, b.ok_or_else(missing)?, &out_shape, |g, b| g * b)?, a_shape)?,
                Binary::Div => sum_to_shape(&broadcast_map::<T>(g, b.ok_or_else(missing)?, &out_shape, |g, b| g / b)?, a_shape)?,
            });
        }
        if need[1] {
            db = Some(match op {
                Binary::Add => sum_to_shape(g, b_shape)?,
                Binary::Sub => unary_forward(&sum_to_shape(g, b_shape)?, Unary::Affine { mul: -1.0, add: 0.0 })?,
                Binary::Mul => sum_to_shape(&broadcast_map::<T>(g, a.ok_or_else(missing)?, &out_shape, |g, a| g * a)?, b_shape)?,
                // d(a/b)/db = -a/b² : computed as -(g·a)/b²
                Binary::Div => {
                    let ga = broadcast_map::<T>(g, a.ok_or_else(missing)?, &out_shape, |g, a| g * a)?;
                    sum_to_shape(&broadcast_map::<T>(&ga, b.ok_or_else(missing)?, &out_shape, |ga, b| -ga / (b * b))?, b_shape)?
                }
            });
        }
    });
    Ok([da, db])
}

/// `y[r, :] += b` for every row `r` of `b.numel()` elements, if `y` owns its buffer (checked
/// operands: same dtype, `b` the trailing shape of `y`).
pub(super) fn add_rows_in_place(y: &mut Tensor, b: &Tensor) -> bool {
    with_dtype!(y.dtype(), T => {
        let Ok(bv) = b.as_slice::<T>() else { return false };
        let m = bv.len();
        let Some(dst) = y.as_mut_slice_if_unique::<T>() else { return false };
        let row = |r: &mut [T]| simd(#[inline(always)] || r.iter_mut().zip(bv).for_each(|(o, &v)| *o += v));
        if dst.len() >= PAR_MIN {
            dst.par_chunks_mut(row_task(m)).for_each(|c| c.chunks_mut(m).for_each(row));
        } else {
            dst.chunks_mut(m).for_each(row);
        }
        true
    })
}

/// `acc += g` in place when `acc` owns its buffer, else a new sum. Shapes must match.
pub(super) fn accumulate(acc: Tensor, g: &Tensor) -> Result<Tensor> {
    let mut acc = acc;
    with_dtype!(g.dtype(), T => {
        let gs = g.as_slice::<T>()?;
        if !acc.same_storage(g) {
            if let Some(dst) = acc.as_mut_slice_if_unique::<T>() {
                if dst.len() >= PAR_MIN {
                    dst.par_chunks_mut(CHUNK).zip(gs.par_chunks(CHUNK)).for_each(|(d, s)| d.iter_mut().zip(s).for_each(|(d, &s)| *d += s));
                } else {
                    dst.iter_mut().zip(gs).for_each(|(d, &s)| *d += s);
                }
                return Ok(acc);
            }
        }
        let shape = acc.shape().to_vec();
        binary_forward(&acc, g, &shape, Binary::Add)
    })
}
