//! Decoder (causal language) models: GPT-2 and the Llama family (Llama, Mistral, Qwen2), read
//! top-down: config → token (and GPT-2 position) embeddings → pre-LN blocks → final norm → unembedding.
//! The forward is shared; the families differ only in data decided at load time: the norm (LayerNorm
//! or RMSNorm), the MLP (plain or gated), learned or rotary positions, and how checkpoint tensors are
//! named and laid out (GPT-2's `Conv1D` stores `[in, out]` and packs q/k/v into one matrix).
//!
//! Logits at every position are computed only when a caller asks for the `hook_logits` boundary;
//! targets read one position through [`ModelOutput::token_logits`], which unembeds that position
//! alone (for a 50k vocabulary this is most of the work of a forward otherwise).

use super::components::points;
use super::components::{
    Act, CopyBudget, FeedForward, GatedMlp, Linear, Mlp, Norm, PreLnBlock, Rotary, SelfAttention,
};
use super::hooks::Hooks;
use super::{Batch, HookName, HookPoint, Model, ModelOutput};
use crate::io::{VarPath, Weights};
use crate::ops::movement;
use crate::{DType, Error, Result, Tensor, Var};
use serde_json::Value;

/// The architectures this module loads.
pub const SUPPORTED: &[&str] = &[
    "GPT2LMHeadModel",
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
];

/// Model family (how the checkpoint is laid out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderFamily {
    Gpt2,
    /// Llama, Mistral, Qwen2 (Qwen2: q/k/v biases).
    Llama,
}

/// RoPE frequency scaling (`rope_scaling` in config.json).
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions divided by `factor`.
    Linear {
        factor: f64,
    },
    /// Llama 3.x: low frequencies divided by `factor`, high ones kept, a smooth band between.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_positions: f64,
    },
}

/// Hyper-parameters, mirroring HF `config.json`.
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    pub family: DecoderFamily,
    pub architecture: String,
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_head: usize,
    pub d_mlp: usize,
    pub act: Act,
    pub max_positions: usize,
    pub norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub tie_embeddings: bool,
    /// q/k/v projections have biases (Qwen2, `attention_bias`).
    pub qkv_bias: bool,
    /// The output projection has a bias.
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub bos_token_id: Option<usize>,
    pub eos_token_id: Option<usize>,
    pub pad_token_id: Option<usize>,
    pub unk_token_id: Option<usize>,
}

fn num(cfg: &Value, key: &str) -> Result<usize> {
    cfg.get(key)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .ok_or_else(|| Error::Model(format!("config.json: missing or invalid `{key}`")))
}

fn opt_num(cfg: &Value, key: &str) -> Option<usize> {
    // eos_token_id may be a list (Llama 3): the first one.
    let v = cfg.get(key)?;
    v.as_u64()
        .or_else(|| v.get(0).and_then(Value::as_u64))
        .map(|v| v as usize)
}

fn float(cfg: &Value, key: &str, default: f64) -> f64 {
    cfg.get(key).and_then(Value::as_f64).unwrap_or(default)
}

/// The architecture named by a config (or implied by its `model_type`), if it is a decoder.
pub fn architecture(cfg: &Value) -> Option<String> {
    let arch = cfg
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .map(str::to_string);
    let implied = match cfg.get("model_type").and_then(Value::as_str) {
        Some("gpt2") => Some("GPT2LMHeadModel"),
        Some("llama") => Some("LlamaForCausalLM"),
        Some("mistral") => Some("MistralForCausalLM"),
        Some("qwen2") => Some("Qwen2ForCausalLM"),
        _ => None,
    };
    arch.or(implied.map(str::to_string))
        .filter(|a| SUPPORTED.contains(&a.as_str()))
}

