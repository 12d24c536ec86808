//! The layer methods, built on the boundary API ([`super::boundary`]): layer IG (Captum
//! `LayerIntegratedGradients`), layer conductance for any number of layers in **one sweep** of
//! path points (Captum `LayerConductance`), internal influence and neuron conductance.
//!
//! Semantics follow `METHODS.md` §2.2–2.4. The input space is the path boundary of the
//! [`PathProblem`] (`hook_embed`, the word embeddings, unless the caller chooses another), with
//! the input x and baseline x′ given there; "F(x′)" is F with the baseline at the path boundary.

pub use super::boundary::{
    boundaries, boundary_ends, boundary_shape, ends, layer_boundaries, n_layers, observe_path,
    path_at, per_position, ObsVisit, PointObs,
};
use super::ig::{integrated_gradients, PathProblem, Progress};
use crate::integrate::chunks;
use crate::models::{Batch, Hooks};
use crate::{Error, Result, Tape, Tensor};

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
