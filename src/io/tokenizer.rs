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

/// Reads a `tokenizer.json` with the `tokenizers` crate, which panics on some malformed files
/// (found by fuzzing: `fuzz/regressions/tokenizer/`): the text must be valid JSON first, and a
/// panic inside the crate becomes an [`Error::Tokenizer`] (the panic message is not printed; the
/// process-wide panic hook is replaced for the duration of the call).
pub fn read_tokenizer_json(path: &Path) -> Result<tokenizers::Tokenizer> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let bad = |why: String| {
        Error::Tokenizer(format!(
            "{}: cannot read the tokenizer ({why})",
            path.display()
        ))
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(|| text.parse::<tokenizers::Tokenizer>());
    std::panic::set_hook(hook);
    match r {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(bad(e.to_string())),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(bad(format!("the file is malformed: {msg}")))
        }
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
        let inner = read_tokenizer_json(path)?;
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
        self.encode_with(text, pair, true)
    }

    /// Encodes `text` (and `pair`), adding the post-processor's special tokens (BOS, `[CLS]`,
    /// ...) only when `add_special` (a rendered chat prompt already holds them).
    pub fn encode_with(
        &self,
        text: &str,
        pair: Option<&str>,
        add_special: bool,
    ) -> Result<Encoded> {
        let enc = match pair {
            None => self.inner.encode(text, add_special),
            Some(p) => self.inner.encode((text, p), add_special),
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

    /// How this vocabulary spells text, read from the tokenizer's decoder (and pre-tokenizer):
    /// a `ByteLevel` decoder or pre-tokenizer is byte-level BPE; a `Metaspace` decoder, or a
    /// decoder sequence with `ByteFallback` or a `▁` replacement, is SentencePiece; anything else
    /// (WordPiece, ...) is plain.
    pub fn spelling(&self) -> TokenSpelling {
        fn types(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(t) = m.get("type").and_then(|t| t.as_str()) {
                        out.push(t.to_string());
                    }
                    if let Some(serde_json::Value::String(p)) =
                        m.get("pattern").and_then(|p| p.get("String"))
                    {
                        out.push(format!("pattern:{p}"));
                    }
                    m.values().for_each(|x| types(x, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| types(x, out)),
                _ => {}
            }
        }
        let mut t = Vec::new();
        if let Some(d) = self.inner.get_decoder() {
            types(&serde_json::to_value(d).unwrap_or_default(), &mut t);
        }
        if let Some(p) = self.inner.get_pre_tokenizer() {
            types(&serde_json::to_value(p).unwrap_or_default(), &mut t);
        }
        let has = |x: &str| t.iter().any(|y| y == x);
        if has("ByteLevel") {
            TokenSpelling::ByteLevel
        } else if has("Metaspace") || has("ByteFallback") || has("pattern:\u{2581}") {
            TokenSpelling::SentencePiece
        } else {
            TokenSpelling::Plain
        }
    }

    /// Readable text of each token ([`display_tokens`] with this tokenizer's spelling).
    pub fn display_tokens(&self, tokens: &[String], special: &[bool]) -> Vec<String> {
        display_tokens(self.spelling(), tokens, special)
    }

    /// Readable text of one token id on its own (a byte that is not a whole character shows as
    /// `<0xNN>`); `None` for an id outside the vocabulary.
    pub fn display_token(&self, id: usize) -> Option<String> {
        let t = self.id_to_token(id)?;
        let special = self.is_special(id);
        Some(display_tokens(self.spelling(), &[t], &[special]).remove(0))
    }

    /// True for an added special token (`<|im_end|>`, `[CLS]`, ...).
    pub fn is_special(&self, id: usize) -> bool {
        self.inner
            .get_added_tokens_decoder()
            .get(&(id as u32))
            .is_some_and(|a| a.special)
    }

    /// The first of `candidates` that exists in the vocabulary.
    pub fn find_token(&self, candidates: &[&str]) -> Option<(String, usize)> {
        candidates
            .iter()
            .find_map(|c| self.token_to_id(c).map(|id| (c.to_string(), id)))
    }

    /// True when both tokenizers have the same vocabulary (every token string with the same id,
    /// added tokens included).
    pub fn same_vocabulary(&self, other: &Tokenizer) -> bool {
        self.inner.get_vocab(true) == other.inner.get_vocab(true)
    }

    /// Truncation as transformers' `truncation=True` at `max_len` tokens (the longest segment
    /// loses a token first, special tokens kept; what `gradpath train` and `eval` do): `None`
    /// when the encoding of `text` (and `pair`) fits, else the bytes of `text` and of `pair`
    /// that the kept tokens cover (each segment cut after its last kept token) and the kept ids.
    #[allow(clippy::type_complexity)]
    pub fn truncation_cut(
        &self,
        text: &str,
        pair: Option<&str>,
        max_len: usize,
    ) -> Result<Option<(usize, Option<usize>, Vec<usize>)>> {
        let mut t = self.inner.clone();
        t.with_truncation(Some(tokenizers::TruncationParams {
            direction: tokenizers::TruncationDirection::Right,
            max_length: max_len,
            strategy: tokenizers::TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(|e| Error::Tokenizer(format!("cannot set truncation: {e}")))?;
        let enc = match pair {
            None => t.encode(text, true),
            Some(p) => t.encode((text, p), true),
        }
        .map_err(|e| Error::Tokenizer(format!("cannot tokenize the text: {e}")))?;
        if enc.get_overflowing().is_empty() {
            return Ok(None);
        }
        // offsets are byte offsets into each token's own segment
        let mut ends = [0usize; 2];
        for (s, o) in enc.get_sequence_ids().iter().zip(enc.get_offsets()) {
            if let Some(s) = s.filter(|&s| s < 2) {
                ends[s] = ends[s].max(o.1);
            }
        }
        let ids = enc.get_ids().iter().map(|&i| i as usize).collect();
        Ok(Some((ends[0], pair.map(|_| ends[1]), ids)))
    }
}

/// How a vocabulary's token strings spell text, for [`display_tokens`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSpelling {
    /// GPT-2 byte-level BPE: every byte is one printable character (`Ġ` = space, `Ċ` = newline,
    /// `Ð` = the byte 0xD0, ...).
    ByteLevel,
    /// SentencePiece: `▁` is a space, `<0xNN>` a raw byte (byte fallback).
    SentencePiece,
    /// Token strings are text as they are (WordPiece keeps its `##` continuation marks).
    Plain,
}

/// GPT-2's `bytes_to_unicode` inverted: the character a byte-level vocabulary uses for each byte
/// maps back to the byte.
fn byte_level_byte(c: char) -> Option<u8> {
    let u = c as u32;
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    if u < 256 && printable(u) {
        return Some(u as u8);
    }
    if u >= 256 {
        // the other bytes (0..=32, 127..=160, 173) take 256, 257, ... in byte order
        let mut n = 256;
        for b in 0u32..256 {
            if !printable(b) {
                if n == u {
                    return Some(b as u8);
                }
                n += 1;
            }
        }
    }
    None
}

/// `<0xNN>` → the byte NN.
fn byte_token(t: &str) -> Option<u8> {
    let h = t.strip_prefix("<0x")?.strip_suffix('>')?;
    if h.len() != 2 {
        return None;
    }
    u8::from_str_radix(h, 16).ok()
}

/// The bytes a token string stands for.
fn token_bytes(spelling: TokenSpelling, token: &str) -> Vec<u8> {
    match spelling {
        TokenSpelling::ByteLevel => {
            let mut out = Vec::with_capacity(token.len());
            for c in token.chars() {
                match byte_level_byte(c) {
                    Some(b) => out.push(b),
                    // an added token spelled in plain text
                    None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
            out
        }
        TokenSpelling::SentencePiece => match byte_token(token) {
            Some(b) => vec![b],
            None => token.replace('\u{2581}', " ").into_bytes(),
        },
        TokenSpelling::Plain => token.as_bytes().to_vec(),
    }
}

/// Readable text for each token of a sequence: byte-level BPE and SentencePiece spellings decoded
/// to the text they stand for (`Ġmany` → `" many"`, `Ċ` → `"\n"`, `▁Paris` → `" Paris"`,
/// `<0x0A>` → `"\n"`), with characters whose UTF-8 bytes are spread over several tokens decoded
/// from the whole byte sequence: such a character is shown on the token that holds its first
/// byte, and a token holding only the remaining bytes of a character shows as `""`. Bytes that
/// do not form a character (a sequence cut inside one) show as `<0xNN>`. Special tokens
/// (`special[i]`) are shown as they are spelled (`<|im_start|>`, `[CLS]`) and split the byte
/// sequence. Concatenating the non-special entries gives the decoded text.
pub fn display_tokens(spelling: TokenSpelling, tokens: &[String], special: &[bool]) -> Vec<String> {
    let mut out = vec![String::new(); tokens.len()];
    let mut i = 0;
    while i < tokens.len() {
        if special.get(i).copied().unwrap_or(false) {
            out[i] = tokens[i].clone();
            i += 1;
            continue;
        }
        // a run of ordinary tokens: one byte sequence, with the token that owns each byte
        let mut bytes = Vec::new();
        let mut owner = Vec::new();
        let mut j = i;
        while j < tokens.len() && !special.get(j).copied().unwrap_or(false) {
            let b = token_bytes(spelling, &tokens[j]);
            owner.extend(std::iter::repeat_n(j, b.len()));
            bytes.extend(b);
            j += 1;
        }
        let mut p = 0;
        while p < bytes.len() {
            let width = match bytes[p] {
                0x00..=0x7F => 1,
                0xC2..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF4 => 4,
                _ => 0,
            };
            match (width > 0)
                .then(|| bytes.get(p..p + width))
                .flatten()
                .and_then(|s| std::str::from_utf8(s).ok())
            {
                Some(s) => {
                    out[owner[p]].push_str(s);
                    p += width;
                }
                None => {
                    out[owner[p]].push_str(&format!("<0x{:02X}>", bytes[p]));
                    p += 1;
                }
            }
        }
        i = j;
    }
    out
}

/// A label for a terminal table or an HTML page: [`display_tokens`]' text with line breaks and
/// tabs made visible (`⏎`, `⇥`) and other control characters as `<0xNN>`; an empty entry (the
/// rest of a character shown on the token before) as `·`.
pub fn printable(label: &str) -> String {
    if label.is_empty() {
        return "·".into();
    }
    let mut s = String::with_capacity(label.len());
    for c in label.chars() {
        match c {
            '\n' => s.push('⏎'),
            '\t' => s.push('⇥'),
            c if c.is_control() => s.push_str(&format!("<0x{:02X}>", c as u32)),
            c => s.push(c),
        }
    }
    s
}
