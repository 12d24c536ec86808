//! Encoder models of the BERT family (BERT, RoBERTa, DistilBERT), read top-down like the paper:
//! config → embeddings → post-LN blocks → head. The forward is shared; the three families differ
//! only in data: their weight-name table (`Names`), their position-id scheme and whether they
//! have token types — decided once at load time. The config half (reading and checking
//! `config.json`) is in `hparams.rs`.

use super::components::points;
use super::components::{
    Act, ClassifierHead, CopyBudget, LayerNorm, Linear, Mlp, PostLnBlock, Queries, SelfAttention,
};
use super::hooks::Hooks;
use super::params::{Leaves, Param, Params, Source};
use super::{HookName, HookPoint, Model, ModelOutput, Site};
use crate::io::{ModelDir, Weights};
use crate::{DType, Error, Result, Tensor, Var};

/// Kept here too so that `models::encoder::Batch` still resolves.
pub use super::batch::Batch;

mod hparams;
pub use hparams::{BertConfig, DistilBertConfig, EncoderConfig, Family, Positions, SUPPORTED};

/// Checkpoint names of one family (prefixes and module names).
struct Names {
    base: &'static str,
    layer: &'static str,
    q: &'static str,
    k: &'static str,
    v: &'static str,
    o: &'static str,
    ln_attn: &'static str,
    up: &'static str,
    down: &'static str,
    ln_mlp: &'static str,
    head_dense: &'static str,
    head_out: &'static str,
    head_act: Act,
}

const BERT: Names = Names {
    base: "bert",
    layer: "encoder.layer",
    q: "attention.self.query",
    k: "attention.self.key",
    v: "attention.self.value",
    o: "attention.output.dense",
    ln_attn: "attention.output.LayerNorm",
    up: "intermediate.dense",
    down: "output.dense",
    ln_mlp: "output.LayerNorm",
    head_dense: "bert.pooler.dense",
    head_out: "classifier",
    head_act: Act::Tanh,
};
const ROBERTA: Names = Names {
    base: "roberta",
    head_dense: "classifier.dense",
    head_out: "classifier.out_proj",
    ..BERT
};
const DISTILBERT: Names = Names {
    base: "distilbert",
    layer: "transformer.layer",
    q: "attention.q_lin",
    k: "attention.k_lin",
    v: "attention.v_lin",
    o: "attention.out_lin",
    ln_attn: "sa_layer_norm",
    up: "ffn.lin1",
    down: "ffn.lin2",
    ln_mlp: "output_layer_norm",
    head_dense: "pre_classifier",
    head_out: "classifier",
    head_act: Act::Relu,
};

/// A loaded encoder.
pub struct Encoder {
    pub cfg: EncoderConfig,
    pub dtype: DType,
    /// `[d_vocab, d_model]`
    pub word: Var,
    /// `[max_positions, d_model]`
    pub pos: Var,
    /// `[type_vocab_size, d_model]`, absent for DistilBERT.
    pub types: Option<Var>,
    pub ln_embed: LayerNorm,
    pub blocks: Vec<PostLnBlock>,
    pub head: Option<ClassifierHead>,
    /// Every weight under its HF name (the source the components are built from).
    pub params: Params,
}

impl Encoder {
    /// Loads a model folder in `dtype`.
    pub fn load(dir: &ModelDir, dtype: DType) -> Result<Encoder> {
        let cfg = EncoderConfig::from_hf(&dir.config_json()?)?;
        let w = dir.weights(dtype)?;
        Encoder::from_weights(cfg, &w)
    }

    /// Loads from a checkpoint; every tensor read becomes a parameter of [`Encoder::params`].
    pub fn from_weights(cfg: EncoderConfig, w: &Weights) -> Result<Encoder> {
        let src = Source::weights(w);
        let mut m = Self::build(cfg, &src, &CopyBudget::from_env())?;
        m.params = src.into_params();
        Ok(m)
    }

