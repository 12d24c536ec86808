//! Generation attribution: greedy generation (or a given continuation) with every generated
//! token explained by IG over the tokens before it.

use super::report::{PathInfo, Timing};
use super::{encode, AdaptiveOptions, Explainer, PathOptions};
use crate::attribution::{generation_attribution, greedy, Generation, GenerationSpec, TargetKind};
use crate::io::Tokenizer;
use crate::{Error, Result};
use serde::Serialize;
use std::time::Instant;

/// Options of [`Explainer::generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    pub path: PathOptions,
    /// Adaptive refinement of each step's quadrature.
    pub adaptive: Option<AdaptiveOptions>,
    /// Tokens to generate greedily (stops early at the end-of-sequence token).
    pub max_new_tokens: usize,
    /// Explain these tokens (ids or one-token strings) instead of generating: teacher forcing.
    pub continuation: Option<Vec<String>>,
    /// What each step explains of its token.
    pub kind: TargetKind,
    /// Keep earlier generated tokens fixed (Captum `LLMGradientAttribution`).
    pub prompt_only: bool,
    /// Render the prompt as the user's message with the model's chat template (generation prompt
    /// appended); its special tokens stay out of the baseline.
    pub chat: Option<super::Chat>,
}

impl Default for GenerateOptions {
    fn default() -> GenerateOptions {
        GenerateOptions {
            path: PathOptions::default(),
            adaptive: None,
            max_new_tokens: 5,
            continuation: None,
            kind: TargetKind::LogProb,
            prompt_only: false,
            chat: None,
        }
    }
}

/// One generated token's IG.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenerationStepReport {
    pub token: usize,
    pub token_str: String,
    pub attributions: Vec<f64>,
    pub f_input: f64,
    pub f_baseline: f64,
    pub delta: f64,
    pub relative_delta: f64,
    pub path: PathInfo,
    pub rough: bool,
}

/// [`Explainer::generate`]: the generated × input attribution matrix and every step.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationReport {
    pub method: &'static str,
    pub gradpath_version: &'static str,
    pub model: String,
    pub model_description: String,
    /// The prompt the model read (with a chat, the rendered template).
    pub text: String,
    /// The chat turn the prompt was rendered from (`--chat`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat: Option<super::report::ChatInfo>,
    pub prompt_ids: Vec<usize>,
    pub generated_ids: Vec<usize>,
    /// Printable input tokens (␣ = space, ⏎ = newline): the prompt and all but the last
    /// generated token.
    pub input_tokens: Vec<String>,
    pub generated_tokens: Vec<String>,
    pub matrix: Vec<Vec<Option<f64>>>,
    pub deltas: Vec<f64>,
    pub relative_deltas: Vec<f64>,
    pub steps: Vec<GenerationStepReport>,
    pub target_kind: &'static str,
    pub prompt_only: bool,
    pub baseline: String,
    pub quadrature: &'static str,
    pub n_steps: usize,
    pub tolerance: Option<f64>,
    pub adaptive: Option<&'static str>,
    pub points_used: Vec<usize>,
    pub batch: usize,
    pub dtype: String,
    pub boundary: &'static str,
    pub rough: bool,
    pub warnings: Vec<String>,
    pub timing: Timing,
    /// The method's own result.
    #[serde(skip)]
    pub generation: Generation,
    /// The generated text, decoded.
    #[serde(skip)]
    pub generated_text: String,
}

/// Printable tokens of a sequence ([`crate::io::display_tokens`], so that characters spread
/// over several byte-level tokens decode): spaces and newlines made visible (␣, ⏎), the rest of
/// a character shown on the token before as `·`.
impl GenerationStepReport {
    /// The report of one explained token `s`, shown as `shown`.
    fn of(s: &crate::attribution::GenerationStep, shown: &str) -> GenerationStepReport {
        GenerationStepReport {
            token: s.token,
            token_str: shown.to_string(),
            attributions: s.ig.per_token.clone(),
            f_input: s.ig.f_input,
            f_baseline: s.ig.f_baseline,
            delta: s.ig.delta,
            relative_delta: s.ig.relative_delta,
            path: PathInfo::of(&s.ig),
            rough: s.ig.roughness_warning().is_some(),
        }
    }
}

fn shown(tok: &Tokenizer, ids: &[usize]) -> Vec<String> {
    let toks: Vec<String> = ids
        .iter()
        .map(|&i| tok.id_to_token(i).unwrap_or_else(|| format!("#{i}")))
        .collect();
    let special: Vec<bool> = ids.iter().map(|&i| tok.is_special(i)).collect();
    tok.display_tokens(&toks, &special)
        .into_iter()
        .map(|t| {
            if t.is_empty() {
                "·".into()
            } else {
                t.replace(' ', "␣").replace('\n', "⏎")
            }
        })
        .collect()
}

