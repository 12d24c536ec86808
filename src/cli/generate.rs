//! `gradpath generate-attr`: greedy generation with every generated token explained by IG over
//! the tokens before it; a terminal matrix, JSON and an HTML heatmap.

use super::ig::{encode, parse_token, progress_bar, write};
use crate::attribution::{
    generation_attribution, greedy, Baseline, Generation, GenerationSpec, TargetKind,
};
use crate::integrate::{captum_exact, Rule};
use crate::io::Tokenizer;
use crate::models;
use crate::report::heatmap::{self, Heatmap};
use crate::{DType, Error, Result};
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

/// The model `gradpath generate-attr` uses when `--model` is not given.
pub const DEFAULT_DECODER: &str = "models/SmolLM2-135M-Instruct";

#[derive(Args, Debug, Clone)]
pub struct GenerateArgs {
    /// Causal language model: a Hugging Face folder (config.json, model.safetensors,
    /// tokenizer.json), a .gguf file, or a folder holding one .gguf file.
    #[arg(long, default_value = DEFAULT_DECODER)]
    pub model: PathBuf,
    /// The prompt.
    #[arg(long)]
    pub text: String,
    /// How many tokens to generate greedily (generation stops early at the end-of-sequence token).
    #[arg(long, default_value_t = 5)]
    pub max_new_tokens: usize,
    /// Explain these tokens instead of generating (comma-separated ids or single-token strings,
    /// e.g. " Paris,."): teacher forcing.
    #[arg(long)]
    pub continuation: Option<String>,
    /// What is explained at each step: the generated token's log-probability (Captum
    /// LLMGradientAttribution), probability or logit.
    #[arg(long, default_value = "log-prob", value_parser = ["logit", "prob", "log-prob"])]
    pub target_kind: String,
    /// Path start: pad, eos, unk, zero or id:N (special tokens such as BOS are kept).
    #[arg(long, default_value = "pad")]
    pub baseline: String,
    /// Keep earlier generated tokens fixed (Captum LLMGradientAttribution): rows attribute to the
    /// prompt only. Default: earlier generated tokens are on the path too (Inseq-style).
    #[arg(long)]
    pub prompt_only: bool,
    /// Quadrature points per generated token.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Quadrature rule (see `gradpath ig --help`).
    #[arg(long, default_value = "gauss-legendre")]
    pub method: String,
    /// Path points per forward/backward batch (default: sized to ~512 MB of activations).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Compute dtype.
    #[arg(long, default_value = "f32", value_parser = ["f32", "f64"])]
    pub dtype: String,
    /// Write the result as JSON (schema in docs/JSON.md).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML heatmap.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// CPU threads (default: all cores, or RAYON_NUM_THREADS).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print only warnings and errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Printable token: spaces and newlines made visible.
fn show(tok: &Tokenizer, id: usize) -> String {
    let t = tok.decode(&[id]).unwrap_or_default();
    // A byte-level token that is part of a multi-byte character decodes to U+FFFD: show the raw
    // token instead.
    let t = if t.is_empty() || t.contains('\u{FFFD}') {
        tok.id_to_token(id).unwrap_or_else(|| format!("#{id}"))
    } else {
        t
    };
    t.replace(' ', "␣").replace('\n', "⏎")
}

pub fn run(a: &GenerateArgs) -> Result<()> {
    if let Some(n) = a.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| Error::Msg(e.to_string()))?;
    }
    if a.steps == 0 {
        return Err(Error::Input("--steps must be at least 1".into()));
    }
    if a.max_new_tokens == 0 && a.continuation.is_none() {
        return Err(Error::Input("--max-new-tokens must be at least 1".into()));
    }
    let rule = Rule::parse(&a.method).map_err(|e| Error::Input(e.to_string()))?;
    if a.steps < rule.min_points() {
        return Err(Error::Input(format!(
            "{} needs --steps ≥ {}",
            rule.name(),
            rule.min_points()
        )));
    }
    let baseline = Baseline::parse(&a.baseline)?;
    let kind = TargetKind::parse(&a.target_kind)?;
    let dtype = DType::parse(&a.dtype)?;
    let t0 = Instant::now();
    let model = models::load(&a.model, dtype)?;
    if !model.is_decoder() {
        return Err(Error::Input(format!(
            "generate-attr needs a causal language model; {} is not one (use `gradpath ig` for it)",
            model.describe()
        )));
    }
    let tok = models::load_tokenizer(&a.model)?;
    let load_s = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let e = encode(&tok, &a.text, None, model.max_tokens(), false)?;
    let generated = match &a.continuation {
        Some(c) => c
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| parse_token(s, &tok, model.vocab_size()))
            .collect::<Result<Vec<_>>>()?,
        None => greedy(
            model.as_ref(),
            &e.ids,
            a.max_new_tokens,
            model.eos_token_id(),
        )?,
    };
    if generated.is_empty() {
        return Err(Error::Input(format!(
            "nothing to explain: the prompt already fills the model's {} positions",
            model.max_tokens()
        )));
    }
    if e.len() + generated.len() - 1 > model.max_tokens() {
        return Err(Error::Input(format!(
            "the prompt ({} tokens) and the continuation ({} tokens) exceed the model's {} positions",
            e.len(),
            generated.len(),
            model.max_tokens()
        )));
    }
    let baseline_token = baseline.token_id(&tok, model.as_ref())?;
    let (alphas, weights) = if rule == Rule::CaptumTrapezoid {
        captum_exact(rule, a.steps)?
    } else {
        rule.nodes_weights(a.steps)?
    };
    let n_max = e.len() + generated.len();
    let batch = a.batch.unwrap_or_else(|| {
        (512usize << 20)
            .checked_div(model.activation_bytes_per_row(n_max))
            .unwrap_or(1)
            .clamp(1, a.steps.max(1))
    });
    if batch == 0 {
        return Err(Error::Input("--batch must be at least 1".into()));
    }
    let spec = GenerationSpec {
        prompt: &e.ids,
        special: &e.special,
        generated: &generated,
        baseline_token,
        kind,
        prompt_only: a.prompt_only,
        alphas: &alphas,
        weights: &weights,
        batch,
    };
    let bar = progress_bar(a.quiet);
    let n_gen = generated.len();
    let mut on_step = |s: usize, n: usize| {
        bar.set_message(format!("token {}/{n}", s + 1));
    };
    let mut prog = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let g = generation_attribution(model.as_ref(), &spec, &mut on_step, &mut prog)?;
    bar.finish_and_clear();
    let attribution_s = t1.elapsed().as_secs_f64();

    let mut inputs: Vec<String> = e.ids.iter().map(|&i| show(&tok, i)).collect();
    inputs.extend(generated[..n_gen - 1].iter().map(|&i| show(&tok, i)));
    let outputs: Vec<String> = generated.iter().map(|&i| show(&tok, i)).collect();
    let warnings: Vec<String> = g
        .steps
        .iter()
        .zip(&outputs)
        .filter_map(|(s, o)| s.ig.roughness_warning().map(|w| format!("step {o}: {w}")))
        .collect();
    if !a.quiet {
        println!("{}", model.describe());
        println!(
            "prompt: {:?}   generated: {:?}",
            a.text,
            tok.decode(&generated).unwrap_or_default()
        );
        println!(
            "target: {} of each generated token   baseline: {}{}   {} × {} points",
            kind.name(),
            baseline.name(),
            if a.prompt_only { " (prompt only)" } else { "" },
            rule.name(),
            a.steps
        );
        print!("{}", table(&inputs, &outputs, &g));
        println!("time: load {load_s:.2} s, generation + attribution {attribution_s:.2} s");
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if let Some(path) = &a.json {
        let j = to_json(
            a,
            model.describe(),
            &e.ids,
            &inputs,
            &outputs,
            &g,
            rule,
            batch,
            &warnings,
            load_s,
            attribution_s,
        );
        write(
            path,
            &serde_json::to_string_pretty(&j).map_err(|e| Error::Msg(e.to_string()))?,
        )?;
    }
    if let Some(path) = &a.html {
        let facts = vec![
            format!("model: {}", model.describe()),
            format!("prompt: {:?}", a.text),
            format!(
                "generated: {:?}",
                tok.decode(&generated).unwrap_or_default()
            ),
            format!(
                "target: {} of each generated token; baseline {}{}; {} × {} points; {}",
                kind.name(),
                baseline.name(),
                if a.prompt_only { " (prompt only)" } else { "" },
                rule.name(),
                a.steps,
                a.dtype
            ),
        ];
        let notes: Vec<String> = g
            .steps
            .iter()
            .map(|s| format!("δ = {:+.2e} (rel {:.2e})", s.ig.delta, s.ig.relative_delta))
            .collect();
        let page = heatmap::render(&Heatmap {
            title: "gradpath · generation attribution",
            facts: &facts,
            row_labels: &outputs,
            row_notes: &notes,
            col_labels: &inputs,
            values: &g.matrix(),
            warnings: &warnings,
        });
        write(path, &page)?;
    }
    Ok(())
}

