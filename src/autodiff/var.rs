//! `Var`: a tensor value plus, when tracked, its node on a tape. Every op method computes the
//! forward with the functional kernels in `crate::ops` and records a node when at least one input
//! is tracked and the tape is recording; otherwise the result is a constant.

use super::op::{NodeId, Op};
use super::tape::Tape;
use crate::ops::elementwise::{self, Binary, Unary};
use crate::ops::reduce::{self, ReduceKind};
use crate::ops::{attention, embedding, matmul, movement, norm, rope, softmax};
use crate::{Error, Result, Tensor};
use std::sync::Arc;

/// A value that may carry a gradient.
#[derive(Clone)]
pub struct Var {
    value: Tensor,
    node: Option<(Tape, NodeId, u64)>,
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.node {
            Some((_, id, _)) => write!(f, "Var(node {id}, {:?})", self.value),
            None => write!(f, "Var(constant, {:?})", self.value),
        }
    }
}

/// The three tensors of one attention call (each a tape node, hence a possible hook point).
#[derive(Debug, Clone)]
pub struct AttentionOut {
    /// `[batch, n_heads, query_pos, key_pos]`, scaled, before the mask.
    pub scores: Var,
    /// `[batch, n_heads, query_pos, key_pos]`, softmax of scores + mask.
    pub pattern: Var,
    /// `[batch, query_pos, n_heads, d_head]`.
    pub z: Var,
}

/// Which tape (if any) the result of an op on `inputs` goes on; errors on mixed tapes or stale vars.
fn tape_of(op: &'static str, inputs: &[&Var]) -> Result<Option<Tape>> {
    let mut found: Option<Tape> = None;
    for v in inputs {
        if let Some((t, _, gen)) = &v.node {
            if *gen != t.generation() {
                return Err(Error::Autodiff(format!("{op}: an input was recorded before `grad` freed the graph; record the forward again")));
            }
            match &found {
                Some(f) if !f.same(t) => {
                    return Err(Error::Autodiff(format!(
                        "{op}: inputs come from different tapes"
                    )))
                }
                _ => found = Some(t.clone()),
            }
        }
    }
    Ok(found.filter(|t| t.is_recording()))
}

impl Var {
    pub(crate) fn tracked(value: Tensor, tape: Tape, id: NodeId, gen: u64) -> Var {
        Var {
            value,
            node: Some((tape, id, gen)),
        }
    }

    /// A constant: ops on it record nothing and it never gets a gradient.
    pub fn constant(value: Tensor) -> Var {
        Var { value, node: None }
    }

    pub fn value(&self) -> &Tensor {
        &self.value
    }

    pub fn into_value(self) -> Tensor {
        self.value
    }

    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    pub fn dtype(&self) -> crate::DType {
        self.value.dtype()
    }

    /// The device the value lives on.
    pub fn device(&self) -> crate::Device {
        self.value.device()
    }

    /// Whether this value is on a tape (it can receive a gradient).
    pub fn is_tracked(&self) -> bool {
        self.node.is_some()
    }

    /// The node id on the tape, if tracked.
    pub fn id(&self) -> Option<NodeId> {
        self.node.as_ref().map(|n| n.1)
    }

    pub(crate) fn node(&self) -> Option<(&Tape, NodeId, u64)> {
        self.node.as_ref().map(|(t, i, g)| (t, *i, *g))
    }

    /// The same value, no longer tracked.
    pub fn detach(&self) -> Var {
        Var::constant(self.value.clone())
    }

    /// Records `make(ids)` for the output `value` when some input is tracked.
    fn record(
        op: &'static str,
        inputs: &[&Var],
        value: Tensor,
        make: impl FnOnce(&[Option<NodeId>]) -> Op,
    ) -> Result<Var> {
        match tape_of(op, inputs)? {
            None => Ok(Var::constant(value)),
            Some(tape) => {
                let ids: Vec<Option<NodeId>> = inputs.iter().map(|v| v.id()).collect();
                let id = tape.push(make(&ids));
                let gen = tape.generation();
                Ok(Var::tracked(value, tape, id, gen))
            }
        }
    }

    // === Elementwise ===

