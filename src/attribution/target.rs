//! Targets: the scalar F per batch row that a method explains.

use crate::models::ModelOutput;
use crate::{Error, Result, Tensor, Var};

/// Which function of a class's logit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Logit,
    Prob,
    LogProb,
}

impl TargetKind {
    pub fn parse(s: &str) -> Result<TargetKind> {
        match s {
            "logit" => Ok(TargetKind::Logit),
            "prob" => Ok(TargetKind::Prob),
            "log-prob" | "logprob" => Ok(TargetKind::LogProb),
            _ => Err(Error::Unknown {
                what: "target kind",
                value: s.to_string(),
                valid: vec!["logit".into(), "prob".into(), "log-prob".into()],
            }),
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            TargetKind::Logit => "logit",
            TargetKind::Prob => "prob",
            TargetKind::LogProb => "log-prob",
        }
    }
}

/// One term of [`Target::Sum`]: `weight · kind(token as the next token after position)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenTerm {
    pub position: usize,
    pub token: usize,
    pub kind: TargetKind,
    pub weight: f64,
}

/// The scalar explained.
#[derive(Debug, Clone)]
pub enum Target {
    /// A class of a classifier.
    Class { class: usize, kind: TargetKind },
    /// Cosine similarity of the sentence embedding to a fixed reference embedding `[d_model]`.
    Similarity { reference: Tensor },
    /// A token of a causal language model: the logit / probability / log-probability of `token`
    /// as the next token after `position` (the logits read at `position`).
    Token {
        position: usize,
        token: usize,
        kind: TargetKind,
    },
    /// A weighted sum of next-token terms of a causal language model, all read from one
    /// forward: an answer's teacher-forced log-probability (Σ_j log p(a_j | prompt, a_<j), one
    /// term per answer token, weight 1), or a contrast (a logit difference of two tokens at the
    /// same position: weights +1 and −1).
    Sum { terms: Vec<TokenTerm> },
}

/// `kind` of the logits `[batch, n]`, column `index` → `[batch]`.
fn pick(logits: &Var, index: usize, kind: TargetKind) -> Result<Var> {
    let b = logits.shape()[0];
    let v = match kind {
        TargetKind::Logit => logits.clone(),
        TargetKind::Prob => logits.softmax(None)?,
        TargetKind::LogProb => logits.log_softmax(None)?,
    };
    v.narrow(1, index, 1)?.reshape(&[b])
}

/// One next-token term, `[batch]`.
fn token_term(out: &ModelOutput, position: usize, token: usize, kind: TargetKind) -> Result<Var> {
    if kind == TargetKind::Logit {
        return out.token_logit(position, token);
    }
    out.check_token(token)?;
    pick(&out.token_logits(position)?, token, kind)
}

impl Target {
    /// The value of each term of a [`Target::Sum`] for every row, `[batch]` each (the other
    /// targets: F alone).
    pub fn eval_terms(&self, out: &ModelOutput) -> Result<Vec<Var>> {
        match self {
            Target::Sum { terms } => terms
                .iter()
                .map(|t| token_term(out, t.position, t.token, t.kind))
                .collect(),
            _ => Ok(vec![self.eval(out)?]),
        }
    }

    /// F for every row: `[batch]`.
    pub fn eval(&self, out: &ModelOutput) -> Result<Var> {
        match self {
            Target::Sum { terms } => {
                if terms.is_empty() {
                    return Err(Error::Empty("the target's terms"));
                }
                let mut f: Option<Var> = None;
                for t in terms {
                    let v = token_term(out, t.position, t.token, t.kind)?;
                    let v = if t.weight == 1.0 {
                        v
                    } else {
                        v.scale(t.weight)?
                    };
                    f = Some(match f {
                        None => v,
                        Some(acc) => acc.add(&v)?,
                    });
                }
                f.ok_or_else(|| Error::Internal("empty sum".into()))
            }
            Target::Class { class, kind } => {
                let logits = out.logits.as_ref().ok_or_else(|| Error::TargetMismatch("a class target needs a classification model (this one has no classifier head); sentence-embedding models take a similarity target".into()))?;
                let n = logits.shape()[1];
                if *class >= n {
                    return Err(Error::OutOfRange {
                        what: "class",
                        index: *class,
                        len: n,
                    });
                }
                pick(logits, *class, *kind)
            }
            Target::Token {
                position,
                token,
                kind,
            } => token_term(out, *position, *token, *kind),
            Target::Similarity { reference } => {
                let p = out.pooled.as_ref().ok_or_else(|| Error::TargetMismatch("a similarity target needs a sentence-embedding model (this one is a classifier, which takes a class target)".into()))?;
                let (b, c) = (p.shape()[0], p.shape()[1]);
                if reference.shape() != [c] {
                    return Err(Error::Mismatch {
                        what: "reference embedding".into(),
                        detail: format!(
                            "has shape {:?}, the model's embeddings are [{c}]",
                            reference.shape()
                        ),
                    });
                }
                let r = reference.to_vec_f64()?;
                let rnorm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
                if rnorm == 0.0 {
                    return Err(Error::BadValue {
                        name: "reference embedding",
                        detail: "is zero; cosine similarity is undefined".into(),
                    });
                }
                let rv = Var::constant(reference.reshape(&[1, c])?);
                let dot = p.mul(&rv)?.sum(&[1], false)?;
                let pnorm = p.mul(p)?.sum(&[1], false)?.sqrt()?;
                dot.div(&pnorm)?
                    .scale(1.0 / rnorm)
                    .and_then(|v| v.reshape(&[b]))
            }
        }
    }

    /// A short description for reports, e.g. `{"kind":"logit","class":1}`.
    pub fn to_json(&self, label: Option<&str>) -> serde_json::Value {
        match self {
            Target::Class { class, kind } => {
                serde_json::json!({"type": "class", "kind": kind.name(), "class": class, "label": label})
            }
            Target::Similarity { .. } => serde_json::json!({"type": "cosine_similarity"}),
            Target::Token {
                position,
                token,
                kind,
            } => {
                serde_json::json!({"type": "token", "kind": kind.name(), "position": position, "token": token, "token_str": label})
            }
            Target::Sum { terms } => serde_json::json!({
                "type": "sum",
                "terms": terms.iter().map(|t| serde_json::json!({"position": t.position, "token": t.token, "kind": t.kind.name(), "weight": t.weight})).collect::<Vec<_>>(),
            }),
        }
    }
}
