//! An encoder's hyper-parameters, read from the family's Hugging Face `config.json` (BERT and
//! RoBERTa share [`BertConfig`], DistilBERT names the same numbers differently) and checked
//! before anything is allocated from them.

use crate::models::components::Act;
use crate::models::config;
use crate::{Error, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The architectures this module loads.
pub const SUPPORTED: &[&str] = &[
    "BertModel",
    "BertForSequenceClassification",
    "RobertaModel",
    "RobertaForSequenceClassification",
    "DistilBertModel",
    "DistilBertForSequenceClassification",
];

/// Model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Bert,
    Roberta,
    DistilBert,
}

/// How position ids are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions {
    /// `0..pos` (BERT, DistilBERT).
    Absolute,
    /// RoBERTa: `padding_idx + 1 + i` for real tokens, `padding_idx` for padding.
    AfterPadding { pad: usize },
}

/// Hyper-parameters resolved from the family's config struct (the keys differ per family; see
/// [`EncoderConfig::from_hf`]).
#[derive(Debug, Clone)]
pub struct EncoderConfig {
    pub family: Family,
    pub architecture: String,
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub d_mlp: usize,
    pub act: Act,
    pub max_positions: usize,
    pub type_vocab_size: usize,
    pub ln_eps: f64,
    pub pad_token_id: usize,
    pub positions: Positions,
    /// Classification model (has a head) or plain encoder (sentence embeddings).
    pub classifier: bool,
    /// Class names from `id2label`, if present.
    pub labels: Vec<String>,
}

/// HF `BertConfig` / `RobertaConfig` keys gradpath reads. Sizes are required; optional
/// settings take HF's defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "gelu")]
    pub hidden_act: String,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "eps_1e12")]
    pub layer_norm_eps: f64,
    pub pad_token_id: Option<usize>,
    pub position_embedding_type: Option<String>,
    pub id2label: Option<BTreeMap<String, String>>,
}

/// HF `DistilBertConfig` keys gradpath reads (the same hyper-parameters under other names; no
/// token types; LayerNorm ε fixed at 1e-12).
#[derive(Debug, Clone, Deserialize)]
pub struct DistilBertConfig {
    pub vocab_size: usize,
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub hidden_dim: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "gelu")]
    pub activation: String,
    pub pad_token_id: Option<usize>,
    pub id2label: Option<BTreeMap<String, String>>,
}

fn gelu() -> String {
    "gelu".into()
}
fn two() -> usize {
    2
}
fn eps_1e12() -> f64 {
    1e-12
}

/// Class names in id order from `id2label` (keys are class indices written as strings).
fn labels(id2label: Option<BTreeMap<String, String>>) -> Result<Vec<String>> {
    let mut labels = Vec::new();
    for (k, v) in id2label.unwrap_or_default() {
        let i: usize = k.parse().map_err(|_| {
            config::error(
                "id2label",
                format!("has the key `{k}`, which is not a class index"),
            )
        })?;
        labels.push((i, v));
    }
    labels.sort();
    Ok(labels.into_iter().map(|(_, v)| v).collect())
}

/// Every architecture gradpath loads (for errors).
fn all_supported() -> Vec<String> {
    SUPPORTED
        .iter()
        .chain(crate::models::decoder::SUPPORTED)
        .map(|s| s.to_string())
        .collect()
}

