//! The attribution tree of ATTATTR (METHODS.md §2.6; `examples/attribution_tree.py` of the
//! authors' code): which token takes information from which, layer by layer, from the
//! head-summed attributions of every layer.

use crate::{Error, Result};

/// One edge of the attribution tree: query token `from` takes information from key token `to`
/// at `layer`, with the layer's normalised, head-summed attribution `weight` (> threshold).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TreeEdge {
    pub from: usize,
    pub to: usize,
    pub layer: usize,
    pub weight: f64,
}

/// A token of the tree and the height the authors draw it at (the root at (L−1)/L).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TreeNode {
    pub token: usize,
    pub height: f64,
}

/// The attribution tree (METHODS.md §2.6, `examples/attribution_tree.py` of the authors' code).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Tree {
    pub threshold: f64,
    pub root: usize,
    /// Tokens on an edge (the root alone when there is none), ascending.
    pub nodes: Vec<TreeNode>,
    /// In the order the authors' loop adds them (top layer first).
    pub edges: Vec<TreeEdge>,
}

/// The attribution tree of an encoder input from the head-summed attributions of **every**
/// layer (`per_layer[l]` is `[pos, pos]`, row = query), with threshold τ (the authors' 0.4):
///
/// 1. each layer is divided by |max| of its rows 1.. (the first token, `[CLS]`, excluded) and
///    entries ≤ τ are zeroed;
/// 2. the root is the token with the largest row sum of the layer-summed attribution (divided by
///    its |max|, diagonal, negatives and the `[CLS]` row zeroed), not `[CLS]`;
/// 3. from layer L−2 (the authors never use the last layer) down to 0, edges (i → j) where the
///    normalised attribution is > τ, by the authors' fixed/unfixed rules; heights fall by 1/L per
///    level from (L−1)/L.
///
/// With 12 layers this is the authors' code exactly (layer index 10 first, heights in twelfths).
pub fn attribution_tree(per_layer: &[Vec<f64>], pos: usize, threshold: f64) -> Result<Tree> {
    let nl = per_layer.len();
    if nl < 2 {
        return Err(Error::BadValue {
            name: "tree",
            detail: format!("needs every layer of a model with at least 2 layers, got {nl}"),
        });
    }
    if pos < 2 {
        return Err(Error::BadValue {
            name: "tree",
            detail: "needs at least 2 tokens".into(),
        });
    }
    if let Some(l) = per_layer.iter().position(|m| m.len() != pos * pos) {
        return Err(Error::Mismatch {
            what: format!("attribution of layer {l}"),
            detail: format!("has {} entries, expected {pos}²", per_layer[l].len()),
        });
    }
    if !(threshold.is_finite()) {
        return Err(Error::BadValue {
            name: "threshold",
            detail: format!("must be a finite number, got {threshold}"),
        });
    }
    // proportion_all[l] /= |max(proportion_all[l][1:, :])|; then zero entries ≤ τ.
    let prop: Vec<Vec<f64>> = per_layer
        .iter()
        .map(|m| {
            let mx = m[pos..].iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let d = mx.abs();
            m.iter()
                .map(|v| {
                    let x = v / d;
                    if x > threshold {
                        x
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect();
    // The root: layer-summed attribution / |max|, positive off-diagonal, [CLS] row zeroed.
    let mut comb = vec![0.0; pos * pos];
    for m in per_layer {
        comb.iter_mut().zip(m).for_each(|(c, v)| *c += v);
    }
    let mx = comb.iter().copied().fold(f64::NEG_INFINITY, f64::max).abs();
    let mut row_sums = vec![0.0; pos];
    for i in 1..pos {
        for j in 0..pos {
            let v = comb[i * pos + j] / mx;
            if i != j && v > 0.0 {
                row_sums[i] += v;
            }
        }
    }
    // argsort descending; the first that is not token 0.
    let mut order: Vec<usize> = (0..pos).collect();
    order.sort_by(|&a, &b| row_sums[b].total_cmp(&row_sums[a]));
    let root = if order[0] != 0 { order[0] } else { order[1] };
    let lf = nl as f64;
    let mut height = vec![0.0f64; pos];
    // -1: not in the tree, 0: in the tree but not expanded, 1: expanded.
    let mut fixed = vec![-1i8; pos];
    let mut edges: Vec<TreeEdge> = Vec::new();
    height[root] = (lf - 1.0) / lf;
    fixed[root] = 0;
    let top = nl - 2;
    for i in 0..pos {
        let w = prop[top][root * pos + i];
        if i != root && w > threshold {
            fixed[i] = 0;
            fixed[root] = 1;
            edges.push(TreeEdge {
                from: root,
                to: i,
                layer: top,
                weight: w,
            });
        }
    }
    for l in (0..top).rev() {
        for i in 1..pos {
            for j in 0..pos {
                let w = prop[l][i * pos + j];
                if w < threshold || fixed[i] == -1 {
                    continue;
                }
                if fixed[j] == 1 {
                    continue;
                }
                if edges.iter().any(|e| e.from == i && e.to == j) {
                    continue;
                }
                // i is in the tree here (0 or 1): the authors' two rules `0 and 0`, `1 and 0`.
                if fixed[j] == 0 {
                    continue;
                }
                if fixed[i] == 0 && fixed[j] == -1 {
                    fixed[i] = 1;
                    fixed[j] = 0;
                    height[j] = (height[i] * lf - 1.0) / lf;
                }
                if fixed[i] == 1 && fixed[j] == -1 {
                    fixed[j] = 0;
                    height[j] = height.iter().copied().fold(f64::INFINITY, f64::min);
                }
                edges.push(TreeEdge {
                    from: i,
                    to: j,
                    layer: l,
                    weight: w,
                });
            }
        }
    }
    let mut on: Vec<usize> = edges.iter().flat_map(|e| [e.from, e.to]).collect();
    on.push(root);
    on.sort_unstable();
    on.dedup();
    let nodes = on
        .into_iter()
        .map(|t| TreeNode {
            token: t,
            height: height[t],
        })
        .collect();
    Ok(Tree {
        threshold,
        root,
        nodes,
        edges,
    })
}
