//! Convergence of quadrature rules on one IG path: every rule at every point count, against a
//! converged reference, sharing model passes wherever nodes coincide.
//!
//! The integrand is the per-token IG contribution at α, g_i(α) = Σ_c (x − x′)_{i,c} ∂F/∂x_{i,c}
//! at x′ + α(x − x′), whose integral over [0, 1] is token i's attribution. Each distinct α is one
//! forward + backward row, evaluated once and cached by `alpha.to_bits()`: nested rules
//! (Clenshaw–Curtis, tanh–sinh, the trapezoids, left/right Riemann) and rules that share nodes
//! (the trapezoids with Clenshaw–Curtis at α = 0, ½, 1; the reference's Kronrod panels with
//! `gauss-kronrod`) cost their new points only.
//!
//! The reference is adaptive G7/K15 panels on the whole vector of token contributions
//! ([`refine_panels_vec`]) until Σ_panels ‖K15 − G7‖₂ ≤ `reference_tolerance`·‖A‖₂ (1e−10 by
//! default): a bound on the embedded 7-point rule's error, so the K15 reference is better than
//! that. Each rule's attribution error is ‖A − A_ref‖₂ / ‖A_ref‖₂ over tokens.
//!
//! ```no_run
//! # fn demo(p: &gradpath::attribution::PathProblem) -> gradpath::Result<()> {
//! use gradpath::attribution::converge::{converge, ConvergeConfig};
//! use gradpath::integrate::Rule;
//! let cfg = ConvergeConfig::new(vec![Rule::GaussLegendre, Rule::TanhSinh], vec![4, 8, 16, 32]);
//! let c = converge(p, &cfg, 64, &mut |_, _| {})?;
//! for r in &c.rules {
//!     println!("{}: order {:?}", r.rule, r.order);
//! }
//! # Ok(()) }
//! ```

use super::ig::{rel_l2, weighted_tokens, PathProblem, Progress};
use super::probe;
use crate::integrate::{refine_panels_vec, Rule};
use crate::{Error, Result, Tensor};
use std::collections::HashMap;
use std::time::Instant;

/// What [`converge`] runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvergeConfig {
    /// The rules compared.
    pub rules: Vec<Rule>,
    /// Point counts asked of every rule (ascending after checking; a rule below its minimum at a
    /// count skips it, `gauss-kronrod` rounds to whole panels of 15).
    pub points: Vec<usize>,
    /// The reference stops when its error estimate is ≤ this (relative, over tokens).
    pub reference_tolerance: f64,
    /// The reference may spend at most this many points.
    pub reference_max_points: usize,
}

impl ConvergeConfig {
    /// `rules` × `points` with a reference to 1e−10 on at most 8,192 points.
    pub fn new(rules: Vec<Rule>, points: Vec<usize>) -> ConvergeConfig {
        ConvergeConfig {
            rules,
            points,
            reference_tolerance: 1e-10,
            reference_max_points: 8192,
        }
    }

    /// Checks the lists and the reference settings.
    pub fn check(&self) -> Result<()> {
        if self.rules.is_empty() {
            return Err(Error::BadValue {
                name: "rules",
                detail: "name at least one quadrature rule".into(),
            });
        }
        if self.points.is_empty() || self.points.contains(&0) {
            return Err(Error::BadValue {
                name: "points",
                detail: "give one or more point counts, each ≥ 1".into(),
            });
        }
        if let Some(&p) = self
            .points
            .iter()
            .find(|&&p| p > crate::integrate::nested::MAX_POINTS)
        {
            return Err(Error::BadValue {
                name: "points",
                detail: format!(
                    "{p} is above the {} points a rule is built for",
                    crate::integrate::nested::MAX_POINTS
                ),
            });
        }
        let t = self.reference_tolerance;
        if !(t.is_finite() && t > 0.0) {
            return Err(Error::BadValue {
                name: "reference_tolerance",
                detail: format!("must be a finite number > 0, got {t}"),
            });
        }
        if self.reference_max_points < 15 {
            return Err(Error::BadValue {
                name: "reference_max_points",
                detail: "must be at least 15 (one Kronrod panel)".into(),
            });
        }
        Ok(())
    }
}

/// The converged reference.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reference {
    /// Per-token attributions.
    pub attributions: Vec<f64>,
    /// Kronrod panels and the points they took.
    pub panels: usize,
    pub points: usize,
    /// Σ_panels ‖K15 − G7‖₂ / ‖A‖₂ (bounds the embedded Gauss rule's error).
    pub error_estimate: f64,
    /// `error_estimate` ≤ the reference tolerance.
    pub converged: bool,
    /// |Σ A − (F(x) − F(x′))| / |F(x) − F(x′)|.
    pub relative_delta: f64,
}

