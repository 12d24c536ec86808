//! Reading a Hugging Face `config.json` into a per-family `#[derive(Deserialize)]` struct.
//!
//! Each family mirrors the keys HF writes, with HF's defaults where HF has one; a key that is
//! present with the wrong type (a string where a number belongs, a float for a layer count) is an
//! [`Error::Config`] naming the key, never a silent default.

use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// The file named in config errors (GGUF models carry a config derived from their metadata).
pub const FILE: &str = "config.json";

/// A config error for `key`.
pub fn error(key: &str, detail: impl Into<String>) -> Error {
    Error::Config {
        file: FILE.into(),
        key: key.into(),
        detail: detail.into(),
    }
}

/// Deserialises `cfg` into `T`; the error names the offending key.
pub fn parse<T: DeserializeOwned>(cfg: &Value) -> Result<T> {
    let err = match T::deserialize(cfg) {
        Ok(t) => return Ok(t),
        Err(e) => e.to_string(),
    };
    if let Some(key) = err
        .strip_prefix("missing field `")
        .and_then(|s| s.split('`').next())
    {
        return Err(error(key, "is missing"));
    }
    // serde_json does not say which key failed: the culprit is the key whose removal changes
    // the error (with one bad key, removing it gives success or "missing field").
    if let Value::Object(map) = cfg {
        for (k, v) in map {
            let mut rest = map.clone();
            rest.remove(k);
            let changed = match T::deserialize(&Value::Object(rest)) {
                Ok(_) => true,
                Err(e) => e.to_string() != err,
            };
            if changed {
                return Err(error(k, format!("is invalid ({err}; found {v})")));
            }
        }
    }
    Err(error("(config)", err))
}

/// The largest sizes a config may ask for: far above any released transformer, low enough that
/// nothing derived from them overflows or asks for memory no machine has.
pub struct Limits {
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub d_mlp: usize,
    pub max_positions: usize,
}

/// See [`Limits`].
pub const LIMITS: Limits = Limits {
    vocab_size: 4 << 20,
    d_model: 1 << 16,
    n_layers: 1024,
    n_heads: 1024,
    d_mlp: 1 << 18,
    max_positions: 1 << 22,
};

/// Checks a size key: at least 1 and at most its [`LIMITS`] entry.
pub fn check_size(key: &str, value: usize) -> Result<()> {
    let max = match key {
        "vocab_size" => LIMITS.vocab_size,
        "hidden_size" | "dim" | "n_embd" => LIMITS.d_model,
        "num_hidden_layers" | "n_layers" | "n_layer" => LIMITS.n_layers,
        "num_attention_heads" | "n_heads" | "n_head" | "num_key_value_heads" => LIMITS.n_heads,
        "intermediate_size" | "hidden_dim" | "n_inner" => LIMITS.d_mlp,
        "max_position_embeddings" | "n_positions" | "n_ctx" => LIMITS.max_positions,
        _ => usize::MAX,
    };
    if value == 0 {
        return Err(error(key, "is 0; it must be at least 1"));
    }
    if value > max {
        return Err(error(
            key,
            format!("is {value}, more than the largest supported ({max})"),
        ));
    }
    Ok(())
}

/// Checks a normalisation epsilon: finite and > 0 (a negative one gives NaN).
pub fn check_eps(key: &str, eps: f64) -> Result<()> {
    if !(eps.is_finite() && eps > 0.0) {
        return Err(error(
            key,
            format!("is {eps}; it must be a finite number > 0"),
        ));
    }
    Ok(())
}

/// A token id that may be written as a list (Llama 3's `eos_token_id`): the first one is used.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TokenId {
    One(usize),
    Many(Vec<usize>),
}

impl TokenId {
    pub fn first(&self) -> Option<usize> {
        match self {
            TokenId::One(v) => Some(*v),
            TokenId::Many(v) => v.first().copied(),
        }
    }
}

/// The special-token ids of a decoder config, each possibly a list (flattened into the family's
/// config struct).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SpecialTokens {
    pub bos_token_id: Option<TokenId>,
    pub eos_token_id: Option<TokenId>,
    pub pad_token_id: Option<TokenId>,
    pub unk_token_id: Option<TokenId>,
}

impl SpecialTokens {
    /// `[bos, eos, pad, unk]`, the first id of each.
    pub fn ids(&self) -> [Option<usize>; 4] {
        [
            token_id(&self.bos_token_id),
            token_id(&self.eos_token_id),
            token_id(&self.pad_token_id),
            token_id(&self.unk_token_id),
        ]
    }
}

/// The first token id of an optional `TokenId`.
pub fn token_id(t: &Option<TokenId>) -> Option<usize> {
    t.as_ref().and_then(TokenId::first)
}

/// The `architectures[0]` and `model_type` of a config, read leniently (only to dispatch).
pub fn names(cfg: &Value) -> (Option<String>, Option<String>) {
    let arch = cfg
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .map(str::to_string);
    let model_type = cfg
        .get("model_type")
        .and_then(Value::as_str)
        .map(str::to_string);
    (arch, model_type)
}
