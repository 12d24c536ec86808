//! The layer methods, built on the boundary API ([`super::boundary`]): layer IG (Captum
//! `LayerIntegratedGradients`), layer conductance for any number of layers in **one sweep** of
//! path points (Captum `LayerConductance`), internal influence and neuron conductance.
//!
//! Semantics follow `METHODS.md` §2.2–2.4. The input space is the path boundary of the
//! [`PathProblem`] (`hook_embed`, the word embeddings, unless the caller chooses another), with
//! the input x and baseline x′ given there; "F(x′)" is F with the baseline at the path boundary.

pub use super::boundary::{
    boundaries, boundary_shape, layer_boundaries, n_layers, per_position, AtEndpoints,
};
use super::ig::{ig_with_endpoints, PathProblem, Progress};
use super::probe::{self, Capture, Chunking, Objective, Request, Rows};
use crate::models::HookName;
use crate::ops::movement::narrow;
use crate::{Error, Result, Tensor};

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
    let shape = p.subject().shape_of(p.subject().boundary(name)?)?;
    check_rule(alphas, weights)?;
    let ends = p.boundary_at_endpoints(name)?;
    let (fx, fb) = (ends.f_input, ends.f_baseline);
    let q = PathProblem {
        model: p.model,
        ids: p.ids,
        type_ids: p.type_ids,
        boundary: name,
        input: &ends.input,
        baseline: &ends.baseline,
        target: p.target,
    };
    let r = ig_with_endpoints(&q, alphas, weights, batch, progress, fx, fb)?;
    let per = r
        .per_coordinate
        .ok_or_else(|| Error::Internal("layer IG without per-coordinate values".into()))?;
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
        return Err(Error::BadValue {
            name: "steps",
            detail: "conductance needs at least 2 path points (n_steps ≥ 1)".into(),
        });
    }
    let (ats, shapes) = resolve(p, names)?;
    let (fx, fb) = p.endpoints()?;
    // Per boundary: Σ_k ∂F/∂y(x_k) ⊙ (y(x_{k+1}) − y(x_k)) on the device, continued across
    // chunks from the previous chunk's last row.
    let mut acc: Vec<Option<Tensor>> = vec![None; ats.len()];
    let mut carry: Vec<Option<(Vec<f64>, Vec<f64>)>> = vec![None; ats.len()];
    let f = sweep(p, &ats, Capture::both, alphas, batch, progress, &mut |c| {
        for i in 0..ats.len() {
            probe::add_conductance(&mut acc[i], &mut carry[i], c.value(i)?, c.grad(i)?)?;
        }
        Ok(())
    })?;
    let layers = layers_of(names, shapes, acc, p.ids.len(), Some(fx - fb))?;
    Ok(finish(
        layers,
        fx,
        fb,
        alphas.iter().copied().zip(f).collect(),
    ))
}

/// Parses and checks boundary names; their per-row shapes.
fn resolve(p: &PathProblem, names: &[String]) -> Result<(Vec<HookName>, Vec<Vec<usize>>)> {
    if names.is_empty() {
        return Err(Error::Empty("boundary list"));
    }
    let s = p.subject();
    let ats: Vec<HookName> = names.iter().map(|n| s.boundary(n)).collect::<Result<_>>()?;
    let shapes = ats.iter().map(|a| s.shape_of(*a)).collect::<Result<_>>()?;
    Ok((ats, shapes))
}

/// One sweep of the path points `alphas` with `ats` captured as `capture` says (the pass of
/// conductance and internal influence); F along the path.
fn sweep(
    p: &PathProblem,
    ats: &[HookName],
    capture: fn(HookName) -> Capture,
    alphas: &[f64],
    batch: usize,
    progress: Progress,
    visit: probe::ChunkVisit,
) -> Result<Vec<f64>> {
    let path = p.path()?;
    let rows = Rows::Path {
        path: &path,
        alphas,
    };
    let mut req = Request::new(rows, Objective::Target(p.target)).chunking(Chunking::Rows(batch));
    for at in ats {
        req = req.capture(capture(*at));
    }
    probe::run(&p.subject(), &req, progress, visit)
}

