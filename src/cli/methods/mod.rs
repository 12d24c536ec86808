//! `gradpath layer-ig | conductance | neuron | saliency | attention | ablate | sensitivity`: the
//! methods of [`crate::explain`] on a sentence. Each command flattens the option groups of
//! [`super::args`] its method accepts, plus its own flags; the library runs the method and this
//! module prints the table and writes the JSON (the serialised report, docs/JSON.md) and HTML.
//!
//! `layer` holds the layer methods (`layer-ig`, `conductance`, `neuron`), `input` the methods on
//! the input tokens and the attention maps (`saliency`, `attention`, `ablate`, `sensitivity`).

mod input;
mod layer;

pub use input::{run_ablate, run_attention, run_saliency, run_sensitivity};
pub use layer::{run_conductance, run_layer_ig, run_neuron};

use super::args::*;
use crate::explain::{Header, TokenReport};
use crate::report::{self, attention_html as ah};
use crate::Result;
use clap::Args;

/// The flags every token-level method shares: model, text and target, baseline, batch, words,
/// output and run options.
#[derive(Args, Debug, Clone)]
pub struct Common {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub text: TextArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub baseline: BaselineArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Args, Debug, Clone)]
pub struct LayerIgArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub quadrature: QuadratureArgs,
    #[command(flatten)]
    pub words: WordsArgs,
    /// The boundary whose value is interpolated (`gradpath hooks` lists them), e.g.
    /// embed.hook_out (the BERT tutorial's `model.bert.embeddings`) or blocks.3.hook_resid_post.
    #[arg(long, default_value = "embed.hook_out")]
    pub boundary: String,
}

#[derive(Args, Debug, Clone)]
pub struct ConductanceArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub quadrature: QuadratureArgs,
    /// Layers to attribute to, e.g. `0,5,11` (default: all, in one sweep of path points).
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<usize>>,
    /// Which boundary of each layer: `blocks.{l}.<AT>` (default: the layer output, the Captum
    /// tutorial's `model.bert.encoder.layer[l]`).
    #[arg(long, default_value = "hook_resid_post")]
    pub at: String,
    /// Where the path runs from baseline to input: hook_embed (word embeddings, as `gradpath ig`)
    /// or another boundary such as embed.hook_out (the tutorial's embeddings output).
    #[arg(long, default_value = "hook_embed")]
    pub path_boundary: String,
    /// One token (as printed, e.g. `[SEP]`, or its index): print its normalised curve across
    /// layers (its score divided by the L2 norm of the layer's token scores, as in the tutorial).
    #[arg(long)]
    pub token: Option<String>,
    /// Internal influence (Σ_k w_k ∂F/∂y, Captum `InternalInfluence`) instead of conductance.
    #[arg(long)]
    pub influence: bool,
}

#[derive(Args, Debug, Clone)]
pub struct NeuronArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub quadrature: QuadratureArgs,
    #[command(flatten)]
    pub words: WordsArgs,
    /// The boundary holding the neuron, e.g. blocks.1.hook_resid_post.
    #[arg(long)]
    pub boundary: String,
    #[command(flatten)]
    pub neuron: NeuronIndexArgs,
    /// Where the path runs (see `gradpath conductance --help`).
    #[arg(long, default_value = "hook_embed")]
    pub path_boundary: String,
}

#[derive(Args, Debug, Clone)]
pub struct SaliencyArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub words: WordsArgs,
    /// Input × gradient instead of |gradient|.
    #[arg(long)]
    pub times_input: bool,
    /// Noise tunnel: smoothgrad, smoothgrad-sq or vargrad (Captum NoiseTunnel semantics).
    #[arg(long)]
    pub smooth: Option<String>,
    /// Noise samples for --smooth.
    #[arg(long, default_value_t = 5)]
    pub samples: usize,
    /// Standard deviation of the noise for --smooth.
    #[arg(long, default_value_t = 1.0)]
    pub stdev: f64,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args, Debug, Clone)]
pub struct AttentionArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub text: TextArgs,
    #[command(flatten)]
    pub baseline: BaselineArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// The head shown as a token × token heatmap: layer (default: the last).
    #[arg(long)]
    pub layer: Option<usize>,
    /// The head shown as a heatmap: head index.
    #[arg(long, default_value_t = 0)]
    pub head: usize,
    #[command(flatten)]
    pub mask: MaskHeadArgs,
}

