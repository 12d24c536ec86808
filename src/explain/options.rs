//! What a caller says before a method runs: how the model is loaded ([`Options`]), the text and
//! its target ([`Input`], [`TargetSpec`]), and how a path is integrated ([`PathOptions`],
//! [`Quadrature`], [`AdaptiveOptions`]).

use crate::attribution::{Adaptive, Baseline, TargetKind};
use crate::integrate::{captum_exact, Rule};
use crate::{DType, Error, Result};

/// How a model is loaded and how big a batch of path points may be.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Compute dtype (sums are accumulated in f64 either way).
    pub dtype: DType,
    /// Path points (rows) per forward/backward batch; `None`: as many as fit `memory_budget`.
    pub batch: Option<usize>,
    /// Bytes of saved activations a batch may hold when `batch` is `None` (default 512 MiB).
    pub memory_budget: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            dtype: DType::F32,
            batch: None,
            memory_budget: 512 << 20,
        }
    }
}

/// What F is: the scalar a method explains. Which fields apply depends on the model: a
/// classifier takes `class` (default: the predicted class), a sentence-embedding model needs
/// `similar_to`, a causal language model takes `token` and `position` (default: the predicted
/// token after the last position). `kind` applies to classes and tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// Classifiers: a class index or a label from `id2label`.
    pub class: Option<String>,
    /// Sentence-embedding models: F is the cosine similarity of the text's mean-pooled
    /// embedding to this text's.
    pub similar_to: Option<String>,
    /// Causal language models: the next token, as an id or a string that is one token.
    pub token: Option<String>,
    /// Causal language models: the position whose next-token logits are read.
    pub position: Option<usize>,
    /// Logit, probability or log-probability.
    pub kind: TargetKind,
    /// Causal language models: explain the log-probability of this whole continuation of the
    /// text, Σ_j log p(a_j | text, a_<j), teacher-forced (the answer's tokens are appended to the
    /// input and stay fixed along every path; the path moves the text's word embeddings only).
    /// Replaces `token` / `position`; `kind` does not apply.
    pub answer: Option<String>,
    /// With `answer`: explain log p(answer) − log p(contrast) instead (for two single tokens,
    /// their logit difference). Both are read from one forward: their shared tokens follow the
    /// text, and where they differ before their last tokens they continue as two branches of a
    /// token tree that do not see each other ([`crate::models::batch`]), so each is scored
    /// exactly as if it had been run alone.
    pub contrast: Option<String>,
}

impl Default for TargetSpec {
    fn default() -> TargetSpec {
        TargetSpec {
            class: None,
            similar_to: None,
            token: None,
            position: None,
            kind: TargetKind::Logit,
            answer: None,
            contrast: None,
        }
    }
}

/// The chat turn an [`Input`] is rendered into when the model's chat template is used.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chat {
    /// A system message before the user's.
    pub system: Option<String>,
}

/// A text to explain and its target.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub text: String,
    pub target: TargetSpec,
    /// Cut a text longer than the model's positions (keeping the closing special token) instead
    /// of failing with [`Error::TooLong`].
    pub truncate: bool,
    /// A second segment (sentence-pair classifiers: `[CLS] text [SEP] pair [SEP]`, token type 1).
    pub pair: Option<String>,
    /// Render `text` as the user's message with the model's chat template (generation prompt
    /// appended) and explain the rendered prompt; the template's special tokens are kept out of
    /// the baseline like BOS. [`Error::NoChatTemplate`] for a model without a template.
    pub chat: Option<Chat>,
}

impl Input {
    /// `text` with the default target (predicted class or token).
    pub fn text(text: impl Into<String>) -> Input {
        Input {
            text: text.into(),
            target: TargetSpec::default(),
            truncate: false,
            pair: None,
            chat: None,
        }
    }

    /// Render the text with the model's chat template, as the user's message.
    pub fn chat(mut self) -> Input {
        self.chat.get_or_insert_with(Chat::default);
        self
    }
    /// A system message (implies [`Input::chat`]).
    pub fn system(mut self, system: impl Into<String>) -> Input {
        self.chat.get_or_insert_with(Chat::default).system = Some(system.into());
        self
    }
    /// Explain the log-probability of this continuation (causal language models).
    pub fn answer(mut self, answer: impl Into<String>) -> Input {
        self.target.answer = Some(answer.into());
        self
    }
    /// Explain log p(answer) − log p(contrast) (with [`Input::answer`]).
    pub fn contrast(mut self, contrast: impl Into<String>) -> Input {
        self.target.contrast = Some(contrast.into());
        self
    }

