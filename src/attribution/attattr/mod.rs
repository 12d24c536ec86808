//! Self-attention attribution (ATTATTR; Hao et al., AAAI 2021): Integrated Gradients over the
//! attention probabilities of one layer at a time,
//! `Attr_l = A_l ⊙ ∫₀¹ ∂F(α·A_l)/∂A_l dα`, for every head of layer l at once.
//!
//! A row of a sweep is a pair (layer l, α): its forward replaces `blocks.{l}.attn.hook_pattern`
//! by α·A_l (A_l from the plain forward; every other layer computes its own pattern, as in the
//! authors' code) and reads ∂F at that boundary. Rows of different layers share a batch, so all
//! requested layers run in **one sweep**; rows are ordered layer by layer, and each batch
//! captures only the gradients of the layers it holds and starts at its lowest layer: the
//! residual stream entering that block is the plain forward's (kept from the first pass), so the
//! blocks below it are not run again ([`crate::models::Hooks::first_live_block`]).
//! Sums are accumulated in f64 whatever the compute dtype.
//!
//! Completeness per layer: `Σ Attr_l` against `F(A) − F(0·A_l)` (the path from the zero pattern
//! of layer l to its real pattern), reported as `delta` and `relative_delta`.
//!
//! ```no_run
//! # fn main() -> gradpath::Result<()> {
//! use gradpath::attribution::attattr::{attention_attribution, AttAttrProblem};
//! use gradpath::attribution::{probe::Chunking, Target, TargetKind};
//! use gradpath::integrate::Rule;
//! let dir = std::path::Path::new("tests/fixtures/models/tiny-bert");
//! let model = gradpath::models::load(dir, gradpath::DType::F64)?;
//! let (ids, type_ids) = (vec![101, 7592, 2088, 102], vec![0; 4]);
//! let target = Target::Class { class: 1, kind: TargetKind::Prob };
//! let layers: Vec<usize> = (0..model.n_layers()).collect();
//! let p = AttAttrProblem { model: model.as_ref(), ids: &ids, type_ids: &type_ids,
//!     target: &target, layers: &layers, chunking: Chunking::default() };
//! // The paper's rule: left Riemann from 0, m = 20.
//! let (alphas, weights) = Rule::RiemannLeft.nodes_weights(20)?;
//! let r = attention_attribution(&p, &alphas, &weights, &mut |_, _| {})?;
//! for l in &r.layers {
//!     println!("layer {}: Σ Attr = {:.4}, delta = {:.2e}", l.layer, l.sum, l.delta);
//! }
//! # Ok(()) }
//! ```

use super::probe::{self, Capture, Chunking, Objective, Request, RowSpec, Rows, Subject};
use super::target::Target;
use crate::integrate::{refine, Refined, Rule, Stop};
use crate::models::{HookName, Model, Site};
use crate::{Error, Result, Tensor};
use std::collections::HashMap;

mod tree;
pub use tree::{attribution_tree, Tree, TreeEdge, TreeNode};

/// ATTATTR of one input: the model, the tokens, F and the layers.
pub struct AttAttrProblem<'a> {
    pub model: &'a dyn Model,
    pub ids: &'a [usize],
    pub type_ids: &'a [usize],
    pub target: &'a Target,
    /// The layers attributed (distinct; any order, reported ascending).
    pub layers: &'a [usize],
    /// Rows per forward (rows are (layer, α) pairs).
    pub chunking: Chunking,
}

/// ATTATTR of one layer.
#[derive(Debug, Clone)]
pub struct LayerAttr {
    pub layer: usize,
    /// A_l, `[heads, pos, pos]` row-major (row i = query, column j = key).
    pub attention: Vec<f64>,
    /// Attr_l, `[heads, pos, pos]`.
    pub attribution: Vec<f64>,
    /// F(A): the plain forward.
    pub f_input: f64,
    /// F(0·A_l): layer l's pattern replaced by zeros (the path start).
    pub f_start: f64,
    /// Σ Attr_l.
    pub sum: f64,
    /// Σ Attr_l − (F(A) − F(0·A_l)).
    pub delta: f64,
    /// |delta| / |F(A) − F(0·A_l)| (|delta| when the two are equal).
    pub relative_delta: f64,
    /// `max_{i,j} Attr_l[h]` per head h (the paper's per-example head importance).
    pub head_importance: Vec<f64>,
    /// α of every evaluated point of this layer (ascending) and F there.
    pub path_alphas: Vec<f64>,
    pub path_f: Vec<f64>,
    /// Points of the final rule.
    pub steps: usize,
    /// Forward rows spent on this layer's path points.
    pub points_used: usize,
    /// Adaptive refinement trace (`None` for a fixed rule).
    pub refinement: Option<Refined>,
}

