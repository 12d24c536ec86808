//! The methods of the front door: each resolves the input, sizes the batch, runs one function of
//! `attribution` and returns its report.

use super::report::*;
use super::{Explainer, IgOptions, Input, PathOptions, Prepared};
use crate::attribution::layer::{boundaries, boundary_shape, flat_index, layer_boundaries};
use crate::attribution::lig::{explain_lig, word_groups, Lig, LigOptions, LigReport};
use crate::attribution::probe::Subject;
use crate::attribution::{
    ablation, attention_maps, gradient_attribution, integrated_gradients,
    integrated_gradients_adaptive, internal_influence, layer_conductance,
    layer_integrated_gradients, neuron_conductance, noise_sensitivity_on, Baseline, GradMethod,
    NoiseKind, PathProblem, Target,
};
use crate::integrate::Rule;
use crate::{Error, Result, Tensor};

/// Options of [`Explainer::layer_ig`].
#[derive(Debug, Clone, PartialEq)]
pub struct LayerIgOptions {
    pub path: PathOptions,
    /// The boundary interpolated, e.g. `embed.hook_out` or `blocks.3.hook_resid_post`.
    pub boundary: String,
}

impl Default for LayerIgOptions {
    fn default() -> LayerIgOptions {
        LayerIgOptions {
            path: PathOptions::default(),
            boundary: "embed.hook_out".into(),
        }
    }
}

/// Options of [`Explainer::conductance`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConductanceOptions {
    pub path: PathOptions,
    /// Layers (default: all, in one sweep of path points).
    pub layers: Option<Vec<usize>>,
    /// The site of each layer: `blocks.{l}.<at>`.
    pub at: String,
    /// Where the path runs from baseline to input.
    pub path_boundary: String,
    /// A token (as printed, or its index) whose normalised curve across layers is reported.
    pub token: Option<String>,
    /// Internal influence instead of conductance.
    pub influence: bool,
}

impl Default for ConductanceOptions {
    fn default() -> ConductanceOptions {
        ConductanceOptions {
            path: PathOptions::default(),
            layers: None,
            at: "hook_resid_post".into(),
            path_boundary: "hook_embed".into(),
            token: None,
            influence: false,
        }
    }
}

/// Options of [`Explainer::neuron`].
#[derive(Debug, Clone, PartialEq)]
pub struct NeuronOptions {
    pub path: PathOptions,
    /// The boundary holding the neuron.
    pub boundary: String,
    /// Its index within one row of the boundary, e.g. `[token, dim]`.
    pub neuron: Vec<usize>,
    /// Where the path runs.
    pub path_boundary: String,
}

/// A noise tunnel over saliency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Smoothing {
    pub kind: NoiseKind,
    pub samples: usize,
    pub stdev: f64,
    pub seed: u64,
}

/// Options of [`Explainer::saliency`].
#[derive(Debug, Clone, PartialEq)]
pub struct SaliencyOptions {
    /// Not used by the method; named in the report's `baseline` fields.
    pub baseline: Baseline,
    /// Input × gradient instead of |gradient|.
    pub times_input: bool,
    pub smooth: Option<Smoothing>,
}

impl Default for SaliencyOptions {
    fn default() -> SaliencyOptions {
        SaliencyOptions {
            baseline: Baseline::Pad,
            times_input: false,
            smooth: None,
        }
    }
}

/// Options of [`Explainer::attention`].
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionOptions {
    /// Not used by the method; named in the report's `baseline` fields.
    pub baseline: Baseline,
    /// Heads masked (HF `head_mask` semantics), as (layer, head).
    pub mask_heads: Vec<(usize, usize)>,
}

impl Default for AttentionOptions {
    fn default() -> AttentionOptions {
        AttentionOptions {
            baseline: Baseline::Pad,
            mask_heads: Vec::new(),
        }
    }
}

/// Options of [`Explainer::ablate`].
#[derive(Debug, Clone, PartialEq)]
pub struct AblateOptions {
    pub baseline: Baseline,
    /// Replace by zero instead of the baseline token's embedding.
    pub zero: bool,
}

impl Default for AblateOptions {
    fn default() -> AblateOptions {
        AblateOptions {
            baseline: Baseline::Pad,
            zero: false,
        }
    }
}

/// Options of [`Explainer::sensitivity`].
#[derive(Debug, Clone, PartialEq)]
pub struct SensitivityOptions {
    /// Not used by the method; named in the report's `baseline` fields.
    pub baseline: Baseline,
    pub sigma: f64,
    pub draws: usize,
    pub seed: u64,
}

