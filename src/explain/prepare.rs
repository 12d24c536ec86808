//! From an [`Input`] to a [`Prepared`] input: the text encoded (second segment, chat turn,
//! truncation), the target resolved against the model (class, similarity, next token, answer and
//! contrast terms), and the path ends at `hook_embed` for the baseline.

use super::{
    argmax, Chat, Continuation, Explainer, Input, TargetInfo, TargetSpec, TermInfo, TermValue,
};
use crate::attribution::{Baseline, Target, TargetKind, TokenTerm};
use crate::io::{Encoded, Tokenizer};
use crate::models::batch::FIRST_BRANCH;
use crate::models::{Batch, HookName, Hooks};
use crate::{Error, Result, Tensor};
use std::time::Instant;

/// A text resolved against the model: its tokens, target and path ends at `hook_embed`.
pub struct Prepared {
    /// The tokens (after truncation).
    pub encoded: Encoded,
    /// F (`None` where the method explains no target).
    pub target: Option<Target>,
    /// What F is, as reported.
    pub target_info: Option<TargetInfo>,
    /// Word embeddings of the input and of the baseline, `[n_tok, d_model]`.
    pub x: Tensor,
    pub x_baseline: Tensor,
    /// Token ids of the baseline sequence (`None` for the zero baseline).
    pub baseline_ids: Option<Vec<usize>>,
    pub baseline: Baseline,
    /// The text that was tokenized (with a chat, the rendered prompt).
    pub text: String,
    /// The chat turn, when the chat template was used.
    pub chat: Option<Chat>,
    /// Positions from here on hold an answer's tokens: the same at both path ends.
    pub fixed_from: Option<usize>,
    /// An answer target's terms at the input and at the baseline.
    pub answer_terms: Option<Vec<TermValue>>,
    pub(super) started: Instant,
}

impl Prepared {
    /// `t` (`[n_tok, d_model]`, e.g. a baseline) with the rows of the fixed positions (an
    /// answer's tokens) taken from the input.
    pub fn fix_rows(&self, t: &Tensor) -> Result<Tensor> {
        let Some(from) = self.fixed_from else {
            return Ok(t.clone());
        };
        let d = self.x.shape()[1];
        let mut v = t.to_vec_f64()?;
        let x = self.x.to_vec_f64()?;
        v[from * d..].copy_from_slice(&x[from * d..]);
        Tensor::from_f64_on(&v, t.shape(), t.dtype(), t.device())
    }

    /// The target, for methods that need one.
    pub fn target(&self) -> Result<&Target> {
        self.target
            .as_ref()
            .ok_or_else(|| Error::Internal("no target resolved".into()))
    }
}

impl Explainer {
    /// Resolves `spec` on the encoded input `e`.
    pub fn resolve_target(
        &self,
        spec: &TargetSpec,
        e: &Encoded,
        truncate: bool,
    ) -> Result<(Target, TargetInfo)> {
        let model = self.model.as_ref();
        if model.is_decoder() {
            if spec.similar_to.is_some() || spec.class.is_some() {
                return Err(Error::TargetMismatch(
                    "this is a causal language model: it explains a next token (and position), not a class or a similarity".into(),
                ));
            }
            let position = spec.position.unwrap_or(e.len() - 1);
            if position >= e.len() {
                return Err(Error::OutOfRange {
                    what: "position",
                    index: position,
                    len: e.len(),
                });
            }
            let token = match &spec.token {
                Some(t) => self.parse_token(t)?,
                None => {
                    let out = self.forward(e)?;
                    argmax(&out.token_logits(position)?.value().to_vec_f64()?)
                }
            };
            let kind = spec.kind;
            return Ok((
                Target::Token {
                    position,
                    token,
                    kind,
                },
                TargetInfo::Token {
                    kind: kind.name(),
                    position,
                    token,
                    token_str: self.tokenizer.id_to_token(token),
                    token_display: self.tokenizer.display_token(token),
                },
            ));
        }
        if spec.token.is_some() || spec.position.is_some() {
            return Err(Error::TargetMismatch(
                "a next token and position are targets of causal language models; this model takes a class (classifiers) or a similarity text (sentence embeddings)".into(),
            ));
        }
        // The head is known from the static registry: a forward only where a value is needed
        // (the predicted class, the reference embedding).
        let points = model.hook_points(e.len());
        let n_labels = points
            .iter()
            .find(|p| p.name == HookName::Logits)
            .map(|p| p.shape[0]);
        match (n_labels, &spec.similar_to) {
            (Some(_), Some(_)) => Err(Error::TargetMismatch(
                "a similarity target needs a sentence-embedding model, but this one is a classifier".into(),
            )),
            (None, None) => Err(Error::TargetMismatch(
                "this is a sentence-embedding model: its target is the similarity to a second text".into(),
            )),
            (None, Some(other)) => {
                let e2 = encode_as(
                    &self.tokenizer,
                    other,
                    model.max_tokens(),
                    truncate,
                    "the similarity text",
                )?;
                let p = self
                    .forward(&e2)?
                    .pooled
                    .ok_or_else(|| Error::Internal("no pooled output".into()))?;
                let c = p.shape()[1];
                Ok((
                    Target::Similarity {
                        reference: p.into_value().reshape(&[c])?,
                    },
                    TargetInfo::Similarity {
                        similar_to: other.clone(),
                    },
                ))
            }
            (Some(n), None) => {
                let labels = model.labels();
                let class = match &spec.class {
                    None => {
                        let out = self.forward(e)?;
                        let l = out
                            .logits
                            .ok_or_else(|| Error::Internal("no logits".into()))?
                            .value()
                            .to_vec_f64()?;
                        l.iter()
                            .enumerate()
                            .max_by(|x, y| x.1.total_cmp(y.1))
                            .map(|p| p.0)
                            .unwrap_or(0)
                    }
                    Some(t) => match t.parse::<usize>() {
                        Ok(i) if i < n => i,
                        Ok(i) => {
                            return Err(Error::OutOfRange {
                                what: "class",
                                index: i,
                                len: n,
                            })
                        }
                        Err(_) => labels.iter().position(|x| x == t).ok_or_else(|| {
                            Error::Unknown {
                                what: "class label",
                                value: t.clone(),
                                valid: labels.to_vec(),
                            }
                        })?,
                    },
                };
                let kind = spec.kind;
                Ok((
                    Target::Class { class, kind },
                    TargetInfo::Class {
                        kind: kind.name(),
                        class,
                        label: labels.get(class).cloned(),
                    },
                ))
            }
        }
    }

