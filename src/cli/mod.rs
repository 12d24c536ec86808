//! Command-line interface: argument parsing and printing only. Every command parses its flags
//! (the option groups of [`args`]), calls [`crate::explain`] and prints the report (table, JSON,
//! HTML). Errors are printed by `main` as one line of cause ([`errors::message`]) and one line of
//! hint.

/// `outln!` for the command line: a closed or full stdout never panics (see [`output`]).
macro_rules! outln {
    () => {
        $crate::cli::output::print(format_args!("\n"))
    };
    ($($t:tt)*) => {
        $crate::cli::output::print(format_args!("{}\n", format_args!($($t)*)))
    };
}

/// `print!` for the command line (see [`outln!`]).
macro_rules! out {
    ($($t:tt)*) => {
        $crate::cli::output::print(format_args!($($t)*))
    };
}

pub mod args;
pub mod attattr;
pub mod batch;
pub mod compare;
pub mod converge;
pub mod errors;
pub mod generate;
pub mod heads;
pub mod hooks;
pub mod ig;
pub mod lig;
pub mod methods;
pub mod output;
pub mod train;

pub use errors::message;

use crate::autodiff::OpKind;
use crate::{Error, Result};
use clap::{Parser, Subcommand};

/// gradpath: explain transformer predictions with gradients computed on its own tape.
#[derive(Parser, Debug)]
#[command(name = "gradpath", version, about, long_about = None, after_help = "Examples:
  gradpath ig --model models/all-MiniLM-L6-v2 --text \"A man plays guitar.\" --similar-to \"Someone makes music.\" --json ig.json --html ig.html
  gradpath ig --model DIR --text TEXT --target 1 --baseline pad --steps 50 --method gauss-legendre
  gradpath ig --model DIR --text TEXT --tolerance 1e-4      (adaptive steps until the relative completeness delta is below 1e-4)
  gradpath ig --model models/SmolLM2-135M-Instruct --text \"The capital of France is\"   (next-token IG on a decoder)
  gradpath generate-attr --model models/SmolLM2-135M-Instruct --text \"The capital of France is\" --max-new-tokens 3 --html gen.html
  gradpath hooks --model DIR                               (every boundary name with its shape)

