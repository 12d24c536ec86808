//! The boundary API of the attribution methods, and the layer methods built on it: layer IG
//! (Captum `LayerIntegratedGradients`), layer conductance for any number of layers in **one sweep**
//! of path points (Captum `LayerConductance`), internal influence and neuron conductance.
//!
//! Methods see a model only through [`Model::forward`] and its named boundaries ([`Hooks`]):
//! - **observe**: [`observe_path`] runs path points (rows of one batch) with the path boundary
//!   replaced, captures any set of boundaries and gets F, their values and ∂F/∂boundary from one
//!   backward (every boundary is an identity node on the tape, so one sweep serves all of them);
//! - **replace / patch**: [`Hooks::replace`] (a whole tensor) and [`Hooks::patch`] (per row, per
//!   token, per coordinate);
//! - **mask heads**: [`Hooks::mask_heads`].
//!
//! Semantics follow `METHODS.md` §2.2–2.4. The input space is the path boundary of the
//! [`PathProblem`] (`hook_embed`, the word embeddings, unless the caller chooses another), with
//! the input x and baseline x′ given there; "F(x′)" is F with the baseline at the path boundary.

use super::ig::{integrated_gradients, PathProblem, Progress};
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

/// Attributions at one boundary.
#[derive(Debug, Clone)]
pub struct LayerAttribution {
    pub boundary: String,
    /// Per-row shape of the boundary.
    pub shape: Vec<usize>,
    /// Row-major over `shape`.
    pub per_coordinate: Vec<f64>,
    /// See [`per_position`].
    pub per_token: Vec<f64>,
    /// Σ of all attributions.
    pub total: f64,
    /// Σ attributions − (F(x) − F(x′)) (`None` for methods without completeness, e.g. internal
    /// influence).
    pub delta: Option<f64>,
    /// |delta| / |F(x) − F(x′)|.
    pub relative_delta: Option<f64>,
}

impl LayerAttribution {
    fn new(
        boundary: &str,
        shape: Vec<usize>,
        pos: usize,
        per_coordinate: Vec<f64>,
        df: Option<f64>,
    ) -> LayerAttribution {
        let total: f64 = per_coordinate.iter().sum();
        let per_token = per_position(&shape, pos, &per_coordinate);
        let delta = df.map(|df| total - df);
        let relative_delta = df.zip(delta).map(|(df, d)| {
            if df != 0.0 {
                d.abs() / df.abs()
            } else {
                d.abs()
            }
        });
        LayerAttribution {
            boundary: boundary.to_string(),
            shape,
            per_coordinate,
            per_token,
            total,
            delta,
            relative_delta,
        }
    }
}

/// The result of a layer method over one or more boundaries.
#[derive(Debug, Clone)]
pub struct LayerResult {
    pub layers: Vec<LayerAttribution>,
    pub f_input: f64,
    pub f_baseline: f64,
    /// α of every evaluated point (in evaluation order) and F there.
    pub path_alphas: Vec<f64>,
    pub path_f: Vec<f64>,
    /// Model passes spent on path points (rows).
    pub points_used: usize,
}

fn shapes_of(p: &PathProblem, names: &[String]) -> Result<Vec<Vec<usize>>> {
    let all = boundaries(p.model, p.ids, p.type_ids)?;
    names.iter().map(|n| boundary_shape(&all, n)).collect()
}

/// Layer Integrated Gradients at boundary `name` (Captum `LayerIntegratedGradients`): the
/// boundary is interpolated between its value on the baseline input, y(x′), and on the input,
/// y(x); `Attr = (y − y′) ⊙ Σ_k w_k ∂F/∂y(y′ + α_k(y − y′))`. The completeness delta uses F at the
/// real inputs, F(x) − F(x′), as Captum does.
pub fn layer_integrated_gradients(
    p: &PathProblem,
    name: &str,
    alphas: &[f64],
    weights: &[f64],
    batch: usize,
    progress: Progress,
) -> Result<LayerResult> {
    let shape = shapes_of(p, &[name.to_string()])?.remove(0);
    let (y, y0, fx, fb) = boundary_ends(p, name)?;
    let q = PathProblem {
        model: p.model,
        ids: p.ids,
        type_ids: p.type_ids,
        boundary: name,
        input: &y,
        baseline: &y0,
        target: p.target,
    };
    let r = integrated_gradients(&q, alphas, weights, batch, progress)?;
    let per = r
        .per_coordinate
        .ok_or_else(|| Error::Msg("internal: layer IG without per-coordinate values".into()))?;
    let layer = LayerAttribution::new(name, shape, p.ids.len(), per, Some(fx - fb));
    Ok(LayerResult {
        layers: vec![layer],
        f_input: fx,
        f_baseline: fb,
        path_alphas: r.path_alphas,
        path_f: r.path_f,
        points_used: r.points_used,
    })
}

