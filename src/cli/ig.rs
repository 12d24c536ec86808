//! `gradpath ig`: token Integrated Gradients on a sentence, printed as a table, written as JSON
//! and HTML.

use crate::attribution::{
    integrated_gradients, integrated_gradients_adaptive, Adaptive, Baseline, IgResult, PathProblem,
    Target, TargetKind,
};
use crate::integrate::{captum_exact, Rule};
use crate::io::{Encoded, Tokenizer};
use crate::models::{self, Batch, Hooks, Model};
use crate::report::{self, aggregate_words, Aggregate, TokenScores};
use crate::{DType, Error, Result, Tape};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

/// The model `gradpath ig` uses when `--model` is not given (fetched by scripts/fetch-models.sh).
pub const DEFAULT_MODEL: &str = "models/all-MiniLM-L6-v2";

#[derive(Args, Debug, Clone)]
pub struct IgArgs {
    /// Hugging Face model folder (config.json, model.safetensors, tokenizer.json).
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// The text to explain.
    #[arg(long)]
    pub text: String,
    /// Sentence-embedding models: explain the cosine similarity of TEXT's mean-pooled embedding to
    /// this text's.
    #[arg(long)]
    pub similar_to: Option<String>,
    /// Classifiers: the class to explain, as an index or a label name (default: predicted class).
    #[arg(long)]
    pub target: Option<String>,
    /// Causal language models: the next token to explain, as an id or a token string (e.g.
    /// " Paris"; it must be a single token). Default: the predicted token.
    #[arg(long)]
    pub target_token: Option<String>,
    /// Causal language models: the position whose next-token logits are explained (0-based;
    /// default: the last token).
    #[arg(long)]
    pub position: Option<usize>,
    /// Explain the class (or next-token) logit, probability or log-probability.
    #[arg(long, default_value = "logit", value_parser = ["logit", "prob", "log-prob"])]
    pub target_kind: String,
    /// Path start: [PAD] / [MASK] / [UNK] / EOS for every non-special token (BOS/[CLS]/[SEP] kept),
    /// the zero embedding, or id:N. Values: pad, eos, mask, unk, zero, id:N.
    #[arg(long, default_value = "pad")]
    pub baseline: String,
    /// Quadrature points along the path.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Quadrature rule: gauss-legendre, riemann-left, riemann-right, riemann-middle,
    /// riemann-trapezoid (textbook), captum-trapezoid (Captum's weights, for parity).
    #[arg(long, default_value = "gauss-legendre")]
    pub method: String,
    /// Path points per forward/backward batch (default: chosen to keep activations near 512 MB).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Compute dtype.
    #[arg(long, default_value = "f32", value_parser = ["f32", "f64"])]
    pub dtype: String,
    /// Refine the quadrature adaptively until the relative completeness delta is ≤ T.
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// How --tolerance refines gauss-legendre: `doubling` (n, 2n, 4n, ... points; fewest model
    /// passes on MiniLM, see docs/BENCHMARKS.md) or `panels` (Gauss–Kronrod panels bisected where
    /// F bends along the path). Other rules refine by nesting (old points reused).
    #[arg(long, default_value = "doubling", value_parser = ["panels", "doubling"])]
    pub adaptive: String,
    /// Point budget for --tolerance.
    #[arg(long, default_value_t = 1024)]
    pub max_points: usize,
    /// Aggregate sub-word tokens to words in the table and HTML (JSON gains `words`).
    #[arg(long)]
    pub words: bool,
    /// How --words combines sub-words: sum, mean, max, absmax.
    #[arg(long, default_value = "sum")]
    pub aggregate: String,
    /// Cut texts longer than the model's positions instead of failing.
    #[arg(long)]
    pub truncate: bool,
    /// Write the result as JSON (schema in docs/JSON.md).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML page.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// CPU threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print only warnings and errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Encodes `text`, refusing empty text and (unless `truncate`) text longer than `max`.
pub fn encode(
    tok: &Tokenizer,
    text: &str,
    pair: Option<&str>,
    max: usize,
    truncate: bool,
) -> Result<Encoded> {
    if text.trim().is_empty() {
        return Err(Error::Input("the text is empty".into()));
    }
    let mut e = tok.encode(text, pair)?;
    if e.is_empty() || e.special.iter().all(|&s| s) {
        return Err(Error::Input(
            "the text is empty after tokenization (no tokens besides the special ones)".into(),
        ));
    }
    if e.len() > max {
        if !truncate {
            return Err(Error::Input(format!(
                "the text has {} tokens but the model takes at most {max}",
                e.len()
            )));
        }
        // Keep the first max−1 tokens and the closing special token, if there is one.
        let last = e.len() - 1;
        let keep_last = e.special[last];
        let cut = if keep_last { max - 1 } else { max };
        let mut idx: Vec<usize> = (0..cut).collect();
        if keep_last {
            idx.push(last);
        }
        e = Encoded {
            ids: idx.iter().map(|&i| e.ids[i]).collect(),
            tokens: idx.iter().map(|&i| e.tokens[i].clone()).collect(),
            type_ids: idx.iter().map(|&i| e.type_ids[i]).collect(),
            offsets: idx.iter().map(|&i| e.offsets[i]).collect(),
            special: idx.iter().map(|&i| e.special[i]).collect(),
            words: idx.iter().map(|&i| e.words[i]).collect(),
        };
    }
    Ok(e)
}

/// Forward of one sequence without gradients.
fn forward_once(model: &dyn Model, e: &Encoded) -> Result<crate::models::ModelOutput> {
    let tape = Tape::new();
    let _g = tape.no_grad();
    model.forward(&Batch::repeat(&e.ids, &e.type_ids, 1), &mut Hooks::new())
}

/// A next-token target given as an id or a token string.
pub fn parse_token(s: &str, tok: &Tokenizer, vocab: usize) -> Result<usize> {
    if let Ok(id) = s.parse::<usize>() {
        if id >= vocab {
            return Err(Error::Input(format!(
                "target token id {id} is out of range: the vocabulary has {vocab} tokens"
            )));
        }
        return Ok(id);
    }
    if let Some(id) = tok.token_to_id(s) {
        return Ok(id);
    }
    let e = tok.encode_plain(s)?;
    match e.as_slice() {
        [id] => Ok(*id),
        [] => Err(Error::Input(format!("unknown target token {s:?}: it encodes to no token"))),
        ids => Err(Error::Input(format!(
            "unknown target token {s:?}: it encodes to {} tokens {ids:?}, not one; give a single token or an id",
            ids.len()
        ))),
    }
}

/// Resolves a decoder target: `kind` of the next token (given or predicted) after `position`.
pub fn resolve_token_target(
    model: &dyn Model,
    tok: &Tokenizer,
    e: &Encoded,
    token: Option<&str>,
    position: Option<usize>,
    kind: &str,
) -> Result<(Target, Option<String>)> {
    let position = position.unwrap_or(e.len() - 1);
    if position >= e.len() {
        return Err(Error::Input(format!(
            "--position {position} is out of range: the text has {} tokens (0..{})",
            e.len(),
            e.len() - 1
        )));
    }
    let token = match token {
        Some(t) => parse_token(t, tok, model.vocab_size())?,
        None => {
            let out = forward_once(model, e)?;
            let l = out.token_logits(position)?.value().to_vec_f64()?;
            argmax(&l)
        }
    };
    let kind = TargetKind::parse(kind)?;
    Ok((
        Target::Token {
            position,
            token,
            kind,
        },
        tok.id_to_token(token),
    ))
}

/// Index of the largest value (the first one on ties).
pub fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &x)| {
            if x > best.1 {
                (i, x)
            } else {
                best
            }
        })
        .0
}

