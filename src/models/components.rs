//! Shared building blocks. They hold weights as constants (no weight gradients: attribution
//! differentiates with respect to activations), or as tape leaves in the view that
//! [`super::Model::forward_with_params`] builds (see [`super::params`]), and call
//! [`Hooks::point`] at their boundaries. No component knows which architecture it is part of.

use super::hooks::{block, Hooks};
use super::params::ParamPath;
use crate::{Error, Result, Tensor, Var};

/// How many bytes of transposed weight copies one model may hold ([`Linear::wt`]): set from
/// `GRADPATH_WEIGHT_COPIES_MB` (default 2048 MiB) when a model is loaded, and spent layer by layer
/// in load order. A model whose Linear weights exceed it (Llama-3.2-1B in f32: ≈ 3.9 GB) keeps
/// copies for its first layers only; later layers run the transposed GEMM instead. The results are
/// the same either way.
pub struct CopyBudget(std::cell::Cell<usize>);

impl CopyBudget {
    pub fn from_env() -> CopyBudget {
        let mb = std::env::var("GRADPATH_WEIGHT_COPIES_MB")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(2048);
        CopyBudget(std::cell::Cell::new(mb << 20))
    }
    /// No copies: every Linear layer reads its weight itself (the view built for
    /// [`super::Model::forward_with_params`], where weights may be tape leaves).
    pub fn none() -> CopyBudget {
        CopyBudget(std::cell::Cell::new(0))
    }
    /// Reserves `bytes` if that many are left.
    fn take(&self, bytes: usize) -> bool {
        let left = self.0.get();
        if bytes <= left {
            self.0.set(left - bytes);
            true
        } else {
            false
        }
    }
}

/// `y = x·Wᵀ + b` with an HF `[out, in]` weight.
pub struct Linear {
    /// `[d_out, d_in]`
    pub w: Var,
    /// The same weight transposed, `[d_in, d_out]` row-major, while the model's [`CopyBudget`]
    /// lasts: the forward GEMM reads it ([`Var::linear`], 2–3× faster than the transposed GEMM at
    /// 128–512 rows); the backward always reads `w`.
    pub wt: Option<Tensor>,
    /// `[d_out]`
    pub b: Option<Var>,
}

fn bytes_of(t: &Tensor) -> usize {
    t.numel() * t.dtype().size_in_bytes()
}

impl Linear {
    /// Output width.
    pub fn d_out(&self) -> usize {
        self.w.shape()[0]
    }
    /// From an `[out, in]` weight and an optional `[out]` bias. The transposed copy is made
    /// from the weight's value while the budget lasts.
    pub fn new(w: Var, b: Option<Var>, budget: &CopyBudget) -> Result<Linear> {
        let wt = if budget.take(bytes_of(w.value())) {
            Some(crate::ops::movement::permute(w.value(), &[1, 0])?)
        } else {
            None
        };
        Ok(Linear { w, wt, b })
    }
    /// From an `[in, out]` weight (GPT-2's `Conv1D` layout: `y = x·W + b`) and an `[out]` bias.
    /// `w` is its transpose, recorded on the tape when `wt` is a leaf.
    pub fn from_in_out(wt: Var, b: Option<Var>, budget: &CopyBudget) -> Result<Linear> {
        let w = wt.permute(&[1, 0])?;
        let wt = budget
            .take(bytes_of(wt.value()))
            .then(|| wt.value().clone());
        Ok(Linear { w, wt, b })
    }
    pub(crate) fn load(
        vp: &ParamPath,
        d_in: usize,
        d_out: usize,
        bias: bool,
        budget: &CopyBudget,
    ) -> Result<Linear> {
        let w = vp.get("weight", &[d_out, d_in])?;
        let b = if bias {
            Some(vp.get("bias", &[d_out])?)
        } else {
            None
        };
        Linear::new(w, b, budget)
    }
    pub fn forward(&self, x: &Var) -> Result<Var> {
        match (&self.b, &self.wt) {
            (Some(b), wt) => x.linear_bias(&self.w, wt.as_ref(), b),
            (None, Some(wt)) => x.linear(&self.w, wt),
            (None, None) => x.matmul_t(&self.w, false, true),
        }
    }
}

/// LayerNorm over the last axis.
pub struct LayerNorm {
    pub w: Var,
    pub b: Var,
    pub eps: f64,
}

impl LayerNorm {
    pub(crate) fn load(vp: &ParamPath, d: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            w: vp.get("weight", &[d])?,
            b: vp.get("bias", &[d])?,
            eps,
        })
    }
    pub fn forward(&self, x: &Var) -> Result<Var> {
        x.layer_norm(&self.w, Some(&self.b), self.eps)
    }
}

