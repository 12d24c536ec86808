//! Adaptive G7/K15 panels for a vector-valued integrand (every token's attribution at once): the
//! converged reference of `gradpath converge` ([`refine_panels_vec`]). The scalar driver behind
//! `--tolerance` is [`super::kronrod::refine_panels`].

use super::kronrod::{bisect, check_start_panels, equal_panels, kronrod15, kronrod_nodes};
use super::refine::{check_tol_stop, Stop};
use super::{l2, relative_to};
use crate::{Error, Result};

/// The outcome of [`refine_panels_vec`].
#[derive(Clone, Debug, PartialEq)]
pub struct VecPanels {
    /// Kronrod nodes and weights of the final panels (ascending).
    pub alphas: Vec<f64>,
    pub weights: Vec<f64>,
    /// Σ over panels of the K15 sums: one value per component.
    pub estimate: Vec<f64>,
    /// The error estimate Σ_panels ‖K15 − G7‖₂ / ‖estimate‖₂ (absolute when the estimate is 0).
    /// It bounds the error of the embedded Gauss rule, so it is pessimistic for the K15 sums.
    pub error: f64,
    /// `error` ≤ the tolerance.
    pub converged: bool,
    /// Distinct integrand evaluations.
    pub points_used: usize,
    pub panels: Vec<(f64, f64)>,
}

/// Adaptive G7/K15 panels for a vector-valued integrand (e.g. every token's attribution at
/// once): starts from `start_panels` equal panels of [0, 1] and bisects, round after round, every
/// panel whose ‖K15 − G7‖₂ is at least a quarter of the largest, until [`VecPanels::error`] ≤ `tol`,
/// the next round would take the evaluations past `max_points`, or the panels to split are
/// narrower than 1e−12. `eval(alphas)` returns one vector (all of the same length) per alpha.
pub fn refine_panels_vec<F>(
    start_panels: usize,
    max_points: usize,
    tol: f64,
    mut eval: F,
) -> Result<VecPanels>
where
    F: FnMut(&[f64]) -> Result<Vec<Vec<f64>>>,
{
    const OP: &str = "integrate::refine_panels_vec";
    check_tol_stop(OP, tol, Stop::Successive)?;
    check_start_panels(OP, start_panels, max_points)?;
    struct VPanel {
        a: f64,
        b: f64,
        k15: Vec<f64>,
        err: f64,
    }
    let mut run = |bounds: &[(f64, f64)]| -> Result<Vec<VPanel>> {
        let alphas = kronrod_nodes(bounds).0;
        let v = eval(&alphas)?;
        let dim = v.first().map_or(0, Vec::len);
        if v.len() != alphas.len()
            || v.iter()
                .any(|x| x.len() != dim || x.iter().any(|y| !y.is_finite()))
        {
            return Err(Error::Invalid {
                op: OP,
                detail: "the integrand returned a wrong number of values or a non-finite value"
                    .into(),
            });
        }
        Ok(bounds
            .iter()
            .zip(v.chunks(15))
            .map(|(&(a, b), vals)| {
                let (_, wk, wg) = kronrod15(a, b);
                let mut k15 = vec![0.0; dim];
                let mut g7 = vec![0.0; dim];
                for ((vk, w), g) in vals.iter().zip(&wk).zip(&wg) {
                    for c in 0..dim {
                        k15[c] += w * vk[c];
                        g7[c] += g * vk[c];
                    }
                }
                let diff: Vec<f64> = k15.iter().zip(&g7).map(|(k, g)| k - g).collect();
                VPanel {
                    a,
                    b,
                    k15,
                    err: l2(&diff),
                }
            })
            .collect())
    };
    let mut panels = run(&equal_panels(start_panels))?;
    let mut points_used = 15 * start_panels;
    loop {
        let dim = panels[0].k15.len();
        let mut estimate = vec![0.0; dim];
        for q in &panels {
            estimate.iter_mut().zip(&q.k15).for_each(|(e, k)| *e += k);
        }
        let abs_err: f64 = panels.iter().map(|q| q.err).sum();
        let error = relative_to(abs_err, l2(&estimate));
        let max_err = panels.iter().map(|q| q.err).fold(0.0, f64::max);
        let split: Vec<usize> = (0..panels.len())
            .filter(|&i| panels[i].err >= 0.25 * max_err && panels[i].b - panels[i].a > 1e-12)
            .collect();
        let converged = error <= tol;
        if converged
            || split.is_empty()
            || max_err == 0.0
            || points_used + 30 * split.len() > max_points
        {
            panels.sort_by(|x, y| x.a.total_cmp(&y.a));
            let bounds: Vec<(f64, f64)> = panels.iter().map(|q| (q.a, q.b)).collect();
            let (alphas, weights) = kronrod_nodes(&bounds);
            return Ok(VecPanels {
                alphas,
                weights,
                estimate,
                error,
                converged,
                points_used,
                panels: bounds,
            });
        }
        let halves = bisect(split.iter().map(|&i| (panels[i].a, panels[i].b)));
        let new = run(&halves)?;
        points_used += 30 * split.len();
        panels = replace_split(panels, &split, new);
    }
}

/// `panels` without those at the indices `split`, followed by `new`.
fn replace_split<P>(panels: Vec<P>, split: &[usize], new: Vec<P>) -> Vec<P> {
    let mut keep: Vec<P> = panels
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !split.contains(i))
        .map(|(_, q)| q)
        .collect();
    keep.extend(new);
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_panels_resolve_a_steep_start_to_the_tolerance() {
        // Two components: a smooth one and one that jumps near α = 0 (as F does when a zero
        // baseline enters a norm layer): ∫ cos = sin 1, ∫ 1/(1e-4 + α)·… normalised.
        let c = 1e-4f64;
        let exact = [1f64.sin(), ((1.0 + c) / c).ln()];
        let r = refine_panels_vec(1, 20_000, 1e-12, |a: &[f64]| {
            Ok(a.iter().map(|&x| vec![x.cos(), 1.0 / (c + x)]).collect())
        })
        .unwrap();
        assert!(r.converged, "error {}", r.error);
        for (e, x) in r.estimate.iter().zip(exact) {
            assert!(((e - x) / x).abs() < 1e-12, "{e} vs {x}");
        }
        // Points went where the integrand bends: the narrowest panel sits at α = 0.
        let narrow = r
            .panels
            .iter()
            .min_by(|p, q| (p.1 - p.0).total_cmp(&(q.1 - q.0)))
            .unwrap();
        assert_eq!(narrow.0, 0.0);
        assert!(r.panels.len() < 60, "{} panels", r.panels.len());
        assert_eq!(r.alphas.len(), 15 * r.panels.len());
    }
}
