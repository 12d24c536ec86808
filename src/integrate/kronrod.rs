//! Adaptive Gauss–Kronrod quadrature on panels (QUADPACK's G7/K15 pair, and Patterson's 31-point
//! extension of K15), for `--tolerance`.
//!
//! Each panel [a, b] is evaluated at the 15 Kronrod nodes, which contain the 7 Gauss nodes: the
//! K15 sum is the panel's estimate and |K15 − G7| its local error indicator. Path methods know the
//! exact integral (F(x) − F(x′)), so the global error is measured exactly ([`Stop::Completeness`]);
//! the local indicators only decide *where* to refine: every panel whose indicator is at least a
//! quarter of the largest is refined, all new nodes of a round going to `eval` at once (one batch
//! of path points). A K15 panel is first extended to Patterson's 31 nodes (16 new, the 15 kept;
//! indicator |P31 − K15|), an extended one is bisected. Integrands that bend in one place (F
//! rising steeply over part of the path) get points there instead of everywhere.

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

/// The 16 nodes Patterson's 31-point rule adds to the 15 Kronrod nodes, on [−1, 1] (non-negative
/// half, descending). T. N. L. Patterson, "The optimum addition of points to quadrature formulae",
/// Math. Comp. 22 (1968): the zeros of the degree-16 polynomial orthogonal to every polynomial of
/// lower degree under the weight ∏(x − Kronrod nodes). Computed for gradpath in 60-digit arithmetic
/// (mpmath); the 31-point rule integrates polynomials up to degree 47 exactly (tested below).
const XP: [f64; 8] = [
    0.998_687_109_678_466_7,
    0.975_383_588_208_893_4,
    0.912_204_882_783_262_8,
    0.807_688_939_172_437_6,
    0.667_348_098_104_300_2,
    0.498_636_786_552_832,
    0.308_579_247_910_587_8,
    0.104_528_273_810_780_71,
];
/// 31-point weights of the `XP` nodes.
const WP_NEW: [f64; 8] = [
    0.003_634_931_195_049_884,
    0.021_039_446_258_726_797,
    0.042_193_500_584_546_594,
    0.061_821_985_645_449_856,
    0.077_875_347_115_245_99,
    0.090_261_802_146_558_6,
    0.099_196_857_667_432_91,
    0.104_099_955_472_697_36,
];
/// 31-point weights of the Kronrod nodes `XGK` (same order).
const WP_K: [f64; 8] = [
    0.011_319_468_444_683_435,
    0.031_577_706_217_045_86,
    0.052_384_370_820_982_69,
    0.070_332_046_410_400_65,
    0.084_498_765_301_243_02,
    0.095_178_029_931_830_68,
    0.102_214_180_005_702_75,
    0.104_743_213_564_805_84,
];

/// The 16 nodes that extend [a, b]'s 15 Kronrod nodes to Patterson's 31-point rule (ascending).
pub fn patterson_extension(a: f64, b: f64) -> [f64; 16] {
    let (c, h) = (0.5 * (a + b), 0.5 * (b - a));
    let mut x = [0.0; 16];
    for i in 0..8 {
        x[i] = c - h * XP[i];
        x[15 - i] = c + h * XP[i];
    }
    x
}

/// Patterson's 31-point rule on [a, b]: nodes (ascending; the 15 Kronrod nodes and the 16 of
/// [`patterson_extension`]), their 31-point weights and their K15 weights (0 on the new nodes).
pub fn patterson31(a: f64, b: f64) -> ([f64; 31], [f64; 31], [f64; 31]) {
    let h = 0.5 * (b - a);
    let (xk, _, _) = kronrod15(a, b);
    let xn = patterson_extension(a, b);
    let (mut x, mut wp, mut wk) = ([0.0; 31], [0.0; 31], [0.0; 31]);
    // Ascending interleave: new node i, Kronrod node i, ..., the centre (a Kronrod node) at 15.
    for i in 0..8 {
        x[2 * i] = xn[i];
        wp[2 * i] = WP_NEW[i] * h;
        x[30 - 2 * i] = xn[15 - i];
        wp[30 - 2 * i] = WP_NEW[i] * h;
    }
    for i in 0..8 {
        let kw = WGK[i] * h;
        x[2 * i + 1] = xk[i];
        wp[2 * i + 1] = WP_K[i] * h;
        wk[2 * i + 1] = kw;
        if i < 7 {
            x[29 - 2 * i] = xk[14 - i];
            wp[29 - 2 * i] = WP_K[i] * h;
            wk[29 - 2 * i] = kw;
        }
    }
    (x, wp, wk)
}