/// Activation functions by their HF config names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    GeluErf,
    GeluTanh,
    Relu,
    Silu,
    Tanh,
}

impl Act {
    /// The activation named `name` by config key `key` (named in the error).
    pub fn from_hf(key: &str, name: &str) -> Result<Act> {
        Ok(match name {
            "gelu" => Act::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Act::GeluTanh,
            "relu" => Act::Relu,
            "silu" | "swish" => Act::Silu,
            "tanh" => Act::Tanh,
            _ => {
                return Err(super::config::error(
                    key,
                    format!("`{name}` is not a supported activation (supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish, tanh)"),
                ))
            }
        })
    }
    pub fn forward(&self, x: &Var) -> Result<Var> {
        match self {
            Act::GeluErf => x.gelu_erf(),
            Act::GeluTanh => x.gelu_tanh(),
            Act::Relu => x.relu(),
            Act::Silu => x.silu(),
            Act::Tanh => x.tanh(),
        }
    }
}

/// Rotary position tables `[max_pos, d_head]` (HF `rotate_half` layout), applied to q and k.
pub struct Rotary {
    pub cos: Tensor,
    pub sin: Tensor,
}

impl Rotary {
    /// The cos/sin rows `[pos, d_head]` for positions `0..pos`, or for `positions` (one per
    /// sequence index: a token tree, [`super::Batch`]).
    fn tables(&self, t: usize, positions: Option<&[usize]>) -> Result<(Tensor, Tensor)> {
        use crate::ops::movement;
        let Some(p) = positions else {
            return Ok((
                movement::narrow(&self.cos, 0, 0, t)?,
                movement::narrow(&self.sin, 0, 0, t)?,
            ));
        };
        let rows = self.cos.shape()[0];
        let top = p.iter().copied().max().map_or(0, |m| m + 1);
        if p.len() != t || top > rows {
            return Err(Error::Mismatch {
                what: "rotary positions".into(),
                detail: format!(
                    "{} positions (largest {}) for {t} tokens and a table of {rows}",
                    p.len(),
                    top.saturating_sub(1)
                ),
            });
        }
        // only the rows up to the largest position are read back, gathered on the host (so any
        // device takes them)
        let gather = |table: &Tensor| -> Result<Tensor> {
            let d = table.shape()[1];
            let v = movement::narrow(table, 0, 0, top)?.to_vec_f64()?;
            let out: Vec<f64> = p
                .iter()
                .flat_map(|&i| v[i * d..(i + 1) * d].iter().copied())
                .collect();
            Tensor::from_f64_on(&out, &[t, d], table.dtype(), table.device())
        };
        Ok((gather(&self.cos)?, gather(&self.sin)?))
    }
}

/// Multi-head self-attention with q/k/v/output projections; grouped-query when
/// `n_kv_heads < n_heads`; rotary positions on q and k when `rotary` is set.
pub struct SelfAttention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_head: usize,
    pub rotary: Option<Rotary>,
}

impl SelfAttention {
    /// `x` `[batch, pos, d_model]` → attention output `[batch, pos, d_model]` (before the residual).
    /// `mask` is additive, broadcastable to `[batch, n_heads, pos, pos]`; `positions` are the
    /// rotary positions of the sequence indices when they are not `0..pos` (a token tree).
    pub fn forward(
        &self,
        x: &Var,
        mask: Option<&Tensor>,
        positions: Option<&[usize]>,
        hooks: &mut Hooks,
        l: usize,
    ) -> Result<Var> {
        self.forward_queries(x, mask, positions, hooks, l, Queries::All)
    }