/// Resolves the target: a class (given or predicted), the similarity to `--similar-to`, or a
/// next token for causal language models.
pub(crate) fn resolve_target(
    a: &IgArgs,
    model: &dyn Model,
    tok: &Tokenizer,
    e: &Encoded,
) -> Result<(Target, Option<String>)> {
    if model.is_decoder() {
        if a.similar_to.is_some() || a.target.is_some() {
            return Err(Error::Input("this is a causal language model: choose the explained token with --target-token (and --position), not --target / --similar-to".into()));
        }
        return resolve_token_target(
            model,
            tok,
            e,
            a.target_token.as_deref(),
            a.position,
            &a.target_kind,
        );
    }
    if a.target_token.is_some() || a.position.is_some() {
        return Err(Error::Input(
            "--target-token and --position are for causal language models; for this model use --target (classifiers) or --similar-to (sentence embeddings)".into(),
        ));
    }
    let out = forward_once(model, e)?;
    match (&out.logits, &a.similar_to) {
        (Some(_), Some(_)) => Err(Error::Input("--similar-to needs a sentence-embedding model, but this one is a classifier".into())),
        (None, None) => Err(Error::Input("this is a sentence-embedding model: give --similar-to TEXT to explain the similarity to a second text".into())),
        (None, Some(other)) => {
            let e2 = encode(tok, other, None, model.max_tokens(), a.truncate).map_err(|err| match err {
                Error::Input(m) => Error::Input(format!("--similar-to: {m}")),
                other => other,
            })?;
            let p = forward_once(model, &e2)?.pooled.ok_or_else(|| Error::Msg("no pooled output".into()))?;
            let c = p.shape()[1];
            Ok((Target::Similarity { reference: p.into_value().reshape(&[c])? }, None))
        }
        (Some(logits), None) => {
            let l = logits.value().to_vec_f64()?;
            let labels = model.labels();
            let class = match &a.target {
                None => l.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)).map(|p| p.0).unwrap_or(0),
                Some(t) => match t.parse::<usize>() {
                    Ok(i) if i < l.len() => i,
                    Ok(i) => return Err(Error::Input(format!("class {i} is out of range: the model has {} classes (0..{})", l.len(), l.len() - 1))),
                    Err(_) => labels.iter().position(|x| x == t).ok_or_else(|| Error::Input(format!("unknown class label `{t}`; labels: {}", labels.join(", "))))?,
                },
            };
            let kind = TargetKind::parse(&a.target_kind)?;
            Ok((Target::Class { class, kind }, labels.get(class).cloned()))
        }
    }
}