    /// Rebuilds the components from the registry (after its values changed): the transposed
    /// copies are made again from the new values.
    fn rebuild(&mut self) -> Result<()> {
        let src = Source::params(&self.params, None);
        let mut m = Self::build(self.cfg.clone(), &src, &CopyBudget::from_env())?;
        m.params = src.into_params();
        *self = m;
        Ok(())
    }

    /// The family's weight names on `src` (a checkpoint or the registry; see [`super::params`]).
    fn build(cfg: EncoderConfig, src: &Source, budget: &CopyBudget) -> Result<Encoder> {
        let n = match cfg.family {
            Family::Bert => &BERT,
            Family::Roberta => &ROBERTA,
            Family::DistilBert => &DISTILBERT,
        };
        // Checkpoints of a bare model are saved without the `bert.` / `roberta.` prefix.
        let base = if src.contains(&format!("{}.embeddings.word_embeddings.weight", n.base)) {
            n.base
        } else {
            ""
        };
        let root = src.root(base);
        let (c, m) = (cfg.d_model, cfg.d_mlp);
        let e = root.pp("embeddings");
        let word = e
            .pp("word_embeddings")
            .get("weight", &[cfg.vocab_size, c])?;
        let pos = e
            .pp("position_embeddings")
            .get("weight", &[cfg.max_positions, c])?;
        let types = if cfg.type_vocab_size > 0 {
            Some(
                e.pp("token_type_embeddings")
                    .get("weight", &[cfg.type_vocab_size, c])?,
            )
        } else {
            None
        };
        let ln_embed = LayerNorm::load(&e.pp("LayerNorm"), c, cfg.ln_eps)?;
        root.pp(n.layer).no_layer(
            cfg.n_layers,
            if cfg.family == Family::DistilBert {
                "n_layers"
            } else {
                "num_hidden_layers"
            },
        )?;
        let mut blocks = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let b = root.pp(n.layer).pp(l);
            let lin =
                |name: &str, i: usize, o: usize| Linear::load(&b.pp(name), i, o, true, budget);
            blocks.push(PostLnBlock {
                attn: SelfAttention {
                    q: lin(n.q, c, c)?,
                    k: lin(n.k, c, c)?,
                    v: lin(n.v, c, c)?,
                    o: lin(n.o, c, c)?,
                    n_heads: cfg.n_heads,
                    n_kv_heads: cfg.n_heads,
                    d_head: cfg.d_head(),
                    rotary: None,
                },
                ln_attn: LayerNorm::load(&b.pp(n.ln_attn), c, cfg.ln_eps)?,
                mlp: Mlp {
                    up: lin(n.up, c, m)?,
                    down: lin(n.down, m, c)?,
                    act: cfg.act,
                },
                ln_mlp: LayerNorm::load(&b.pp(n.ln_mlp), c, cfg.ln_eps)?,
            });
        }
        let head = if cfg.classifier {
            let top = src.root("");
            let out_name = format!("{}.weight", n.head_out);
            let n_labels =
                src.shape_of(&out_name)
                    .map(|s| s[0])
                    .ok_or_else(|| Error::MissingTensor {
                        file: src.origin(),
                        name: out_name.clone(),
                        detail: format!("the classifier weight of {}", cfg.architecture),
                    })?;
            Some(ClassifierHead {
                dense: Linear::load(&top.pp(n.head_dense), c, c, true, budget)?,
                act: n.head_act,
                out: Linear::load(&top.pp(n.head_out), c, n_labels, true, budget)?,
            })
        } else {
            None
        };
        Ok(Encoder {
            dtype: src.dtype(),
            params: src.empty_params(),
            cfg,
            word,
            pos,
            types,
            ln_embed,
            blocks,
            head,
        })
    }

    /// Number of classes (classifiers only).
    pub fn n_labels(&self) -> Option<usize> {
        self.head.as_ref().map(ClassifierHead::n_labels)
    }

    /// Position ids of a batch.
    fn position_ids(&self, x: &Batch) -> Vec<usize> {
        match self.cfg.positions {
            Positions::Absolute => (0..x.batch).flat_map(|_| 0..x.pos).collect(),
            Positions::AfterPadding { pad } => {
                let mut out = Vec::with_capacity(x.ids.len());
                for row in x.mask.chunks(x.pos) {
                    let mut n = 0;
                    for &m in row {
                        n += m as usize;
                        out.push(if m == 1 { pad + n } else { pad });
                    }
                }
                out
            }
        }
    }

    /// Forward pass with boundaries. Word embeddings go through `hook_embed` (replace it to
    /// interpolate), the sum through `embed.hook_out`, then every block.
    pub fn forward(&self, x: &Batch, hooks: &mut Hooks) -> Result<ModelOutput> {
        let (b, t) = (x.batch, x.pos);
        if t == 0 {
            return Err(Error::Empty("the input"));
        }
        if t > self.cfg.max_tokens() {
            return Err(Error::TooLong {
                tokens: t,
                max: self.cfg.max_tokens(),
            });
        }
        let shape = [b, t];
        let word = hooks.point(
            "hook_embed".into(),
            Var::embedding(&self.word, &x.ids, &shape)?,
        )?;
        let pos = hooks.point(
            "hook_pos_embed".into(),
            Var::embedding(&self.pos, &self.position_ids(x), &shape)?,
        )?;
        let mut sum = word.add(&pos)?;
        if let Some(types) = &self.types {
            let ty = hooks.point(
                "hook_type_embed".into(),
                Var::embedding(types, &x.type_ids, &shape)?,
            )?;
            sum = sum.add(&ty)?;
        }
        let mut h = hooks.point("embed.hook_out".into(), self.ln_embed.forward(&sum)?)?;
        let mask = self.additive_mask(x)?;
        // Blocks whose output a replaced `hook_resid_pre` discards are skipped.
        let first = hooks.first_live_block();
        let last = self.blocks.len().saturating_sub(1);
        let last_queries = self.last_block_queries(hooks, t);
        for (l, blk) in self.blocks.iter().enumerate().skip(first) {
            let q = if l == last {
                last_queries
            } else {
                Queries::All
            };
            h = blk.forward_queries(&h, mask.as_ref(), hooks, l, q)?;
        }
        let (logits, pooled) = match &self.head {
            Some(head) => (Some(head.forward(&h, hooks)?), None),
            None => (
                None,
                Some(hooks.point("hook_pooled".into(), self.mean_pool(&h, x)?)?),
            ),
        };
        hooks.finish()?;
        Ok(ModelOutput {
            hidden: h,
            logits,
            pooled,
            unembed: None,
        })
    }

    /// [`Queries::First`] when the last block may compute position 0 only: the classifier head
    /// reads only the first token, and nothing in this pass asks for a boundary of the last
    /// block after its keys and values (its pattern may be replaced: the replacement's first
    /// query row is used). Saves most of the last block's work (its q, output projection and
    /// MLP on every other position); the logits are the same. Mean-pooled models and any
    /// pass that captures, patches or tracks the last block's boundaries get every position.
    fn last_block_queries(&self, hooks: &Hooks, pos: usize) -> Queries {
        let Some(last) = self.blocks.len().checked_sub(1) else {
            return Queries::All;
        };
        if self.head.is_none() {
            return Queries::All;
        }
        let mut points = Vec::new();
        self.blocks[last].hook_points(last, pos, self.cfg.d_model, &mut points);
        let narrowable = points.iter().all(|p| {
            let name = p.name.to_string();
            match p.name {
                HookName::Block {
                    site: Site::ResidPre,
                    ..
                } => true,
                HookName::Block {
                    site: Site::Pattern,
                    ..
                } => !hooks.touches(&name) || hooks.replacement(&name).is_some(),
                _ => !hooks.touches(&name),
            }
        });
        if narrowable {
            Queries::First
        } else {
            Queries::All
        }
    }

    /// `[batch, 1, 1, key_pos]` with −∞ on padding, or `None` when nothing is padded.
    fn additive_mask(&self, x: &Batch) -> Result<Option<Tensor>> {
        if x.mask.iter().all(|&m| m == 1) {
            return Ok(None);
        }
        let v: Vec<f64> = x
            .mask
            .iter()
            .map(|&m| if m == 1 { 0.0 } else { f64::NEG_INFINITY })
            .collect();
        Ok(Some(Tensor::from_f64_on(
            &v,
            &[x.batch, 1, 1, x.pos],
            self.dtype,
            self.word.device(),
        )?))
    }

    /// Mean of the hidden states over unmasked positions: `[batch, d_model]`.
    pub fn mean_pool(&self, hidden: &Var, x: &Batch) -> Result<Var> {
        let (b, t) = (x.batch, x.pos);
        let m: Vec<f64> = x.mask.iter().map(|&m| m as f64).collect();
        let mask = Var::constant(Tensor::from_f64_on(
            &m,
            &[b, t, 1],
            self.dtype,
            self.word.device(),
        )?);
        let counts: Vec<f64> = x
            .mask
            .chunks(t)
            .map(|r| r.iter().map(|&m| m as f64).sum::<f64>().max(1e-9))
            .collect();
        let counts = Var::constant(Tensor::from_f64_on(
            &counts,
            &[b, 1],
            self.dtype,
            self.word.device(),
        )?);
        hidden.mul(&mask)?.sum(&[1], false)?.div(&counts)
    }
}