/// A final panel's nodes (ascending) with the weights of its rule and of the coarser rule
/// embedded in it: K15 and G7 for a panel of 15 nodes, Patterson's 31 and K15 for one of 31.
/// The two sums' difference is the panel's error indicator.
pub fn panel_rule_pair(a: f64, b: f64, nodes: usize) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    match nodes {
        15 => {
            let (x, wk, wg) = kronrod15(a, b);
            Ok((x.to_vec(), wk.to_vec(), wg.to_vec()))
        }
        31 => {
            let (x, wp, wk) = patterson31(a, b);
            Ok((x.to_vec(), wp.to_vec(), wk.to_vec()))
        }
        _ => Err(Error::Invalid {
            op: "integrate::panel_rule_pair",
            detail: format!("a panel has 15 or 31 nodes, not {nodes}"),
        }),
    }
}

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

/// A K15 panel is extended to Patterson's 31 nodes only while |K15 − G7| ≤ this share of the
/// K15 sum of |integrand| over the panel; beyond it, it is bisected at once (docs/QUADRATURE.md).
const EXTEND_MAX: f64 = 0.05;

struct Panel {
    a: f64,
    b: f64,
    /// The panel's estimate (K15, or Patterson's 31 once extended).
    est: f64,
    /// |est − the embedded coarser rule's sum|.
    err: f64,
    /// The panel rule's sum of |integrand| (its scale for `err`).
    abs: f64,
    /// The integrand at the nodes of the panel's rule (15 or 31, ascending).
    values: Vec<f64>,
}

impl Panel {
    /// A panel from its values at the nodes of its rule: estimate, indicator and scale from the
    /// rule pair ([`panel_rule_pair`]).
    fn new(a: f64, b: f64, values: Vec<f64>) -> Result<Panel> {
        let (_, fine, coarse) = panel_rule_pair(a, b, values.len())?;
        let dot = |w: &[f64]| w.iter().zip(&values).map(|(w, v)| w * v).sum::<f64>();
        let (est, rough) = (dot(&fine), dot(&coarse));
        let abs = fine.iter().zip(&values).map(|(w, v)| w * v.abs()).sum();
        Ok(Panel {
            a,
            b,
            est,
            err: (est - rough).abs(),
            abs,
            values,
        })
    }

    /// The same panel under Patterson's 31-point rule, given the integrand at its
    /// [`patterson_extension`] nodes. The new nodes interleave with the Kronrod ones
    /// ([`patterson31`]: new, Kronrod, new, ..., new).
    fn extend(self, new: &[f64]) -> Result<Panel> {
        let mut values = Vec::with_capacity(31);
        for (n, k) in new.iter().zip(&self.values) {
            values.extend([*n, *k]);
        }
        values.push(new[15]);
        Panel::new(self.a, self.b, values)
    }

    fn extended(&self) -> bool {
        self.values.len() == 31
    }

    /// Whether refining this panel bisects it rather than extending it to 31 nodes: once
    /// extended, or when its K15 − G7 gap is above [`EXTEND_MAX`] of its scale (the integrand is
    /// far from polynomial there, as on a rough path, and 16 more points would be spent on a
    /// panel that is bisected next anyway).
    fn splits(&self) -> bool {
        self.extended() || self.err > EXTEND_MAX * self.abs
    }
}

