//! `tokenizer.json` through the `tokenizers` crate: ids, token strings, character offsets (for
//! sub-word → word aggregation) and which tokens are special.

use crate::{Error, Result};
use std::path::Path;

/// A loaded Hugging Face tokenizer.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

/// One encoded text (or text pair).
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub ids: Vec<usize>,
    pub tokens: Vec<String>,
    pub type_ids: Vec<usize>,
    /// Character offsets `(start, end)` into the text each token came from.
    pub offsets: Vec<(usize, usize)>,
    /// true for added special tokens (`[CLS]`, `[SEP]`, `<s>`, ...).
    pub special: Vec<bool>,
    /// Word index of each token (None for special tokens).
    pub words: Vec<Option<u32>>,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl Tokenizer {
    pub fn from_file(path: &Path) -> Result<Tokenizer> {
        if !path.exists() {
            return Err(Error::NotFound {
                path: path.display().to_string(),
                what: "tokenizer file".into(),
            });
        }
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| {
            Error::Tokenizer(format!(
                "{}: cannot read the tokenizer ({e})",
                path.display()
            ))
        })?;
        Tokenizer::from_tokenizers(inner).map_err(|e| match e {
            Error::Tokenizer(m) => Error::Tokenizer(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Wraps a tokenizer built in code (e.g. from GGUF metadata), with the same settings as
    /// [`Tokenizer::from_file`].
    pub fn from_tokenizers(mut inner: tokenizers::Tokenizer) -> Result<Tokenizer> {
        // One text at a time: no padding to a fixed length, and no silent truncation (too-long
        // input is an error, or `--truncate`).
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(format!("cannot disable truncation: {e}")))?;
        Ok(Tokenizer { inner })
    }

    /// Encodes `text` (and `pair`, if given) with the tokenizer's special tokens.
    pub fn encode(&self, text: &str, pair: Option<&str>) -> Result<Encoded> {
        let enc = match pair {
            None => self.inner.encode(text, true),
            Some(p) => self.inner.encode((text, p), true),
        }
        .map_err(|e| Error::Tokenizer(format!("cannot tokenize the text: {e}")))?;
        Ok(Encoded {
            ids: enc.get_ids().iter().map(|&i| i as usize).collect(),
            tokens: enc.get_tokens().to_vec(),
            type_ids: enc.get_type_ids().iter().map(|&i| i as usize).collect(),
            offsets: enc.get_offsets().to_vec(),
            special: enc
                .get_special_tokens_mask()
                .iter()
                .map(|&m| m == 1)
                .collect(),
            words: enc.get_word_ids().to_vec(),
        })
    }

    /// Ids of `text` without special tokens.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<usize>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(format!("cannot tokenize the text: {e}")))?;
        Ok(enc.get_ids().iter().map(|&i| i as usize).collect())
    }

    /// Decodes ids to text (special tokens skipped).
    pub fn decode(&self, ids: &[usize]) -> Result<String> {
        let ids: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
        self.inner
            .decode(&ids, true)
            .map_err(|e| Error::Tokenizer(format!("cannot decode token ids: {e}")))
    }

    /// Id of a token string, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<usize> {
        self.inner.token_to_id(token).map(|i| i as usize)
    }

    pub fn id_to_token(&self, id: usize) -> Option<String> {
        self.inner.id_to_token(id as u32)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The first of `candidates` that exists in the vocabulary.
    pub fn find_token(&self, candidates: &[&str]) -> Option<(String, usize)> {
        candidates
            .iter()
            .find_map(|c| self.token_to_id(c).map(|id| (c.to_string(), id)))
    }
}
