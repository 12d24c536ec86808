//! Dropout in training mode, at the places Hugging Face's encoders apply it, as patches on the
//! existing boundaries ([`Hooks::patch`] with `keep = mask / (1 − p)` and zero values), so the
//! model code is the same in training and inference:
//!
//! | where (HF) | boundary | BERT / RoBERTa | DistilBERT |
//! |---|---|---|---|
//! | after the embedding LayerNorm | `embed.hook_out` | `hidden_dropout_prob` | `dropout` |
//! | attention probabilities | `blocks.{l}.attn.hook_pattern` | `attention_probs_dropout_prob` | `attention_dropout` |
//! | attention output, before the residual | `blocks.{l}.hook_attn_out` | `hidden_dropout_prob` | (none) |
//! | MLP output, before the residual | `blocks.{l}.hook_mlp_out` | `hidden_dropout_prob` | `dropout` |
//! | RoBERTa head: the first token, before `classifier.dense` | `blocks.{L−1}.hook_resid_post` | classifier rate | |
//! | before the output projection | `pooler.hook_out` | classifier rate | `seq_classif_dropout` |
//!
//! The classifier rate is `classifier_dropout`, or `hidden_dropout_prob` when that is null (as
//! transformers does). RoBERTa's head reads only the first token of the last block, so dropping
//! every position of `hook_resid_post` is the same as dropping the first token's features.
//!
//! Masks come from a [`Rng`] derived from (seed, step, site), so a step's masks are the same for a
//! seed whatever the thread count; they are not PyTorch's masks (a different generator).

use super::rng::Rng;
use crate::models::encoder::Family;
use crate::models::Hooks;
use crate::{with_dtype, DType, Result, Tensor};
use rayon::prelude::*;
use serde_json::Value;

/// Dropout probabilities of an encoder classifier, read from its `config.json`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    pub family: Family,
    pub embed: f64,
    pub attention: f64,
    /// Attention output and MLP output (DistilBERT: the MLP output only).
    pub hidden: f64,
    pub classifier: f64,
}

fn prob(cfg: &Value, key: &str) -> Option<f64> {
    cfg.get(key).and_then(Value::as_f64)
}

impl Dropout {
    /// The rates of a config (HF defaults where a key is absent: 0.1, DistilBERT's head 0.2).
    pub fn from_config(cfg: &Value, family: Family) -> Dropout {
        match family {
            Family::Bert | Family::Roberta => {
                let hidden = prob(cfg, "hidden_dropout_prob").unwrap_or(0.1);
                Dropout {
                    family,
                    embed: hidden,
                    attention: prob(cfg, "attention_probs_dropout_prob").unwrap_or(0.1),
                    hidden,
                    classifier: prob(cfg, "classifier_dropout").unwrap_or(hidden),
                }
            }
            Family::DistilBert => {
                let hidden = prob(cfg, "dropout").unwrap_or(0.1);
                Dropout {
                    family,
                    embed: hidden,
                    attention: prob(cfg, "attention_dropout").unwrap_or(0.1),
                    hidden,
                    classifier: prob(cfg, "seq_classif_dropout").unwrap_or(0.2),
                }
            }
        }
    }

    /// No dropout anywhere (evaluation, or the exactness test).
    pub fn off(family: Family) -> Dropout {
        Dropout {
            family,
            embed: 0.0,
            attention: 0.0,
            hidden: 0.0,
            classifier: 0.0,
        }
    }

    /// Every (boundary, probability, shape) that gets a mask for a batch of `b` rows of `t`
    /// tokens, in a fixed order (the site index of the mask's stream).
    pub fn sites(
        &self,
        n_layers: usize,
        n_heads: usize,
        d: usize,
        b: usize,
        t: usize,
    ) -> Vec<(String, f64, Vec<usize>)> {
        let mut out = vec![("embed.hook_out".to_string(), self.embed, vec![b, t, d])];
        for l in 0..n_layers {
            out.push((
                format!("blocks.{l}.attn.hook_pattern"),
                self.attention,
                vec![b, n_heads, t, t],
            ));
            if self.family != Family::DistilBert {
                out.push((
                    format!("blocks.{l}.hook_attn_out"),
                    self.hidden,
                    vec![b, t, d],
                ));
            }
            out.push((
                format!("blocks.{l}.hook_mlp_out"),
                self.hidden,
                vec![b, t, d],
            ));
        }
        if self.family == Family::Roberta && n_layers > 0 {
            out.push((
                format!("blocks.{}.hook_resid_post", n_layers - 1),
                self.classifier,
                vec![b, t, d],
            ));
        }
        out.push(("pooler.hook_out".to_string(), self.classifier, vec![b, d]));
        out.retain(|(_, p, _)| *p > 0.0);
        out
    }

    /// Hooks that apply dropout for one training forward (`step` and `seed` choose the masks).
    pub fn hooks(
        &self,
        dims: (usize, usize, usize),
        batch: (usize, usize),
        dtype: DType,
        seed: u64,
        step: u64,
    ) -> Result<Hooks> {
        let (n_layers, n_heads, d) = dims;
        let sites = self.sites(n_layers, n_heads, d, batch.0, batch.1);
        let masks: Vec<Result<(String, Tensor)>> = sites
            .into_par_iter()
            .enumerate()
            .map(|(i, (name, p, shape))| {
                let mut rng = Rng::derive(seed, &[DROPOUT_STREAM, step, i as u64]);
                let keep = mask(&mut rng, p, &shape, dtype)?;
                Ok((name, keep))
            })
            .collect();
        let mut hooks = Hooks::new();
        for m in masks {
            let (name, keep) = m?;
            hooks = hooks.scale(&name, keep);
        }
        Ok(hooks)
    }
}

/// Stream kind of dropout masks in [`Rng::derive`].
pub const DROPOUT_STREAM: u64 = 1;

/// A dropout mask: each element `1 / (1 − p)` with probability `1 − p`, else 0.
pub fn mask(rng: &mut Rng, p: f64, shape: &[usize], dtype: DType) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let scale = if p < 1.0 { 1.0 / (1.0 - p) } else { 0.0 };
    with_dtype!(dtype, T => {
        let (keep, drop) = (<T as crate::tensor::Float>::from_f64(scale), <T as crate::tensor::Float>::from_f64(0.0));
        // From the buffer pool, like every other tensor (the masks of one step are about 79 MB
        // for MiniLM at batch 32 × 64 tokens, and they return to the pool when dropped); the
        // draws are the same, in the same order.
        let mut v = crate::tensor::pool::take::<T>(n);
        rng.fill_with(&mut v, |u| if u < p { drop } else { keep });
        Tensor::from_vec(v, shape)
    })
}