/// One rule at one point count.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleRun {
    /// The point count asked for, and the nodes the rule really has (they differ for
    /// `gauss-kronrod`).
    pub requested: usize,
    pub points: usize,
    /// Forward + backward passes (path points) this rule needs alone at this count.
    pub passes: usize,
    /// Passes when refining through this rule's counts up to this one, reusing nested nodes.
    pub passes_refining: usize,
    /// |Σ A − ΔF| / |ΔF|.
    pub relative_delta: f64,
    /// ‖A − A_ref‖₂ / ‖A_ref‖₂ over tokens.
    pub attribution_error: f64,
    /// max_i |A_i − A_ref,i| / max_i |A_ref,i|.
    pub max_token_error: f64,
    /// ‖A − A_prev‖₂ / ‖A‖₂ against this rule's previous count: the error estimate a user has
    /// without a reference (it measures the previous count's error). `None` at the first count.
    pub successive_estimate: Option<f64>,
    /// passes × the mean seconds per pass of this run (passes were shared, so they were not
    /// timed per rule).
    pub seconds: f64,
    pub attributions: Vec<f64>,
}

/// One rule over all counts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleConvergence {
    pub rule: Rule,
    pub runs: Vec<RuleRun>,
    /// Point counts skipped (below the rule's minimum, or the same nodes as a count before).
    pub skipped: Vec<usize>,
    /// −slope of log(attribution error) against log(passes), least squares over the counts whose
    /// error is above 10× the reference's error estimate (and 1e−14); `None` with fewer than two
    /// such counts. Algebraic rules show their order (1 for left/right Riemann, 2 for the
    /// midpoint and trapezoid); rules that converge faster than any power show a growing slope.
    pub order: Option<f64>,
    /// The counts the fit used.
    pub order_fit_points: usize,
}

/// Everything [`converge`] measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Convergence {
    pub f_input: f64,
    pub f_baseline: f64,
    pub reference: Reference,
    pub rules: Vec<RuleConvergence>,
    /// Distinct path points evaluated in all (reference included), and the seconds they took.
    pub total_passes: usize,
    pub pass_seconds: f64,
    /// Mean seconds per path point (forward + backward row).
    pub seconds_per_pass: f64,
}

/// Per-α cache of the token contributions g_i(α).
struct Points<'p, 'a> {
    p: &'p PathProblem<'a>,
    path: probe::Path,
    diff: Tensor,
    n_tok: usize,
    batch: usize,
    cache: HashMap<u64, Vec<f64>>,
    seconds: f64,
}

impl Points<'_, '_> {
    /// Evaluates every α not yet cached, in batches of `batch` rows.
    fn fill(&mut self, alphas: &[f64], progress: &mut dyn FnMut(usize)) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        let fresh: Vec<f64> = alphas
            .iter()
            .copied()
            .filter(|a| !self.cache.contains_key(&a.to_bits()) && seen.insert(a.to_bits()))
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let t0 = Instant::now();
        let (_, toks) =
            self.p
                .token_integrand(&self.path, &self.diff, &fresh, self.batch, &mut |d, _| {
                    progress(d)
                })?;
        self.seconds += t0.elapsed().as_secs_f64();
        for (a, t) in fresh.iter().zip(toks) {
            if let Some(bad) = t.iter().find(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    place: format!("the IG integrand at α = {a}"),
                    value: bad.to_string(),
                });
            }
            self.cache.insert(a.to_bits(), t);
        }
        Ok(())
    }

    fn integrate(&self, alphas: &[f64], weights: &[f64]) -> Vec<f64> {
        weighted_tokens(self.n_tok, alphas, weights, |a| {
            self.cache.get(&a.to_bits()).map(Vec::as_slice)
        })
    }
}

fn rel_delta(a: &[f64], df: f64) -> f64 {
    let d = a.iter().sum::<f64>() - df;
    if df != 0.0 {
        (d / df).abs()
    } else {
        d.abs()
    }
}

/// Least-squares slope of ln y against ln x.
pub fn loglog_slope(xy: &[(f64, f64)]) -> Option<f64> {
    if xy.len() < 2 {
        return None;
    }
    let pts: Vec<(f64, f64)> = xy.iter().map(|&(x, y)| (x.ln(), y.ln())).collect();
    let n = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some(sxy / sxx)
}

