//! Attention maps: the softmax probabilities of every layer and head for one input, read at
//! `blocks.{l}.attn.hook_pattern` (optionally with head masks applied).

use super::probe::{self, Capture, Objective, Request, RowSpec, Rows, Subject};
use crate::models::{HookName, Model, Site};
use crate::{Error, Result};

/// `maps[l][h][q][k]` flattened: `[layers, heads, pos, pos]`, row-major.
#[derive(Debug, Clone)]
pub struct AttentionMaps {
    pub n_layers: usize,
    pub n_heads: usize,
    pub pos: usize,
    pub maps: Vec<f64>,
}

impl AttentionMaps {
    /// One head's `[pos, pos]` map (row = query, column = key).
    pub fn head(&self, l: usize, h: usize) -> &[f64] {
        let n = self.pos * self.pos;
        let i = (l * self.n_heads + h) * n;
        &self.maps[i..i + n]
    }
}

/// Attention probabilities of every layer and head for `ids`; `head_masks` as in
/// [`crate::models::Hooks::mask_heads`]. One probe row without gradients; the forward stops
/// after the last layer's pattern.
pub fn attention_maps(
    model: &dyn Model,
    ids: &[usize],
    type_ids: &[usize],
    head_masks: &[(usize, Vec<f64>)],
) -> Result<AttentionMaps> {
    let s = Subject::new(model, ids, type_ids);
    let n_layers = model.n_layers();
    // the maps in f64, and about as much again for the JSON and HTML made from them
    crate::memory::check(
        "the attention maps",
        crate::memory::product(&[n_layers, model.n_heads(), ids.len(), ids.len(), 8, 4]),
        "shorten the text",
    )?;
    for (l, f) in head_masks {
        if *l >= n_layers {
            return Err(Error::OutOfRange {
                what: "layer",
                index: *l,
                len: n_layers,
            });
        }
        if f.len() != model.n_heads() {
            return Err(Error::Mismatch {
                what: format!("head mask for layer {l}"),
                detail: format!(
                    "has {} factors, the layer has {} heads",
                    f.len(),
                    model.n_heads()
                ),
            });
        }
    }
    let mut spec = RowSpec::new();
    for (l, f) in head_masks {
        spec = spec.mask_heads(*l, f.clone());
    }
    let specs = [spec];
    let mut req = Request::new(Rows::Specs(&specs), Objective::None);
    for l in 0..n_layers {
        req = req.capture(Capture::value(HookName::block(l, Site::Pattern)));
    }
    let mut maps = Vec::new();
    let mut n_heads = 0;
    probe::run(&s, &req, &mut |_, _| {}, &mut |c| {
        for v in c.values.iter().flatten() {
            n_heads = v.shape()[1];
            maps.extend(v.to_vec_f64()?);
        }
        Ok(())
    })?;
    Ok(AttentionMaps {
        n_layers,
        n_heads,
        pos: ids.len(),
        maps,
    })
}
