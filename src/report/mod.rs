//! Reports: terminal table, JSON (schema in `docs/JSON.md`), self-contained HTML.

pub mod attattr_html;
pub mod attention_html;
pub mod check;
pub mod compare_html;
pub mod converge_html;
pub mod dataset_html;
pub mod heatmap;
pub mod html;
pub mod lig_html;
pub mod table;

/// Token-level attribution scores with their labels, as shown to a user.
#[derive(Debug, Clone)]
pub struct TokenScores {
    pub labels: Vec<String>,
    pub scores: Vec<f64>,
}

/// How sub-word scores combine into a word score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Mean,
    Max,
    AbsMax,
}

impl Aggregate {
    pub fn parse(s: &str) -> crate::Result<Aggregate> {
        match s {
            "sum" => Ok(Aggregate::Sum),
            "mean" => Ok(Aggregate::Mean),
            "max" => Ok(Aggregate::Max),
            "absmax" => Ok(Aggregate::AbsMax),
            _ => Err(crate::Error::Unknown {
                what: "aggregation",
                value: s.to_string(),
                valid: ["sum", "mean", "max", "absmax"].map(String::from).to_vec(),
            }),
        }
    }
}

/// Groups tokens into words using the tokenizer's word ids and character offsets: tokens with the
/// same word id form one word (its text is the original span); special tokens stay on their own.
/// `tokens` are the labels used where the text has no span for a word: pass the readable tokens
/// ([`crate::io::display_tokens`]), whose concatenation over a word is its decoded text (also for
/// characters split over several byte-level tokens, such as Cyrillic).
pub fn aggregate_words(
    text: &str,
    tokens: &[String],
    words: &[Option<u32>],
    offsets: &[(usize, usize)],
    type_ids: &[usize],
    scores: &[f64],
    how: Aggregate,
) -> TokenScores {
    let mut labels: Vec<String> = Vec::new();
    let mut groups: Vec<Vec<f64>> = Vec::new();
    let mut last: Option<(u32, usize)> = None;
    let mut spans: Vec<Option<(usize, usize)>> = Vec::new();
    for i in 0..tokens.len() {
        let key = words[i].map(|w| (w, type_ids.get(i).copied().unwrap_or(0)));
        match (key, last) {
            (Some(k), Some(l)) if k == l => {
                groups.last_mut().expect("group exists").push(scores[i]);
                if let Some(l) = labels.last_mut() {
                    l.push_str(&tokens[i]);
                }
                if let Some(Some(sp)) = spans.last_mut() {
                    sp.1 = offsets[i].1;
                }
            }
            _ => {
                groups.push(vec![scores[i]]);
                labels.push(tokens[i].clone());
                spans.push(key.map(|_| offsets[i]));
            }
        }
        last = key;
    }
    // Use the original text for multi-token words of the first segment where offsets allow.
    for (label, span) in labels.iter_mut().zip(&spans) {
        if let Some((s, e)) = span {
            if let Some(t) = text.get(*s..*e) {
                if !t.is_empty() && !label.starts_with('[') {
                    *label = t.to_string();
                }
            }
        }
    }
    let scores = groups
        .iter()
        .map(|g| match how {
            Aggregate::Sum => g.iter().sum(),
            Aggregate::Mean => g.iter().sum::<f64>() / g.len() as f64,
            Aggregate::Max => g.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Aggregate::AbsMax => g
                .iter()
                .copied()
                .fold(0.0, |m: f64, v| if v.abs() > m.abs() { v } else { m }),
        })
        .collect();
    TokenScores { labels, scores }
}
