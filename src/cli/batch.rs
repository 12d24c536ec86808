//! `gradpath batch`, `gradpath merge`, `gradpath report`: a method over a JSONL data set
//! (sharded, resumable), shard outputs merged, and the data-set HTML report. Parsing and
//! printing only; the work is [`crate::batch`].

use super::args::*;
use super::lig::{parse_layers, LigMapArgs};
use super::methods::{MaskHeadArgs, NeuronIndexArgs};
use crate::attribution::{NoiseKind, TargetKind};
use crate::batch::summary::{read_lines, summarise, SummaryOptions};
use crate::batch::{self, BatchOptions, ExampleDefaults, Method, Shard};
use crate::explain::{
    AblateOptions, AttAttrOptions, AttentionOptions, ConductanceOptions, IgOptions, LayerIgOptions,
    NeuronOptions, PathOptions, Quadrature, SaliencyOptions, SensitivityOptions, Smoothing,
};
use crate::integrate::Rule;
use crate::{Error, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct BatchArgs {
    /// The method: ig, layer-ig, conductance, attattr, lig, saliency, ablate, sensitivity,
    /// neuron, attention (each line: the fields of `gradpath <method> --json`; docs/SCALE.md).
    #[arg(long, value_parser = Method::NAMES)]
    pub method: String,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Examples: JSON Lines {"id", "text"} plus optional "text_pair", "target", "label",
    /// "similar_to", "target_token", "position" (docs/JSON.md).
    #[arg(long)]
    pub input: PathBuf,
    /// Output JSON Lines, one line per example, appended as each finishes. `{shard}` in the path
    /// is replaced by the shard index (e.g. out/part-{shard}.jsonl).
    #[arg(long)]
    pub output: PathBuf,
    /// Run only shard I of N (0-based): the examples whose id hashes (FNV-1a 64) to I modulo N.
    /// Default: SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX with
    /// --num-shards (or GRADPATH_NUM_SHARDS), or the whole input.
    #[arg(long)]
    pub shard: Option<String>,
    /// The number of shards for a Kubernetes Indexed Job (its `completions`).
    #[arg(long)]
    pub num_shards: Option<usize>,
    /// Continue an existing output: examples already in it are not run again; a torn last line
    /// (a killed write) is cut off and its example run again.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Replace an existing output.
    #[arg(long)]
    pub overwrite: bool,
    /// Skip bad lines and examples the method refuses (listed at the end) instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// Do not fdatasync after each line (a kill -9 still loses nothing; a power cut may).
    #[arg(long)]
    pub no_fsync: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Cut texts longer than the model's positions instead of failing.
    #[arg(long)]
    pub truncate: bool,
    /// Explain the class in each line's "label" when it has no "target" (e.g. the gold label).
    #[arg(long)]
    pub target_from_label: bool,
    #[command(flatten)]
    pub baseline: BaselineArgs,
    /// Quadrature points (default: the method's: 50; attattr 20; lig 32, per map).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Quadrature rule (`--method` of the one-text commands; default: the method's:
    /// gauss-legendre; attattr riemann-left):
    /// gauss-legendre, riemann-left, riemann-right, riemann-middle, riemann-trapezoid,
    /// captum-trapezoid, clenshaw-curtis, tanh-sinh, gauss-kronrod.
    #[arg(long)]
    pub rule: Option<String>,
    #[command(flatten)]
    pub adaptive: AdaptiveArgs,
    #[command(flatten)]
    pub batch: BatchArgs2,
    #[command(flatten)]
    pub words: WordsArgs,
    /// layer-ig: the boundary interpolated (default embed.hook_out); neuron: the boundary
    /// holding the neuron (required), e.g. blocks.1.hook_resid_post.
    #[arg(long)]
    pub boundary: Option<String>,
    /// conductance, attattr, lig: layers, e.g. 0,3, or all (default: all).
    #[arg(long)]
    pub layers: Option<String>,
    /// conductance: the boundary of each layer, `blocks.{l}.<AT>`.
    #[arg(long)]
    pub at: Option<String>,
    /// conductance, neuron: where the path runs (default hook_embed).
    #[arg(long)]
    pub path_boundary: Option<String>,
    /// conductance: internal influence instead.
    #[arg(long)]
    pub influence: bool,
    /// attattr: keep the per-layer attention and attribution matrices in each line (large).
    #[arg(long)]
    pub keep_maps: bool,
    /// saliency: input × gradient.
    #[arg(long)]
    pub times_input: bool,
    /// saliency: noise tunnel (smoothgrad, smoothgrad-sq, vargrad).
    #[arg(long)]
    pub smooth: Option<String>,
    /// saliency --smooth: samples.
    #[arg(long, default_value_t = 5)]
    pub samples: usize,
    /// saliency --smooth: noise standard deviation.
    #[arg(long, default_value_t = 1.0)]
    pub stdev: f64,
    /// saliency --smooth, sensitivity: seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// ablate: replace by zero instead of the baseline token.
    #[arg(long)]
    pub zero: bool,
    /// sensitivity: noise σ.
    #[arg(long, default_value_t = 0.1)]
    pub sigma: f64,
    /// sensitivity: draws per token.
    #[arg(long, default_value_t = 20)]
    pub draws: usize,
    /// neuron: the neuron (the flag of `gradpath neuron`).
    #[command(flatten, next_help_heading = "--method neuron")]
    pub neuron: NeuronIndexArgs,
    /// attention: masked heads (the flag of `gradpath attention`).
    #[command(flatten, next_help_heading = "--method attention")]
    pub mask: MaskHeadArgs,
    /// lig: the maps and their baselines (the flags of `gradpath lig`; its --method is --rule
    /// here, its --layers, --steps, --tolerance, --max-points, --words and --batch the flags
    /// above).
    #[command(flatten, next_help_heading = "--method lig")]
    pub lig: LigMapArgs,
    #[command(flatten, next_help_heading = "Options")]
    pub run: RunArgs,
}

/// `--batch` (path points per forward), under another name than the command's.
#[derive(Args, Debug, Clone)]
pub struct BatchArgs2 {
    /// Path points per forward/backward batch (default: chosen to keep activations near 512 MB).
    #[arg(long = "batch")]
    pub batch: Option<usize>,
}

fn not_for(flag: &'static str, method: &str) -> Error {
    Error::BadValue {
        name: flag,
        detail: format!("does not apply to --method {method}"),
    }
}

/// The method's options from the flags (a flag of another method is an error).
fn method(a: &BatchArgs) -> Result<Method> {
    let m = a.method.as_str();
    let only = |set: bool, flag: &'static str, methods: &[&str]| -> Result<()> {
        if set && !methods.contains(&m) {
            return Err(not_for(flag, m));
        }
        Ok(())
    };
    let path_methods = ["ig", "layer-ig", "conductance", "attattr", "lig", "neuron"];
    only(a.steps.is_some(), "--steps", &path_methods)?;
    only(a.rule.is_some(), "--rule", &path_methods)?;
    only(
        a.adaptive.tolerance.is_some(),
        "--tolerance",
        &["ig", "attattr", "lig"],
    )?;
    only(a.boundary.is_some(), "--boundary", &["layer-ig", "neuron"])?;
    only(
        a.layers.is_some(),
        "--layers",
        &["conductance", "attattr", "lig"],
    )?;
    only(a.at.is_some(), "--at", &["conductance"])?;
    only(
        a.path_boundary.is_some(),
        "--path-boundary",
        &["conductance", "neuron"],
    )?;
    only(a.influence, "--influence", &["conductance"])?;
    only(a.keep_maps, "--keep-maps", &["attattr"])?;
    only(a.times_input, "--times-input", &["saliency"])?;
    only(a.smooth.is_some(), "--smooth", &["saliency"])?;
    only(a.zero, "--zero", &["ablate"])?;
    only(a.neuron.neuron.is_some(), "--neuron", &["neuron"])?;
    only(!a.mask.mask_head.is_empty(), "--mask-head", &["attention"])?;
    only(
        a.lig.any(),
        "--granularity, --target-tokens, --baseline-att, --baseline-mlp, --baseline-layer",
        &["lig"],
    )?;
    if m == "lig" {
        // LIG has its own baselines and refines by doubling only.
        if a.baseline.baseline != "pad" {
            return Err(Error::BadValue {
                name: "--baseline",
                detail: "does not apply to --method lig (use --baseline-att, --baseline-mlp, --baseline-layer)".into(),
            });
        }
        if a.adaptive.adaptive != "doubling" {
            return Err(not_for("--adaptive", m));
        }
    }
    if m == "lig" || m == "attention" {
        // Neither explains a prediction: a target would be ignored.
        let t = &a.target;
        let set = t.similar_to.is_some()
            || t.target.is_some()
            || t.target_token.is_some()
            || t.position.is_some()
            || t.target_kind.is_some()
            || t.answer.is_some()
            || t.contrast.is_some()
            || a.target_from_label;
        if set {
            return Err(Error::BadValue {
                name: "--target",
                detail: format!(
                    "--method {m} explains no target: --target, --similar-to, --target-token, --position, --target-kind, --answer, --contrast and --target-from-label do not apply (a line's own target is ignored)"
                ),
            });
        }
    }
    let layers = match &a.layers {
        Some(l) => parse_layers(l)?,
        None => None,
    };
    let quadrature = |default: Quadrature| -> Result<Quadrature> {
        let rule = match &a.rule {
            Some(r) => Rule::parse(r).map_err(|_| Error::Unknown {
                what: "quadrature rule",
                value: r.clone(),
                valid: Rule::ALL.map(|r| r.name().to_string()).to_vec(),
            })?,
            None => default.rule,
        };
        let q = Quadrature {
            rule,
            steps: a.steps.unwrap_or(default.steps),
        };
        q.check()?;
        Ok(q)
    };
    let baseline = a.baseline.parse()?;
    let path = || -> Result<PathOptions> {
        Ok(PathOptions {
            baseline: baseline.clone(),
            quadrature: quadrature(Quadrature::default())?,
        })
    };
    Ok(match m {
        "ig" => {
            let path = path()?;
            let adaptive = a.adaptive.parse(&path.quadrature)?;
            Method::Ig(IgOptions { path, adaptive })
        }
        "layer-ig" => {
            let mut o = LayerIgOptions {
                path: path()?,
                ..LayerIgOptions::default()
            };
            if let Some(b) = &a.boundary {
                o.boundary = b.clone();
            }
            Method::LayerIg(o)
        }
        "conductance" => {
            let mut o = ConductanceOptions {
                path: path()?,
                layers: layers.clone(),
                influence: a.influence,
                ..ConductanceOptions::default()
            };
            if let Some(x) = &a.at {
                o.at = x.clone();
            }
            if let Some(x) = &a.path_boundary {
                o.path_boundary = x.clone();
            }
            Method::Conductance(o)
        }
        "attattr" => {
            let d = AttAttrOptions::default();
            let q = quadrature(d.quadrature)?;
            let adaptive = a.adaptive.parse(&q)?;
            Method::AttAttr(AttAttrOptions {
                layers: layers.clone(),
                quadrature: q,
                adaptive,
                tree: None,
            })
        }
        "lig" => {
            let q = quadrature(Quadrature {
                rule: Rule::GaussLegendre,
                steps: 32,
            })?;
            Method::Lig(super::lig::options(
                q.rule,
                q.steps,
                &a.lig,
                a.layers.as_deref().unwrap_or("all"),
                a.adaptive.tolerance,
                a.adaptive.max_points,
                a.batch.batch,
            )?)
        }
        "neuron" => Method::Neuron(NeuronOptions {
            path: path()?,
            boundary: a.boundary.clone().ok_or_else(|| Error::BadValue {
                name: "--boundary",
                detail: "is required with --method neuron: the boundary holding the neuron, e.g. blocks.1.hook_resid_post".into(),
            })?,
            neuron: a.neuron.parse()?,
            path_boundary: a
                .path_boundary
                .clone()
                .unwrap_or_else(|| "hook_embed".into()),
        }),
        "attention" => Method::Attention(AttentionOptions {
            baseline,
            mask_heads: a.mask.parse()?,
        }),
        "saliency" => Method::Saliency(SaliencyOptions {
            baseline,
            times_input: a.times_input,
            smooth: a
                .smooth
                .as_deref()
                .map(|k| {
                    Ok::<_, Error>(Smoothing {
                        kind: NoiseKind::parse(k)?,
                        samples: a.samples,
                        stdev: a.stdev,
                        seed: a.seed,
                    })
                })
                .transpose()?,
        }),
        "ablate" => Method::Ablate(AblateOptions {
            baseline,
            zero: a.zero,
        }),
        "sensitivity" => Method::Sensitivity(SensitivityOptions {
            baseline,
            sigma: a.sigma,
            draws: a.draws,
            seed: a.seed,
        }),
        other => {
            return Err(Error::Unknown {
                what: "method",
                value: other.into(),
                valid: Method::NAMES.map(String::from).to_vec(),
            })
        }
    })
}

