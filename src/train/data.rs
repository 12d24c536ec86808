//! Labelled text data: JSONL files with one example per line,
//! `{"id": …, "text": "…", "text_pair": "…" (optional), "label": 1 | "positive"}`.
//! A label is a class index (`0..n`) or a class name of the model (`id2label`, or the names the
//! caller gives). Texts are encoded with the model's tokenizer, truncated to `max_len` tokens the
//! way transformers does (`truncation=True`: longest sequence first, special tokens kept), and
//! counted when they are; a batch is padded to its longest row with the pad id and mask 0.

use crate::models::Batch;
use crate::{Error, Result};
use serde_json::Value;
use std::path::Path;
use tokenizers::{TruncationDirection, TruncationParams, TruncationStrategy};

/// One labelled example.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Example {
    pub id: String,
    pub text: String,
    pub text_pair: Option<String>,
    /// Class index.
    pub label: usize,
    /// The reasoning depth, where the record has one (`gradpath data rules` writes it): the
    /// evaluation reports accuracy per depth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
}

pub(crate) fn data_err(path: &Path, line: usize, detail: impl Into<String>) -> Error {
    Error::Data {
        file: path.display().to_string(),
        line,
        detail: detail.into(),
    }
}

/// The class index of a JSON label: an integer in `0..labels.len()`, a class name, or a string
/// holding an index.
pub fn resolve_label(v: &Value, labels: &[String]) -> std::result::Result<usize, String> {
    let n = labels.len();
    let valid = || {
        format!(
            "a class index 0..{} or one of: {}",
            n.saturating_sub(1),
            labels.join(", ")
        )
    };
    let idx = match v {
        Value::Number(x) => match x.as_u64() {
            Some(i) => i as usize,
            None => {
                return Err(format!(
                    "label {x} is not a class index (expected {})",
                    valid()
                ))
            }
        },
        Value::String(s) => match labels.iter().position(|l| l == s) {
            Some(i) => return Ok(i),
            None => match s.parse::<usize>() {
                Ok(i) => i,
                Err(_) => return Err(format!("unknown label `{s}` (expected {})", valid())),
            },
        },
        Value::Null => return Err("the label is null".into()),
        other => return Err(format!("label {other} is not a class index or name")),
    };
    if idx >= n {
        return Err(format!(
            "label {idx} is out of range (expected {})",
            valid()
        ));
    }
    Ok(idx)
}

/// Line `n` of the JSONL file `path` as an object with its `text` (a non-empty string) and
/// optional `text_pair`: what every reader of example files checks first (`read_jsonl`,
/// `explain::compare::read_data`). Errors name the file and line.
pub(crate) fn text_line(
    path: &Path,
    n: usize,
    line: &str,
) -> Result<(serde_json::Map<String, Value>, String, Option<String>)> {
    let v: Value = serde_json::from_str(line)
        .map_err(|e| data_err(path, n, format!("not a JSON object ({e})")))?;
    let Value::Object(obj) = v else {
        return Err(data_err(path, n, "not a JSON object"));
    };
    let text = match obj.get("text") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) => return Err(data_err(path, n, "the text is empty")),
        Some(_) => return Err(data_err(path, n, "\"text\" is not a string")),
        None => return Err(data_err(path, n, "no \"text\"")),
    };
    let pair = match obj.get("text_pair") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(data_err(path, n, "\"text_pair\" is not a string")),
    };
    Ok((obj, text, pair))
}

/// Reads a JSONL file of labelled examples. Blank lines are skipped; a file without examples is
/// an error, as is a line without `text` or `label` or with a label that does not resolve.
pub fn read_jsonl(path: &Path, labels: &[String]) -> Result<Vec<Example>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let (obj, text, text_pair) = text_line(path, n, line)?;
        let label = match obj.get("label") {
            None => return Err(data_err(path, n, "no \"label\"")),
            Some(l) => resolve_label(l, labels).map_err(|d| data_err(path, n, d))?,
        };
        let id = match obj.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(x)) => x.to_string(),
            _ => n.to_string(),
        };
        let depth = match obj.get("depth") {
            None | Some(Value::Null) => None,
            Some(d) => Some(d.as_u64().ok_or_else(|| {
                data_err(path, n, format!("\"depth\" {d} is not a whole number ≥ 0"))
            })? as usize),
        };
        out.push(Example {
            id,
            text,
            text_pair,
            label,
            depth,
        });
    }
    if out.is_empty() {
        return Err(data_err(path, 0, "has no examples"));
    }
    Ok(out)
}

/// Token ids of one example.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub ids: Vec<usize>,
    pub type_ids: Vec<usize>,
    pub label: usize,
    /// [`Example::depth`].
    pub depth: Option<usize>,
}

/// The model's tokenizer with transformers' truncation at `max_len` tokens.
pub struct TextEncoder {
    inner: tokenizers::Tokenizer,
    pub max_len: usize,
    pub pad_id: usize,
}

impl TextEncoder {
    /// From a `tokenizer.json`; `max_len` counts the special tokens.
    pub fn new(tokenizer_json: &Path, max_len: usize, pad_id: usize) -> Result<TextEncoder> {
        if max_len < 4 {
            return Err(Error::BadValue {
                name: "max_len",
                detail: format!("{max_len} tokens leave no room for text (at least 4)"),
            });
        }
        let mut inner = crate::io::tokenizer::read_tokenizer_json(tokenizer_json)?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| Error::Tokenizer(format!("cannot set truncation: {e}")))?;
        Ok(TextEncoder {
            inner,
            max_len,
            pad_id,
        })
    }

    /// Encodes examples; returns them with the number that were truncated.
    pub fn encode(&self, examples: &[Example]) -> Result<(Vec<Encoded>, usize)> {
        let mut out = Vec::with_capacity(examples.len());
        let mut truncated = 0;
        for ex in examples {
            let enc = match &ex.text_pair {
                None => self.inner.encode(ex.text.as_str(), true),
                Some(p) => self.inner.encode((ex.text.as_str(), p.as_str()), true),
            }
            .map_err(|e| Error::Tokenizer(format!("cannot tokenize example `{}`: {e}", ex.id)))?;
            if !enc.get_overflowing().is_empty() {
                truncated += 1;
            }
            out.push(Encoded {
                ids: enc.get_ids().iter().map(|&i| i as usize).collect(),
                type_ids: enc.get_type_ids().iter().map(|&i| i as usize).collect(),
                label: ex.label,
                depth: ex.depth,
            });
        }
        Ok((out, truncated))
    }
}

/// A padded batch of encoded examples (rows padded to the longest with `pad_id`, mask 0) and
/// their labels.
pub fn batch(rows: &[&Encoded], pad_id: usize) -> (Batch, Vec<usize>) {
    let t = rows.iter().map(|r| r.ids.len()).max().unwrap_or(0);
    let b = rows.len();
    let mut x = Batch {
        ids: Vec::with_capacity(b * t),
        type_ids: Vec::with_capacity(b * t),
        mask: Vec::with_capacity(b * t),
        batch: b,
        pos: t,
    };
    for r in rows {
        let pad = t - r.ids.len();
        x.ids.extend_from_slice(&r.ids);
        x.ids.extend(std::iter::repeat_n(pad_id, pad));
        x.type_ids.extend_from_slice(&r.type_ids);
        x.type_ids.extend(std::iter::repeat_n(0, pad));
        x.mask.extend(std::iter::repeat_n(1u8, r.ids.len()));
        x.mask.extend(std::iter::repeat_n(0u8, pad));
    }
    (x, rows.iter().map(|r| r.label).collect())
}
