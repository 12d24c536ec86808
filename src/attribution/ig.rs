//! Integrated Gradients along a straight path at a boundary (token IG: `hook_embed`).
//!
//! `Attr = (x − x′) ⊙ Σ_k w_k ∇F(x′ + α_k(x − x′))`. The path points of one chunk travel as the
//! rows of one batch; one backward with a seed of 1 on each row's F gives every row's gradient.
//! Sums are accumulated in f64 whatever the compute dtype. The completeness delta is measured
//! against F at the real path ends (x, and the input with the baseline at the boundary).

use super::probe::{self, Capture, Chunking, Objective, Path, Request, Rows, Subject};
use crate::integrate::{l2, refine, refine_panels, relative_to, Refined, Rule, Stop};
use crate::models::Model;
use crate::{Error, Result, Tensor};

use super::target::Target;

/// One straight path at a boundary, and the target explained along it.
pub struct PathProblem<'a> {
    pub model: &'a dyn Model,
    pub ids: &'a [usize],
    pub type_ids: &'a [usize],
    /// The boundary the path runs through (token IG: `hook_embed`).
    pub boundary: &'a str,
    /// Value at the boundary for one row (e.g. `[pos, d_model]`): the path end x.
    pub input: &'a Tensor,
    /// The path start x′, same shape.
    pub baseline: &'a Tensor,
    pub target: &'a Target,
}

/// Progress callback: (points done, points planned).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

impl PathProblem<'_> {
    /// The model and tokens the probe runs on.
    pub fn subject(&self) -> Subject<'_> {
        Subject::new(self.model, self.ids, self.type_ids)
    }

    /// The path as a probe [`Path`] (boundary checked against the model, no forward).
    pub fn path(&self) -> Result<Path> {
        let at = self.subject().boundary(self.boundary)?;
        let path = Path::straight(at, self.input.clone(), self.baseline.clone());
        path.check(&self.subject())?;
        Ok(path)
    }

    pub(crate) fn check(&self) -> Result<()> {
        self.path().map(|_| ())
    }

    /// F at path points α (α = 1: the input x, α = 0: the baseline x′, exactly), one forward
    /// without gradients.
    pub fn f_along(&self, alphas: &[f64]) -> Result<Vec<f64>> {
        let path = self.path()?;
        probe::values(
            &self.subject(),
            Rows::Path {
                path: &path,
                alphas,
            },
            Objective::Target(self.target),
            Chunking::default(),
        )
    }

    /// (F(x), F(x′)).
    pub fn endpoints(&self) -> Result<(f64, f64)> {
        let f = self.f_along(&[1.0, 0.0])?;
        Ok((f[0], f[1]))
    }

    /// (F(x), F(x′), F at α = [`START_PROBE`]) in one batch: the third value shows a path that
    /// jumps right after its start (a zero vector through a norm layer), which quadrature rules
    /// sample with few or no points.
    pub fn endpoints_and_start(&self) -> Result<(f64, f64, f64)> {
        let f = self.f_along(&[1.0, 0.0, START_PROBE])?;
        Ok((f[0], f[1], f[2]))
    }

    /// x − x′ in f64 on the model's device: what the boundary gradient is dotted with to give
    /// the per-token IG integrand.
    pub fn direction(&self) -> Result<Tensor> {
        let x = self.input.to_vec_f64()?;
        let b = self.baseline.to_vec_f64()?;
        let d: Vec<f64> = x.iter().zip(&b).map(|(x, b)| x - b).collect();
        Tensor::from_f64_on(
            &d,
            self.input.shape(),
            crate::DType::F64,
            self.input.device(),
        )
    }

    /// Tokens of the path boundary (its rows when the last axis is the feature axis).
    pub(crate) fn n_tokens(&self) -> usize {
        let c = (*self.input.shape().last().unwrap_or(&1)).max(1);
        self.input.numel() / c
    }

    /// F and the per-token IG integrand g_i(α) = Σ_c (x − x′)_{i,c} ∂F/∂x_{i,c} at each α of
    /// `alphas`, `batch` rows per forward (reduced on the device). `diff` is
    /// [`PathProblem::direction`]. What adaptive IG and the quadrature lab evaluate.
    pub(crate) fn token_integrand(
        &self,
        path: &Path,
        diff: &Tensor,
        alphas: &[f64],
        batch: usize,
        progress: Progress,
    ) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
        let n_tok = self.n_tokens().max(1);
        let mut toks: Vec<Vec<f64>> = Vec::with_capacity(alphas.len());
        let f = probe::run(
            &self.subject(),
            &self.gradient_request(path, alphas, batch),
            progress,
            &mut |ch| {
                let t = probe::row_dot_last(ch.grad(0)?, diff)?.to_vec_f64()?;
                toks.extend(t.chunks(n_tok).map(<[f64]>::to_vec));
                Ok(())
            },
        )?;
        Ok((f, toks))
    }

    /// The probe request of the path points `alphas`: ∂F at the path boundary, `batch` rows per
    /// forward.
    pub(crate) fn gradient_request<'r>(
        &self,
        path: &'r Path,
        alphas: &'r [f64],
        batch: usize,
    ) -> Request<'r>
    where
        Self: 'r,
    {
        Request::new(Rows::Path { path, alphas }, Objective::Target(self.target))
            .capture(Capture::grad(path.segments[0].at))
            .chunking(Chunking::Rows(batch))
    }
}

