//! `gradpath layer-ig | conductance | neuron | saliency | attention | ablate | sensitivity`: the
//! methods of `attribution::{layer, gradients, perturb, attention}` on a sentence. Every command
//! takes the flags of `gradpath ig` (model, text, target, baseline, steps, method, batch, dtype,
//! --json, --html, ...; flattened from [`IgArgs`]) plus its own. JSON schemas: docs/JSON.md.

use super::ig::{encode, progress_bar, resolve_target, write, IgArgs};
use crate::attribution::layer::{boundaries, boundary_shape, layer_boundaries, path_at};
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
    path_at(&p, path_boundary)
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

fn warn_words(a: &IgArgs, cmd: &str) -> Result<()> {
    if a.words {
        return Err(Error::Input(format!(
            "--words is not supported by `gradpath {cmd}` (its output is per token and layer or head)"
        )));
    }
    Ok(())
}

/// `gradpath layer-ig`.
pub fn run_layer_ig(args: &LayerIgArgs) -> Result<()> {
    let a = &args.common;
    let (rule, al, w) = rule_of(a, a.steps)?;
    let s = setup(a, "layer-ig", true)?;
    let target = s.target()?;
    let p = s.problem(target);
    let all = boundaries(p.model, p.ids, p.type_ids)?;
    boundary_shape(&all, &args.boundary)?;
    let batch = s.batch(a, a.steps)?;
    let bar = progress_bar(a.quiet);
    let mut prog = |d: usize, t: usize| {
        bar.set_length(t as u64);
        bar.set_position(d as u64);
    };
    let r = layer_integrated_gradients(&p, &args.boundary, &al, &w, batch, &mut prog)?;
    bar.finish_and_clear();
    let l = &r.layers[0];
    header(
        a,
        &s,
        &format!("layer IG at {}, {} × {}", l.boundary, rule.name(), a.steps),
    );
    let sc = scores(a, &s, &l.per_token)?;
    if !a.quiet {
        if l.per_token.is_empty() {
            println!("(the boundary has no token axis; total = {:.6})", l.total);
        } else {
            print!("{}", report::table::render(&sc, 20));
        }
        print_delta(&r, 0);
    }
    let mut j = base_json(a, &s, "layer_integrated_gradients");
    j["boundary"] = json!(l.boundary);
    j["shape"] = json!(l.shape);
    j["quadrature"] = json!(rule.name());
    j["steps"] = json!(a.steps);
    j["batch"] = json!(batch);
    j["attributions"] = json!(l.per_token);
    j["total"] = json!(l.total);
    j["f_input"] = json!(r.f_input);
    j["f_baseline"] = json!(r.f_baseline);
    j["delta"] = json!(l.delta);
    j["relative_delta"] = json!(l.relative_delta);
    j["path"] = json!({"alphas": r.path_alphas, "f": r.path_f});
    words_json(a, &mut j, &sc);
    finish_json(a, &s, j)?;
    if let Some(path) = &a.html {
        let mut rows = info_rows(
            a,
            &s,
            format!("layer IG at {}, {} × {}", l.boundary, rule.name(), a.steps),
        );
        rows.push((
            "F(input) / F(baseline)",
            format!("{:.6} / {:.6}", r.f_input, r.f_baseline),
        ));
        rows.push((
            "completeness delta",
            format!("{:+.3e}", l.delta.unwrap_or(f64::NAN)),
        ));
        write(
            path,
            &ah::page(
                "gradpath · layer integrated gradients",
                &rows,
                &[ah::token_marks(
                    "Attributions per token",
                    &sc.labels,
                    &sc.scores,
                )],
            ),
        )?;
    }
    Ok(())
}

fn words_json(a: &IgArgs, j: &mut Value, sc: &TokenScores) {
    if a.words {
        j["words"] = json!(sc.labels);
        j["word_attributions"] = json!(sc.scores);
        j["word_aggregation"] = json!(a.aggregate);
    }
}

fn print_delta(r: &LayerResult, i: usize) {
    let l = &r.layers[i];
    println!(
        "F(input) = {:.6}   F(baseline) = {:.6}   Σ attributions = {:.6}",
        r.f_input, r.f_baseline, l.total
    );
    if let (Some(d), Some(rd)) = (l.delta, l.relative_delta) {
        println!("completeness delta = {d:+.3e}   relative = {rd:.3e}");
    }
}