impl EncoderConfig {
    /// Reads a HF config with the family's serde struct ([`BertConfig`] for BERT and RoBERTa,
    /// [`DistilBertConfig`]); errors name the key or the unsupported architecture.
    pub fn from_hf(cfg: &Value) -> Result<EncoderConfig> {
        let (arch, model_type) = config::names(cfg);
        let arch = match (arch, model_type.as_deref()) {
            (Some(a), _) => a,
            (None, Some("bert")) => "BertModel".into(),
            (None, Some("roberta")) => "RobertaModel".into(),
            (None, Some("distilbert")) => "DistilBertModel".into(),
            (None, t) => {
                return Err(Error::UnsupportedArchitecture {
                    found: format!(
                        "(none: config.json names no architecture; model_type {})",
                        t.unwrap_or("(none)")
                    ),
                    supported: all_supported(),
                })
            }
        };
        if !SUPPORTED.contains(&arch.as_str()) {
            return Err(Error::UnsupportedArchitecture {
                found: arch,
                supported: all_supported(),
            });
        }
        let family = if arch.starts_with("DistilBert") {
            Family::DistilBert
        } else if arch.starts_with("Roberta") {
            Family::Roberta
        } else {
            Family::Bert
        };
        let classifier = arch.ends_with("ForSequenceClassification");
        let c = match family {
            Family::Bert | Family::Roberta => {
                let k: BertConfig = config::parse(cfg)?;
                if let Some(p) = k.position_embedding_type.as_deref() {
                    if p != "absolute" {
                        return Err(config::error(
                            "position_embedding_type",
                            format!("`{p}` is not supported (only `absolute`)"),
                        ));
                    }
                }
                let pad = k.pad_token_id.unwrap_or(0);
                EncoderConfig {
                    family,
                    architecture: arch,
                    vocab_size: k.vocab_size,
                    d_model: k.hidden_size,
                    n_layers: k.num_hidden_layers,
                    n_heads: k.num_attention_heads,
                    d_mlp: k.intermediate_size,
                    act: Act::from_hf("hidden_act", &k.hidden_act)?,
                    max_positions: k.max_position_embeddings,
                    type_vocab_size: k.type_vocab_size,
                    ln_eps: k.layer_norm_eps,
                    pad_token_id: pad,
                    positions: if family == Family::Roberta {
                        Positions::AfterPadding { pad }
                    } else {
                        Positions::Absolute
                    },
                    classifier,
                    labels: labels(k.id2label)?,
                }
            }
            Family::DistilBert => {
                let k: DistilBertConfig = config::parse(cfg)?;
                EncoderConfig {
                    family,
                    architecture: arch,
                    vocab_size: k.vocab_size,
                    d_model: k.dim,
                    n_layers: k.n_layers,
                    n_heads: k.n_heads,
                    d_mlp: k.hidden_dim,
                    act: Act::from_hf("activation", &k.activation)?,
                    max_positions: k.max_position_embeddings,
                    type_vocab_size: 0,
                    ln_eps: 1e-12,
                    pad_token_id: k.pad_token_id.unwrap_or(0),
                    positions: Positions::Absolute,
                    classifier,
                    labels: labels(k.id2label)?,
                }
            }
        };
        c.validate()?;
        if c.n_heads == 0 || !c.d_model.is_multiple_of(c.n_heads) {
            return Err(config::error(
                "num_attention_heads",
                format!(
                    "{} does not divide the hidden size {}",
                    c.n_heads, c.d_model
                ),
            ));
        }
        Ok(c)
    }

    pub fn d_head(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Checks every size against [`config::LIMITS`] and `layer_norm_eps` > 0, before anything is
    /// allocated from them (a config error names the key).
    pub fn validate(&self) -> Result<()> {
        let bert = self.family != Family::DistilBert;
        let key = |b: &'static str, d: &'static str| if bert { b } else { d };
        config::check_size(key("vocab_size", "vocab_size"), self.vocab_size)?;
        config::check_size(key("hidden_size", "dim"), self.d_model)?;
        config::check_size(key("num_hidden_layers", "n_layers"), self.n_layers)?;
        config::check_size(key("num_attention_heads", "n_heads"), self.n_heads)?;
        config::check_size(key("intermediate_size", "hidden_dim"), self.d_mlp)?;
        config::check_size("max_position_embeddings", self.max_positions)?;
        if bert {
            config::check_eps("layer_norm_eps", self.ln_eps)?;
            if self.type_vocab_size > config::LIMITS.vocab_size {
                return Err(config::error(
                    "type_vocab_size",
                    format!("{} is too large", self.type_vocab_size),
                ));
            }
            if self.pad_token_id >= self.vocab_size {
                return Err(config::error(
                    "pad_token_id",
                    format!(
                        "{} is not below vocab_size {}",
                        self.pad_token_id, self.vocab_size
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Longest input in tokens.
    pub fn max_tokens(&self) -> usize {
        match self.positions {
            Positions::Absolute => self.max_positions,
            Positions::AfterPadding { pad } => self.max_positions.saturating_sub(pad + 1),
        }
    }
}