/// Runs every rule of `cfg` at every point count on the path of `p`, and the reference;
/// `batch` path points per forward. `progress(done, planned)` counts path points (planned grows
/// as the reference refines).
pub fn converge(
    p: &PathProblem,
    cfg: &ConvergeConfig,
    batch: usize,
    progress: Progress,
) -> Result<Convergence> {
    cfg.check()?;
    let (f_input, f_baseline) = p.endpoints()?;
    let df = f_input - f_baseline;
    let mut pts = Points {
        p,
        path: p.path()?,
        diff: p.direction()?,
        n_tok: p.n_tokens(),
        batch: batch.max(1),
        cache: HashMap::new(),
        seconds: 0.0,
    };

    // The node sets of every rule at every count (deduplicated per rule).
    let mut counts = cfg.points.clone();
    counts.sort_unstable();
    counts.dedup();
    type Plan = (Rule, Vec<(usize, Vec<f64>, Vec<f64>)>, Vec<usize>);
    let mut plans: Vec<Plan> = Vec::new();
    for &rule in &cfg.rules {
        let mut runs = Vec::new();
        let mut skipped = Vec::new();
        let mut last_actual = 0;
        for &n in &counts {
            if n < rule.min_points() || rule.actual_points(n) == last_actual {
                skipped.push(n);
                continue;
            }
            last_actual = rule.actual_points(n);
            let (a, w) = rule.nodes_weights(n)?;
            runs.push((n, a, w));
        }
        plans.push((rule, runs, skipped));
    }
    let mut all: Vec<f64> = plans
        .iter()
        .flat_map(|(_, runs, _)| runs.iter().flat_map(|r| r.1.iter().copied()))
        .collect();
    all.sort_by(f64::total_cmp);
    all.dedup_by(|a, b| a.to_bits() == b.to_bits());
    let planned_rules = all.len();

    // The reference first (its panels are shared with gauss-kronrod where they coincide).
    let mut done = 0usize;
    let vp = {
        let pts = &mut pts;
        let done = &mut done;
        let mut eval = |alphas: &[f64]| -> Result<Vec<Vec<f64>>> {
            let before = pts.cache.len();
            let base = *done;
            pts.fill(alphas, &mut |d| {
                progress(base + d, base + d + planned_rules)
            })?;
            *done += pts.cache.len() - before;
            Ok(alphas
                .iter()
                .map(|a| pts.cache[&a.to_bits()].clone())
                .collect())
        };
        refine_panels_vec(
            1,
            cfg.reference_max_points,
            cfg.reference_tolerance,
            &mut eval,
        )?
    };
    let reference = Reference {
        relative_delta: rel_delta(&vp.estimate, df),
        attributions: vp.estimate.clone(),
        panels: vp.panels.len(),
        points: vp.points_used,
        error_estimate: vp.error,
        converged: vp.converged,
    };

    // Every rule's nodes in one sweep.
    let fresh_total = all
        .iter()
        .filter(|a| !pts.cache.contains_key(&a.to_bits()))
        .count();
    let base = done;
    pts.fill(&all, &mut |d| progress(base + d, base + fresh_total))?;
    let total_passes = pts.cache.len();
    let seconds_per_pass = pts.seconds / total_passes.max(1) as f64;
    let floor = (10.0 * reference.error_estimate).max(1e-14);
    let ref_max = reference
        .attributions
        .iter()
        .fold(0.0f64, |m, x| m.max(x.abs()));

    let mut rules = Vec::new();
    for (rule, plan, skipped) in plans {
        let mut runs: Vec<RuleRun> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (n, a, w) in &plan {
            a.iter().for_each(|x| {
                seen.insert(x.to_bits());
            });
            let attr = pts.integrate(a, w);
            let max_dev = attr
                .iter()
                .zip(&reference.attributions)
                .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
            let successive = runs.last().map(|prev| rel_l2(&prev.attributions, &attr));
            runs.push(RuleRun {
                requested: *n,
                points: a.len(),
                passes: a.len(),
                passes_refining: seen.len(),
                relative_delta: rel_delta(&attr, df),
                attribution_error: rel_l2(&attr, &reference.attributions),
                max_token_error: if ref_max > 0.0 {
                    max_dev / ref_max
                } else {
                    max_dev
                },
                successive_estimate: successive,
                seconds: a.len() as f64 * seconds_per_pass,
                attributions: attr,
            });
        }
        let fit: Vec<(f64, f64)> = runs
            .iter()
            .filter(|r| r.attribution_error > floor)
            .map(|r| (r.passes as f64, r.attribution_error))
            .collect();
        rules.push(RuleConvergence {
            rule,
            order: loglog_slope(&fit).map(|s| -s),
            order_fit_points: if fit.len() >= 2 { fit.len() } else { 0 },
            runs,
            skipped,
        });
    }
    Ok(Convergence {
        f_input,
        f_baseline,
        reference,
        rules,
        total_passes,
        pass_seconds: pts.seconds,
        seconds_per_pass,
    })
}

#[cfg(test)]
mod tests {
    use super::loglog_slope;

    #[test]
    fn slope_of_a_power_law() {
        let xy: Vec<(f64, f64)> = [4.0, 8.0, 16.0, 32.0]
            .iter()
            .map(|&x: &f64| (x, 3.0 * x.powf(-2.0)))
            .collect();
        assert!((loglog_slope(&xy).unwrap() + 2.0).abs() < 1e-12);
        assert_eq!(loglog_slope(&xy[..1]), None);
    }
}