/// Input tokens as rows, generated tokens as columns (a prompt is longer than a continuation),
/// then one line per step with F and the completeness delta.
fn table(inputs: &[String], outputs: &[String], g: &Generation) -> String {
    let w = inputs
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(6, 24);
    let mut s = format!("{:>w$} ", "");
    for o in outputs {
        let o: String = o.chars().take(10).collect();
        s.push_str(&format!("{o:>11}"));
    }
    s.push('\n');
    let m = g.matrix();
    for (j, t) in inputs.iter().enumerate() {
        let t: String = t.chars().take(w).collect();
        s.push_str(&format!("{t:>w$} "));
        for row in &m {
            match row[j] {
                Some(v) => s.push_str(&format!("{v:>11.4}")),
                None => s.push_str(&format!("{:>11}", "·")),
            }
        }
        s.push('\n');
    }
    for (o, st) in outputs.iter().zip(&g.steps) {
        s.push_str(&format!(
            "{o:>w$}  F = {:.4}  F(baseline) = {:.4}  delta = {:+.3e}  relative = {:.3e}{}\n",
            st.ig.f_input,
            st.ig.f_baseline,
            st.ig.delta,
            st.ig.relative_delta,
            if st.ig.roughness_warning().is_some() {
                "  ROUGH"
            } else {
                ""
            }
        ));
    }
    s
}

