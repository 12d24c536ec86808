//! What `gradpath compare` reports: per example and model, and over groups of examples.

use super::*;

/// One model of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The folder as given.
    pub path: String,
    pub description: String,
    /// Parameters initialised fresh (a base encoder's new head); empty for a checkpoint's head.
    pub fresh_parameters: Vec<String>,
    /// The seed of the fresh head (`null` when nothing was initialised).
    pub head_seed: Option<u64>,
    pub load_s: f64,
}

/// IG on one model for one example.
#[derive(Debug, Clone, Serialize)]
pub struct IgSummary {
    /// Per token (special tokens included: 0 with the `[PAD]` baseline, which keeps them).
    pub attributions: Vec<f64>,
    pub f_input: f64,
    pub f_baseline: f64,
    /// Σ attributions − (F(x) − F(x′)).
    pub delta: f64,
    /// |delta| / |F(x) − F(x′)|.
    pub relative_delta: f64,
    /// [`normalised_entropy`] of the non-special tokens' attributions.
    pub entropy: Option<f64>,
    /// [`negative_share`] of the non-special tokens' attributions.
    pub negative_share: Option<f64>,
}

/// The chosen token's layer conductance on one model for one example.
#[derive(Debug, Clone, Serialize)]
pub struct ConductanceCurve {
    /// c_l: the token's conductance at each layer's `hook_resid_post` (summed over `d_model`).
    pub values: Vec<f64>,
    /// c_l / ‖c‖₂ (norm over layers).
    pub normalised: Vec<f64>,
    /// c_l / ‖c_{l,·}‖₂ (norm over the layer's tokens; Captum tutorial).
    pub token_share: Vec<f64>,
    /// [`peak_layer`] of `values`.
    pub peak_layer: Option<usize>,
    /// [`late_share`] of `values`.
    pub late_share: Option<f64>,
    /// Per layer: Σ_tokens Cond_l (≈ F(x) − F(x′) for a full cut such as `hook_resid_post`).
    pub layer_totals: Vec<f64>,
    /// Per layer: total − (F(x) − F(x′)).
    pub layer_deltas: Vec<f64>,
    /// Per layer: |delta| / |F(x) − F(x′)|.
    pub layer_relative_deltas: Vec<f64>,
    /// The largest of `layer_relative_deltas`.
    pub worst_relative_delta: f64,
}

/// One model on one example.
#[derive(Debug, Clone, Serialize)]
pub struct ModelResult {
    /// Argmax of the logits.
    pub predicted: usize,
    pub predicted_label: Option<String>,
    /// `predicted` == the example's label (`null` without a label).
    pub correct: Option<bool>,
    pub logits: Vec<f64>,
    pub ig: IgSummary,
    pub conductance: ConductanceCurve,
}

/// One example on both models.
#[derive(Debug, Clone, Serialize)]
pub struct ExampleComparison {
    pub id: String,
    /// The text as run (cut where `truncated`).
    pub text: String,
    pub pair: Option<String>,
    pub truncated: bool,
    pub label: Option<usize>,
    pub label_name: Option<String>,
    pub depth: Option<usize>,
    pub tokens: Vec<String>,
    pub tokens_display: Vec<String>,
    pub special: Vec<bool>,
    /// Position of the token whose conductance curve is read.
    pub token_index: usize,
    /// The class explained on both models.
    pub class: usize,
    pub class_label: Option<String>,
    pub base: ModelResult,
    pub tuned: ModelResult,
}

/// One model over a group of examples.
#[derive(Debug, Clone, Serialize)]
pub struct GroupStats {
    /// Examples with a label, and those the model predicts right.
    pub labelled: usize,
    pub correct: usize,
    /// correct / labelled (`null` without labels).
    pub accuracy: Option<f64>,
    /// Mean over examples of the normalised curve, per layer.
    pub mean_curve: Vec<f64>,
    /// Mean of |normalised curve|, per layer.
    pub mean_abs_curve: Vec<f64>,
    /// Mean token share, per layer.
    pub mean_token_share: Vec<f64>,
    pub peak_layer: Stat,
    /// How many examples peak at each layer.
    pub peak_layer_counts: Vec<usize>,
    pub late_share: Stat,
    pub entropy: Stat,
    pub negative_share: Stat,
    /// IG's |relative delta|.
    pub relative_delta: Stat,
    /// IG's delta.
    pub delta: Stat,
    /// The worst layer's conductance relative delta.
    pub conductance_relative_delta: Stat,
}

/// tuned − base over a group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupDifference {
    pub accuracy: Option<f64>,
    pub mean_curve: Vec<f64>,
    pub mean_abs_curve: Vec<f64>,
    pub mean_token_share: Vec<f64>,
    pub peak_layer: StatDifference,
    pub late_share: StatDifference,
    pub entropy: StatDifference,
    pub negative_share: StatDifference,
    pub relative_delta: StatDifference,
    pub conductance_relative_delta: StatDifference,
}

/// Both models over a group of examples.
#[derive(Debug, Clone, Serialize)]
pub struct GroupComparison {
    pub n: usize,
    pub base: GroupStats,
    pub tuned: GroupStats,
    /// tuned − base.
    pub difference: GroupDifference,
}

/// The examples of one depth.
#[derive(Debug, Clone, Serialize)]
pub struct DepthComparison {
    pub depth: usize,
    #[serde(flatten)]
    pub group: GroupComparison,
}