Run `gradpath <command> --help` for all options (--baseline, --tolerance, --dtype, --words, ...).")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Integrated Gradients on the tokens of a text (which tokens drive the prediction).
    Ig(ig::IgArgs),
    /// Layer Integrated Gradients at any boundary (Captum LayerIntegratedGradients).
    LayerIg(methods::LayerIgArgs),
    /// Layer conductance of every layer in one sweep of path points (or --influence).
    Conductance(methods::ConductanceArgs),
    /// Neuron conductance of one neuron of a boundary, attributed to the input tokens.
    Neuron(methods::NeuronArgs),
    /// Saliency |∂F/∂x| or input × gradient, optionally SmoothGrad / SmoothGrad² / VarGrad.
    Saliency(methods::SaliencyArgs),
    /// Attention maps of every layer and head (JSON, HTML grid and heatmap).
    Attention(methods::AttentionArgs),
    /// Embedding ablation: F(input) − F(token's embedding replaced), per token.
    Ablate(methods::AblateArgs),
    /// Self-attention attribution (ATTATTR): IG over each layer's attention probabilities, all
    /// layers in one sweep; head importance, strongest connections, the attribution tree.
    Attattr(attattr::AttAttrArgs),
    /// One method over a JSONL data set: one JSON line per example, resumable after kill -9,
    /// sharded for job arrays (--shard I/N, Slurm, Kubernetes Indexed Jobs).
    Batch(batch::BatchArgs),
    /// Merge shard outputs of `gradpath batch`: every id exactly once (checked against --input).
    Merge(batch::MergeArgs),
    /// The data-set report of a batch output: top tokens, completeness deltas, conductance per
    /// layer, head importance, LIG completeness per layer, neuron conductance, attention entropy
    /// per head, every example (self-contained HTML).
    Report(batch::ReportArgs),
    /// Head importance over a data set (ATTATTR, attention, Taylor, random) and pruning curves.
    Heads(heads::HeadsArgs),
    /// Noise sensitivity: standard deviation of F under Gaussian noise on one token at a time.
    Sensitivity(methods::SensitivityArgs),
    /// Causal language models: generate greedily and explain every generated token by IG over
    /// the prompt and the tokens before it (a generated × input matrix, JSON, HTML heatmap).
    GenerateAttr(generate::GenerateArgs),
    /// Layer-wise Integrated Gradients (LIG): token-to-token flow inside every layer (z → z,
    /// attention z → u per head, MLP u → z), as set-to-set IG with completeness per column.
    Lig(lig::LigArgs),
    /// Quadrature lab: every rule at every point count on a text's IG path, against a
    /// converged reference (error vs passes, fitted order; JSON and an HTML log–log plot).
    Converge(converge::ConvergeArgs),
    /// A fine-tuned classifier against its base model (fresh, seeded head): IG and the
    /// all-layer conductance sweep of the same class on both, per example and averaged (a token's
    /// conductance curve across layers, peak layer, late-layer share, entropy and negative share
    /// of the token attributions, completeness deltas, accuracy per depth); JSON and HTML.
    Compare(compare::CompareArgs),
    /// List every boundary (hook point) of a model with its shape for an input.
    Hooks(hooks::HooksArgs),
    /// List the differentiable op catalogue (every op has a forward, a backward and an f64
    /// finite-difference check).
    Ops,
    /// Print build facts: version, enabled features, CPU threads, GEMM backend.
    Info,
    /// Fine-tune an encoder classifier (AdamW, linear warm-up/decay, dropout, checkpoints per
    /// epoch, --resume); the output is a Hugging Face folder.
    Train(train::TrainArgs),
    /// Evaluate a classifier on labelled JSONL: accuracy, per-class P/R/F1, confusion matrix.
    Eval(train::EvalArgs),
    /// Generate data sets (`gradpath data rules`).
    Data(train::DataArgs),
}