impl DecoderConfig {
    pub fn from_hf(cfg: &Value) -> Result<DecoderConfig> {
        let arch = architecture(cfg).ok_or_else(|| {
            Error::Model(format!(
                "unsupported decoder architecture; supported: {}",
                SUPPORTED.join(", ")
            ))
        })?;
        let c = if arch == "GPT2LMHeadModel" {
            let d = num(cfg, "n_embd")?;
            let h = num(cfg, "n_head")?;
            if h == 0 || !d.is_multiple_of(h) {
                return Err(Error::Model(format!(
                    "config.json: n_embd {d} is not a multiple of {h} heads"
                )));
            }
            if cfg
                .get("scale_attn_by_inverse_layer_idx")
                .and_then(Value::as_bool)
                == Some(true)
            {
                return Err(Error::Model(
                    "config.json: scale_attn_by_inverse_layer_idx is not supported".into(),
                ));
            }
            DecoderConfig {
                family: DecoderFamily::Gpt2,
                architecture: arch,
                vocab_size: num(cfg, "vocab_size")?,
                d_model: d,
                n_layers: num(cfg, "n_layer")?,
                n_heads: h,
                n_kv_heads: h,
                d_head: d / h,
                d_mlp: opt_num(cfg, "n_inner").unwrap_or(4 * d),
                act: Act::from_hf(
                    cfg.get("activation_function")
                        .and_then(Value::as_str)
                        .unwrap_or("gelu_new"),
                )?,
                max_positions: num(cfg, "n_positions")?,
                norm_eps: float(cfg, "layer_norm_epsilon", 1e-5),
                rope_theta: 0.0,
                rope_scaling: RopeScaling::None,
                tie_embeddings: cfg
                    .get("tie_word_embeddings")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
                qkv_bias: true,
                o_bias: true,
                mlp_bias: true,
                bos_token_id: opt_num(cfg, "bos_token_id"),
                eos_token_id: opt_num(cfg, "eos_token_id"),
                pad_token_id: opt_num(cfg, "pad_token_id"),
                unk_token_id: opt_num(cfg, "unk_token_id"),
            }
        } else {
            let d = num(cfg, "hidden_size")?;
            let h = num(cfg, "num_attention_heads")?;
            let kv = opt_num(cfg, "num_key_value_heads").unwrap_or(h);
            if h == 0 || kv == 0 || !h.is_multiple_of(kv) {
                return Err(Error::Model(format!(
                    "config.json: {h} attention heads are not a multiple of {kv} key/value heads"
                )));
            }
            let d_head = match opt_num(cfg, "head_dim") {
                Some(v) => v,
                None if d.is_multiple_of(h) => d / h,
                None => {
                    return Err(Error::Model(format!(
                        "config.json: hidden_size {d} is not a multiple of {h} heads"
                    )))
                }
            };
            if !d_head.is_multiple_of(2) {
                return Err(Error::Model(format!(
                    "config.json: head size {d_head} is odd; rotary embeddings need an even size"
                )));
            }
            if float(cfg, "partial_rotary_factor", 1.0) != 1.0 {
                return Err(Error::Model(
                    "config.json: partial_rotary_factor is not supported".into(),
                ));
            }
            let qwen = arch == "Qwen2ForCausalLM";
            let attention_bias = cfg
                .get("attention_bias")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            DecoderConfig {
                family: DecoderFamily::Llama,
                vocab_size: num(cfg, "vocab_size")?,
                d_model: d,
                n_layers: num(cfg, "num_hidden_layers")?,
                n_heads: h,
                n_kv_heads: kv,
                d_head,
                d_mlp: num(cfg, "intermediate_size")?,
                act: Act::from_hf(
                    cfg.get("hidden_act")
                        .and_then(Value::as_str)
                        .unwrap_or("silu"),
                )?,
                max_positions: num(cfg, "max_position_embeddings")?,
                norm_eps: float(cfg, "rms_norm_eps", 1e-6),
                rope_theta: float(cfg, "rope_theta", 10000.0),
                rope_scaling: rope_scaling(cfg)?,
                tie_embeddings: cfg
                    .get("tie_word_embeddings")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                qkv_bias: qwen || attention_bias,
                o_bias: attention_bias,
                mlp_bias: cfg
                    .get("mlp_bias")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                bos_token_id: opt_num(cfg, "bos_token_id"),
                eos_token_id: opt_num(cfg, "eos_token_id"),
                pad_token_id: opt_num(cfg, "pad_token_id"),
                unk_token_id: opt_num(cfg, "unk_token_id"),
                architecture: arch,
            }
        };
        Ok(c)
    }