/// Refines panels of [0, 1] (starting from `start_panels` equal ones) until the delta of `stop` is
/// ≤ `tol`, or the next round would take the evaluations past `max_points`. `eval(alphas)` returns
/// the integrand at each alpha.
///
/// Every round refines the panels whose error indicator is at least a quarter of the largest, all
/// their new nodes in one call of `eval`. A K15 panel is first **extended** to Patterson's 31-point
/// rule: its 15 values are kept and 16 nodes added ([`patterson_extension`]; indicator |P31 −
/// K15|). A panel that is still among the worst is **bisected** into two K15 panels (30 new nodes).
/// So a bend inside one panel costs 16 points where bisection alone costs 30, and no point is
/// thrown away until a panel is split.
///
/// The result's `alphas`/`weights`/`values` are the nodes of the final panels (ascending), with
/// `panel_nodes` (15 or 31) per panel.
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
    check_start_panels(OP, start_panels, max_points)?;
    let mut call = |alphas: &[f64]| -> Result<Vec<f64>> {
        let v = eval(alphas)?;
        if v.len() != alphas.len() || v.iter().any(|x| !x.is_finite()) {
            return Err(Error::Invalid {
                op: OP,
                detail: "the integrand returned a wrong number of values or a non-finite value"
                    .into(),
            });
        }
        Ok(v)
    };
    let start = equal_panels(start_panels);
    let v = call(&kronrod_nodes(&start).0)?;
    let mut panels = start
        .iter()
        .zip(v.chunks(15))
        .map(|(&(a, b), vals)| Panel::new(a, b, vals.to_vec()))
        .collect::<Result<Vec<Panel>>>()?;
    let mut points_used = 15 * start_panels;
    let mut trajectory = Vec::new();
    let mut prev: Option<f64> = None;
    loop {
        let estimate: f64 = panels.iter().map(|p| p.est).sum();
        let delta = stop_delta(stop, estimate, prev);
        prev = Some(estimate);
        let n: usize = panels.iter().map(|p| p.values.len()).sum();
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
        let refine: Vec<bool> = panels.iter().map(|p| p.err >= 0.25 * max_err).collect();
        let cost: usize = panels
            .iter()
            .zip(&refine)
            .filter(|(_, &r)| r)
            .map(|(p, _)| if p.splits() { 30 } else { 16 })
            .sum();
        let converged = delta <= tol;
        if converged || points_used + cost > max_points || max_err == 0.0 {
            panels.sort_by(|x, y| x.a.total_cmp(&y.a));
            let mut alphas = Vec::with_capacity(n);
            let mut weights = Vec::with_capacity(n);
            let mut values = Vec::with_capacity(n);
            for p in &panels {
                let (x, w, _) = panel_rule_pair(p.a, p.b, p.values.len())?;
                alphas.extend_from_slice(&x);
                weights.extend_from_slice(&w);
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
                panel_nodes: panels.iter().map(|p| p.values.len()).collect(),
            });
        }
        // One call for the round: the extensions' 16 nodes and the halves' 15 + 15.
        let mut alphas = Vec::with_capacity(cost);
        for (p, _) in panels.iter().zip(&refine).filter(|(_, &r)| r) {
            if p.splits() {
                alphas.extend_from_slice(&kronrod_nodes(&bisect(std::iter::once((p.a, p.b)))).0);
            } else {
                alphas.extend_from_slice(&patterson_extension(p.a, p.b));
            }
        }
        let v = call(&alphas)?;
        points_used += cost;
        let mut rest = v.as_slice();
        let mut next = Vec::with_capacity(panels.len() + refine.len());
        for (p, r) in panels.into_iter().zip(refine) {
            if !r {
                next.push(p);
            } else if p.splits() {
                let m = 0.5 * (p.a + p.b);
                next.push(Panel::new(p.a, m, rest[..15].to_vec())?);
                next.push(Panel::new(m, p.b, rest[15..30].to_vec())?);
                rest = &rest[30..];
            } else {
                next.push(p.extend(&rest[..16])?);
                rest = &rest[16..];
            }
        }
        panels = next;
    }
}

