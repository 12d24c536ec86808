//! Option groups. Each command flattens the groups its method accepts, so a flag a method does
//! not use is rejected by the parser (`gradpath saliency --tolerance 1e-3` is a usage error):
//!
//! | group | flags | commands |
//! |---|---|---|
//! | [`ModelArgs`] | `--model` | all but `generate-attr` (own default model) and `hooks` |
//! | [`RunArgs`] | `--dtype --threads --quiet` | every method |
//! | [`TextArgs`] | `--text --truncate` | `ig`, `layer-ig`, `conductance`, `neuron`, `saliency`, `attention`, `ablate`, `sensitivity` |
//! | [`TargetArgs`] | `--similar-to --target --target-token --position --target-kind` | the same but `attention` |
//! | [`BaselineArgs`] | `--baseline` | every method |
//! | [`QuadratureArgs`] | `--steps --method` | `ig`, `layer-ig`, `conductance`, `neuron`, `generate-attr` |
//! | [`AdaptiveArgs`] | `--tolerance --adaptive --max-points` | `ig`, `generate-attr` |
//! | [`BatchArgs`] | `--batch` | every method but `attention` |
//! | [`WordsArgs`] | `--words --aggregate` | `ig`, `layer-ig`, `neuron`, `saliency`, `ablate`, `sensitivity` |
//! | [`OutputArgs`] | `--json --html` | every method |

use crate::attribution::{Baseline, TargetKind};
use crate::explain::{
    AdaptiveOptions, Input, Options, PathOptions, Quadrature, Scheme, TargetSpec,
};
use crate::integrate::Rule;
use crate::report::Aggregate;
use crate::{DType, Error, Result};
use clap::Args;
use std::path::PathBuf;

/// The model `gradpath ig` uses when `--model` is not given (fetched by scripts/fetch-models.sh).
pub const DEFAULT_MODEL: &str = "models/all-MiniLM-L6-v2";

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Hugging Face model folder (config.json, model.safetensors, tokenizer.json).
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Compute dtype.
    #[arg(long, default_value = "f32", value_parser = ["f32", "f64"])]
    pub dtype: String,
    /// CPU threads (default: all cores, or RAYON_NUM_THREADS). More than the machine's cores is
    /// cut to the core count unless --force-threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Use --threads as given even above the core count (at most 1024).
    #[arg(long)]
    pub force_threads: bool,
    /// Print only warnings and errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Memory budget for requests that grow with a count (noise samples, draws, attention maps):
    /// e.g. 4G, 512M. Default: half the physical memory, or GRADPATH_MEMORY.
    #[arg(long)]
    pub memory: Option<String>,
}

/// The most threads --force-threads allows.
pub const MAX_THREADS: usize = 1024;

/// The thread count to use for `--threads n`: at least 1, at most the machine's cores (or
/// [`MAX_THREADS`] when forced). Returns the count and whether it was cut.
pub fn thread_count(n: usize, force: bool, cores: usize) -> Result<(usize, bool)> {
    if n == 0 {
        return Err(Error::BadValue {
            name: "--threads",
            detail: "must be at least 1".into(),
        });
    }
    if force {
        if n > MAX_THREADS {
            return Err(Error::BadValue {
                name: "--threads",
                detail: format!("{n} is more than {MAX_THREADS}, even with --force-threads"),
            });
        }
        return Ok((n, false));
    }
    Ok((n.min(cores.max(1)), n > cores.max(1)))
}

