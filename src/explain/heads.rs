//! Head importance over a data set and pruning curves (Hao et al. 2021 §4; Michel et al. 2019):
//! [`Explainer::head_importance`] scores every head of a classifier by one [`HeadCriterion`],
//! [`Explainer::pruning_curve`] masks the least important heads and measures accuracy.

use super::{AttAttrOptions, Explainer, Input};
use crate::attribution::probe::{self, Capture, Chunking, Objective, Request, RowSpec, Rows};
use crate::attribution::{attention_maps, Baseline, TargetKind};
use crate::models::{HookName, Site};
use crate::train::data::Example;
use crate::{Error, Result};
use serde::Serialize;

/// How heads are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadCriterion {
    /// ATTATTR: mean over examples of max_{i,j} Attr_h (gold label's probability, left Riemann
    /// 20 unless the options say otherwise).
    Attattr,
    /// Raw attention: mean over examples of max_{i,j} A_h.
    Attention,
    /// Taylor (Michel et al. 2019, as the authors' `prune_head_with_taylor.py`): Σ over examples
    /// and tokens of |⟨∂L/∂ctx_h, ctx_h⟩| (L the cross-entropy of the gold label, ctx_h the
    /// head's context vectors, `blocks.{l}.attn.hook_z`), L2-normalised per layer.
    Taylor,
    /// A seeded random order.
    Random,
}

impl HeadCriterion {
    pub const ALL: [HeadCriterion; 4] = [
        HeadCriterion::Attattr,
        HeadCriterion::Attention,
        HeadCriterion::Taylor,
        HeadCriterion::Random,
    ];
    pub fn name(self) -> &'static str {
        match self {
            HeadCriterion::Attattr => "attattr",
            HeadCriterion::Attention => "attention",
            HeadCriterion::Taylor => "taylor",
            HeadCriterion::Random => "random",
        }
    }
    pub fn parse(s: &str) -> Result<HeadCriterion> {
        HeadCriterion::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| Error::Unknown {
                what: "head criterion",
                value: s.to_string(),
                valid: HeadCriterion::ALL.map(|c| c.name().to_string()).to_vec(),
            })
    }
}

/// Scores of every head, `[layer * n_heads + head]`, and what they cost.
#[derive(Debug, Clone, Serialize)]
pub struct HeadScores {
    pub criterion: HeadCriterion,
    pub examples: usize,
    /// `[layer][head]`.
    pub importance: Vec<Vec<f64>>,
    /// ATTATTR: the mean and the largest per-example worst-layer relative completeness delta.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_relative_delta: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_relative_delta: Option<f64>,
}

impl HeadScores {
    /// Head indices (`layer * n_heads + head`) from least to most important (ties by index).
    pub fn order(&self) -> Vec<usize> {
        let flat: Vec<f64> = self.importance.concat();
        let mut idx: Vec<usize> = (0..flat.len()).collect();
        idx.sort_by(|&a, &b| flat[a].total_cmp(&flat[b]).then(a.cmp(&b)));
        idx
    }
}

/// Accuracy with the lowest `fraction` of the heads masked, per criterion.
#[derive(Debug, Clone, Serialize)]
pub struct PruningCurve {
    pub criterion: HeadCriterion,
    pub fractions: Vec<f64>,
    pub heads_masked: Vec<usize>,
    pub accuracy: Vec<f64>,
}

