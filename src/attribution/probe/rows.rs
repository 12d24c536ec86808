//! What the rows of a probe do: paths of segments, per-row specs, lazily filled rows, and the
//! captures asked of them.

use super::Subject;
use crate::models::HookName;
use crate::{Error, Result, Tensor};

/// One interpolated boundary of a path: from `baseline` (x′, α = 0) to `input` (x, α = 1), both
/// of the boundary's per-row shape.
#[derive(Debug, Clone)]
pub struct Segment {
    pub at: HookName,
    pub input: Tensor,
    pub baseline: Tensor,
}

/// A straight path through one or more boundaries at once.
#[derive(Debug, Clone)]
pub struct Path {
    pub segments: Vec<Segment>,
}

impl Path {
    /// A path through one boundary.
    pub fn straight(at: HookName, input: Tensor, baseline: Tensor) -> Path {
        Path {
            segments: vec![Segment {
                at,
                input,
                baseline,
            }],
        }
    }

    /// Checks shapes (against the model's registry) and dtypes.
    pub fn check(&self, s: &Subject) -> Result<()> {
        if self.segments.is_empty() {
            return Err(Error::Empty("path (no segments)"));
        }
        for seg in &self.segments {
            seg.input.same_shape("path", &seg.baseline)?;
            seg.input.same_dtype("path", &seg.baseline)?;
            let shape = s.shape_of(seg.at)?;
            if seg.input.shape() != shape.as_slice() {
                return Err(Error::Mismatch {
                    what: format!("path segment at `{}`", seg.at),
                    detail: format!(
                        "has shape {:?}; the boundary has {:?} per row",
                        seg.input.shape(),
                        shape
                    ),
                });
            }
            if seg.input.dtype() != s.model.dtype() {
                return Err(Error::Mismatch {
                    what: format!("path segment at `{}`", seg.at),
                    detail: format!(
                        "is {} but the model computes in {}",
                        seg.input.dtype(),
                        s.model.dtype()
                    ),
                });
            }
        }
        Ok(())
    }

    /// `[alphas.len(), ...]`: segment `i` at every α (α = 0 and 1 give x′ and x exactly).
    pub fn points(&self, i: usize, alphas: &[f64]) -> Result<Tensor> {
        let seg = &self.segments[i];
        let x = seg.input.to_vec_f64()?;
        let b = seg.baseline.to_vec_f64()?;
        let mut v = Vec::with_capacity(x.len() * alphas.len());
        for &a in alphas {
            if a == 1.0 {
                v.extend_from_slice(&x);
            } else if a == 0.0 {
                v.extend_from_slice(&b);
            } else {
                v.extend(x.iter().zip(&b).map(|(x, b)| b + a * (x - b)));
            }
        }
        let mut shape = vec![alphas.len()];
        shape.extend_from_slice(seg.input.shape());
        Tensor::from_f64_on(&v, &shape, seg.input.dtype(), seg.input.device())
    }
}

/// What one row of [`Rows::Specs`] does at the boundaries (per-row shapes, no batch axis).
#[derive(Debug, Clone, Default)]
pub struct RowSpec {
    /// The boundary takes this value.
    pub replace: Vec<(HookName, Tensor)>,
    /// The boundary continues as `x ⊙ keep + values`.
    pub patch: Vec<(HookName, Tensor, Tensor)>,
    /// Layer l's attention pattern is multiplied by one factor per head (0 removes a head).
    pub head_masks: Vec<(usize, Vec<f64>)>,
}

impl RowSpec {
    pub fn new() -> RowSpec {
        RowSpec::default()
    }
    pub fn replace(mut self, at: HookName, value: Tensor) -> RowSpec {
        self.replace.push((at, value));
        self
    }
    pub fn patch(mut self, at: HookName, keep: Tensor, values: Tensor) -> RowSpec {
        self.patch.push((at, keep, values));
        self
    }
    pub fn mask_heads(mut self, layer: usize, factors: Vec<f64>) -> RowSpec {
        self.head_masks.push((layer, factors));
        self
    }
}

/// The rows of a probe.
#[derive(Clone, Copy)]
pub enum Rows<'a> {
    /// `n` unmodified forwards (captures and gradients of the plain input).
    Count(usize),
    /// Row k is the path at `alphas[k]`.
    Path { path: &'a Path, alphas: &'a [f64] },
    /// Row k is `specs[k]`.
    Specs(&'a [RowSpec]),
    /// Row k replaces boundary `at` by the value `fill(k, row)` writes (per-row shape, f64),
    /// built chunk by chunk (perturbations and noise samples, too many to hold at once).
    Fill {
        n: usize,
        at: HookName,
        fill: FillFn<'a>,
    },
}

/// Writes row k's value of a [`Rows::Fill`] boundary.
pub type FillFn<'a> = &'a dyn Fn(usize, &mut [f64]) -> Result<()>;

impl std::fmt::Debug for Rows<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rows::Count(n) => write!(f, "Rows::Count({n})"),
            Rows::Path { alphas, .. } => write!(f, "Rows::Path({} points)", alphas.len()),
            Rows::Specs(s) => write!(f, "Rows::Specs({} rows)", s.len()),
            Rows::Fill { n, at, .. } => write!(f, "Rows::Fill({n} rows at {at})"),
        }
    }
}

impl Rows<'_> {
    pub fn len(&self) -> usize {
        match self {
            Rows::Count(n) => *n,
            Rows::Path { alphas, .. } => alphas.len(),
            Rows::Specs(s) => s.len(),
            Rows::Fill { n, .. } => *n,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A boundary to capture: its value and/or ∂objective/∂boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capture {
    pub at: HookName,
    pub value: bool,
    pub grad: bool,
}

impl Capture {
    pub fn value(at: HookName) -> Capture {
        Capture {
            at,
            value: true,
            grad: false,
        }
    }
    pub fn grad(at: HookName) -> Capture {
        Capture {
            at,
            value: false,
            grad: true,
        }
    }
    pub fn both(at: HookName) -> Capture {
        Capture {
            at,
            value: true,
            grad: true,
        }
    }
}
