//! `gradpath layer-ig | conductance | neuron | saliency | attention | ablate | sensitivity`: the
//! methods of `attribution::{layer, gradients, perturb, attention}` on a sentence. Every command
//! takes the flags of `gradpath ig` (model, text, target, baseline, steps, method, batch, dtype,
//! --json, --html, ...; flattened from [`IgArgs`]) plus its own. JSON schemas: docs/JSON.md.
//!
//! This module holds the flags of each command and what they share (model setup, targets, JSON
//! and table helpers); `layer` runs the layer methods (`layer-ig`, `conductance`, `neuron`),
//! `input` the methods on the input tokens and the attention maps (`saliency`, `attention`,
//! `ablate`, `sensitivity`).

mod input;
mod layer;

pub use input::{run_ablate, run_attention, run_saliency, run_sensitivity};
pub use layer::{run_conductance, run_layer_ig, run_neuron};

use super::ig::{encode, progress_bar, resolve_target, write, IgArgs};
use crate::attribution::layer::{boundaries, boundary_shape, layer_boundaries};
use crate::attribution::{
    ablation, attention_maps, gradient_attribution, internal_influence, layer_conductance,
    layer_integrated_gradients, neuron_conductance, noise_sensitivity, noise_tunnel, Baseline,
    GradMethod, LayerResult, NoiseKind, PathProblem, Target,
};
use crate::integrate::{captum_exact, Rule};
use crate::io::Encoded;
use crate::models::{self, Model};
use crate::report::{self, aggregate_words, attention_html as ah, Aggregate, TokenScores};
use crate::{DType, Error, Result, Tensor};
use clap::Args;
use serde_json::{json, Value};
use std::time::Instant;

#[derive(Args, Debug, Clone)]
pub struct LayerIgArgs {
    #[command(flatten)]
    pub common: IgArgs,
    /// The boundary whose value is interpolated (`gradpath hooks` lists them), e.g.
    /// embed.hook_out (the BERT tutorial's `model.bert.embeddings`) or blocks.3.hook_resid_post.
    #[arg(long, default_value = "embed.hook_out")]
    pub boundary: String,
}

#[derive(Args, Debug, Clone)]
pub struct ConductanceArgs {
    #[command(flatten)]
    pub common: IgArgs,
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
    pub common: IgArgs,
    /// The boundary holding the neuron, e.g. blocks.1.hook_resid_post.
    #[arg(long)]
    pub boundary: String,
    /// The neuron's index within one row of the boundary, e.g. `3,17` (token 3, dimension 17).
    #[arg(long, value_delimiter = ',', required = true)]
    pub neuron: Vec<usize>,
    /// Where the path runs (see `gradpath conductance --help`).
    #[arg(long, default_value = "hook_embed")]
    pub path_boundary: String,
}