/// α at which [`PathProblem::endpoints_and_start`] probes the start of the path.
pub const START_PROBE: f64 = 1e-3;

/// The result of one IG run.
#[derive(Debug, Clone)]
pub struct IgResult {
    /// Per-coordinate attributions (boundary shape, row-major, f64); `None` after adaptive
    /// refinement, which keeps per-token sums only.
    pub per_coordinate: Option<Vec<f64>>,
    /// Sum of the per-coordinate attributions over the last axis: one value per token.
    pub per_token: Vec<f64>,
    pub f_input: f64,
    pub f_baseline: f64,
    /// F at α = [`START_PROBE`], just after the baseline.
    pub f_start: f64,
    /// Σ attributions − (F(x) − F(x′)).
    pub delta: f64,
    /// |delta| / |F(x) − F(x′)|.
    pub relative_delta: f64,
    /// Path diagnostics: α of every evaluated point (ascending) and F there.
    pub path_alphas: Vec<f64>,
    pub path_f: Vec<f64>,
    /// Model passes spent on path points.
    pub points_used: usize,
    /// Number of points of the final rule.
    pub steps: usize,
    /// Adaptive refinement trace (empty without `--tolerance`).
    pub refinement: Option<Refined>,
    /// Adaptive refinement by a rule: per attempt, ‖A_k − A_{k−1}‖₂ / ‖A_k‖₂ of the per-token
    /// attributions against the attempt before (`None` for the first attempt, and for panel
    /// refinement). The last value estimates the error of the second-to-last attempt's
    /// attributions, which the completeness sum alone cannot show when contributions cancel.
    pub attribution_changes: Vec<Option<f64>>,
    /// Panel refinement (`--adaptive panels`): an error estimate for the per-token attributions
    /// from the rule pair every panel already has, ‖Σ_p |A_p − A_p^coarse|‖₂ / ‖A‖₂ over the
    /// final panels (K15 against its embedded G7, or Patterson's 31 against its embedded K15; per
    /// token, the absolute differences of the two rules' panel sums, added over the panels; then
    /// the L2 norm over tokens). It is the error of the coarser rule, so it is an upper-side
    /// estimate for the result (on MiniLM 20–40× the token attributions' actual error,
    /// docs/QUADRATURE.md). `None` for other schemes.
    pub attribution_error: Option<f64>,
}

impl IgResult {
    /// |F(α = START_PROBE) − F(x′)| / |F(x) − F(x′)|: how much of the change happens right at the
    /// start of the path.
    pub fn start_jump(&self) -> f64 {
        let df = (self.f_input - self.f_baseline).abs();
        (self.f_start - self.f_baseline).abs() / df.max(1e-300)
    }

    /// The last of [`IgResult::attribution_changes`], when there is one.
    pub fn attribution_change(&self) -> Option<f64> {
        self.attribution_changes.last().copied().flatten()
    }

