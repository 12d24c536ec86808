//! Adaptive refinement behind `--tolerance`: raise n until the caller's error measure is small.
//!
//! The driver is function-agnostic. The caller supplies `eval(alphas) -> values` for a scalar
//! integrand g(α) and a [`Stop`] criterion. For a path method the natural integrand is the
//! directional derivative g(α) = ⟨∇F(x′ + α(x − x′)), x − x′⟩, whose integral is Σ attributions,
//! so [`Stop::Completeness`] with `exact = F(x) − F(x′)` is exactly the relative completeness
//! delta |δ| / |F(x) − F(x′)|. `eval` is called only on α values never evaluated before (rules
//! whose refinement nests reuse every old point), so a caller that stashes the per-α gradients
//! it computed (keyed by `alpha.to_bits()`) can assemble the final attribution from
//! [`Refined::alphas`] / [`Refined::weights`] without a single extra model pass.

use super::{gauss, Rule};
use crate::{Error, Result};
use std::collections::{HashMap, HashSet};

const OP: &str = "integrate::refine";

/// How the driver measures the error of an attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    /// The exact integral is known (for IG: F(x) − F(x′)). delta = |Q − exact| / |exact|, or
    /// |Q − exact| when exact = 0 (the relative value is then undefined).
    Completeness { exact: f64 },
    /// No exact value: delta = |Q_n − Q_prev| / |Q_n| between successive attempts (absolute when
    /// Q_n = 0). This estimates the error of the *previous*, coarser attempt, so it is
    /// conservative for the returned one. The first attempt has delta = +∞.
    Successive,
}

/// One attempt of the driver.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// Points of the rule at this attempt.
    pub n: usize,
    /// Integrand evaluations this attempt needed (n minus the points reused from earlier ones).
    pub new_points: usize,
    /// Evaluations so far, this attempt included.
    pub points_used: usize,
    /// Σ w_k g(α_k).
    pub estimate: f64,
    /// The [`Stop`] error measure (+∞ where undefined).
    pub delta: f64,
}

/// The outcome of [`refine`]: the last attempt made, whether it met the tolerance, and the way
/// there.
#[derive(Clone, Debug, PartialEq)]
pub struct Refined {
    pub rule: Rule,
    /// n of the last attempt (the returned rule).
    pub n: usize,
    /// Nodes, weights and integrand values of the last attempt.
    pub alphas: Vec<f64>,
    pub weights: Vec<f64>,
    pub values: Vec<f64>,
    /// Σ w_k g(α_k) of the last attempt and its delta.
    pub estimate: f64,
    pub delta: f64,
    /// delta ≤ tol. False when the point budget (or an integrand that does not converge) stopped
    /// the driver first.
    pub converged: bool,
    /// Distinct integrand evaluations over all attempts (what the model passes cost).
    pub points_used: usize,
    /// Every attempt, in order.
    pub trajectory: Vec<Attempt>,
    /// The final panels of a panel scheme ([`super::kronrod::refine_panels`]); empty otherwise.
    pub panels: Vec<(f64, f64)>,
    /// Nodes of each final panel (15: Kronrod; 31: extended to Patterson's rule), same order as
    /// `panels`; empty otherwise.
    pub panel_nodes: Vec<usize>,
}

/// Checks the arguments shared by the adaptive drivers: a finite positive `tol`, a finite exact
/// value for [`Stop::Completeness`].
pub(super) fn check_tol_stop(op: &'static str, tol: f64, stop: Stop) -> Result<()> {
    if !(tol.is_finite() && tol > 0.0) {
        return Err(Error::Invalid {
            op,
            detail: format!("tolerance must be finite and > 0, got {tol}"),
        });
    }
    if let Stop::Completeness { exact } = stop {
        if !exact.is_finite() {
            return Err(Error::Invalid {
                op,
                detail: format!("exact value {exact} is not finite"),
            });
        }
    }
    Ok(())
}

/// The error measure of `stop` for an attempt with `estimate` (the previous one `prev`).
pub(super) fn stop_delta(stop: Stop, estimate: f64, prev: Option<f64>) -> f64 {
    match stop {
        Stop::Completeness { exact } => rel(estimate - exact, exact),
        Stop::Successive => prev.map_or(f64::INFINITY, |p| rel(estimate - p, estimate)),
    }
}

