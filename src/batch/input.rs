//! The input of a batch run: JSON Lines, one example per line.
//!
//! ```text
//! {"id": "ex-1", "text": "A fine film.", "text_pair": null, "target": 1, "label": "positive",
//!  "similar_to": "…", "target_token": " Paris", "position": 4}
//! ```
//!
//! - `text` (required, a non-empty string);
//! - `id`: a string or a number (written as its JSON text); without one, the line number (from 1)
//!   is the id. Ids must be unique in the file; they decide the shard (see [`super::shard`]);
//! - optional per-example targets, overriding the run's: `target` (a class index or label),
//!   `similar_to`, `target_token` (an id or a one-token string), `position`; `label` (as in
//!   the training data) is the class target when the run asks for it
//!   ([`super::ExampleDefaults::label_as_target`]) and no `target` is given;
//! - `text_pair`: the second segment of a sentence-pair classifier;
//! - any other key is ignored. Blank lines are skipped.

use crate::{Error, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// One example of a batch input.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchExample {
    /// Line number in the input file (from 1).
    pub line: usize,
    pub id: String,
    pub text: String,
    pub text_pair: Option<String>,
    /// `target`: a class index or label.
    pub target: Option<String>,
    /// `label`: a class index or label.
    pub label: Option<String>,
    pub similar_to: Option<String>,
    pub target_token: Option<String>,
    pub position: Option<usize>,
}

/// A line that is not an example.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    pub line: usize,
    /// The line's id (the line number when it has none or does not parse).
    pub id: String,
    pub detail: String,
}

impl BadLine {
    /// The typed error for this line of `file`.
    pub fn error(&self, file: &Path) -> Error {
        Error::BadExample {
            file: file.display().to_string(),
            line: self.line,
            id: Some(self.id.clone()),
            detail: self.detail.clone(),
            cause: None,
        }
    }
}

/// A value given as a string or a number, as its text.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(x) => Some(x.to_string()),
        _ => None,
    }
}

fn parse_line(n: usize, line: &str) -> std::result::Result<BatchExample, BadLine> {
    let bad = |id: String, detail: String| BadLine {
        line: n,
        id,
        detail,
    };
    let v: Value = serde_json::from_str(line)
        .map_err(|e| bad(n.to_string(), format!("not a JSON object ({e})")))?;
    let Some(obj) = v.as_object() else {
        return Err(bad(n.to_string(), "not a JSON object".into()));
    };
    let id = match obj.get("id") {
        None | Some(Value::Null) => n.to_string(),
        Some(v) => match text_of(v) {
            Some(s) if !s.is_empty() => s,
            Some(_) => return Err(bad(n.to_string(), "\"id\" is empty".into())),
            None => {
                return Err(bad(
                    n.to_string(),
                    "\"id\" is not a string or a number".into(),
                ))
            }
        },
    };
    let text = match obj.get("text") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) => return Err(bad(id, "the text is empty".into())),
        Some(_) => return Err(bad(id, "\"text\" is not a string".into())),
        None => return Err(bad(id, "no \"text\"".into())),
    };
    let string = |key: &str| -> std::result::Result<Option<String>, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("\"{key}\" is not a string")),
        }
    };
    let class = |key: &str| -> std::result::Result<Option<String>, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => text_of(v)
                .map(Some)
                .ok_or_else(|| format!("\"{key}\" is not a class index or label")),
        }
    };
    let position = match obj.get("position") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(p) => Some(p as usize),
            None => return Err(bad(id, "\"position\" is not a whole number".into())),
        },
    };
    let fields = (|| {
        Ok::<_, String>((
            string("text_pair")?,
            class("target")?,
            class("label")?,
            string("similar_to")?,
            class("target_token")?,
        ))
    })();
    let (text_pair, target, label, similar_to, target_token) =
        fields.map_err(|d| bad(id.clone(), d))?;
    Ok(BatchExample {
        line: n,
        id,
        text,
        text_pair,
        target,
        label,
        similar_to,
        target_token,
        position,
    })
}

/// Every line of a JSONL input: the examples and the bad lines (not JSON, no text, a repeated
/// id: the second and later lines with an id are bad), in file order. An unreadable file or one
/// without any line is an error.
pub fn read_examples(path: &Path) -> Result<Vec<std::result::Result<BatchExample, BadLine>>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let mut out = Vec::new();
    let mut first: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let r = parse_line(n, line).and_then(|e| match first.get(&e.id) {
            Some(&l) => Err(BadLine {
                line: n,
                id: e.id.clone(),
                detail: format!(
                    "id {:?} is already used on line {l} (ids must be unique)",
                    e.id
                ),
            }),
            None => {
                first.insert(e.id.clone(), n);
                Ok(e)
            }
        });
        out.push(r);
    }
    if out.is_empty() {
        return Err(Error::BadExample {
            file: path.display().to_string(),
            line: 0,
            id: None,
            detail: "has no examples".into(),
            cause: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let e = parse_line(3, r#"{"id": 7, "text": "hi", "target": 1, "position": 2}"#).unwrap();
        assert_eq!(e.id, "7");
        assert_eq!(e.target.as_deref(), Some("1"));
        assert_eq!(e.position, Some(2));
        let e = parse_line(4, r#"{"text": "hi", "label": "pos"}"#).unwrap();
        assert_eq!(e.id, "4");
        assert_eq!(e.label.as_deref(), Some("pos"));
        let b = parse_line(5, "{\"text\": \"hi\"").unwrap_err();
        assert_eq!((b.line, b.id.as_str()), (5, "5"));
        assert!(b.detail.starts_with("not a JSON object"), "{}", b.detail);
        let b = parse_line(6, r#"{"id": "a", "text": " "}"#).unwrap_err();
        assert_eq!(
            (b.id.as_str(), b.detail.as_str()),
            ("a", "the text is empty")
        );
        let b = parse_line(6, r#"{"id": "a", "txt": "x"}"#).unwrap_err();
        assert_eq!(b.detail, "no \"text\"");
        let b = parse_line(6, r#"{"id": "a", "text": "x", "position": -1}"#).unwrap_err();
        assert!(b.detail.contains("position"));
    }
}