/// Index of `token` (as printed, or a number) in the input.
fn token_index(tokens: &[String], token: &str) -> Result<usize> {
    if let Some(i) = tokens.iter().position(|t| t == token) {
        return Ok(i);
    }
    match token.parse::<usize>() {
        Ok(i) if i < tokens.len() => Ok(i),
        Ok(i) => Err(Error::Input(format!(
            "--token {i} is out of range: the input has {} tokens (0..{})",
            tokens.len(),
            tokens.len() - 1
        ))),
        Err(_) => Err(Error::Input(format!(
            "--token `{token}` is not in the input; its tokens are: {}",
            tokens.join(" ")
        ))),
    }
}

/// `gradpath conductance`.
pub fn run_conductance(args: &ConductanceArgs) -> Result<()> {
    let a = &args.common;
    warn_words(a, "conductance")?;
    let n_points = if args.influence { a.steps } else { a.steps + 1 };
    let (rule, al, w) = rule_of(a, n_points)?;
    let s = setup(a, "conductance", true)?;
    let token = match &args.token {
        Some(t) => Some(token_index(&s.e.tokens, t)?),
        None => None,
    };
    let target = s.target()?;
    let p0 = s.problem(target);
    let all = boundaries(p0.model, p0.ids, p0.type_ids)?;
    let names = layer_boundaries(&all, &args.at, args.layers.as_deref())?;
    let (x, b) = path_tensors(&s, target, &args.path_boundary)?;
    let p = PathProblem {
        boundary: &args.path_boundary,
        input: &x,
        baseline: &b,
        ..s.problem(target)
    };
    let batch = s.batch(a, n_points)?;
    let bar = progress_bar(a.quiet);
    let mut prog = |d: usize, t: usize| {
        bar.set_length(t as u64);
        bar.set_position(d as u64);
    };
    let r = if args.influence {
        internal_influence(&p, &names, &al, &w, batch, &mut prog)?
    } else {
        layer_conductance(&p, &names, &al, batch, &mut prog)?
    };
    bar.finish_and_clear();
    let method = if args.influence {
        "internal_influence"
    } else {
        "layer_conductance"
    };
    let what = format!(
        "{method} at blocks.*.{} ({} layers, one sweep of {} path points at {}), {} nodes",
        args.at,
        names.len(),
        r.points_used,
        args.path_boundary,
        rule.name()
    );
    header(a, &s, &what);
    let layers: Vec<usize> = names
        .iter()
        .filter_map(|n| n.split('.').nth(1)?.parse().ok())
        .collect();
    let t = s.e.len();
    // token × layer matrix
    let mut matrix = vec![0.0; t * names.len()];
    for (j, l) in r.layers.iter().enumerate() {
        for (i, v) in l.per_token.iter().enumerate().take(t) {
            matrix[i * names.len() + j] = *v;
        }
    }
    let curve = token.map(|ti| {
        r.layers
            .iter()
            .map(|l| {
                let n = l.per_token.iter().map(|v| v * v).sum::<f64>().sqrt();
                let v = l.per_token.get(ti).copied().unwrap_or(0.0);
                (v, if n > 0.0 { v / n } else { 0.0 })
            })
            .collect::<Vec<_>>()
    });
    if !a.quiet {
        print!("{:>16}", "token \\ layer");
        for l in &layers {
            print!(" {:>10}", l);
        }
        println!();
        for (i, tk) in s.e.tokens.iter().enumerate() {
            let tk: String = tk.chars().take(16).collect();
            print!("{tk:>16}");
            for j in 0..names.len() {
                print!(" {:>+10.4}", matrix[i * names.len() + j]);
            }
            println!();
        }
        print!("{:>16}", "total");
        for l in &r.layers {
            print!(" {:>+10.4}", l.total);
        }
        println!();
        if !args.influence {
            print!("{:>16}", "rel. delta");
            for l in &r.layers {
                print!(" {:>10.2e}", l.relative_delta.unwrap_or(f64::NAN));
            }
            println!();
            println!(
                "F(input) = {:.6}   F(baseline) = {:.6}",
                r.f_input, r.f_baseline
            );
        }
        if let (Some(ti), Some(c)) = (token, &curve) {
            println!(
                "token {ti} `{}` across layers (score / L2 norm of the layer's token scores):",
                s.e.tokens[ti]
            );
            for (l, (_, nv)) in layers.iter().zip(c) {
                println!("  layer {l:>3}: {nv:+.4}");
            }
        }
    }
    let worst = r
        .layers
        .iter()
        .filter_map(|l| l.relative_delta)
        .fold(0.0f64, f64::max);
    let ends_hint = if rule == Rule::GaussLegendre && !args.influence {
        ", or use --method captum-trapezoid, whose nodes include both path ends"
    } else {
        ""
    };
    let warning = (worst > 0.01).then(|| {
        format!(
            "the largest per-layer relative completeness delta is {worst:.3} (above 1 %): conductance \
             uses the gradient at the left point of each step (first order, as Captum), so its delta \
             falls only like 1/steps; raise --steps (e.g. 200){ends_hint}. A boundary that the residual \
             stream bypasses (attention patterns, attn/mlp outputs) carries only part of F(x) − F(x′), \
             and its delta stays large at any number of steps"
        )
    });
    if let Some(w) = &warning {
        eprintln!("warning: {w}");
    }
    let mut j = base_json(a, &s, method);
    j["warnings"] = json!(warning.iter().collect::<Vec<_>>());
    j["at"] = json!(args.at);
    j["path_boundary"] = json!(args.path_boundary);
    j["quadrature"] = json!(rule.name());
    j["steps"] = json!(a.steps);
    j["points"] = json!(r.points_used);
    j["batch"] = json!(batch);
    j["layer_indices"] = json!(layers);
    j["layers"] = layer_json(&r);
    j["f_input"] = json!(r.f_input);
    j["f_baseline"] = json!(r.f_baseline);
    if let (Some(ti), Some(c)) = (token, &curve) {
        j["token"] = json!({
            "index": ti,
            "token": s.e.tokens[ti],
            "values": c.iter().map(|v| v.0).collect::<Vec<_>>(),
            "normalised": c.iter().map(|v| v.1).collect::<Vec<_>>(),
        });
    }
    finish_json(a, &s, j)?;
    if let Some(path) = &a.html {
        let mut rows = info_rows(a, &s, what.clone());
        rows.push((
            "F(input) / F(baseline)",
            format!("{:.6} / {:.6}", r.f_input, r.f_baseline),
        ));
        let cols: Vec<String> = layers.iter().map(|l| format!("L{l}")).collect();
        let mut sections = vec![ah::heatmap(
            "Tokens × layers (colour normalised by the largest |value|)",
            &s.e.tokens,
            &cols,
            &matrix,
            true,
        )];
        let totals: Vec<f64> = r.layers.iter().map(|l| l.total).collect();
        sections.push(ah::heatmap(
            "Layer totals",
            &["total".into()],
            &cols,
            &totals,
            true,
        ));
        if let (Some(ti), Some(c)) = (token, &curve) {
            let nv: Vec<f64> = c.iter().map(|v| v.1).collect();
            sections.push(ah::heatmap(
                &format!("Token `{}` across layers (normalised)", s.e.tokens[ti]),
                &[s.e.tokens[ti].clone()],
                &cols,
                &nv,
                true,
            ));
        }
        write(
            path,
            &ah::page(&format!("gradpath · {method}"), &rows, &sections),
        )?;
    }
    Ok(())
}

