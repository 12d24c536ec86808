//! Elementwise ops: unary maps (exp, log, sqrt, rsqrt, tanh, pow, gelu ×2, silu, relu, affine) and
//! binary arithmetic with numpy broadcasting, plus the in-place accumulation the reverse sweep
//! uses. Each function checks its operands (dtype, broadcast shapes, one device) and dispatches on
//! their device; the CPU kernels, with each unary's `f` and derivative `df` side by side, are in
//! `cpu.rs`.
//!
//! Backward: d f(x) = f'(x)·g from the saved x or y ([`Unary::saves_output`]);
//! d(a ∘ b) sums g·∂(a ∘ b) over the broadcast axes back to each operand's shape.

mod cpu;

use super::{common_device, no_kernel};
use crate::tensor::shape::broadcast_shape;
use crate::{Device, Result, Tensor};

/// Unary elementwise functions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Tanh,
    /// `x^p` for a constant exponent.
    Powf(f64),
    /// `x·Φ(x)` with the exact normal CDF (`gelu` in HF BERT).
    GeluErf,
    /// The tanh approximation (`gelu_new` / `gelu_pytorch_tanh`).
    GeluTanh,
    /// `x·σ(x)` (Llama's SwiGLU gate).
    Silu,
    Relu,
    /// `mul·x + add`: the scalar ops.
    Affine {
        mul: f64,
        add: f64,
    },
}

impl Unary {
    pub fn name(&self) -> &'static str {
        match self {
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sqrt => "sqrt",
            Unary::Rsqrt => "rsqrt",
            Unary::Tanh => "tanh",
            Unary::Powf(_) => "powf",
            Unary::GeluErf => "gelu_erf",
            Unary::GeluTanh => "gelu_tanh",
            Unary::Silu => "silu",
            Unary::Relu => "relu",
            Unary::Affine { .. } => "affine",
        }
    }

    /// Whether the backward reads the output y (else it reads the input x; affine reads nothing).
    pub fn saves_output(&self) -> bool {
        matches!(self, Unary::Exp | Unary::Sqrt | Unary::Rsqrt | Unary::Tanh)
    }

    pub fn saves_nothing(&self) -> bool {
        matches!(self, Unary::Affine { .. })
    }
}

/// `y = f(x)`.
pub fn unary_forward(x: &Tensor, op: Unary) -> Result<Tensor> {
    match x.device() {
        Device::Cpu => cpu::unary_forward(x, op),
        d @ Device::Cuda(_) => Err(no_kernel(op.name(), d)),
    }
}

/// `dx = g · f'(saved)`; `saved` is x or y as [`Unary::saves_output`] says (ignored for affine).
pub fn unary_backward(g: &Tensor, saved: Option<&Tensor>, op: Unary) -> Result<Tensor> {
    // A second handle to `g`: the owned variant then writes a new buffer.
    unary_backward_owned(g.clone(), saved, op)
}

/// [`unary_backward`] taking `g` by value: on the CPU, when `g` owns its buffer, the result is
/// written into it (no new buffer; the same values bit for bit).
pub fn unary_backward_owned(g: Tensor, saved: Option<&Tensor>, op: Unary) -> Result<Tensor> {
    if let Some(s) = saved {
        g.same_shape(op.name(), s)?;
        g.same_dtype(op.name(), s)?;
    }
    match common_device(op.name(), std::iter::once(&g).chain(saved))? {
        Device::Cpu => cpu::unary_backward_owned(g, saved, op),
        d @ Device::Cuda(_) => Err(no_kernel(op.name(), d)),
    }
}

/// Binary arithmetic with broadcasting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
}

impl Binary {
    pub fn name(&self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
        }
    }
}

/// `a ∘ b` with numpy broadcasting.
pub fn binary_forward(a: &Tensor, b: &Tensor, op: Binary) -> Result<Tensor> {
    a.same_dtype(op.name(), b)?;
    let out_shape = broadcast_shape(op.name(), a.shape(), b.shape())?;
    match common_device(op.name(), [a, b])? {
        Device::Cpu => cpu::binary_forward(a, b, &out_shape, op),
        d @ Device::Cuda(_) => Err(no_kernel(op.name(), d)),
    }
}

/// Sums `g` over the axes that broadcasting expanded, giving a tensor of `shape`.
pub fn sum_to_shape(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    if broadcast_shape("sum_to_shape", g.shape(), shape)? != g.shape() {
        crate::shape_bail!(
            "sum_to_shape",
            "{shape:?} does not broadcast to {:?}",
            g.shape()
        );
    }
    match g.device() {
        Device::Cpu => cpu::sum_to_shape(g, shape),
        d @ Device::Cuda(_) => Err(no_kernel("sum_to_shape", d)),
    }
}

/// Gradients of `a ∘ b` with respect to a and b (each only if `need` says so).
pub fn binary_backward(
    g: &Tensor,
    a: Option<&Tensor>,
    b: Option<&Tensor>,
    a_shape: &[usize],
    b_shape: &[usize],
    op: Binary,
    need: [bool; 2],
) -> Result<[Option<Tensor>; 2]> {
    for s in a.iter().chain(b.iter()) {
        g.same_dtype(op.name(), s)?;
    }
    match common_device(op.name(), std::iter::once(g).chain(a).chain(b))? {
        Device::Cpu => cpu::binary_backward(g, a, b, a_shape, b_shape, op, need),
        d @ Device::Cuda(_) => Err(no_kernel(op.name(), d)),
    }
}

/// `y += b` in place, `b` repeated over `y`'s leading axes (a bias `[d]` on `[.., d]`), when `y`
/// owns its buffer on the CPU and the dtypes and trailing shape match; returns whether it did
/// (when not, `y` is untouched and the caller adds out of place). The values equal
/// [`binary_forward`]`(y, b, Add)` bit for bit.
pub fn add_rows_in_place(y: &mut Tensor, b: &Tensor) -> bool {
    let (ys, bs) = (y.shape(), b.shape());
    let fits = y.dtype() == b.dtype()
        && y.device() == Device::Cpu
        && b.device() == Device::Cpu
        && !bs.is_empty()
        && bs.len() <= ys.len()
        && ys[ys.len() - bs.len()..] == *bs
        && b.numel() > 0;
    fits && cpu::add_rows_in_place(y, b)
}

/// `acc += g` in place when `acc` owns its buffer, else a new sum. Shapes must match.
pub fn accumulate(acc: Tensor, g: &Tensor) -> Result<Tensor> {
    acc.same_shape("accumulate", g)?;
    acc.same_dtype("accumulate", g)?;
    match common_device("accumulate", [&acc, g])? {
        Device::Cpu => cpu::accumulate(acc, g),
        d @ Device::Cuda(_) => Err(no_kernel("accumulate", d)),
    }
}