#[derive(Args, Debug, Clone)]
pub struct SaliencyArgs {
    #[command(flatten)]
    pub common: IgArgs,
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
    pub common: IgArgs,
    /// The head shown as a token × token heatmap: layer (default: the last).
    #[arg(long)]
    pub layer: Option<usize>,
    /// The head shown as a heatmap: head index.
    #[arg(long, default_value_t = 0)]
    pub head: usize,
    /// Mask a head (HF head_mask semantics), `LAYER:HEAD`; repeatable.
    #[arg(long)]
    pub mask_head: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct AblateArgs {
    #[command(flatten)]
    pub common: IgArgs,
    /// What replaces a token's word embedding: `baseline` (the --baseline token's embedding) or
    /// `zero`.
    #[arg(long, default_value = "baseline", value_parser = ["baseline", "zero"])]
    pub replace: String,
}

#[derive(Args, Debug, Clone)]
pub struct SensitivityArgs {
    #[command(flatten)]
    pub common: IgArgs,
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

/// Everything a command needs after loading.
struct Setup {
    model: Box<dyn Model>,
    e: Encoded,
    target: Option<(Target, Option<String>)>,
    x: Tensor,
    b: Tensor,
    base_ids: Option<Vec<usize>>,
    baseline: Baseline,
    load_s: f64,
    t1: Instant,
}

impl Setup {
    fn problem<'a>(&'a self, target: &'a Target) -> PathProblem<'a> {
        PathProblem {
            model: self.model.as_ref(),
            ids: &self.e.ids,
            type_ids: &self.e.type_ids,
            boundary: "hook_embed",
            input: &self.x,
            baseline: &self.b,
            target,
        }
    }
    fn target(&self) -> Result<&Target> {
        self.target
            .as_ref()
            .map(|t| &t.0)
            .ok_or_else(|| Error::Msg("internal: no target resolved".into()))
    }
    /// Default rows per batch: activations near 512 MB, at most `cap`.
    fn batch(&self, a: &IgArgs, cap: usize) -> Result<usize> {
        let b = a.batch.unwrap_or_else(|| {
            (512usize << 20)
                .checked_div(self.model.activation_bytes_per_row(self.e.len()))
                .unwrap_or(1)
                .clamp(1, cap.max(1))
        });
        if b == 0 {
            return Err(Error::Input("--batch must be at least 1".into()));
        }
        Ok(b)
    }
}

fn setup(a: &IgArgs, cmd: &str, need_target: bool) -> Result<Setup> {
    if let Some(n) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Error::Msg(e.to_string()))?;
    }
    if a.tolerance.is_some() {
        return Err(Error::Input(format!(
            "--tolerance (adaptive refinement) is only for `gradpath ig`, not `gradpath {cmd}`"
        )));
    }
    let baseline = Baseline::parse(&a.baseline)?;
    Aggregate::parse(&a.aggregate)?;
    let dtype = DType::parse(&a.dtype)?;
    let t0 = Instant::now();
    let model = models::load(&a.model, dtype)?;
    let tok = models::load_tokenizer(&a.model)?;
    let load_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let e = encode(&tok, &a.text, None, model.max_tokens(), a.truncate)?;
    let target = if need_target {
        Some(resolve_target(a, model.as_ref(), &tok, &e)?)
    } else {
        None
    };
    let (base_ids, b) = baseline
        .build(&e, &tok, model.as_ref())
        .map_err(|err| match err {
            Error::Invalid {
                op: "embedding",
                detail,
            } => Error::Input(format!("--baseline {}: {detail}", baseline.name())),
            other => other,
        })?;
    let x = model.word_embeddings(&e.ids)?;
    Ok(Setup {
        model,
        e,
        target,
        x,
        b,
        base_ids,
        baseline,
        load_s,
        t1,
    })
}

fn rule_of(a: &IgArgs, n: usize) -> Result<(Rule, Vec<f64>, Vec<f64>)> {
    if a.steps == 0 {
        return Err(Error::Input("--steps must be at least 1".into()));
    }
    let rule = Rule::parse(&a.method).map_err(|e| Error::Input(e.to_string()))?;
    if n < rule.min_points() {
        return Err(Error::Input(format!(
            "{} needs --steps ≥ {}",
            rule.name(),
            rule.min_points()
        )));
    }
    let (al, w) = if rule == Rule::CaptumTrapezoid {
        captum_exact(rule, n)?
    } else {
        rule.nodes_weights(n)?
    };
    Ok((rule, al, w))
}

fn target_desc(a: &IgArgs, s: &Setup) -> String {
    match &s.target {
        Some((Target::Class { class, kind }, l)) => format!(
            "class {class}{} {}",
            l.as_ref().map(|l| format!(" ({l})")).unwrap_or_default(),
            kind.name()
        ),
        Some((Target::Similarity { .. }, _)) => format!(
            "cosine similarity to {:?}",
            a.similar_to.as_deref().unwrap_or("")
        ),
        Some((
            Target::Token {
                position,
                token,
                kind,
            },
            l,
        )) => format!(
            "next token {token} {:?} after position {position}, {}",
            l.as_deref().unwrap_or("?"),
            kind.name()
        ),
        None => "none".into(),
    }
}

