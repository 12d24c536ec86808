//! Quadrature on the path parameter α ∈ [0, 1]: pure math, no tensors.
//!
//! A path method (IG, layer IG, conductance, ATTATTR, LIG) approximates ∫₀¹ g(α) dα by
//! Σ_k w_k g(α_k). This module owns the nodes α_k and weights w_k ([`Rule::nodes_weights`]), what
//! Captum uses number for number ([`captum_exact`]), composite Gauss–Legendre panels
//! ([`Rule::composite_gauss_legendre`]), the split of path points into batches ([`chunks`]) and the
//! adaptive driver behind `--tolerance` ([`refine`]). See `docs/QUADRATURE.md`.
//!
//! | rule (CLI name) | α_k, k = 0..n−1 | w_k | Σ w | n |
//! |---|---|---|---|---|
//! | `gauss-legendre` (default) | ½(1 + ξ_k) | ½ ω_k, (ξ, ω) = numpy `leggauss(n)` | 1 | ≥ 1 |
//! | `riemann-left` | k/n | 1/n | 1 | ≥ 1 |
//! | `riemann-right` | (k+1)/n | 1/n | 1 | ≥ 1 |
//! | `riemann-middle` | (k+½)/n | 1/n | 1 | ≥ 1 |
//! | `riemann-trapezoid` | k/(n−1) | h = 1/(n−1), ends h/2 | 1 | ≥ 2 |
//! | `captum-trapezoid` | k/(n−1) | 1/n, ends 1/(2n) | (n−1)/n | ≥ 2 |
//! | `clenshaw-curtis` | sin²(kπ/2(n−1)) | classical CC weights ([`nested::clenshaw_curtis`]) | 1 | ≥ 2 |
//! | `tanh-sinh` | ½(1 + tanh(½π sinh t_k)), t_k = (2k−n+1)·3/(n−1) | trapezoid in t ([`nested::tanh_sinh`]) | 1 − O(1e−12) | ≥ 3 |
//! | `gauss-kronrod` | K15 nodes on round(n/15) equal panels | K15 weights | 1 | 15 per panel |
//!
//! ```
//! use gradpath::integrate::Rule;
//! // ∫₀¹ 3α² dα = 1: Gauss–Legendre with 2 nodes is exact for cubics.
//! let (alphas, weights) = Rule::GaussLegendre.nodes_weights(2).unwrap();
//! let q: f64 = alphas.iter().zip(&weights).map(|(a, w)| w * 3.0 * a * a).sum();
//! assert!((q - 1.0).abs() < 1e-15);
//! // Captum's trapezoid weights sum to (n − 1)/n.
//! let (_, w) = Rule::CaptumTrapezoid.nodes_weights(4).unwrap();
//! assert!((w.iter().sum::<f64>() - 0.75).abs() < 1e-15);
//! ```

mod captum;
mod gauss;
pub mod kronrod;
pub mod nested;
mod refine;
mod vec_panels;

pub use captum::{captum_exact, captum_name, torch_linspace_f32};
pub use kronrod::{panel_rule_pair, refine_panels};
pub use refine::{refine, Attempt, Refined, Stop};
pub use vec_panels::{refine_panels_vec, VecPanels};

use crate::{Error, Result};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// ‖v‖₂.
pub(crate) fn l2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// `x / norm`, or `x` itself when the norm is 0 (a relative error that stays defined).
pub(crate) fn relative_to(x: f64, norm: f64) -> f64 {
    if norm > 0.0 {
        x / norm
    } else {
        x
    }
}

/// A quadrature rule on [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Rule {
    /// Gauss–Legendre: exact for polynomials of degree ≤ 2n − 1; the default.
    #[default]
    GaussLegendre,
    /// Left Riemann sum, α = k/n; error O(1/n).
    RiemannLeft,
    /// Right Riemann sum, α = (k+1)/n; error O(1/n).
    RiemannRight,
    /// Midpoint rule, α = (k+½)/n; error O(1/n²).
    RiemannMiddle,
    /// Textbook trapezoid on α = k/(n−1), weights summing to 1; error O(1/n²).
    RiemannTrapezoid,
    /// Captum's `riemann_trapezoid`: α = k/(n−1) with weights 1/n and ends 1/(2n), which sum to
    /// (n−1)/n, so results are the textbook trapezoid × (n−1)/n. For parity tests only.
    CaptumTrapezoid,
    /// Clenshaw–Curtis: α = sin²(kπ/2(n−1)), ends included; nested at n → 2n − 1; near-Gauss
    /// accuracy for smooth integrands.
    ClenshawCurtis,
    /// tanh–sinh (double exponential): nodes crowd double-exponentially towards both ends, where
    /// a zero baseline into a norm layer makes F jump; nested at n → 2n − 1; n ≥ 3.
    TanhSinh,
    /// Composite Gauss–Kronrod: the 15-point Kronrod rule on round(n/15) equal panels (so the
    /// rule uses 15·⌈…⌉ points, which may differ from n); each panel's embedded 7-point Gauss rule
    /// gives an error estimate (`--tolerance` with `--adaptive panels` bisects where it is large).
    GaussKronrod,
}