/// The result: one [`LayerAttr`] per requested layer, ascending.
#[derive(Debug, Clone)]
pub struct AttAttr {
    pub n_heads: usize,
    pub pos: usize,
    pub f_input: f64,
    pub layers: Vec<LayerAttr>,
}

impl LayerAttr {
    /// Head h's `[pos, pos]` attribution.
    pub fn head(&self, h: usize, pos: usize) -> &[f64] {
        &self.attribution[h * pos * pos..(h + 1) * pos * pos]
    }
    /// Head h's `[pos, pos]` attention.
    pub fn head_attention(&self, h: usize, pos: usize) -> &[f64] {
        &self.attention[h * pos * pos..(h + 1) * pos * pos]
    }
    /// Σ over heads: `[pos, pos]`.
    pub fn head_sum(&self, pos: usize) -> Vec<f64> {
        let n = pos * pos;
        let mut s = vec![0.0; n];
        for h in self.attribution.chunks(n) {
            s.iter_mut().zip(h).for_each(|(s, v)| *s += v);
        }
        s
    }
}

impl AttAttr {
    /// The largest relative completeness delta over the layers.
    pub fn worst_relative_delta(&self) -> f64 {
        self.layers
            .iter()
            .map(|l| l.relative_delta)
            .fold(0.0, f64::max)
    }

    /// A warning when some layer's relative completeness delta is above `threshold` (1e-2 is
    /// what the reports use): those attributions do not add up to F(A) − F(0·A_l).
    pub fn warning(&self, threshold: f64) -> Option<String> {
        let bad: Vec<String> = self
            .layers
            .iter()
            .filter(|l| l.relative_delta.is_nan() || l.relative_delta > threshold)
            .map(|l| format!("layer {} ({:.3})", l.layer, l.relative_delta))
            .collect();
        if bad.is_empty() {
            return None;
        }
        Some(format!(
            "the relative completeness delta |Σ Attr − (F(A) − F(0·A))| / |F(A) − F(0·A)| is above {threshold} at {}: these attributions are not resolved; raise --steps, use --method gauss-legendre, or --tolerance 1e-3",
            bad.join(", ")
        ))
    }
}

/// `blocks.{l}.attn.hook_pattern`.
fn pattern(l: usize) -> HookName {
    HookName::block(l, Site::Pattern)
}

/// `blocks.{l}.hook_resid_pre`.
fn resid_pre(l: usize) -> HookName {
    HookName::block(l, Site::ResidPre)
}

/// Per-row consumer of a sweep: (row, index into the layers, ∂F/∂P of the row as f64).
type RowVisit<'v> = &'v mut dyn FnMut(usize, usize, &[f64]) -> Result<()>;

/// What every sweep starts from: A_l per requested layer, F(A) and F(0·A_l).
struct Ends {
    /// Requested layers, ascending.
    layers: Vec<usize>,
    heads: usize,
    pos: usize,
    /// A_l as tensors of the model's dtype `[heads, pos, pos]`, and as f64.
    a: Vec<Tensor>,
    a64: Vec<Vec<f64>>,
    /// `blocks.{l}.hook_resid_pre` of the plain forward per requested layer: a batch whose
    /// lowest patched layer is l starts there (the blocks below are the plain forward's and are
    /// skipped, [`crate::models::Hooks::first_live_block`]).
    resid: Vec<Tensor>,
    f_input: f64,
    f_start: Vec<f64>,
}

