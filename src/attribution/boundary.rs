//! The boundary lookups the methods and the CLI need, all from the model's static hook-point
//! registry ([`Model::hook_points`], no forward): the boundaries of a model and their shapes, the
//! per-layer names, and the values of a boundary at the two ends of a path (one forward).
//!
//! Every pass over the model goes through the probe ([`super::probe`]).

use super::ig::PathProblem;
use super::probe::{self, Capture, Chunking, Objective, Request, Rows};
use crate::models::{HookName, Model};
use crate::{Error, Result, Tensor};

/// Every boundary of `model` for an input of `ids.len()` tokens, with its shape per batch row
/// (batch axis dropped), in forward order. No forward pass.
pub fn boundaries(
    model: &dyn Model,
    ids: &[usize],
    _type_ids: &[usize],
) -> Result<Vec<(String, Vec<usize>)>> {
    Ok(model
        .hook_points(ids.len())
        .into_iter()
        .map(|p| (p.name.to_string(), p.shape))
        .collect())
}

/// The per-row shape of boundary `name`, or an error listing every valid name.
pub fn boundary_shape(all: &[(String, Vec<usize>)], name: &str) -> Result<Vec<usize>> {
    all.iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s.clone())
        .ok_or_else(|| Error::UnknownBoundary {
            name: name.to_string(),
            valid: all.iter().map(|(n, _)| n.clone()).collect(),
        })
}

/// Number of blocks: one more than the largest `l` of a `blocks.{l}.…` boundary.
pub fn n_layers(all: &[(String, Vec<usize>)]) -> usize {
    all.iter()
        .filter_map(|(n, _)| HookName::parse_opt(n)?.layer())
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
        return Err(Error::Empty("layer selection"));
    }
    let mut out = Vec::with_capacity(ls.len());
    for l in ls {
        if l >= n {
            return Err(Error::OutOfRange {
                what: "layer",
                index: l,
                len: n,
            });
        }
        let name = format!("blocks.{l}.{suffix}");
        boundary_shape(all, &name)?;
        out.push(name);
    }
    Ok(out)
}

/// The values of a boundary at the two ends of a path, and F there.
#[derive(Debug, Clone)]
pub struct AtEndpoints {
    /// The boundary's value on the input (path end x), one row.
    pub input: Tensor,
    /// Its value on the baseline (path start x′).
    pub baseline: Tensor,
    pub f_input: f64,
    pub f_baseline: f64,
}

impl PathProblem<'_> {
    /// The values of boundary `name` at the path's ends (x and x′ at the path boundary, exactly)
    /// and F there, from one forward of two rows — the path ends of layer IG at `name`.
    pub fn boundary_at_endpoints(&self, name: &str) -> Result<AtEndpoints> {
        let s = self.subject();
        let at = s.boundary(name)?;
        let path = self.path()?;
        let alphas = [1.0, 0.0];
        let req = Request::new(
            Rows::Path {
                path: &path,
                alphas: &alphas,
            },
            Objective::Target(self.target),
        )
        .capture(Capture::value(at))
        .chunking(Chunking::Rows(2));
        let mut y: Option<Tensor> = None;
        let f = probe::run(&s, &req, &mut |_, _| {}, &mut |c| {
            y = c.values[0].clone();
            Ok(())
        })?;
        let y = y.ok_or_else(|| Error::Internal(format!("`{name}` was not captured")))?;
        let per: Vec<usize> = y.shape()[1..].to_vec();
        let v = y.to_vec_f64()?;
        let n = v.len() / 2;
        Ok(AtEndpoints {
            input: Tensor::from_f64(&v[..n], &per, y.dtype())?,
            baseline: Tensor::from_f64(&v[n..], &per, y.dtype())?,
            f_input: f[0],
            f_baseline: f[1],
        })
    }
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
