//! [`Explainer::attattr`]: self-attention attribution (ATTATTR) of every requested layer in one
//! sweep, per-layer completeness, head importance and the attribution tree.

use super::{AdaptiveOptions, Explainer, Header, Input, Quadrature};
use crate::attribution::attattr::{
    attention_attribution, attention_attribution_adaptive, attribution_tree, AttAttr,
    AttAttrProblem, Tree,
};
use crate::attribution::probe::Chunking;
use crate::attribution::Baseline;
use crate::integrate::Rule;
use crate::{Error, Result};
use serde::Serialize;

/// Relative completeness delta above which a layer is flagged.
pub const ROUGH: f64 = 1e-2;

/// Options of [`Explainer::attattr`].
#[derive(Debug, Clone, PartialEq)]
pub struct AttAttrOptions {
    /// Layers to attribute (`None`: all, in one sweep).
    pub layers: Option<Vec<usize>>,
    /// The rule (default: the paper's left Riemann sum from 0 with m = 20).
    pub quadrature: Quadrature,
    /// Refine each layer until its relative completeness delta is ≤ the tolerance.
    pub adaptive: Option<AdaptiveOptions>,
    /// Build the attribution tree with this threshold τ (the authors' 0.4); needs every layer of
    /// an encoder.
    pub tree: Option<f64>,
}

impl Default for AttAttrOptions {
    fn default() -> AttAttrOptions {
        AttAttrOptions {
            layers: None,
            quadrature: Quadrature {
                rule: Rule::RiemannLeft,
                steps: 20,
            },
            adaptive: None,
            tree: None,
        }
    }
}

/// One layer of an [`AttAttrReport`].
#[derive(Debug, Clone, Serialize)]
pub struct AttAttrLayer {
    pub layer: usize,
    /// `[head][query i][key j]`: A_l.
    pub attention: Vec<Vec<Vec<f64>>>,
    /// `[head][query i][key j]`: Attr_l = A_l ⊙ ∫ ∂F(αA_l)/∂A_l dα.
    pub attribution: Vec<Vec<Vec<f64>>>,
    /// F(A).
    pub f_input: f64,
    /// F(0·A_l): this layer's pattern replaced by zeros.
    pub f_start: f64,
    /// Σ Attr_l.
    pub sum: f64,
    /// sum − (f_input − f_start).
    pub delta: f64,
    pub relative_delta: f64,
    /// `max_{i,j} Attr_l[h]`, per head.
    pub head_importance: Vec<f64>,
    pub steps: usize,
    pub points_used: usize,
    /// With a tolerance: whether this layer met it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converged: Option<bool>,
}

/// One strong token-to-token connection (head-summed attribution of a layer).
#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    pub layer: usize,
    /// Query token (the one that reads).
    pub from: usize,
    /// Key token (the one read).
    pub to: usize,
    pub attribution: f64,
}

/// [`Explainer::attattr`]'s report (JSON: docs/JSON.md, `gradpath attattr`).
#[derive(Debug, Clone, Serialize)]
pub struct AttAttrReport {
    #[serde(flatten)]
    pub header: Header,
    pub quadrature: &'static str,
    pub steps: usize,
    pub tolerance: Option<f64>,
    pub n_layers: usize,
    pub n_heads: usize,
    pub layers: Vec<AttAttrLayer>,
    /// The largest relative completeness delta over the layers.
    pub worst_relative_delta: f64,
    /// The 20 strongest head-summed connections over the attributed layers.
    pub top_connections: Vec<Connection>,
    pub tree: Option<Tree>,
    pub rough: bool,
    pub warnings: Vec<String>,
}

fn nest(v: &[f64], heads: usize, pos: usize) -> Vec<Vec<Vec<f64>>> {
    v.chunks(pos * pos)
        .take(heads)
        .map(|h| h.chunks(pos).map(<[f64]>::to_vec).collect())
        .collect()
}

