//! LayerNorm and RMSNorm over the last axis, fused: the forward saves per-row `mean` and `rstd`, and
//! the backward is one pass per row (llm.c `layernorm_backward`, doc `docs/ops/layernorm.md`).
//!
//! LayerNorm:  n = (x − μ)·r, y = n·w + b, r = 1/√(var + ε) (biased variance, as PyTorch)
//!   dn = g·w;  dx = r·(dn − mean(dn) − n·mean(dn·n));  dw = Σ_rows g·n;  db = Σ_rows g
//! RMSNorm (HF Llama): n = x·r, r = 1/√(mean(x²) + ε), y = n·w
//!   dn = g·w;  dx = r·(dn − n·mean(dn·n));  dw = Σ_rows g·n

mod cpu;

use super::{common_device, no_kernel};
use crate::{Device, Result, Tensor};

/// Checks the operands of a norm; returns the size of the normalised (last) axis.
fn check(op: &'static str, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<usize> {
    if x.rank() == 0 {
        crate::shape_bail!(op, "input must have at least one axis");
    }
    let c = x.shape()[x.rank() - 1];
    x.same_dtype(op, w)?;
    if w.shape() != [c] {
        crate::shape_bail!(
            op,
            "weight shape {:?} does not match the last axis of input {:?}",
            w.shape(),
            x.shape()
        );
    }
    if let Some(b) = b {
        x.same_dtype(op, b)?;
        if b.shape() != [c] {
            crate::shape_bail!(
                op,
                "bias shape {:?} does not match the last axis of input {:?}",
                b.shape(),
                x.shape()
            );
        }
    }
    Ok(c)
}

/// Returns `(y, mean, rstd)`; `mean` is `None` for RMSNorm (`rms = true`). `mean` and `rstd` have
/// the input's shape without its last axis.
#[allow(clippy::type_complexity)]
pub fn forward(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    eps: f64,
    rms: bool,
) -> Result<(Tensor, Option<Tensor>, Tensor)> {
    let op = if rms { "rms_norm" } else { "layer_norm" };
    let c = check(op, x, w, b)?;
    match common_device(op, [x, w].into_iter().chain(b))? {
        Device::Cpu => cpu::forward(x, w, b, eps, rms, c),
        d @ Device::Cuda(_) => Err(no_kernel(op, d)),
    }
}

/// Gradients `[dx, dw, db]`, each computed only if `need` says so (`db` never for RMSNorm).
pub fn backward(
    g: &Tensor,
    x: &Tensor,
    w: &Tensor,
    mean: Option<&Tensor>,
    rstd: &Tensor,
    need: [bool; 3],
) -> Result<[Option<Tensor>; 3]> {
    let op = if mean.is_some() {
        "layer_norm backward"
    } else {
        "rms_norm backward"
    };
    check(op, x, w, None)?;
    g.same_shape(op, x)?;
    g.same_dtype(op, x)?;
    let rows = &x.shape()[..x.rank() - 1];
    for s in mean.into_iter().chain([rstd]) {
        x.same_dtype(op, s)?;
        if s.shape() != rows {
            crate::shape_bail!(
                op,
                "saved statistics {:?} do not fit input {:?}",
                s.shape(),
                x.shape()
            );
        }
    }
    match common_device(op, [g, x, w, rstd].into_iter().chain(mean))? {
        Device::Cpu => cpu::backward(g, x, w, mean, rstd, need),
        d @ Device::Cuda(_) => Err(no_kernel(op, d)),
    }
}
