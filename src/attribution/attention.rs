//! Attention maps: the softmax probabilities of every layer and head for one input, read at
//! `blocks.{l}.attn.hook_pattern` (optionally with head masks applied).

use crate::models::{Batch, Hooks, Model};
use crate::{Result, Tape};

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
/// [`Hooks::mask_heads`].
pub fn attention_maps(
    model: &dyn Model,
    ids: &[usize],
    type_ids: &[usize],
    head_masks: &[(usize, Vec<f64>)],
) -> Result<AttentionMaps> {
    let tape = Tape::new();
    let _g = tape.no_grad();
    let mut hooks = Hooks::new().capture_all();
    for (l, m) in head_masks {
        hooks = hooks.mask_heads(*l, m.clone());
    }
    model.forward(&Batch::repeat(ids, type_ids, 1), &mut hooks)?;
    let mut maps = Vec::new();
    let (mut n_layers, mut n_heads) = (0, 0);
    for (name, v) in hooks.captured() {
        if name.ends_with(".attn.hook_pattern") {
            n_layers += 1;
            n_heads = v.shape()[1];
            maps.extend(v.value().to_vec_f64()?);
        }
    }
    Ok(AttentionMaps {
        n_layers,
        n_heads,
        pos: ids.len(),
        maps,
    })
}
