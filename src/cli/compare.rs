//! `gradpath compare`: a fine-tuned classifier against its base model on a text or a JSONL data
//! set ([`crate::explain::compare`]); prints the summary table, writes JSON and the HTML page.

use super::args::{write, BaselineArgs, BatchArgs, OutputArgs, RunArgs};
use crate::attribution::TargetKind;
use crate::explain::{
    compare_with_progress, read_data, CompareExample, CompareOptions, CompareReport, Explainer,
    GroupComparison, Occurrence, Stat,
};
use crate::{Error, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// The base model: a base encoder (e.g. models/all-MiniLM-L6-v2), which gets a fresh
    /// classification head seeded by --seed, as transformers initialises one when a base
    /// checkpoint is loaded into a classifier; or a classifier checkpoint, used as it is.
    #[arg(long)]
    pub base: PathBuf,
    /// The fine-tuned classifier (e.g. the --out folder of `gradpath train`). Both models must
    /// share the tokenizer, the number of layers and the number of classes.
    #[arg(long)]
    pub tuned: PathBuf,
    /// One text to compare on (give --text or --data).
    #[arg(long)]
    pub text: Option<String>,
    // In `help`, not a doc comment: rustdoc would read [CLS] and [SEP] as links.
    #[arg(
        long,
        help = "With --text: a second segment, encoded as [CLS] TEXT [SEP] PAIR [SEP]"
    )]
    pub pair: Option<String>,
    /// JSONL examples, one object per line: "text", optional "text_pair", "label" (a class index
    /// or name: accuracy), "depth" (averages per depth; `gradpath data rules` writes it), "id".
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// With --data: only the first N examples.
    #[arg(long)]
    pub limit: Option<usize>,
    // The help is an attribute, not a doc comment: rustdoc would read [SEP] as a link.
    #[arg(
        long,
        help = "The token whose conductance curve across layers is read, as printed in the token list (or its index). Default: the tokenizer's separator, [SEP] (or </s>)"
    )]
    pub token: Option<String>,
    /// Which occurrence of --token: `first` (for a text pair, the separator between the two
    /// segments, e.g. between the rules and the query) or `last` (the closing one).
    #[arg(long, default_value = "first", value_parser = ["first", "last"])]
    pub token_occurrence: String,
    /// Class names in index order, comma-separated, for a fresh head (default: the tuned
    /// model's id2label).
    #[arg(long, value_delimiter = ',')]
    pub labels: Option<Vec<String>>,
    /// Seed of the base model's fresh classification head.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Gauss–Legendre points of Integrated Gradients.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Layer conductance: steps of the left-point rule (steps + 1 Gauss–Legendre nodes, as
    /// `gradpath conductance` and Captum).
    #[arg(long, default_value_t = 50)]
    pub conductance_steps: usize,
    /// The class explained on both models, an index or a label (default: the tuned model's
    /// predicted class, per example).
    #[arg(long)]
    pub target: Option<String>,
    /// Explain the class logit, probability or log-probability.
    #[arg(long, default_value = "logit", value_parser = ["logit", "prob", "log-prob"])]
    pub target_kind: String,
    #[command(flatten)]
    pub baseline: BaselineArgs,
    /// Longest input in tokens; longer examples are truncated as in `gradpath train` and `eval`
    /// (longest segment first, special tokens kept). Default: the models' positions.
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Skip examples that cannot be run (the token missing, a non-finite result) and list them,
    /// instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
    #[command(flatten)]
    pub batch: BatchArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

fn usage(name: &'static str, detail: &str) -> Error {
    Error::BadValue {
        name,
        detail: detail.into(),
    }
}

/// A progress bar over examples (hidden with --quiet).
fn bar(quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(0);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} compare {pos}/{len} examples [{elapsed_precise}, ETA {eta}] {wide_bar}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b
}