#[allow(clippy::too_many_arguments)]
fn to_json(
    a: &GenerateArgs,
    description: String,
    prompt_ids: &[usize],
    inputs: &[String],
    outputs: &[String],
    g: &Generation,
    rule: Rule,
    batch: usize,
    warnings: &[String],
    load_s: f64,
    attribution_s: f64,
) -> serde_json::Value {
    let steps: Vec<serde_json::Value> = g
        .steps
        .iter()
        .zip(outputs)
        .map(|(s, o)| {
            serde_json::json!({
                "token": s.token,
                "token_str": o,
                "attributions": s.ig.per_token,
                "f_input": s.ig.f_input,
                "f_baseline": s.ig.f_baseline,
                "delta": s.ig.delta,
                "relative_delta": s.ig.relative_delta,
                "path": {"alphas": s.ig.path_alphas, "f": s.ig.path_f, "total_variation": s.ig.path_variation(), "start_probe": {"alpha": crate::attribution::ig::START_PROBE, "f": s.ig.f_start, "jump": s.ig.start_jump()}},
                "rough": s.ig.roughness_warning().is_some(),
            })
        })
        .collect();
    serde_json::json!({
        "method": "generation_attribution",
        "gradpath_version": env!("CARGO_PKG_VERSION"),
        "model": a.model.display().to_string(),
        "model_description": description,
        "text": a.text,
        "prompt_ids": prompt_ids,
        "generated_ids": g.generated,
        "input_tokens": inputs,
        "generated_tokens": outputs,
        "matrix": g.matrix(),
        "deltas": g.steps.iter().map(|s| s.ig.delta).collect::<Vec<_>>(),
        "relative_deltas": g.steps.iter().map(|s| s.ig.relative_delta).collect::<Vec<_>>(),
        "steps": steps,
        "target_kind": a.target_kind,
        "prompt_only": a.prompt_only,
        "baseline": a.baseline,
        "quadrature": rule.name(),
        "n_steps": a.steps,
        "batch": batch,
        "dtype": a.dtype,
        "boundary": "hook_embed",
        "rough": !warnings.is_empty(),
        "warnings": warnings,
        "timing": {"load_s": load_s, "attribution_s": attribution_s},
    })
}
