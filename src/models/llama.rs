//! The Llama family (`LlamaForCausalLM`, `MistralForCausalLM`, `Qwen2ForCausalLM`): their
//! `config.json` keys and how their checkpoints map onto the shared [`Decoder`]: RMSNorm,
//! rotary positions (`rope_theta`, `rope_scaling` none/linear/llama3), grouped-query attention,
//! a gated (SwiGLU) MLP, optional q/k/v biases (Qwen2) and a tied or untied head.

use super::components::{
    Act, CopyBudget, FeedForward, GatedMlp, Linear, Norm, PreLnBlock, Rotary, SelfAttention,
};
use super::config::{self, SpecialTokens};
use super::decoder::{Decoder, DecoderConfig, DecoderFamily, RopeScaling};
use super::params::Source;
use crate::Result;
use serde::Deserialize;

/// HF `LlamaConfig` / `MistralConfig` / `Qwen2Config` keys gradpath reads. Sizes are required;
/// optional settings take HF's defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Defaults to `num_attention_heads` (no grouping).
    pub num_key_value_heads: Option<usize>,
    /// Defaults to `hidden_size / num_attention_heads`.
    pub head_dim: Option<usize>,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "silu")]
    pub hidden_act: String,
    #[serde(default = "eps_1e6")]
    pub rms_norm_eps: f64,
    #[serde(default = "theta_1e4")]
    pub rope_theta: f64,
    pub rope_scaling: Option<RopeScalingConfig>,
    #[serde(default = "one")]
    pub partial_rotary_factor: f64,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(flatten)]
    pub tokens: SpecialTokens,
}

/// `rope_scaling` (the kind is `rope_type`, or `type` in older configs).
#[derive(Debug, Clone, Deserialize)]
pub struct RopeScalingConfig {
    pub rope_type: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub factor: Option<f64>,
    pub low_freq_factor: Option<f64>,
    pub high_freq_factor: Option<f64>,
    pub original_max_position_embeddings: Option<f64>,
}

fn silu() -> String {
    "silu".into()
}
fn eps_1e6() -> f64 {
    1e-6
}
fn theta_1e4() -> f64 {
    10000.0
}
fn one() -> f64 {
    1.0
}

impl RopeScalingConfig {
    fn resolve(&self) -> Result<RopeScaling> {
        let kind = self
            .rope_type
            .as_deref()
            .or(self.kind.as_deref())
            .unwrap_or("default");
        let need = |v: Option<f64>, k: &str| {
            v.ok_or_else(|| {
                config::error(
                    "rope_scaling",
                    format!("of type `{kind}` needs a numeric `{k}`"),
                )
            })
        };
        match kind {
            "default" => Ok(RopeScaling::None),
            "linear" => Ok(RopeScaling::Linear {
                factor: need(self.factor, "factor")?,
            }),
            "llama3" => Ok(RopeScaling::Llama3 {
                factor: need(self.factor, "factor")?,
                low_freq_factor: need(self.low_freq_factor, "low_freq_factor")?,
                high_freq_factor: need(self.high_freq_factor, "high_freq_factor")?,
                original_max_positions: need(
                    self.original_max_position_embeddings,
                    "original_max_position_embeddings",
                )?,
            }),
            other => Err(config::error(
                "rope_scaling",
                format!("type `{other}` is not supported (supported: none, linear, llama3)"),
            )),
        }
    }
}