    /// As [`SelfAttention::forward`] for the query positions `queries` asks for: with
    /// [`Queries::First`] the output is `[batch, 1, d_model]` (position 0 attending to every
    /// key), and `hook_q`, the scores, the pattern and `hook_z` have one query position.
    ///
    /// When `hooks` replaces this layer's pattern for every row and nothing asks for q, k or the
    /// scores, those are not computed: the pattern replaces everything they feed.
    pub fn forward_queries(
        &self,
        x: &Var,
        mask: Option<&Tensor>,
        positions: Option<&[usize]>,
        hooks: &mut Hooks,
        l: usize,
        queries: Queries,
    ) -> Result<Var> {
        let (b, t) = (x.shape()[0], x.shape()[1]);
        let tq = match queries {
            Queries::All => t,
            Queries::First => 1,
        };
        let heads = |y: Var, pos: usize, h: usize| y.reshape(&[b, pos, h, self.d_head]);
        let name = block(l, "attn.hook_pattern");
        let feeds_pattern = [
            "attn.hook_q",
            "attn.hook_k",
            "attn.hook_rot_q",
            "attn.hook_rot_k",
            "attn.hook_attn_scores",
        ];
        let replaced = hooks
            .replacement(&name)
            .filter(|_| !feeds_pattern.iter().any(|n| hooks.touches(&block(l, n))))
            .cloned();
        let (pattern, v) = match replaced {
            Some(r) => {
                let v = hooks.point(
                    block(l, "attn.hook_v"),
                    heads(self.v.forward(x)?, t, self.n_kv_heads)?,
                )?;
                let p = hooks.point(name, r)?;
                let p = match queries {
                    Queries::All => p,
                    Queries::First => p.narrow(2, 0, 1)?,
                };
                (p, v)
            }
            None => {
                let xq = match queries {
                    Queries::All => x.clone(),
                    Queries::First => x.narrow(1, 0, 1)?,
                };
                let q = hooks.point(
                    block(l, "attn.hook_q"),
                    heads(self.q.forward(&xq)?, tq, self.n_heads)?,
                )?;
                let k = hooks.point(
                    block(l, "attn.hook_k"),
                    heads(self.k.forward(x)?, t, self.n_kv_heads)?,
                )?;
                let v = hooks.point(
                    block(l, "attn.hook_v"),
                    heads(self.v.forward(x)?, t, self.n_kv_heads)?,
                )?;
                let (q, k) = match &self.rotary {
                    Some(r) => {
                        // one pair of tables for k and (its first tq rows) for q
                        let (cos, sin) = r.tables(t, positions)?;
                        let (qc, qs) = if tq == t {
                            (cos.clone(), sin.clone())
                        } else {
                            use crate::ops::movement::narrow;
                            (narrow(&cos, 0, 0, tq)?, narrow(&sin, 0, 0, tq)?)
                        };
                        (
                            hooks.point(block(l, "attn.hook_rot_q"), q.rope(&qc, &qs)?)?,
                            hooks.point(block(l, "attn.hook_rot_k"), k.rope(&cos, &sin)?)?,
                        )
                    }
                    None => (q, k),
                };
                let scores = hooks.point(
                    block(l, "attn.hook_attn_scores"),
                    q.attn_scores(&k, 1.0 / (self.d_head as f64).sqrt())?,
                )?;
                (hooks.point(name, scores.softmax_consume(mask)?)?, v)
            }
        };
        let z = hooks.point(block(l, "attn.hook_z"), pattern.attn_apply(&v)?)?;
        let z = z.reshape(&[b, tq, self.n_heads * self.d_head])?;
        hooks.point(block(l, "hook_attn_out"), self.o.forward(&z)?)
    }
}

/// Which query positions an attention layer (and what follows it in the block) computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queries {
    /// Every position (the plain forward).
    All,
    /// Position 0 only: enough for the last block of a model whose head reads only the first
    /// token ([`ClassifierHead`]).
    First,
}

/// Two-layer MLP `down(act(up(x)))`.
pub struct Mlp {
    pub up: Linear,
    pub down: Linear,
    pub act: Act,
}

impl Mlp {
    pub fn forward(&self, x: &Var, hooks: &mut Hooks, l: usize) -> Result<Var> {
        let pre = hooks.point(block(l, "mlp.hook_pre"), self.up.forward(x)?)?;
        let post = hooks.point(block(l, "mlp.hook_post"), self.act.forward(&pre)?)?;
        hooks.point(block(l, "hook_mlp_out"), self.down.forward(&post)?)
    }
}

/// A post-LN encoder block (BERT, RoBERTa, DistilBERT):
/// `u = LN₁(z + Attn(z))`, `z' = LN₂(u + MLP(u))`.
pub struct PostLnBlock {
    pub attn: SelfAttention,
    pub ln_attn: LayerNorm,
    pub mlp: Mlp,
    pub ln_mlp: LayerNorm,
}

impl PostLnBlock {
    pub fn forward(
        &self,
        x: &Var,
        mask: Option<&Tensor>,
        hooks: &mut Hooks,
        l: usize,
    ) -> Result<Var> {
        self.forward_queries(x, mask, hooks, l, Queries::All)
    }

    /// As [`PostLnBlock::forward`] for the query positions `queries` asks for (every boundary
    /// after the attention's keys and values has that many positions).
    pub fn forward_queries(
        &self,
        x: &Var,
        mask: Option<&Tensor>,
        hooks: &mut Hooks,
        l: usize,
        queries: Queries,
    ) -> Result<Var> {
        let z = hooks.point(block(l, "hook_resid_pre"), x.clone())?;
        let a = self
            .attn
            .forward_queries(&z, mask, None, hooks, l, queries)?;
        let z = match queries {
            Queries::All => z,
            Queries::First => z.narrow(1, 0, 1)?,
        };
        let u = hooks.point(
            block(l, "hook_resid_mid"),
            self.ln_attn.forward(&z.add(&a)?)?,
        )?;
        let m = self.mlp.forward(&u, hooks, l)?;
        hooks.point(
            block(l, "hook_resid_post"),
            self.ln_mlp.forward(&u.add(&m)?)?,
        )
    }
}