/// `gradpath batch`.
pub fn run(a: &BatchArgs) -> Result<()> {
    let method = method(a)?;
    let given = a.shard.as_deref().map(Shard::parse).transpose()?;
    let (shard, source) = Shard::from_env(given, a.num_shards)?;
    let output = shard.path(&a.output);
    // attattr explains the class probability by default, as the paper.
    let kind = if a.method == "attattr" {
        TargetKind::Prob
    } else {
        TargetKind::Logit
    };
    let text = TextArgs {
        text: String::new(),
        truncate: a.truncate,
        chat: false,
        system: None,
    };
    let target = a.target.input_kind(&text, kind)?.target;
    let o = BatchOptions {
        method,
        defaults: ExampleDefaults {
            target,
            truncate: a.truncate,
            label_as_target: a.target_from_label,
        },
        words: a.words.parse()?,
        keep_maps: a.keep_maps,
        shard,
        resume: a.resume,
        overwrite: a.overwrite,
        skip_bad: a.skip_bad,
        sync: !a.no_fsync,
    };
    // lig: --batch is model rows per forward, in its options (as `gradpath lig`).
    let options = a.run.options(if a.method == "lig" {
        None
    } else {
        a.batch.batch
    })?;
    super::output::protect(&a.model.model);
    super::output::protect(&a.input);
    super::output::ensure_not_input(&a.output)?;
    let ex = crate::explain::Explainer::load(&a.model.model, options)?;
    let quiet = a.run.quiet;
    if !quiet {
        eprintln!(
            "{} · {} over {} · shard {shard} ({}) → {}",
            ex.model().describe(),
            a.method,
            a.input.display(),
            source.name(),
            output.display()
        );
    }
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} examples {pos}/{len} [{elapsed_precise}, {per_sec}, ETA {eta}] {wide_bar}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    };
    let b = bar.clone();
    let r = batch::run(&ex, &a.input, &output, &o, &mut |p| {
        b.set_length(p.total as u64);
        b.set_position(p.done as u64);
    });
    bar.finish_and_clear();
    let s = r.map_err(|e| a.target.explain(e, ex.model().is_decoder()))?;
    if !quiet {
        let rate = if s.seconds > 0.0 {
            s.written as f64 / s.seconds
        } else {
            0.0
        };
        eprintln!(
            "shard {}: {} examples of {} lines; {} already done{}; {} written in {:.1} s ({:.2} examples/s); {} skipped",
            s.shard,
            s.in_shard,
            s.input_lines,
            s.already_done,
            if s.torn_bytes > 0 {
                format!(" (a torn last line of {} bytes cut and redone)", s.torn_bytes)
            } else {
                String::new()
            },
            s.written,
            s.seconds,
            rate,
            s.skipped.len()
        );
    }
    if !s.skipped.is_empty() {
        eprintln!("skipped {} examples:", s.skipped.len());
        for k in &s.skipped {
            eprintln!("  line {} id {:?}: {}", k.line, k.id, k.reason);
        }
    }
    Ok(())
}

