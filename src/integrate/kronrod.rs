//! Adaptive Gauss–Kronrod quadrature on panels (QUADPACK's G7/K15 pair), for `--tolerance`.
//!
//! Each panel [a, b] is evaluated at the 15 Kronrod nodes, which contain the 7 Gauss nodes: the
//! K15 sum is the panel's estimate and |K15 − G7| its local error indicator. Path methods know the
//! exact integral (F(x) − F(x′)), so the global error is measured exactly ([`Stop::Completeness`]);
//! the local indicators only decide *where* to refine: every panel whose indicator is at least a
//! quarter of the largest is bisected, all new nodes of a round going to `eval` at once (one batch
//! of path points). Integrands that bend in one place (F rising steeply over part of the path)
//! get points there instead of everywhere.

use super::refine::{check_tol_stop, stop_delta, Attempt, Refined, Stop};
use super::Rule;
use crate::{Error, Result};

const OP: &str = "integrate::refine_panels";

/// Kronrod nodes on [−1, 1] (non-negative half, descending; the odd entries are the Gauss nodes).
const XGK: [f64; 8] = [
    0.991_455_371_120_812_6,
    0.949_107_912_342_758_5,
    0.864_864_423_359_769_1,
    0.741_531_185_599_394_4,
    0.586_087_235_467_691_1,
    0.405_845_151_377_397_2,
    0.207_784_955_007_898_5,
    0.0,
];
/// Kronrod weights for `XGK`.
const WGK: [f64; 8] = [
    0.022_935_322_010_529_22,
    0.063_092_092_629_978_55,
    0.104_790_010_322_250_2,
    0.140_653_259_715_525_9,
    0.169_004_726_639_267_9,
    0.190_350_578_064_785_4,
    0.204_432_940_075_298_9,
    0.209_482_141_084_727_8,
];
/// Gauss weights for `XGK[1]`, `XGK[3]`, `XGK[5]`, `XGK[7]`.
const WG: [f64; 4] = [
    0.129_484_966_168_869_7,
    0.279_705_391_489_276_7,
    0.381_830_050_505_118_9,
    0.417_959_183_673_469_4,
];

/// The 15 Kronrod nodes of [a, b] (ascending), their K15 weights and their G7 weights (0 off the
/// Gauss nodes).
pub fn kronrod15(a: f64, b: f64) -> ([f64; 15], [f64; 15], [f64; 15]) {
    let (c, h) = (0.5 * (a + b), 0.5 * (b - a));
    let (mut x, mut wk, mut wg) = ([0.0; 15], [0.0; 15], [0.0; 15]);
    for i in 0..8 {
        let g = if i % 2 == 1 { WG[i / 2] * h } else { 0.0 };
        // Node −XGK[i] at position i, +XGK[i] at position 14 − i (the centre, i = 7, once).
        x[i] = c - h * XGK[i];
        x[14 - i] = c + h * XGK[i];
        wk[i] = WGK[i] * h;
        wk[14 - i] = WGK[i] * h;
        wg[i] = g;
        wg[14 - i] = g;
    }
    (x, wk, wg)
}

struct Panel {
    a: f64,
    b: f64,
    k15: f64,
    err: f64,
    values: [f64; 15],
}