    /// RoPE inverse frequencies `[d_head / 2]` in f64 (HF `_compute_*_parameters`).
    pub fn inv_freq(&self) -> Vec<f64> {
        let d = self.d_head as f64;
        let base: Vec<f64> = (0..self.d_head / 2)
            .map(|i| 1.0 / self.rope_theta.powf(2.0 * i as f64 / d))
            .collect();
        match self.rope_scaling {
            RopeScaling::None => base,
            RopeScaling::Linear { factor } => base.iter().map(|f| f / factor).collect(),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor: lo,
                high_freq_factor: hi,
                original_max_positions: old,
            } => base
                .iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < old / hi {
                        f
                    } else if wavelen > old / lo {
                        f / factor
                    } else {
                        let s = (old / wavelen - lo) / (hi - lo);
                        (1.0 - s) * f / factor + s * f
                    }
                })
                .collect(),
        }
    }
}

fn rope_scaling(cfg: &Value) -> Result<RopeScaling> {
    let rs = match cfg.get("rope_scaling") {
        None | Some(Value::Null) => return Ok(RopeScaling::None),
        Some(v) => v,
    };
    let kind = rs
        .get("rope_type")
        .or_else(|| rs.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let f = |k: &str| {
        rs.get(k).and_then(Value::as_f64).ok_or_else(|| {
            Error::Model(format!(
                "config.json: rope_scaling `{kind}` needs a numeric `{k}`"
            ))
        })
    };
    match kind {
        "default" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear {
            factor: f("factor")?,
        }),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: f("factor")?,
            low_freq_factor: f("low_freq_factor")?,
            high_freq_factor: f("high_freq_factor")?,
            original_max_positions: f("original_max_position_embeddings")?,
        }),
        other => Err(Error::Model(format!(
            "config.json: rope_scaling type `{other}` is not supported (supported: none, linear, llama3)"
        ))),
    }
}

/// A loaded decoder.
pub struct Decoder {
    pub cfg: DecoderConfig,
    pub dtype: DType,
    /// `[vocab, d_model]`
    pub word: Var,
    /// Learned positions `[max_positions, d_model]` (GPT-2).
    pub pos: Option<Var>,
    pub blocks: Vec<PreLnBlock>,
    pub ln_final: Norm,
    /// Unembedding `[vocab, d_model]` (the word embeddings when tied).
    pub unembed: Var,
}

impl Decoder {
    pub fn from_weights(cfg: DecoderConfig, w: &Weights) -> Result<Decoder> {
        match cfg.family {
            DecoderFamily::Gpt2 => Self::load_gpt2(cfg, w),
            DecoderFamily::Llama => Self::load_llama(cfg, w),
        }
    }

    fn lm_head(cfg: &DecoderConfig, w: &Weights, word: &Var) -> Result<Var> {
        if w.contains("lm_head.weight") {
            Ok(Var::constant(
                VarPath::root(w, "lm_head").get("weight", &[cfg.vocab_size, cfg.d_model])?,
            ))
        } else if cfg.tie_embeddings {
            Ok(word.clone())
        } else {
            Err(Error::Model(format!(
                "{}: `lm_head.weight` is missing and the config does not tie the embeddings; \
                 gradpath needs a causal-LM checkpoint ({})",
                w.path().display(),
                cfg.architecture
            )))
        }
    }

