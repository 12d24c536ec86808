//! Softmax and log-softmax along the last axis, with an optional additive mask (padding or causal)
//! that broadcasts to the input (e.g. `[batch, 1, 1, key_pos]` or `[1, 1, query_pos, key_pos]` for
//! scores `[batch, n_heads, query_pos, key_pos]`). Masked entries hold a large negative value or -inf;
//! a row that is masked everywhere gives zeros (softmax) rather than NaN.
//!
//! Backward (y = softmax(x + m)):   dx = y ⊙ (g − Σ_j g_j y_j)
//! Backward (y = log_softmax):       dx = g − exp(y) · Σ_j g_j  (masked entries: 0, excluded from Σ)
//! The mask is a constant: it gets no gradient.

mod cpu;

use super::{common_device, no_kernel};
use crate::tensor::shape::broadcast_strides;
use crate::{Device, Result, Tensor};

/// `softmax(x + mask)` (or its log) along the last axis.
pub fn forward(x: &Tensor, mask: Option<&Tensor>, log: bool) -> Result<Tensor> {
    forward_owned(x.clone(), mask, log)
}

/// [`forward`] of an owned `x`: on the CPU the result is written over `x`'s buffer when `x` is
/// its only handle (the attention scores, which nothing else reads), saving a buffer and a
/// memory pass. The values are the same as [`forward`]'s.
pub fn forward_owned(x: Tensor, mask: Option<&Tensor>, log: bool) -> Result<Tensor> {
    let op = if log { "log_softmax" } else { "softmax" };
    if x.rank() == 0 {
        crate::shape_bail!(op, "needs at least one axis, got a scalar");
    }
    let strides = match mask {
        Some(m) => {
            x.same_dtype(op, m)?;
            Some(broadcast_strides("softmax mask", m.shape(), x.shape())?)
        }
        None => None,
    };
    let mask = mask.zip(strides.as_deref());
    match common_device(op, std::iter::once(&x).chain(mask.map(|m| m.0)))? {
        Device::Cpu => cpu::forward(x, mask, log),
        d @ Device::Cuda(_) => Err(no_kernel(op, d)),
    }
}

/// Gradient wrt x from the saved output y.
pub fn backward(g: &Tensor, y: &Tensor, log: bool) -> Result<Tensor> {
    backward_owned(g.clone(), y, log)
}

/// [`backward`] of an owned upstream gradient: on the CPU dx is written over `g`'s buffer when
/// `g` is its only handle. The values are the same as [`backward`]'s.
pub fn backward_owned(g: Tensor, y: &Tensor, log: bool) -> Result<Tensor> {
    let op = if log {
        "log_softmax backward"
    } else {
        "softmax backward"
    };
    g.same_shape(op, y)?;
    g.same_dtype(op, y)?;
    match common_device(op, [&g, y])? {
        Device::Cpu => cpu::backward(g, y, log),
        d @ Device::Cuda(_) => Err(no_kernel(op, d)),
    }
}
