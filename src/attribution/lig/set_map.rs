//! Set-to-set IG of **any** set map written with tape ops, outside a model: the definition of
//! LIG_SPEC §2 applied to a function `F: R^{T×d} → R^{T×d′}` given as a closure. It is the
//! reference the hand-checkable vectors of LIG_SPEC §10.2 are checked against (linear maps,
//! a fixed-attention head, scalar nonlinear maps, softmax attention with zero and ITB
//! baselines), and a way to learn how the per-layer maps of [`super::Lig`] are defined:
//!
//! `M[i][j] = Σ_k Δ_{i,k} Σ_a w_a ∂g_j/∂y_{i,k}(X′ + α_a Δ)`, `g_j(Y) = ‖F(Y)_j − F(X′)_j‖₂`,
//! `Δ = X − X′`; a point where `α = 0` or the residual `F(Y)_j − F(X′)_j` is 0 contributes 0
//! (LIG_SPEC's convention, the same as [`super::Lig`]'s). Completeness per column:
//! `Σ_i M[i][j] = g_j(X)` up to the quadrature error.
//!
//! One forward and one backward per (target, path point), unbatched: meant for small maps. A
//! model's layers run through [`super::Lig`], which batches rows.
//!
//! ```
//! use gradpath::attribution::lig::{set_map_ig, LigConfig, TokenReduce};
//! use gradpath::integrate::Rule;
//! use gradpath::{DType, Tensor, Var};
//! # fn main() -> gradpath::Result<()> {
//! // F_j(Y) = y_1 + y_2 for every j (LIG_SPEC TV1): IG = projection of each message on the total.
//! let sum = Var::constant(Tensor::from_f64(&[1.0; 4], &[2, 2], DType::F64)?);
//! let f = |y: &Var| sum.matmul(y);
//! let x = Tensor::from_f64(&[3.0, 0.0, 0.0, 4.0], &[2, 2], DType::F64)?;
//! let zero = Tensor::zeros(&[2, 2], DType::F64);
//! let cfg = LigConfig::new(Rule::GaussLegendre, 4)?;
//! let m = set_map_ig(&f, &x, &[zero], &[0], &cfg, TokenReduce::Sum)?;
//! assert!((m.matrix[0][0] - 1.8).abs() < 1e-12 && (m.matrix[1][0] - 3.2).abs() < 1e-12);
//! assert!(m.max_relative_delta() < 1e-12);
//! # Ok(())
//! # }
//! ```

use super::{LigConfig, TokenMap};
use crate::{Error, Result, Tape, Tensor, Var};

/// How a source token's per-coordinate attributions become one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenReduce {
    /// `Σ_k` over the hidden axis: completeness holds per column (gradpath's maps).
    Sum,
    /// `‖·‖₂` over the hidden axis: what the LIG package ships for its encoder ATT maps
    /// (LIG_SPEC §10.1 item 5); always ≥ 0, and completeness fails (TV3n).
    L2,
}

fn invalid(detail: String) -> Error {
    Error::Invalid {
        op: "set_map_ig",
        detail,
    }
}

/// Row `j` of `F(v)` as f64, checking that `F` gives `[T, d′]`.
fn output(f: &dyn Fn(&Var) -> Result<Var>, v: &Var, t: usize) -> Result<(Var, Vec<f64>)> {
    let out = f(v)?;
    if out.shape().len() != 2 || out.shape()[0] != t {
        return Err(invalid(format!(
            "the map must give [{t}, d′] for [{t}, d] inputs, it gave {:?}",
            out.shape()
        )));
    }
    let values = out.value().to_vec_f64()?;
    Ok((out, values))
}

