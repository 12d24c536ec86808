//! Models built from shared components, with TransformerLens-style boundaries (`docs/HOOKS.md`).
//! Attribution methods see a model only through the [`Model`] trait and its boundaries.

pub mod components;
pub mod encoder;
pub mod hooks;

pub use encoder::{Batch, Encoder, EncoderConfig, Family};
pub use hooks::Hooks;

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
}

/// The interface attribution methods use.
pub trait Model {
    /// Compute dtype.
    fn dtype(&self) -> DType;
    /// Longest input in tokens.
    fn max_tokens(&self) -> usize;
    fn d_model(&self) -> usize;
    /// Word embeddings `[pos, d_model]` of `ids` (what `hook_embed` carries for one row).
    fn word_embeddings(&self, ids: &[usize]) -> Result<Tensor>;
    /// Forward with boundaries (replace `hook_embed` to interpolate).
    fn forward(&self, x: &Batch, hooks: &mut Hooks) -> Result<ModelOutput>;
    /// Class names, if the config has them.
    fn labels(&self) -> &[String];
    fn pad_token_id(&self) -> Option<usize>;
    /// One line for reports.
    fn describe(&self) -> String;
    /// Rough bytes of saved activations per batch row for a forward+backward at `pos` tokens
    /// (used to choose the default path-point batch).
    fn activation_bytes_per_row(&self, pos: usize) -> usize;
}

/// Loads any supported model folder.
pub fn load(dir: &Path, dtype: DType) -> Result<Box<dyn Model>> {
    let md = ModelDir::open(dir)?;
    Ok(Box::new(Encoder::load(&md, dtype)?))
}
