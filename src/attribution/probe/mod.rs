//! The probe: the one batched pass every attribution method runs on.
//!
//! A probe runs a model on one token sequence, many times at once: each **row** of a batch is one
//! variant of the forward, described by what happens at the boundaries ([`HookName`]):
//! - [`Rows::Path`]: row k is the point α_k of a [`Path`] — every [`Segment`] (boundary, x, x′)
//!   replaced by `x′ + α_k (x − x′)`, so one path may interpolate several boundaries at once;
//! - [`Rows::Specs`]: row k is [`RowSpec`] k — any set of replacements, partial patches
//!   (`x ⊙ keep + values`) and head masks, different per row (for example ATTATTR's (layer, α)
//!   rows, each scaling only its own layer's attention pattern).
//!
//! The probe captures any set of boundaries ([`Capture`]: value and/or gradient), evaluates an
//! [`Objective`] — a model [`Target`] (a scalar per row), or any function of the captured
//! boundaries, scalar or vector per row, scalarised by a per-row cotangent (seed) — and gets
//! every requested gradient from **one** backward per chunk. The forward stops right after the
//! last boundary that the objective and the captures need, so a map across one block costs one
//! block. Rows run in chunks sized by a memory budget ([`Chunking`]).
//!
//! Everything a chunk yields stays on the model's device ([`ChunkOut`]: `[rows, ...]` tensors);
//! methods reduce there, in place and in f64 ([`add_weighted`], [`add_conductance`],
//! [`add_rows_map`], [`row_dot_last`]), and copy only their final
//! results to the host.
//!
//! ```
//! # fn main() -> gradpath::Result<()> {
//! use gradpath::attribution::probe::{self, Capture, Chunking, Objective, Path, Request, Rows};
//! use gradpath::attribution::Target;
//! use gradpath::models::{self, HookName, Site};
//! use gradpath::DType;
//!
//! let model = models::load("tests/fixtures/models/tiny-bert".as_ref(), DType::F64)?;
//! let ids = [2, 7, 9, 3];
//! let subject = probe::Subject::new(model.as_ref(), &ids, &[0; 4]);
//! // Gradient × activation at the output of block 0, for class 1's logit, one row.
//! let at = HookName::block(0, Site::ResidPost);
//! let target = Target::Class { class: 1, kind: gradpath::attribution::TargetKind::Logit };
//! let req = Request::new(Rows::Count(1), Objective::Target(&target))
//!     .capture(Capture::both(at));
//! let mut gxa = 0.0;
//! let f = probe::run(&subject, &req, &mut |_, _| {}, &mut |c| {
//!     let (y, g) = (c.values[0].as_ref().unwrap(), c.grads[0].as_ref().unwrap());
//!     gxa = y.to_vec_f64()?.iter().zip(g.to_vec_f64()?).map(|(y, g)| y * g).sum();
//!     Ok(())
//! })?;
//! assert_eq!(f.len(), 1);
//! assert!(gxa.is_finite());
//! # Ok(()) }
//! ```

use super::target::Target;
use crate::models::{Batch, HookName, Hooks, Model, ModelOutput};
mod reduce;
mod rows;

pub use reduce::{add_conductance, add_rows_map, add_weighted, finish_acc, row_dot_last};
pub use rows::{Capture, FillFn, Path, RowSpec, Rows, Segment};

use crate::{DType, Error, Result, Tape, Tensor, Var};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::ops::Range;

/// The model and the token sequence a probe runs on (every row shares them).
#[derive(Clone, Copy)]
pub struct Subject<'a> {
    pub model: &'a dyn Model,
    pub ids: &'a [usize],
    pub type_ids: &'a [usize],
}

