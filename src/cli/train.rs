//! `gradpath train`, `gradpath eval` and `gradpath data`: parse, call [`crate::train`], print.

use super::args::{write, RunArgs};
use crate::train::{self, Event, Existing, TrainOptions};
use crate::{Error, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Model folder: an encoder classifier, or a base encoder (then --labels is required and a
    /// fresh head is initialised, seeded).
    #[arg(long)]
    pub model: PathBuf,
    /// Training data, JSONL: {"id", "text", ["text_pair"], "label"}.
    #[arg(long)]
    pub train: PathBuf,
    /// Development data (same format), evaluated after every epoch.
    #[arg(long)]
    pub dev: PathBuf,
    /// Output folder: the fine-tuned model (a Hugging Face folder) and checkpoints/.
    #[arg(long)]
    pub out: PathBuf,
    /// Class names in index order, comma-separated (required for a base encoder).
    #[arg(long, value_delimiter = ',')]
    pub labels: Option<Vec<String>>,
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Peak learning rate (AdamW).
    #[arg(long, default_value_t = 2e-5)]
    pub lr: f64,
    /// Examples per optimizer step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Longest input in tokens (longer texts are truncated and counted).
    #[arg(long, default_value_t = 64)]
    pub max_len: usize,
    /// Linear warm-up as a fraction of all steps, then linear decay to 0.
    #[arg(long, default_value_t = 0.1)]
    pub warmup: f64,
    /// AdamW weight decay (biases and norm weights get none).
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Seed of the shuffles, dropout masks and a fresh head.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Global gradient-norm clipping.
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Train without dropout.
    #[arg(long)]
    pub no_dropout: bool,
    /// Continue from the last checkpoint in --out (optimizer state included).
    #[arg(long)]
    pub resume: bool,
    /// Replace an existing --out.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

fn epoch_bar(quiet: bool, epoch: usize, epochs: usize, steps: usize) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "epoch {epoch}/{epochs} {{pos}}/{{len}} [{{elapsed_precise}}<{{eta_precise}}] {{wide_bar}} {{msg}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// The buffer-pool cap (MiB) of `gradpath train` when `GRADPATH_POOL_MB` is not set. Batches are
/// padded to their longest sentence, so buffer sizes change from step to step and a large pool
/// fills with sizes that do not come back (MiniLM, 256 examples, 1 epoch: peak RSS 2978 MiB with
/// the default 2 GiB, 1174 MiB with 256; docs/FINETUNE.md). Since buffers serve requests down to
/// half their size and a full pool evicts its oldest buffers, 768 MiB keeps most of a step's
/// buffers (MiniLM, 1,024 polarity snippets, batch 32, max-len 64, Intel Xeon, 2 threads: 256 MiB
/// 23.7 s and 1247 MiB peak, 768 MiB 22.0 s and 1446 MiB).
pub const TRAIN_POOL_MB: &str = "768";

pub fn run_train(a: &TrainArgs) -> Result<()> {
    if std::env::var_os("GRADPATH_POOL_MB").is_none() {
        // Read once, at the first buffer returned to the pool: nothing has been allocated yet.
        std::env::set_var("GRADPATH_POOL_MB", TRAIN_POOL_MB);
    }
    let options = a.run.options(None)?;
    let opts = TrainOptions {
        epochs: a.epochs,
        lr: a.lr,
        batch: a.batch,
        max_len: a.max_len,
        warmup: a.warmup,
        weight_decay: a.weight_decay,
        seed: a.seed,
        max_grad_norm: a.max_grad_norm,
        labels: a.labels.clone(),
        dtype: options.dtype,
        dropout: !a.no_dropout,
    };
    let quiet = a.run.quiet;
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut epochs = opts.epochs;
    for p in [&a.model, &a.train, &a.dev] {
        super::output::protect(p);
    }
    let report = train::fit(
        &a.model,
        &a.train,
        &a.dev,
        &a.out,
        &opts,
        if a.resume {
            Existing::Resume
        } else if a.overwrite {
            Existing::Overwrite
        } else {
            Existing::Refuse
        },
        &mut |e| match e {
            Event::Start {
                train,
                dev,
                truncated_train,
                truncated_dev,
                steps_per_epoch,
                first_epoch,
                epochs: n,
                fresh_head,
                labels,
                describe,
            } => {
                epochs = n;
                if quiet {
                    return;
                }
                outln!("model: {describe}; classes: {}", labels.join(", "));
                if !fresh_head.is_empty() {
                    outln!(
                        "fresh head (normal(0, initializer_range), zero bias, seed {}): {}",
                        opts.seed,
                        fresh_head.join(", ")
                    );
                }
                outln!(
                    "train: {train} examples ({truncated_train} truncated at --max-len {}), dev: {dev} ({truncated_dev} truncated); {steps_per_epoch} steps per epoch",
                    opts.max_len
                );
                if first_epoch > 0 {
                    outln!("resuming after epoch {first_epoch}");
                }
            }
            Event::Step {
                epoch,
                step,
                steps_per_epoch,
                loss,
                accuracy,
                examples_per_s,
            } => {
                let b = bar.get_or_insert_with(|| epoch_bar(quiet, epoch, epochs, steps_per_epoch));
                b.set_position(step as u64);
                b.set_message(format!(
                    "loss {loss:.4} acc {:.1}% {examples_per_s:.1} ex/s",
                    100.0 * accuracy
                ));
            }
            Event::Epoch(r, ck) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                if !quiet {
                    outln!(
                        "epoch {}/{epochs}: train loss {:.4} acc {:.2}% | dev acc {:.2}% loss {:.4} macro-F1 {:.4} (n={}) | {:.1} s, {:.1} ex/s | checkpoint {}",
                        r.epoch,
                        r.train_loss,
                        100.0 * r.train_accuracy,
                        100.0 * r.dev.accuracy,
                        r.dev.loss,
                        r.dev.macro_f1,
                        r.dev.n,
                        r.seconds,
                        r.examples_per_s,
                        ck.display()
                    );
                    if !r.dev.by_depth.is_empty() {
                        outln!("  dev accuracy by depth: {}", by_depth(&r.dev.by_depth));
                    }
                }
            }
        },
    )?;
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    if !quiet {
        match report.history.last() {
            Some(last) => outln!(
                "saved {} (dev accuracy {:.2}% after epoch {})",
                report.out.display(),
                100.0 * last.dev.accuracy,
                last.epoch
            ),
            None => outln!("saved {}", report.out.display()),
        }
    }
    Ok(())
}

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// A classifier model folder (e.g. the --out of `gradpath train`).
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled data, JSONL: {"id", "text", ["text_pair"], "label"}.
    #[arg(long)]
    pub data: PathBuf,
    /// Write the report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Longest input in tokens (longer texts are truncated and counted).
    #[arg(long, default_value_t = 64)]
    pub max_len: usize,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn run_eval(a: &EvalArgs) -> Result<()> {
    let options = a.run.options(None)?;
    super::output::protect(&a.model);
    super::output::protect(&a.data);
    let r = train::evaluate_file(&a.model, &a.data, a.batch, a.max_len, options.dtype)?;
    if let Some(p) = &a.json {
        let mut v = serde_json::to_value(&r).map_err(|e| Error::Internal(e.to_string()))?;
        v["model"] = serde_json::json!(a.model.display().to_string());
        v["data"] = serde_json::json!(a.data.display().to_string());
        let s = serde_json::to_string_pretty(&v).map_err(|e| Error::Internal(e.to_string()))?;
        write(p, &s)?;
    }
    if a.run.quiet {
        return Ok(());
    }
    outln!(
        "{}: {} examples ({} truncated at --max-len {})",
        a.data.display(),
        r.n,
        r.truncated,
        a.max_len
    );
    outln!(
        "accuracy {:.2}%  loss {:.4}  macro-F1 {:.4}",
        100.0 * r.accuracy,
        r.loss,
        r.macro_f1
    );
    if !r.by_depth.is_empty() {
        outln!("accuracy by depth: {}", by_depth(&r.by_depth));
    }
    let w = r.labels.iter().map(|l| l.len()).max().unwrap_or(5).max(5);
    outln!("{:<w$}  precision  recall     f1  support", "class");
    for c in &r.per_class {
        outln!(
            "{:<w$}  {:>9.4}  {:>6.4}  {:>5.4}  {:>7}",
            c.label,
            c.precision,
            c.recall,
            c.f1,
            c.support
        );
    }
    outln!("confusion (rows: true, columns: predicted)");
    out!("{:<w$}", "");
    for l in &r.labels {
        out!("  {l:>w$}");
    }
    outln!();
    for (l, row) in r.labels.iter().zip(&r.confusion) {
        out!("{l:<w$}");
        for c in row {
            out!("  {c:>w$}");
        }
        outln!();
    }
    Ok(())
}

/// `depth 0: 97.50% (n=200), depth 1: ...`
fn by_depth(v: &[train::eval::DepthAccuracy]) -> String {
    v.iter()
        .map(|d| format!("depth {}: {:.2}% (n={})", d.depth, 100.0 * d.accuracy, d.n))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum DataCommand {
    /// Rule-reasoning examples: facts and rules, `[SEP]`, a query; label true/false by closed-world
    /// forward chaining; depth = rule applications needed (JSONL on stdout or --out).
    Rules(RulesArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RulesArgs {
    /// Number of examples.
    #[arg(long)]
    pub n: usize,
    /// Largest reasoning depth (examples are spread over depths 0..=D).
    #[arg(long, default_value_t = 2)]
    pub depth: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Only the two anchor facts and the chain's rules, no distractor facts or rules: an easier
    /// set for a curriculum's first stage (docs/FINETUNE.md has what it did and did not achieve).
    #[arg(long)]
    pub no_distractors: bool,
    /// Write here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run_data(a: &DataArgs) -> Result<()> {
    match &a.command {
        DataCommand::Rules(r) => {
            let distractors = if r.no_distractors {
                train::rules::Distractors::None
            } else {
                train::rules::Distractors::Some
            };
            let ex = train::rules::generate_with(r.n, r.depth, r.seed, distractors)?;
            let mut s = String::new();
            for e in &ex {
                s.push_str(&serde_json::to_string(e).map_err(|e| Error::Internal(e.to_string()))?);
                s.push('\n');
            }
            match &r.out {
                Some(p) => write(p, &s),
                None => {
                    out!("{s}");
                    Ok(())
                }
            }
        }
    }
}