/// Set-to-set IG of `f` (a closure over tape ops, `[T, d]` → `[T, d′]`) from `baselines` to
/// `x`, for the target rows `targets`. `baselines` holds one baseline shared by every target
/// (e.g. zero) or one per target, in the order of `targets` (e.g. ITB: every row `x_j`). The
/// quadrature is `cfg`'s nodes and weights. Returns the `T × T` map (columns outside
/// `targets` are 0) with `g_j(X)` per target, so [`TokenMap::relative_delta`] is the
/// completeness check.
pub fn set_map_ig(
    f: &dyn Fn(&Var) -> Result<Var>,
    x: &Tensor,
    baselines: &[Tensor],
    targets: &[usize],
    cfg: &LigConfig,
    reduce: TokenReduce,
) -> Result<TokenMap> {
    let shape = x.shape().to_vec();
    if shape.len() != 2 {
        return Err(invalid(format!("x must be [T, d], got {shape:?}")));
    }
    let (t, d) = (shape[0], shape[1]);
    if baselines.len() != 1 && baselines.len() != targets.len() {
        return Err(invalid(format!(
            "give one shared baseline or one per target: {} baselines for {} targets",
            baselines.len(),
            targets.len()
        )));
    }
    for b in baselines {
        b.same_shape("set_map_ig baseline", x)?;
    }
    if let Some(&j) = targets.iter().find(|&&j| j >= t) {
        return Err(Error::OutOfRange {
            what: "target token",
            index: j,
            len: t,
        });
    }
    let xv = x.to_vec_f64()?;
    let mut matrix = vec![vec![0.0; t]; t];
    let mut target_norm = Vec::with_capacity(targets.len());
    let mut rows = 0;
    for (k, &j) in targets.iter().enumerate() {
        let b = &baselines[if baselines.len() == 1 { 0 } else { k }];
        let bv = b.to_vec_f64()?;
        let (fb, dp) = {
            let (out, v) = output(f, &Var::constant(b.clone()), t)?;
            let dp = out.shape()[1];
            (v[j * dp..(j + 1) * dp].to_vec(), dp)
        };
        let (_, fx) = output(f, &Var::constant(x.clone()), t)?;
        let norm = |r: &[f64]| -> f64 {
            r.iter()
                .zip(&fb)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f64>()
                .sqrt()
        };
        target_norm.push(norm(&fx[j * dp..(j + 1) * dp]));
        let mut acc = vec![0.0; t * d];
        for (&a, &w) in cfg.alphas.iter().zip(&cfg.weights) {
            if a == 0.0 || w == 0.0 {
                continue;
            }
            let yv: Vec<f64> = if a == 1.0 {
                xv.clone()
            } else {
                xv.iter().zip(&bv).map(|(x, b)| b + a * (x - b)).collect()
            };
            let tape = Tape::new();
            let y = tape.var(Tensor::from_f64(&yv, &shape, x.dtype())?);
            let (out, ov) = output(f, &y, t)?;
            if out.shape()[1] != dp {
                return Err(invalid(
                    "the map's output width changed along the path".into(),
                ));
            }
            rows += 1;
            let r = &ov[j * dp..(j + 1) * dp];
            let g = norm(r);
            if g == 0.0 {
                continue;
            }
            let mut seed = vec![0.0; t * dp];
            for ((s, a), b) in seed[j * dp..(j + 1) * dp].iter_mut().zip(r).zip(&fb) {
                *s = (a - b) / g;
            }
            let seed = Tensor::from_f64(&seed, out.shape(), out.dtype())?;
            let Some(grad) = tape.grad(&[&out], &[seed], &[&y])?.remove(0) else {
                continue; // the map does not depend on its input
            };
            for ((o, g), (x, b)) in acc
                .iter_mut()
                .zip(grad.to_vec_f64()?)
                .zip(xv.iter().zip(&bv))
            {
                *o += w * g * (x - b);
            }
        }
        for (i, row) in matrix.iter_mut().enumerate() {
            let c = &acc[i * d..(i + 1) * d];
            row[j] = match reduce {
                TokenReduce::Sum => c.iter().sum(),
                TokenReduce::L2 => c.iter().map(|v| v * v).sum::<f64>().sqrt(),
            };
        }
    }
    Ok(TokenMap {
        matrix,
        targets: targets.to_vec(),
        target_norm,
        rows,
    })
}
