//! GPT-2 (`GPT2LMHeadModel`): its `config.json` keys and how its checkpoint maps onto the shared
//! [`Decoder`]: LayerNorm, a plain MLP, learned positions, and `Conv1D` weights stored `[in, out]`
//! with q/k/v packed into one `c_attn` matrix.

use super::components::Act;
use super::components::{CopyBudget, FeedForward, Linear, Mlp, Norm, PreLnBlock, SelfAttention};
use super::config::{self, SpecialTokens};
use super::decoder::{Decoder, DecoderConfig, DecoderFamily, RopeScaling};
use super::params::{ParamPath, Source};
use crate::{Result, Var};
use serde::Deserialize;

/// HF `GPT2Config` keys gradpath reads. Sizes are required; optional settings take HF's defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_positions: usize,
    /// MLP width; HF's default is `4 · n_embd`.
    pub n_inner: Option<usize>,
    #[serde(default = "gelu_new")]
    pub activation_function: String,
    #[serde(default = "eps_1e5")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    #[serde(flatten)]
    pub tokens: SpecialTokens,
}

fn gelu_new() -> String {
    "gelu_new".into()
}
fn eps_1e5() -> f64 {
    1e-5
}
fn yes() -> bool {
    true
}

impl Gpt2Config {
    /// The family-neutral config, after checking what gradpath does not support.
    pub fn resolve(self, architecture: String) -> Result<DecoderConfig> {
        let (d, h) = (self.n_embd, self.n_head);
        if h == 0 || !d.is_multiple_of(h) {
            return Err(config::error(
                "n_head",
                format!("{h} does not divide n_embd {d}"),
            ));
        }
        if self.scale_attn_by_inverse_layer_idx {
            return Err(config::error(
                "scale_attn_by_inverse_layer_idx",
                "true is not supported",
            ));
        }
        let [bos, eos, pad, unk] = self.tokens.ids();
        Ok(DecoderConfig {
            family: DecoderFamily::Gpt2,
            architecture,
            vocab_size: self.vocab_size,
            d_model: d,
            n_layers: self.n_layer,
            n_heads: h,
            n_kv_heads: h,
            d_head: d / h,
            d_mlp: self.n_inner.unwrap_or(4 * d),
            act: Act::from_hf("activation_function", &self.activation_function)?,
            max_positions: self.n_positions,
            norm_eps: self.layer_norm_epsilon,
            rope_theta: 0.0,
            rope_scaling: RopeScaling::None,
            tie_embeddings: self.tie_word_embeddings,
            qkv_bias: true,
            o_bias: true,
            mlp_bias: true,
            bos_token_id: bos,
            eos_token_id: eos,
            pad_token_id: pad,
            unk_token_id: unk,
        })
    }
}

/// Builds a GPT-2 from HF weights (`transformer.` prefix optional). The packed `c_attn` is one
/// parameter; q/k/v are recorded `narrow`s of it, so a leaf `c_attn` gets their gradients.
pub(super) fn load(cfg: DecoderConfig, src: &Source, budget: &CopyBudget) -> Result<Decoder> {
    let base = if src.contains("transformer.wte.weight") {
        "transformer"
    } else {
        ""
    };
    let root = src.root(base);
    let (c, m) = (cfg.d_model, cfg.d_mlp);
    let word = root.pp("wte").get("weight", &[cfg.vocab_size, c])?;
    let pos = root.pp("wpe").get("weight", &[cfg.max_positions, c])?;
    // Conv1D: y = x·W + b with W [in, out] (`Linear` keeps that layout for its forward and
    // the [out, in] transpose for its backward).
    let conv = |vp: &ParamPath, d_in: usize, d_out: usize| -> Result<(Var, Var)> {
        Ok((vp.get("weight", &[d_in, d_out])?, vp.get("bias", &[d_out])?))
    };
    let lin = |(w, b): (Var, Var)| Linear::from_in_out(w, Some(b), budget);
    root.pp("h").no_layer(cfg.n_layers, "n_layer")?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for l in 0..cfg.n_layers {
        let b = root.pp("h").pp(l);
        let (qkv_w, qkv_b) = conv(&b.pp("attn.c_attn"), c, 3 * c)?;
        let part = |i: usize| -> Result<Linear> {
            lin((qkv_w.narrow(1, i * c, c)?, qkv_b.narrow(0, i * c, c)?))
        };
        blocks.push(PreLnBlock {
            ln1: Norm::layer(&b.pp("ln_1"), c, cfg.norm_eps)?,
            attn: SelfAttention {
                q: part(0)?,
                k: part(1)?,
                v: part(2)?,
                o: lin(conv(&b.pp("attn.c_proj"), c, c)?)?,
                n_heads: cfg.n_heads,
                n_kv_heads: cfg.n_heads,
                d_head: cfg.d_head,
                rotary: None,
            },
            ln2: Norm::layer(&b.pp("ln_2"), c, cfg.norm_eps)?,
            mlp: FeedForward::Plain(Mlp {
                up: lin(conv(&b.pp("mlp.c_fc"), c, m)?)?,
                down: lin(conv(&b.pp("mlp.c_proj"), m, c)?)?,
                act: cfg.act,
            }),
        });
    }
    let ln_final = Norm::layer(&root.pp("ln_f"), c, cfg.norm_eps)?;
    Decoder::assemble(cfg, src, word, Some(pos), blocks, ln_final)
}