impl Rule {
    /// Every rule, in the order of the CLI help.
    pub const ALL: [Rule; 9] = [
        Rule::GaussLegendre,
        Rule::RiemannLeft,
        Rule::RiemannRight,
        Rule::RiemannMiddle,
        Rule::RiemannTrapezoid,
        Rule::CaptumTrapezoid,
        Rule::ClenshawCurtis,
        Rule::TanhSinh,
        Rule::GaussKronrod,
    ];

    /// The CLI name (`gauss-legendre`, `riemann-left`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Rule::GaussLegendre => "gauss-legendre",
            Rule::RiemannLeft => "riemann-left",
            Rule::RiemannRight => "riemann-right",
            Rule::RiemannMiddle => "riemann-middle",
            Rule::RiemannTrapezoid => "riemann-trapezoid",
            Rule::CaptumTrapezoid => "captum-trapezoid",
            Rule::ClenshawCurtis => "clenshaw-curtis",
            Rule::TanhSinh => "tanh-sinh",
            Rule::GaussKronrod => "gauss-kronrod",
        }
    }

    /// Parses a rule name (exact, lower case, as [`Rule::name`] spells it). Unknown names give an
    /// [`Error::Unknown`] that lists the valid ones.
    pub fn parse(s: &str) -> Result<Rule> {
        Rule::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| Error::Unknown {
                what: "quadrature rule",
                value: s.to_string(),
                valid: Rule::ALL.map(|r| r.name().to_string()).to_vec(),
            })
    }

    /// The fewest points the rule is defined for: 2 for the two trapezoid rules and
    /// Clenshaw–Curtis (their nodes are spaced by 1/(n−1) or its cosine image), 3 for tanh–sinh,
    /// 1 otherwise.
    pub fn min_points(self) -> usize {
        match self {
            Rule::RiemannTrapezoid | Rule::CaptumTrapezoid | Rule::ClenshawCurtis => 2,
            Rule::TanhSinh => 3,
            _ => 1,
        }
    }

    /// The number of points the rule really uses when asked for n: n, except for
    /// `gauss-kronrod`, which uses 15 per panel on round(n/15) panels (at least one).
    pub fn actual_points(self, n: usize) -> usize {
        match self {
            Rule::GaussKronrod => 15 * nested::kronrod_panels(n),
            _ => n,
        }
    }

    /// Whether the rule at [`Rule::refined_n`] points contains every node of the rule at n, so a
    /// refinement costs only the new points.
    pub fn nests(self) -> bool {
        !matches!(self, Rule::GaussLegendre | Rule::GaussKronrod)
    }

    /// Nodes α (ascending, in [0, 1]) and weights w of the n-point rule; see the table in the
    /// module docs. All values are computed in f64 (k/n and friends correctly rounded; Gauss–Legendre
    /// by Newton iteration, within a few ulps of numpy's `leggauss`). For what Captum actually
    /// uses (f32-rounded weights, f32 linspace alphas) see [`captum_exact`].
    ///
    /// Errors: n below [`Rule::min_points`]; n above 65536 for Gauss–Legendre (O(n²) setup).
    pub fn nodes_weights(self, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        const OP: &str = "integrate::nodes_weights";
        if n < self.min_points() {
            return Err(Error::Invalid {
                op: OP,
                detail: format!(
                    "{} needs n ≥ {} points, got n = {n}",
                    self.name(),
                    self.min_points()
                ),
            });
        }
        let nf = n as f64;
        let riemann = |alpha: &dyn Fn(f64) -> f64| -> (Vec<f64>, Vec<f64>) {
            ((0..n).map(|k| alpha(k as f64)).collect(), vec![1.0 / nf; n])
        };
        Ok(match self {
            Rule::GaussLegendre => {
                if n > gauss::MAX_GAUSS_N {
                    return Err(Error::Invalid {
                        op: OP,
                        detail: format!(
                            "gauss-legendre supports n ≤ {}, got n = {n}",
                            gauss::MAX_GAUSS_N
                        ),
                    });
                }
                let (xi, omega) = gauss::legendre(n);
                (
                    xi.iter().map(|&x| 0.5 * (1.0 + x)).collect(),
                    omega.iter().map(|&w| 0.5 * w).collect(),
                )
            }
            Rule::RiemannLeft => riemann(&|k| k / nf),
            Rule::RiemannRight => riemann(&|k| (k + 1.0) / nf),
            Rule::RiemannMiddle => riemann(&|k| (2.0 * k + 1.0) / (2.0 * nf)),
            Rule::RiemannTrapezoid => {
                let m = (n - 1) as f64;
                let mut w = vec![1.0 / m; n];
                w[0] = 0.5 / m;
                w[n - 1] = 0.5 / m;
                ((0..n).map(|k| k as f64 / m).collect(), w)
            }
            Rule::CaptumTrapezoid => {
                let m = (n - 1) as f64;
                let mut w = vec![1.0 / nf; n];
                w[0] = 0.5 / nf;
                w[n - 1] = 0.5 / nf;
                ((0..n).map(|k| k as f64 / m).collect(), w)
            }
            Rule::ClenshawCurtis | Rule::TanhSinh | Rule::GaussKronrod
                if n > nested::MAX_POINTS =>
            {
                return Err(Error::Invalid {
                    op: OP,
                    detail: format!(
                        "{} supports n ≤ {}, got n = {n}",
                        self.name(),
                        nested::MAX_POINTS
                    ),
                });
            }
            Rule::ClenshawCurtis => nested::clenshaw_curtis(n),
            Rule::TanhSinh => nested::tanh_sinh(n),
            Rule::GaussKronrod => nested::composite_kronrod(nested::kronrod_panels(n)),
        })
    }

    /// Composite Gauss–Legendre: an `n_per_panel`-point Gauss–Legendre rule on each panel [a, b],
    /// α = a + (b − a)·½(1 + ξ), w = (b − a)·½ω. Panels must satisfy 0 ≤ a < b ≤ 1 and be given in
    /// increasing, non-overlapping order (so the nodes come out ascending); they need not cover
    /// [0, 1] (the weights sum to the total panel length). Use it to put more points where the
    /// integrand bends; [`uniform_panels`] gives equal panels.
    pub fn composite_gauss_legendre(
        panels: &[(f64, f64)],
        n_per_panel: usize,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        const OP: &str = "integrate::composite_gauss_legendre";
        if panels.is_empty() {
            return Err(Error::Invalid {
                op: OP,
                detail: "no panels given".into(),
            });
        }
        let mut prev_end = 0.0;
        for (i, &(a, b)) in panels.iter().enumerate() {
            if !(a.is_finite() && b.is_finite() && 0.0 <= a && a < b && b <= 1.0) {
                return Err(Error::Invalid {
                    op: OP,
                    detail: format!("panel {i} = [{a}, {b}] is not a subinterval 0 ≤ a < b ≤ 1"),
                });
            }
            if a < prev_end {
                return Err(Error::Invalid {
                    op: OP,
                    detail: format!(
                        "panel {i} = [{a}, {b}] starts before the previous panel ends ({prev_end})"
                    ),
                });
            }
            prev_end = b;
        }
        let (unit_a, unit_w) = Rule::GaussLegendre.nodes_weights(n_per_panel)?;
        let mut alphas = Vec::with_capacity(panels.len() * n_per_panel);
        let mut weights = Vec::with_capacity(panels.len() * n_per_panel);
        for &(a, b) in panels {
            let len = b - a;
            alphas.extend(unit_a.iter().map(|&t| a + len * t));
            weights.extend(unit_w.iter().map(|&w| len * w));
        }
        Ok((alphas, weights))
    }

    /// The n the adaptive driver tries after n, chosen so the new nodes contain the old ones when
    /// the rule allows it: 2n for left/right (k/n = 2k/2n), 3n for the midpoint rule, 2n − 1 for
    /// the trapezoids, Clenshaw–Curtis and tanh–sinh (k/(n−1) = 2k/(2n−2) in their own
    /// variable). Gauss–Legendre doubles (its nodes never nest), composite Gauss–Kronrod doubles
    /// its panels (bisected panels get new nodes).
    pub fn refined_n(self, n: usize) -> usize {
        match self {
            Rule::GaussLegendre | Rule::RiemannLeft | Rule::RiemannRight => n.saturating_mul(2),
            Rule::GaussKronrod => self.actual_points(n).saturating_mul(2),
            Rule::RiemannMiddle => n.saturating_mul(3),
            Rule::RiemannTrapezoid
            | Rule::CaptumTrapezoid
            | Rule::ClenshawCurtis
            | Rule::TanhSinh => n.saturating_mul(2).saturating_sub(1),
        }
    }
}

impl FromStr for Rule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Rule> {
        Rule::parse(s)
    }
}

/// A rule serialises as its CLI name.
impl serde::Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `panels` equal panels [i/panels, (i+1)/panels] covering [0, 1] (`panels` = 0 gives an error).
pub fn uniform_panels(panels: usize) -> Result<Vec<(f64, f64)>> {
    if panels == 0 {
        return Err(Error::Invalid {
            op: "integrate::uniform_panels",
            detail: "need at least one panel".into(),
        });
    }
    let p = panels as f64;
    Ok((0..panels)
        .map(|i| (i as f64 / p, (i + 1) as f64 / p))
        .collect())
}

/// Splits path points 0..n_points into consecutive batches of at most `batch` points (the last
/// one may be shorter). `n_points` = 0 gives no batches; `batch` = 0 is an [`Error::Invalid`].
pub fn chunks(n_points: usize, batch: usize) -> Result<Vec<Range<usize>>> {
    if batch == 0 {
        return Err(Error::Invalid {
            op: "integrate::chunks",
            detail: "batch size must be at least 1 path point".into(),
        });
    }
    Ok((0..n_points)
        .step_by(batch)
        .map(|s| s..(s + batch).min(n_points))
        .collect())
}
