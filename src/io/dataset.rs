//! Labelled examples from JSON Lines: one object per line, `{"id", "text", "label"}` and an
//! optional `"text_pair"` (the format `scripts/fetch-data.sh` writes). A label is a class index or
//! a class name from the model's `id2label`.

use crate::{Error, Result};
use serde_json::Value;
use std::path::Path;

/// One labelled example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub id: String,
    pub text: String,
    pub text_pair: Option<String>,
    /// Class index.
    pub label: usize,
}

fn bad(path: &Path, line: usize, why: String) -> Error {
    Error::BadValue {
        name: "data",
        detail: format!("{} line {line}: {why}", path.display()),
    }
}

/// Reads `path`, resolving labels against `labels` (class names in index order). Blank lines
/// are skipped; an id missing from a line is its line number. Errors name the file and line:
/// invalid JSON, a missing or empty text, a label that is neither a class index below
/// `labels.len()` nor one of the names, a repeated id, and a file without examples.
pub fn read_labelled(path: &Path, labels: &[String]) -> Result<Vec<Example>> {
    let s = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (k, line) in s.lines().enumerate() {
        let n = k + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| bad(path, n, format!("not a JSON object ({e})")))?;
        let text = v
            .get("text")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| bad(path, n, "no non-empty \"text\" string".into()))?;
        let label = match v.get("label") {
            Some(Value::Number(x)) => {
                let i = x
                    .as_u64()
                    .ok_or_else(|| bad(path, n, format!("label {x} is not a class index")))?
                    as usize;
                if i >= labels.len() {
                    return Err(bad(
                        path,
                        n,
                        format!(
                            "label {i} is out of range: the model has {} classes ({})",
                            labels.len(),
                            labels.join(", ")
                        ),
                    ));
                }
                i
            }
            Some(Value::String(name)) => labels
                .iter()
                .position(|l| l == name)
                .or_else(|| name.parse::<usize>().ok().filter(|&i| i < labels.len()))
                .ok_or_else(|| {
                    bad(
                        path,
                        n,
                        format!(
                            "unknown label {name:?}; the model's labels are {}",
                            labels.join(", ")
                        ),
                    )
                })?,
            _ => return Err(bad(path, n, "no \"label\" (a class index or name)".into())),
        };
        let id = match v.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(x)) => x.to_string(),
            _ => n.to_string(),
        };
        if !seen.insert(id.clone()) {
            return Err(bad(path, n, format!("id {id:?} appears twice")));
        }
        out.push(Example {
            id,
            text: text.to_string(),
            text_pair: v
                .get("text_pair")
                .and_then(Value::as_str)
                .map(str::to_string),
            label,
        });
    }
    if out.is_empty() {
        return Err(Error::Empty("data file (no examples)"));
    }
    Ok(out)
}