    /// The text the model reads (with a chat, the rendered prompt) and its encoding: the
    /// input's text, with its second segment, chat turn and truncation; its target is not
    /// looked at.
    pub fn encode_input(&self, input: &Input) -> Result<(String, Encoded)> {
        Ok(match (&input.chat, &input.pair) {
            (Some(_), Some(_)) => {
                return Err(Error::BadValue {
                    name: "chat",
                    detail: "renders one user message; it does not take a second segment".into(),
                })
            }
            (Some(c), None) => self.encode_chat(&input.text, c.system.as_deref())?,
            (None, None) => (
                input.text.clone(),
                self.encode(&input.text, input.truncate)?,
            ),
            (None, Some(pair)) => (
                input.text.clone(),
                encode(
                    &self.tokenizer,
                    &input.text,
                    Some(pair),
                    self.model.max_tokens(),
                    input.truncate,
                )?,
            ),
        })
    }

    /// Encodes the input, resolves its target (when `need_target`) and builds the path ends at
    /// `hook_embed` for `baseline`.
    pub fn prepare(
        &self,
        input: &Input,
        baseline: &Baseline,
        need_target: bool,
    ) -> Result<Prepared> {
        let started = Instant::now();
        let (text, mut e) = self.encode_input(input)?;
        let n_prompt = e.len();
        let answer = if need_target && input.target.answer.is_some() {
            Some(self.append_answer(&input.target, &mut e)?)
        } else {
            if input.target.contrast.is_some() {
                return Err(Error::BadValue {
                    name: "contrast",
                    detail: "needs an answer to contrast with".into(),
                });
            }
            None
        };
        let (target, target_info) = match answer {
            Some((t, i)) => (Some(t), Some(i)),
            None if need_target => {
                let (t, i) = self.resolve_target(&input.target, &e, input.truncate)?;
                (Some(t), Some(i))
            }
            None => (None, None),
        };
        let fixed_from = (e.len() > n_prompt
            || target_info
                .as_ref()
                .is_some_and(|t| matches!(t, TargetInfo::Answer { .. })))
        .then_some(n_prompt);
        let (baseline_ids, x_baseline) = baseline
            .build(&e, &self.tokenizer, self.model.as_ref())
            .map_err(|err| match err {
            Error::Invalid {
                op: "embedding",
                detail,
            } => Error::BadValue {
                name: "baseline",
                detail: format!("{}: {detail}", baseline.name()),
            },
            other => other,
        })?;
        let x = self.model.word_embeddings(&e.ids)?;
        let mut p = Prepared {
            encoded: e,
            text,
            chat: input.chat.clone(),
            target,
            target_info,
            x,
            x_baseline,
            baseline_ids,
            baseline: baseline.clone(),
            fixed_from,
            answer_terms: None,
            started,
        };
        if let Some(from) = fixed_from {
            // the answer's tokens are the same at both path ends
            p.x_baseline = p.fix_rows(&p.x_baseline)?;
            if let Some(ids) = p.baseline_ids.as_mut() {
                ids[from..].copy_from_slice(&p.encoded.ids[from..]);
            }
        }
        if let Some(Target::Sum { terms }) = &p.target {
            p.answer_terms = Some(self.term_values(&p, terms)?);
        }
        Ok(p)
    }