    fn load_gpt2(cfg: DecoderConfig, w: &Weights) -> Result<Decoder> {
        let base = if w.contains("transformer.wte.weight") {
            "transformer"
        } else {
            ""
        };
        let root = VarPath::root(w, base);
        let (c, m) = (cfg.d_model, cfg.d_mlp);
        let word = Var::constant(root.pp("wte").get("weight", &[cfg.vocab_size, c])?);
        let pos = Var::constant(root.pp("wpe").get("weight", &[cfg.max_positions, c])?);
        // Conv1D: y = x·W + b with W [in, out] (`Linear` keeps that layout for its forward and
        // the [out, in] transpose for its backward).
        let conv = |vp: &VarPath, d_in: usize, d_out: usize| -> Result<(Tensor, Tensor)> {
            Ok((vp.get("weight", &[d_in, d_out])?, vp.get("bias", &[d_out])?))
        };
        let budget = CopyBudget::from_env();
        let lin = |(w, b): (Tensor, Tensor)| Linear::from_in_out(w, Some(b), &budget);
        let mut blocks = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let b = root.pp("h").pp(l);
            let (qkv_w, qkv_b) = conv(&b.pp("attn.c_attn"), c, 3 * c)?;
            let part = |i: usize| -> Result<Linear> {
                lin((
                    movement::narrow(&qkv_w, 1, i * c, c)?,
                    movement::narrow(&qkv_b, 0, i * c, c)?,
                ))
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
        let unembed = Self::lm_head(&cfg, w, &word)?;
        Ok(Decoder {
            dtype: w.dtype(),
            cfg,
            word,
            pos: Some(pos),
            blocks,
            ln_final,
            unembed,
        })
    }

    fn load_llama(cfg: DecoderConfig, w: &Weights) -> Result<Decoder> {
        let base = if w.contains("model.embed_tokens.weight") {
            "model"
        } else {
            ""
        };
        let root = VarPath::root(w, base);
        let budget = CopyBudget::from_env();
        let (c, m, dh) = (cfg.d_model, cfg.d_mlp, cfg.d_head);
        let (nq, nkv) = (cfg.n_heads * dh, cfg.n_kv_heads * dh);
        let word = Var::constant(
            root.pp("embed_tokens")
                .get("weight", &[cfg.vocab_size, c])?,
        );
        let (cos, sin) = crate::ops::rope::cos_sin_tables(
            cfg.max_positions,
            dh,
            cfg.rope_theta,
            Some(&cfg.inv_freq()),
            w.dtype(),
        )?;
        let mut blocks = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let b = root.pp("layers").pp(l);
            let a = b.pp("self_attn");
            let f = b.pp("mlp");
            blocks.push(PreLnBlock {
                ln1: Norm::rms(&b.pp("input_layernorm"), c, cfg.norm_eps)?,
                attn: SelfAttention {
                    q: Linear::load(&a.pp("q_proj"), c, nq, cfg.qkv_bias, &budget)?,
                    k: Linear::load(&a.pp("k_proj"), c, nkv, cfg.qkv_bias, &budget)?,
                    v: Linear::load(&a.pp("v_proj"), c, nkv, cfg.qkv_bias, &budget)?,
                    o: Linear::load(&a.pp("o_proj"), nq, c, cfg.o_bias, &budget)?,
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
                    gate: Linear::load(&f.pp("gate_proj"), c, m, cfg.mlp_bias, &budget)?,
                    up: Linear::load(&f.pp("up_proj"), c, m, cfg.mlp_bias, &budget)?,
                    down: Linear::load(&f.pp("down_proj"), m, c, cfg.mlp_bias, &budget)?,
                    act: cfg.act,
                }),
            });
        }
        let ln_final = Norm::rms(&root.pp("norm"), c, cfg.norm_eps)?;
        let unembed = Self::lm_head(&cfg, w, &word)?;
        Ok(Decoder {
            dtype: w.dtype(),
            cfg,
            word,
            pos: None,
            blocks,
            ln_final,
            unembed,
        })
    }

    /// `[1, 1, pos, pos]`: 0 on and below the diagonal, −∞ above (a token sees only its past).
    fn causal_mask(&self, t: usize) -> Result<Tensor> {
        let mut v = vec![0.0; t * t];
        for i in 0..t {
            for j in i + 1..t {
                v[i * t + j] = f64::NEG_INFINITY;
            }
        }
        Tensor::from_f64(&v, &[1, 1, t, t], self.dtype)
    }

    /// Forward pass with boundaries (`docs/HOOKS.md`, decoder table).
    pub fn forward(&self, x: &Batch, hooks: &mut Hooks) -> Result<ModelOutput> {
        let (b, t) = (x.batch, x.pos);
        if t == 0 {
            return Err(Error::Input("empty input: the text has no tokens".into()));
        }
        if t > self.cfg.max_positions {
            return Err(Error::Input(format!(
                "{t} tokens exceed the model's {} positions",
                self.cfg.max_positions
            )));
        }
        if x.mask.iter().any(|&m| m != 1) {
            return Err(Error::Input(
                "decoder inputs cannot be padded (one sequence per batch row, all of the same length)"
                    .into(),
            ));
        }
        let shape = [b, t];
        let word = hooks.point(
            "hook_embed".into(),
            Var::embedding(&self.word, &x.ids, &shape)?,
        )?;
        let sum = match &self.pos {
            Some(pos) => {
                let ids: Vec<usize> = (0..b).flat_map(|_| 0..t).collect();
                let p = hooks.point("hook_pos_embed".into(), Var::embedding(pos, &ids, &shape)?)?;
                word.add(&p)?
            }
            None => word,
        };
        let mut h = hooks.point("embed.hook_out".into(), sum)?;
        let mask = self.causal_mask(t)?;
        for (l, blk) in self.blocks.iter().enumerate() {
            h = blk.forward(&h, Some(&mask), hooks, l)?;
        }
        let hidden = hooks.point(
            "ln_final.hook_normalized".into(),
            self.ln_final.forward(&h)?,
        )?;
        let logits = if hooks.wants("hook_logits") {
            Some(hooks.point(
                "hook_logits".into(),
                hidden.matmul_t(&self.unembed, false, true)?,
            )?)
        } else {
            None
        };
        hooks.finish()?;
        Ok(ModelOutput {
            hidden,
            logits,
            pooled: None,
            unembed: Some(self.unembed.clone()),
        })
    }
}