/// `gradpath neuron`.
pub fn run_neuron(args: &NeuronArgs) -> Result<()> {
    let a = &args.common;
    let (rule, al, w) = rule_of(a, a.steps)?;
    let s = setup(a, "neuron", true)?;
    let target = s.target()?;
    let p0 = s.problem(target);
    let all = boundaries(p0.model, p0.ids, p0.type_ids)?;
    let shape = boundary_shape(&all, &args.boundary)?;
    crate::attribution::layer::flat_index(&shape, &args.neuron, &args.boundary)?;
    let (x, b) = path_tensors(&s, target, &args.path_boundary)?;
    let p = PathProblem {
        boundary: &args.path_boundary,
        input: &x,
        baseline: &b,
        ..s.problem(target)
    };
    let batch = s.batch(a, a.steps)?;
    let bar = progress_bar(a.quiet);
    let mut prog = |d: usize, t: usize| {
        bar.set_length(t as u64);
        bar.set_position(d as u64);
    };
    let r = neuron_conductance(&p, &args.boundary, &args.neuron, &al, &w, batch, &mut prog)?;
    bar.finish_and_clear();
    let l = &r.layers[0];
    let what = format!(
        "neuron conductance of {}{:?}, path at {}, {} × {}",
        args.boundary,
        args.neuron,
        args.path_boundary,
        rule.name(),
        a.steps
    );
    header(a, &s, &what);
    let sc = scores(a, &s, &l.per_token)?;
    if !a.quiet {
        print!("{}", report::table::render(&sc, 20));
        println!("Σ attributions = {:.6}", l.total);
    }
    let mut j = base_json(a, &s, "neuron_conductance");
    j["boundary"] = json!(args.boundary);
    j["neuron"] = json!(args.neuron);
    j["path_boundary"] = json!(args.path_boundary);
    j["quadrature"] = json!(rule.name());
    j["steps"] = json!(a.steps);
    j["attributions"] = json!(l.per_token);
    j["total"] = json!(l.total);
    j["f_input"] = json!(r.f_input);
    j["f_baseline"] = json!(r.f_baseline);
    words_json(a, &mut j, &sc);
    finish_json(a, &s, j)?;
    if let Some(path) = &a.html {
        let rows = info_rows(a, &s, what);
        write(
            path,
            &ah::page(
                "gradpath · neuron conductance",
                &rows,
                &[ah::token_marks(
                    "Attributions per token",
                    &sc.labels,
                    &sc.scores,
                )],
            ),
        )?;
    }
    Ok(())
}