impl<'a> Subject<'a> {
    pub fn new(model: &'a dyn Model, ids: &'a [usize], type_ids: &'a [usize]) -> Subject<'a> {
        Subject {
            model,
            ids,
            type_ids,
        }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The per-row shape of boundary `at` (from the static registry, no forward), or
    /// [`Error::UnknownBoundary`] listing the valid names.
    pub fn shape_of(&self, at: HookName) -> Result<Vec<usize>> {
        let points = self.model.hook_points(self.ids.len());
        points
            .iter()
            .find(|p| p.name == at)
            .map(|p| p.shape.clone())
            .ok_or_else(|| Error::UnknownBoundary {
                name: at.to_string(),
                valid: points.iter().map(|p| p.name.to_string()).collect(),
            })
    }

    /// Parses and checks a boundary name against this model.
    pub fn boundary(&self, name: &str) -> Result<HookName> {
        let points = self.model.hook_points(self.ids.len());
        match HookName::parse_opt(name) {
            Some(h) if points.iter().any(|p| p.name == h) => Ok(h),
            _ => Err(Error::UnknownBoundary {
                name: name.to_string(),
                valid: points.iter().map(|p| p.name.to_string()).collect(),
            }),
        }
    }
}

/// What the forward produced, as a custom objective sees it.
pub struct Forward<'h> {
    hooks: &'h Hooks,
    output: Option<&'h ModelOutput>,
    rows: Range<usize>,
}

impl Forward<'_> {
    /// A boundary the objective declared in `reads` (or any captured one).
    pub fn boundary(&self, at: HookName) -> Result<&Var> {
        self.hooks.get(&at.to_string()).ok_or_else(|| {
            Error::Internal(format!(
                "objective reads `{at}`, which it did not declare in `reads`"
            ))
        })
    }
    /// Which rows of the request this forward carries (row-dependent objectives).
    pub fn rows(&self) -> Range<usize> {
        self.rows.clone()
    }
    /// The model's output, when the forward ran to the end (objectives that read only
    /// boundaries stop the forward early and get `None`).
    pub fn output(&self) -> Option<&ModelOutput> {
        self.output
    }
}

/// A function of the forward: `[rows]` (a scalar per row) or `[rows, ...]` (a vector per row,
/// scalarised by the request's cotangent).
pub type ObjectiveFn<'a> = &'a dyn Fn(&Forward) -> Result<Var>;

/// Per-row seeds of a vector objective: `(rows, output shape [rows, ...])` → a tensor of that
/// shape; the scalar per row is `⟨seed_row, output_row⟩`.
pub type CotangentFn<'a> = &'a dyn Fn(Range<usize>, &[usize]) -> Result<Tensor>;

/// What a probe differentiates.
#[derive(Clone, Copy)]
pub enum Objective<'a> {
    /// Nothing: captured values only (F is 0 for every row; no gradients). The forward stops
    /// after the last captured boundary.
    None,
    /// A target of the model's output (runs the whole model).
    Target(&'a Target),
    /// Any function of boundaries; the forward stops after the last boundary of `reads` and of
    /// the captures (`model_output: true` runs it to the end and passes the output).
    Custom {
        reads: &'a [HookName],
        model_output: bool,
        eval: ObjectiveFn<'a>,
    },
}

/// How many rows go through one forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunking {
    /// At most this many rows per forward.
    Rows(usize),
    /// Rows per forward so that saved activations stay near this many bytes (at least one row).
    Budget(usize),
}

/// The default memory budget of a chunk: 512 MiB of saved activations.
pub const DEFAULT_BUDGET: usize = 512 << 20;

impl Default for Chunking {
    fn default() -> Chunking {
        Chunking::Budget(DEFAULT_BUDGET)
    }
}

/// One probe: rows, captures, objective, cotangent, chunking.
#[derive(Clone)]
pub struct Request<'a> {
    pub rows: Rows<'a>,
    pub captures: Vec<Capture>,
    pub objective: Objective<'a>,
    pub cotangent: Option<CotangentFn<'a>>,
    pub chunking: Chunking,
    /// Gradients are needed (set by [`Request::capture`] when a capture wants one); when false
    /// the pass records no tape.
    pub backward: bool,
}

impl<'a> Request<'a> {
    pub fn new(rows: Rows<'a>, objective: Objective<'a>) -> Request<'a> {
        Request {
            rows,
            captures: Vec::new(),
            objective,
            cotangent: None,
            chunking: Chunking::default(),
            backward: false,
        }
    }
    pub fn capture(mut self, c: Capture) -> Request<'a> {
        self.backward |= c.grad;
        self.captures.push(c);
        self
    }
    pub fn cotangent(mut self, f: CotangentFn<'a>) -> Request<'a> {
        self.cotangent = Some(f);
        self
    }
    pub fn chunking(mut self, c: Chunking) -> Request<'a> {
        self.chunking = c;
        self
    }
}

