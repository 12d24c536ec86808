//! Models built from shared components, with TransformerLens-style boundaries (`docs/HOOKS.md`).
//! Attribution methods see a model only through the [`Model`] trait and its boundaries.

pub mod batch;
pub mod components;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod gpt2;
pub mod hook_name;
pub mod hooks;
pub mod llama;
pub mod params;

pub use batch::Batch;
pub use decoder::{Decoder, DecoderConfig, DecoderFamily};
pub use encoder::{Encoder, EncoderConfig, Family};
pub use hook_name::{HookName, HookPoint, Site};
pub use hooks::Hooks;
pub use params::{Leaves, Param, Params};

use crate::io::ModelDir;
use crate::{DType, Result, Tensor, Var};
use std::path::Path;

/// What a forward pass returns.
pub struct ModelOutput {
    /// Last hidden state `[batch, pos, d_model]`.
    pub hidden: Var,
    /// Classifier logits `[batch, n_labels]`.
    pub logits: Option<Var>,
    /// Sentence embedding `[batch, d_model]` (mean pooling) for plain encoders.
    pub pooled: Option<Var>,
    /// Decoders: the unembedding `[vocab, d_model]`; `hidden` is then the final-normed hidden
    /// state that it reads.
    pub unembed: Option<Var>,
}

impl ModelOutput {
    /// Next-token logits `[batch, vocab]` read at `position` (decoders): only that position is
    /// unembedded.
    pub fn token_logits(&self, position: usize) -> Result<Var> {
        let (w, h) = self.hidden_at(position)?;
        h.matmul_t(w, false, true)
    }

    /// The logit of one `token` after `position`, `[batch]`: only that row of the unembedding is
    /// read (a dot product per row instead of a `[batch, d_model]·[d_model, vocab]` GEMM).
    pub fn token_logit(&self, position: usize, token: usize) -> Result<Var> {
        self.check_token(token)?;
        let (w, h) = self.hidden_at(position)?;
        let b = h.shape()[0];
        h.matmul_t(&w.narrow(0, token, 1)?, false, true)?
            .reshape(&[b])
    }

    /// An error unless `token` is an id of the unembedding's vocabulary.
    pub fn check_token(&self, token: usize) -> Result<()> {
        match &self.unembed {
            Some(w) if token >= w.shape()[0] => Err(crate::Error::OutOfRange {
                what: "target token id",
                index: token,
                len: w.shape()[0],
            }),
            _ => Ok(()),
        }
    }

    /// The unembedding and the hidden state `[batch, d_model]` at `position`.
    fn hidden_at(&self, position: usize) -> Result<(&Var, Var)> {
        let w = self.unembed.as_ref().ok_or_else(|| {
            crate::Error::TargetMismatch(
                "a token target needs a causal language model (this model has no lm_head)".into(),
            )
        })?;
        let (b, t, c) = (
            self.hidden.shape()[0],
            self.hidden.shape()[1],
            self.hidden.shape()[2],
        );
        if position >= t {
            return Err(crate::Error::OutOfRange {
                what: "position",
                index: position,
                len: t,
            });
        }
        Ok((w, self.hidden.narrow(1, position, 1)?.reshape(&[b, c])?))
    }
}

/// The interface attribution methods use.
/// What sits between a block's `hook_resid_pre` and its q/k/v projections
/// ([`Model::block_attention`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttentionInput {
    /// Nothing: q/k/v read the residual stream (post-LN encoders).
    Direct,
    /// LayerNorm with this ε (GPT-2): `γ ⊙ (x − μ)/√(var + ε) + β`.
    LayerNorm { eps: f64 },
    /// RMSNorm with this ε (Llama family): `γ ⊙ x/√(mean(x²) + ε)`.
    RmsNorm { eps: f64 },
}

/// A block's attention structure as [`Model::block_attention`] reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockAttention {
    /// The row-local map before the projections.
    pub input: AttentionInput,
    /// Key/value heads (query head h reads key/value head `h / (n_heads / n_kv_heads)`).
    pub n_kv_heads: usize,
    /// Rotary positions on q and k (`attn.hook_rot_q`/`hook_rot_k` hold them).
    pub rotary: bool,
}