/// `gradpath saliency`.
pub fn run_saliency(args: &SaliencyArgs) -> Result<()> {
    let a = &args.common;
    let kind = match &args.smooth {
        Some(k) => Some(NoiseKind::parse(k)?),
        None => None,
    };
    if kind.is_some() && args.samples == 0 {
        return Err(Error::Input("--samples must be at least 1".into()));
    }
    let s = setup(a, "saliency", true)?;
    let target = s.target()?;
    let p = s.problem(target);
    let method = if args.times_input {
        GradMethod::InputXGradient
    } else {
        GradMethod::Saliency
    };
    let (f, per) = match kind {
        None => gradient_attribution(&p, method)?,
        Some(k) => {
            let noise = crate::attribution::gradients::gaussian_noise(
                &p,
                args.samples,
                args.stdev,
                args.seed,
            )?;
            let batch = s.batch(a, args.samples)?;
            let bar = progress_bar(a.quiet);
            let mut prog = |d: usize, t: usize| {
                bar.set_length(t as u64);
                bar.set_position(d as u64);
            };
            let v = noise_tunnel(&p, method, k, &noise, batch, &mut prog)?;
            bar.finish_and_clear();
            (crate::attribution::layer::ends(&p)?.0, v)
        }
    };
    let c = s.x.shape()[1];
    let per_token: Vec<f64> = per.chunks(c).map(|r| r.iter().sum()).collect();
    let what = match kind {
        None => method.name().to_string(),
        Some(k) => format!(
            "{} of {} ({} samples, σ = {}, seed {})",
            k.name(),
            method.name(),
            args.samples,
            args.stdev,
            args.seed
        ),
    };
    header(a, &s, &what);
    let sc = scores(a, &s, &per_token)?;
    if !a.quiet {
        print!("{}", report::table::render(&sc, 20));
        println!("F(input) = {f:.6}");
    }
    let mut j = base_json(a, &s, method.name());
    j["boundary"] = json!("hook_embed");
    j["noise_tunnel"] = match kind {
        Some(k) => {
            json!({"type": k.name(), "samples": args.samples, "stdev": args.stdev, "seed": args.seed})
        }
        None => Value::Null,
    };
    j["attributions"] = json!(per_token);
    j["f_input"] = json!(f);
    words_json(a, &mut j, &sc);
    finish_json(a, &s, j)?;
    if let Some(path) = &a.html {
        write(
            path,
            &ah::page(
                &format!("gradpath · {}", method.name()),
                &info_rows(a, &s, what),
                &[ah::token_marks(
                    "Attribution per token (sum over the embedding)",
                    &sc.labels,
                    &sc.scores,
                )],
            ),
        )?;
    }
    Ok(())
}