impl Explainer {
    /// ATTATTR (Hao et al. 2021) of the input: every requested layer's attention probabilities
    /// integrated from zero, all layers in one sweep of (layer, α) rows; head importance per
    /// layer; the attribution tree with [`AttAttrOptions::tree`]. F is the input's target
    /// (class probability for the paper; any kind works).
    pub fn attattr(&self, input: &Input, o: &AttAttrOptions) -> Result<AttAttrReport> {
        let model = self.model();
        let n_layers = model.n_layers();
        let layers: Vec<usize> = match &o.layers {
            Some(l) => l.clone(),
            None => (0..n_layers).collect(),
        };
        if let Some(&l) = layers.iter().find(|&&l| l >= n_layers) {
            return Err(Error::OutOfRange {
                what: "layer",
                index: l,
                len: n_layers,
            });
        }
        if let Some(tau) = o.tree {
            if model.is_decoder() {
                return Err(Error::BadValue {
                    name: "tree",
                    detail: "the attribution tree is defined for encoders (its rules skip the [CLS] token and the last layer); this is a causal language model".into(),
                });
            }
            let mut sorted = layers.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != n_layers {
                return Err(Error::BadValue {
                    name: "tree",
                    detail: format!(
                        "needs every layer (all {n_layers}); {} were requested",
                        sorted.len()
                    ),
                });
            }
            if !tau.is_finite() {
                return Err(Error::BadValue {
                    name: "threshold",
                    detail: format!("must be a finite number, got {tau}"),
                });
            }
        }
        o.quadrature.check()?;
        let p = self.prepare(input, &Baseline::Pad, true)?;
        let target = p.target()?;
        let chunking = match self.options.batch {
            Some(b) => Chunking::Rows(b),
            None => Chunking::Budget(self.options.memory_budget),
        };
        let problem = AttAttrProblem {
            model,
            ids: &p.encoded.ids,
            type_ids: &p.encoded.type_ids,
            target,
            layers: &layers,
            chunking,
        };
        let mut progress = |d: usize, t: usize| self.report_progress(d, t);
        let r: AttAttr = match &o.adaptive {
            None => {
                let (alphas, weights) = o.quadrature.nodes(o.quadrature.steps)?;
                attention_attribution(&problem, &alphas, &weights, &mut progress)?
            }
            Some(a) => {
                if !(a.tolerance.is_finite() && a.tolerance > 0.0) {
                    return Err(Error::BadValue {
                        name: "tolerance",
                        detail: format!("must be a finite number > 0, got {}", a.tolerance),
                    });
                }
                let start = o
                    .quadrature
                    .steps
                    .min(16)
                    .max(o.quadrature.rule.min_points());
                attention_attribution_adaptive(
                    &problem,
                    o.quadrature.rule,
                    start,
                    a.tolerance,
                    a.max_points,
                    &mut progress,
                )?
            }
        };
        let (heads, pos) = (r.n_heads, r.pos);
        let tree = match o.tree {
            Some(tau) => {
                let per: Vec<Vec<f64>> = r.layers.iter().map(|l| l.head_sum(pos)).collect();
                Some(attribution_tree(&per, pos, tau)?)
            }
            None => None,
        };
        let mut top: Vec<Connection> = Vec::new();
        for l in &r.layers {
            for (k, v) in l.head_sum(pos).into_iter().enumerate() {
                top.push(Connection {
                    layer: l.layer,
                    from: k / pos,
                    to: k % pos,
                    attribution: v,
                });
            }
        }
        top.sort_by(|a, b| b.attribution.abs().total_cmp(&a.attribution.abs()));
        top.truncate(20);
        let mut warnings = Vec::new();
        if let Some(w) = r.warning(ROUGH) {
            warnings.push(w);
        }
        let unconverged: Vec<String> = r
            .layers
            .iter()
            .filter(|l| l.refinement.as_ref().is_some_and(|f| !f.converged))
            .map(|l| l.layer.to_string())
            .collect();
        if !unconverged.is_empty() {
            warnings.push(format!(
                "--tolerance was not reached within the point budget at layer(s) {}; raise --max-points",
                unconverged.join(", ")
            ));
        }
        let worst = r.worst_relative_delta();
        let steps = r.layers.iter().map(|l| l.steps).max().unwrap_or(0);
        Ok(AttAttrReport {
            header: self.header("attention_attribution", input, &p),
            quadrature: o.quadrature.rule.name(),
            steps,
            tolerance: o.adaptive.map(|a| a.tolerance),
            n_layers,
            n_heads: heads,
            layers: r
                .layers
                .iter()
                .map(|l| AttAttrLayer {
                    layer: l.layer,
                    attention: nest(&l.attention, heads, pos),
                    attribution: nest(&l.attribution, heads, pos),
                    f_input: l.f_input,
                    f_start: l.f_start,
                    sum: l.sum,
                    delta: l.delta,
                    relative_delta: l.relative_delta,
                    head_importance: l.head_importance.clone(),
                    steps: l.steps,
                    points_used: l.points_used,
                    converged: l.refinement.as_ref().map(|f| f.converged),
                })
                .collect(),
            worst_relative_delta: worst,
            top_connections: top,
            tree,
            rough: !warnings.is_empty(),
            warnings,
        })
    }
}
