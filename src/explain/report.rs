//! Reports: what each method returns. Serialised (`serde_json::to_value`), every report is the
//! JSON document of docs/JSON.md; the fields marked `skip` are for printing only.

use super::words_of;
use crate::attribution::IgResult;
use crate::io::Encoded;
use crate::report::{Aggregate, TokenScores};
use serde::Serialize;

/// What F is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum TargetInfo {
    /// A class of a classifier.
    #[serde(rename = "class")]
    Class {
        kind: &'static str,
        class: usize,
        label: Option<String>,
    },
    /// Cosine similarity of the mean-pooled embeddings.
    #[serde(rename = "cosine_similarity")]
    Similarity { similar_to: String },
    /// A next token of a causal language model.
    #[serde(rename = "token")]
    Token {
        kind: &'static str,
        position: usize,
        token: usize,
        token_str: Option<String>,
        /// `token_str` as text ([`crate::io::Tokenizer::display_token`]).
        token_display: Option<String>,
    },
    /// A whole answer's teacher-forced log-probability, or its difference to a contrast's.
    #[serde(rename = "answer")]
    Answer {
        /// What F is, e.g. `log p(answer) - log p(contrast)`.
        quantity: &'static str,
        /// Tokens of the prompt; the answer's tokens (all but its last) follow them.
        prompt_tokens: usize,
        /// Where the answer and the contrast differ before their last tokens, they run as two
        /// branches of a token tree after their shared tokens (`models::batch`): the index of
        /// the contrast's first own token. None when one sequence holds both.
        contrast_branch: Option<usize>,
        answer: Continuation,
        contrast: Option<Continuation>,
        /// F = Σ weight · term: each term is the `kind` of `token` as the next token after
        /// `position` (shared tokens of answer and contrast cancel and are left out).
        terms: Vec<TermInfo>,
    },
}

/// An answer or contrast continuation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Continuation {
    pub text: String,
    pub ids: Vec<usize>,
    pub tokens_display: Vec<String>,
}

/// One term of an answer target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermInfo {
    pub position: usize,
    pub token: usize,
    pub token_display: Option<String>,
    pub kind: &'static str,
    pub weight: f64,
}

/// One term of an answer target at the path ends: the per-answer-token breakdown of F.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermValue {
    pub position: usize,
    pub token: usize,
    pub token_display: Option<String>,
    pub weight: f64,
    /// The term (before its weight) at the input and at the baseline.
    pub f_input: f64,
    pub f_baseline: f64,
}

/// The chat turn a prompt was rendered from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatInfo {
    pub user: String,
    pub system: Option<String>,
}

impl std::fmt::Display for TargetInfo {
    /// A one-line description, e.g. `class 1 (POSITIVE) logit`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetInfo::Class { kind, class, label } => write!(
                f,
                "class {class}{} {kind}",
                label
                    .as_ref()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default()
            ),
            TargetInfo::Similarity { similar_to } => {
                write!(f, "cosine similarity to {similar_to:?}")
            }
            TargetInfo::Token {
                kind,
                position,
                token,
                token_str,
                token_display,
            } => write!(
                f,
                "next token {token} {:?} after position {position}, {kind}",
                token_display
                    .as_deref()
                    .or(token_str.as_deref())
                    .unwrap_or("?")
            ),
            TargetInfo::Answer {
                quantity,
                answer,
                contrast,
                ..
            } => match contrast {
                None => write!(f, "{quantity}, answer {:?}", answer.text),
                Some(c) => write!(
                    f,
                    "{quantity}, answer {:?}, contrast {:?}",
                    answer.text, c.text
                ),
            },
        }
    }
}

/// Wall-clock seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Timing {
    /// Loading weights, config and tokenizer.
    pub load_s: f64,
    /// From tokenization to the end of the method.
    pub attribution_s: f64,
}

/// The fields every token-level report shares.
#[derive(Debug, Clone, Serialize)]
pub struct Header {
    pub method: String,
    pub gradpath_version: &'static str,
    /// The model path as given.
    pub model: String,
    pub model_description: String,
    /// The text that was tokenized: with a chat, the prompt rendered by the chat template.
    pub text: String,
    /// The chat turn (user and system message) when the chat template was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat: Option<ChatInfo>,
    /// Answer targets: each answer (and contrast) token's term at the input and the baseline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer_terms: Option<Vec<TermValue>>,
    pub tokens: Vec<String>,
    /// The tokens as text ([`crate::io::display_tokens`]): byte-level and SentencePiece
    /// spellings decoded, special tokens as spelled (`special` marks them).
    pub tokens_display: Vec<String>,
    pub ids: Vec<usize>,
    pub special: Vec<bool>,
    /// `None` (JSON `null`) for methods that explain no target.
    pub target: Option<TargetInfo>,
    pub baseline: String,
    pub baseline_ids: Option<Vec<usize>>,
    pub dtype: String,
    /// Checkpoint tensors the model did not read (a pooler, a pre-training head); absent when
    /// every tensor was used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unused_tensors: Vec<String>,
    pub timing: Timing,
    /// The encoding (offsets and word ids, for word aggregation).
    #[serde(skip)]
    pub encoded: Encoded,
}