fn base_json(a: &IgArgs, s: &Setup, method: &str) -> Value {
    let target = s.target.as_ref().map(|(t, l)| {
        let mut j = t.to_json(l.as_deref());
        if let Some(o) = &a.similar_to {
            j["similar_to"] = json!(o);
        }
        j
    });
    json!({
        "method": method,
        "gradpath_version": env!("CARGO_PKG_VERSION"),
        "model": a.model.display().to_string(),
        "model_description": s.model.describe(),
        "text": a.text,
        "tokens": s.e.tokens,
        "ids": s.e.ids,
        "special": s.e.special,
        "target": target,
        "baseline": s.baseline.name(),
        "baseline_ids": s.base_ids,
        "dtype": a.dtype,
    })
}

fn finish_json(a: &IgArgs, s: &Setup, mut j: Value) -> Result<()> {
    j["timing"] = json!({"load_s": s.load_s, "attribution_s": s.t1.elapsed().as_secs_f64()});
    if let Some(p) = &a.json {
        write(
            p,
            &serde_json::to_string_pretty(&j).map_err(|e| Error::Msg(e.to_string()))?,
        )?;
    }
    Ok(())
}

/// How a command with one score per input token ends: the JSON document `j` (with `words` under
/// --words) and, with --html, a page of the `rows` and the tokens coloured by their score
/// (`label` names the score).
fn finish_token_scores(
    a: &IgArgs,
    s: &Setup,
    mut j: Value,
    sc: &TokenScores,
    title: &str,
    rows: &[(&'static str, String)],
    label: &str,
) -> Result<()> {
    words_json(a, &mut j, sc);
    finish_json(a, s, j)?;
    if let Some(path) = &a.html {
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

/// Token scores, aggregated to words with --words.
fn scores(a: &IgArgs, s: &Setup, per_token: &[f64]) -> Result<TokenScores> {
    Ok(if a.words {
        aggregate_words(
            &a.text,
            &s.e.tokens,
            &s.e.words,
            &s.e.offsets,
            &s.e.type_ids,
            per_token,
            Aggregate::parse(&a.aggregate)?,
        )
    } else {
        TokenScores {
            labels: s.e.tokens.clone(),
            scores: per_token.to_vec(),
        }
    })
}

fn header(a: &IgArgs, s: &Setup, what: &str) {
    if !a.quiet {
        println!("{}", s.model.describe());
        println!(
            "target: {}   baseline: {}   {what}",
            target_desc(a, s),
            s.baseline.name()
        );
    }
}

fn info_rows(a: &IgArgs, s: &Setup, method: String) -> Vec<(&'static str, String)> {
    vec![
        ("model", s.model.describe()),
        ("text", a.text.clone()),
        ("target", target_desc(a, s)),
        ("method", method),
    ]
}

/// A path problem at `path_boundary` (x and x′ are that boundary's values on the input and on
/// the baseline input), owned.
fn path_tensors(s: &Setup, target: &Target, path_boundary: &str) -> Result<(Tensor, Tensor)> {
    let p = s.problem(target);
    if path_boundary == "hook_embed" {
        return Ok((s.x.clone(), s.b.clone()));
    }
    let all = boundaries(p.model, p.ids, p.type_ids)?;
    boundary_shape(&all, path_boundary)?;
    let e = p.boundary_at_endpoints(path_boundary)?;
    Ok((e.input, e.baseline))
}

fn layer_json(r: &LayerResult) -> Value {
    json!(r
        .layers
        .iter()
        .map(|l| json!({
            "boundary": l.boundary,
            "shape": l.shape,
            "attributions": l.per_token,
            "total": l.total,
            "delta": l.delta,
            "relative_delta": l.relative_delta,
        }))
        .collect::<Vec<_>>())
}

fn words_json(a: &IgArgs, j: &mut Value, sc: &TokenScores) {
    if a.words {
        j["words"] = json!(sc.labels);
        j["word_attributions"] = json!(sc.scores);
        j["word_aggregation"] = json!(a.aggregate);
    }
}

fn warn_words(a: &IgArgs, cmd: &str) -> Result<()> {
    if a.words {
        return Err(Error::Input(format!(
            "--words is not supported by `gradpath {cmd}` (its output is per token and layer or head)"
        )));
    }
    Ok(())
}
