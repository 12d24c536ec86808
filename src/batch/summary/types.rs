//! The data-set summary as `gradpath report --json` writes it and `report::dataset_html` draws
//! it: [`DatasetSummary`] and its sections, with the options of [`summarise`](super::summarise).

use super::{mean_std, percentile};
use serde::Serialize;

/// Options of [`summarise`](super::summarise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SummaryOptions {
    /// Tokens listed on each side.
    pub top: usize,
    /// Occurrences a token needs to be listed.
    pub min_count: usize,
    /// Relative delta above which an example is flagged.
    pub rough: f64,
    /// Examples shown in full (the first ones of the file).
    pub max_examples: usize,
}

impl Default for SummaryOptions {
    fn default() -> SummaryOptions {
        SummaryOptions {
            top: 20,
            min_count: 2,
            rough: 1e-2,
            max_examples: 2000,
        }
    }
}

/// One token's statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenStat {
    pub token: String,
    pub count: usize,
    pub mean: f64,
    pub std: f64,
    /// Indices (into [`DatasetSummary::examples`]) of up to three examples holding it.
    pub examples: Vec<usize>,
}

/// Top tokens by mean score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopTokens {
    /// Words (sub-words merged by the run) rather than tokens.
    pub by_word: bool,
    /// What the score is.
    pub score: String,
    pub distinct: usize,
    pub positive: Vec<TokenStat>,
    pub negative: Vec<TokenStat>,
}

/// An example with a large completeness delta.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flagged {
    pub example: usize,
    pub id: String,
    pub relative_delta: f64,
    pub reason: String,
}

/// The distribution of completeness deltas.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deltas {
    pub what: String,
    /// Per example (examples without one left out).
    pub values: Vec<f64>,
    /// Decades of the relative delta: `(log10 lower edge, count)`, from 10⁻¹⁶ (and below) up.
    pub histogram: Vec<(i32, usize)>,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
    pub flagged: Vec<Flagged>,
}

/// Mean and spread of a per-layer quantity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerCurve {
    pub what: String,
    pub labels: Vec<String>,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub p10: Vec<f64>,
    pub p90: Vec<f64>,
    pub examples: usize,
}

/// Mean head importance, `[layer][head]` row-major.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadGrid {
    pub layers: Vec<usize>,
    pub n_heads: usize,
    pub mean: Vec<f64>,
    pub examples: usize,
}

/// LIG: the relative completeness deltas of one layer's map (z → z) columns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LigLayer {
    pub layer: usize,
    /// Examples with this layer's map.
    pub examples: usize,
    /// Columns (target tokens) over those examples.
    pub columns: usize,
    /// Mean over the examples of the mean relative delta of the example's columns.
    pub mean: f64,
    /// Median and maximum over all columns.
    pub median: f64,
    pub max: f64,
    /// Columns above `rough`.
    pub rough: usize,
}

/// LIG: a layer-map column with a large relative completeness delta.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoughColumn {
    pub example: usize,
    pub id: String,
    pub layer: usize,
    /// The target token index j and the token.
    pub column: usize,
    pub token: String,
    pub relative_delta: f64,
}

/// LIG: completeness of the layer maps per layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LigSummary {
    pub what: String,
    pub layers: Vec<LigLayer>,
    /// The columns above `rough`, largest first (at most [`MAX_ROUGH_COLUMNS`]).
    pub rough_columns: Vec<RoughColumn>,
    /// All columns above `rough`.
    pub rough_total: usize,
    /// Maps that did not reach `--tolerance` within `--max-points`: `(example, id, layer)`.
    pub unconverged: Vec<(usize, String, usize)>,
}

/// The most rough LIG columns listed.
pub const MAX_ROUGH_COLUMNS: usize = 200;

/// Distribution of a per-example number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub p10: f64,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

impl Spread {
    pub(super) fn of(v: &[f64]) -> Spread {
        let (mean, std) = mean_std(v);
        let mut sorted = v.to_vec();
        sorted.sort_by(f64::total_cmp);
        Spread {
            n: v.len(),
            mean,
            std,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            p10: percentile(&sorted, 0.1),
            median: percentile(&sorted, 0.5),
            p90: percentile(&sorted, 0.9),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// Neuron conductance over the examples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NeuronSummary {
    /// The neuron (of the first line).
    pub boundary: String,
    pub neuron: Vec<usize>,
    /// Σ attributions of each example: the neuron's conductance.
    pub total: Spread,
    /// `total` / (F(x) − F(x′)): the share of F's change through the neuron (examples with
    /// |F(x) − F(x′)| > 1e-12).
    pub share: Spread,
}

/// Attention: mean row entropy per head.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttentionEntropy {
    pub n_layers: usize,
    pub n_heads: usize,
    /// `[layer][head]` row-major: the mean over examples of the head's mean over query rows of
    /// −Σ_k p_k ln p_k (nats; 0 for a masked head).
    pub mean: Vec<f64>,
    /// The mean over examples of ln(tokens): the entropy of a row spread evenly over every key.
    pub mean_log_tokens: f64,
    pub examples: usize,
}

/// One example as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExampleView {
    pub id: String,
    pub text: String,
    pub target: String,
    pub labels: Vec<String>,
    pub scores: Vec<f64>,
    pub relative_delta: Option<f64>,
    pub rough: bool,
}

/// The whole summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetSummary {
    pub method: String,
    pub model: String,
    pub examples_total: usize,
    pub tokens: Option<TopTokens>,
    pub deltas: Option<Deltas>,
    pub layers: Option<LayerCurve>,
    pub heads: Option<HeadGrid>,
    pub lig: Option<LigSummary>,
    pub neuron: Option<NeuronSummary>,
    pub attention: Option<AttentionEntropy>,
    /// What is not summarised for this method, in words.
    pub notes: Vec<String>,
    /// The first `max_examples` examples.
    pub examples: Vec<ExampleView>,
}