/// One [`LayerAttribution`] per boundary from the device accumulators.
fn layers_of(
    names: &[String],
    shapes: Vec<Vec<usize>>,
    acc: Vec<Option<Tensor>>,
    pos: usize,
    df: Option<f64>,
) -> Result<Vec<LayerAttribution>> {
    names
        .iter()
        .zip(shapes)
        .zip(acc)
        .map(|((n, s), a)| {
            let v = match a {
                Some(a) => a.to_vec_f64()?,
                None => vec![0.0; s.iter().product()],
            };
            Ok(LayerAttribution::new(n, s, pos, v, df))
        })
        .collect()
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
    let (ats, shapes) = resolve(p, names)?;
    let (fx, fb) = p.endpoints()?;
    let mut acc: Vec<Option<Tensor>> = vec![None; ats.len()];
    let f = sweep(p, &ats, Capture::grad, alphas, batch, progress, &mut |c| {
        for (i, a) in acc.iter_mut().enumerate() {
            probe::add_weighted(a, c.grad(i)?, &weights[c.rows.clone()])?;
        }
        Ok(())
    })?;
    let layers = layers_of(names, shapes, acc, p.ids.len(), None)?;
    Ok(finish(
        layers,
        fx,
        fb,
        alphas.iter().copied().zip(f).collect(),
    ))
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
    let s = p.subject();
    let at = s.boundary(name)?;
    let shape = s.shape_of(at)?;
    let j = flat_index(&shape, neuron, name)?;
    let per_y: usize = shape.iter().product();
    let (fx, fb) = p.endpoints()?;
    let path = p.path()?;
    let rows = Rows::Path {
        path: &path,
        alphas,
    };
    // Pass 1: F and ∂F/∂y_j at every path point.
    let mut dfdy = Vec::with_capacity(alphas.len());
    let req = Request::new(rows, Objective::Target(p.target))
        .capture(Capture::grad(at))
        .chunking(Chunking::Rows(batch));
    let f = probe::run(&s, &req, &mut |_, _| {}, &mut |c| {
        let n = c.rows.len();
        dfdy.extend(narrow(&c.grad(0)?.reshape(&[n, per_y])?, 1, j, 1)?.to_vec_f64()?);
        Ok(())
    })?;
    // Pass 2 (the forward stops at `name`): Σ_k w_k ∂F/∂y_j(x_k) · ∂y_j/∂x(x_k), as the
    // gradient of y scalarised by the cotangent ∂F/∂y_j e_j per row.
    let reads = [at];
    let eval = |fw: &probe::Forward| -> Result<crate::Var> {
        let y = fw.boundary(at)?;
        y.reshape(&[y.shape()[0], per_y])
    };
    let seeds = |r: std::ops::Range<usize>, shape: &[usize]| -> Result<Tensor> {
        let mut v = vec![0.0; r.len() * per_y];
        for (i, k) in r.enumerate() {
            v[i * per_y + j] = dfdy[k];
        }
        Tensor::from_f64_on(&v, shape, p.model.dtype(), p.model.device())
    };
    let req = Request::new(
        rows,
        Objective::Custom {
            reads: &reads,
            model_output: false,
            eval: &eval,
        },
    )
    .cotangent(&seeds)
    .capture(Capture::grad(path.segments[0].at))
    .chunking(Chunking::Rows(batch));
    let mut acc: Option<Tensor> = None;
    probe::run(&s, &req, progress, &mut |c| {
        probe::add_weighted(&mut acc, c.grad(0)?, &weights[c.rows.clone()])
    })?;
    let acc = probe::finish_acc(acc)?;
    let x = p.input.to_vec_f64()?;
    let b = p.baseline.to_vec_f64()?;
    let per: Vec<f64> = acc
        .iter()
        .zip(x.iter().zip(&b))
        .map(|(g, (x, b))| g * (x - b))
        .collect();
    let layer = LayerAttribution::new(p.boundary, p.input.shape().to_vec(), p.ids.len(), per, None);
    Ok(finish(
        vec![layer],
        fx,
        fb,
        alphas.iter().copied().zip(f).collect(),
    ))
}

/// Flat row-major index of `idx` in `shape`, with a clear error.
pub fn flat_index(shape: &[usize], idx: &[usize], name: &str) -> Result<usize> {
    if idx.len() != shape.len() {
        return Err(Error::Mismatch {
            what: format!("neuron index {idx:?}"),
            detail: format!(
                "has {} components but `{name}` has shape {shape:?} per row",
                idx.len()
            ),
        });
    }
    let mut j = 0;
    for (a, (&i, &n)) in idx.iter().zip(shape).enumerate() {
        if i >= n {
            let _ = a;
            return Err(Error::OutOfRange {
                what: "neuron index",
                index: i,
                len: n,
            });
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