impl Header {
    /// The readable tokens made printable for a table or page ([`crate::io::printable`]).
    pub fn labels(&self) -> Vec<String> {
        self.tokens_display
            .iter()
            .map(|t| crate::io::printable(t))
            .collect()
    }
    /// A one-line description of the target (`none` without one).
    pub fn target_description(&self) -> String {
        self.target
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_else(|| "none".into())
    }
}

/// Token scores merged into words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Words {
    pub words: Vec<String>,
    pub word_attributions: Vec<f64>,
    pub word_aggregation: &'static str,
}

/// The probe of F just after the path start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StartProbe {
    pub alpha: f64,
    pub f: f64,
    pub jump: f64,
}

/// The evaluated path of token IG.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathInfo {
    pub alphas: Vec<f64>,
    pub f: Vec<f64>,
    pub total_variation: f64,
    pub start_probe: StartProbe,
}

impl PathInfo {
    pub(crate) fn of(r: &IgResult) -> PathInfo {
        PathInfo {
            alphas: r.path_alphas.clone(),
            f: r.path_f.clone(),
            total_variation: r.path_variation(),
            start_probe: StartProbe {
                alpha: crate::attribution::ig::START_PROBE,
                f: r.f_start,
                jump: r.start_jump(),
            },
        }
    }
}

/// One attempt of adaptive refinement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RefinementStep {
    pub n: usize,
    pub points_used: usize,
    pub relative_delta: f64,
    /// ‖A_n − A_prev‖₂ / ‖A_n‖₂ of the per-token attributions against the attempt before: an
    /// error estimate for the attributions themselves (`null` for the first attempt and for
    /// `--adaptive panels`).
    pub attribution_change: Option<f64>,
}

/// The trace of adaptive refinement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refinement {
    pub tolerance: f64,
    pub converged: bool,
    pub trajectory: Vec<RefinementStep>,
    /// `--adaptive panels`: the error estimate of the per-token attributions from each final
    /// panel's embedded Gauss rule ([`crate::attribution::IgResult::attribution_error`]); `null`
    /// for other schemes, whose estimate is the last `attribution_change`.
    pub attribution_error: Option<f64>,
}

/// [`super::Explainer::ig`]: token Integrated Gradients at `hook_embed`.
#[derive(Debug, Clone, Serialize)]
pub struct IgReport {
    #[serde(flatten)]
    pub header: Header,
    pub quadrature: &'static str,
    pub steps: usize,
    pub points_used: usize,
    pub batch: usize,
    pub boundary: &'static str,
    pub attributions: Vec<f64>,
    pub f_input: f64,
    pub f_baseline: f64,
    pub delta: f64,
    pub relative_delta: f64,
    pub path: PathInfo,
    pub rough: bool,
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refinement: Option<Refinement>,
    #[serde(flatten)]
    pub words: Option<Words>,
    /// When the same attribution ran several times in one process (`gradpath ig --repeat N`):
    /// each run's `attribution_s`, in order (the first pays first-touch page faults and start-up,
    /// the later ones reuse warm buffers); the report is the last run's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_attribution_s: Option<Vec<f64>>,
    /// The method's own result (per-coordinate values, refinement panels, ...).
    #[serde(skip)]
    pub result: IgResult,
}

/// One boundary of a layer method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerEntry {
    pub boundary: String,
    pub shape: Vec<usize>,
    pub attributions: Vec<f64>,
    pub total: f64,
    pub delta: Option<f64>,
    pub relative_delta: Option<f64>,
}

/// The alphas and F along a boundary path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimplePath {
    pub alphas: Vec<f64>,
    pub f: Vec<f64>,
}

/// [`super::Explainer::layer_ig`]: layer Integrated Gradients at one boundary.
#[derive(Debug, Clone, Serialize)]
pub struct LayerIgReport {
    #[serde(flatten)]
    pub header: Header,
    pub boundary: String,
    pub shape: Vec<usize>,
    pub quadrature: &'static str,
    pub steps: usize,
    pub batch: usize,
    pub attributions: Vec<f64>,
    pub total: f64,
    pub f_input: f64,
    pub f_baseline: f64,
    pub delta: Option<f64>,
    pub relative_delta: Option<f64>,
    pub path: SimplePath,
    #[serde(flatten)]
    pub words: Option<Words>,
}

/// One token's conductance across layers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenCurve {
    pub index: usize,
    pub token: String,
    /// Its score per layer.
    pub values: Vec<f64>,
    /// Its score over the L2 norm of the layer's token scores.
    pub normalised: Vec<f64>,
}

/// [`super::Explainer::conductance`]: layer conductance (or internal influence) of every
/// selected layer from one sweep of path points.
#[derive(Debug, Clone, Serialize)]
pub struct ConductanceReport {
    #[serde(flatten)]
    pub header: Header,
    pub warnings: Vec<String>,
    pub at: String,
    pub path_boundary: String,
    pub quadrature: &'static str,
    pub steps: usize,
    pub points: usize,
    pub batch: usize,
    pub layer_indices: Vec<usize>,
    pub layers: Vec<LayerEntry>,
    pub f_input: f64,
    pub f_baseline: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenCurve>,
}