impl Default for SensitivityOptions {
    fn default() -> SensitivityOptions {
        SensitivityOptions {
            baseline: Baseline::Pad,
            sigma: 0.1,
            draws: 20,
            seed: 0,
        }
    }
}

/// The per-layer entries of a layer result.
fn entries(r: &crate::attribution::LayerResult) -> Vec<LayerEntry> {
    r.layers
        .iter()
        .map(|l| LayerEntry {
            boundary: l.boundary.clone(),
            shape: l.shape.clone(),
            attributions: l.per_token.clone(),
            total: l.total,
            delta: l.delta,
            relative_delta: l.relative_delta,
        })
        .collect()
}

/// Index of `token` (as printed, or a number) in the input.
fn token_index(tokens: &[String], token: &str) -> Result<usize> {
    if let Some(i) = tokens.iter().position(|t| t == token) {
        return Ok(i);
    }
    match token.parse::<usize>() {
        Ok(i) if i < tokens.len() => Ok(i),
        Ok(i) => Err(Error::OutOfRange {
            what: "token",
            index: i,
            len: tokens.len(),
        }),
        Err(_) => Err(Error::Unknown {
            what: "token",
            value: token.to_string(),
            valid: tokens.to_vec(),
        }),
    }
}

impl Explainer {
    pub(crate) fn progress_fn(&self) -> impl FnMut(usize, usize) + '_ {
        move |d, t| self.report_progress(d, t)
    }

    /// The path ends at `path_boundary` (x and x′ are that boundary's values on the input and on
    /// the baseline input).
    fn ends_at(&self, p: &Prepared, target: &Target, at: &str) -> Result<(Tensor, Tensor)> {
        if at == "hook_embed" {
            return Ok((p.x.clone(), p.x_baseline.clone()));
        }
        let q = self.problem(p, target);
        let all = boundaries(q.model, q.ids, q.type_ids)?;
        boundary_shape(&all, at)?;
        let e = q.boundary_at_endpoints(at)?;
        Ok((e.input, e.baseline))
    }

    /// Token Integrated Gradients on the word embeddings (`hook_embed`).
    pub fn ig(&self, input: &Input, o: &IgOptions) -> Result<IgReport> {
        let q = o.path.quadrature;
        q.check()?;
        let scheme = o.adaptive.map(|a| a.scheme_for(&q)).transpose()?;
        let p = self.prepare(input, &o.path.baseline, true)?;
        let target = p.target()?;
        let problem = self.problem(&p, target);
        let batch = self.batch_size(p.encoded.len(), q.steps)?;
        let mut prog = self.progress_fn();
        let r = match (o.adaptive, scheme) {
            (Some(a), Some(scheme)) => integrated_gradients_adaptive(
                &problem,
                scheme,
                a.tolerance,
                a.max_points,
                batch,
                &mut prog,
            )?,
            _ => {
                let (al, w) = q.nodes(q.steps)?;
                integrated_gradients(&problem, &al, &w, batch, &mut prog)?
            }
        };
        let warning = r.roughness_warning();
        let refinement = r.refinement.as_ref().map(|rf| Refinement {
            tolerance: o.adaptive.map(|a| a.tolerance).unwrap_or(f64::NAN),
            converged: rf.converged,
            trajectory: rf
                .trajectory
                .iter()
                .enumerate()
                .map(|(k, t)| RefinementStep {
                    n: t.n,
                    points_used: t.points_used,
                    relative_delta: t.delta,
                    attribution_change: r.attribution_changes.get(k).copied().flatten(),
                })
                .collect(),
            attribution_error: r.attribution_error,
        });
        Ok(IgReport {
            header: self.header("integrated_gradients", input, &p),
            quadrature: q.rule.name(),
            steps: r.steps,
            points_used: r.points_used,
            batch,
            boundary: "hook_embed",
            attributions: r.per_token.clone(),
            f_input: r.f_input,
            f_baseline: r.f_baseline,
            delta: r.delta,
            relative_delta: r.relative_delta,
            path: PathInfo::of(&r),
            rough: warning.is_some(),
            warnings: warning.into_iter().collect(),
            refinement,
            words: None,
            repeat_attribution_s: None,
            result: r,
        })
    }

    /// Layer Integrated Gradients at one boundary (Captum `LayerIntegratedGradients`).
    pub fn layer_ig(&self, input: &Input, o: &LayerIgOptions) -> Result<LayerIgReport> {
        let q = o.path.quadrature;
        let (al, w) = q.nodes(q.steps)?;
        let p = self.prepare(input, &o.path.baseline, true)?;
        let target = p.target()?;
        let problem = self.problem(&p, target);
        let all = boundaries(problem.model, problem.ids, problem.type_ids)?;
        boundary_shape(&all, &o.boundary)?;
        let batch = self.batch_size(p.encoded.len(), q.steps)?;
        let r = layer_integrated_gradients(
            &problem,
            &o.boundary,
            &al,
            &w,
            batch,
            &mut self.progress_fn(),
        )?;
        let l = &r.layers[0];
        Ok(LayerIgReport {
            header: self.header("layer_integrated_gradients", input, &p),
            boundary: l.boundary.clone(),
            shape: l.shape.clone(),
            quadrature: q.rule.name(),
            steps: q.steps,
            batch,
            attributions: l.per_token.clone(),
            total: l.total,
            f_input: r.f_input,
            f_baseline: r.f_baseline,
            delta: l.delta,
            relative_delta: l.relative_delta,
            path: SimplePath {
                alphas: r.path_alphas.clone(),
                f: r.path_f.clone(),
            },
            words: None,
        })
    }

    /// Layer conductance (or internal influence) of every selected layer from one sweep of path
    /// points (conductance: `steps` + 1 points, as Captum).
    pub fn conductance(&self, input: &Input, o: &ConductanceOptions) -> Result<ConductanceReport> {
        let q = o.path.quadrature;
        let n_points = if o.influence { q.steps } else { q.steps + 1 };
        let (al, w) = q.nodes(n_points)?;
        let p = self.prepare(input, &o.path.baseline, true)?;
        let token = o
            .token
            .as_deref()
            .map(|t| token_index(&p.encoded.tokens, t))
            .transpose()?;
        let target = p.target()?;
        let p0 = self.problem(&p, target);
        let all = boundaries(p0.model, p0.ids, p0.type_ids)?;
        let names = layer_boundaries(&all, &o.at, o.layers.as_deref())?;
        let (x, b) = self.ends_at(&p, target, &o.path_boundary)?;
        let problem = PathProblem {
            boundary: &o.path_boundary,
            input: &x,
            baseline: &b,
            ..self.problem(&p, target)
        };
        let batch = self.batch_size(p.encoded.len(), n_points)?;
        let r = if o.influence {
            internal_influence(&problem, &names, &al, &w, batch, &mut self.progress_fn())?
        } else {
            layer_conductance(&problem, &names, &al, batch, &mut self.progress_fn())?
        };
        let method = if o.influence {
            "internal_influence"
        } else {
            "layer_conductance"
        };
        let layer_indices: Vec<usize> = names
            .iter()
            .filter_map(|n| n.split('.').nth(1)?.parse().ok())
            .collect();
        let token = token.map(|ti| {
            let (values, normalised) = r
                .layers
                .iter()
                .map(|l| {
                    let n = l.per_token.iter().map(|v| v * v).sum::<f64>().sqrt();
                    let v = l.per_token.get(ti).copied().unwrap_or(0.0);
                    (v, if n > 0.0 { v / n } else { 0.0 })
                })
                .unzip();
            TokenCurve {
                index: ti,
                token: p.encoded.tokens[ti].clone(),
                values,
                normalised,
            }
        });
        let worst = r
            .layers
            .iter()
            .filter_map(|l| l.relative_delta)
            .fold(0.0f64, f64::max);
        let ends_hint = if q.rule == Rule::GaussLegendre && !o.influence {
            ", or use --method captum-trapezoid, whose nodes include both path ends"
        } else {
            ""
        };
        let warning = (worst > 0.01).then(|| {
            format!(
                "the largest per-layer relative completeness delta is {worst:.3} (above 1 %): conductance \
                 uses the gradient at the left point of each step (first order, as Captum), so its delta \
                 falls only like 1/steps; raise --steps (e.g. 200){ends_hint}. A boundary that the residual \
                 stream bypasses (attention patterns, attn/mlp outputs) carries only part of F(x) − F(x′), \
                 and its delta stays large at any number of steps"
            )
        });
        Ok(ConductanceReport {
            header: self.header(method, input, &p),
            warnings: warning.into_iter().collect(),
            at: o.at.clone(),
            path_boundary: o.path_boundary.clone(),
            quadrature: q.rule.name(),
            steps: q.steps,
            points: r.points_used,
            batch,
            layer_indices,
            layers: entries(&r),
            f_input: r.f_input,
            f_baseline: r.f_baseline,
            token,
        })
    }

    /// Neuron conductance of one neuron, attributed to the path boundary.
    pub fn neuron(&self, input: &Input, o: &NeuronOptions) -> Result<NeuronReport> {
        let q = o.path.quadrature;
        let (al, w) = q.nodes(q.steps)?;
        let p = self.prepare(input, &o.path.baseline, true)?;
        let target = p.target()?;
        let p0 = self.problem(&p, target);
        let all = boundaries(p0.model, p0.ids, p0.type_ids)?;
        let shape = boundary_shape(&all, &o.boundary)?;
        flat_index(&shape, &o.neuron, &o.boundary)?;
        let (x, b) = self.ends_at(&p, target, &o.path_boundary)?;
        let problem = PathProblem {
            boundary: &o.path_boundary,
            input: &x,
            baseline: &b,
            ..self.problem(&p, target)
        };
        let batch = self.batch_size(p.encoded.len(), q.steps)?;
        let r = neuron_conductance(
            &problem,
            &o.boundary,
            &o.neuron,
            &al,
            &w,
            batch,
            &mut self.progress_fn(),
        )?;
        let l = &r.layers[0];
        Ok(NeuronReport {
            header: self.header("neuron_conductance", input, &p),
            boundary: o.boundary.clone(),
            neuron: o.neuron.clone(),
            path_boundary: o.path_boundary.clone(),
            quadrature: q.rule.name(),
            steps: q.steps,
            attributions: l.per_token.clone(),
            total: l.total,
            f_input: r.f_input,
            f_baseline: r.f_baseline,
            words: None,
        })
    }

    /// Saliency |∂F/∂x| or input × gradient at `hook_embed`, optionally through a noise
    /// tunnel.
    pub fn saliency(&self, input: &Input, o: &SaliencyOptions) -> Result<SaliencyReport> {
        if let Some(s) = &o.smooth {
            if s.samples == 0 {
                return Err(Error::BadValue {
                    name: "samples",
                    detail: "must be at least 1".into(),
                });
            }
        }
        let p = self.prepare(input, &o.baseline, true)?;
        let target = p.target()?;
        let problem = self.problem(&p, target);
        let method = if o.times_input {
            GradMethod::InputXGradient
        } else {
            GradMethod::Saliency
        };
        let (f, per) = match &o.smooth {
            None => gradient_attribution(&problem, method)?,
            Some(s) => {
                // The noise is drawn row by row as the batches are filled: memory does not
                // grow with the number of samples.
                let batch = self.batch_size(p.encoded.len(), s.samples)?;
                let v = crate::attribution::gradients::noise_tunnel_seeded(
                    &problem,
                    method,
                    s.kind,
                    s.samples,
                    s.stdev,
                    s.seed,
                    batch,
                    &mut self.progress_fn(),
                )?;
                (problem.endpoints()?.0, v)
            }
        };
        let c = p.x.shape()[1];
        let per_token: Vec<f64> = per.chunks(c).map(|r| r.iter().sum()).collect();
        Ok(SaliencyReport {
            header: self.header(method.name(), input, &p),
            boundary: "hook_embed",
            noise_tunnel: o.smooth.map(|s| NoiseTunnelInfo {
                kind: s.kind.name(),
                samples: s.samples,
                stdev: s.stdev,
                seed: s.seed,
            }),
            attributions: per_token,
            f_input: f,
            words: None,
        })
    }

    /// The attention probabilities of every layer and head (no target).
    pub fn attention(&self, input: &Input, o: &AttentionOptions) -> Result<AttentionReport> {
        let (n_layers, n_heads) = (self.model().n_layers(), self.model().n_heads());
        let mut per_layer: Vec<(usize, Vec<f64>)> = Vec::new();
        for &(l, h) in &o.mask_heads {
            check_head(l, h, n_layers, n_heads)?;
            match per_layer.iter_mut().find(|(x, _)| *x == l) {
                Some((_, f)) => f[h] = 0.0,
                None => {
                    let mut f = vec![1.0; n_heads];
                    f[h] = 0.0;
                    per_layer.push((l, f));
                }
            }
        }
        let p = self.prepare(input, &o.baseline, false)?;
        let m = attention_maps(
            self.model(),
            &p.encoded.ids,
            &p.encoded.type_ids,
            &per_layer,
        )?;
        let t = m.pos;
        let attention = (0..m.n_layers)
            .map(|l| {
                (0..m.n_heads)
                    .map(|h| m.head(l, h).chunks(t).map(|r| r.to_vec()).collect())
                    .collect()
            })
            .collect();
        Ok(AttentionReport {
            header: self.header("attention", input, &p),
            n_layers: m.n_layers,
            n_heads: m.n_heads,
            masked_heads: o.mask_heads.iter().map(|&(l, h)| [l, h]).collect(),
            attention,
        })
    }

    /// Set-to-set Layer-wise Integrated Gradients ([`crate::attribution::lig`], docs/LIG.md)
    /// on the input's tokens: per layer, the token-to-token maps `o.granularity` asks for, with
    /// completeness per column. LIG explains the flow between token vectors, not a prediction:
    /// the input's target is not used. With `words`, the word-level maps and diagnostic are
    /// added (the input's sub-words summed on both axes; `o.words` is replaced by its word
    /// groups). The report names the model by the path it was loaded from and its
    /// `config.json` `model_type` (read once at load; else the model's description).
    pub fn lig(&self, input: &Input, o: &LigOptions, words: bool) -> Result<LigReport> {
        let (text, enc) = self.encode_input(input)?;
        let groups;
        let o = if words {
            groups = LigOptions {
                words: Some(word_groups(&enc.words)),
                ..o.clone()
            };
            &groups
        } else {
            o
        };
        let model_type = self
            .model_type
            .clone()
            .unwrap_or_else(|| self.model.describe());
        let lig = Lig::new(Subject::new(self.model(), &enc.ids, &enc.type_ids))?;
        explain_lig(
            &lig,
            &text,
            &enc.tokens,
            &self.path.display().to_string(),
            &model_type,
            &self.options.dtype.to_string(),
            o,
        )
    }

    /// Embedding ablation: F(input) − F(that token's word embedding replaced), per token.
    pub fn ablate(&self, input: &Input, o: &AblateOptions) -> Result<AblationReport> {
        let p = self.prepare(input, &o.baseline, true)?;
        let target = p.target()?;
        let problem = self.problem(&p, target);
        // an answer's positions are never ablated (their rows stay the input's)
        let zero = p.fix_rows(&Tensor::zeros(p.x.shape(), p.x.dtype()))?;
        let rep = if o.zero { &zero } else { &p.x_baseline };
        let batch = self.batch_size(p.encoded.len(), p.encoded.len() + 1)?;
        let r = ablation(&problem, rep, batch, &mut self.progress_fn())?;
        Ok(AblationReport {
            header: self.header("embedding_ablation", input, &p),
            replace: if o.zero { "zero" } else { "baseline" },
            attributions: r.per_token,
            f_input: r.f_input,
            f_ablated: r.f_ablated,
            words: None,
        })
    }

    /// Noise sensitivity: the standard deviation of F under N(0, σ²) on one token's word
    /// embedding at a time.
    pub fn sensitivity(&self, input: &Input, o: &SensitivityOptions) -> Result<SensitivityReport> {
        if o.draws == 0 {
            return Err(Error::BadValue {
                name: "draws",
                detail: "must be at least 1".into(),
            });
        }
        if !(o.sigma.is_finite() && o.sigma >= 0.0) {
            return Err(Error::BadValue {
                name: "sigma",
                detail: format!("must be a finite number ≥ 0, got {}", o.sigma),
            });
        }
        let p = self.prepare(input, &o.baseline, true)?;
        let target = p.target()?;
        let problem = self.problem(&p, target);
        let batch = self.batch_size(p.encoded.len(), p.encoded.len() * o.draws + 1)?;
        // an answer's positions are part of the target: they are never perturbed
        let perturbed = 0..p.fixed_from.unwrap_or(p.encoded.len());
        let r = noise_sensitivity_on(
            &problem,
            perturbed,
            o.sigma,
            o.draws,
            o.seed,
            batch,
            &mut self.progress_fn(),
        )?;
        Ok(SensitivityReport {
            header: self.header("noise_sensitivity", input, &p),
            sigma: o.sigma,
            draws: o.draws,
            seed: o.seed,
            std: r.std,
            mean: r.mean,
            f_input: r.f_input,
            words: None,
        })
    }
}

/// Checks a (layer, head) pair against the model's `n_layers` and `n_heads`.
pub fn check_head(l: usize, h: usize, n_layers: usize, n_heads: usize) -> Result<()> {
    if l >= n_layers {
        return Err(Error::OutOfRange {
            what: "layer",
            index: l,
            len: n_layers,
        });
    }
    if h >= n_heads {
        return Err(Error::OutOfRange {
            what: "head",
            index: h,
            len: n_heads,
        });
    }
    Ok(())
}