/// Layer conductance (Captum `LayerConductance`) at every boundary of `names` from **one** sweep
/// of path points: with the n + 1 points `alphas` (Captum: `alphas_func(n_steps + 1)`),
/// `Cond = Σ_{k<n} ∂F/∂y(x_k) ⊙ (y(x_{k+1}) − y(x_k))` per boundary (gradient at the left point
/// times the forward difference; quadrature weights are not used). Only the previous point's
/// value and gradient are kept per boundary, so memory does not grow with the number of steps.
pub fn layer_conductance(
    p: &PathProblem,
    names: &[String],
    alphas: &[f64],
    batch: usize,
    progress: Progress,
) -> Result<LayerResult> {
    if alphas.len() < 2 {
        return Err(Error::Input(
            "conductance needs at least 2 path points (n_steps ≥ 1)".into(),
        ));
    }
    let (fx, fb) = ends(p)?;
    let mut shapes: Vec<Vec<usize>> = Vec::new();
    let mut acc: Vec<Vec<f64>> = Vec::new();
    let mut prev: Vec<Option<(Vec<f64>, Vec<f64>)>> = vec![None; names.len()];
    let mut path = Vec::with_capacity(alphas.len());
    observe_path(p, alphas, names, false, batch, progress, &mut |o| {
        if acc.is_empty() {
            shapes = o.shapes.to_vec();
            acc = o.values.iter().map(|v| vec![0.0; v.len()]).collect();
        }
        for (i, (y, g)) in o.values.iter().zip(&o.grads).enumerate() {
            match &mut prev[i] {
                Some((py, pg)) => {
                    for ((a, (yn, yp)), gp) in acc[i]
                        .iter_mut()
                        .zip(y.iter().zip(py.iter()))
                        .zip(pg.iter())
                    {
                        *a += gp * (yn - yp);
                    }
                    py.copy_from_slice(y);
                    pg.copy_from_slice(g);
                }
                None => prev[i] = Some((y.to_vec(), g.to_vec())),
            }
        }
        path.push((alphas[o.k], o.f));
        Ok(())
    })?;
    let layers = names
        .iter()
        .zip(shapes)
        .zip(acc)
        .map(|((n, s), a)| LayerAttribution::new(n, s, p.ids.len(), a, Some(fx - fb)))
        .collect();
    Ok(finish(layers, fx, fb, path))
}

/// Internal influence (Captum `InternalInfluence`) at every boundary of `names` from one sweep:
/// `Σ_k w_k ∂F/∂y(x_k)` (no multiplier, so no completeness delta).
pub fn internal_influence(
    p: &PathProblem,
    names: &[String],
    alphas: &[f64],
    weights: &[f64],
    batch: usize,
    progress: Progress,
) -> Result<LayerResult> {
    check_rule(alphas, weights)?;
    let (fx, fb) = ends(p)?;
    let mut shapes: Vec<Vec<usize>> = Vec::new();
    let mut acc: Vec<Vec<f64>> = Vec::new();
    let mut path = Vec::with_capacity(alphas.len());
    observe_path(p, alphas, names, false, batch, progress, &mut |o| {
        if acc.is_empty() {
            shapes = o.shapes.to_vec();
            acc = o.values.iter().map(|v| vec![0.0; v.len()]).collect();
        }
        let w = weights[o.k];
        for (a, g) in acc.iter_mut().zip(&o.grads) {
            a.iter_mut().zip(g.iter()).for_each(|(a, g)| *a += w * g);
        }
        path.push((alphas[o.k], o.f));
        Ok(())
    })?;
    let layers = names
        .iter()
        .zip(shapes)
        .zip(acc)
        .map(|((n, s), a)| LayerAttribution::new(n, s, p.ids.len(), a, None))
        .collect();
    Ok(finish(layers, fx, fb, path))
}