    /// Appends the answer's tokens (all but the last: teacher forcing) to `e` and builds the
    /// answer (or contrast) target on it.
    fn append_answer(&self, spec: &TargetSpec, e: &mut Encoded) -> Result<(Target, TargetInfo)> {
        if !self.model.is_decoder() {
            return Err(Error::TargetMismatch(
                "an answer target needs a causal language model".into(),
            ));
        }
        if spec.token.is_some() || spec.position.is_some() {
            return Err(Error::BadValue {
                name: "answer",
                detail:
                    "replaces the next-token target: give either an answer or a token and position"
                        .into(),
            });
        }
        let continuation = |text: &str, what: &'static str| -> Result<Continuation> {
            if text.is_empty() {
                return Err(Error::Empty(what));
            }
            let ids = self.tokenizer.encode_plain(text)?;
            if ids.is_empty() {
                return Err(Error::Empty(what));
            }
            let toks: Vec<String> = ids
                .iter()
                .map(|&i| self.tokenizer.id_to_token(i).unwrap_or_default())
                .collect();
            let special: Vec<bool> = ids.iter().map(|&i| self.tokenizer.is_special(i)).collect();
            Ok(Continuation {
                text: text.to_string(),
                tokens_display: self.tokenizer.display_tokens(&toks, &special),
                ids,
            })
        };
        let a = continuation(spec.answer.as_deref().unwrap_or(""), "the answer")?;
        let c = spec
            .contrast
            .as_deref()
            .map(|t| continuation(t, "the contrast"))
            .transpose()?;
        // Each continuation's inputs are its tokens but the last (teacher forcing). Their shared
        // prefix follows the prompt; where they differ, the answer's remaining inputs and then
        // the contrast's run as two branches of a token tree (`models::batch`), each seeing the
        // prompt and the shared prefix only, exactly as if it were run alone.
        let inputs = |s: &Continuation| s.ids[..s.ids.len() - 1].to_vec();
        let ia = inputs(&a);
        let ic = c.as_ref().map(inputs).unwrap_or_default();
        let k = ia.iter().zip(&ic).take_while(|(x, y)| x == y).count();
        let (ba, bc) = (&ia[k..], &ic[k..]);
        let branched = !ba.is_empty() && !bc.is_empty();
        let last = e.len() - 1;
        let start_a = e.len() + k;
        let start_c = start_a + if branched { ba.len() } else { 0 };
        // the sequence index of a continuation's input i
        let at = |i: usize, start: usize| if i < k { last + 1 + i } else { start + i - k };
        let mut terms: Vec<TokenTerm> = Vec::new();
        let single = c.as_ref().is_some_and(|c| c.ids.len() == 1) && a.ids.len() == 1;
        // for two single tokens log p(a) − log p(c) is the logit difference: no softmax needed
        let kind = if single {
            TargetKind::Logit
        } else {
            TargetKind::LogProb
        };
        for (cont, w, start) in [(Some(&a), 1.0, start_a), (c.as_ref(), -1.0, start_c)] {
            let Some(cont) = cont else { continue };
            for (j, &t) in cont.ids.iter().enumerate() {
                let term = TokenTerm {
                    position: if j == 0 { last } else { at(j - 1, start) },
                    token: t,
                    kind,
                    weight: w,
                };
                // a shared token at a shared position cancels
                if let Some(k) = terms
                    .iter()
                    .position(|x| x.position == term.position && x.token == t && x.weight == -w)
                {
                    terms.remove(k);
                } else {
                    terms.push(term);
                }
            }
        }
        if terms.is_empty() {
            return Err(Error::BadValue {
                name: "contrast",
                detail: "is the answer itself: the difference is zero".into(),
            });
        }
        let mut extra: Vec<(usize, usize)> = ia[..k].iter().map(|&id| (id, 0)).collect();
        let (type_a, type_c) = if branched {
            (FIRST_BRANCH, FIRST_BRANCH + 1)
        } else {
            (0, 0)
        };
        extra.extend(ba.iter().map(|&id| (id, type_a)));
        extra.extend(bc.iter().map(|&id| (id, type_c)));
        if e.len() + extra.len() > self.model.max_tokens() {
            return Err(Error::TooLong {
                tokens: e.len() + extra.len(),
                max: self.model.max_tokens(),
            });
        }
        let end = e.offsets.last().map(|o| o.1).unwrap_or(0);
        for (id, type_id) in extra {
            e.ids.push(id);
            e.tokens
                .push(self.tokenizer.id_to_token(id).unwrap_or_default());
            e.type_ids.push(type_id);
            e.offsets.push((end, end));
            e.special.push(false);
            e.words.push(None);
        }
        let quantity = match (&c, single) {
            (None, _) => "log p(answer)",
            (Some(_), true) => "log p(answer) - log p(contrast) = logit(answer) - logit(contrast)",
            (Some(_), false) => "log p(answer) - log p(contrast)",
        };
        let info = TargetInfo::Answer {
            quantity,
            prompt_tokens: last + 1,
            contrast_branch: branched.then_some(start_c),
            answer: a,
            contrast: c,
            terms: terms
                .iter()
                .map(|t| TermInfo {
                    position: t.position,
                    token: t.token,
                    token_display: self.tokenizer.display_token(t.token),
                    kind: t.kind.name(),
                    weight: t.weight,
                })
                .collect(),
        };
        Ok((Target::Sum { terms }, info))
    }

    /// Every term of an answer target at the input and at the baseline (two forwards).
    fn term_values(&self, p: &Prepared, terms: &[TokenTerm]) -> Result<Vec<TermValue>> {
        let target = p.target()?;
        let (t, d) = (p.x.shape()[0], p.x.shape()[1]);
        let mut ends = Vec::new();
        for x in [&p.x, &p.x_baseline] {
            crate::attribution::probe::count_forward(1);
            let mut hooks =
                Hooks::new().replace("hook_embed", crate::Var::constant(x.reshape(&[1, t, d])?));
            let out = self.model.forward(
                &Batch::repeat(&p.encoded.ids, &p.encoded.type_ids, 1),
                &mut hooks,
            )?;
            let v = target
                .eval_terms(&out)?
                .iter()
                .map(|v| v.value().to_vec_f64().map(|x| x[0]))
                .collect::<Result<Vec<f64>>>()?;
            ends.push(v);
        }
        Ok(terms
            .iter()
            .enumerate()
            .map(|(i, t)| TermValue {
                position: t.position,
                token: t.token,
                token_display: self.tokenizer.display_token(t.token),
                weight: t.weight,
                f_input: ends[0][i],
                f_baseline: ends[1][i],
            })
            .collect())
    }
}