impl Model for Encoder {
    super::registry_model_methods!(Encoder);
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn max_tokens(&self) -> usize {
        self.cfg.max_tokens()
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
        self.cfg.d_head()
    }
    fn hook_points(&self, pos: usize) -> Vec<HookPoint> {
        let d = self.cfg.d_model;
        let mut out = Vec::new();
        points::embed(&mut out, HookName::Embed, pos, d);
        points::embed(&mut out, HookName::PosEmbed, pos, d);
        if self.types.is_some() {
            points::embed(&mut out, HookName::TypeEmbed, pos, d);
        }
        points::embed(&mut out, HookName::EmbedOut, pos, d);
        for (l, b) in self.blocks.iter().enumerate() {
            b.hook_points(l, pos, d, &mut out);
        }
        match &self.head {
            Some(h) => h.hook_points(d, &mut out),
            None => out.push(HookPoint {
                name: HookName::Pooled,
                shape: vec![d],
            }),
        }
        out
    }
    fn labels(&self) -> &[String] {
        &self.cfg.labels
    }
    fn pad_token_id(&self) -> Option<usize> {
        Some(self.cfg.pad_token_id)
    }
    fn block_attention(&self, l: usize) -> Option<super::BlockAttention> {
        let b = self.blocks.get(l)?;
        Some(super::BlockAttention {
            input: super::AttentionInput::Direct,
            n_kv_heads: b.attn.n_kv_heads,
            rotary: b.attn.rotary.is_some(),
        })
    }
    fn activation_bytes_per_row(&self, pos: usize) -> usize {
        let c = &self.cfg;
        // Per layer: LayerNorm inputs, q/k/v, GELU input, pattern, plus transient gradients.
        let per_layer = pos * (8 * c.d_model + 3 * c.d_mlp + 3 * c.n_heads * pos);
        (c.n_layers * per_layer + 4 * pos * c.d_model) * self.dtype.size_in_bytes()
    }
    fn describe(&self) -> String {
        format!(
            "{} ({} layers, d_model {}, {} heads)",
            self.cfg.architecture, self.cfg.n_layers, self.cfg.d_model, self.cfg.n_heads
        )
    }
}
