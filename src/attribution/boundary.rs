//! The boundary API of the attribution methods: every method sees a model only through
//! [`Model::forward`] and its named boundaries ([`Hooks`]):
//! - **observe**: [`observe_path`] runs path points (rows of one batch) with the path boundary
//!   replaced, captures any set of boundaries and gets F, their values and ∂F/∂boundary from one
//!   backward (every boundary is an identity node on the tape, so one sweep serves all of them);
//! - **replace / patch**: [`Hooks::replace`] (a whole tensor) and [`Hooks::patch`] (per row, per
//!   token, per coordinate);
//! - **mask heads**: [`Hooks::mask_heads`].
//!
//! Plus the lookups the methods and the CLI need: the boundaries of a model and their shapes,
//! the per-layer names, the values at the path ends.

use super::ig::{PathProblem, Progress};
use crate::integrate::chunks;
use crate::models::{Batch, Hooks, Model};
use crate::{Error, Result, Tape, Tensor, Var};

/// Every boundary of `model` for this input, with its shape per batch row (batch axis dropped),
/// in forward order.
pub fn boundaries(
    model: &dyn Model,
    ids: &[usize],
    type_ids: &[usize],
) -> Result<Vec<(String, Vec<usize>)>> {
    let tape = Tape::new();
    let _g = tape.no_grad();
    let mut hooks = Hooks::new();
    model.forward(&Batch::repeat(ids, type_ids, 1), &mut hooks)?;
    Ok(hooks
        .seen()
        .iter()
        .map(|(n, s)| (n.clone(), s[1..].to_vec()))
        .collect())
}

/// The per-row shape of boundary `name`, or an error listing every valid name.
pub fn boundary_shape(all: &[(String, Vec<usize>)], name: &str) -> Result<Vec<usize>> {
    all.iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s.clone())
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
            Error::Input(format!(
                "unknown boundary `{name}`; this model has: {}",
                names.join(", ")
            ))
        })
}