impl LlamaConfig {
    /// The family-neutral config, after checking what gradpath does not support.
    pub fn resolve(self, architecture: String) -> Result<DecoderConfig> {
        let (d, h) = (self.hidden_size, self.num_attention_heads);
        let kv = self.num_key_value_heads.unwrap_or(h);
        if h == 0 || kv == 0 || !h.is_multiple_of(kv) {
            return Err(config::error(
                "num_key_value_heads",
                format!("{kv} does not divide {h} attention heads"),
            ));
        }
        let d_head = match self.head_dim {
            Some(v) => v,
            None if d.is_multiple_of(h) => d / h,
            None => {
                return Err(config::error(
                    "num_attention_heads",
                    format!("{h} does not divide hidden_size {d} (and there is no head_dim)"),
                ))
            }
        };
        if !d_head.is_multiple_of(2) {
            return Err(config::error(
                "head_dim",
                format!("{d_head} is odd; rotary embeddings need an even head size"),
            ));
        }
        if self.partial_rotary_factor != 1.0 {
            return Err(config::error(
                "partial_rotary_factor",
                format!("{} is not supported (only 1)", self.partial_rotary_factor),
            ));
        }
        let qwen = architecture == "Qwen2ForCausalLM";
        let [bos, eos, pad, unk] = self.tokens.ids();
        Ok(DecoderConfig {
            family: DecoderFamily::Llama,
            vocab_size: self.vocab_size,
            d_model: d,
            n_layers: self.num_hidden_layers,
            n_heads: h,
            n_kv_heads: kv,
            d_head,
            d_mlp: self.intermediate_size,
            act: Act::from_hf("hidden_act", &self.hidden_act)?,
            max_positions: self.max_position_embeddings,
            norm_eps: self.rms_norm_eps,
            rope_theta: self.rope_theta,
            rope_scaling: match &self.rope_scaling {
                Some(rs) => rs.resolve()?,
                None => RopeScaling::None,
            },
            tie_embeddings: self.tie_word_embeddings,
            qkv_bias: qwen || self.attention_bias,
            o_bias: self.attention_bias,
            mlp_bias: self.mlp_bias,
            bos_token_id: bos,
            eos_token_id: eos,
            pad_token_id: pad,
            unk_token_id: unk,
            architecture,
        })
    }
}

/// Builds a Llama-family decoder from HF weights (`model.` prefix optional).
pub(super) fn load(cfg: DecoderConfig, src: &Source, budget: &CopyBudget) -> Result<Decoder> {
    let base = if src.contains("model.embed_tokens.weight") {
        "model"
    } else {
        ""
    };
    let root = src.root(base);
    let (c, m, dh) = (cfg.d_model, cfg.d_mlp, cfg.d_head);
    let (nq, nkv) = (cfg.n_heads * dh, cfg.n_kv_heads * dh);
    let word = root
        .pp("embed_tokens")
        .get("weight", &[cfg.vocab_size, c])?;
    let (cos, sin) = crate::ops::rope::cos_sin_tables(
        cfg.max_positions,
        dh,
        cfg.rope_theta,
        Some(&cfg.inv_freq()),
        src.dtype(),
    )?;
    root.pp("layers")
        .no_layer(cfg.n_layers, "num_hidden_layers")?;
    let mut blocks = Vec::with_capacity(cfg.n_layers);
    for l in 0..cfg.n_layers {
        let b = root.pp("layers").pp(l);
        let a = b.pp("self_attn");
        let f = b.pp("mlp");
        blocks.push(PreLnBlock {
            ln1: Norm::rms(&b.pp("input_layernorm"), c, cfg.norm_eps)?,
            attn: SelfAttention {
                q: Linear::load(&a.pp("q_proj"), c, nq, cfg.qkv_bias, budget)?,
                k: Linear::load(&a.pp("k_proj"), c, nkv, cfg.qkv_bias, budget)?,
                v: Linear::load(&a.pp("v_proj"), c, nkv, cfg.qkv_bias, budget)?,
                o: Linear::load(&a.pp("o_proj"), nq, c, cfg.o_bias, budget)?,
                n_heads: cfg.n_heads,
                n_kv_heads: cfg.n_kv_heads,
                d_head: dh,
                rotary: Some(Rotary {
                    cos: cos.clone(),
                    sin: sin.clone(),
                }),
            },
            ln2: Norm::rms(&b.pp("post_attention_layernorm"), c, cfg.norm_eps)?,
            mlp: FeedForward::Gated(GatedMlp {
                gate: Linear::load(&f.pp("gate_proj"), c, m, cfg.mlp_bias, budget)?,
                up: Linear::load(&f.pp("up_proj"), c, m, cfg.mlp_bias, budget)?,
                down: Linear::load(&f.pp("down_proj"), m, c, cfg.mlp_bias, budget)?,
                act: cfg.act,
            }),
        });
    }
    let ln_final = Norm::rms(&root.pp("norm"), c, cfg.norm_eps)?;
    Decoder::assemble(cfg, src, word, None, blocks, ln_final)
}
