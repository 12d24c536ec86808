//! Scanning a serialisable report for numbers a reader must not get silently: non-finite values
//! (JSON has no NaN; serde_json would write `null`) and unmet tolerances (`converged: false`).
//! The CLI checks every report with it before writing (`cli::output::check_report`), and
//! `gradpath batch` checks every example's line.

use crate::{Error, Result};
use serde_value::Value;

/// What [`scan`] found.
#[derive(Debug, Default, PartialEq)]
pub struct Findings {
    /// The first non-finite number: (JSON pointer, value).
    pub non_finite: Option<(String, String)>,
    /// Every `converged: false` (JSON pointers of the objects holding it).
    pub unconverged: Vec<String>,
}

fn walk(v: &Value, at: &mut String, f: &mut Findings) {
    let number = match v {
        Value::F64(x) => Some(*x),
        Value::F32(x) => Some(*x as f64),
        _ => None,
    };
    if let Some(x) = number {
        if !x.is_finite() && f.non_finite.is_none() {
            let place = if at.is_empty() {
                "/".into()
            } else {
                at.clone()
            };
            f.non_finite = Some((place, format!("{x}")));
        }
        return;
    }
    let len = at.len();
    match v {
        Value::Option(Some(x)) | Value::Newtype(x) => walk(x, at, f),
        Value::Seq(xs) => {
            for (i, x) in xs.iter().enumerate() {
                at.push_str(&format!("/{i}"));
                walk(x, at, f);
                at.truncate(len);
            }
        }
        Value::Map(m) => {
            for (k, x) in m {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                if key == "converged" && *x == Value::Bool(false) {
                    f.unconverged.push(if at.is_empty() {
                        "/".into()
                    } else {
                        at.clone()
                    });
                }
                at.push('/');
                at.push_str(&key);
                walk(x, at, f);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

/// Scans a report for non-finite numbers and unmet tolerances.
pub fn scan<T: serde::Serialize>(report: &T) -> Result<Findings> {
    let v = serde_value::to_value(report).map_err(|e| Error::Internal(e.to_string()))?;
    let mut f = Findings::default();
    walk(&v, &mut String::new(), &mut f);
    Ok(f)
}