/// Encodes `text` (with an optional second segment), refusing empty text and, unless
/// `truncate`, text longer than `max` tokens; with `truncate` it keeps the first `max − 1` tokens
/// and the closing special token.
pub fn encode(
    tok: &Tokenizer,
    text: &str,
    pair: Option<&str>,
    max: usize,
    truncate: bool,
) -> Result<Encoded> {
    encode_pair(tok, text, pair, max, truncate, "the text")
}

fn encode_as(
    tok: &Tokenizer,
    text: &str,
    max: usize,
    truncate: bool,
    what: &'static str,
) -> Result<Encoded> {
    encode_pair(tok, text, None, max, truncate, what)
}

fn encode_pair(
    tok: &Tokenizer,
    text: &str,
    pair: Option<&str>,
    max: usize,
    truncate: bool,
    what: &'static str,
) -> Result<Encoded> {
    if text.trim().is_empty() {
        return Err(Error::Empty(what));
    }
    let mut e = tok.encode(text, pair)?;
    if e.is_empty() || e.special.iter().all(|&s| s) {
        return Err(Error::Empty(
            "the text after tokenization (no tokens besides the special ones)",
        ));
    }
    if e.len() > max {
        if !truncate {
            return Err(Error::TooLong {
                tokens: e.len(),
                max,
            });
        }
        let last = e.len() - 1;
        let keep_last = e.special[last];
        let cut = if keep_last { max - 1 } else { max };
        let mut idx: Vec<usize> = (0..cut).collect();
        if keep_last {
            idx.push(last);
        }
        e = Encoded {
            ids: idx.iter().map(|&i| e.ids[i]).collect(),
            tokens: idx.iter().map(|&i| e.tokens[i].clone()).collect(),
            type_ids: idx.iter().map(|&i| e.type_ids[i]).collect(),
            offsets: idx.iter().map(|&i| e.offsets[i]).collect(),
            special: idx.iter().map(|&i| e.special[i]).collect(),
            words: idx.iter().map(|&i| e.words[i]).collect(),
        };
    }
    Ok(e)
}