pub trait Model {
    /// Compute dtype.
    fn dtype(&self) -> DType;
    /// Longest input in tokens.
    fn max_tokens(&self) -> usize;
    fn d_model(&self) -> usize;
    /// The device its weights live on; inputs, masks and baselines are built there.
    fn device(&self) -> crate::Device {
        crate::Device::Cpu
    }
    /// Number of transformer blocks.
    fn n_layers(&self) -> usize;
    /// Attention (query) heads per block.
    fn n_heads(&self) -> usize;
    /// Width of one head.
    fn d_head(&self) -> usize;
    /// Every boundary of this model for an input of `pos` tokens, with its per-row shape (batch
    /// axis dropped), in forward order — without running the model. `hook_logits` of decoders
    /// is listed although a forward computes it only on request.
    fn hook_points(&self, pos: usize) -> Vec<HookPoint>;
    /// Word embeddings `[pos, d_model]` of `ids` (what `hook_embed` carries for one row).
    fn word_embeddings(&self, ids: &[usize]) -> Result<Tensor>;
    /// Forward with boundaries (replace `hook_embed` to interpolate).
    fn forward(&self, x: &Batch, hooks: &mut Hooks) -> Result<ModelOutput>;
    /// Class names, if the config has them.
    fn labels(&self) -> &[String];
    fn pad_token_id(&self) -> Option<usize>;
    /// End-of-sequence token (decoders).
    fn eos_token_id(&self) -> Option<usize> {
        None
    }
    /// Unknown-word token from the config (decoders), used when the tokenizer has no `<unk>`.
    fn unk_token_id(&self) -> Option<usize> {
        None
    }
    /// A causal language model (targets are next tokens; inputs are never padded).
    fn is_decoder(&self) -> bool {
        false
    }
    /// Size of the output vocabulary (decoders; 0 for encoders).
    fn vocab_size(&self) -> usize {
        0
    }
    /// One line for reports.
    fn describe(&self) -> String;
    /// Rough bytes of saved activations per batch row for a forward+backward at `pos` tokens
    /// (used to choose the default path-point batch).
    fn activation_bytes_per_row(&self, pos: usize) -> usize;
    /// The structure of block `l` around its attention, for methods that differentiate
    /// through the attention by hand (LIG's one-forward-per-point layer map,
    /// `attribution::lig` "How it runs"). `Some` promises: the block is `post(Y, O)` with
    /// `Y` = `hook_resid_pre`, `O` = `attn.hook_z` = softmax(q·kᵀ/√d_head + mask)·v per head,
    /// q/k/v = projections of [`BlockAttention::input`] applied row by row to `Y` (then rotary
    /// on q and k where [`BlockAttention::rotary`]), and `post` (output projection, residual,
    /// norms, MLP) row-local: output position j depends on `Y_j` and `O_j` only. `None` (the
    /// default) makes such methods fall back to plain rows.
    fn block_attention(&self, l: usize) -> Option<BlockAttention> {
        let _ = l;
        None
    }

    // === Parameters (see [`params`]) ===

    /// Every weight under its Hugging Face tensor name, in load order (values share storage
    /// with the model; cloning a [`Param`] copies no data).
    fn parameters(&self) -> Vec<Param>;
    /// Checkpoint tensors the model did not read (sorted): a pooler, a pre-training head, a
    /// buffer. Empty for models not loaded from a checkpoint.
    fn unused_tensors(&self) -> Vec<String> {
        Vec::new()
    }
    /// Sets new values (same shapes) for the named parameters, then rebuilds what is derived
    /// from them (transposed weight copies, GPT-2's split q/k/v), so the next forward uses the
    /// new values everywhere. Nothing changes if a name or shape is wrong. Set many parameters
    /// in one call: each call rebuilds once.
    fn set_parameters(&mut self, values: Vec<(String, Tensor)>) -> Result<()>;
    /// A forward in which the parameters named in `leaves` are those tape leaves, so that
    /// [`crate::Tape::grad`] with `wrt = leaves.vars()` gives ∂output/∂parameter. Every other
    /// weight stays a constant; with no leaves this is [`Model::forward`].
    fn forward_with_params(
        &self,
        x: &Batch,
        hooks: &mut Hooks,
        leaves: &Leaves,
    ) -> Result<ModelOutput>;
}

/// The [`Model`] methods every model built from a parameter registry shares (its `word`
/// embedding, `params`, `cfg`, `forward`, `build` and `rebuild`): one definition for the encoder
/// and the decoder.
macro_rules! registry_model_methods {
    ($ty:ident) => {
        fn device(&self) -> crate::Device {
            self.word.device()
        }
        fn word_embeddings(&self, ids: &[usize]) -> Result<Tensor> {
            crate::ops::embedding::forward(self.word.value(), ids, &[ids.len()])
        }
        fn forward(&self, x: &Batch, hooks: &mut Hooks) -> Result<ModelOutput> {
            $ty::forward(self, x, hooks)
        }
        fn parameters(&self) -> Vec<Param> {
            self.params.iter().cloned().collect()
        }
        fn unused_tensors(&self) -> Vec<String> {
            self.params.unused().to_vec()
        }
        fn set_parameters(&mut self, values: Vec<(String, Tensor)>) -> Result<()> {
            self.params.set(values)?;
            self.rebuild()
        }
        fn forward_with_params(
            &self,
            x: &Batch,
            hooks: &mut Hooks,
            leaves: &Leaves,
        ) -> Result<ModelOutput> {
            if leaves.is_empty() {
                return $ty::forward(self, x, hooks);
            }
            self.params.check_leaves(leaves)?;
            let src = Source::params(&self.params, Some(leaves));
            let view = Self::build(self.cfg.clone(), &src, &CopyBudget::none())?;
            view.forward(x, hooks)
        }
    };
}
pub(crate) use registry_model_methods;

/// The tokenizer of a model folder, a `.gguf` file or a folder holding one.
pub fn load_tokenizer(dir: &Path) -> Result<crate::io::Tokenizer> {
    ModelDir::open(dir)?.tokenizer()
}

/// Loads any supported model (encoders and decoders, chosen by the config's architecture) from a
/// Hugging Face folder, a `.gguf` file or a folder holding one `.gguf` file.
pub fn load(dir: &Path, dtype: DType) -> Result<Box<dyn Model>> {
    let md = ModelDir::open(dir)?;
    let cfg = md.config_json()?;
    if decoder::architecture(&cfg).is_some() {
        let c = DecoderConfig::from_hf(&cfg)?;
        let w = md.weights(dtype)?;
        return Ok(Box::new(Decoder::from_weights(c, &w)?));
    }
    Ok(Box::new(Encoder::load(&md, dtype)?))
}
