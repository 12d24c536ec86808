//! The library's front door: load a model, say what to explain, run a method, serialise the
//! report. Everything the `gradpath` CLI does apart from parsing flags and printing lives here, so
//! a Rust caller explains a sentence in three lines:
//!
//! ```no_run
//! use gradpath::explain::{Explainer, IgOptions, Input, Options};
//! let ex = Explainer::load("models/all-MiniLM-L6-v2", Options::default())?;
//! let r = ex.ig(&Input::text("A man plays guitar.").similar_to("Someone makes music."), &IgOptions::default())?;
//! println!("{}", serde_json::to_string(&r).unwrap());
//! # Ok::<(), gradpath::Error>(())
//! ```
//!
//! - [`Explainer::load`]: a Hugging Face folder, a `.gguf` file or a folder holding one, with its
//!   tokenizer, in the dtype and memory budget of [`Options`];
//! - [`Input`]: the text and the target ([`TargetSpec`]: a class index or label, a similarity
//!   text, a next token and position), resolved against the model when a method runs;
//! - one method per call ([`Explainer::ig`], [`Explainer::layer_ig`], [`Explainer::conductance`],
//!   [`Explainer::neuron`], [`Explainer::saliency`], [`Explainer::attention`],
//!   [`Explainer::ablate`], [`Explainer::sensitivity`], [`Explainer::generate`],
//!   [`Explainer::attattr`], [`Explainer::lig`]; over data sets [`Explainer::head_importance`]
//!   and [`Explainer::pruning_curve`]; a fine-tuned classifier against its base model:
//!   [`Explainer::load_classifier`] and [`compare`]), each taking
//!   its own options struct and returning a report that derives `Serialize`: serialised, it is
//!   the JSON document of docs/JSON.md (`gradpath <command> --json` writes exactly that).
//!
//! Errors are typed ([`crate::Error`]) and speak of the library's option names (`steps`,
//! `batch`, `tolerance`, ...), never of command-line flags.

mod attattr;
mod compare;
mod converge;
mod generate;
mod heads;
mod methods;
mod options;
mod report;

pub use attattr::{
    AttAttrLayer, AttAttrOptions, AttAttrReport, Connection, ROUGH as ATTATTR_ROUGH,
};
pub use compare::{
    compare, compare_with_progress, late_from, late_share, negative_share, normalised_entropy,
    peak_layer, read_data, ClassifierInfo, CompareExample, CompareOptions, CompareReport,
    CompareTiming, ConductanceCurve, DepthComparison, ExampleComparison, GroupComparison,
    GroupDifference, GroupStats, IgSummary, ModelInfo, ModelResult, Occurrence, Skipped, Stat,
    StatDifference,
};
pub use converge::{ConvergeOptions, ConvergeReport, ConvergeSummary, SummaryRule, SummaryRun};
pub use generate::{AnswerPathsReport, GenerateOptions, GenerationReport, GenerationStepReport};
pub use heads::{HeadCriterion, HeadScores, PruningCurve};
pub use methods::{
    check_head, AblateOptions, AttentionOptions, ConductanceOptions, LayerIgOptions, NeuronOptions,
    SaliencyOptions, SensitivityOptions, Smoothing,
};
pub use options::{
    AdaptiveOptions, Chat, IgOptions, Input, Options, PathOptions, Quadrature, Scheme, TargetSpec,
};
pub use report::{
    AblationReport, AttentionReport, ChatInfo, ConductanceReport, Continuation, Header, IgReport,
    LayerEntry, LayerIgReport, NeuronReport, NoiseTunnelInfo, PathInfo, Refinement, RefinementStep,
    SaliencyReport, SensitivityReport, SimplePath, StartProbe, TargetInfo, TermInfo, TermValue,
    Timing, TokenCurve, TokenReport, Words,
};

use crate::attribution::{Baseline, PathProblem, Target, TargetKind, TokenTerm};
use crate::io::ChatTemplate;
use crate::io::{Encoded, Tokenizer};
use crate::models::batch::FIRST_BRANCH;
use crate::models::{self, Batch, HookName, Hooks, Model, ModelOutput};
use crate::report::{aggregate_words, Aggregate, TokenScores};
use crate::{Error, Result, Tensor};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A progress callback: (points done, points in all).
pub type ProgressFn = Box<dyn FnMut(usize, usize)>;