impl ConductanceReport {
    /// The token × layer matrix, row-major `[n_tok, n_layers]`.
    pub fn matrix(&self) -> Vec<f64> {
        let (t, n) = (self.header.tokens.len(), self.layers.len());
        let mut m = vec![0.0; t * n];
        for (j, l) in self.layers.iter().enumerate() {
            for (i, v) in l.attributions.iter().enumerate().take(t) {
                m[i * n + j] = *v;
            }
        }
        m
    }
}

/// [`super::Explainer::neuron`]: neuron conductance attributed to the path boundary.
#[derive(Debug, Clone, Serialize)]
pub struct NeuronReport {
    #[serde(flatten)]
    pub header: Header,
    pub boundary: String,
    pub neuron: Vec<usize>,
    pub path_boundary: String,
    pub quadrature: &'static str,
    pub steps: usize,
    pub attributions: Vec<f64>,
    pub total: f64,
    pub f_input: f64,
    pub f_baseline: f64,
    #[serde(flatten)]
    pub words: Option<Words>,
}

/// Noise tunnel settings of a saliency run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseTunnelInfo {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub samples: usize,
    pub stdev: f64,
    pub seed: u64,
}

/// [`super::Explainer::saliency`]: saliency or input × gradient, optionally noise-tunnelled.
#[derive(Debug, Clone, Serialize)]
pub struct SaliencyReport {
    #[serde(flatten)]
    pub header: Header,
    pub boundary: &'static str,
    pub noise_tunnel: Option<NoiseTunnelInfo>,
    pub attributions: Vec<f64>,
    pub f_input: f64,
    #[serde(flatten)]
    pub words: Option<Words>,
}

/// [`super::Explainer::attention`]: the attention probabilities of every layer and head.
#[derive(Debug, Clone, Serialize)]
pub struct AttentionReport {
    #[serde(flatten)]
    pub header: Header,
    pub n_layers: usize,
    pub n_heads: usize,
    pub masked_heads: Vec<[usize; 2]>,
    /// `[n_layers][n_heads][n_tok][n_tok]`, row = query.
    pub attention: Vec<Vec<Vec<Vec<f64>>>>,
}

/// [`super::Explainer::ablate`]: each token's word embedding replaced in turn.
#[derive(Debug, Clone, Serialize)]
pub struct AblationReport {
    #[serde(flatten)]
    pub header: Header,
    pub replace: &'static str,
    pub attributions: Vec<f64>,
    pub f_input: f64,
    pub f_ablated: Vec<f64>,
    #[serde(flatten)]
    pub words: Option<Words>,
}

/// [`super::Explainer::sensitivity`]: spread of F under noise on one token at a time.
#[derive(Debug, Clone, Serialize)]
pub struct SensitivityReport {
    #[serde(flatten)]
    pub header: Header,
    pub sigma: f64,
    pub draws: usize,
    pub seed: u64,
    pub std: Vec<f64>,
    pub mean: Vec<f64>,
    pub f_input: f64,
    #[serde(flatten)]
    pub words: Option<Words>,
}

/// Token-level reports: one score per input token, optionally merged into words.
pub trait TokenReport {
    fn header(&self) -> &Header;
    /// The per-token scores.
    fn per_token(&self) -> &[f64];
    fn words_mut(&mut self) -> &mut Option<Words>;
    fn words(&self) -> &Option<Words>;
    /// Adds the words (`words`, `word_attributions`, `word_aggregation` in the JSON).
    ///
    /// Errors ([`crate::Error::Mismatch`]) when the report does not hold one value per token (a
    /// layer attribution at a boundary without a token axis, such as `hook_logits`).
    fn merge_words(&mut self, how: Aggregate) -> crate::Result<()> {
        let (n, t) = (self.per_token().len(), self.header().encoded.tokens.len());
        if n != t {
            return Err(crate::Error::Mismatch {
                what: "--words".into(),
                detail: format!(
                    "needs one value per token ({t} tokens), but this result has {n} values (a boundary without a token axis); drop --words"
                ),
            });
        }
        let w = words_of(self.header(), self.per_token(), how);
        *self.words_mut() = Some(w);
        Ok(())
    }
    /// What a table or page shows: the words when merged, else the tokens.
    fn scores(&self) -> TokenScores {
        super::token_scores(self.header(), self.words(), self.per_token())
    }
}

macro_rules! token_report {
    ($t:ty, $field:ident) => {
        impl TokenReport for $t {
            fn header(&self) -> &Header {
                &self.header
            }
            fn per_token(&self) -> &[f64] {
                &self.$field
            }
            fn words_mut(&mut self) -> &mut Option<Words> {
                &mut self.words
            }
            fn words(&self) -> &Option<Words> {
                &self.words
            }
        }
    };
}

token_report!(IgReport, attributions);
token_report!(LayerIgReport, attributions);
token_report!(NeuronReport, attributions);
token_report!(SaliencyReport, attributions);
token_report!(AblationReport, attributions);
token_report!(SensitivityReport, std);