    /// Total variation of F along the evaluated path (endpoints included).
    pub fn path_variation(&self) -> f64 {
        let mut pts: Vec<(f64, f64)> = self
            .path_alphas
            .iter()
            .copied()
            .zip(self.path_f.iter().copied())
            .collect();
        pts.push((0.0, self.f_baseline));
        pts.push((1.0, self.f_input));
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        pts.windows(2).map(|w| (w[1].1 - w[0].1).abs()).sum()
    }

    /// A warning when the attributions cannot be trusted: the quadrature has not converged
    /// (relative delta above 1 %), or F swings along the path far more than it changes end to end
    /// (total variation above twice |F(x) − F(x′)|), so attributions are differences of large,
    /// cancelling contributions.
    pub fn roughness_warning(&self) -> Option<String> {
        let df = (self.f_input - self.f_baseline).abs();
        let tv = self.path_variation();
        let unconverged = self.relative_delta > 0.01;
        let swinging = tv > 2.0 * df.max(1e-12);
        let jump = self.start_jump();
        let jumping = jump > 0.25;
        let moving = self.attribution_change().filter(|&c| c > 0.05);
        let spread = self.attribution_error.filter(|&e| e > 0.05);
        if !unconverged && !swinging && !jumping && moving.is_none() && spread.is_none() {
            return None;
        }
        let mut why = Vec::new();
        if let Some(c) = moving {
            why.push(format!(
                "the token attributions still moved by {:.1}% (relative L2) between the last two refinements while the completeness delta is {:.2e}: the sum converged before the tokens did",
                100.0 * c,
                self.relative_delta
            ));
        }
        if let Some(e) = spread {
            why.push(format!(
                "on the final panels the token attributions of the coarser rule embedded in each panel (Gauss 7 in Kronrod 15, Kronrod 15 in Patterson 31) differ from the panels' own by {:.1}% (relative L2) while the completeness delta is {:.2e}: the tokens may not be resolved although the sum is",
                100.0 * e,
                self.relative_delta
            ));
        }
        if jumping {
            why.push(format!(
                "F moves by {:.0}% of F(x) − F(x′) within α ≤ {START_PROBE} (the baseline end): the path is badly conditioned there, as when a zero baseline enters a LayerNorm/RMSNorm, and quadrature nodes barely sample it (use a token baseline such as pad/eos/unk instead of zero)",
                100.0 * jump
            ));
        }
        if unconverged {
            why.push(format!(
                "the relative completeness delta is {:.3} (|Σattr − ΔF| / |ΔF|, above 1 %)",
                self.relative_delta
            ));
        }
        if swinging {
            why.push(format!("F varies by {tv:.4} along the path (total variation) but only by {df:.4} between its ends"));
        }
        let advice = if unconverged {
            "raise --steps or use --tolerance 1e-3 (adaptive refinement; `--adaptive panels` resolves paths where F swings); if the delta stays large, the path crosses a region where F jumps: try another --baseline"
        } else {
            "the quadrature is resolved, but the attributions are small differences of large contributions of both signs and depend strongly on the baseline: compare --baseline pad/mask/unk/zero before reading them"
        };
        Some(format!("the path is rough: {}. These attributions cannot be trusted at {} points as they stand; {advice}.", why.join("; "), self.points_used))
    }
}

/// Σ_k w_k g(α_k) over per-token integrand values looked up by α (`None`: not evaluated, left
/// out).
pub(crate) fn weighted_tokens<'v>(
    n_tok: usize,
    alphas: &[f64],
    weights: &[f64],
    g: impl Fn(f64) -> Option<&'v [f64]>,
) -> Vec<f64> {
    let mut out = vec![0.0; n_tok];
    for (&a, w) in alphas.iter().zip(weights) {
        if let Some(t) = g(a) {
            out.iter_mut().zip(t).for_each(|(o, t)| *o += w * t);
        }
    }
    out
}