/// A loaded model with its tokenizer: the object every method runs on.
pub struct Explainer {
    model: Box<dyn Model>,
    tokenizer: Tokenizer,
    chat_template: Option<ChatTemplate>,
    path: PathBuf,
    options: Options,
    load_s: f64,
    progress: RefCell<Option<ProgressFn>>,
    step_progress: RefCell<Option<ProgressFn>>,
    /// Set by [`Explainer::load_classifier`].
    classifier: Option<ClassifierInfo>,
    /// `model_type` of the folder's `config.json` (`None` for a GGUF file or without one).
    model_type: Option<String>,
}

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
    started: Instant,
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
    /// Loads a model (Hugging Face folder, `.gguf` file or a folder holding one) and its
    /// tokenizer.
    pub fn load(path: impl AsRef<Path>, options: Options) -> Result<Explainer> {
        let path = path.as_ref().to_path_buf();
        let t0 = Instant::now();
        let model = models::load(&path, options.dtype)?;
        Explainer::assemble(path, model, options, t0, None)
    }

    /// The rest of loading once the model is built (by [`Explainer::load`] or
    /// [`Explainer::load_classifier`]): the tokenizer, the chat template and the config's
    /// `model_type` from the same folder.
    fn assemble(
        path: std::path::PathBuf,
        model: Box<dyn Model>,
        options: Options,
        t0: Instant,
        classifier: Option<ClassifierInfo>,
    ) -> Result<Explainer> {
        let tokenizer = models::load_tokenizer(&path)?;
        let dir = crate::io::ModelDir::open(&path)?;
        let chat_template = dir.chat_template()?;
        let model_type = dir
            .config_json()
            .ok()
            .and_then(|c| c["model_type"].as_str().map(str::to_string));
        Ok(Explainer {
            model,
            tokenizer,
            chat_template,
            model_type,
            path,
            options,
            load_s: t0.elapsed().as_secs_f64(),
            progress: RefCell::new(None),
            step_progress: RefCell::new(None),
            classifier,
        })
    }

    /// The model.
    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }
    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
    /// The model's chat template (`None` when it has none).
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// `user` (after an optional `system` message) rendered with the model's chat template, the
    /// generation prompt appended: the text the model answers.
    pub fn render_chat(&self, user: &str, system: Option<&str>) -> Result<String> {
        let t = self
            .chat_template
            .as_ref()
            .ok_or_else(|| Error::NoChatTemplate {
                model: self.path.display().to_string(),
            })?;
        t.render(&ChatTemplate::messages(user, system), true)
    }

    /// Encodes a chat: [`Explainer::render_chat`], tokenized without adding special tokens (the
    /// template writes them, as `apply_chat_template(..., tokenize=True)` does); every special
    /// token of the rendered prompt is marked `special`.
    pub fn encode_chat(&self, user: &str, system: Option<&str>) -> Result<(String, Encoded)> {
        if user.trim().is_empty() {
            return Err(Error::Empty("the text"));
        }
        let text = self.render_chat(user, system)?;
        let mut e = self.tokenizer.encode_with(&text, None, false)?;
        for (s, &id) in e.special.iter_mut().zip(&e.ids) {
            *s = *s || self.tokenizer.is_special(id);
        }
        if e.len() > self.model.max_tokens() {
            return Err(Error::TooLong {
                tokens: e.len(),
                max: self.model.max_tokens(),
            });
        }
        Ok((text, e))
    }

    /// The path the model was loaded from, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The options it was loaded with.
    pub fn options(&self) -> &Options {
        &self.options
    }
    /// Seconds spent loading weights, config and tokenizer.
    pub fn load_seconds(&self) -> f64 {
        self.load_s
    }

    /// Calls `f(done, total)` as path points are evaluated.
    pub fn on_progress(&mut self, f: impl FnMut(usize, usize) + 'static) {
        *self.progress.get_mut() = Some(Box::new(f));
    }
    /// [`Explainer::generate`]: calls `f(step, n_steps)` before each generated token.
    pub fn on_step(&mut self, f: impl FnMut(usize, usize) + 'static) {
        *self.step_progress.get_mut() = Some(Box::new(f));
    }
    pub(crate) fn report_progress(&self, done: usize, total: usize) {
        if let Some(f) = self.progress.borrow_mut().as_mut() {
            f(done, total)
        }
    }
    pub(crate) fn report_step(&self, step: usize, n: usize) {
        if let Some(f) = self.step_progress.borrow_mut().as_mut() {
            f(step, n)
        }
    }

    /// Encodes `text` ([`encode`] with the model's limit).
    pub fn encode(&self, text: &str, truncate: bool) -> Result<Encoded> {
        encode(
            &self.tokenizer,
            text,
            None,
            self.model.max_tokens(),
            truncate,
        )
    }

    /// Path points per batch for `n_tok` tokens: [`Options::batch`], or as many rows as fit the
    /// memory budget, at most `cap`.
    pub fn batch_size(&self, n_tok: usize, cap: usize) -> Result<usize> {
        let b = self.options.batch.unwrap_or_else(|| {
            self.options
                .memory_budget
                .checked_div(self.model.activation_bytes_per_row(n_tok))
                .unwrap_or(1)
                .clamp(1, cap.max(1))
        });
        if b == 0 {
            return Err(Error::BadValue {
                name: "batch",
                detail: "must be at least 1".into(),
            });
        }
        Ok(b)
    }

    /// A next-token target given as an id or a string that is one token.
    pub fn parse_token(&self, s: &str) -> Result<usize> {
        let vocab = self.model.vocab_size();
        if let Ok(id) = s.parse::<usize>() {
            if id >= vocab {
                return Err(Error::OutOfRange {
                    what: "token id",
                    index: id,
                    len: vocab,
                });
            }
            return Ok(id);
        }
        if let Some(id) = self.tokenizer.token_to_id(s) {
            return Ok(id);
        }
        let e = self.tokenizer.encode_plain(s)?;
        match e.as_slice() {
            [id] => Ok(*id),
            ids => Err(Error::Unknown {
                what: "target token",
                value: s.to_string(),
                valid: vec![format!(
                    "a single token or an id; it encodes to {} tokens {ids:?}",
                    ids.len()
                )],
            }),
        }
    }

    /// One plain forward of `e` (no boundaries touched, nothing recorded: the weights and token
    /// lookups are constants), counted with the probe's forwards
    /// ([`crate::attribution::probe::forward_count`]).
    pub fn forward(&self, e: &Encoded) -> Result<ModelOutput> {
        crate::attribution::probe::count_forward(1);
        self.model
            .forward(&Batch::repeat(&e.ids, &e.type_ids, 1), &mut Hooks::new())
    }

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

    /// The path problem at `hook_embed` for a prepared input.
    pub fn problem<'a>(&'a self, p: &'a Prepared, target: &'a Target) -> PathProblem<'a> {
        PathProblem {
            model: self.model.as_ref(),
            ids: &p.encoded.ids,
            type_ids: &p.encoded.type_ids,
            boundary: "hook_embed",
            input: &p.x,
            baseline: &p.x_baseline,
            target,
        }
    }

    /// The fields every report shares.
    pub(crate) fn header(&self, method: &str, input: &Input, p: &Prepared) -> Header {
        Header {
            method: method.to_string(),
            gradpath_version: env!("CARGO_PKG_VERSION"),
            model: self.path.display().to_string(),
            model_description: self.model.describe(),
            text: p.text.clone(),
            chat: p.chat.as_ref().map(|c| ChatInfo {
                user: input.text.clone(),
                system: c.system.clone(),
            }),
            answer_terms: p.answer_terms.clone(),
            tokens: p.encoded.tokens.clone(),
            tokens_display: self
                .tokenizer
                .display_tokens(&p.encoded.tokens, &p.encoded.special),
            ids: p.encoded.ids.clone(),
            special: p.encoded.special.clone(),
            target: p.target_info.clone(),
            baseline: p.baseline.name(),
            baseline_ids: p.baseline_ids.clone(),
            dtype: self.options.dtype.to_string(),
            unused_tensors: self.model.unused_tensors(),
            timing: Timing {
                load_s: self.load_s,
                attribution_s: p.started.elapsed().as_secs_f64(),
            },
            encoded: p.encoded.clone(),
        }
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

/// The median of the non-NaN values (the mean of the two middle ones for an even count; `None`
/// for none): the one median of the reports ([`ConvergeSummary`], [`Stat`]).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    })
}