/// Runs `gradpath ig`.
pub fn run(a: &IgArgs) -> Result<()> {
    if let Some(n) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Error::Msg(e.to_string()))?;
    }
    if a.steps == 0 {
        return Err(Error::Input("--steps must be at least 1".into()));
    }
    let rule = Rule::parse(&a.method).map_err(|e| Error::Input(e.to_string()))?;
    if a.steps < rule.min_points() {
        return Err(Error::Input(format!(
            "{} needs --steps ≥ {}",
            rule.name(),
            rule.min_points()
        )));
    }
    if let Some(tol) = a.tolerance {
        if !(tol.is_finite() && tol > 0.0) {
            return Err(Error::Input(format!(
                "--tolerance must be a finite number > 0, got {tol}"
            )));
        }
        let start = a.steps.min(16).max(rule.min_points());
        if a.max_points < start {
            return Err(Error::Input(format!("--max-points {} is below the {start} points of the first adaptive pass; raise --max-points or lower --steps", a.max_points)));
        }
    }
    let baseline = Baseline::parse(&a.baseline)?;
    let aggregate = Aggregate::parse(&a.aggregate)?;
    let dtype = DType::parse(&a.dtype)?;
    let t0 = Instant::now();
    let model = models::load(&a.model, dtype)?;
    let tok = models::load_tokenizer(&a.model)?;
    let load_s = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let e = encode(&tok, &a.text, None, model.max_tokens(), a.truncate)?;
    let (target, label) = resolve_target(a, model.as_ref(), &tok, &e)?;
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
    let p = PathProblem {
        model: model.as_ref(),
        ids: &e.ids,
        type_ids: &e.type_ids,
        boundary: "hook_embed",
        input: &x,
        baseline: &b,
        target: &target,
    };
    let batch = a.batch.unwrap_or_else(|| {
        (512usize << 20)
            .checked_div(model.activation_bytes_per_row(e.len()))
            .unwrap_or(1)
            .clamp(1, a.steps.max(1))
    });
    if batch == 0 {
        return Err(Error::Input("--batch must be at least 1".into()));
    }
    let bar = progress_bar(a.quiet);
    let mut prog = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let r = match a.tolerance {
        Some(tol) => {
            let scheme = match (rule, a.adaptive.as_str()) {
                (Rule::GaussLegendre, "panels") => Adaptive::Panels(1),
                _ => Adaptive::Rule(rule, a.steps.min(16).max(rule.min_points())),
            };
            integrated_gradients_adaptive(&p, scheme, tol, a.max_points, batch, &mut prog)?
        }
        None => {
            let (alphas, weights) = if rule == Rule::CaptumTrapezoid {
                captum_exact(rule, a.steps)?
            } else {
                rule.nodes_weights(a.steps)?
            };
            integrated_gradients(&p, &alphas, &weights, batch, &mut prog)?
        }
    };
    bar.finish_and_clear();
    let attribution_s = t1.elapsed().as_secs_f64();
    if std::env::var_os("GRADPATH_POOL_STATS").is_some() {
        let (h, m, b) = <f32 as crate::tensor::pool::Pooled>::pool().stats();
        let (h64, m64, b64) = <f64 as crate::tensor::pool::Pooled>::pool().stats();
        eprintln!("buffer pool: f32 {h} hits, {m} misses, {} MB held; f64 {h64} hits, {m64} misses, {} MB held", b >> 20, b64 >> 20);
    }

    let scores = if a.words {
        aggregate_words(
            &a.text,
            &e.tokens,
            &e.words,
            &e.offsets,
            &e.type_ids,
            &r.per_token,
            aggregate,
        )
    } else {
        TokenScores {
            labels: e.tokens.clone(),
            scores: r.per_token.clone(),
        }
    };
    let target_desc = match (&target, &label) {
        (Target::Class { class, kind }, l) => format!(
            "class {class}{} {}",
            l.as_ref().map(|l| format!(" ({l})")).unwrap_or_default(),
            kind.name()
        ),
        (Target::Similarity { .. }, _) => format!(
            "cosine similarity to {:?}",
            a.similar_to.as_deref().unwrap_or("")
        ),
        (
            Target::Token {
                position,
                token,
                kind,
            },
            l,
        ) => format!(
            "next token {token} {:?} after position {position}, {}",
            l.as_deref().unwrap_or("?"),
            kind.name()
        ),
    };
    let warning = r.roughness_warning();
    if !a.quiet {
        println!("{}", model.describe());
        println!(
            "target: {target_desc}   baseline: {}   {} × {} points{}",
            baseline.name(),
            rule.name(),
            r.steps,
            if a.tolerance.is_some() {
                format!(" (adaptive, {} passes)", r.points_used)
            } else {
                String::new()
            }
        );
        print!("{}", report::table::render(&scores, 20));
        println!(
            "F(input) = {:.6}   F(baseline) = {:.6}   Σ attributions = {:.6}",
            r.f_input,
            r.f_baseline,
            r.per_token.iter().sum::<f64>()
        );
        println!(
            "completeness delta = {:+.3e}   relative = {:.3e}",
            r.delta, r.relative_delta
        );
        println!("time: load {load_s:.2} s, attribution {attribution_s:.2} s");
    }
    if let Some(w) = &warning {
        eprintln!("warning: {w}");
    }
    if let Some(path) = &a.json {
        let j = to_json(
            a,
            model.as_ref(),
            &e,
            base_ids.as_deref(),
            &target,
            label.as_deref(),
            rule,
            &r,
            &scores,
            warning.as_deref(),
            load_s,
            attribution_s,
            batch,
        );
        write(
            path,
            &serde_json::to_string_pretty(&j).map_err(|e| Error::Msg(e.to_string()))?,
        )?;
    }
    if let Some(path) = &a.html {
        let info = report::html::PageInfo {
            title: "gradpath · integrated gradients",
            model: &model.describe(),
            text: &a.text,
            target: &target_desc,
            f_input: r.f_input,
            f_baseline: r.f_baseline,
            delta: r.delta,
            relative_delta: r.relative_delta,
            method: &format!(
                "{} × {}, baseline {}, {}",
                rule.name(),
                r.steps,
                baseline.name(),
                a.dtype
            ),
            warning: warning.as_deref(),
            path_alphas: &r.path_alphas,
            path_f: &r.path_f,
        };
        write(path, &report::html::render(&scores, &info))?;
    }
    Ok(())
}