/// Runs a parsed command; its output files are written only if it succeeds (all of them, each
/// atomically: see [`output`]).
pub fn run(cli: Cli) -> Result<()> {
    match dispatch(cli) {
        Ok(()) => {
            output::commit()?;
            output::finish()
        }
        Err(e) => {
            output::discard();
            let _ = output::finish();
            Err(e)
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Ig(a) => ig::run(&a),
        Command::LayerIg(a) => methods::run_layer_ig(&a),
        Command::Conductance(a) => methods::run_conductance(&a),
        Command::Neuron(a) => methods::run_neuron(&a),
        Command::Saliency(a) => methods::run_saliency(&a),
        Command::Attention(a) => methods::run_attention(&a),
        Command::Attattr(a) => attattr::run(&a),
        Command::Heads(a) => heads::run(&a),
        Command::Batch(a) => batch::run(&a),
        Command::Merge(a) => batch::run_merge(&a),
        Command::Report(a) => batch::run_report(&a),
        Command::Ablate(a) => methods::run_ablate(&a),
        Command::Sensitivity(a) => methods::run_sensitivity(&a),
        Command::GenerateAttr(a) => generate::run(&a),
        Command::Lig(a) => lig::run(&a),
        Command::Converge(a) => converge::run(&a),
        Command::Compare(a) => compare::run(&a),
        Command::Hooks(a) => hooks::run(&a),
        Command::Train(a) => train::run_train(&a),
        Command::Eval(a) => train::run_eval(&a),
        Command::Data(a) => train::run_data(&a),
        Command::Ops => {
            outln!("{} differentiable ops:", OpKind::ALL.len());
            for k in OpKind::ALL {
                outln!("  {}", k.name());
            }
            Ok(())
        }
        Command::Info => {
            outln!("gradpath {}", env!("CARGO_PKG_VERSION"));
            outln!(
                "cuda feature: {}",
                if cfg!(feature = "cuda") {
                    "on"
                } else {
                    "off (Device::Cuda returns a clear error)"
                }
            );
            outln!("cpu threads (rayon): {}", rayon::current_num_threads());
            use crate::ops::simd;
            outln!(
                "cpu: {} (features: {})",
                simd::cpu_model().unwrap_or_else(|| "unknown model".into()),
                simd::cpu_features().join(" ")
            );
            let lvl = simd::level();
            let why = match simd::requested() {
                Some(Ok(want)) if want > simd::supported() => format!(
                    "; GRADPATH_SIMD={} asked for more than the CPU has",
                    want.name()
                ),
                Some(Ok(_)) => "; capped by GRADPATH_SIMD".into(),
                Some(Err(v)) => format!("; GRADPATH_SIMD={v:?} names no level and is ignored"),
                None => String::new(),
            };
            outln!(
                "elementwise, softmax, norm kernels: {} ({} f32 lanes{why})",
                lvl.name(),
                lvl.f32_lanes()
            );
            outln!("gemm kernels (gemm 0.19): {}", simd::gemm_kernels());
            Ok(())
        }
    }
}

/// A one-line suggestion of what to do about `e`, chosen by the error's variant (and, for
/// [`Error::OutOfRange`], [`Error::Unknown`], [`Error::BadValue`], [`Error::Empty`] and
/// [`Error::Config`], by the field that says what the value is), never by its message.
pub fn hint(e: &Error) -> String {
    const BUG: &str =
        "this is a bug in the caller or the model definition; please report it with the command you ran";
    const HELP: &str = "see `gradpath <command> --help` for valid values";
    const TEXT: &str = "pass a non-empty --text (and --similar-to, if given)";
    const LAYERS: &str =
        "layers and heads are numbered from 0; `gradpath hooks --model DIR` lists them";
    const TOKEN: &str =
        "pass a token exactly as printed in the token list (e.g. [SEP]) or its index";
    const CLASS: &str = "pick a class index in range or a label from config.json's id2label";
    const NOISE: &str = "use at least one draw/sample and a finite, non-negative noise level";
    const FOLDER: &str = "point --model at a Hugging Face folder with config.json, model.safetensors and tokenizer.json (run scripts/fetch-models.sh for the default model)";
    const ARCH: &str =
        "gradpath loads the architectures listed above; convert the model or open an issue";
    const DAMAGED: &str =
        "the model files look damaged or incompatible; re-download or re-export the folder";
    match e {
        Error::NotCompiledWithCuda(_) => "rebuild with `cargo build --release --features cuda` on a machine with CUDA, or run on the CPU".into(),
        Error::DeviceUnsupported { .. } => "run on the CPU: this op has no kernel on that device yet".into(),
        Error::Shape { .. } | Error::DType { .. } | Error::Autodiff(_) | Error::Internal(_) => BUG.into(),
        Error::Io { .. } => "check that the path exists and is readable".into(),
        // model files
        Error::NotFound { .. } => FOLDER.into(),
        Error::AmbiguousModel { .. } => "pass --model the path of the .gguf file to use".into(),
        Error::UnsupportedArchitecture { .. } => ARCH.into(),
        Error::Config { key, .. } if key == "architectures" || key == "model_type" => ARCH.into(),
        Error::Config { .. } | Error::MissingTensor { .. } | Error::BadWeights { .. } => DAMAGED.into(),
        Error::NoChatTemplate { .. } => "drop --chat (and --system) to explain the text as given, or use an instruct model whose tokenizer_config.json or GGUF metadata has a chat template".into(),
        Error::ChatTemplate(_) => "the model's chat template rejected the conversation (e.g. a template without a system role): drop --system, or check the template".into(),
        Error::Tokenizer(_) => "check the model's tokenizer (tokenizer.json or the GGUF tokenizer metadata); re-download the model if it is damaged".into(),
        // inputs and requests
        Error::Empty(what) if what.contains("text") || what.contains("input") || what.contains("prompt") => TEXT.into(),
        Error::Empty(_) => HELP.into(),
        Error::TooLong { .. } => "shorten the text, or pass --truncate (gradpath ig) to cut it at the model's limit".into(),
        Error::UnknownBoundary { .. } => "run `gradpath hooks --model DIR --text TEXT` to list every boundary with its shape".into(),
        Error::OutOfRange { what, .. } => match what.rsplit(' ').next().unwrap_or(what) {
            "layer" | "head" => LAYERS.into(),
            "token" | "position" => TOKEN.into(),
            "class" => CLASS.into(),
            "id" => "pass a token id below the vocabulary size, or the token itself as text".into(),
            _ => HELP.into(),
        },
        Error::Unknown { what, .. } => match *what {
            "class" | "class label" | "label" => CLASS.into(),
            "token" => TOKEN.into(),
            "target token" => "pass a text that encodes to exactly one token, or a token id".into(),
            _ => HELP.into(),
        },
        Error::BadValue { name, .. } => match *name {
            "draws" | "samples" | "sigma" | "stdev" => NOISE.into(),
            "tree" | "threshold" => "the tree needs an encoder classifier and --layers all; drop --tree otherwise".into(),
            _ => HELP.into(),
        },
        Error::NoToken { .. } => "choose another --baseline: zero, pad, eos, mask, unk or id:N (a token id)".into(),
        Error::TargetMismatch(_) => "choose a target this model produces: --target (a class) for a classifier, --similar-to \"another text\" for a sentence-embedding model, --target-token for a causal language model".into(),
        Error::Mismatch { what, .. } if what == "models" || what == "tokenizers" => "compare a fine-tuned model with the base it was fine-tuned from: both need the same tokenizer (vocabulary), the same number of layers and, for a classifier base, the same number of classes".into(),
        Error::Mismatch { .. } => "check the shapes and dtypes of the values you pass; `gradpath hooks --model DIR` lists every boundary with its shape".into(),
        Error::Invalid { .. } => "run with --help to see the expected arguments".into(),
        Error::Data { .. } => "each line must be a JSON object with \"text\" (and optionally \"text_pair\") and \"label\": a class index or a class name from the model's id2label or --labels".into(),
        Error::NoLabels { .. } => "pass --labels with the class names in index order (e.g. --labels negative,positive) to train a fresh classification head".into(),
        Error::OutputPath { .. } => "choose another --json/--html path: outputs may not overwrite the model's files, an input of the run, or each other".into(),
        Error::NonFinite { .. } => "the model or the path produced NaN/inf: check the model's config (layer_norm_eps > 0, rope_theta > 0), the baseline and the noise level; --allow-nan writes the result anyway".into(),
        Error::NotConverged(_) => "raise --max-points or --steps, or loosen --tolerance; without --strict this is a warning".into(),
        Error::TooLarge { hint, .. } => format!("{hint}, or raise the budget with --memory (e.g. --memory 16G)"),
        Error::OutputExists { .. } => "pass --overwrite to replace it, --resume to continue it (training or a batch run), or choose another output path".into(),
        Error::Checkpoint { .. } => "resume with the same command and options (--model, --method, --labels, --dtype), or start again with --overwrite".into(),
        Error::BadExample { cause: Some(c), .. } if matches!(**c, Error::NonFinite { .. }) => "the model or the path produced NaN/inf for this example: check the model's config (layer_norm_eps > 0, rope_theta > 0), the baseline and the noise level; or pass --skip-bad to skip such examples and list them at the end".into(),
        Error::BadExample { cause: Some(c), .. } => format!("{}; or pass --skip-bad to skip such examples and list them at the end", hint(c)),
        Error::BadExample { cause: None, .. } => "each line must be a JSON object with a non-empty \"text\" and a unique \"id\" (optional: \"text_pair\", \"target\", \"similar_to\", \"target_token\", \"position\", \"label\"); or pass --skip-bad to skip bad lines and list them at the end".into(),
        Error::Incomplete { .. } => "resume the shards that own the missing ids (gradpath batch ... --shard I/N --resume; an id's shard is FNV-1a 64 of the id modulo N), then merge again; or pass --partial to write what is there".into(),
    }
}
