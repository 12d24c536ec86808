//! The examples of `gradpath compare`: one text (and pair), or the lines of a JSONL file.

use super::*;

/// One example to compare on.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareExample {
    pub id: String,
    pub text: String,
    /// The second segment of a text pair (the rules data's query).
    pub pair: Option<String>,
    /// The gold class index (accuracy is reported where examples have one).
    pub label: Option<usize>,
    /// The reasoning depth (the rules data of `gradpath data rules`): averages per depth.
    pub depth: Option<usize>,
    /// The data file and line it was read from (errors then name the example).
    pub origin: Option<(String, usize)>,
}

impl CompareExample {
    /// A text without label or depth (id `"1"`).
    pub fn text(text: impl Into<String>) -> CompareExample {
        CompareExample {
            id: "1".into(),
            text: text.into(),
            pair: None,
            label: None,
            depth: None,
            origin: None,
        }
    }
    /// A second segment.
    pub fn pair(mut self, pair: impl Into<String>) -> CompareExample {
        self.pair = Some(pair.into());
        self
    }
}

/// Reads the first `limit` (all with `None`) examples of a JSONL file, one object per line:
/// `text` (required), `text_pair`, `label` (a class index or a name of `labels`), `depth` (a
/// whole number ≥ 0), `id` (a string or a number; default the line number; unique); other keys
/// are ignored, blank lines skipped. A malformed line is an [`Error::Data`] naming it.
pub fn read_data(
    path: &Path,
    labels: &[String],
    limit: Option<usize>,
) -> Result<Vec<CompareExample>> {
    if limit == Some(0) {
        return Err(Error::BadValue {
            name: "limit",
            detail: "must be at least 1".into(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    let mut out: Vec<CompareExample> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        let (obj, text, pair) = text_line(path, n, line)?;
        let label = match obj.get("label") {
            None | Some(Value::Null) => None,
            Some(l) => Some(
                crate::train::data::resolve_label(l, labels).map_err(|d| data_err(path, n, d))?,
            ),
        };
        let depth = match obj.get("depth") {
            None | Some(Value::Null) => None,
            Some(d) => Some(d.as_u64().ok_or_else(|| {
                data_err(path, n, format!("\"depth\" {d} is not a whole number ≥ 0"))
            })? as usize),
        };
        let id = match obj.get("id") {
            None | Some(Value::Null) => n.to_string(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(x)) => x.to_string(),
            Some(_) => {
                return Err(data_err(
                    path,
                    n,
                    "\"id\" is not a non-empty string or a number",
                ))
            }
        };
        if let Some(first) = seen.insert(id.clone(), n) {
            return Err(data_err(
                path,
                n,
                format!("id {id:?} is already used on line {first} (ids must be unique)"),
            ));
        }
        out.push(CompareExample {
            id,
            text,
            pair,
            label,
            depth,
            origin: Some((path.display().to_string(), n)),
        });
    }
    if out.is_empty() {
        return Err(data_err(path, 0, "has no examples"));
    }
    Ok(out)
}
