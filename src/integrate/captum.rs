//! The quadrature Captum 0.9 actually uses, number for number.
//!
//! Read from `captum/attr/_utils/approximation_methods.py` and
//! `captum/attr/_core/integrated_gradients.py` (Captum 0.9.0, torch 2.5.1):
//!
//! - **Weights** (`step_sizes`) are Python floats (f64): `1 / n` for the Riemann methods (the two
//!   trapezoid ends then `/= 2`), `0.5 * leggauss(n)[1]` for `gausslegendre`. `_attribute`
//!   multiplies the gradients by `torch.tensor(step_sizes).float()`, so every weight is **rounded
//!   to f32**. With a float64 model the product promotes back to f64, so the weights Captum uses
//!   are exactly `(w as f32) as f64`.
//! - **Riemann alphas** come from `torch.linspace(start, end, n).tolist()`, i.e. **f32 values**
//!   (torch's default dtype), computed by torch's own f32 linspace algorithm, which is *not* the
//!   f32 rounding of k/n: for about one n in ten the two differ by an ulp somewhere. We reproduce
//!   the algorithm (see [`torch_linspace_f32`]).
//! - **Gauss–Legendre alphas** are numpy f64 `0.5 * (1 + x)` and are **not rounded**: with a
//!   float64 model Captum interpolates with the full f64 node.
//!
//! With a float32 model every alpha is further rounded to f32 when it multiplies the f32 input
//! (ordinary f32 arithmetic, not a Captum quirk); the values here are what the float64 path sees.

use super::Rule;
use crate::{Error, Result};

/// torch 2.5.1's CPU `torch.linspace(start, end, n)` in float32, bit for bit.
///
/// `start` and `end` are rounded to f32; `step = (end − start) / (n − 1)` in f32; the first n/2
/// points are `fma(step, k, start)` and the rest `fma(−step, n − 1 − k, end)`, each rounded once to
/// f32 (the compiled kernel contracts the multiply-add). Checked against torch for every n in
/// 2..=3000 for the four Captum Riemann ranges. Requires n ≥ 2.
pub fn torch_linspace_f32(start: f64, end: f64, n: usize) -> Vec<f32> {
    debug_assert!(n >= 2);
    let s = start as f32;
    let e = end as f32;
    let step = (e - s) / ((n - 1) as f32);
    let half = n / 2;
    (0..n)
        .map(|k| {
            if k < half {
                step.mul_add(k as f32, s)
            } else {
                (-step).mul_add((n - 1 - k) as f32, e)
            }
        })
        .collect()
}

/// Captum's method name for `rule`, if Captum has that rule.
///
/// `riemann-trapezoid` (the textbook rule) has no Captum counterpart: Captum's `riemann_trapezoid`
/// is [`Rule::CaptumTrapezoid`].
pub fn captum_name(rule: Rule) -> Option<&'static str> {
    match rule {
        Rule::GaussLegendre => Some("gausslegendre"),
        Rule::RiemannLeft => Some("riemann_left"),
        Rule::RiemannRight => Some("riemann_right"),
        Rule::RiemannMiddle => Some("riemann_middle"),
        Rule::CaptumTrapezoid => Some("riemann_trapezoid"),
        Rule::RiemannTrapezoid | Rule::ClenshawCurtis | Rule::TanhSinh | Rule::GaussKronrod => None,
    }
}

/// The alphas and weights Captum 0.9 actually multiplies with, for the Captum method `rule` stands
/// for ([`captum_name`]), as f64 values (see the module docs for the source lines):
///
/// | rule | Captum method | alphas | weights |
/// |---|---|---|---|
/// | `gauss-legendre` | `gausslegendre` | f64 `0.5 * (1 + ξ)`, **not rounded** | `(0.5 ω) as f32` |
/// | `riemann-left` | `riemann_left` | f32 `torch.linspace(0, 1 − 1/n, n)` | `(1/n) as f32` |
/// | `riemann-right` | `riemann_right` | f32 `torch.linspace(1/n, 1, n)` | `(1/n) as f32` |
/// | `riemann-middle` | `riemann_middle` | f32 `torch.linspace(1/(2n), 1 − 1/(2n), n)` | `(1/n) as f32` |
/// | `captum-trapezoid` | `riemann_trapezoid` | f32 `torch.linspace(0, 1, n)` | `(1/n) as f32`, ends `(1/(2n)) as f32` |
///
/// Errors: `riemann-trapezoid` (no Captum counterpart); n = 0; n < 2 for the Riemann methods
/// (Captum asserts `n > 1` there and `n > 0` for `gausslegendre`).
pub fn captum_exact(rule: Rule, n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    const OP: &str = "integrate::captum_exact";
    let Some(name) = captum_name(rule) else {
        return Err(Error::Invalid {
            op: OP,
            detail: format!(
                "{} has no Captum counterpart (Captum's riemann_trapezoid is `captum-trapezoid`)",
                rule.name()
            ),
        });
    };
    let min = if rule == Rule::GaussLegendre { 1 } else { 2 };
    if n < min {
        return Err(Error::Invalid {
            op: OP,
            detail: format!("Captum's {name} needs n ≥ {min} points, got n = {n}"),
        });
    }
    if rule == Rule::GaussLegendre {
        // Captum's `gausslegendre`: our f64 nodes (numpy's within ulps), weights rounded to f32.
        let (alphas, weights) = rule.nodes_weights(n)?;
        return Ok((alphas, weights.into_iter().map(f32_round).collect()));
    }
    let nf = n as f64;
    let (start, end) = match rule {
        Rule::RiemannLeft => (0.0, 1.0 - 1.0 / nf),
        Rule::RiemannRight => (1.0 / nf, 1.0),
        Rule::RiemannMiddle => (1.0 / (2.0 * nf), 1.0 - 1.0 / (2.0 * nf)),
        _ => (0.0, 1.0), // CaptumTrapezoid
    };
    let alphas = torch_linspace_f32(start, end, n)
        .into_iter()
        .map(f64::from)
        .collect();
    let mut steps = vec![1.0 / nf; n];
    if rule == Rule::CaptumTrapezoid {
        steps[0] /= 2.0;
        steps[n - 1] /= 2.0;
    }
    let weights = steps.into_iter().map(f32_round).collect();
    Ok((alphas, weights))
}

/// `torch.tensor(x).float()` seen from f64: round to nearest f32, widen exactly.
fn f32_round(x: f64) -> f64 {
    x as f32 as f64
}