/// `--neuron` (`gradpath neuron` and `gradpath batch --method neuron`).
#[derive(Args, Debug, Clone)]
pub struct NeuronIndexArgs {
    /// The neuron's index within one row of the boundary, e.g. `3,17` (token 3, dimension 17);
    /// required.
    #[arg(long, value_delimiter = ',')]
    pub neuron: Option<Vec<usize>>,
}

impl NeuronIndexArgs {
    /// The index; an error when `--neuron` is missing.
    pub fn parse(&self) -> Result<Vec<usize>> {
        match &self.neuron {
            Some(v) if !v.is_empty() => Ok(v.clone()),
            _ => Err(crate::Error::BadValue {
                name: "--neuron",
                detail: "is required: the neuron's index within one row of --boundary, e.g. --neuron 3,17 (token 3, dimension 17)".into(),
            }),
        }
    }
}

/// `--mask-head` (`gradpath attention` and `gradpath batch --method attention`).
#[derive(Args, Debug, Clone)]
pub struct MaskHeadArgs {
    /// Mask a head (HF head_mask semantics), `LAYER:HEAD`; repeatable.
    #[arg(long)]
    pub mask_head: Vec<String>,
}

impl MaskHeadArgs {
    /// The masked heads as (layer, head).
    pub fn parse(&self) -> Result<Vec<(usize, usize)>> {
        self.mask_head
            .iter()
            .map(|m| {
                let bad = || crate::Error::BadValue {
                    name: "--mask-head",
                    detail: format!("`{m}`: expected LAYER:HEAD, e.g. 3:7"),
                };
                let (l, h) = m.split_once(':').ok_or_else(bad)?;
                Ok((
                    l.trim().parse().map_err(|_| bad())?,
                    h.trim().parse().map_err(|_| bad())?,
                ))
            })
            .collect()
    }
}

#[derive(Args, Debug, Clone)]
pub struct AblateArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub words: WordsArgs,
    /// What replaces a token's word embedding: `baseline` (the --baseline token's embedding) or
    /// `zero`.
    #[arg(long, default_value = "baseline", value_parser = ["baseline", "zero"])]
    pub replace: String,
}

#[derive(Args, Debug, Clone)]
pub struct SensitivityArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub words: WordsArgs,
    /// Standard deviation of the Gaussian noise added to one token's word embedding.
    #[arg(long, default_value_t = 0.1)]
    pub sigma: f64,
    /// Noise draws per token.
    #[arg(long, default_value_t = 20)]
    pub draws: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// The model and the input of a command with a target, the progress bar wired.
fn start(
    c: &Common,
) -> Result<(
    crate::explain::Explainer,
    indicatif::ProgressBar,
    crate::explain::Input,
)> {
    let options = c.run.options(c.batch.batch)?;
    c.baseline.parse()?;
    let input = c.target.input(&c.text)?;
    let (ex, bar) = load(&c.model.model, options, c.run.quiet)?;
    Ok((ex, bar, input))
}

fn header_lines(c: &Common, h: &Header, what: &str) {
    if !c.run.quiet {
        outln!("{}", h.model_description);
        outln!(
            "target: {}   baseline: {}   {what}",
            h.target_description(),
            h.baseline
        );
    }
}

fn info_rows(h: &Header, method: String) -> Vec<(&'static str, String)> {
    vec![
        ("model", h.model_description.clone()),
        ("text", h.text.clone()),
        ("target", h.target_description()),
        ("method", method),
    ]
}

/// How a command with one score per input token ends: the JSON document and, with --html, a
/// page of the `rows` and the tokens coloured by their score (`label` names the score).
fn finish_token_scores<R: TokenReport + serde::Serialize>(
    c: &Common,
    r: &R,
    title: &str,
    rows: &[(&'static str, String)],
    label: &str,
) -> Result<()> {
    c.output.write_json(r)?;
    if let Some(path) = &c.output.html {
        let sc = r.scores();
        write(
            path,
            &ah::page(
                title,
                rows,
                &[ah::token_marks(label, &sc.labels, &sc.scores)],
            ),
        )?;
    }
    Ok(())
}

/// The table of token (or word) scores.
fn print_scores<R: TokenReport>(c: &Common, r: &R) {
    if !c.run.quiet {
        out!("{}", report::table::render(&r.scores(), 20));
    }
}