impl AttAttrProblem<'_> {
    fn subject(&self) -> Subject<'_> {
        Subject::new(self.model, self.ids, self.type_ids)
    }

    /// Checks the layers and runs forwards without gradients: the plain input (capturing its
    /// patterns and residual streams), then each layer's zero pattern from that layer up.
    fn ends(&self) -> Result<Ends> {
        let n_layers = self.model.n_layers();
        if self.layers.is_empty() {
            return Err(Error::Empty("layers"));
        }
        let mut layers = self.layers.to_vec();
        layers.sort_unstable();
        for w in layers.windows(2) {
            if w[0] == w[1] {
                return Err(Error::BadValue {
                    name: "layers",
                    detail: format!("layer {} is listed twice", w[0]),
                });
            }
        }
        if let Some(&l) = layers.iter().find(|&&l| l >= n_layers) {
            return Err(Error::OutOfRange {
                what: "layer",
                index: l,
                len: n_layers,
            });
        }
        let s = self.subject();
        let shape = s.shape_of(pattern(layers[0]))?;
        let (heads, pos) = (shape[0], shape[1]);
        // The plain forward, one row, capturing A_l and the residual stream entering each layer.
        let mut req = Request::new(Rows::Count(1), Objective::Target(self.target))
            .chunking(Chunking::Rows(1));
        for &l in &layers {
            req = req.capture(Capture::value(pattern(l)));
        }
        for &l in &layers {
            req = req.capture(Capture::value(resid_pre(l)));
        }
        let (mut a, mut resid) = (Vec::new(), Vec::new());
        let nl = layers.len();
        let f_plain = probe::run(&s, &req, &mut |_, _| {}, &mut |c| {
            for i in 0..nl {
                a.push(c.value(i)?.reshape(&shape)?);
                let r = c.value(nl + i)?;
                resid.push(r.reshape(&r.shape()[1..])?);
            }
            Ok(())
        })?;
        // F(0·A_l): one forward per layer, each starting at its own layer from the plain
        // residual stream there (the blocks below are the plain forward's and are not run
        // again): with the plain row, 90 instead of 156 single-row block evaluations for 12
        // layers.
        let zeros = Tensor::zeros_on(&shape, self.model.dtype(), self.model.device())?;
        let specs: Vec<RowSpec> = layers
            .iter()
            .zip(&resid)
            .map(|(&l, r)| {
                RowSpec::new()
                    .replace(resid_pre(l), r.clone())
                    .replace(pattern(l), zeros.clone())
            })
            .collect();
        let req = Request::new(Rows::Specs(&specs), Objective::Target(self.target))
            .chunking(Chunking::Rows(1));
        let f_start = probe::run(&s, &req, &mut |_, _| {}, &mut |_| Ok(()))?;
        let a64 = a.iter().map(Tensor::to_vec_f64).collect::<Result<_>>()?;
        Ok(Ends {
            layers,
            heads,
            pos,
            a,
            a64,
            resid,
            f_input: f_plain[0],
            f_start,
        })
    }

    /// Runs rows `(i, α)` (i indexes `ends.layers`), layer-ordered as given, chunk by chunk:
    /// `visit(row, i, ∂F/∂P row as f64 [heads·pos·pos])` for each row. Returns F per row.
    fn sweep(
        &self,
        ends: &Ends,
        rows: &[(usize, f64)],
        progress: &mut dyn FnMut(usize),
        visit: RowVisit,
    ) -> Result<Vec<f64>> {
        let s = self.subject();
        let per_chunk = probe::chunk_rows(
            &s,
            &Request::new(Rows::Count(1), Objective::Target(self.target)).chunking(self.chunking),
        );
        let per_row = ends.heads * ends.pos * ends.pos;
        let mut fs = Vec::with_capacity(rows.len());
        for range in chunk_ranges(rows, per_chunk) {
            let (start, chunk) = (range.start, &rows[range]);
            // Every row of the chunk starts at the lowest layer it patches, from the plain
            // forward's residual stream there.
            let low = chunk.iter().map(|r| r.0).min().unwrap_or(0);
            let specs: Vec<RowSpec> = chunk
                .iter()
                .map(|&(i, a)| {
                    // α = 1 is A_l itself, bit for bit (the patched forward is the plain one).
                    let v = if a == 1.0 {
                        ends.a[i].clone()
                    } else {
                        let x = &ends.a[i];
                        let v: Vec<f64> = ends.a64[i].iter().map(|v| a * v).collect();
                        Tensor::from_f64_on(&v, x.shape(), x.dtype(), x.device())?
                    };
                    Ok(RowSpec::new()
                        .replace(resid_pre(ends.layers[low]), ends.resid[low].clone())
                        .replace(pattern(ends.layers[i]), v))
                })
                .collect::<Result<_>>()?;
            // The layers of this chunk, ascending: one gradient capture each.
            let mut held: Vec<usize> = chunk.iter().map(|r| r.0).collect();
            held.sort_unstable();
            held.dedup();
            let mut req = Request::new(Rows::Specs(&specs), Objective::Target(self.target))
                .chunking(Chunking::Rows(chunk.len()));
            for &i in &held {
                req = req.capture(Capture::grad(pattern(ends.layers[i])));
            }
            let f = probe::run(&s, &req, &mut |_, _| {}, &mut |out| {
                for (ci, &i) in held.iter().enumerate() {
                    let g = out.grad(ci)?.to_vec_f64()?;
                    for (k, r) in chunk.iter().enumerate() {
                        if r.0 == i {
                            visit(start + k, i, &g[k * per_row..(k + 1) * per_row])?;
                        }
                    }
                }
                Ok(())
            })?;
            fs.extend(f);
            progress(fs.len());
        }
        Ok(fs)
    }
}