impl RunArgs {
    /// Sets the thread pool and returns the library options.
    pub fn options(&self, batch: Option<usize>) -> Result<Options> {
        if let Some(m) = &self.memory {
            crate::memory::set_budget(crate::memory::parse_size(m)?);
        }
        if let Some(n) = self.threads {
            let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
            let (n, cut) = thread_count(n, self.force_threads, cores)?;
            if cut {
                eprintln!("warning: --threads {} is more than this machine's {cores} cores; using {cores} (--force-threads to insist)", self.threads.unwrap_or(n));
            }
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build_global()
                .map_err(|e| Error::BadValue {
                    name: "--threads",
                    detail: e.to_string(),
                })?;
        }
        Ok(Options {
            dtype: DType::parse(&self.dtype)?,
            batch,
            ..Options::default()
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct TextArgs {
    /// The text to explain.
    #[arg(long)]
    pub text: String,
    /// Cut texts longer than the model's positions instead of failing.
    #[arg(long)]
    pub truncate: bool,
    /// Render TEXT as the user's message with the model's chat template (generation prompt
    /// appended), as the model sees it in a conversation.
    #[arg(long)]
    pub chat: bool,
    /// A system message before TEXT (implies --chat).
    #[arg(long)]
    pub system: Option<String>,
}

impl TextArgs {
    /// The chat turn of --chat / --system.
    pub fn chat(&self) -> Option<crate::explain::Chat> {
        (self.chat || self.system.is_some()).then(|| crate::explain::Chat {
            system: self.system.clone(),
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
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
    /// Explain the class (or next-token) logit, probability or log-probability (default: logit;
    /// `attattr`: prob, as the paper).
    #[arg(long, value_parser = ["logit", "prob", "log-prob"])]
    pub target_kind: Option<String>,
    /// Causal language models: explain the log-probability of this whole answer after TEXT
    /// (sum over its tokens, teacher-forced; the path moves the prompt's embeddings only).
    #[arg(long, conflicts_with_all = ["target_token", "position"])]
    pub answer: Option<String>,
    /// With --answer: explain log p(answer) − log p(contrast) (for two single tokens, their
    /// logit difference). Any two continuations: where they differ before their last tokens,
    /// they run as two branches after the prompt that do not see each other (one forward).
    #[arg(long, requires = "answer")]
    pub contrast: Option<String>,
}

impl TargetArgs {
    /// The library's input: `text` with this target (kind `logit` unless --target-kind).
    pub fn input(&self, text: &TextArgs) -> Result<Input> {
        self.input_kind(text, TargetKind::Logit)
    }

    /// The library's input, the target kind `default` unless --target-kind.
    pub fn input_kind(&self, text: &TextArgs, default: TargetKind) -> Result<Input> {
        let kind = match &self.target_kind {
            Some(k) => TargetKind::parse(k)?,
            None => default,
        };
        Ok(Input {
            text: text.text.clone(),
            target: TargetSpec {
                class: self.target.clone(),
                similar_to: self.similar_to.clone(),
                token: self.target_token.clone(),
                position: self.position,
                kind,
                answer: self.answer.clone(),
                contrast: self.contrast.clone(),
            },
            truncate: text.truncate,
            pair: None,
            chat: text.chat(),
        })
    }

    /// A target that does not fit the model, said in flags.
    pub fn explain(&self, e: Error, is_decoder: bool) -> Error {
        let Error::TargetMismatch(_) = e else {
            return e;
        };
        Error::TargetMismatch(if !is_decoder && self.answer.is_some() {
            "--answer (and --contrast) explain a continuation of a causal language model; for this model use --target (classifiers) or --similar-to (sentence embeddings)".into()
        } else if is_decoder {
            "this is a causal language model: choose the explained token with --target-token (and --position), not --target / --similar-to".into()
        } else if self.target_token.is_some() || self.position.is_some() {
            "--target-token and --position are for causal language models; for this model use --target (classifiers) or --similar-to (sentence embeddings)".into()
        } else if self.similar_to.is_some() {
            "--similar-to needs a sentence-embedding model, but this one is a classifier".into()
        } else {
            "this is a sentence-embedding model: give --similar-to TEXT to explain the similarity to a second text".into()
        })
    }
}

/// A text input without a target (`gradpath attention`).
pub fn plain_input(text: &TextArgs) -> Input {
    let mut i = Input::text(text.text.clone()).truncate(text.truncate);
    i.chat = text.chat();
    i
}

#[derive(Args, Debug, Clone)]
pub struct BaselineArgs {
    // The help is an attribute, not a doc comment: rustdoc would read [PAD] as a link.
    #[arg(
        long,
        default_value = "pad",
        help = "Path start: [PAD] / [MASK] / [UNK] / EOS for every non-special token (BOS/[CLS]/[SEP] kept), the zero embedding, or id:N. Values: pad, eos, mask, unk, zero, id:N"
    )]
    pub baseline: String,
}

impl BaselineArgs {
    pub fn parse(&self) -> Result<Baseline> {
        Baseline::parse(&self.baseline)
    }
}

#[derive(Args, Debug, Clone)]
pub struct QuadratureArgs {
    /// Quadrature points along the path.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Quadrature rule: gauss-legendre, riemann-left, riemann-right, riemann-middle,
    /// riemann-trapezoid (textbook), captum-trapezoid (Captum's weights, for parity),
    /// clenshaw-curtis, tanh-sinh (nodes crowd at the path ends: zero baselines), gauss-kronrod
    /// (15 points per panel; `gradpath converge` compares them all).
    #[arg(long, default_value = "gauss-legendre")]
    pub method: String,
}

impl QuadratureArgs {
    pub fn parse(&self) -> Result<Quadrature> {
        let rule = Rule::parse(&self.method).map_err(|_| Error::Unknown {
            what: "quadrature rule",
            value: self.method.clone(),
            valid: Rule::ALL.map(|r| r.name().to_string()).to_vec(),
        })?;
        let q = Quadrature {
            rule,
            steps: self.steps,
        };
        q.check()?;
        Ok(q)
    }
}

/// Baseline and quadrature: the path of a path method.
pub fn path_options(b: &BaselineArgs, q: &QuadratureArgs) -> Result<PathOptions> {
    Ok(PathOptions {
        quadrature: q.parse()?,
        baseline: b.parse()?,
    })
}

#[derive(Args, Debug, Clone)]
pub struct AdaptiveArgs {
    /// Refine the quadrature adaptively until the relative completeness delta is ≤ T.
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// How --tolerance refines gauss-legendre: `doubling` (n, 2n, 4n, ... points; fewest model
    /// passes for smooth paths) or `panels` (Gauss–Kronrod panels refined where F bends along the
    /// path: a panel is first extended from 15 to Patterson's 31 points, keeping its 15, then
    /// bisected; fewest passes on MiniLM, see docs/BENCHMARKS.md). Other rules refine by nesting
    /// (old points reused).
    #[arg(long, default_value = "doubling", value_parser = ["panels", "doubling"])]
    pub adaptive: String,
    /// Point budget for --tolerance.
    #[arg(long, default_value_t = 1024)]
    pub max_points: usize,
}

impl AdaptiveArgs {
    /// The adaptive options (checked against `q`), or `None` without --tolerance.
    pub fn parse(&self, q: &Quadrature) -> Result<Option<AdaptiveOptions>> {
        let Some(tolerance) = self.tolerance else {
            return Ok(None);
        };
        let a = AdaptiveOptions {
            tolerance,
            scheme: if self.adaptive == "panels" {
                Scheme::Panels
            } else {
                Scheme::Doubling
            },
            max_points: self.max_points,
        };
        a.scheme_for(q)?;
        Ok(Some(a))
    }
}

#[derive(Args, Debug, Clone)]
pub struct BatchArgs {
    /// Path points per forward/backward batch (default: chosen to keep activations near 512 MB).
    #[arg(long)]
    pub batch: Option<usize>,
}

#[derive(Args, Debug, Clone)]
pub struct WordsArgs {
    /// Aggregate sub-word tokens to words in the table and HTML (JSON gains `words`).
    #[arg(long)]
    pub words: bool,
    /// How --words combines sub-words: sum, mean, max, absmax.
    #[arg(long, default_value = "sum")]
    pub aggregate: String,
}

impl WordsArgs {
    /// The aggregation with --words, else `None` (the value is checked either way).
    pub fn parse(&self) -> Result<Option<Aggregate>> {
        let how = Aggregate::parse(&self.aggregate)?;
        Ok(self.words.then_some(how))
    }
}

#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Write the result as JSON (schema in docs/JSON.md). Files are written only when the run
    /// succeeds, each atomically (a temporary file renamed into place).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML page.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Write results that contain NaN or infinite numbers (by default such a result is an error
    /// naming where the first one sits, and nothing is written).
    #[arg(long)]
    pub allow_nan: bool,
    /// Exit non-zero (after writing the files) when --tolerance was not reached within
    /// --max-points; without it, that is a warning.
    #[arg(long)]
    pub strict: bool,
}

impl OutputArgs {
    /// Checks `report` ([`super::output::check_report`]: NaN/inf, unmet tolerance), then stages it
    /// as pretty JSON (keys sorted) with --json.
    pub fn write_json<T: serde::Serialize>(&self, report: &T) -> Result<()> {
        super::output::check_report(report, self.allow_nan, self.strict)?;
        if let Some(path) = &self.json {
            let v = serde_json::to_value(report).map_err(|e| Error::Internal(e.to_string()))?;
            let s = serde_json::to_string_pretty(&v).map_err(|e| Error::Internal(e.to_string()))?;
            write(path, &s)?;
        }
        Ok(())
    }
}

/// Stages `s` for `path`: written (atomically, with the run's other outputs) when the command
/// succeeds; see [`super::output`].
pub(crate) fn write(path: &std::path::Path, s: &str) -> Result<()> {
    super::output::stage(path, s.as_bytes().to_vec())
}

/// A progress bar for path points (hidden with --quiet).
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

/// Loads the model and wires a progress bar to it.
pub(crate) fn load(
    model: &std::path::Path,
    options: Options,
    quiet: bool,
) -> Result<(crate::explain::Explainer, indicatif::ProgressBar)> {
    super::output::protect(model);
    let mut ex = crate::explain::Explainer::load(model, options)?;
    let unused = ex.model().unused_tensors();
    if !unused.is_empty() && !quiet {
        let shown: Vec<&str> = unused.iter().take(4).map(String::as_str).collect();
        eprintln!(
            "note: {} checkpoint tensor{} not used by this model: {}{}",
            unused.len(),
            if unused.len() == 1 { " is" } else { "s are" },
            shown.join(", "),
            if unused.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        );
    }
    let bar = progress_bar(quiet);
    let b = bar.clone();
    ex.on_progress(move |d, t| {
        b.set_length(t as u64);
        b.set_position(d as u64);
    });
    Ok((ex, bar))
}