/// An example left out ([`CompareOptions::skip_bad`]).
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub id: String,
    /// Line in the data file (`null` for a text).
    pub line: Option<usize>,
    pub detail: String,
}

/// Wall-clock seconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CompareTiming {
    /// Loading both models.
    pub load_s: f64,
    /// Tokenization, predictions, IG and conductance of every example on both models.
    pub compare_s: f64,
}

/// The result of [`compare`] (`gradpath compare --json`; docs/JSON.md).
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    /// `"compare"`.
    pub method: &'static str,
    pub gradpath_version: &'static str,
    pub base: ModelInfo,
    pub tuned: ModelInfo,
    /// Class names (the tuned model's).
    pub labels: Vec<String>,
    pub n_layers: usize,
    /// The first late layer ([`late_from`]).
    pub late_from: usize,
    /// Where conductance is read: `blocks.{l}.<at>`.
    pub at: &'static str,
    /// The token sought, and which occurrence.
    pub token: String,
    pub occurrence: &'static str,
    /// The fixed class (`null`: the tuned model's prediction per example).
    pub class: Option<String>,
    pub kind: &'static str,
    pub baseline: String,
    pub quadrature: &'static str,
    pub steps: usize,
    pub conductance_steps: usize,
    pub max_len: usize,
    pub dtype: String,
    /// Examples cut at `max_len`.
    pub truncated: usize,
    pub examples: Vec<ExampleComparison>,
    /// Over every example.
    pub summary: GroupComparison,
    /// Per depth, when examples have one (ascending).
    pub by_depth: Vec<DepthComparison>,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    pub timing: CompareTiming,
}

impl GroupStats {
    pub(super) fn of(results: &[&ModelResult], n_layers: usize) -> GroupStats {
        let n = results.len().max(1) as f64;
        let mean_of = |f: &dyn Fn(&ModelResult) -> &Vec<f64>, abs: bool| -> Vec<f64> {
            (0..n_layers)
                .map(|l| {
                    results
                        .iter()
                        .map(|r| {
                            let v = f(r).get(l).copied().unwrap_or(0.0);
                            if abs {
                                v.abs()
                            } else {
                                v
                            }
                        })
                        .sum::<f64>()
                        / n
                })
                .collect()
        };
        let labelled = results.iter().filter(|r| r.correct.is_some()).count();
        let correct = results.iter().filter(|r| r.correct == Some(true)).count();
        let mut peak_layer_counts = vec![0; n_layers];
        for r in results {
            if let Some(p) = r.conductance.peak_layer {
                peak_layer_counts[p] += 1;
            }
        }
        GroupStats {
            labelled,
            correct,
            accuracy: (labelled > 0).then(|| correct as f64 / labelled as f64),
            mean_curve: mean_of(&|r| &r.conductance.normalised, false),
            mean_abs_curve: mean_of(&|r| &r.conductance.normalised, true),
            mean_token_share: mean_of(&|r| &r.conductance.token_share, false),
            peak_layer: Stat::of(
                results
                    .iter()
                    .map(|r| r.conductance.peak_layer.map(|p| p as f64)),
            ),
            peak_layer_counts,
            late_share: Stat::of(results.iter().map(|r| r.conductance.late_share)),
            entropy: Stat::of(results.iter().map(|r| r.ig.entropy)),
            negative_share: Stat::of(results.iter().map(|r| r.ig.negative_share)),
            relative_delta: Stat::of(results.iter().map(|r| Some(r.ig.relative_delta))),
            delta: Stat::of(results.iter().map(|r| Some(r.ig.delta))),
            conductance_relative_delta: Stat::of(
                results
                    .iter()
                    .map(|r| Some(r.conductance.worst_relative_delta)),
            ),
        }
    }
}

impl GroupComparison {
    pub(super) fn of(examples: &[&ExampleComparison], n_layers: usize) -> GroupComparison {
        let b: Vec<&ModelResult> = examples.iter().map(|x| &x.base).collect();
        let t: Vec<&ModelResult> = examples.iter().map(|x| &x.tuned).collect();
        let (base, tuned) = (GroupStats::of(&b, n_layers), GroupStats::of(&t, n_layers));
        let sub =
            |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(x, y)| y - x).collect() };
        let difference = GroupDifference {
            accuracy: base.accuracy.zip(tuned.accuracy).map(|(x, y)| y - x),
            mean_curve: sub(&base.mean_curve, &tuned.mean_curve),
            mean_abs_curve: sub(&base.mean_abs_curve, &tuned.mean_abs_curve),
            mean_token_share: sub(&base.mean_token_share, &tuned.mean_token_share),
            peak_layer: StatDifference::of(&base.peak_layer, &tuned.peak_layer),
            late_share: StatDifference::of(&base.late_share, &tuned.late_share),
            entropy: StatDifference::of(&base.entropy, &tuned.entropy),
            negative_share: StatDifference::of(&base.negative_share, &tuned.negative_share),
            relative_delta: StatDifference::of(&base.relative_delta, &tuned.relative_delta),
            conductance_relative_delta: StatDifference::of(
                &base.conductance_relative_delta,
                &tuned.conductance_relative_delta,
            ),
        };
        GroupComparison {
            n: examples.len(),
            base,
            tuned,
            difference,
        }
    }
}