/// RMSNorm over the last axis (Llama family): `x / sqrt(mean(x²) + eps) · w`.
pub struct RmsNorm {
    pub w: Var,
    pub eps: f64,
}

/// A normalisation layer; which one is data, chosen at load time.
pub enum Norm {
    Layer(LayerNorm),
    Rms(RmsNorm),
}

impl Norm {
    pub(crate) fn rms(vp: &ParamPath, d: usize, eps: f64) -> Result<Norm> {
        Ok(Norm::Rms(RmsNorm {
            w: vp.get("weight", &[d])?,
            eps,
        }))
    }
    pub(crate) fn layer(vp: &ParamPath, d: usize, eps: f64) -> Result<Norm> {
        Ok(Norm::Layer(LayerNorm::load(vp, d, eps)?))
    }
    pub fn forward(&self, x: &Var) -> Result<Var> {
        match self {
            Norm::Layer(n) => n.forward(x),
            Norm::Rms(n) => x.rms_norm(&n.w, n.eps),
        }
    }
}

/// Gated MLP (SwiGLU in Llama): `down(act(gate(x)) ⊙ up(x))`.
pub struct GatedMlp {
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
    pub act: Act,
}

/// The feed-forward part of a block.
pub enum FeedForward {
    Plain(Mlp),
    Gated(GatedMlp),
}

impl FeedForward {
    pub fn forward(&self, x: &Var, hooks: &mut Hooks, l: usize) -> Result<Var> {
        match self {
            FeedForward::Plain(m) => m.forward(x, hooks, l),
            FeedForward::Gated(m) => {
                let pre = hooks.point(block(l, "mlp.hook_pre"), m.gate.forward(x)?)?;
                let lin = hooks.point(block(l, "mlp.hook_pre_linear"), m.up.forward(x)?)?;
                let post =
                    hooks.point(block(l, "mlp.hook_post"), m.act.forward(&pre)?.mul(&lin)?)?;
                hooks.point(block(l, "hook_mlp_out"), m.down.forward(&post)?)
            }
        }
    }
}

/// A pre-LN decoder block (GPT-2, Llama family):
/// `u = z + Attn(N₁(z))`, `z' = u + MLP(N₂(u))`.
pub struct PreLnBlock {
    pub ln1: Norm,
    pub attn: SelfAttention,
    pub ln2: Norm,
    pub mlp: FeedForward,
}

impl PreLnBlock {
    /// `positions`: see [`SelfAttention::forward`].
    pub fn forward(
        &self,
        x: &Var,
        mask: Option<&Tensor>,
        positions: Option<&[usize]>,
        hooks: &mut Hooks,
        l: usize,
    ) -> Result<Var> {
        let z = hooks.point(block(l, "hook_resid_pre"), x.clone())?;
        let n1 = hooks.point(block(l, "ln1.hook_normalized"), self.ln1.forward(&z)?)?;
        let a = self.attn.forward(&n1, mask, positions, hooks, l)?;
        let u = hooks.point(block(l, "hook_resid_mid"), z.add(&a)?)?;
        let n2 = hooks.point(block(l, "ln2.hook_normalized"), self.ln2.forward(&u)?)?;
        let m = self.mlp.forward(&n2, hooks, l)?;
        hooks.point(block(l, "hook_resid_post"), u.add(&m)?)
    }
}

/// Classification head on the first token: `out(act(dense(h[:, 0])))`.
/// BERT: pooler dense + tanh → classifier; RoBERTa: classifier.dense + tanh → out_proj;
/// DistilBERT: pre_classifier + ReLU → classifier.
pub struct ClassifierHead {
    pub dense: Linear,
    pub act: Act,
    pub out: Linear,
}

impl ClassifierHead {
    /// `h` `[batch, pos, d_model]` → logits `[batch, n_labels]`.
    pub fn forward(&self, h: &Var, hooks: &mut Hooks) -> Result<Var> {
        let (b, c) = (h.shape()[0], h.shape()[2]);
        let cls = h.narrow(1, 0, 1)?.reshape(&[b, c])?;
        let pooled = hooks.point(
            "pooler.hook_out".into(),
            self.act.forward(&self.dense.forward(&cls)?)?,
        )?;
        hooks.point("hook_logits".into(), self.out.forward(&pooled)?)
    }

    pub fn n_labels(&self) -> usize {
        self.out.w.shape()[0]
    }
}

pub(crate) mod points;