/// Adaptive quadrature: evaluates `rule` at `start_n` points, then at [`Rule::refined_n`] points
/// (2n for Gauss–Legendre, left, right; 3n midpoint; 2n − 1 trapezoids), until the delta of
/// `stop` is ≤ `tol` or the next attempt would take the total number of integrand evaluations
/// past `max_points` (or Gauss–Legendre past n = 65536). Returns the last attempt; `converged`
/// says whether it met `tol`.
///
/// `eval(alphas)` must return one finite value per alpha; it is only ever asked for alphas it has
/// not seen (compared bit for bit), so nested refinements ([`Rule::nests`]: every rule but
/// Gauss–Legendre and Gauss–Kronrod) cost only their new points. For those two each attempt costs
/// its full n, i.e. at most about twice the points of the final rule in total.
///
/// Errors: `tol` not finite and > 0; `start_n` below the rule's minimum; a non-finite `exact`;
/// a first attempt that alone exceeds `max_points`; `eval` returning the wrong number of values,
/// a non-finite value, or an error (passed through).
///
/// ```
/// use gradpath::integrate::{refine, Rule, Stop};
/// // ∫₀¹ cos(α) dα = sin 1, refined until the relative error is ≤ 1e-6 (as IG refines on the
/// // completeness delta, whose exact value F(x) − F(x′) is known).
/// let exact = 1f64.sin();
/// let r = refine(Rule::RiemannTrapezoid, 3, 10_000, 1e-6, Stop::Completeness { exact },
///     |a: &[f64]| Ok(a.iter().map(|a| a.cos()).collect())).unwrap();
/// assert!(r.converged && (r.estimate - exact).abs() <= 1e-6 * exact);
/// // Nested trapezoids reuse every earlier point: evaluations = nodes of the final rule.
/// assert_eq!(r.points_used, r.n);
/// ```
pub fn refine<F>(
    rule: Rule,
    start_n: usize,
    max_points: usize,
    tol: f64,
    stop: Stop,
    mut eval: F,
) -> Result<Refined>
where
    F: FnMut(&[f64]) -> Result<Vec<f64>>,
{
    check_tol_stop(OP, tol, stop)?;
    if start_n < rule.min_points() {
        return Err(Error::Invalid {
            op: OP,
            detail: format!(
                "{} needs a start of n ≥ {} points, got {start_n}",
                rule.name(),
                rule.min_points()
            ),
        });
    }
    if start_n > max_points {
        return Err(Error::Invalid {
            op: OP,
            detail: format!(
                "the first attempt needs {start_n} points but the budget is {max_points}"
            ),
        });
    }

    let mut cache: HashMap<u64, f64> = HashMap::new();
    let mut trajectory: Vec<Attempt> = Vec::new();
    let mut points_used = 0usize;
    let mut n = start_n;
    let mut prev_estimate: Option<f64> = None;
    loop {
        let (alphas, weights) = rule.nodes_weights(n)?;
        let mut seen = HashSet::new();
        let fresh: Vec<f64> = alphas
            .iter()
            .copied()
            .filter(|a| !cache.contains_key(&a.to_bits()) && seen.insert(a.to_bits()))
            .collect();
        if !fresh.is_empty() {
            let vals = eval(&fresh)?;
            if vals.len() != fresh.len() {
                return Err(Error::Invalid {
                    op: OP,
                    detail: format!(
                        "eval returned {} values for {} alphas",
                        vals.len(),
                        fresh.len()
                    ),
                });
            }
            for (&a, &v) in fresh.iter().zip(&vals) {
                if !v.is_finite() {
                    return Err(Error::Invalid {
                        op: OP,
                        detail: format!("integrand is {v} at α = {a}"),
                    });
                }
                cache.insert(a.to_bits(), v);
            }
        }
        points_used += fresh.len();
        let values: Vec<f64> = alphas.iter().map(|a| cache[&a.to_bits()]).collect();
        let estimate = neumaier_dot(&weights, &values);
        let delta = stop_delta(stop, estimate, prev_estimate);
        trajectory.push(Attempt {
            n,
            new_points: fresh.len(),
            points_used,
            estimate,
            delta,
        });
        prev_estimate = Some(estimate);

        let converged = delta <= tol;
        let next = rule.refined_n(n);
        // Points the next attempt needs at most: nested refinements reuse all n old points.
        let next_cost = if rule.nests() {
            next.saturating_sub(n)
        } else {
            rule.actual_points(next)
        };
        let over_budget = points_used.saturating_add(next_cost) > max_points;
        let too_many = (rule == Rule::GaussLegendre && next > gauss::MAX_GAUSS_N)
            || (matches!(
                rule,
                Rule::ClenshawCurtis | Rule::TanhSinh | Rule::GaussKronrod
            ) && next > super::nested::MAX_POINTS);
        if converged || over_budget || too_many {
            return Ok(Refined {
                panels: Vec::new(),
                panel_nodes: Vec::new(),
                rule,
                n,
                alphas,
                weights,
                values,
                estimate,
                delta,
                converged,
                points_used,
                trajectory,
            });
        }
        n = next;
    }
}

/// |err| / |scale|, or |err| when scale = 0.
fn rel(err: f64, scale: f64) -> f64 {
    if scale == 0.0 {
        err.abs()
    } else {
        (err / scale).abs()
    }
}

/// Σ w_k v_k with Neumaier's compensated summation (the completeness check compares sums of many
/// terms with a difference that can be small).
fn neumaier_dot(w: &[f64], v: &[f64]) -> f64 {
    let mut sum = 0.0f64;
    let mut comp = 0.0f64;
    for (&a, &b) in w.iter().zip(v) {
        let x = a * b;
        let t = sum + x;
        if sum.abs() >= x.abs() {
            comp += (sum - t) + x;
        } else {
            comp += (x - t) + sum;
        }
        sum = t;
    }
    sum + comp
}