fn parse_mask(specs: &[String]) -> Result<Vec<(usize, usize)>> {
    specs
        .iter()
        .map(|m| {
            let bad = || Error::Input(format!("--mask-head `{m}`: expected LAYER:HEAD, e.g. 3:7"));
            let (l, h) = m.split_once(':').ok_or_else(bad)?;
            Ok((
                l.trim().parse().map_err(|_| bad())?,
                h.trim().parse().map_err(|_| bad())?,
            ))
        })
        .collect()
}

/// `gradpath attention`.
pub fn run_attention(args: &AttentionArgs) -> Result<()> {
    let a = &args.common;
    warn_words(a, "attention")?;
    let masks = parse_mask(&args.mask_head)?;
    let s = setup(a, "attention", false)?;
    let all = boundaries(s.model.as_ref(), &s.e.ids, &s.e.type_ids)?;
    let n_layers = all
        .iter()
        .filter(|(n, _)| n.ends_with(".attn.hook_pattern"))
        .count();
    let n_heads = all
        .iter()
        .find(|(n, _)| n.ends_with(".attn.hook_pattern"))
        .map(|(_, sh)| sh[0])
        .unwrap_or(0);
    if n_layers == 0 {
        return Err(Error::Input(
            "this model has no attention pattern boundaries".into(),
        ));
    }
    let check = |l: usize, h: usize, what: &str| -> Result<()> {
        if l >= n_layers {
            return Err(Error::Input(format!(
                "{what}: layer {l} is out of range: this model has {n_layers} layers (0..{})",
                n_layers - 1
            )));
        }
        if h >= n_heads {
            return Err(Error::Input(format!(
                "{what}: head {h} is out of range: this model has {n_heads} heads (0..{})",
                n_heads - 1
            )));
        }
        Ok(())
    };
    let layer = args.layer.unwrap_or(n_layers - 1);
    check(layer, args.head, "--layer/--head")?;
    let mut per_layer: Vec<(usize, Vec<f64>)> = Vec::new();
    for (l, h) in &masks {
        check(*l, *h, "--mask-head")?;
        match per_layer.iter_mut().find(|(x, _)| x == l) {
            Some((_, f)) => f[*h] = 0.0,
            None => {
                let mut f = vec![1.0; n_heads];
                f[*h] = 0.0;
                per_layer.push((*l, f));
            }
        }
    }
    let m = attention_maps(s.model.as_ref(), &s.e.ids, &s.e.type_ids, &per_layer)?;
    let t = m.pos;
    let sel = m.head(layer, args.head);
    if !a.quiet {
        println!("{}", s.model.describe());
        println!(
            "attention: {} layers × {} heads, {} tokens; layer {layer} head {}: strongest key per query",
            m.n_layers, m.n_heads, t, args.head
        );
        for q in 0..t {
            let row = &sel[q * t..(q + 1) * t];
            let (k, v) = row
                .iter()
                .enumerate()
                .max_by(|x, y| x.1.total_cmp(y.1))
                .map(|(k, v)| (k, *v))
                .unwrap_or((0, 0.0));
            println!("  {:>16} → {:<16} {v:.3}", s.e.tokens[q], s.e.tokens[k]);
        }
    }
    let mut j = base_json(a, &s, "attention");
    j["n_layers"] = json!(m.n_layers);
    j["n_heads"] = json!(m.n_heads);
    j["masked_heads"] = json!(masks.iter().map(|(l, h)| json!([l, h])).collect::<Vec<_>>());
    let nested: Vec<Vec<Vec<Vec<f64>>>> = (0..m.n_layers)
        .map(|l| {
            (0..m.n_heads)
                .map(|h| m.head(l, h).chunks(t).map(|r| r.to_vec()).collect())
                .collect()
        })
        .collect();
    j["attention"] = json!(nested);
    finish_json(a, &s, j)?;
    if let Some(path) = &a.html {
        let rows = vec![
            ("model", s.model.describe()),
            ("text", a.text.clone()),
            (
                "shown",
                format!(
                    "layer {layer}, head {} (choose with --layer/--head)",
                    args.head
                ),
            ),
        ];
        let grid = ah::attention_grid(
            m.n_layers,
            m.n_heads,
            t,
            &|l, h| m.head(l, h).to_vec(),
            (layer, args.head),
        );
        let heat = ah::heatmap(
            &format!(
                "Layer {layer}, head {}: query (rows) × key (columns)",
                args.head
            ),
            &s.e.tokens,
            &s.e.tokens,
            sel,
            false,
        );
        write(
            path,
            &ah::page("gradpath · attention", &rows, &[heat, grid]),
        )?;
    }
    Ok(())
}