impl Model for Decoder {
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn max_tokens(&self) -> usize {
        self.cfg.max_positions
    }
    fn d_model(&self) -> usize {
        self.cfg.d_model
    }
    fn n_layers(&self) -> usize {
        self.cfg.n_layers
    }
    fn n_heads(&self) -> usize {
        self.cfg.n_heads
    }
    fn d_head(&self) -> usize {
        self.cfg.d_head
    }
    fn hook_points(&self, pos: usize) -> Vec<HookPoint> {
        let d = self.cfg.d_model;
        let mut out = Vec::new();
        points::embed(&mut out, HookName::Embed, pos, d);
        if self.pos.is_some() {
            points::embed(&mut out, HookName::PosEmbed, pos, d);
        }
        points::embed(&mut out, HookName::EmbedOut, pos, d);
        for (l, b) in self.blocks.iter().enumerate() {
            b.hook_points(l, pos, d, &mut out);
        }
        points::embed(&mut out, HookName::FinalNorm, pos, d);
        out.push(HookPoint {
            name: HookName::Logits,
            shape: vec![pos, self.cfg.vocab_size],
        });
        out
    }
    fn word_embeddings(&self, ids: &[usize]) -> Result<Tensor> {
        crate::ops::embedding::forward(self.word.value(), ids, &[ids.len()])
    }
    fn forward(&self, x: &Batch, hooks: &mut Hooks) -> Result<ModelOutput> {
        Decoder::forward(self, x, hooks)
    }
    fn labels(&self) -> &[String] {
        &[]
    }
    fn pad_token_id(&self) -> Option<usize> {
        self.cfg.pad_token_id
    }
    fn eos_token_id(&self) -> Option<usize> {
        self.cfg.eos_token_id
    }
    fn unk_token_id(&self) -> Option<usize> {
        self.cfg.unk_token_id
    }
    fn is_decoder(&self) -> bool {
        true
    }
    fn vocab_size(&self) -> usize {
        self.cfg.vocab_size
    }
    fn activation_bytes_per_row(&self, pos: usize) -> usize {
        let c = &self.cfg;
        let kv = c.n_kv_heads * c.d_head;
        let per_layer = pos * (8 * c.d_model + 2 * kv + 4 * c.d_mlp + 3 * c.n_heads * pos);
        (c.n_layers * per_layer + 4 * pos * c.d_model + 2 * c.vocab_size)
            * self.dtype.size_in_bytes()
    }
    fn describe(&self) -> String {
        let kv = if self.cfg.n_kv_heads != self.cfg.n_heads {
            format!(", {} key/value heads", self.cfg.n_kv_heads)
        } else {
            String::new()
        };
        format!(
            "{} ({} layers, d_model {}, {} heads{kv}, vocab {})",
            self.cfg.architecture,
            self.cfg.n_layers,
            self.cfg.d_model,
            self.cfg.n_heads,
            self.cfg.vocab_size
        )
    }
}