/// Number of blocks: one more than the largest `l` of a `blocks.{l}.…` boundary.
pub fn n_layers(all: &[(String, Vec<usize>)]) -> usize {
    all.iter()
        .filter_map(|(n, _)| {
            n.strip_prefix("blocks.")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .map(|l| l + 1)
        .max()
        .unwrap_or(0)
}

/// `blocks.{l}.{suffix}` for the given layers (all layers when `None`), checked against the model.
pub fn layer_boundaries(
    all: &[(String, Vec<usize>)],
    suffix: &str,
    layers: Option<&[usize]>,
) -> Result<Vec<String>> {
    let n = n_layers(all);
    let ls: Vec<usize> = match layers {
        Some(ls) => ls.to_vec(),
        None => (0..n).collect(),
    };
    if ls.is_empty() {
        return Err(Error::Input("no layers selected".into()));
    }
    let mut out = Vec::with_capacity(ls.len());
    for l in ls {
        if l >= n {
            return Err(Error::Input(format!(
                "layer {l} is out of range: this model has {n} layers (0..{})",
                n.saturating_sub(1)
            )));
        }
        let name = format!("blocks.{l}.{suffix}");
        boundary_shape(all, &name)?;
        out.push(name);
    }
    Ok(out)
}

/// Rows `[x; x′]` stacked exactly (no arithmetic on the values).
fn stack(rows: &[&Tensor]) -> Result<Tensor> {
    let mut v = Vec::new();
    for r in rows {
        v.extend(r.to_vec_f64()?);
    }
    let mut shape = vec![rows.len()];
    shape.extend_from_slice(rows[0].shape());
    Tensor::from_f64(&v, &shape, rows[0].dtype())
}

/// Values of boundary `name` and F at the path ends: `(y(x), y(x′), F(x), F(x′))`, from one
/// forward of two rows with x and x′ (exact) at the path boundary.
pub fn boundary_ends(p: &PathProblem, name: &str) -> Result<(Tensor, Tensor, f64, f64)> {
    p.check()?;
    let tape = Tape::new();
    let _g = tape.no_grad();
    let rows = stack(&[p.input, p.baseline])?;
    let mut hooks = Hooks::new()
        .replace(p.boundary, Var::constant(rows))
        .capture(&[name]);
    let out = p
        .model
        .forward(&Batch::repeat(p.ids, p.type_ids, 2), &mut hooks)?;
    let f = p.target.eval(&out)?.value().to_vec_f64()?;
    let y = hooks
        .get(name)
        .ok_or_else(|| Error::Input(format!("unknown boundary `{name}`")))?
        .value()
        .clone();
    let per: Vec<usize> = y.shape()[1..].to_vec();
    let v = y.to_vec_f64()?;
    let n = v.len() / 2;
    let y1 = Tensor::from_f64(&v[..n], &per, y.dtype())?;
    let y0 = Tensor::from_f64(&v[n..], &per, y.dtype())?;
    Ok((y1, y0, f[0], f[1]))
}

/// What one path point gives: F, and per requested boundary its value and ∂F/∂boundary
/// (row-major over the boundary's per-row shape, f64; zeros where F does not depend on it).
pub struct PointObs<'v> {
    /// Index of the point in the `alphas` given.
    pub k: usize,
    /// Per-row shape of each requested boundary.
    pub shapes: &'v [Vec<usize>],
    pub f: f64,
    pub values: Vec<&'v [f64]>,
    pub grads: Vec<&'v [f64]>,
    /// ∂F at the path boundary, when asked for.
    pub input_grad: Option<&'v [f64]>,
}

/// Per-point consumer of [`observe_path`].
pub type ObsVisit<'a> = &'a mut dyn FnMut(PointObs) -> Result<()>;

/// Runs the path points `x′ + α_k(x − x′)` (rows of batches of `batch`), captures the boundaries
/// `names`, and gets ∂F at all of them (and at the path boundary if `input_grad`) from **one**
/// backward per batch. Points are visited in the order of `alphas`.
pub fn observe_path(
    p: &PathProblem,
    alphas: &[f64],
    names: &[String],
    input_grad: bool,
    batch: usize,
    progress: Progress,
    visit: ObsVisit,
) -> Result<()> {
    p.check()?;
    if names.is_empty() {
        return Err(Error::Input("no boundaries to observe".into()));
    }
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    for r in chunks(alphas.len(), batch)? {
        let rows = r.len();
        let tape = Tape::new();
        let pts = tape.var(p.points(&alphas[r.clone()])?);
        let mut hooks = Hooks::new()
            .replace(p.boundary, pts.clone())
            .capture(&name_refs);
        let out = p
            .model
            .forward(&Batch::repeat(p.ids, p.type_ids, rows), &mut hooks)?;
        let f = p.target.eval(&out)?;
        drop(out);
        let vars: Vec<Var> = names
            .iter()
            .map(|n| {
                hooks.get(n).cloned().ok_or_else(|| {
                    let all: Vec<(String, Vec<usize>)> = hooks.seen().to_vec();
                    match boundary_shape(&all, n) {
                        Err(e) => e,
                        Ok(_) => Error::Msg(format!("internal: boundary `{n}` was not captured")),
                    }
                })
            })
            .collect::<Result<_>>()?;
        drop(hooks);
        let shapes: Vec<Vec<usize>> = vars.iter().map(|v| v.shape()[1..].to_vec()).collect();
        let fv = f.value().to_vec_f64()?;
        let mut wrt: Vec<&Var> = vars.iter().collect();
        if input_grad {
            wrt.push(&pts);
        }
        let seed = Tensor::ones(f.shape(), f.dtype());
        let grads = tape.grad(&[&f], &[seed], &wrt)?;
        let values: Vec<Vec<f64>> = vars
            .iter()
            .map(|v| v.value().to_vec_f64())
            .collect::<Result<_>>()?;
        let grads: Vec<Vec<f64>> = grads
            .into_iter()
            .zip(wrt.iter())
            .map(|(g, v)| match g {
                Some(g) => g.to_vec_f64(),
                None => Ok(vec![0.0; v.value().numel()]),
            })
            .collect::<Result<_>>()?;
        drop(vars);
        for (i, k) in r.clone().enumerate() {
            let slice = |v: &'_ Vec<f64>| {
                let per = v.len() / rows;
                (i * per, (i + 1) * per)
            };
            let vals: Vec<&[f64]> = values
                .iter()
                .map(|v| {
                    let (a, b) = slice(v);
                    &v[a..b]
                })
                .collect();
            let gs: Vec<&[f64]> = grads
                .iter()
                .map(|v| {
                    let (a, b) = slice(v);
                    &v[a..b]
                })
                .collect();
            let (gs, ig) = if input_grad {
                let (last, rest) = gs.split_last().expect("input gradient requested");
                (rest.to_vec(), Some(*last))
            } else {
                (gs, None)
            };
            visit(PointObs {
                k,
                shapes: &shapes,
                f: fv[i],
                values: vals,
                grads: gs,
                input_grad: ig,
            })?;
        }
        progress(r.end, alphas.len());
    }
    Ok(())
}

/// Sums per position of a per-row tensor of `shape`: over every other axis when the first axis
/// has `pos` entries (`[pos, d_model]`, `[pos, heads, d_head]`), per query position for
/// `[heads, query, key]` (attention scores and patterns); empty otherwise (e.g. pooled vectors).
pub fn per_position(shape: &[usize], pos: usize, v: &[f64]) -> Vec<f64> {
    if shape.first() == Some(&pos) && pos > 0 {
        let per = v.len() / pos;
        return v.chunks(per.max(1)).map(|c| c.iter().sum()).collect();
    }
    if shape.len() == 3 && shape[1] == pos && shape[2] == pos {
        let mut out = vec![0.0; pos];
        for (i, x) in v.iter().enumerate() {
            out[(i / pos) % pos] += x;
        }
        return out;
    }
    Vec::new()
}

/// F(x), F(x′) with x and x′ exactly at the path boundary.
pub fn ends(p: &PathProblem) -> Result<(f64, f64)> {
    p.check()?;
    let rows = stack(&[p.input, p.baseline])?;
    let f = p.values_at(&rows)?;
    Ok((f[0], f[1]))
}

/// The input of the path at another boundary: the values of `name` on the input and on the
/// baseline input (e.g. `embed.hook_out`, the Captum BERT tutorial's path space), for a
/// [`PathProblem`] at `name`.
pub fn path_at(p: &PathProblem, name: &str) -> Result<(Tensor, Tensor)> {
    let (y, y0, _, _) = boundary_ends(p, name)?;
    Ok((y, y0))
}
