//! Rotary position embedding, Hugging Face `rotate_half` convention (Llama, Mistral, Qwen2):
//!
//! ```text
//! y = x·cos + rotate_half(x)·sin,   rotate_half(x) = [−x₂, x₁]  (halves of d_head)
//! i.e. for i < h = d_head/2:
//!   y[i]   = x[i]·cos[i]     − x[i+h]·sin[i]
//!   y[i+h] = x[i+h]·cos[i+h] + x[i]·sin[i+h]
//! Backward (the transpose of that linear map):
//!   dx[i]   = g[i]·cos[i]     + g[i+h]·sin[i+h]
//!   dx[i+h] = g[i+h]·cos[i+h] − g[i]·sin[i]
//! ```
//!
//! x is `[batch, pos, n_heads, d_head]`; cos/sin are `[pos, d_head]` (shared by the batch) or
//! `[batch, pos, d_head]` (per-row positions, e.g. left padding). cos/sin are constants.

mod cpu;

use super::{common_device, no_kernel};
use crate::{with_dtype, Device, Result, Tensor};

/// Checks `x`, `cos`, `sin` (dtypes, shapes, one device); returns `[batch, pos, n_heads, d_head]`
/// and the device.
fn check(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<([usize; 4], Device)> {
    if x.rank() != 4 {
        crate::shape_bail!(
            "rope",
            "input must be [batch, pos, n_heads, d_head], got {:?}",
            x.shape()
        );
    }
    let [b, t, h, d] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    if d % 2 != 0 {
        crate::shape_bail!("rope", "d_head must be even, got {d}");
    }
    x.same_dtype("rope", cos)?;
    x.same_dtype("rope", sin)?;
    cos.same_shape("rope", sin)?;
    if cos.shape() != [t, d] && cos.shape() != [b, t, d] {
        crate::shape_bail!(
            "rope",
            "cos/sin must be [{t}, {d}] or [{b}, {t}, {d}] for input {:?}, got {:?}",
            x.shape(),
            cos.shape()
        );
    }
    Ok(([b, t, h, d], common_device("rope", [x, cos, sin])?))
}

/// Rotates `x` by the position angles in `cos`/`sin`.
pub fn forward(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    match check(x, cos, sin)? {
        (dims, Device::Cpu) => {
            with_dtype!(x.dtype(), T => cpu::apply::<T>(x, cos, sin, dims, false))
        }
        (_, d @ Device::Cuda(_)) => Err(no_kernel("rope", d)),
    }
}

/// Gradient wrt x.
pub fn backward(g: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    match check(g, cos, sin)? {
        (dims, Device::Cpu) => {
            with_dtype!(g.dtype(), T => cpu::apply::<T>(g, cos, sin, dims, true))
        }
        (_, d @ Device::Cuda(_)) => Err(no_kernel("rope backward", d)),
    }
}

/// HF-style cos/sin tables `[n_pos, d_head]` for positions `0..n_pos`: angle `p·θ^(−2i/d)`,
/// duplicated over the two halves. `inv_freq` overrides the frequencies (scaled RoPE variants).
pub fn cos_sin_tables(
    n_pos: usize,
    d_head: usize,
    theta: f64,
    inv_freq: Option<&[f64]>,
    dtype: crate::DType,
) -> Result<(Tensor, Tensor)> {
    let half = d_head / 2;
    let default: Vec<f64> = (0..half)
        .map(|i| 1.0 / theta.powf(2.0 * i as f64 / d_head as f64))
        .collect();
    let f = inv_freq.unwrap_or(&default);
    if f.len() != half {
        crate::shape_bail!(
            "rope",
            "{} inverse frequencies for d_head {d_head}",
            f.len()
        );
    }
    let mut c = Vec::with_capacity(n_pos * d_head);
    let mut s = Vec::with_capacity(n_pos * d_head);
    for p in 0..n_pos {
        for i in 0..d_head {
            let a = p as f64 * f[i % half];
            c.push(a.cos());
            s.push(a.sin());
        }
    }
    Ok((
        Tensor::from_f64(&c, &[n_pos, d_head], dtype)?,
        Tensor::from_f64(&s, &[n_pos, d_head], dtype)?,
    ))
}