#[derive(Args, Debug, Clone)]
pub struct MergeArgs {
    /// Shard outputs of `gradpath batch`.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// The merged output (written only when every id is there exactly once, or with --partial).
    #[arg(long)]
    pub output: PathBuf,
    /// The batch input: every one of its ids must be in the shards exactly once; the output
    /// follows its order.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Write what is there even when ids are missing or repeated (still reported; exit 0).
    #[arg(long)]
    pub partial: bool,
    /// Print only warnings and errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `gradpath merge`.
pub fn run_merge(a: &MergeArgs) -> Result<()> {
    for p in a.shards.iter().chain(&a.input) {
        super::output::protect(p);
    }
    let m = batch::merge(&a.shards, a.input.as_deref())?;
    for (p, n) in &m.torn {
        eprintln!(
            "warning: {} ends in a torn line ({n} bytes, a killed shard not resumed): ignored",
            p.display()
        );
    }
    if !a.quiet {
        for (p, n) in &m.per_file {
            eprintln!("{}: {n} lines", p.display());
        }
    }
    if let Err(e) = m.check() {
        if !a.partial {
            return Err(e);
        }
        eprintln!("warning: {e}");
    }
    write(&a.output, &m.text())?;
    if !a.quiet {
        eprintln!("{} lines → {}", m.lines.len(), a.output.display());
    }
    Ok(())
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// A batch output (or merged output).
    #[arg(long)]
    pub input: PathBuf,
    /// The HTML page to write.
    #[arg(long)]
    pub html: PathBuf,
    /// Write the summary as JSON too.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Tokens (words) listed on each side.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Occurrences a token needs to be listed.
    #[arg(long, default_value_t = 2)]
    pub min_count: usize,
    /// Relative completeness delta above which an example is flagged.
    #[arg(long, default_value_t = 1e-2)]
    pub rough: f64,
    /// Examples shown in full on the page.
    #[arg(long, default_value_t = 2000)]
    pub max_examples: usize,
    /// Print only warnings and errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `gradpath report`.
pub fn run_report(a: &ReportArgs) -> Result<()> {
    if !(a.rough.is_finite() && a.rough > 0.0) {
        return Err(Error::BadValue {
            name: "--rough",
            detail: format!("must be a finite number > 0, got {}", a.rough),
        });
    }
    super::output::protect(&a.input);
    let lines = read_lines(&a.input)?;
    let o = SummaryOptions {
        top: a.top,
        min_count: a.min_count,
        rough: a.rough,
        max_examples: a.max_examples,
    };
    let s = summarise(&lines, &o);
    let html = crate::report::dataset_html::render(&s, &a.input.display().to_string(), a.rough);
    write(&a.html, &html)?;
    if let Some(j) = &a.json {
        let t = serde_json::to_string_pretty(&s).map_err(|e| Error::Internal(e.to_string()))?;
        write(j, &t)?;
    }
    if !a.quiet {
        eprintln!(
            "{} examples of {} → {}",
            s.examples_total,
            s.method,
            a.html.display()
        );
        if let Some(d) = &s.deltas {
            eprintln!(
                "relative completeness delta: median {:.2e}, max {:.2e}; {} flagged",
                d.median,
                d.max,
                d.flagged.len()
            );
        }
        for n in &s.notes {
            eprintln!("note: {n}");
        }
    }
    Ok(())
}
