//! A data-set summary of batch output lines (what `gradpath report` draws):
//!
//! - **top tokens**: the mean score of each token (each word, when the lines carry words) over
//!   its occurrences, special tokens left out; the strongest positive and negative means among
//!   tokens seen at least `min_count` times. Scores: `attributions` (token methods), `std`
//!   (noise sensitivity), the first attributed layer's `attributions` (conductance: at the last
//!   layer of an encoder classifier only the token the head reads carries any);
//! - **completeness deltas**: per example, the relative delta |Σ attributions − (F(x) − F(x′))| /
//!   |F(x) − F(x′)| (IG, layer IG; the worst layer for conductance and ATTATTR), its
//!   distribution, and the examples flagged: `rough` set by the method, or a delta above
//!   `rough`;
//! - **conductance per layer**: per example and layer, the attribution mass Σ_t |c_{l,t}| /
//!   |F(x) − F(x′)| (1 when every token pushes F the same way; larger when tokens cancel), and
//!   its mean, standard deviation and 10th/90th percentiles over the examples;
//! - **head importance** (ATTATTR): the mean over examples of each layer's per-head importance
//!   (the largest attribution of the head, over query and key);
//! - **LIG per layer**: per layer, the relative completeness delta of each column of the layer
//!   map (z → z), its mean over the examples (of each example's mean over columns), median and
//!   maximum over all columns, and the columns above `rough` (each example's worst column is its
//!   completeness delta);
//! - **neuron conductance**: the spread of each example's total (Σ attributions) and of its
//!   share of F(x) − F(x′) (neuron conductance has no completeness delta);
//! - **attention entropy**: the mean over examples of each head's mean row entropy (nats);
//! - **notes**: what the report does not summarise for the method, said in words;
//! - **examples**: id, text, target and per-token (per-word) scores of each line.

mod lines;
mod types;
pub use lines::{method_of, read_lines, LIG_METHOD};
pub use types::{
    AttentionEntropy, DatasetSummary, Deltas, ExampleView, Flagged, HeadGrid, LayerCurve, LigLayer,
    LigSummary, NeuronSummary, RoughColumn, Spread, SummaryOptions, TokenStat, TopTokens,
    MAX_ROUGH_COLUMNS,
};

use lines::{
    delta_of, f64s, head_entropies, lig_columns, lig_layers, strings, target_label, token_scores,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

pub(super) fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var.sqrt())
}

/// Per token (word): its scores over all occurrences, and the first examples it occurs in.
type TokenOccurrences = HashMap<String, (Vec<f64>, Vec<usize>)>;