/// What one chunk of rows yields. Tensors are `[rows, ...]` on the model's device, in the
/// model's dtype; `None` where the capture did not ask for it. A gradient the objective does not
/// depend on is zeros.
pub struct ChunkOut<'c> {
    pub rows: Range<usize>,
    /// The objective per row (scalarised by the cotangent for vector objectives; 0 for a vector
    /// objective of a pass without gradients and cotangent).
    pub f: &'c [f64],
    /// The objective's value as computed, `[rows]` or `[rows, ...]`.
    pub objective: Tensor,
    pub values: Vec<Option<Tensor>>,
    pub grads: Vec<Option<Tensor>>,
}

impl ChunkOut<'_> {
    /// The captured value of capture `i` (an error if that capture did not ask for it).
    pub fn value(&self, i: usize) -> Result<&Tensor> {
        self.values
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::Internal(format!("capture {i} has no value")))
    }
    /// The gradient at capture `i` (an error if that capture did not ask for it).
    pub fn grad(&self, i: usize) -> Result<&Tensor> {
        self.grads
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::Internal(format!("capture {i} has no gradient")))
    }
}

/// Per-chunk consumer.
pub type ChunkVisit<'a> = &'a mut dyn FnMut(ChunkOut) -> Result<()>;

/// Progress callback: (rows done, rows planned).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