/// The first round's panels must be at least one and fit the point budget.
pub(super) fn check_start_panels(
    op: &'static str,
    start_panels: usize,
    max_points: usize,
) -> Result<()> {
    if start_panels == 0 || 15 * start_panels > max_points {
        return Err(Error::Invalid {
            op,
            detail: format!(
                "{start_panels} panels need {} points but the budget is {max_points}",
                15 * start_panels
            ),
        });
    }
    Ok(())
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
pub(super) fn bisect(panels: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    panels
        .flat_map(|(a, b)| {
            let m = 0.5 * (a + b);
            [(a, m), (m, b)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterson31_extends_k15_and_is_exact_to_degree_47() {
        let (a, b) = (0.25, 0.75);
        let (x, wp, wk) = patterson31(a, b);
        let (xk, wk15, _) = kronrod15(a, b);
        assert!(x.windows(2).all(|w| w[0] < w[1]));
        assert!(wp.iter().all(|&w| w > 0.0));
        // The Kronrod nodes are kept bit for bit, with their K15 weights beside them.
        let kept: Vec<f64> = x
            .iter()
            .zip(&wk)
            .filter(|p| *p.1 != 0.0)
            .map(|p| *p.0)
            .collect();
        assert_eq!(kept.len(), 15);
        for (k, (p, q)) in kept.iter().zip(&xk).enumerate() {
            assert_eq!(p.to_bits(), q.to_bits(), "node {k}");
        }
        let kw: Vec<f64> = wk.iter().copied().filter(|&w| w != 0.0).collect();
        assert_eq!(kw, wk15.to_vec());
        // ∫_a^b (α − c)^d dα, c the centre: exact up to degree 47 (relative to the panel scale).
        let (c, h) = (0.5 * (a + b), 0.5 * (b - a));
        for d in 0..=47i32 {
            let q: f64 = x.iter().zip(&wp).map(|(x, w)| w * (x - c).powi(d)).sum();
            let exact = if d % 2 == 0 {
                2.0 * h.powi(d + 1) / (d + 1) as f64
            } else {
                0.0
            };
            assert!(
                (q - exact).abs() <= 1e-15 * h.powi(d),
                "degree {d}: {q} vs {exact}"
            );
        }
    }

    #[test]
    fn a_bend_inside_one_panel_is_extended_before_it_is_bisected() {
        // A bump at α = 0.4 on a smooth background, like MiniLM's IG integrand.
        let f = |a: f64| 0.1 * a + (-((a - 0.4) / 0.06).powi(2)).exp();
        let exact = {
            let (x, w) = crate::integrate::Rule::GaussLegendre
                .nodes_weights(400)
                .unwrap();
            x.iter().zip(&w).map(|(x, w)| w * f(*x)).sum::<f64>()
        };
        let mut seen = std::collections::HashSet::new();
        let mut calls = 0;
        let r = refine_panels(
            2,
            10_000,
            1e-10,
            Stop::Completeness { exact },
            |a: &[f64]| {
                calls += 1;
                for x in a {
                    assert!(seen.insert(x.to_bits()), "α = {x} evaluated twice");
                }
                Ok(a.iter().map(|&x| f(x)).collect())
            },
        )
        .unwrap();
        assert!(r.converged && r.delta <= 1e-10, "{r:?}");
        // Every evaluated point is in the final rule unless its panel was bisected.
        assert_eq!(r.points_used, seen.len());
        assert_eq!(r.trajectory.len(), calls);
        assert_eq!(r.alphas.len(), r.panel_nodes.iter().sum::<usize>());
        assert!(r.panel_nodes.contains(&31), "{:?}", r.panel_nodes);
        // The second round only extended [0, 0.5] (16 new points), the one with the bump.
        assert_eq!(r.trajectory[1].new_points, 16, "{:?}", r.trajectory);
        let q: f64 = r.weights.iter().zip(&r.values).map(|(w, v)| w * v).sum();
        assert!((q - r.estimate).abs() < 1e-14);
        for (k, x) in r.alphas.iter().enumerate() {
            assert_eq!(r.values[k], f(*x));
        }
    }

    #[test]
    fn a_panel_far_from_polynomial_is_bisected_at_once() {
        // A sharp step at α = 0.35: K15 and G7 disagree by far more than EXTEND_MAX of the panel,
        // so the second round bisects [0, 0.5] (30 new points) instead of extending it (16).
        let s = 500.0;
        let f = |a: f64| s * (-(s * (a - 0.35))).exp() / (1.0 + (-(s * (a - 0.35))).exp()).powi(2);
        let exact = 1.0 / (1.0 + (-(s * 0.65f64)).exp()) - 1.0 / (1.0 + (s * 0.35f64).exp());
        let r = refine_panels(
            2,
            20_000,
            1e-9,
            Stop::Completeness { exact },
            |a: &[f64]| Ok(a.iter().map(|&x| f(x)).collect()),
        )
        .unwrap();
        assert!(r.converged, "{:?}", r.trajectory);
        assert_eq!(r.trajectory[1].new_points, 30, "{:?}", r.trajectory);
    }
}