impl Explainer {
    /// Causal language models: generate greedily (or take `continuation`) and explain every
    /// generated token by IG at `hook_embed` over the prompt and the tokens before it.
    pub fn generate(&self, prompt: &str, o: &GenerateOptions) -> Result<GenerationReport> {
        let q = o.path.quadrature;
        q.check()?;
        if o.max_new_tokens == 0 && o.continuation.is_none() {
            return Err(Error::BadValue {
                name: "max_new_tokens",
                detail: "must be at least 1".into(),
            });
        }
        let adaptive = o
            .adaptive
            .map(|a| Ok::<_, Error>((a.scheme_for(&q)?, a.tolerance, a.max_points)))
            .transpose()?;
        let model = self.model();
        if !model.is_decoder() {
            return Err(Error::TargetMismatch(format!(
                "generation attribution needs a causal language model; {} is not one",
                model.describe()
            )));
        }
        let tok = self.tokenizer();
        let t1 = Instant::now();
        let (text, e) = match &o.chat {
            Some(c) => self.encode_chat(prompt, c.system.as_deref())?,
            None => (
                prompt.to_string(),
                encode(tok, prompt, None, model.max_tokens(), false)?,
            ),
        };
        let generated = match &o.continuation {
            Some(c) => c
                .iter()
                .map(|s| self.parse_token(s))
                .collect::<Result<Vec<_>>>()?,
            None => greedy(model, &e.ids, o.max_new_tokens, model.eos_token_id())?,
        };
        if generated.is_empty() {
            return Err(Error::Empty(
                "the continuation (the prompt already fills the model's positions)",
            ));
        }
        if e.len() + generated.len() - 1 > model.max_tokens() {
            return Err(Error::TooLong {
                tokens: e.len() + generated.len() - 1,
                max: model.max_tokens(),
            });
        }
        let baseline_token = o.path.baseline.token_id(tok, model)?;
        let (alphas, weights) = q.nodes(q.steps)?;
        let batch = self.batch_size(e.len() + generated.len(), q.steps)?;
        let spec = GenerationSpec {
            prompt: &e.ids,
            special: &e.special,
            generated: &generated,
            baseline_token,
            kind: o.kind,
            prompt_only: o.prompt_only,
            alphas: &alphas,
            weights: &weights,
            adaptive,
            batch,
        };
        let g = generation_attribution(
            model,
            &spec,
            &mut |s, n| self.report_step(s, n),
            &mut |d, t| self.report_progress(d, t),
        )?;
        let n_gen = generated.len();
        let all: Vec<usize> = e.ids.iter().chain(&generated).copied().collect();
        let mut inputs = shown(tok, &all);
        let outputs: Vec<String> = inputs[e.len()..].to_vec();
        inputs.truncate(e.len() + n_gen - 1);
        let warnings: Vec<String> = g
            .steps
            .iter()
            .zip(&outputs)
            .filter_map(|(s, o)| s.ig.roughness_warning().map(|w| format!("step {o}: {w}")))
            .collect();
        let steps = g
            .steps
            .iter()
            .zip(&outputs)
            .map(|(s, o)| GenerationStepReport::of(s, o))
            .collect();
        Ok(GenerationReport {
            method: "generation_attribution",
            gradpath_version: env!("CARGO_PKG_VERSION"),
            model: self.path().display().to_string(),
            model_description: model.describe(),
            text,
            chat: o.chat.as_ref().map(|c| super::report::ChatInfo {
                user: prompt.to_string(),
                system: c.system.clone(),
            }),
            prompt_ids: e.ids.clone(),
            generated_ids: g.generated.clone(),
            input_tokens: inputs,
            generated_tokens: outputs,
            matrix: g.matrix(),
            deltas: g.steps.iter().map(|s| s.ig.delta).collect(),
            relative_deltas: g.steps.iter().map(|s| s.ig.relative_delta).collect(),
            steps,
            target_kind: o.kind.name(),
            prompt_only: o.prompt_only,
            baseline: o.path.baseline.name(),
            quadrature: q.rule.name(),
            n_steps: q.steps,
            tolerance: o.adaptive.map(|a| a.tolerance),
            adaptive: o.adaptive.map(|a| a.scheme.name()),
            points_used: g.steps.iter().map(|s| s.ig.points_used).collect(),
            batch,
            dtype: self.options().dtype.to_string(),
            boundary: "hook_embed",
            rough: !warnings.is_empty(),
            warnings,
            timing: Timing {
                load_s: self.load_seconds(),
                attribution_s: t1.elapsed().as_secs_f64(),
            },
            generated_text: tok.decode(&generated).unwrap_or_default(),
            generation: g,
        })
    }
}