pub(crate) fn progress_bar(quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} path points {pos}/{len} [{elapsed_precise}] {wide_bar}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

pub(crate) fn write(path: &std::path::Path, s: &str) -> Result<()> {
    std::fs::write(path, s).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })
}

#[allow(clippy::too_many_arguments)]
fn to_json(
    a: &IgArgs,
    model: &dyn Model,
    e: &Encoded,
    base_ids: Option<&[usize]>,
    target: &Target,
    label: Option<&str>,
    rule: Rule,
    r: &IgResult,
    scores: &TokenScores,
    warning: Option<&str>,
    load_s: f64,
    attribution_s: f64,
    batch: usize,
) -> serde_json::Value {
    let mut t = target.to_json(label);
    if let Some(s) = &a.similar_to {
        t["similar_to"] = serde_json::json!(s);
    }
    let mut j = serde_json::json!({
        "method": "integrated_gradients",
        "gradpath_version": env!("CARGO_PKG_VERSION"),
        "model": a.model.display().to_string(),
        "model_description": model.describe(),
        "text": a.text,
        "tokens": e.tokens,
        "ids": e.ids,
        "special": e.special,
        "target": t,
        "baseline": Baseline::parse(&a.baseline).map(|b| b.name()).unwrap_or_default(),
        "baseline_ids": base_ids,
        "quadrature": rule.name(),
        "steps": r.steps,
        "points_used": r.points_used,
        "batch": batch,
        "dtype": a.dtype,
        "boundary": "hook_embed",
        "attributions": r.per_token,
        "f_input": r.f_input,
        "f_baseline": r.f_baseline,
        "delta": r.delta,
        "relative_delta": r.relative_delta,
        "path": {"alphas": r.path_alphas, "f": r.path_f, "total_variation": r.path_variation(), "start_probe": {"alpha": crate::attribution::ig::START_PROBE, "f": r.f_start, "jump": r.start_jump()}},
        "rough": warning.is_some(),
        "warnings": warning.map(|w| vec![w.to_string()]).unwrap_or_default(),
        "timing": {"load_s": load_s, "attribution_s": attribution_s},
    });
    if let Some(rf) = &r.refinement {
        j["refinement"] = serde_json::json!({
            "tolerance": a.tolerance,
            "converged": rf.converged,
            "trajectory": rf.trajectory.iter().map(|t| serde_json::json!({"n": t.n, "points_used": t.points_used, "relative_delta": t.delta})).collect::<Vec<_>>(),
        });
    }
    if a.words {
        j["words"] = serde_json::json!(scores.labels);
        j["word_attributions"] = serde_json::json!(scores.scores);
        j["word_aggregation"] = serde_json::json!(a.aggregate);
    }
    j
}