/// Index of the largest value (the first one on ties).
pub fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &x)| {
            if x > best.1 {
                (i, x)
            } else {
                best
            }
        })
        .0
}

/// Per-token scores of `h`'s text merged into words.
pub(crate) fn words_of(h: &Header, per_token: &[f64], how: Aggregate) -> Words {
    let s = aggregate_words(
        &h.text,
        &h.tokens_display,
        &h.encoded.words,
        &h.encoded.offsets,
        &h.encoded.type_ids,
        per_token,
        how,
    );
    Words {
        words: s.labels,
        word_attributions: s.scores,
        word_aggregation: aggregate_name(how),
    }
}

/// The name `Aggregate::parse` reads.
pub fn aggregate_name(how: Aggregate) -> &'static str {
    match how {
        Aggregate::Sum => "sum",
        Aggregate::Mean => "mean",
        Aggregate::Max => "max",
        Aggregate::AbsMax => "absmax",
    }
}

/// Scores for a table or page: the words when merged, else the tokens.
pub(crate) fn token_scores(h: &Header, words: &Option<Words>, per_token: &[f64]) -> TokenScores {
    match words {
        Some(w) => TokenScores {
            labels: w.words.iter().map(|l| crate::io::printable(l)).collect(),
            scores: w.word_attributions.clone(),
        },
        None => TokenScores {
            labels: h.labels(),
            scores: per_token.to_vec(),
        },
    }
}
