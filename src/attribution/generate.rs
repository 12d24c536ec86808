//! Generation attribution for causal language models: greedily generate N tokens, then explain
//! each generated token by IG on the token embeddings of everything before it (the prompt and the
//! tokens generated so far), as Captum's `LLMGradientAttribution` (target: the log-probability of
//! the generated token, attributions summed over the hidden size) and Inseq do.
//!
//! Two semantics for the tokens generated before step s:
//! - default: they are on the path too (baseline token in x′), so a row attributes the step's
//!   target to the prompt *and* the earlier generated tokens (Inseq's target-side attribution);
//! - `prompt_only`: they stay fixed at their real embedding in both x and x′ (Captum
//!   `LLMGradientAttribution`: the earlier outputs are appended to input and baseline alike), so
//!   their attributions are exactly zero and the row covers the prompt.
//!
//! Every step reports its own completeness delta and roughness warning.

use super::ig::{
    integrated_gradients, integrated_gradients_adaptive, Adaptive, IgResult, PathProblem, Progress,
};
use super::probe::{self, Objective, Request, Rows, Subject};
use super::target::{Target, TargetKind};
use crate::models::Model;
use crate::{Error, Result, Tensor};

/// One explained generated token.
#[derive(Debug, Clone)]
pub struct GenerationStep {
    /// The generated token id.
    pub token: usize,
    /// IG over the `prompt + earlier generated` tokens (per-token sums in `per_token`).
    pub ig: IgResult,
}

/// The result of [`generation_attribution`].
#[derive(Debug, Clone)]
pub struct Generation {
    pub prompt_len: usize,
    pub generated: Vec<usize>,
    pub steps: Vec<GenerationStep>,
}

impl Generation {
    /// The attribution matrix `[n_generated, prompt_len + n_generated − 1]`: row s holds step s's
    /// per-token attributions, `None` for tokens that did not exist yet.
    pub fn matrix(&self) -> Vec<Vec<Option<f64>>> {
        let n_in = self.prompt_len + self.generated.len().saturating_sub(1);
        self.steps
            .iter()
            .map(|s| (0..n_in).map(|j| s.ig.per_token.get(j).copied()).collect())
            .collect()
    }
}

/// Greedy continuation of `ids` by up to `n` tokens (stops after `stop`, if given, like HF
/// `generate`). Each step is one forward of the whole sequence without gradients.
pub fn greedy(
    model: &dyn Model,
    ids: &[usize],
    n: usize,
    stop: Option<usize>,
) -> Result<Vec<usize>> {
    if !model.is_decoder() {
        return Err(Error::TargetMismatch(
            "generation needs a causal language model (GPT-2, Llama, Mistral, Qwen2)".into(),
        ));
    }
    let mut seq = ids.to_vec();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if seq.len() >= model.max_tokens() {
            break;
        }
        let types = vec![0; seq.len()];
        let position = seq.len() - 1;
        let logits = |fw: &probe::Forward| -> Result<crate::Var> {
            fw.output()
                .ok_or_else(|| Error::Internal("greedy step without a model output".into()))?
                .token_logits(position)
        };
        let req = Request::new(
            Rows::Count(1),
            Objective::Custom {
                reads: &[],
                model_output: true,
                eval: &logits,
            },
        );
        let mut l = Vec::new();
        probe::run(
            &Subject::new(model, &seq, &types),
            &req,
            &mut |_, _| {},
            &mut |c| {
                l = c.objective.to_vec_f64()?;
                Ok(())
            },
        )?;
        let next = l
            .iter()
            .enumerate()
            .fold(
                (0, f64::NEG_INFINITY),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            )
            .0;
        out.push(next);
        seq.push(next);
        if Some(next) == stop {
            break;
        }
    }
    Ok(out)
}

/// Settings of [`generation_attribution`].
pub struct GenerationSpec<'a> {
    pub prompt: &'a [usize],
    /// Which prompt tokens are special (kept in the baseline, e.g. BOS).
    pub special: &'a [bool],
    /// The generated tokens to explain (from [`greedy`] or given).
    pub generated: &'a [usize],
    /// Baseline token id (`None`: the zero embedding).
    pub baseline_token: Option<usize>,
    pub kind: TargetKind,
    pub prompt_only: bool,
    pub alphas: &'a [f64],
    pub weights: &'a [f64],
    /// Adaptive refinement instead of the fixed rule: (scheme, relative tolerance, point budget).
    pub adaptive: Option<(Adaptive, f64, usize)>,
    pub batch: usize,
}

/// IG of every generated token (see the module docs). `progress(step, n_steps)` is called
/// before each step's IG.
pub fn generation_attribution(
    model: &dyn Model,
    spec: &GenerationSpec,
    on_step: &mut dyn FnMut(usize, usize),
    progress: Progress,
) -> Result<Generation> {
    if spec.prompt.is_empty() {
        return Err(Error::Empty("prompt"));
    }
    if spec.special.len() != spec.prompt.len() {
        return Err(Error::Invalid {
            op: "generation_attribution",
            detail: format!(
                "{} special flags for {} prompt tokens",
                spec.special.len(),
                spec.prompt.len()
            ),
        });
    }
    let c = model.d_model();
    let mut steps = Vec::with_capacity(spec.generated.len());
    for (s, &token) in spec.generated.iter().enumerate() {
        on_step(s, spec.generated.len());
        let mut ids = spec.prompt.to_vec();
        ids.extend_from_slice(&spec.generated[..s]);
        let x = model.word_embeddings(&ids)?;
        let base_emb = match spec.baseline_token {
            Some(id) => Some(model.word_embeddings(&[id])?.to_vec_f64()?),
            None => None,
        };
        let xv = x.to_vec_f64()?;
        let mut b = Vec::with_capacity(xv.len());
        for (j, row) in xv.chunks(c).enumerate() {
            let keep = if j < spec.prompt.len() {
                spec.special[j]
            } else {
                spec.prompt_only
            };
            if keep {
                b.extend_from_slice(row);
            } else {
                match &base_emb {
                    Some(e) => b.extend_from_slice(e),
                    None => b.extend(std::iter::repeat_n(0.0, c)),
                }
            }
        }
        let b = Tensor::from_f64(&b, x.shape(), x.dtype())?;
        let type_ids = vec![0; ids.len()];
        let target = Target::Token {
            position: ids.len() - 1,
            token,
            kind: spec.kind,
        };
        let p = PathProblem {
            model,
            ids: &ids,
            type_ids: &type_ids,
            boundary: "hook_embed",
            input: &x,
            baseline: &b,
            target: &target,
        };
        let ig = match spec.adaptive {
            Some((scheme, tol, max_points)) => integrated_gradients_adaptive(
                &p,
                scheme,
                tol,
                max_points,
                spec.batch,
                &mut *progress,
            )?,
            None => {
                integrated_gradients(&p, spec.alphas, spec.weights, spec.batch, &mut *progress)?
            }
        };
        steps.push(GenerationStep { token, ig });
    }
    Ok(Generation {
        prompt_len: spec.prompt.len(),
        generated: spec.generated.to_vec(),
        steps,
    })
}
