//! Decoder (causal language) models, read top-down: config → token (and GPT-2 position)
//! embeddings → pre-LN blocks → final norm → unembedding. This file holds what every decoder
//! shares: the resolved [`DecoderConfig`], the [`Decoder`] struct and its one forward. The
//! families differ only in data decided at load time, each in its own file: [`super::gpt2`]
//! (LayerNorm, plain MLP, learned positions, `Conv1D` weights with packed q/k/v) and
//! [`super::llama`] (Llama, Mistral, Qwen2: RMSNorm, gated MLP, rotary positions).
//!
//! Logits at every position are computed only when a caller asks for the `hook_logits` boundary;
//! targets read one position through [`ModelOutput::token_logits`], which unembeds that position
//! alone (for a 50k vocabulary this is most of the work of a forward otherwise).

use super::batch::CausalLayout;
use super::components::points;
use super::components::CopyBudget;
use super::components::{Act, Norm, PreLnBlock};
use super::hooks::Hooks;
use super::params::{Leaves, Param, Params, Source};
use super::{config, gpt2, llama, Batch, HookName, HookPoint, Model, ModelOutput};
use crate::io::Weights;
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

/// The architecture named by a config (or implied by its `model_type`), if it is a decoder.
pub fn architecture(cfg: &Value) -> Option<String> {
    let (arch, model_type) = config::names(cfg);
    let implied = match model_type.as_deref() {
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
    /// Reads a HF config with the family's serde struct ([`gpt2::Gpt2Config`],
    /// [`llama::LlamaConfig`]).
    pub fn from_hf(cfg: &Value) -> Result<DecoderConfig> {
        let arch = architecture(cfg).ok_or_else(|| Error::UnsupportedArchitecture {
            found: config::names(cfg).0.unwrap_or_else(|| "(none)".into()),
            supported: SUPPORTED.iter().map(|s| s.to_string()).collect(),
        })?;
        let c = if arch == "GPT2LMHeadModel" {
            config::parse::<gpt2::Gpt2Config>(cfg)?.resolve(arch)?
        } else {
            config::parse::<llama::LlamaConfig>(cfg)?.resolve(arch)?
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks every size against [`config::LIMITS`], the norm epsilon (> 0), the RoPE base
    /// (finite, > 1) and the special token ids (below the vocabulary), before anything is
    /// allocated from them; a config error names the family's key.
    pub fn validate(&self) -> Result<()> {
        let gpt2 = self.family == DecoderFamily::Gpt2;
        let key = |g: &'static str, l: &'static str| if gpt2 { g } else { l };
        config::check_size("vocab_size", self.vocab_size)?;
        config::check_size(key("n_embd", "hidden_size"), self.d_model)?;
        config::check_size(key("n_layer", "num_hidden_layers"), self.n_layers)?;
        config::check_size(key("n_head", "num_attention_heads"), self.n_heads)?;
        config::check_size(key("n_head", "num_key_value_heads"), self.n_kv_heads)?;
        config::check_size(key("n_inner", "intermediate_size"), self.d_mlp)?;
        config::check_size(
            key("n_positions", "max_position_embeddings"),
            self.max_positions,
        )?;
        if self.d_head > config::LIMITS.d_model {
            return Err(config::error(
                "head_dim",
                format!("{} is too large", self.d_head),
            ));
        }
        config::check_eps(key("layer_norm_epsilon", "rms_norm_eps"), self.norm_eps)?;
        let rope_ok = self.rope_theta.is_finite() && self.rope_theta > 1.0;
        if !gpt2 && !rope_ok {
            return Err(config::error(
                "rope_theta",
                format!("is {}; it must be a finite number > 1", self.rope_theta),
            ));
        }
        let ids = [
            ("bos_token_id", self.bos_token_id),
            ("eos_token_id", self.eos_token_id),
            ("pad_token_id", self.pad_token_id),
            ("unk_token_id", self.unk_token_id),
        ];
        for (k, id) in ids {
            if let Some(id) = id.filter(|&i| i >= self.vocab_size) {
                return Err(config::error(
                    k,
                    format!("{id} is not below vocab_size {}", self.vocab_size),
                ));
            }
        }
        Ok(())
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
    /// Every weight under its HF name (the source the components are built from).
    pub params: Params,
}

impl Decoder {
    /// Loads from a checkpoint; every tensor read becomes a parameter of [`Decoder::params`].
    pub fn from_weights(cfg: DecoderConfig, w: &Weights) -> Result<Decoder> {
        let src = Source::weights(w);
        let mut d = Self::build(cfg, &src, &CopyBudget::from_env())?;
        d.params = src.into_params();
        Ok(d)
    }

    /// The family's loader on `src` (a checkpoint or the registry; see [`super::params`]).
    fn build(cfg: DecoderConfig, src: &Source, budget: &CopyBudget) -> Result<Decoder> {
        match cfg.family {
            DecoderFamily::Gpt2 => gpt2::load(cfg, src, budget),
            DecoderFamily::Llama => llama::load(cfg, src, budget),
        }
    }

    /// Rebuilds the components from the registry (after its values changed): the transposed
    /// copies are made again from the new values.
    fn rebuild(&mut self) -> Result<()> {
        let src = Source::params(&self.params, None);
        let mut d = Self::build(self.cfg.clone(), &src, &CopyBudget::from_env())?;
        d.params = src.into_params();
        *self = d;
        Ok(())
    }

    /// The decoder from a family loader's parts (the unembedding read here).
    pub(super) fn assemble(
        cfg: DecoderConfig,
        src: &Source,
        word: Var,
        pos: Option<Var>,
        blocks: Vec<PreLnBlock>,
        ln_final: Norm,
    ) -> Result<Decoder> {
        let unembed = Decoder::lm_head(&cfg, src, &word)?;
        Ok(Decoder {
            dtype: src.dtype(),
            params: src.empty_params(),
            cfg,
            word,
            pos,
            blocks,
            ln_final,
            unembed,
        })
    }

    /// The unembedding: `lm_head.weight`, or the word embeddings when the config ties them.
    fn lm_head(cfg: &DecoderConfig, src: &Source, word: &Var) -> Result<Var> {
        if src.contains("lm_head.weight") {
            src.root("lm_head")
                .get("weight", &[cfg.vocab_size, cfg.d_model])
        } else if cfg.tie_embeddings {
            Ok(word.clone())
        } else {
            Err(Error::MissingTensor {
                file: src.origin(),
                name: "lm_head.weight".into(),
                detail: format!(
                    "the config does not tie the embeddings; a causal-LM checkpoint ({}) is needed",
                    cfg.architecture
                ),
            })
        }
    }

    /// The additive mask `[1, 1, pos, pos]` (0 where a token sees another, −∞ elsewhere: its
    /// past, or for a token tree its trunk and own branch) and, for a tree, the tokens'
    /// positions ([`super::batch`]). Every row must have the same type ids.
    fn attention_layout(&self, x: &Batch) -> Result<(Tensor, Option<Vec<usize>>)> {
        let t = x.pos;
        if x.type_ids.len() != x.batch * t {
            return Err(Error::Mismatch {
                what: "type ids".into(),
                detail: format!("{} for {} rows of {t} tokens", x.type_ids.len(), x.batch),
            });
        }
        let first = &x.type_ids[..t];
        let layout = CausalLayout::of(first);
        if layout.branched && x.type_ids.chunks(t).any(|r| r != first) {
            return Err(Error::BadValue {
                name: "type ids",
                detail: "a token tree (branch type ids) must be the same in every batch row".into(),
            });
        }
        let v: Vec<f64> = layout
            .visible
            .iter()
            .map(|&s| if s { 0.0 } else { f64::NEG_INFINITY })
            .collect();
        let mask = Tensor::from_f64_on(&v, &[1, 1, t, t], self.dtype, self.word.device())?;
        Ok((mask, layout.branched.then_some(layout.positions)))
    }

    /// Forward pass with boundaries (`docs/HOOKS.md`, decoder table).
    pub fn forward(&self, x: &Batch, hooks: &mut Hooks) -> Result<ModelOutput> {
        let (b, t) = (x.batch, x.pos);
        if t == 0 {
            return Err(Error::Empty("the input"));
        }
        if t > self.cfg.max_positions {
            return Err(Error::TooLong {
                tokens: t,
                max: self.cfg.max_positions,
            });
        }
        if x.mask.iter().any(|&m| m != 1) {
            return Err(Error::BadValue {
                name: "attention mask",
                detail: "decoder inputs cannot be padded (one sequence per batch row, all of the \
                         same length)"
                    .into(),
            });
        }
        let shape = [b, t];
        let word = hooks.point(
            "hook_embed".into(),
            Var::embedding(&self.word, &x.ids, &shape)?,
        )?;
        let (mask, positions) = self.attention_layout(x)?;
        let sum = match &self.pos {
            Some(pos) => {
                let ids: Vec<usize> = match &positions {
                    Some(p) => p.repeat(b),
                    None => (0..b).flat_map(|_| 0..t).collect(),
                };
                let p = hooks.point("hook_pos_embed".into(), Var::embedding(pos, &ids, &shape)?)?;
                word.add(&p)?
            }
            None => word,
        };
        let mut h = hooks.point("embed.hook_out".into(), sum)?;
        // Blocks whose output a replaced `hook_resid_pre` discards are skipped.
        let first = hooks.first_live_block();
        for (l, blk) in self.blocks.iter().enumerate().skip(first) {
            h = blk.forward(&h, Some(&mask), positions.as_deref(), hooks, l)?;
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
    super::registry_model_methods!(Decoder);
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
    fn block_attention(&self, l: usize) -> Option<super::BlockAttention> {
        let b = self.blocks.get(l)?;
        let input = match &b.ln1 {
            Norm::Layer(n) => super::AttentionInput::LayerNorm { eps: n.eps },
            Norm::Rms(n) => super::AttentionInput::RmsNorm { eps: n.eps },
        };
        Some(super::BlockAttention {
            input,
            n_kv_heads: b.attn.n_kv_heads,
            rotary: b.attn.rotary.is_some(),
        })
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
