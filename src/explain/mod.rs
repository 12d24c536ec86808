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
mod prepare;
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
pub use prepare::{encode, Prepared};
pub use report::{
    AblationReport, AttentionReport, ChatInfo, ConductanceReport, Continuation, Header, IgReport,
    LayerEntry, LayerIgReport, NeuronReport, NoiseTunnelInfo, PathInfo, Refinement, RefinementStep,
    SaliencyReport, SensitivityReport, SimplePath, StartProbe, TargetInfo, TermInfo, TermValue,
    Timing, TokenCurve, TokenReport, Words,
};

use crate::attribution::{PathProblem, Target};
use crate::io::ChatTemplate;
use crate::io::{Encoded, Tokenizer};
use crate::models::{self, Batch, Hooks, Model, ModelOutput};
use crate::report::{aggregate_words, Aggregate, TokenScores};
use crate::{Error, Result};
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