thread_local! {
    static COUNT: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Model forwards run by probes on this thread so far, and the rows they carried (for tests
/// that count the work of a method).
pub fn forward_count() -> (usize, usize) {
    COUNT.with(Cell::get)
}

/// Counts one forward of `rows` rows (for passes outside the probe, e.g. greedy decoding or
/// target resolution, so that [`forward_count`] sees every forward).
pub fn count_forward(rows: usize) {
    COUNT.with(|c| {
        let (f, r) = c.get();
        c.set((f + 1, r + rows));
    });
}

/// Rows per forward for `req` on `s`.
pub fn chunk_rows(s: &Subject, req: &Request) -> usize {
    match req.chunking {
        Chunking::Rows(n) => n.max(1),
        Chunking::Budget(bytes) => {
            let per = s.model.activation_bytes_per_row(s.len()).max(1);
            // A forward that stops after block l saves only (l + 1) / n_layers of the activations.
            let frac = match stop_after(s, req) {
                Ok(Some(h)) => match h.layer() {
                    Some(l) => (l + 1) as f64 / s.model.n_layers().max(1) as f64,
                    None => 1.0,
                },
                _ => 1.0,
            };
            let per = ((per as f64) * frac).max(1.0) as usize;
            (bytes / per).clamp(1, 4096)
        }
    }
}

/// The last boundary (in forward order) the request needs, or `None` for the whole model.
fn stop_after(s: &Subject, req: &Request) -> Result<Option<HookName>> {
    let reads = match req.objective {
        Objective::None => &[][..],
        Objective::Target(_) => return Ok(None),
        Objective::Custom {
            model_output: true, ..
        } => return Ok(None),
        Objective::Custom { reads, .. } => reads,
    };
    let points = s.model.hook_points(s.len());
    let index = |h: &HookName| -> Result<usize> {
        points
            .iter()
            .position(|p| p.name == *h)
            .ok_or_else(|| Error::UnknownBoundary {
                name: h.to_string(),
                valid: points.iter().map(|p| p.name.to_string()).collect(),
            })
    };
    let mut last: Option<usize> = None;
    let mut consider = |h: &HookName| -> Result<()> {
        let i = index(h)?;
        last = Some(last.map_or(i, |l| l.max(i)));
        Ok(())
    };
    for h in reads {
        consider(h)?;
    }
    for c in &req.captures {
        consider(&c.at)?;
    }
    match req.rows {
        Rows::Path { path, .. } => {
            for seg in &path.segments {
                consider(&seg.at)?;
            }
        }
        Rows::Specs(specs) => {
            for r in specs {
                for (h, _) in &r.replace {
                    consider(h)?;
                }
                for (h, _, _) in &r.patch {
                    consider(h)?;
                }
            }
        }
        Rows::Fill { at, .. } => consider(&at)?,
        Rows::Count(_) => {}
    }
    Ok(last.map(|i| points[i].name))
}

/// Stacks per-row tensors `[n, ...]`.
fn stack(rows: &[&Tensor], dtype: DType) -> Result<Tensor> {
    let first = rows
        .first()
        .ok_or_else(|| Error::Internal("stack of no rows".into()))?;
    let mut v = Vec::with_capacity(first.numel() * rows.len());
    for r in rows {
        r.same_shape("probe rows", first)?;
        v.extend(r.to_vec_f64()?);
    }
    let mut shape = vec![rows.len()];
    shape.extend_from_slice(first.shape());
    Tensor::from_f64_on(&v, &shape, dtype, first.device())
}

/// Builds the hooks of chunk `r`.
fn chunk_hooks(
    s: &Subject,
    req: &Request,
    r: &Range<usize>,
    tape: &Tape,
    stop: Option<HookName>,
) -> Result<Hooks> {
    let (dtype, device) = (s.model.dtype(), s.model.device());
    let n = r.len();
    let leaf = |t: Tensor| {
        if req.backward {
            tape.var(t)
        } else {
            Var::constant(t)
        }
    };
    let mut hooks = Hooks::new();
    let mut names: Vec<String> = req.captures.iter().map(|c| c.at.to_string()).collect();
    if let Objective::Custom { reads, .. } = req.objective {
        names.extend(reads.iter().map(|h| h.to_string()));
    }
    match req.rows {
        Rows::Count(_) => {}
        Rows::Fill { at, fill, .. } => {
            let shape = s.shape_of(at)?;
            let per: usize = shape.iter().product();
            let mut v = vec![0.0; n * per];
            for (i, k) in r.clone().enumerate() {
                fill(k, &mut v[i * per..(i + 1) * per])?;
            }
            let mut full = vec![n];
            full.extend_from_slice(&shape);
            hooks = hooks.replace(
                &at.to_string(),
                leaf(Tensor::from_f64_on(&v, &full, dtype, device)?),
            );
        }
        Rows::Path { path, alphas } => {
            for (i, seg) in path.segments.iter().enumerate() {
                let pts = path.points(i, &alphas[r.clone()])?;
                hooks = hooks.replace(&seg.at.to_string(), leaf(pts));
            }
        }
        Rows::Specs(specs) => {
            let rows = &specs[r.clone()];
            // Every boundary any row of the chunk touches.
            let mut touched: BTreeMap<HookName, ()> = BTreeMap::new();
            for row in rows {
                for (h, _) in &row.replace {
                    touched.insert(*h, ());
                }
                for (h, _, _) in &row.patch {
                    touched.insert(*h, ());
                }
            }
            for (h, ()) in touched {
                let shape = s.shape_of(h)?;
                let per: usize = shape.iter().product();
                let all_replace = rows.iter().all(|row| {
                    row.replace.iter().any(|(n, _)| *n == h) && !row.patch.iter().any(|p| p.0 == h)
                });
                if all_replace {
                    let vals: Vec<&Tensor> = rows
                        .iter()
                        .map(|row| &row.replace.iter().find(|(n, _)| *n == h).unwrap().1)
                        .collect();
                    for v in &vals {
                        check_row(h, v, &shape)?;
                    }
                    hooks = hooks.replace(&h.to_string(), leaf(stack(&vals, dtype)?));
                    continue;
                }
                let mut keep = vec![1.0; n * per];
                let mut values = vec![0.0; n * per];
                for (i, row) in rows.iter().enumerate() {
                    let (k, v) = (
                        &mut keep[i * per..(i + 1) * per],
                        &mut values[i * per..(i + 1) * per],
                    );
                    if let Some((_, t)) = row.replace.iter().find(|(n, _)| *n == h) {
                        check_row(h, t, &shape)?;
                        k.fill(0.0);
                        v.copy_from_slice(&t.to_vec_f64()?);
                    }
                    for (_, kt, vt) in row.patch.iter().filter(|p| p.0 == h) {
                        check_row(h, kt, &shape)?;
                        check_row(h, vt, &shape)?;
                        let (kv, vv) = (kt.to_vec_f64()?, vt.to_vec_f64()?);
                        // Patches compose: (x ⊙ k₁ + v₁) ⊙ k₂ + v₂.
                        for j in 0..per {
                            k[j] *= kv[j];
                            v[j] = v[j] * kv[j] + vv[j];
                        }
                    }
                }
                let mut full = vec![n];
                full.extend_from_slice(&shape);
                hooks = hooks.patch_var(
                    &h.to_string(),
                    Tensor::from_f64_on(&keep, &full, dtype, device)?,
                    leaf(Tensor::from_f64_on(&values, &full, dtype, device)?),
                );
            }
            // Head masks: one factor per (row, head); rows without a mask for a layer keep 1.
            let mut layers: BTreeMap<usize, usize> = BTreeMap::new();
            for row in rows {
                for (l, f) in &row.head_masks {
                    layers.insert(*l, f.len());
                }
            }
            for (l, h) in layers {
                let mut factors = vec![1.0; n * h];
                for (i, row) in rows.iter().enumerate() {
                    for (_, f) in row.head_masks.iter().filter(|m| m.0 == l) {
                        if f.len() != h {
                            return Err(Error::Mismatch {
                                what: format!("head mask of layer {l}"),
                                detail: format!("rows give {} and {h} factors", f.len()),
                            });
                        }
                        for (o, x) in factors[i * h..(i + 1) * h].iter_mut().zip(f) {
                            *o *= x;
                        }
                    }
                }
                hooks = hooks.mask_heads_rows(l, n, factors);
            }
        }
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    hooks = hooks.capture(&refs);
    if req.backward {
        // A boundary whose gradient is asked for starts the tape when nothing upstream of it is
        // recorded (the first replaced boundary, or the first captured one).
        let grads: Vec<String> = req
            .captures
            .iter()
            .filter(|c| c.grad)
            .map(|c| c.at.to_string())
            .collect();
        let refs: Vec<&str> = grads.iter().map(String::as_str).collect();
        hooks = hooks.track(tape, &refs);
    }
    if let Some(h) = stop {
        hooks = hooks.stop_after(&h.to_string());
    }
    Ok(hooks)
}

fn check_row(at: HookName, t: &Tensor, shape: &[usize]) -> Result<()> {
    if t.shape() != shape {
        return Err(Error::Mismatch {
            what: format!("row value for `{at}`"),
            detail: format!(
                "has shape {:?}; the boundary has {shape:?} per row",
                t.shape()
            ),
        });
    }
    Ok(())
}

/// Runs the probe: F per row (all rows, in order), and every chunk's captures to `visit`.
pub fn run(s: &Subject, req: &Request, progress: Progress, visit: ChunkVisit) -> Result<Vec<f64>> {
    let n = req.rows.len();
    if n == 0 {
        return Err(Error::Empty("probe rows"));
    }
    if let Rows::Path { path, .. } = req.rows {
        path.check(s)?;
    }
    for c in &req.captures {
        s.shape_of(c.at)?;
    }
    if req.chunking == Chunking::Rows(0) {
        return Err(Error::BadValue {
            name: "batch",
            detail: "must be at least 1 row per forward".into(),
        });
    }
    let stop = stop_after(s, req)?;
    let per_chunk = chunk_rows(s, req);
    let mut fs = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let r = start..(start + per_chunk).min(n);
        start = r.end;
        // Without gradients every leaf is a constant, so nothing records onto the tape.
        let tape = Tape::new();
        let mut hooks = chunk_hooks(s, req, &r, &tape, stop)?;
        count_forward(r.len());
        let out = match s
            .model
            .forward(&Batch::repeat(s.ids, s.type_ids, r.len()), &mut hooks)
        {
            Ok(o) => Some(o),
            Err(_) if hooks.stopped() => None,
            Err(e) => return Err(e),
        };
        let f = match req.objective {
            Objective::None => {
                if req.backward {
                    return Err(Error::Mismatch {
                        what: "probe".into(),
                        detail: "gradients were requested without an objective".into(),
                    });
                }
                Var::constant(Tensor::zeros_on(
                    &[r.len()],
                    s.model.dtype(),
                    s.model.device(),
                )?)
            }
            Objective::Target(t) => {
                let o = out
                    .as_ref()
                    .ok_or_else(|| Error::Internal("target without a model output".into()))?;
                t.eval(o)?
            }
            Objective::Custom { eval, .. } => eval(&Forward {
                hooks: &hooks,
                output: out.as_ref(),
                rows: r.clone(),
            })?,
        };
        drop(out);
        if f.shape().first() != Some(&r.len()) {
            return Err(Error::Mismatch {
                what: "objective".into(),
                detail: format!(
                    "returned shape {:?}; expected [{}, ...] (one entry per row)",
                    f.shape(),
                    r.len()
                ),
            });
        }
        let seed = match (req.cotangent, f.shape().len()) {
            (Some(c), _) => {
                let seed = c(r.clone(), f.shape())?;
                if seed.shape() != f.shape() {
                    return Err(Error::Mismatch {
                        what: "cotangent".into(),
                        detail: format!(
                            "has shape {:?}; the objective has {:?}",
                            seed.shape(),
                            f.shape()
                        ),
                    });
                }
                seed.to_dtype(f.dtype())?
            }
            (None, 1) => Tensor::ones_on(f.shape(), f.dtype(), f.value().device())?,
            (None, _) if !req.backward => {
                Tensor::zeros_on(f.shape(), f.dtype(), f.value().device())?
            }
            (None, _) => {
                return Err(Error::Mismatch {
                    what: "objective".into(),
                    detail: format!(
                        "is a vector per row (shape {:?}) and the request has no cotangent",
                        f.shape()
                    ),
                })
            }
        };
        let fv = scalarise(f.value(), &seed, r.len())?;
        let captured: Vec<Var> =
            req.captures
                .iter()
                .map(|c| {
                    hooks.get(&c.at.to_string()).cloned().ok_or_else(|| {
                        Error::Internal(format!("boundary `{}` was not captured", c.at))
                    })
                })
                .collect::<Result<_>>()?;
        drop(hooks);
        let values: Vec<Option<Tensor>> = req
            .captures
            .iter()
            .zip(&captured)
            .map(|(c, v)| c.value.then(|| v.value().clone()))
            .collect();
        let mut grads: Vec<Option<Tensor>> = vec![None; req.captures.len()];
        if req.backward {
            let idx: Vec<usize> = (0..req.captures.len())
                .filter(|&i| req.captures[i].grad)
                .collect();
            let wrt: Vec<&Var> = idx.iter().map(|&i| &captured[i]).collect();
            let gs = tape.grad(&[&f], &[seed], &wrt)?;
            for (i, g) in idx.into_iter().zip(gs) {
                let v = &captured[i];
                grads[i] = Some(match g {
                    Some(g) => g,
                    None => Tensor::zeros_on(v.shape(), v.dtype(), v.value().device())?,
                });
            }
        }
        drop(captured);
        visit(ChunkOut {
            rows: r.clone(),
            f: &fv,
            objective: f.value().clone(),
            values,
            grads,
        })?;
        fs.extend(fv);
        progress(r.end, n);
    }
    Ok(fs)
}

/// ⟨seed_row, f_row⟩ per row.
fn scalarise(f: &Tensor, seed: &Tensor, rows: usize) -> Result<Vec<f64>> {
    let fv = f.to_vec_f64()?;
    if f.rank() == 1 {
        return Ok(fv);
    }
    let sv = seed.to_vec_f64()?;
    let per = fv.len() / rows.max(1);
    Ok(fv
        .chunks(per.max(1))
        .zip(sv.chunks(per.max(1)))
        .map(|(a, b)| a.iter().zip(b).map(|(a, b)| a * b).sum())
        .collect())
}

/// The objective per row, no gradients (a forward only).
pub fn values(
    s: &Subject,
    rows: Rows,
    objective: Objective,
    chunking: Chunking,
) -> Result<Vec<f64>> {
    let req = Request::new(rows, objective).chunking(chunking);
    run(s, &req, &mut |_, _| {}, &mut |_| Ok(()))
}