/// splitmix64: the seeded random order needs no dependency.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Explainer {
    /// The class names of a sequence classifier, or an error for a model without a classifier
    /// head (head importance and pruning curves need one).
    pub fn classifier_labels(&self) -> Result<&[String]> {
        let labels = self.model().labels();
        if self.model().is_decoder() || labels.is_empty() {
            return Err(Error::TargetMismatch(
                "head importance and pruning need a sequence classifier (config.json with id2label); this model has no classifier head".into(),
            ));
        }
        Ok(labels)
    }

    fn classes(&self) -> Result<usize> {
        Ok(self.classifier_labels()?.len())
    }

    fn example_input(e: &Example, kind: TargetKind) -> Input {
        let mut i = Input::text(e.text.clone())
            .class(e.label.to_string())
            .kind(kind)
            .truncate(true);
        i.pair = e.text_pair.clone();
        i
    }

    /// One example's raw head scores by `criterion` (`[layer * n_heads + head]`): ATTATTR's
    /// max_{i,j} Attr_h, attention's max_{i,j} A_h, Taylor's Σ_tokens |⟨∂L/∂ctx_h, ctx_h⟩|, and
    /// for ATTATTR the worst layer's relative completeness delta. `Random` has no per-example
    /// scores (an error). [`Explainer::finish_importance`] turns their sum into the criterion's
    /// importance; keeping them per example lets a long run be checkpointed and resumed.
    pub fn example_head_scores(
        &self,
        e: &Example,
        criterion: HeadCriterion,
        attattr: &AttAttrOptions,
    ) -> Result<(Vec<f64>, Option<f64>)> {
        self.classes()?;
        let (nl, nh) = (self.model().n_layers(), self.model().n_heads());
        let mut acc = vec![0.0; nl * nh];
        let mut delta = None;
        match criterion {
            HeadCriterion::Random => {
                return Err(Error::BadValue {
                    name: "criterion",
                    detail: "the random order has no per-example scores".into(),
                })
            }
            HeadCriterion::Attattr => {
                let o = AttAttrOptions {
                    layers: None,
                    tree: None,
                    ..attattr.clone()
                };
                let r = self.attattr(&Self::example_input(e, TargetKind::Prob), &o)?;
                for l in &r.layers {
                    for (h, v) in l.head_importance.iter().enumerate() {
                        acc[l.layer * nh + h] += v;
                    }
                }
                delta = Some(r.worst_relative_delta);
            }
            HeadCriterion::Attention => {
                let p = self.prepare(
                    &Self::example_input(e, TargetKind::Prob),
                    &Baseline::Pad,
                    false,
                )?;
                let m = attention_maps(self.model(), &p.encoded.ids, &p.encoded.type_ids, &[])?;
                for l in 0..nl {
                    for h in 0..nh {
                        acc[l * nh + h] = m.head(l, h).iter().copied().fold(0.0, f64::max);
                    }
                }
            }
            HeadCriterion::Taylor => {
                let input = Self::example_input(e, TargetKind::LogProb);
                let p = self.prepare(&input, &Baseline::Pad, true)?;
                let target = p.target()?;
                let s = probe::Subject::new(self.model(), &p.encoded.ids, &p.encoded.type_ids);
                let mut req = Request::new(Rows::Count(1), Objective::Target(target))
                    .chunking(Chunking::Rows(1));
                for l in 0..nl {
                    req = req.capture(Capture::both(HookName::block(l, Site::Z)));
                }
                let dh = self.model().d_head();
                probe::run(&s, &req, &mut |_, _| {}, &mut |c| {
                    for l in 0..nl {
                        // hook_z: [1, pos, heads, d_head]; per (token, head) ⟨z, ∂L/∂z⟩.
                        let (z, g) = (c.value(l)?.to_vec_f64()?, c.grad(l)?.to_vec_f64()?);
                        for (zr, gr) in z.chunks(nh * dh).zip(g.chunks(nh * dh)) {
                            for h in 0..nh {
                                let d: f64 = zr[h * dh..(h + 1) * dh]
                                    .iter()
                                    .zip(&gr[h * dh..(h + 1) * dh])
                                    .map(|(a, b)| a * b)
                                    .sum();
                                acc[l * nh + h] += d.abs();
                            }
                        }
                    }
                    Ok(())
                })?;
            }
        }
        Ok((acc, delta))
    }

    /// The importance of `criterion` from the sum of `n` examples' raw scores (`sum`, ignored
    /// for `Random`) and their ATTATTR deltas: the mean (ATTATTR, attention), the per-layer L2
    /// normalisation (Taylor), or the rank in a permutation seeded by `seed` (random).
    pub fn finish_importance(
        &self,
        criterion: HeadCriterion,
        mut sum: Vec<f64>,
        n: usize,
        deltas: &[f64],
        seed: u64,
    ) -> HeadScores {
        let (nl, nh) = (self.model().n_layers(), self.model().n_heads());
        sum.resize(nl * nh, 0.0);
        match criterion {
            HeadCriterion::Random => {
                let mut state = seed;
                let mut idx: Vec<usize> = (0..nl * nh).collect();
                for i in (1..idx.len()).rev() {
                    let j = (splitmix(&mut state) % (i as u64 + 1)) as usize;
                    idx.swap(i, j);
                }
                // Importance = rank in the shuffled order.
                for (rank, &i) in idx.iter().enumerate() {
                    sum[i] = rank as f64;
                }
            }
            HeadCriterion::Taylor => {
                for row in sum.chunks_mut(nh) {
                    let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
                    row.iter_mut().for_each(|v| *v /= norm + 1e-20);
                }
            }
            _ => sum.iter_mut().for_each(|v| *v /= n.max(1) as f64),
        }
        let (mean, max) = if deltas.is_empty() {
            (None, None)
        } else {
            (
                Some(deltas.iter().sum::<f64>() / deltas.len() as f64),
                Some(deltas.iter().copied().fold(0.0, f64::max)),
            )
        };
        HeadScores {
            criterion,
            examples: if criterion == HeadCriterion::Random {
                0
            } else {
                n
            },
            importance: sum.chunks(nh).map(<[f64]>::to_vec).collect(),
            mean_relative_delta: mean,
            max_relative_delta: max,
        }
    }

    /// Scores every head by `criterion` over `examples` (the gold label is F's class):
    /// [`Explainer::example_head_scores`] per example, then [`Explainer::finish_importance`].
    /// `progress(examples done, examples)`; `seed` orders the random criterion; `attattr` sets
    /// the rule of the ATTATTR criterion (layers: all).
    pub fn head_importance(
        &self,
        examples: &[Example],
        criterion: HeadCriterion,
        attattr: &AttAttrOptions,
        seed: u64,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<HeadScores> {
        self.classes()?;
        if examples.is_empty() {
            return Err(Error::Empty("examples"));
        }
        let n = examples.len();
        let mut sum = Vec::new();
        let mut deltas = Vec::new();
        if criterion != HeadCriterion::Random {
            for (k, e) in examples.iter().enumerate() {
                let (s, d) = self.example_head_scores(e, criterion, attattr)?;
                if sum.is_empty() {
                    sum = s;
                } else {
                    sum.iter_mut().zip(&s).for_each(|(a, b)| *a += b);
                }
                deltas.extend(d);
                progress(k + 1, n);
            }
        }
        progress(n, n);
        Ok(self.finish_importance(criterion, sum, n, &deltas, seed))
    }

    /// Accuracy on `eval` with the lowest fraction k/10 (k = 0..10) of all heads masked, for each
    /// order (least important first; head index `layer * n_heads + head`), no retraining. Every
    /// (order, fraction) pair of an example is one row of a single forward, so the cost is one
    /// forward per example whatever the number of orders.
    pub fn pruning_curve(
        &self,
        eval: &[Example],
        orders: &[(HeadCriterion, Vec<usize>)],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<PruningCurve>> {
        let n_classes = self.classes()?;
        if eval.is_empty() {
            return Err(Error::Empty("evaluation examples"));
        }
        let (nl, nh) = (self.model().n_layers(), self.model().n_heads());
        let total = nl * nh;
        let fractions: Vec<f64> = (0..=10).map(|k| k as f64 / 10.0).collect();
        let masked: Vec<usize> = fractions
            .iter()
            .map(|f| ((f * total as f64) as usize).min(total))
            .collect();
        // Row 0: nothing masked; then (order, fraction k ≥ 1).
        let mut specs = vec![RowSpec::new()];
        for (_, order) in orders {
            if order.len() != total {
                return Err(Error::Mismatch {
                    what: "head order".into(),
                    detail: format!("has {} heads, the model has {total}", order.len()),
                });
            }
            for &m in &masked[1..] {
                let mut f = vec![1.0; total];
                for &i in &order[..m] {
                    f[i] = 0.0;
                }
                let mut spec = RowSpec::new();
                for l in 0..nl {
                    spec = spec.mask_heads(l, f[l * nh..(l + 1) * nh].to_vec());
                }
                specs.push(spec);
            }
        }
        let logits = |fw: &probe::Forward| -> Result<crate::Var> {
            fw.output()
                .and_then(|o| o.logits.clone())
                .ok_or_else(|| Error::Internal("classifier without logits".into()))
        };
        let obj = Objective::Custom {
            reads: &[],
            model_output: true,
            eval: &logits,
        };
        let mut correct = vec![0usize; specs.len()];
        for (k, e) in eval.iter().enumerate() {
            let p = self.prepare(
                &Self::example_input(e, TargetKind::Logit),
                &Baseline::Pad,
                false,
            )?;
            let s = probe::Subject::new(self.model(), &p.encoded.ids, &p.encoded.type_ids);
            let req = Request::new(Rows::Specs(&specs), obj)
                .chunking(Chunking::Budget(self.options.memory_budget));
            let mut row = 0;
            probe::run(&s, &req, &mut |_, _| {}, &mut |c| {
                let v = c.objective.to_vec_f64()?;
                for r in v.chunks(n_classes) {
                    let pred = super::argmax(r);
                    if pred == e.label {
                        correct[row] += 1;
                    }
                    row += 1;
                }
                Ok(())
            })?;
            progress(k + 1, eval.len());
        }
        let n = eval.len() as f64;
        Ok(orders
            .iter()
            .enumerate()
            .map(|(c, (crit, _))| {
                let mut acc = vec![correct[0] as f64 / n];
                acc.extend((1..=10).map(|k| correct[c * 10 + k] as f64 / n));
                PruningCurve {
                    criterion: *crit,
                    fractions: fractions.clone(),
                    heads_masked: masked.clone(),
                    accuracy: acc,
                }
            })
            .collect())
    }
}
