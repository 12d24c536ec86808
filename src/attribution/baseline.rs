//! Baselines for token IG: the start x′ of the path in word-embedding space.
//!
//! `pad`, `mask`, `unk` replace every non-special token by that token's id (`[CLS]`/`[SEP]`/BOS/EOS
//! kept, as in the Captum BERT tutorial); `zero` is the zero word embedding at every position.
//! Position and token-type embeddings are never touched (they are not on the path).

use crate::io::{Encoded, Tokenizer};
use crate::models::Model;
use crate::{Error, Result, Tensor};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Baseline {
    Pad,
    /// The end-of-sequence token (decoders).
    Eos,
    Zero,
    Mask,
    Unk,
    /// A given token id.
    Token(usize),
}

impl Baseline {
    pub fn parse(s: &str) -> Result<Baseline> {
        match s {
            "pad" => Ok(Baseline::Pad),
            "eos" => Ok(Baseline::Eos),
            "zero" => Ok(Baseline::Zero),
            "mask" => Ok(Baseline::Mask),
            "unk" => Ok(Baseline::Unk),
            _ => match s.strip_prefix("id:").map(str::parse) {
                Some(Ok(id)) => Ok(Baseline::Token(id)),
                _ => Err(Error::Unknown {
                    what: "baseline",
                    value: s.to_string(),
                    valid: ["pad", "eos", "zero", "mask", "unk", "id:N"]
                        .map(String::from)
                        .to_vec(),
                }),
            },
        }
    }

    pub fn name(&self) -> String {
        match self {
            Baseline::Pad => "pad".into(),
            Baseline::Eos => "eos".into(),
            Baseline::Zero => "zero".into(),
            Baseline::Mask => "mask".into(),
            Baseline::Unk => "unk".into(),
            Baseline::Token(id) => format!("id:{id}"),
        }
    }

    /// The baseline token id (None for `zero`).
    pub fn token_id(&self, tok: &Tokenizer, model: &dyn Model) -> Result<Option<usize>> {
        let find = |names: &[&str], role: &'static str| {
            tok.find_token(names)
                .map(|(_, id)| id)
                .ok_or(Error::NoToken {
                    role,
                    owner: "tokenizer",
                })
        };
        Ok(match self {
            Baseline::Zero => None,
            Baseline::Pad => Some(
                match tok.find_token(&["[PAD]", "<pad>", "<|pad|>", "<|padding|>"]) {
                    Some((_, id)) => id,
                    None => model.pad_token_id().ok_or(Error::NoToken {
                        role: "pad",
                        owner: "model",
                    })?,
                },
            ),
            Baseline::Eos => Some(match model.eos_token_id() {
                Some(id) => id,
                None => find(
                    &["</s>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>"],
                    "end-of-sequence",
                )?,
            }),
            Baseline::Mask => Some(find(&["[MASK]", "<mask>"], "mask")?),
            Baseline::Unk => Some(match model.unk_token_id() {
                Some(id) if tok.find_token(&["[UNK]", "<unk>", "<|unk|>"]).is_none() => id,
                _ => find(&["[UNK]", "<unk>", "<|unk|>"], "unknown-word")?,
            }),
            Baseline::Token(id) => Some(*id),
        })
    }

    /// Baseline ids (`None` for `zero`) and word embeddings `[pos, d_model]`.
    pub fn build(
        &self,
        enc: &Encoded,
        tok: &Tokenizer,
        model: &dyn Model,
    ) -> Result<(Option<Vec<usize>>, Tensor)> {
        match self.token_id(tok, model)? {
            None => {
                let t =
                    Tensor::zeros_on(&[enc.len(), model.d_model()], model.dtype(), model.device())?;
                Ok((None, t))
            }
            Some(id) => {
                let ids: Vec<usize> = enc
                    .ids
                    .iter()
                    .zip(&enc.special)
                    .map(|(&i, &s)| if s { i } else { id })
                    .collect();
                let emb = model.word_embeddings(&ids)?;
                Ok((Some(ids), emb))
            }
        }
    }
}