/// Neuron conductance (Captum `NeuronConductance`) of the neuron at multi-index `neuron` (per
/// row, e.g. `[token, dim]`) of boundary `name`, attributed to the path boundary:
/// `Attr_i = (x_i − x′_i) Σ_k w_k ∂F/∂y_j(x_k) · ∂y_j/∂x_i(x_k)`. Two backwards per batch on one
/// forward (the first keeps the graph). The result's single layer is at the path boundary; its
/// total is the neuron's share of F(x) − F(x′) (no completeness delta).
pub fn neuron_conductance(
    p: &PathProblem,
    name: &str,
    neuron: &[usize],
    alphas: &[f64],
    weights: &[f64],
    batch: usize,
    progress: Progress,
) -> Result<LayerResult> {
    check_rule(alphas, weights)?;
    let shape = shapes_of(p, &[name.to_string()])?.remove(0);
    let j = flat_index(&shape, neuron, name)?;
    let (fx, fb) = ends(p)?;
    let x = p.input.to_vec_f64()?;
    let b = p.baseline.to_vec_f64()?;
    let mut acc = vec![0.0; x.len()];
    let mut path = Vec::with_capacity(alphas.len());
    let per_y: usize = shape.iter().product();
    for r in chunks(alphas.len(), batch)? {
        let rows = r.len();
        let tape = Tape::new();
        let pts = tape.var(p.points(&alphas[r.clone()])?);
        let mut hooks = Hooks::new()
            .replace(p.boundary, pts.clone())
            .capture(&[name]);
        let out = p
            .model
            .forward(&Batch::repeat(p.ids, p.type_ids, rows), &mut hooks)?;
        let f = p.target.eval(&out)?;
        drop(out);
        let y = hooks
            .get(name)
            .cloned()
            .ok_or_else(|| Error::Input(format!("unknown boundary `{name}`")))?;
        drop(hooks);
        let fv = f.value().to_vec_f64()?;
        let seed = Tensor::ones(f.shape(), f.dtype());
        let g1 = tape.grad_retained(&[&f], &[seed], &[&y])?.remove(0);
        let g1 = match g1 {
            Some(g) => g.to_vec_f64()?,
            None => vec![0.0; y.value().numel()],
        };
        let mut s2 = vec![0.0; y.value().numel()];
        for i in 0..rows {
            s2[i * per_y + j] = g1[i * per_y + j];
        }
        let seed2 = Tensor::from_f64(&s2, y.shape(), y.dtype())?;
        let g2 = tape.grad(&[&y], &[seed2], &[&pts])?.remove(0);
        let g2 = match g2 {
            Some(g) => g.to_vec_f64()?,
            None => vec![0.0; pts.value().numel()],
        };
        let per_x = x.len();
        for (i, k) in r.clone().enumerate() {
            let w = weights[k];
            acc.iter_mut()
                .zip(&g2[i * per_x..(i + 1) * per_x])
                .for_each(|(a, g)| *a += w * g);
            path.push((alphas[k], fv[i]));
        }
        progress(r.end, alphas.len());
    }
    let per: Vec<f64> = acc
        .iter()
        .zip(x.iter().zip(&b))
        .map(|(g, (x, b))| g * (x - b))
        .collect();
    let layer = LayerAttribution::new(p.boundary, p.input.shape().to_vec(), p.ids.len(), per, None);
    Ok(finish(vec![layer], fx, fb, path))
}

/// Flat row-major index of `idx` in `shape`, with a clear error.
pub fn flat_index(shape: &[usize], idx: &[usize], name: &str) -> Result<usize> {
    if idx.len() != shape.len() {
        return Err(Error::Input(format!(
            "neuron index {idx:?} has {} components but `{name}` has shape {shape:?} per row",
            idx.len()
        )));
    }
    let mut j = 0;
    for (a, (&i, &n)) in idx.iter().zip(shape).enumerate() {
        if i >= n {
            return Err(Error::Input(format!(
                "neuron index {idx:?} is out of range in axis {a} of `{name}` (shape {shape:?})"
            )));
        }
        j = j * n + i;
    }
    Ok(j)
}

fn check_rule(alphas: &[f64], weights: &[f64]) -> Result<()> {
    if alphas.len() != weights.len() || alphas.is_empty() {
        return Err(Error::Invalid {
            op: "layer method",
            detail: format!("{} alphas and {} weights", alphas.len(), weights.len()),
        });
    }
    Ok(())
}

/// F(x), F(x′) with x and x′ exactly at the path boundary.
pub fn ends(p: &PathProblem) -> Result<(f64, f64)> {
    p.check()?;
    let rows = stack(&[p.input, p.baseline])?;
    let f = p.values_at(&rows)?;
    Ok((f[0], f[1]))
}

fn finish(layers: Vec<LayerAttribution>, fx: f64, fb: f64, path: Vec<(f64, f64)>) -> LayerResult {
    let points_used = path.len();
    let (path_alphas, path_f) = path.into_iter().unzip();
    LayerResult {
        layers,
        f_input: fx,
        f_baseline: fb,
        path_alphas,
        path_f,
        points_used,
    }
}

/// The input of the path at another boundary: the values of `name` on the input and on the
/// baseline input (e.g. `embed.hook_out`, the Captum BERT tutorial's path space), for a
/// [`PathProblem`] at `name`.
pub fn path_at(p: &PathProblem, name: &str) -> Result<(Tensor, Tensor)> {
    let (y, y0, _, _) = boundary_ends(p, name)?;
    Ok((y, y0))
}