/// Summarises output lines (each a batch output JSON object). Lines of different methods are
/// summarised by the first line's method; the others are counted but not used.
pub fn summarise(lines: &[Value], o: &SummaryOptions) -> DatasetSummary {
    let method = lines
        .first()
        .and_then(method_of)
        .unwrap_or("unknown")
        .to_string();
    let model = lines
        .first()
        .and_then(|v| v.get("model_description").or_else(|| v.get("model")))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut same: Vec<&Value> = lines
        .iter()
        .filter(|v| method_of(v) == Some(method.as_str()))
        .collect();
    // Input order (a shard's output is in order of length).
    same.sort_by_key(|v| v.get("line").and_then(Value::as_u64).unwrap_or(u64::MAX));
    // tokens
    let mut stats: TokenOccurrences = HashMap::new();
    let mut by_word = false;
    let mut examples = Vec::new();
    let mut deltas: Vec<(usize, String, f64, bool, String)> = Vec::new();
    let mut layer_vals: Vec<Vec<f64>> = Vec::new();
    let mut layer_labels: Vec<String> = Vec::new();
    let mut heads: Option<(Vec<usize>, usize, Vec<f64>, usize)> = None;
    // LIG: per layer, each example's column deltas.
    let mut lig: BTreeMap<usize, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let mut rough_columns: Vec<RoughColumn> = Vec::new();
    let mut unconverged: Vec<(usize, String, usize)> = Vec::new();
    // Neuron: (boundary, neuron) of the first line, totals, shares.
    let mut neuron: Option<(String, Vec<usize>)> = None;
    let (mut totals, mut shares) = (Vec::new(), Vec::new());
    // Attention: (n_layers, n_heads, Σ entropies, Σ ln T, examples).
    let mut entropy: Option<(usize, usize, Vec<f64>, f64, usize)> = None;
    for (i, v) in same.iter().enumerate() {
        let id = v
            .get("id")
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        let ts = token_scores(v, &method);
        let shown = i < o.max_examples;
        if let Some((labels, scores, w)) = &ts {
            by_word |= *w;
            for (l, s) in labels.iter().zip(scores) {
                let e = stats.entry(l.clone()).or_default();
                e.0.push(*s);
                if shown && e.1.len() < 3 && e.1.last() != Some(&i) {
                    e.1.push(i);
                }
            }
        }
        let d = delta_of(v, &method);
        if let Some((x, rough, warn)) = &d {
            deltas.push((i, id.clone(), *x, *rough, warn.clone()));
        }
        if method == "layer_conductance" || method == "internal_influence" {
            let df = v.get("f_input").and_then(Value::as_f64).unwrap_or(f64::NAN)
                - v.get("f_baseline")
                    .and_then(Value::as_f64)
                    .unwrap_or(f64::NAN);
            if let Some(ls) = v.get("layers").and_then(Value::as_array) {
                if layer_labels.is_empty() {
                    layer_labels = ls
                        .iter()
                        .map(|l| {
                            l.get("boundary")
                                .and_then(Value::as_str)
                                .unwrap_or("?")
                                .to_string()
                        })
                        .collect();
                    layer_vals = vec![Vec::new(); ls.len()];
                }
                if ls.len() == layer_vals.len() && df.abs() > 1e-12 {
                    for (k, l) in ls.iter().enumerate() {
                        if let Some(a) = f64s(l.get("attributions")) {
                            layer_vals[k].push(a.iter().map(|x| x.abs()).sum::<f64>() / df.abs());
                        }
                    }
                }
            }
        }
        if method == "attention_attribution" {
            if let Some(ls) = v.get("layers").and_then(Value::as_array) {
                let idx: Vec<usize> = ls
                    .iter()
                    .filter_map(|l| l.get("layer")?.as_u64().map(|x| x as usize))
                    .collect();
                let imp: Option<Vec<Vec<f64>>> =
                    ls.iter().map(|l| f64s(l.get("head_importance"))).collect();
                if let Some(imp) = imp {
                    let nh = imp.first().map_or(0, Vec::len);
                    let flat: Vec<f64> = imp.concat();
                    match &mut heads {
                        None => heads = Some((idx, nh, flat, 1)),
                        Some((l0, h0, sum, n)) if *l0 == idx && *h0 == nh => {
                            sum.iter_mut().zip(&flat).for_each(|(a, b)| *a += b);
                            *n += 1;
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        if method == LIG_METHOD {
            let tokens = strings(v.get("tokens")).unwrap_or_default();
            for (l, z) in lig_layers(v) {
                let cols = lig_columns(z);
                if cols.is_empty() {
                    continue;
                }
                let e = lig.entry(l).or_default();
                e.1.push(cols.iter().map(|x| x.abs()).sum::<f64>() / cols.len() as f64);
                for (j, d) in cols.iter().enumerate() {
                    e.0.push(d.abs());
                    if d.abs() > o.rough {
                        rough_columns.push(RoughColumn {
                            example: i,
                            id: id.clone(),
                            layer: l,
                            column: j,
                            token: tokens.get(j).cloned().unwrap_or_default(),
                            relative_delta: d.abs(),
                        });
                    }
                }
                if z.get("converged").and_then(Value::as_bool) == Some(false) {
                    unconverged.push((i, id.clone(), l));
                }
            }
        }
        if method == "neuron_conductance" {
            if neuron.is_none() {
                if let (Some(b), Some(n)) = (
                    v.get("boundary").and_then(Value::as_str),
                    v.get("neuron").and_then(Value::as_array),
                ) {
                    let n: Vec<usize> = n
                        .iter()
                        .filter_map(|x| x.as_u64().map(|x| x as usize))
                        .collect();
                    neuron = Some((b.to_string(), n));
                }
            }
            if let Some(t) = v.get("total").and_then(Value::as_f64) {
                totals.push(t);
                let df = v.get("f_input").and_then(Value::as_f64).unwrap_or(f64::NAN)
                    - v.get("f_baseline")
                        .and_then(Value::as_f64)
                        .unwrap_or(f64::NAN);
                if df.abs() > 1e-12 {
                    shares.push(t / df);
                }
            }
        }
        if method == "attention" {
            if let Some((nl, nh, ent, t)) = head_entropies(v) {
                match &mut entropy {
                    None => entropy = Some((nl, nh, ent, (t as f64).ln(), 1)),
                    Some((l0, h0, sum, logt, n)) if *l0 == nl && *h0 == nh => {
                        sum.iter_mut().zip(&ent).for_each(|(a, b)| *a += b);
                        *logt += (t as f64).ln();
                        *n += 1;
                    }
                    Some(_) => {}
                }
            }
        }
        if shown {
            let target = v.get("target").map(target_label).unwrap_or_default();
            let (labels, scores) = match &ts {
                Some((l, s, _)) => (l.clone(), s.clone()),
                None => (Vec::new(), Vec::new()),
            };
            examples.push(ExampleView {
                id: id.clone(),
                text: v
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                target,
                labels,
                scores,
                relative_delta: d.as_ref().map(|x| x.0),
                rough: d.as_ref().is_some_and(|x| x.1 || x.0 > o.rough),
            });
        }
    }
    let tokens =
        (!stats.is_empty()).then(|| top_tokens(&stats, by_word, &method, &layer_labels, o));
    let deltas = (!deltas.is_empty()).then(|| delta_summary(&deltas, &method, o));
    let layers = (!layer_vals.is_empty() && !layer_vals[0].is_empty())
        .then(|| layer_curve(&layer_vals, &layer_labels));
    let heads = heads.map(|(layers, n_heads, sum, n)| HeadGrid {
        layers,
        n_heads,
        mean: sum.iter().map(|s| s / n as f64).collect(),
        examples: n,
    });
    let lig = (!lig.is_empty()).then(|| lig_summary(lig, rough_columns, unconverged, o));
    let neuron = (!totals.is_empty()).then(|| {
        let (boundary, neuron) = neuron.unwrap_or_default();
        NeuronSummary {
            boundary,
            neuron,
            total: Spread::of(&totals),
            share: Spread::of(&shares),
        }
    });
    let attention = entropy.map(|(n_layers, n_heads, sum, logt, n)| AttentionEntropy {
        n_layers,
        n_heads,
        mean: sum.iter().map(|s| s / n as f64).collect(),
        mean_log_tokens: logt / n as f64,
        examples: n,
    });
    let mut notes = Vec::new();
    match method.as_str() {
        "neuron_conductance" => notes.push(
            "Neuron conductance has no completeness delta: its attributions sum to the neuron's share of F(x) − F(x′), not to F(x) − F(x′). The spread of that share is shown instead.".to_string(),
        ),
        LIG_METHOD => notes.push(
            "LIG maps are token × token, not one score per token: no top tokens, and the examples are listed without token colours.".to_string(),
        ),
        "attention" => notes.push(
            "Attention maps explain no target: no completeness deltas and no top tokens.".to_string(),
        ),
        _ => {}
    }
    if tokens.is_none()
        && deltas.is_none()
        && layers.is_none()
        && heads.is_none()
        && lig.is_none()
        && neuron.is_none()
        && attention.is_none()
    {
        notes.push(format!(
            "The report has no data-set summary for method `{method}` in these lines; the examples are listed below."
        ));
    }
    DatasetSummary {
        method,
        model,
        examples_total: lines.len(),
        tokens,
        deltas,
        layers,
        heads,
        lig,
        neuron,
        attention,
        notes,
        examples,
    }
}

/// The top tokens: each token's mean score over its occurrences; the strongest `o.top` positive
/// and negative means among the tokens seen at least `o.min_count` times (or once, when none is).
fn top_tokens(
    stats: &TokenOccurrences,
    by_word: bool,
    method: &str,
    layer_labels: &[String],
    o: &SummaryOptions,
) -> TopTokens {
    let mut all: Vec<TokenStat> = stats
        .iter()
        .map(|(t, (v, ex))| {
            let (mean, std) = mean_std(v);
            TokenStat {
                token: t.clone(),
                count: v.len(),
                mean,
                std,
                examples: ex.clone(),
            }
        })
        .collect();
    let distinct = all.len();
    let min = if all.iter().any(|s| s.count >= o.min_count) {
        o.min_count
    } else {
        1
    };
    all.retain(|s| s.count >= min && s.mean.is_finite());
    all.sort_by(|a, b| b.mean.total_cmp(&a.mean).then(a.token.cmp(&b.token)));
    let positive: Vec<TokenStat> = all
        .iter()
        .filter(|s| s.mean > 0.0)
        .take(o.top)
        .cloned()
        .collect();
    let negative: Vec<TokenStat> = all
        .iter()
        .rev()
        .filter(|s| s.mean < 0.0)
        .take(o.top)
        .cloned()
        .collect();
    TopTokens {
        by_word,
        score: match method {
            "noise_sensitivity" => "standard deviation of F under noise".into(),
            "layer_conductance" | "internal_influence" => format!(
                "conductance at {}",
                layer_labels.first().cloned().unwrap_or_default()
            ),
            m => format!("{m} attribution"),
        },
        distinct,
        positive,
        negative,
    }
}

/// The completeness deltas of the examples (example, id, delta, flagged by the method, its
/// warning): distribution, decade histogram, and the examples flagged.
fn delta_summary(
    deltas: &[(usize, String, f64, bool, String)],
    method: &str,
    o: &SummaryOptions,
) -> Deltas {
    let mut sorted: Vec<f64> = deltas.iter().map(|d| d.2).collect();
    sorted.sort_by(f64::total_cmp);
    let mut hist: Vec<(i32, usize)> = Vec::new();
    for &x in &sorted {
        let e = if x > 0.0 {
            (x.log10().floor() as i32).max(-16)
        } else {
            -16
        };
        match hist.iter_mut().find(|h| h.0 == e) {
            Some(h) => h.1 += 1,
            None => hist.push((e, 1)),
        }
    }
    hist.sort();
    if let (Some(lo), Some(hi)) = (hist.first().map(|h| h.0), hist.last().map(|h| h.0)) {
        for e in lo..=hi {
            if !hist.iter().any(|h| h.0 == e) {
                hist.push((e, 0));
            }
        }
        hist.sort();
    }
    let flagged = deltas
        .iter()
        .filter(|d| d.3 || d.2 > o.rough)
        .map(|d| Flagged {
            example: d.0,
            id: d.1.clone(),
            relative_delta: d.2,
            reason: if d.4.is_empty() {
                format!("relative delta {:.2e} above {:.0e}", d.2, o.rough)
            } else {
                d.4.clone()
            },
        })
        .collect();
    Deltas {
        what: match method {
            "layer_conductance" | "attention_attribution" => {
                "worst layer's relative completeness delta".into()
            }
            LIG_METHOD => {
                "worst column's relative completeness delta over the layer maps (z → z)".into()
            }
            _ => "relative completeness delta |Σ attr − (F(x) − F(x′))| / |F(x) − F(x′)|".into(),
        },
        median: percentile(&sorted, 0.5),
        p90: percentile(&sorted, 0.9),
        max: sorted.last().copied().unwrap_or(f64::NAN),
        values: deltas.iter().map(|d| d.2).collect(),
        histogram: hist,
        flagged,
    }
}

/// The attribution mass per layer (`layer_vals[layer][example]`): mean, spread, percentiles.
fn layer_curve(layer_vals: &[Vec<f64>], layer_labels: &[String]) -> LayerCurve {
    let mut c = LayerCurve {
        what: "attribution mass Σ_t |conductance| / |F(x) − F(x′)| per layer".into(),
        labels: layer_labels.to_vec(),
        mean: Vec::new(),
        std: Vec::new(),
        p10: Vec::new(),
        p90: Vec::new(),
        examples: layer_vals[0].len(),
    };
    for v in layer_vals {
        let (m, s) = mean_std(v);
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        c.mean.push(m);
        c.std.push(s);
        c.p10.push(percentile(&sorted, 0.1));
        c.p90.push(percentile(&sorted, 0.9));
    }
    c
}

/// Per layer, the column deltas of every example and each example's mean column delta; the rough
/// columns (largest first, at most [`MAX_ROUGH_COLUMNS`]) and the maps that did not converge.
fn lig_summary(
    lig: BTreeMap<usize, (Vec<f64>, Vec<f64>)>,
    mut rough_columns: Vec<RoughColumn>,
    unconverged: Vec<(usize, String, usize)>,
    o: &SummaryOptions,
) -> LigSummary {
    let rough_total = rough_columns.len();
    rough_columns.sort_by(|a, b| {
        b.relative_delta
            .total_cmp(&a.relative_delta)
            .then(a.example.cmp(&b.example))
    });
    rough_columns.truncate(MAX_ROUGH_COLUMNS);
    LigSummary {
        what: "relative completeness delta |Σ_i M[i][j] − g_j(X)| / g_j(X) of each column j of the layer map (z → z)".into(),
        layers: lig
            .into_iter()
            .map(|(layer, (mut cols, per_example))| {
                cols.sort_by(f64::total_cmp);
                LigLayer {
                    layer,
                    examples: per_example.len(),
                    columns: cols.len(),
                    mean: mean_std(&per_example).0,
                    median: percentile(&cols, 0.5),
                    max: cols.last().copied().unwrap_or(f64::NAN),
                    rough: cols.iter().filter(|d| **d > o.rough).count(),
                }
            })
            .collect(),
        rough_columns,
        rough_total,
        unconverged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_deltas_and_flags() {
        let line = |id: &str, toks: &[&str], attr: &[f64], d: f64, rough: bool| {
            json!({"id": id, "method": "integrated_gradients", "text": "t",
                   "tokens": toks, "special": toks.iter().map(|t| t.starts_with('[')).collect::<Vec<_>>(),
                   "attributions": attr, "relative_delta": d, "rough": rough, "warnings": [],
                   "target": {"type": "class", "class": 1, "kind": "logit", "label": null}})
        };
        let lines = vec![
            line(
                "a",
                &["[CLS]", "good", "film", "[SEP]"],
                &[9.0, 1.0, -0.5, 9.0],
                2e-4,
                false,
            ),
            line(
                "b",
                &["[CLS]", "good", "bad", "[SEP]"],
                &[9.0, 3.0, -2.0, 9.0],
                0.05,
                false,
            ),
            line(
                "c",
                &["[CLS]", "bad", "film", "[SEP]"],
                &[9.0, -1.0, 0.5, 9.0],
                2e-3,
                true,
            ),
        ];
        let s = summarise(&lines, &SummaryOptions::default());
        let t = s.tokens.unwrap();
        assert_eq!(t.distinct, 3); // specials left out
        assert_eq!(t.positive[0].token, "good");
        assert_eq!(t.positive[0].mean, 2.0);
        assert_eq!(t.positive[0].examples, vec![0, 1]);
        assert_eq!(t.negative[0].token, "bad");
        assert_eq!(t.negative[0].mean, -1.5);
        let d = s.deltas.unwrap();
        assert_eq!(d.values, vec![2e-4, 0.05, 2e-3]);
        let flagged: Vec<&str> = d.flagged.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(flagged, vec!["b", "c"]);
        assert_eq!(d.histogram, vec![(-4, 1), (-3, 1), (-2, 1)]);
        assert_eq!(s.examples.len(), 3);
        assert!(s.examples[2].rough);
    }

    #[test]
    fn lig_layers_rough_columns_and_unconverged_maps() {
        // LIG lines have no `method`; their layers are keyed by strings ("10" sorts before "2").
        let line = |id: &str, d0: [f64; 2], d10: [f64; 2], converged: bool| {
            let z = |d: [f64; 2], c: bool| {
                json!({"z2z": {"completeness": [{"relative_delta": d[0]}, {"relative_delta": d[1]}],
                               "converged": if c { json!(true) } else { json!(false) }}})
            };
            json!({"id": id, "text": "t", "tokens": ["[CLS]", "x"], "model": "m",
                   "config": {"granularity": ["layer"]},
                   "layers": {"0": z(d0, true), "10": z(d10, converged)}})
        };
        let lines = vec![
            line("a", [1e-3, 3e-2], [1e-4, 1e-4], true),
            line("b", [1e-3, 1e-3], [5e-2, 1e-4], false),
        ];
        let s = summarise(&lines, &SummaryOptions::default());
        assert_eq!(s.method, LIG_METHOD);
        let l = s.lig.unwrap();
        let layers: Vec<usize> = l.layers.iter().map(|x| x.layer).collect();
        assert_eq!(layers, vec![0, 10]);
        assert_eq!(l.layers[0].columns, 4);
        assert!((l.layers[0].mean - (1.55e-2 + 1e-3) / 2.0).abs() < 1e-15);
        assert_eq!(l.layers[0].max, 3e-2);
        assert_eq!(l.layers[0].rough, 1);
        assert_eq!(l.layers[1].rough, 1);
        assert_eq!(l.rough_total, 2);
        // Largest first, with the token of the column.
        assert_eq!(
            (l.rough_columns[0].id.as_str(), l.rough_columns[0].layer),
            ("b", 10)
        );
        assert_eq!(
            (l.rough_columns[1].column, l.rough_columns[1].token.as_str()),
            (1, "x")
        );
        assert_eq!(l.unconverged, vec![(1, "b".to_string(), 10)]);
        // Each example's delta is its worst column; an unconverged map flags it.
        let d = s.deltas.unwrap();
        assert_eq!(d.values, vec![3e-2, 5e-2]);
        assert_eq!(d.flagged.len(), 2);
        assert!(d.flagged[1].reason.contains("layer 10"));
        assert!(s.tokens.is_none());
        assert!(s.notes[0].contains("token × token"));
    }

    #[test]
    fn neuron_totals_attention_entropy_and_methods_without_a_summary() {
        let n = |id: &str, total: f64, f: f64| {
            json!({"id": id, "method": "neuron_conductance", "text": "t", "tokens": ["a", "b"],
                   "special": [false, false], "attributions": [total, 0.0], "total": total,
                   "f_input": f, "f_baseline": 0.0, "boundary": "blocks.0.hook_resid_post",
                   "neuron": [1, 3], "target": null})
        };
        let s = summarise(
            &[n("a", 1.0, 4.0), n("b", 3.0, 0.0)],
            &SummaryOptions::default(),
        );
        let ns = s.neuron.unwrap();
        assert_eq!(ns.total.mean, 2.0);
        assert_eq!((ns.share.n, ns.share.mean), (1, 0.25)); // F(x) = F(x′): no share
        assert_eq!(ns.neuron, vec![1, 3]);
        assert!(s.deltas.is_none() && s.tokens.is_some());
        // Two heads: one uniform over 2 keys (ln 2), one masked (all 0).
        let a = json!({"id": "a", "method": "attention", "text": "t", "target": null,
                       "attention": [[[[0.5, 0.5], [0.5, 0.5]], [[0.0, 0.0], [0.0, 0.0]]]]});
        let s = summarise(&[a.clone(), a], &SummaryOptions::default());
        let e = s.attention.unwrap();
        assert_eq!((e.n_layers, e.n_heads, e.examples), (1, 2, 2));
        assert!((e.mean[0] - 2f64.ln()).abs() < 1e-15 && e.mean[1] == 0.0);
        assert!((e.mean_log_tokens - 2f64.ln()).abs() < 1e-15);
        // A method the report knows nothing about, and lines missing every field: a note, no
        // panic.
        let s = summarise(
            &[
                json!({"id": 1, "method": "something_else"}),
                json!({"id": 2}),
            ],
            &SummaryOptions::default(),
        );
        assert!(s.notes.iter().any(|n| n.contains("no data-set summary")));
        let html = crate::report::dataset_html::render(&s, "x.jsonl", 1e-2);
        assert!(html.contains("no data-set summary for method `something_else`"));
    }
}