/// Refines panels of [0, 1] (starting from `start_panels` equal ones) until the delta of `stop` is
/// ≤ `tol`, or the next round would take the evaluations past `max_points`. `eval(alphas)` returns
/// the integrand at each alpha. The result's `alphas`/`weights`/`values` are the Kronrod nodes of
/// the final panels (ascending).
pub fn refine_panels<F>(
    start_panels: usize,
    max_points: usize,
    tol: f64,
    stop: Stop,
    mut eval: F,
) -> Result<Refined>
where
    F: FnMut(&[f64]) -> Result<Vec<f64>>,
{
    check_tol_stop(OP, tol, stop)?;
    if start_panels == 0 || 15 * start_panels > max_points {
        return Err(Error::Invalid {
            op: OP,
            detail: format!(
                "{start_panels} panels need {} points but the budget is {max_points}",
                15 * start_panels
            ),
        });
    }
    let mut run = |bounds: &[(f64, f64)]| -> Result<Vec<Panel>> {
        let alphas = kronrod_nodes(bounds).0;
        let v = eval(&alphas)?;
        if v.len() != alphas.len() || v.iter().any(|x| !x.is_finite()) {
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
                let k15: f64 = wk.iter().zip(vals).map(|(w, v)| w * v).sum();
                let g7: f64 = wg.iter().zip(vals).map(|(w, v)| w * v).sum();
                let mut values = [0.0; 15];
                values.copy_from_slice(vals);
                Panel {
                    a,
                    b,
                    k15,
                    err: (k15 - g7).abs(),
                    values,
                }
            })
            .collect())
    };
    let mut panels = run(&equal_panels(start_panels))?;
    let mut points_used = 15 * start_panels;
    let mut trajectory = Vec::new();
    let mut prev: Option<f64> = None;
    loop {
        let estimate: f64 = panels.iter().map(|p| p.k15).sum();
        let delta = stop_delta(stop, estimate, prev);
        prev = Some(estimate);
        let n = 15 * panels.len();
        trajectory.push(Attempt {
            n,
            new_points: trajectory
                .last()
                .map_or(n, |t: &Attempt| points_used - t.points_used),
            points_used,
            estimate,
            delta,
        });
        let max_err = panels.iter().map(|p| p.err).fold(0.0, f64::max);
        let split: Vec<usize> = (0..panels.len())
            .filter(|&i| panels[i].err >= 0.25 * max_err)
            .collect();
        let cost = 30 * split.len();
        let converged = delta <= tol;
        if converged || points_used + cost > max_points || max_err == 0.0 {
            panels.sort_by(|x, y| x.a.total_cmp(&y.a));
            let mut alphas = Vec::with_capacity(n);
            let mut weights = Vec::with_capacity(n);
            let mut values = Vec::with_capacity(n);
            for p in &panels {
                let (x, wk, _) = kronrod15(p.a, p.b);
                alphas.extend_from_slice(&x);
                weights.extend_from_slice(&wk);
                values.extend_from_slice(&p.values);
            }
            return Ok(Refined {
                rule: Rule::GaussLegendre,
                n,
                alphas,
                weights,
                values,
                estimate,
                delta,
                converged,
                points_used,
                trajectory,
                panels: panels.iter().map(|p| (p.a, p.b)).collect(),
            });
        }
        let halves = bisect(split.iter().map(|&i| (panels[i].a, panels[i].b)));
        let new = run(&halves)?;
        points_used += cost;
        panels = replace_split(panels, &split, new);
    }
}

/// `n` equal panels of [0, 1] (the last one ends at exactly 1).
pub(super) fn equal_panels(n: usize) -> Vec<(f64, f64)> {
    let p = n as f64;
    (0..n)
        .map(|i| {
            let b = if i + 1 == n { 1.0 } else { (i + 1) as f64 / p };
            (i as f64 / p, b)
        })
        .collect()
}

/// The K15 nodes and weights of `panels`, in order.
pub(super) fn kronrod_nodes(panels: &[(f64, f64)]) -> (Vec<f64>, Vec<f64>) {
    let mut alphas = Vec::with_capacity(15 * panels.len());
    let mut weights = Vec::with_capacity(15 * panels.len());
    for &(a, b) in panels {
        let (x, w, _) = kronrod15(a, b);
        alphas.extend_from_slice(&x);
        weights.extend_from_slice(&w);
    }
    (alphas, weights)
}

/// The two halves of every panel.
fn bisect(panels: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    panels
        .flat_map(|(a, b)| {
            let m = 0.5 * (a + b);
            [(a, m), (m, b)]
        })
        .collect()
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
    if start_panels == 0 || 15 * start_panels > max_points {
        return Err(Error::Invalid {
            op: OP,
            detail: format!(
                "{start_panels} panels need {} points but the budget is {max_points}",
                15 * start_panels
            ),
        });
    }
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
                let err = k15
                    .iter()
                    .zip(&g7)
                    .map(|(k, g)| (k - g) * (k - g))
                    .sum::<f64>()
                    .sqrt();
                VPanel { a, b, k15, err }
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
        let norm = estimate.iter().map(|e| e * e).sum::<f64>().sqrt();
        let abs_err: f64 = panels.iter().map(|q| q.err).sum();
        let error = if norm > 0.0 { abs_err / norm } else { abs_err };
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