    /// A second segment for sentence-pair models.
    pub fn pair(mut self, pair: impl Into<String>) -> Input {
        self.pair = Some(pair.into());
        self
    }
    /// Explain the cosine similarity to `other` (sentence-embedding models).
    pub fn similar_to(mut self, other: impl Into<String>) -> Input {
        self.target.similar_to = Some(other.into());
        self
    }
    /// Explain a class, given as an index or a label (classifiers).
    pub fn class(mut self, class: impl Into<String>) -> Input {
        self.target.class = Some(class.into());
        self
    }
    /// Explain this next token, an id or a one-token string (causal language models).
    pub fn next_token(mut self, token: impl Into<String>) -> Input {
        self.target.token = Some(token.into());
        self
    }
    /// Read the next-token logits at this position (causal language models).
    pub fn at_position(mut self, position: usize) -> Input {
        self.target.position = Some(position);
        self
    }
    /// Logit, probability or log-probability of the class or token.
    pub fn kind(mut self, kind: TargetKind) -> Input {
        self.target.kind = kind;
        self
    }
    /// Cut the text at the model's limit instead of failing.
    pub fn truncate(mut self, yes: bool) -> Input {
        self.truncate = yes;
        self
    }
}

/// A quadrature rule with its number of points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quadrature {
    pub rule: Rule,
    pub steps: usize,
}

impl Default for Quadrature {
    fn default() -> Quadrature {
        Quadrature {
            rule: Rule::GaussLegendre,
            steps: 50,
        }
    }
}

impl Quadrature {
    /// Checks `steps` against the rule.
    pub fn check(&self) -> Result<()> {
        self.check_points(self.steps)
    }
    fn check_points(&self, n: usize) -> Result<()> {
        if self.steps == 0 {
            return Err(Error::BadValue {
                name: "steps",
                detail: "must be at least 1".into(),
            });
        }
        if n < self.rule.min_points() {
            return Err(Error::BadValue {
                name: "steps",
                detail: format!(
                    "{} needs at least {} points",
                    self.rule.name(),
                    self.rule.min_points()
                ),
            });
        }
        Ok(())
    }
    /// Nodes and weights of the rule at `n` points (Captum's own weights for
    /// `captum-trapezoid`).
    pub fn nodes(&self, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        self.check_points(n)?;
        if self.rule == Rule::CaptumTrapezoid {
            captum_exact(self.rule, n)
        } else {
            self.rule.nodes_weights(n)
        }
    }
}

/// The path of a path method: where it starts and how it is integrated.
#[derive(Debug, Clone, PartialEq)]
pub struct PathOptions {
    pub baseline: Baseline,
    pub quadrature: Quadrature,
}

impl Default for PathOptions {
    fn default() -> PathOptions {
        PathOptions {
            baseline: Baseline::Pad,
            quadrature: Quadrature::default(),
        }
    }
}

/// How adaptive refinement grows the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    /// n, 2n, 4n, ... points (other rules than Gauss–Legendre nest their points).
    #[default]
    Doubling,
    /// Gauss–Kronrod panels refined where F bends (Gauss–Legendre only): extended from 15 to
    /// Patterson's 31 points, then bisected ([`crate::integrate::refine_panels`]); the first
    /// pass is ⌈min(steps, 16) / 15⌉ equal panels.
    Panels,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Doubling => "doubling",
            Scheme::Panels => "panels",
        }
    }
}

/// Refine the quadrature until the relative completeness delta is ≤ `tolerance` or
/// `max_points` path points are spent. The first pass uses min(steps, 16) points; with
/// [`Scheme::Panels`], that many rounded up to whole G7/K15 panels of 15 (two panels, 30 points,
/// for the default steps).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveOptions {
    pub tolerance: f64,
    pub scheme: Scheme,
    pub max_points: usize,
}

impl AdaptiveOptions {
    pub fn new(tolerance: f64) -> AdaptiveOptions {
        AdaptiveOptions {
            tolerance,
            scheme: Scheme::Doubling,
            max_points: 1024,
        }
    }
    /// The refinement scheme for `q`, after checking the tolerance and the point budget.
    pub fn scheme_for(&self, q: &Quadrature) -> Result<Adaptive> {
        let tol = self.tolerance;
        if !(tol.is_finite() && tol > 0.0) {
            return Err(Error::BadValue {
                name: "tolerance",
                detail: format!("must be a finite number > 0, got {tol}"),
            });
        }
        let start = q.steps.min(16).max(q.rule.min_points());
        let panels = (q.rule == Rule::GaussLegendre && self.scheme == Scheme::Panels)
            .then(|| start.div_ceil(15));
        let first = panels.map_or(start, |p| 15 * p);
        if self.max_points < first {
            return Err(Error::BadValue {
                name: "max_points",
                detail: format!(
                    "{} is below the {first} points of the first adaptive pass; raise it or lower the steps",
                    self.max_points
                ),
            });
        }
        Ok(match panels {
            Some(p) => Adaptive::Panels(p),
            None => Adaptive::Rule(q.rule, start),
        })
    }
}

/// Options of [`Explainer::ig`](super::Explainer::ig).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IgOptions {
    pub path: PathOptions,
    /// Adaptive refinement instead of a fixed rule.
    pub adaptive: Option<AdaptiveOptions>,
}