    pub fn unary(&self, op: Unary) -> Result<Var> {
        let y = elementwise::unary_forward(&self.value, op)?;
        let saved = if op.saves_nothing() {
            None
        } else if op.saves_output() {
            Some(y.clone())
        } else {
            Some(self.value.clone())
        };
        let x = self.id();
        Var::record(op.name(), &[self], y, |_| Op::Unary {
            x: x.unwrap_or_default(),
            op,
            saved,
        })
    }
    pub fn exp(&self) -> Result<Var> {
        self.unary(Unary::Exp)
    }
    pub fn log(&self) -> Result<Var> {
        self.unary(Unary::Log)
    }
    pub fn sqrt(&self) -> Result<Var> {
        self.unary(Unary::Sqrt)
    }
    pub fn rsqrt(&self) -> Result<Var> {
        self.unary(Unary::Rsqrt)
    }
    pub fn tanh(&self) -> Result<Var> {
        self.unary(Unary::Tanh)
    }
    pub fn powf(&self, p: f64) -> Result<Var> {
        self.unary(Unary::Powf(p))
    }
    pub fn gelu_erf(&self) -> Result<Var> {
        self.unary(Unary::GeluErf)
    }
    pub fn gelu_tanh(&self) -> Result<Var> {
        self.unary(Unary::GeluTanh)
    }
    pub fn silu(&self) -> Result<Var> {
        self.unary(Unary::Silu)
    }
    pub fn relu(&self) -> Result<Var> {
        self.unary(Unary::Relu)
    }
    /// `mul·x + add`.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Var> {
        self.unary(Unary::Affine { mul, add })
    }
    pub fn scale(&self, s: f64) -> Result<Var> {
        self.affine(s, 0.0)
    }
    pub fn add_scalar(&self, s: f64) -> Result<Var> {
        self.affine(1.0, s)
    }

    pub fn binary(&self, rhs: &Var, op: Binary) -> Result<Var> {
        let y = elementwise::binary_forward(&self.value, &rhs.value, op)?;
        let (a_needed, b_needed) = (self.is_tracked(), rhs.is_tracked());
        // d/da reads b (mul, div); d/db reads a (mul, div) and b (div).
        let sa = (matches!(op, Binary::Mul | Binary::Div) && b_needed).then(|| self.value.clone());
        let sb = (matches!(op, Binary::Mul | Binary::Div) && a_needed
            || op == Binary::Div && b_needed)
            .then(|| rhs.value.clone());
        let (a_shape, b_shape) = (self.shape().to_vec(), rhs.shape().to_vec());
        Var::record(op.name(), &[self, rhs], y, |ids| Op::Binary {
            a: ids[0],
            b: ids[1],
            op,
            sa,
            sb,
            a_shape,
            b_shape,
        })
    }
    pub fn add(&self, rhs: &Var) -> Result<Var> {
        self.binary(rhs, Binary::Add)
    }
    pub fn sub(&self, rhs: &Var) -> Result<Var> {
        self.binary(rhs, Binary::Sub)
    }
    pub fn mul(&self, rhs: &Var) -> Result<Var> {
        self.binary(rhs, Binary::Mul)
    }
    pub fn div(&self, rhs: &Var) -> Result<Var> {
        self.binary(rhs, Binary::Div)
    }

    // === Matrix multiply ===

    /// `self · rhs` (batched; `rhs` may be 2-D and shared across the batch).
    pub fn matmul(&self, rhs: &Var) -> Result<Var> {
        self.matmul_t(rhs, false, false)
    }

    /// `op(self) · op(rhs)` with transposes given as flags (strides, no copies).
    /// `x.matmul_t(&w, false, true)` is a Linear layer with an HF `[out, in]` weight.
    pub fn matmul_t(&self, rhs: &Var, ta: bool, tb: bool) -> Result<Var> {
        let y = matmul::forward(&self.value, &rhs.value, ta, tb)?;
        self.record_matmul(rhs, ta, tb, y)
    }

    /// Records `y = op(self)·op(rhs)` (already computed) as a `MatMul` node.
    fn record_matmul(&self, rhs: &Var, ta: bool, tb: bool, y: Tensor) -> Result<Var> {
        let sa = rhs.is_tracked().then(|| self.value.clone());
        let sb = self.is_tracked().then(|| rhs.value.clone());
        let (a_shape, b_shape) = (self.shape().to_vec(), rhs.shape().to_vec());
        Var::record("matmul", &[self, rhs], y, |ids| Op::MatMul {
            a: ids[0],
            b: ids[1],
            ta,
            tb,
            sa,
            sb,
            a_shape,
            b_shape,
        })
    }

    /// A Linear layer `self · wᵀ` with an HF `[out, in]` weight `w`, computed with `wt`, the same
    /// matrix stored transposed (`[in, out]`, row-major): both the forward (`x · wt`) and the
    /// input gradient (`dy · w`) then run on row-major operands, which the GEMM packs far faster
    /// than a transposed one (measured: 128 × 3072 × 768 at 57 GFLOP/s transposed vs 180 plain).
    /// The tape records exactly what `self.matmul_t(w, false, true)` records; `wt` must equal `wᵀ`
    /// (only its shape is checked).
    pub fn linear(&self, w: &Var, wt: &Tensor) -> Result<Var> {
        let ws = w.shape();
        if ws.len() != 2 || wt.shape() != [ws[1], ws[0]] {
            return Err(Error::Shape {
                op: "linear",
                detail: format!(
                    "the transposed weight has shape {:?}, expected the transpose of {ws:?}",
                    wt.shape()
                ),
            });
        }
        let y = matmul::forward(&self.value, wt, false, false)?;
        self.record_matmul(w, false, true, y)
    }

    /// A Linear layer with bias, `self · wᵀ + b`: records exactly what
    /// `self.linear(w, wt)?.add(b)` records (a `MatMul` node and an `Add` node), but adds the bias
    /// into the GEMM's output in place on the CPU instead of writing a second tensor (one memory
    /// pass and one buffer less per layer; the values are the same bit for bit). `wt` is the
    /// transposed weight copy when the model has one (else the GEMM reads `w` transposed).
    pub fn linear_bias(&self, w: &Var, wt: Option<&Tensor>, b: &Var) -> Result<Var> {
        let mm = match wt {
            Some(wt) => self.linear(w, wt)?,
            None => self.matmul_t(w, false, true)?,
        };
        // `mm` is this function's own handle: when it is the only owner of its buffer (always,
        // unless a hook kept a copy, which cannot happen between these two lines), add in place.
        let Var { mut value, node } = mm;
        if !elementwise::add_rows_in_place(&mut value, &b.value) {
            return Var { value, node }.add(b);
        }
        // The MatMul node stores its inputs, not its output: the handle below is only the
        // input of the Add node's record and is dropped at once, so no one reads its (biased)
        // value as the product.
        let mm = Var {
            value: value.clone(),
            node,
        };
        let (a_shape, b_shape) = (mm.shape().to_vec(), b.shape().to_vec());
        Var::record("add", &[&mm, b], value, |ids| Op::Binary {
            a: ids[0],
            b: ids[1],
            op: Binary::Add,
            sa: None,
            sb: None,
            a_shape,
            b_shape,
        })
    }

    // === Reductions ===

    fn reduce(&self, axes: &[usize], keepdim: bool, kind: ReduceKind) -> Result<Var> {
        let op = if kind == ReduceKind::Sum {
            "sum"
        } else {
            "mean"
        };
        let axes = reduce::normalize_axes(op, axes, self.value.rank())?;
        let y = reduce::sum_forward(&self.value, &axes, keepdim, kind)?;
        let in_shape = self.shape().to_vec();
        let x = self.id();
        Var::record(op, &[self], y, |_| Op::Reduce {
            x: x.unwrap_or_default(),
            kind,
            axes,
            in_shape,
        })
    }
    pub fn sum(&self, axes: &[usize], keepdim: bool) -> Result<Var> {
        self.reduce(axes, keepdim, ReduceKind::Sum)
    }
    pub fn mean(&self, axes: &[usize], keepdim: bool) -> Result<Var> {
        self.reduce(axes, keepdim, ReduceKind::Mean)
    }
    /// Sum of every element (a scalar).
    pub fn sum_all(&self) -> Result<Var> {
        let axes: Vec<usize> = (0..self.value.rank()).collect();
        self.sum(&axes, false)
    }
    /// Max over one axis (gradient to the first maximal element).
    pub fn max(&self, axis: usize, keepdim: bool) -> Result<Var> {
        let (y, argmax) = reduce::max_forward(&self.value, axis, keepdim)?;
        let in_shape = self.shape().to_vec();
        let x = self.id();
        Var::record("max", &[self], y, |_| Op::Max {
            x: x.unwrap_or_default(),
            axis,
            in_shape,
            argmax,
        })
    }

    // === Softmax and norms ===

    fn softmax_impl(&self, mask: Option<&Tensor>, log: bool) -> Result<Var> {
        let y = softmax::forward(&self.value, mask, log)?;
        self.record_softmax(y, log)
    }
    /// Records `y = softmax(self + mask)` (already computed; the node saves only `y`).
    fn record_softmax(&self, y: Tensor, log: bool) -> Result<Var> {
        let x = self.id();
        let saved = y.clone();
        Var::record(
            if log { "log_softmax" } else { "softmax" },
            &[self],
            y,
            |_| Op::Softmax {
                x: x.unwrap_or_default(),
                y: saved,
                log,
            },
        )
    }
    /// Softmax over the last axis of `self + mask` (mask broadcasts; it is a constant).
    pub fn softmax(&self, mask: Option<&Tensor>) -> Result<Var> {
        self.softmax_impl(mask, false)
    }
    /// [`Var::softmax`] of a value no one else needs: when this handle is the only owner of its
    /// buffer (the attention scores, unless a hook kept them), the pattern is written over it,
    /// saving a `[batch, heads, pos, pos]` buffer and a memory pass. The tape records exactly what
    /// `softmax` records (the node saves only its output), and the values are the same.
    pub fn softmax_consume(self, mask: Option<&Tensor>) -> Result<Var> {
        let Var { value, node } = self;
        let y = softmax::forward_owned(value, mask, false)?;
        // Only the record's input: its id; its value (the buffer may now hold the pattern) is
        // not read and the handle is dropped at once.
        let x = Var {
            value: y.clone(),
            node,
        };
        x.record_softmax(y, false)
    }
    pub fn log_softmax(&self, mask: Option<&Tensor>) -> Result<Var> {
        self.softmax_impl(mask, true)
    }

    /// LayerNorm over the last axis (biased variance, as PyTorch).
    pub fn layer_norm(&self, w: &Var, b: Option<&Var>, eps: f64) -> Result<Var> {
        self.norm_impl(w, b, eps, false)
    }
    /// RMSNorm over the last axis (HF Llama: `x·rsqrt(mean(x²)+ε)·w`).
    pub fn rms_norm(&self, w: &Var, eps: f64) -> Result<Var> {
        self.norm_impl(w, None, eps, true)
    }
    fn norm_impl(&self, w: &Var, b: Option<&Var>, eps: f64, rms: bool) -> Result<Var> {
        let (y, mean, rstd) = norm::forward(&self.value, &w.value, b.map(|b| &b.value), eps, rms)?;
        let (sx, sw) = (self.value.clone(), w.value.clone());
        let mut inputs = vec![self, w];
        inputs.extend(b);
        let has_b = b.is_some();
        Var::record(
            if rms { "rms_norm" } else { "layer_norm" },
            &inputs,
            y,
            |ids| Op::Norm {
                x: ids[0],
                w: ids[1],
                b: if has_b { ids[2] } else { None },
                sx,
                sw,
                mean,
                rstd,
            },
        )
    }

    // === Embedding ===

    /// Rows of `table` (`[d_vocab, d_model]`) for `ids` of shape `ids_shape`.
    pub fn embedding(table: &Var, ids: &[usize], ids_shape: &[usize]) -> Result<Var> {
        let y = embedding::forward(&table.value, ids, ids_shape)?;
        let ids: Arc<[usize]> = ids.into();
        let table_shape = table.shape().to_vec();
        let t = table.id();
        Var::record("embedding", &[table], y, |_| Op::Embedding {
            table: t.unwrap_or_default(),
            ids,
            table_shape,
        })
    }

    // === Movement ===

    pub fn reshape(&self, shape: &[usize]) -> Result<Var> {
        let y = self.value.reshape(shape)?;
        let in_shape = self.shape().to_vec();
        let x = self.id();
        Var::record("reshape", &[self], y, |_| Op::Reshape {
            x: x.unwrap_or_default(),
            in_shape,
        })
    }
    pub fn permute(&self, perm: &[usize]) -> Result<Var> {
        let y = movement::permute(&self.value, perm)?;
        let perm = perm.to_vec();
        let x = self.id();
        Var::record("permute", &[self], y, |_| Op::Permute {
            x: x.unwrap_or_default(),
            perm,
        })
    }
    /// Swaps two axes.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Var> {
        let r = self.value.rank();
        crate::tensor::shape::check_axis("transpose", a, r)?;
        crate::tensor::shape::check_axis("transpose", b, r)?;
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Var> {
        let y = movement::narrow(&self.value, axis, start, len)?;
        let in_shape = self.shape().to_vec();
        let x = self.id();
        Var::record("narrow", &[self], y, |_| Op::Narrow {
            x: x.unwrap_or_default(),
            axis,
            start,
            in_shape,
        })
    }
    /// Consecutive pieces of `sizes` along `axis` (they must add up to the axis length).
    pub fn split(&self, axis: usize, sizes: &[usize]) -> Result<Vec<Var>> {
        let n = self.value.dim("split", axis)?;
        if sizes.iter().sum::<usize>() != n {
            crate::invalid_bail!(
                "split",
                "sizes {sizes:?} do not add up to axis {axis} of size {n}"
            );
        }
        let mut start = 0;
        let mut out = Vec::with_capacity(sizes.len());
        for &len in sizes {
            out.push(self.narrow(axis, start, len)?);
            start += len;
        }
        Ok(out)
    }
    pub fn concat(xs: &[&Var], axis: usize) -> Result<Var> {
        let vals: Vec<&Tensor> = xs.iter().map(|x| &x.value).collect();
        let y = movement::concat(&vals, axis)?;
        let sizes: Vec<usize> = xs.iter().map(|x| x.shape()[axis]).collect();
        Var::record("concat", xs, y, |ids| Op::Concat {
            xs: ids.to_vec(),
            axis,
            sizes,
        })
    }
    pub fn index_select(&self, axis: usize, indices: &[usize]) -> Result<Var> {
        let y = movement::index_select(&self.value, axis, indices)?;
        let indices: Arc<[usize]> = indices.into();
        let in_shape = self.shape().to_vec();
        let x = self.id();
        Var::record("index_select", &[self], y, |_| Op::IndexSelect {
            x: x.unwrap_or_default(),
            axis,
            indices,
            in_shape,
        })
    }

    // === Transformer ops ===

    /// Rotary embedding of `[batch, pos, n_heads, d_head]` with constant cos/sin tables.
    pub fn rope(&self, cos: &Tensor, sin: &Tensor) -> Result<Var> {
        let y = rope::forward(&self.value, cos, sin)?;
        let (cos, sin) = (cos.clone(), sin.clone());
        let x = self.id();
        Var::record("rope", &[self], y, |_| Op::Rope {
            x: x.unwrap_or_default(),
            cos,
            sin,
        })
    }

    /// `scale·Q·Kᵀ` per head: `self` is q `[batch, pos, n_heads, d_head]`, `k` is
    /// `[batch, key_pos, n_kv_heads, d_head]`; gives `[batch, n_heads, pos, key_pos]`.
    pub fn attn_scores(&self, k: &Var, scale: f64) -> Result<Var> {
        let y = attention::scores(&self.value, &k.value, scale)?;
        let (sq, sk) = (self.value.clone(), k.value.clone());
        Var::record("attention scores", &[self, k], y, |ids| Op::AttnScores {
            q: ids[0],
            k: ids[1],
            sq,
            sk,
            scale,
        })
    }

    /// `pattern·V` per head: `self` is the pattern `[batch, n_heads, pos, key_pos]`, `v` is
    /// `[batch, key_pos, n_kv_heads, d_head]`; gives `[batch, pos, n_heads, d_head]`.
    pub fn attn_apply(&self, v: &Var) -> Result<Var> {
        let y = attention::apply(&self.value, &v.value)?;
        let (sp, sv) = (self.value.clone(), v.value.clone());
        Var::record("attention apply", &[self, v], y, |ids| Op::AttnApply {
            p: ids[0],
            v: ids[1],
            sp,
            sv,
        })
    }

    /// Scaled dot-product attention, keeping scores and pattern as separate nodes.
    pub fn sdpa(
        q: &Var,
        k: &Var,
        v: &Var,
        mask: Option<&Tensor>,
        scale: f64,
    ) -> Result<AttentionOut> {
        let scores = q.attn_scores(k, scale)?;
        let pattern = scores.softmax(mask)?;
        let z = pattern.attn_apply(v)?;
        Ok(AttentionOut { scores, pattern, z })
    }

    /// A named identity node: a boundary that can be observed and differentiated.
    pub fn hook(&self, name: &str) -> Result<Var> {
        let name: Arc<str> = name.into();
        let x = self.id();
        Var::record("hook", &[self], self.value.clone(), |_| Op::Identity {
            x: x.unwrap_or_default(),
            name,
        })
    }
}