/// Rows per batch below which a batch also takes the next layer's rows.
const MIN_BATCH_ROWS: usize = 16;

/// Batches of layer-ordered rows `(layer index, α)`: at most `per_chunk` rows, and a new batch at
/// each new layer once the current one has [`MIN_BATCH_ROWS`]. A batch starts at its lowest
/// layer, so a batch of one layer's rows skips every block below it, while small rules (few
/// points per layer) still fill batches across layers.
fn chunk_ranges(rows: &[(usize, f64)], per_chunk: usize) -> Vec<std::ops::Range<usize>> {
    let per_chunk = per_chunk.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    for k in 1..=rows.len() {
        let len = k - start;
        let end = k == rows.len()
            || len == per_chunk
            || (rows[k].0 != rows[k - 1].0 && len >= MIN_BATCH_ROWS);
        if end {
            out.push(start..k);
            start = k;
        }
    }
    out
}

fn finish_layer(
    ends: &Ends,
    i: usize,
    attribution: Vec<f64>,
    path: Vec<(f64, f64)>,
    steps: usize,
    refinement: Option<Refined>,
) -> LayerAttr {
    let n = ends.pos * ends.pos;
    let sum: f64 = attribution.iter().sum();
    let df = ends.f_input - ends.f_start[i];
    let delta = sum - df;
    let relative_delta = if df != 0.0 {
        delta.abs() / df.abs()
    } else {
        delta.abs()
    };
    let head_importance = attribution
        .chunks(n)
        .map(|h| h.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        .collect();
    let mut path = path;
    path.sort_by(|a, b| a.0.total_cmp(&b.0));
    let points_used = path.len();
    let (path_alphas, path_f) = path.into_iter().unzip();
    LayerAttr {
        layer: ends.layers[i],
        attention: ends.a64[i].clone(),
        attribution,
        f_input: ends.f_input,
        f_start: ends.f_start[i],
        sum,
        delta,
        relative_delta,
        head_importance,
        path_alphas,
        path_f,
        steps,
        points_used,
        refinement,
    }
}

/// ATTATTR with a fixed rule (`alphas`, `weights` on [0, 1]; the paper's is
/// `Rule::RiemannLeft.nodes_weights(20)`): every requested layer in one sweep of
/// `layers × alphas` rows. `progress(rows done, rows in all)`.
pub fn attention_attribution(
    p: &AttAttrProblem,
    alphas: &[f64],
    weights: &[f64],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<AttAttr> {
    if alphas.is_empty() || alphas.len() != weights.len() {
        return Err(Error::Invalid {
            op: "attention_attribution",
            detail: format!("{} alphas and {} weights", alphas.len(), weights.len()),
        });
    }
    let ends = p.ends()?;
    let nl = ends.layers.len();
    let rows: Vec<(usize, f64)> = (0..nl)
        .flat_map(|i| alphas.iter().map(move |&a| (i, a)))
        .collect();
    let per_row = ends.heads * ends.pos * ends.pos;
    let mut acc = vec![vec![0.0; per_row]; nl];
    let total = rows.len();
    let f = p.sweep(
        &ends,
        &rows,
        &mut |d| progress(d, total),
        &mut |row, i, g| {
            let w = weights[row % alphas.len()];
            acc[i].iter_mut().zip(g).for_each(|(s, g)| *s += w * g);
            Ok(())
        },
    )?;
    let layers = (0..nl)
        .map(|i| {
            let attr: Vec<f64> = acc[i]
                .iter()
                .zip(&ends.a64[i])
                .map(|(g, a)| a * g)
                .collect();
            let path = alphas
                .iter()
                .copied()
                .zip(f[i * alphas.len()..(i + 1) * alphas.len()].iter().copied())
                .collect();
            finish_layer(&ends, i, attr, path, alphas.len(), None)
        })
        .collect();
    Ok(AttAttr {
        n_heads: ends.heads,
        pos: ends.pos,
        f_input: ends.f_input,
        layers,
    })
}

/// ATTATTR refined per layer until its relative completeness delta is ≤ `tol` or `max_points`
/// points are spent on it (`rule` from `start_n` points, as [`crate::integrate::refine`]; nested
/// rules reuse every point). Each layer's trace is in [`LayerAttr::refinement`].
pub fn attention_attribution_adaptive(
    p: &AttAttrProblem,
    rule: Rule,
    start_n: usize,
    tol: f64,
    max_points: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<AttAttr> {
    let ends = p.ends()?;
    let nl = ends.layers.len();
    let total = nl * max_points;
    let mut done = 0usize;
    let mut layers = Vec::with_capacity(nl);
    for i in 0..nl {
        // Per α: F and A ⊙ ∂F/∂P.
        let mut stash: HashMap<u64, (f64, Vec<f64>)> = HashMap::new();
        let a64 = &ends.a64[i];
        let eval = |alphas: &[f64]| -> Result<Vec<f64>> {
            let rows: Vec<(usize, f64)> = alphas.iter().map(|&a| (i, a)).collect();
            let mut terms: Vec<Vec<f64>> = Vec::with_capacity(alphas.len());
            let d0 = done;
            let f = p.sweep(
                &ends,
                &rows,
                &mut |d| progress(d0 + d, total),
                &mut |_, _, g| {
                    terms.push(g.iter().zip(a64).map(|(g, a)| g * a).collect());
                    Ok(())
                },
            )?;
            let vals = terms.iter().map(|t| t.iter().sum()).collect();
            for ((a, f), t) in alphas.iter().zip(f).zip(terms) {
                stash.insert(a.to_bits(), (f, t));
            }
            done += alphas.len();
            Ok(vals)
        };
        let exact = ends.f_input - ends.f_start[i];
        let refined = refine(
            rule,
            start_n,
            max_points,
            tol,
            Stop::Completeness { exact },
            eval,
        )?;
        let mut attr = vec![0.0; a64.len()];
        for (a, w) in refined.alphas.iter().zip(&refined.weights) {
            let (_, t) = stash
                .get(&a.to_bits())
                .ok_or_else(|| Error::Internal("refined node without a stashed gradient".into()))?;
            attr.iter_mut().zip(t).for_each(|(s, t)| *s += w * t);
        }
        let path = stash
            .iter()
            .map(|(k, (f, _))| (f64::from_bits(*k), *f))
            .collect();
        let steps = refined.n;
        layers.push(finish_layer(&ends, i, attr, path, steps, Some(refined)));
    }
    Ok(AttAttr {
        n_heads: ends.heads,
        pos: ends.pos,
        f_input: ends.f_input,
        layers,
    })
}
