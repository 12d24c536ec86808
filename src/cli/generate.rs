//! `gradpath generate-attr`: greedy generation with every generated token explained by IG over
//! the tokens before it; a terminal matrix, JSON and an HTML heatmap.

use super::args::*;
use crate::attribution::TargetKind;
use crate::explain::{GenerateOptions, GenerationReport};
use crate::report::heatmap::{self, Heatmap};
use crate::{Error, Result};
use clap::Args;
use std::path::PathBuf;

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
    /// Render TEXT as the user's message with the model's chat template (generation prompt
    /// appended), as the model sees it in a conversation.
    #[arg(long)]
    pub chat: bool,
    /// A system message before TEXT (implies --chat).
    #[arg(long)]
    pub system: Option<String>,
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
    /// Keep earlier generated tokens fixed (Captum LLMGradientAttribution): rows attribute to the
    /// prompt only. Default: earlier generated tokens are on the path too (Inseq-style).
    #[arg(long)]
    pub prompt_only: bool,
    #[command(flatten)]
    pub baseline: BaselineArgs,
    #[command(flatten)]
    pub quadrature: QuadratureArgs,
    #[command(flatten)]
    pub adaptive: AdaptiveArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn run(a: &GenerateArgs) -> Result<()> {
    let options = a.run.options(a.batch.batch)?;
    let q = a.quadrature.parse()?;
    let opts = GenerateOptions {
        path: path_options(&a.baseline, &a.quadrature)?,
        adaptive: a.adaptive.parse(&q)?,
        max_new_tokens: a.max_new_tokens,
        continuation: a.continuation.as_ref().map(|c| {
            c.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        }),
        kind: TargetKind::parse(&a.target_kind)?,
        prompt_only: a.prompt_only,
        chat: (a.chat || a.system.is_some()).then(|| crate::explain::Chat {
            system: a.system.clone(),
        }),
    };
    let (mut ex, bar) = load(&a.model, options, a.run.quiet)?;
    let b = bar.clone();
    ex.on_step(move |s, n| b.set_message(format!("token {}/{n}", s + 1)));
    let g = ex.generate(&a.text, &opts).map_err(|e| match e {
        Error::TargetMismatch(_) => Error::TargetMismatch(format!(
            "generate-attr needs a causal language model; {} is not one (use `gradpath ig` for it)",
            ex.model().describe()
        )),
        e => e,
    })?;
    bar.finish_and_clear();

    let points = match g.tolerance {
        Some(tol) => format!(
            "{} adaptive to relative delta ≤ {tol:e} ({}; points per step: {})",
            g.quadrature,
            g.adaptive.unwrap_or_default(),
            g.points_used
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!("{} × {} points", g.quadrature, g.n_steps),
    };
    if !a.run.quiet {
        outln!("{}", g.model_description);
        outln!("prompt: {:?}   generated: {:?}", g.text, g.generated_text);
        outln!(
            "target: {} of each generated token   baseline: {}{}   {points}",
            g.target_kind,
            g.baseline,
            if g.prompt_only { " (prompt only)" } else { "" },
        );
        out!("{}", table(&g));
        outln!(
            "time: load {:.2} s, generation + attribution {:.2} s",
            g.timing.load_s,
            g.timing.attribution_s
        );
    }
    for w in &g.warnings {
        eprintln!("warning: {w}");
    }
    a.output.write_json(&g)?;
    if let Some(path) = &a.output.html {
        let facts = vec![
            format!("model: {}", g.model_description),
            format!("prompt: {:?}", g.text),
            format!("generated: {:?}", g.generated_text),
            format!(
                "target: {} of each generated token; baseline {}{}; {points}; {}",
                g.target_kind,
                g.baseline,
                if g.prompt_only { " (prompt only)" } else { "" },
                g.dtype
            ),
        ];
        let notes: Vec<String> = g
            .steps
            .iter()
            .map(|s| format!("δ = {:+.2e} (rel {:.2e})", s.delta, s.relative_delta))
            .collect();
        let page = heatmap::render(&Heatmap {
            title: "gradpath · generation attribution",
            facts: &facts,
            row_labels: &g.generated_tokens,
            row_notes: &notes,
            col_labels: &g.input_tokens,
            values: &g.matrix,
            warnings: &g.warnings,
        });
        write(path, &page)?;
    }
    Ok(())
}

/// Input tokens as rows, generated tokens as columns (a prompt is longer than a continuation),
/// then one line per step with F and the completeness delta.
fn table(g: &GenerationReport) -> String {
    let (inputs, outputs) = (&g.input_tokens, &g.generated_tokens);
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
    for (j, t) in inputs.iter().enumerate() {
        let t: String = t.chars().take(w).collect();
        s.push_str(&format!("{t:>w$} "));
        for row in &g.matrix {
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
            st.f_input,
            st.f_baseline,
            st.delta,
            st.relative_delta,
            if st.rough { "  ROUGH" } else { "" }
        ));
    }
    s
}