/// `gradpath ablate`.
pub fn run_ablate(args: &AblateArgs) -> Result<()> {
    let a = &args.common;
    let s = setup(a, "ablate", true)?;
    let target = s.target()?;
    let p = s.problem(target);
    let zero = Tensor::zeros(s.x.shape(), s.x.dtype());
    let rep = if args.replace == "zero" { &zero } else { &s.b };
    let batch = s.batch(a, s.e.len() + 1)?;
    let bar = progress_bar(a.quiet);
    let mut prog = |d: usize, t: usize| {
        bar.set_length(t as u64);
        bar.set_position(d as u64);
    };
    let r = ablation(&p, rep, batch, &mut prog)?;
    bar.finish_and_clear();
    let what = format!(
        "embedding ablation: each token's word embedding replaced by {}",
        if args.replace == "zero" {
            "zero".to_string()
        } else {
            format!("the {} baseline's", s.baseline.name())
        }
    );
    header(a, &s, &what);
    let sc = scores(a, &s, &r.per_token)?;
    if !a.quiet {
        print!("{}", report::table::render(&sc, 20));
        println!(
            "F(input) = {:.6}   (score = F(input) − F(ablated))",
            r.f_input
        );
    }
    let mut j = base_json(a, &s, "embedding_ablation");
    j["replace"] = json!(args.replace);
    j["attributions"] = json!(r.per_token);
    j["f_input"] = json!(r.f_input);
    j["f_ablated"] = json!(r.f_ablated);
    words_json(a, &mut j, &sc);
    finish_json(a, &s, j)?;
    if let Some(path) = &a.html {
        write(
            path,
            &ah::page(
                "gradpath · embedding ablation",
                &info_rows(a, &s, what),
                &[ah::token_marks(
                    "F(input) − F(token ablated)",
                    &sc.labels,
                    &sc.scores,
                )],
            ),
        )?;
    }
    Ok(())
}

/// `gradpath sensitivity`.
pub fn run_sensitivity(args: &SensitivityArgs) -> Result<()> {
    let a = &args.common;
    if args.draws == 0 {
        return Err(Error::Input("--draws must be at least 1".into()));
    }
    if !(args.sigma.is_finite() && args.sigma >= 0.0) {
        return Err(Error::Input(format!(
            "--sigma must be a finite number ≥ 0, got {}",
            args.sigma
        )));
    }
    let s = setup(a, "sensitivity", true)?;
    let target = s.target()?;
    let p = s.problem(target);
    let batch = s.batch(a, s.e.len() * args.draws + 1)?;
    let bar = progress_bar(a.quiet);
    let mut prog = |d: usize, t: usize| {
        bar.set_length(t as u64);
        bar.set_position(d as u64);
    };
    let r = noise_sensitivity(&p, args.sigma, args.draws, args.seed, batch, &mut prog)?;
    bar.finish_and_clear();
    let what = format!(
        "noise sensitivity: N(0, {}²) on one token's word embedding, {} draws (seed {})",
        args.sigma, args.draws, args.seed
    );
    header(a, &s, &what);
    let sc = scores(a, &s, &r.std)?;
    if !a.quiet {
        print!("{}", report::table::render(&sc, 20));
        println!(
            "F(input) = {:.6}   (score = standard deviation of F over the draws)",
            r.f_input
        );
    }
    let mut j = base_json(a, &s, "noise_sensitivity");
    j["sigma"] = json!(args.sigma);
    j["draws"] = json!(args.draws);
    j["seed"] = json!(args.seed);
    j["std"] = json!(r.std);
    j["mean"] = json!(r.mean);
    j["f_input"] = json!(r.f_input);
    words_json(a, &mut j, &sc);
    finish_json(a, &s, j)?;
    if let Some(path) = &a.html {
        write(
            path,
            &ah::page(
                "gradpath · noise sensitivity",
                &info_rows(a, &s, what),
                &[ah::token_marks(
                    "Standard deviation of F per noised token",
                    &sc.labels,
                    &sc.scores,
                )],
            ),
        )?;
    }
    Ok(())
}