/// [`Explainer::answer_token_paths`]: Captum `LLMGradientAttribution`'s view of an answer.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerPathsReport {
    /// The prompt (`tokens`, `tokens_display`, ...; `target` is the answer).
    #[serde(flatten)]
    pub header: super::Header,
    /// Always `"per_token_paths"`.
    pub mode: &'static str,
    /// `token_attr[j][i]`: IG of log p(answer token j | prompt, answer tokens before j) on prompt
    /// token i, along a path of its own that moves the prompt's word embeddings only (the answer
    /// tokens before j are appended to input and baseline alike).
    pub token_attr: Vec<Vec<f64>>,
    /// `seq_attr[i] = Σ_j token_attr[j][i]`.
    pub seq_attr: Vec<f64>,
    /// Per answer token: F at the input and at the baseline, the completeness delta.
    pub steps: Vec<GenerationStepReport>,
    /// Σ_j of the per-token deltas.
    pub delta: f64,
    pub quadrature: &'static str,
    pub n_steps: usize,
    pub batch: usize,
    pub rough: bool,
    pub warnings: Vec<String>,
}

impl Explainer {
    /// An answer target ([`super::TargetSpec::answer`]) the way Captum's `LLMGradientAttribution`
    /// with `LayerIntegratedGradients` explains it: one IG path per answer token (its
    /// log-probability given the prompt and the answer's earlier tokens, which stay fixed),
    /// attributions on the prompt's tokens (`token_attr`) and their sum over the answer
    /// (`seq_attr`). The default answer target instead runs one path for the whole sum.
    pub fn answer_token_paths(
        &self,
        input: &super::Input,
        o: &PathOptions,
    ) -> Result<AnswerPathsReport> {
        let q = o.quadrature;
        q.check()?;
        let answer = input.target.answer.clone().ok_or_else(|| Error::BadValue {
            name: "per_token_paths",
            detail: "needs an answer".into(),
        })?;
        if input.target.contrast.is_some() {
            return Err(Error::BadValue {
                name: "per_token_paths",
                detail: "explains an answer's tokens one by one; it does not take a contrast"
                    .into(),
            });
        }
        // the prompt alone (chat template applied), with the answer as the reported target
        let mut prompt_input = input.clone();
        prompt_input.target.answer = None;
        let p = self.prepare(&prompt_input, &o.baseline, false)?;
        let mut with_answer = self.prepare(input, &o.baseline, true)?;
        let model = self.model();
        let tok = self.tokenizer();
        let generated = tok.encode_plain(&answer)?;
        let e = &p.encoded;
        if e.len() + generated.len() - 1 > model.max_tokens() {
            return Err(Error::TooLong {
                tokens: e.len() + generated.len() - 1,
                max: model.max_tokens(),
            });
        }
        let (alphas, weights) = q.nodes(q.steps)?;
        let batch = self.batch_size(e.len() + generated.len(), q.steps)?;
        let spec = GenerationSpec {
            prompt: &e.ids,
            special: &e.special,
            generated: &generated,
            baseline_token: o.baseline.token_id(tok, model)?,
            kind: TargetKind::LogProb,
            prompt_only: true,
            alphas: &alphas,
            weights: &weights,
            adaptive: None,
            batch,
        };
        let g = generation_attribution(
            model,
            &spec,
            &mut |s, n| self.report_step(s, n),
            &mut |d, t| self.report_progress(d, t),
        )?;
        let n = e.len();
        let token_attr: Vec<Vec<f64>> = g
            .steps
            .iter()
            .map(|s| s.ig.per_token[..n].to_vec())
            .collect();
        let seq_attr: Vec<f64> = (0..n)
            .map(|i| token_attr.iter().map(|r| r[i]).sum())
            .collect();
        let outputs = shown(tok, &generated);
        let warnings: Vec<String> = g
            .steps
            .iter()
            .zip(&outputs)
            .filter_map(|(s, o)| {
                s.ig.roughness_warning()
                    .map(|w| format!("answer token {o}: {w}"))
            })
            .collect();
        let steps: Vec<GenerationStepReport> = g
            .steps
            .iter()
            .zip(&outputs)
            .map(|(s, o)| GenerationStepReport::of(s, o))
            .collect();
        // the header of the prompt, with the answer target's description
        with_answer.encoded = p.encoded.clone();
        with_answer.baseline_ids = p.baseline_ids.clone();
        let header = self.header("answer_token_paths", input, &with_answer);
        Ok(AnswerPathsReport {
            header,
            mode: "per_token_paths",
            seq_attr,
            token_attr,
            delta: steps.iter().map(|s| s.delta).sum(),
            steps,
            quadrature: q.rule.name(),
            n_steps: q.steps,
            batch,
            rough: !warnings.is_empty(),
            warnings,
        })
    }
}
