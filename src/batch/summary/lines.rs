//! Reading the fields of one batch output line: its method, token scores, completeness delta,
//! LIG layer maps, attention entropies and target, each `None` (or empty) where the line lacks
//! them, never a panic.

use serde_json::Value;

pub(super) fn f64s(v: Option<&Value>) -> Option<Vec<f64>> {
    v?.as_array()?.iter().map(Value::as_f64).collect()
}

pub(super) fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// The `method` a LIG line stands for (its report, the LIG package's schema, has no `method`).
pub const LIG_METHOD: &str = "layer_wise_integrated_gradients";

/// The method of an output line: its `method`, or [`LIG_METHOD`] for a LIG line (known by its
/// `config.granularity`).
pub fn method_of(v: &Value) -> Option<&str> {
    v.get("method").and_then(Value::as_str).or_else(|| {
        v.get("config")
            .and_then(|c| c.get("granularity"))
            .is_some()
            .then_some(LIG_METHOD)
    })
}

/// LIG: the layer maps of a line, `(layer, z2z)`, by layer.
pub(super) fn lig_layers(v: &Value) -> Vec<(usize, &Value)> {
    let mut out: Vec<(usize, &Value)> = v
        .get("layers")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, l)| {
                    let idx = l
                        .get("layer_idx")
                        .and_then(Value::as_u64)
                        .map(|x| x as usize)
                        .or_else(|| k.parse().ok())?;
                    Some((idx, l.get("z2z")?))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|x| x.0);
    out
}

/// LIG: the relative completeness delta of each column of a layer map.
pub(super) fn lig_columns(z2z: &Value) -> Vec<f64> {
    z2z.get("completeness")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("relative_delta")?.as_f64())
                .collect()
        })
        .unwrap_or_default()
}

/// (labels, scores) of a line: words when present, else the non-special tokens.
pub(super) fn token_scores(v: &Value, method: &str) -> Option<(Vec<String>, Vec<f64>, bool)> {
    if let (Some(w), Some(s)) = (strings(v.get("words")), f64s(v.get("word_attributions"))) {
        return Some((w, s, true));
    }
    let tokens = strings(v.get("tokens"))?;
    let scores = match method {
        "noise_sensitivity" => f64s(v.get("std"))?,
        "layer_conductance" | "internal_influence" => {
            f64s(v.get("layers")?.as_array()?.first()?.get("attributions"))?
        }
        _ => f64s(v.get("attributions"))?,
    };
    if scores.len() != tokens.len() {
        return None;
    }
    let special: Vec<bool> = v
        .get("special")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|x| x.as_bool().unwrap_or(false)).collect())
        .unwrap_or_else(|| vec![false; tokens.len()]);
    let (mut l, mut s) = (Vec::new(), Vec::new());
    for ((t, x), sp) in tokens.into_iter().zip(scores).zip(special) {
        if !sp {
            l.push(t);
            s.push(x);
        }
    }
    Some((l, s, false))
}

/// The relative completeness delta of a line and whether the method flagged it.
pub(super) fn delta_of(v: &Value, method: &str) -> Option<(f64, bool, String)> {
    let rough = v.get("rough").and_then(Value::as_bool).unwrap_or(false);
    let warning = v
        .get("warnings")
        .and_then(Value::as_array)
        .and_then(|w| w.first())
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let d = match method {
        "integrated_gradients" | "layer_integrated_gradients" => {
            v.get("relative_delta")?.as_f64()?.abs()
        }
        "attention_attribution" => v.get("worst_relative_delta")?.as_f64()?.abs(),
        LIG_METHOD => {
            let ls = lig_layers(v);
            let worst = ls
                .iter()
                .flat_map(|(_, z)| lig_columns(z))
                .map(f64::abs)
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))?;
            let unconverged: Vec<String> = ls
                .iter()
                .filter(|(_, z)| z.get("converged").and_then(Value::as_bool) == Some(false))
                .map(|(l, _)| l.to_string())
                .collect();
            if !unconverged.is_empty() {
                return Some((
                    worst,
                    true,
                    format!(
                        "layer map of layer {} did not reach --tolerance within --max-points",
                        unconverged.join(", ")
                    ),
                ));
            }
            worst
        }
        "layer_conductance" => v
            .get("layers")?
            .as_array()?
            .iter()
            .filter_map(|l| l.get("relative_delta")?.as_f64())
            .fold(None, |m: Option<f64>, x| {
                Some(m.map_or(x.abs(), |m| m.max(x.abs())))
            })?,
        _ => return None,
    };
    Some((d, rough, warning))
}

/// The target of a line in words: "class 1 (positive) logit", "similarity to \"…\"", "next
/// token \" Paris\" logit", "none".
pub(super) fn target_label(t: &Value) -> String {
    match t {
        Value::Object(m) => {
            let kind = m.get("kind").and_then(Value::as_str).unwrap_or("");
            if let Some(c) = m.get("class") {
                let label = m
                    .get("label")
                    .and_then(Value::as_str)
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default();
                format!("class {c}{label} {kind}")
            } else if let Some(s) = m.get("similar_to").and_then(Value::as_str) {
                format!("similarity to {s:?}")
            } else if let Some(tok) = m.get("token_str").and_then(Value::as_str) {
                format!("next token {tok:?} {kind}")
            } else {
                t.to_string()
            }
        }
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// Attention: `(n_layers, n_heads, mean row entropy per head row-major, tokens)` of a line, or
/// `None` when its `attention` is not a `[layer][head][query][key]` array of numbers.
pub(super) fn head_entropies(v: &Value) -> Option<(usize, usize, Vec<f64>, usize)> {
    let layers = v.get("attention")?.as_array()?;
    let n_heads = layers.first()?.as_array()?.len();
    let mut out = Vec::with_capacity(layers.len() * n_heads);
    let mut tokens = 0;
    for l in layers {
        let heads = l.as_array()?;
        if heads.len() != n_heads {
            return None;
        }
        for h in heads {
            let rows = h.as_array()?;
            if rows.is_empty() {
                return None;
            }
            tokens = rows.len();
            let mut sum = 0.0;
            for r in rows {
                let mut e = 0.0;
                for p in r.as_array()? {
                    let p = p.as_f64()?;
                    if p > 0.0 {
                        e -= p * p.ln();
                    }
                }
                sum += e;
            }
            out.push(sum / rows.len() as f64);
        }
    }
    (n_heads > 0).then_some((layers.len(), n_heads, out, tokens))
}

/// Reads the JSON lines of a batch output or merged file (a torn last line is ignored).
pub fn read_lines(path: &std::path::Path) -> crate::Result<Vec<Value>> {
    let s = crate::batch::output::scan(path)?;
    if s.records.is_empty() {
        return Err(crate::Error::BadExample {
            file: path.display().to_string(),
            line: 0,
            id: None,
            detail: "has no output lines".into(),
            cause: None,
        });
    }
    s.records
        .iter()
        .map(|r| serde_json::from_str(&r.json).map_err(|e| crate::Error::Internal(e.to_string())))
        .collect()
}