/// ‖Σ_p |A_p − A_p^coarse|‖₂ / ‖A‖₂ over the final panels of `rf` ([`IgResult::attribution_error`]:
/// K15 against its embedded G7, or Patterson's 31 against its embedded K15); `g` looks up the
/// per-token integrand at a node.
pub(crate) fn panel_attribution_error<'v>(
    n_tok: usize,
    rf: &Refined,
    attributions: &[f64],
    g: impl Fn(f64) -> Option<&'v [f64]>,
) -> Result<f64> {
    let mut spread = vec![0.0; n_tok];
    for (&(a, b), &nodes) in rf.panels.iter().zip(&rf.panel_nodes) {
        let (x, fine, coarse) = crate::integrate::panel_rule_pair(a, b, nodes)?;
        let mut d = vec![0.0; n_tok];
        for k in 0..x.len() {
            let t = g(x[k])
                .ok_or_else(|| Error::Internal("panel node without a stashed gradient".into()))?;
            let w = fine[k] - coarse[k];
            d.iter_mut().zip(t).for_each(|(d, t)| *d += w * t);
        }
        spread.iter_mut().zip(&d).for_each(|(s, d)| *s += d.abs());
    }
    Ok(relative_to(l2(&spread), l2(attributions)))
}

/// ‖a − b‖₂ / ‖b‖₂ (absolute when b = 0).
pub(crate) fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    relative_to(l2(&d), l2(b))
}

fn sorted_path(mut p: Vec<(f64, f64)>) -> (Vec<f64>, Vec<f64>) {
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    p.into_iter().unzip()
}

#[allow(clippy::too_many_arguments)]
fn finish(
    per_coordinate: Option<Vec<f64>>,
    per_token: Vec<f64>,
    f_input: f64,
    f_baseline: f64,
    f_start: f64,
    path: Vec<(f64, f64)>,
    steps: usize,
    refinement: Option<Refined>,
) -> IgResult {
    let total: f64 = per_token.iter().sum();
    let df = f_input - f_baseline;
    let delta = total - df;
    let relative_delta = if df != 0.0 {
        delta.abs() / df.abs()
    } else {
        delta.abs()
    };
    let points_used = path.len();
    let (path_alphas, path_f) = sorted_path(path);
    IgResult {
        per_coordinate,
        per_token,
        f_input,
        f_baseline,
        f_start,
        delta,
        relative_delta,
        path_alphas,
        path_f,
        points_used,
        steps,
        refinement,
        attribution_changes: Vec::new(),
        attribution_error: None,
    }
}

/// IG with given nodes and weights on [0, 1].
pub fn integrated_gradients(
    p: &PathProblem,
    alphas: &[f64],
    weights: &[f64],
    batch: usize,
    progress: Progress,
) -> Result<IgResult> {
    if alphas.len() != weights.len() || alphas.is_empty() {
        return Err(Error::Invalid {
            op: "integrated_gradients",
            detail: format!("{} alphas and {} weights", alphas.len(), weights.len()),
        });
    }
    let (f_input, f_baseline) = p.endpoints()?;
    ig_with_endpoints(p, alphas, weights, batch, progress, f_input, f_baseline)
}

/// IG when F(x) and F(x′) are already known (layer IG reads them off the forward that gives the
/// layer's path ends). The start probe (α = [`START_PROBE`]) rides along as one more row of the
/// first chunk, with weight 0: no forward of its own.
pub(crate) fn ig_with_endpoints(
    p: &PathProblem,
    alphas: &[f64],
    weights: &[f64],
    batch: usize,
    progress: Progress,
    f_input: f64,
    f_baseline: f64,
) -> Result<IgResult> {
    let path = p.path()?;
    let rows: Vec<f64> = std::iter::once(START_PROBE)
        .chain(alphas.iter().copied())
        .collect();
    let w: Vec<f64> = std::iter::once(0.0)
        .chain(weights.iter().copied())
        .collect();
    // Σ_k w_k ∇F(x_k), accumulated on the model's device chunk by chunk.
    let mut acc: Option<Tensor> = None;
    // One more row per chunk when the extra row would otherwise open a chunk of its own.
    let per_chunk = if batch > 0 && alphas.len().is_multiple_of(batch) {
        batch + 1
    } else {
        batch
    };
    let mut f = probe::run(
        &p.subject(),
        &p.gradient_request(&path, &rows, per_chunk),
        &mut |d, t| progress(d.saturating_sub(1), t - 1),
        &mut |c| probe::add_weighted(&mut acc, c.grad(0)?, &w[c.rows.clone()]),
    )?;
    let f_start = f.remove(0);
    let acc = probe::finish_acc(acc)?;
    let x = p.input.to_vec_f64()?;
    let b = p.baseline.to_vec_f64()?;
    let per: Vec<f64> = acc
        .iter()
        .zip(x.iter().zip(&b))
        .map(|(g, (x, b))| g * (x - b))
        .collect();
    let c = *p.input.shape().last().unwrap_or(&1);
    let per_token = per.chunks(c.max(1)).map(|r| r.iter().sum()).collect();
    let path_f = alphas.iter().copied().zip(f).collect();
    Ok(finish(
        Some(per),
        per_token,
        f_input,
        f_baseline,
        f_start,
        path_f,
        alphas.len(),
        None,
    ))
}