/// Runs `gradpath compare`.
pub fn run(a: &CompareArgs) -> Result<()> {
    match (&a.text, &a.data) {
        (Some(_), Some(_)) => {
            return Err(usage(
                "--text",
                "give either --text (one example) or --data (a JSONL file), not both",
            ))
        }
        (None, None) => {
            return Err(usage(
                "--text",
                "give --text TEXT (one example) or --data FILE (a JSONL file)",
            ))
        }
        _ => {}
    }
    if a.pair.is_some() && a.text.is_none() {
        return Err(usage(
            "--pair",
            "goes with --text; in a --data file, give each line a \"text_pair\"",
        ));
    }
    if a.limit.is_some() && a.data.is_none() {
        return Err(usage("--limit", "goes with --data"));
    }
    let options = a.run.options(a.batch.batch)?;
    let o = CompareOptions {
        token: a.token.clone(),
        occurrence: Occurrence::parse(&a.token_occurrence)?,
        steps: a.steps,
        conductance_steps: a.conductance_steps,
        baseline: a.baseline.parse()?,
        class: a.target.clone(),
        kind: TargetKind::parse(&a.target_kind)?,
        max_len: a.max_len,
        skip_bad: a.skip_bad,
    };
    for p in [Some(&a.base), Some(&a.tuned), a.data.as_ref()]
        .into_iter()
        .flatten()
    {
        super::output::protect(p);
    }
    let tuned = Explainer::load_classifier(&a.tuned, a.labels.as_deref(), a.seed, options.clone())?;
    let labels: Vec<String> = match &a.labels {
        Some(l) => l.clone(),
        None => tuned
            .classifier_info()
            .map(|c| c.labels.clone())
            .unwrap_or_default(),
    };
    let base = Explainer::load_classifier(&a.base, Some(&labels), a.seed, options)?;
    let examples = match (&a.text, &a.data) {
        (Some(t), _) => {
            let mut e = CompareExample::text(t.clone());
            e.pair = a.pair.clone();
            vec![e]
        }
        (_, Some(path)) => read_data(path, &labels, a.limit)?,
        _ => unreachable!("checked above"),
    };
    let b = bar(a.run.quiet);
    b.set_length(examples.len() as u64);
    let report = compare_with_progress(&base, &tuned, &examples, &o, &mut |d, _| {
        b.set_position(d as u64)
    })?;
    b.finish_and_clear();
    if !a.run.quiet {
        print_report(&report);
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if !report.skipped.is_empty() {
        eprintln!(
            "warning: {} example{} skipped: {}",
            report.skipped.len(),
            if report.skipped.len() == 1 { "" } else { "s" },
            report
                .skipped
                .iter()
                .map(|s| format!("{} ({})", s.id, s.detail))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    a.output.write_json(&report)?;
    if let Some(path) = &a.output.html {
        write(path, &crate::report::compare_html::render(&report))?;
    }
    Ok(())
}

fn mean(s: &Stat, digits: usize) -> String {
    s.mean.map_or("–".into(), |x| format!("{x:.digits$}"))
}

fn median(s: &Stat) -> String {
    s.median.map_or("–".into(), |x| format!("{x:.2e}"))
}

fn diff(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:+.digits$}"))
}

fn table(g: &GroupComparison, late_from: usize) {
    let (b, t, d) = (&g.base, &g.tuned, &g.difference);
    let acc = |x: Option<f64>| x.map_or("–".into(), |v| format!("{:.1} %", 100.0 * v));
    outln!(
        "{:<34} {:>12} {:>12} {:>12}",
        format!("over {} examples", g.n),
        "base",
        "tuned",
        "tuned − base"
    );
    let rows: [(String, String, String, String); 7] = [
        (
            format!("accuracy ({} labelled)", b.labelled),
            acc(b.accuracy),
            acc(t.accuracy),
            d.accuracy
                .map_or("–".into(), |x| format!("{:+.1}", 100.0 * x)),
        ),
        (
            "peak layer (mean)".into(),
            mean(&b.peak_layer, 2),
            mean(&t.peak_layer, 2),
            diff(d.peak_layer.mean, 2),
        ),
        (
            format!("late-layer share, l ≥ {late_from} (mean)"),
            mean(&b.late_share, 3),
            mean(&t.late_share, 3),
            diff(d.late_share.mean, 3),
        ),
        (
            "entropy of |IG| (mean)".into(),
            mean(&b.entropy, 3),
            mean(&t.entropy, 3),
            diff(d.entropy.mean, 3),
        ),
        (
            "negative share (mean)".into(),
            mean(&b.negative_share, 3),
            mean(&t.negative_share, 3),
            diff(d.negative_share.mean, 3),
        ),
        (
            "IG |relative delta| (median)".into(),
            median(&b.relative_delta),
            median(&t.relative_delta),
            String::new(),
        ),
        (
            "conductance worst layer (median)".into(),
            median(&b.conductance_relative_delta),
            median(&t.conductance_relative_delta),
            String::new(),
        ),
    ];
    for (name, x, y, z) in rows {
        outln!("{name:<34} {x:>12} {y:>12} {z:>12}");
    }
}

fn print_report(r: &CompareReport) {
    let head = |m: &crate::explain::ModelInfo| match m.head_seed {
        Some(s) => format!("{} (fresh head, seed {s})", m.path),
        None => m.path.clone(),
    };
    outln!("base:  {}", head(&r.base));
    outln!("tuned: {}", head(&r.tuned));
    outln!(
        "class: {}   {}   baseline: {}   IG {} points, conductance {} steps at blocks.*.{}   token {} ({})",
        r.class
            .clone()
            .unwrap_or_else(|| "the tuned model's prediction".into()),
        r.kind,
        r.baseline,
        r.steps,
        r.conductance_steps,
        r.at,
        r.token,
        r.occurrence
    );
    table(&r.summary, r.late_from);
    let curve = |name: &str, v: &[f64]| {
        let s: Vec<String> = v.iter().map(|x| format!("{x:+.3}")).collect();
        outln!("{name:<34} {}", s.join(" "));
    };
    outln!(
        "mean normalised conductance of {} per layer (0..{}):",
        r.token,
        r.n_layers.saturating_sub(1)
    );
    curve("  base", &r.summary.base.mean_curve);
    curve("  tuned", &r.summary.tuned.mean_curve);
    if !r.by_depth.is_empty() {
        let acc = |x: Option<f64>| x.map_or("–".into(), |v| format!("{:.1} %", 100.0 * v));
        outln!(
            "{:>6} {:>9} {:>10} {:>10} {:>11} {:>11}",
            "depth",
            "examples",
            "base acc",
            "tuned acc",
            "base late",
            "tuned late"
        );
        for d in &r.by_depth {
            outln!(
                "{:>6} {:>9} {:>10} {:>10} {:>11} {:>11}",
                d.depth,
                d.group.n,
                acc(d.group.base.accuracy),
                acc(d.group.tuned.accuracy),
                mean(&d.group.base.late_share, 3),
                mean(&d.group.tuned.late_share, 3)
            );
        }
    }
}