/// How `--tolerance` refines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adaptive {
    /// Gauss–Kronrod G7/K15 panels of [0, 1], extended to Patterson's 31 points and then bisected
    /// where the integrand bends
    /// ([`refine_panels`]), starting from this many panels.
    Panels(usize),
    /// The rule at `n`, then at `Rule::refined_n` points, ... (nested rules reuse old points;
    /// Gauss–Legendre doubles and does not).
    Rule(Rule, usize),
}

/// IG refined until the relative completeness delta is ≤ `tol` or `max_points` path points are
/// spent.
pub fn integrated_gradients_adaptive(
    p: &PathProblem,
    scheme: Adaptive,
    tol: f64,
    max_points: usize,
    batch: usize,
    progress: Progress,
) -> Result<IgResult> {
    let (f_input, f_baseline, f_start) = p.endpoints_and_start()?;
    let path = p.path()?;
    let diff = p.direction()?;
    let n_tok = p.n_tokens();
    // Per α: F and the per-token contributions Σ_c (x − x′)·∂F/∂x (reduced on the device).
    let mut stash: std::collections::HashMap<u64, (f64, Vec<f64>)> =
        std::collections::HashMap::new();
    let mut done = 0usize;
    let stop = Stop::Completeness {
        exact: f_input - f_baseline,
    };
    let mut eval = |alphas: &[f64]| -> Result<Vec<f64>> {
        let mut vals = vec![0.0; alphas.len()];
        let mut prog = |d: usize, _t: usize| progress(done + d, max_points);
        let (f, toks) = p.token_integrand(&path, &diff, alphas, batch, &mut prog)?;
        for (k, (tok, f)) in toks.into_iter().zip(f).enumerate() {
            vals[k] = tok.iter().sum();
            stash.insert(alphas[k].to_bits(), (f, tok));
        }
        done += alphas.len();
        Ok(vals)
    };
    let refined = match scheme {
        Adaptive::Panels(start) => refine_panels(start, max_points, tol, stop, &mut eval)?,
        Adaptive::Rule(rule, start_n) => refine(rule, start_n, max_points, tol, stop, &mut eval)?,
    };
    let lookup = |a: f64| stash.get(&a.to_bits()).map(|(_, t)| t.as_slice());
    if refined.alphas.iter().any(|&a| lookup(a).is_none()) {
        return Err(Error::Internal(
            "refined node without a stashed gradient".into(),
        ));
    }
    let per_token = weighted_tokens(n_tok, &refined.alphas, &refined.weights, lookup);
    let path: Vec<(f64, f64)> = stash
        .iter()
        .map(|(k, (f, _))| (f64::from_bits(*k), *f))
        .collect();
    // Per attempt of a rule: its per-token attributions, from the stash (no model pass).
    let mut changes = Vec::new();
    if let Adaptive::Rule(rule, _) = scheme {
        let mut prev: Option<Vec<f64>> = None;
        for t in &refined.trajectory {
            let (al, w) = rule.nodes_weights(t.n)?;
            let a = weighted_tokens(n_tok, &al, &w, lookup);
            changes.push(prev.as_ref().map(|p| rel_l2(p, &a)));
            prev = Some(a);
        }
    }
    let steps = refined.n;
    let mut r = finish(
        None,
        per_token,
        f_input,
        f_baseline,
        f_start,
        path,
        steps,
        Some(refined),
    );
    r.attribution_changes = changes;
    if let Some(rf) = r
        .refinement
        .as_ref()
        .filter(|_| matches!(scheme, Adaptive::Panels(_)))
    {
        r.attribution_error = Some(panel_attribution_error(n_tok, rf, &r.per_token, lookup)?);
    }
    Ok(r)
}
