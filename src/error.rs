//! One error enum for the whole crate. The library never panics on bad input or calls `exit`;
//! every public function returns [`Result`]. Variants carry the op name and the shapes involved so
//! that a message alone says what went wrong.

use crate::tensor::DType;

/// The crate-wide error type.
#[derive(thiserror::Error, Debug)]
pub enum Error {
    // === Shape errors ===
    /// An op was given operands whose shapes do not fit together.
    #[error("{op}: {detail}")]
    Shape { op: &'static str, detail: String },

    // === Type errors ===
    /// Two operands of one op have different dtypes.
    #[error("{op}: dtype mismatch: {lhs:?} vs {rhs:?} (convert one with `to_dtype`)")]
    DType {
        op: &'static str,
        lhs: DType,
        rhs: DType,
    },

    // === Device errors ===
    /// The CUDA device was asked for but the crate was built without the `cuda` feature.
    #[error("built without CUDA: {0} needs a build with `--features cuda`")]
    NotCompiledWithCuda(&'static str),
    /// The op has no kernel on this device yet.
    #[error("{op} is not implemented on device {device}")]
    DeviceUnsupported { op: &'static str, device: String },

    // === Autodiff errors ===
    /// Misuse of the tape: a seed of the wrong shape, a variable from another tape, ...
    #[error("autodiff: {0}")]
    Autodiff(String),

    // === Model files ===
    /// A file or folder a model needs is not there (`what`: "model folder", "config.json",
    /// "tokenizer file", ...; `path`: where it was looked for).
    #[error("{path}: {what} not found")]
    NotFound { path: String, what: String },
    /// A model path that names several models (a folder with more than one `.gguf` file).
    #[error("{dir}: {} .gguf files ({}); pass the path of the one to use", .candidates.len(), .candidates.join(", "))]
    AmbiguousModel {
        dir: String,
        candidates: Vec<String>,
    },
    /// A config value (`config.json` key or GGUF metadata key) is missing, of the wrong type or
    /// out of its valid range. An empty `key` means the file as a whole (malformed JSON).
    #[error("{file}: {}{detail}", if .key.is_empty() { String::new() } else { format!("`{}` ", .key) })]
    Config {
        file: String,
        key: String,
        detail: String,
    },
    /// The architecture is not one gradpath implements.
    #[error("unsupported architecture `{found}`; supported: {}", .supported.join(", "))]
    UnsupportedArchitecture {
        found: String,
        supported: Vec<String>,
    },
    /// A weight the architecture needs is not in the checkpoint (`detail` may say why it is
    /// needed; empty for none).
    #[error("{file}: missing tensor `{name}`{}", if .detail.is_empty() { String::new() } else { format!(" ({})", .detail) })]
    MissingTensor {
        file: String,
        name: String,
        detail: String,
    },
    /// A weight file that cannot be read: malformed header, wrong shape or dtype, non-finite
    /// values, an unsupported quantisation.
    #[error("{file}: {detail}")]
    BadWeights { file: String, detail: String },
    /// The tokenizer could not be loaded or built, or failed on the text (the message names the
    /// file when there is one).
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The model has no chat template (neither `chat_template` in `tokenizer_config.json` /
    /// `chat_template.jinja` nor `tokenizer.chat_template` in the GGUF metadata).
    #[error("{model}: the model has no chat template")]
    NoChatTemplate { model: String },
    /// The model's chat template does not parse or fails to render (its own
    /// `raise_exception(...)` included).
    #[error("chat template: {0}")]
    ChatTemplate(String),

    // === Inputs and requests ===
    /// An input that is empty where something is needed. The field names it: "the text",
    /// "the text after tokenization", "the reference text", "the list of layers", ... (a name
    /// with "text" in it gets the CLI's text hint).
    #[error("{0} is empty")]
    Empty(&'static str),
    /// The input has more tokens than the model has positions.
    #[error("the input has {tokens} tokens but the model takes at most {max}")]
    TooLong { tokens: usize, max: usize },
    /// A boundary name the model does not have.
    #[error("unknown boundary `{name}`{}", if .valid.is_empty() { String::new() } else { format!("; this model has: {}", .valid.join(", ")) })]
    UnknownBoundary { name: String, valid: Vec<String> },
    /// An index outside its range. `what` is a singular noun the CLI hint is chosen by: "layer",
    /// "head", "class", "token" (a position in the input), "position", "token id", "neuron", ...
    #[error("{what} {index} is out of range: {}", range_text(what, *.len))]
    OutOfRange {
        what: &'static str,
        index: usize,
        len: usize,
    },
    /// A name that does not resolve. `what` is what the CLI hint is chosen by: "class label",
    /// "token" (in the input), "target token", "baseline", "quadrature rule", "aggregation", ...
    #[error("unknown {what} `{value}`{}", if .valid.is_empty() { String::new() } else { format!(" (expected one of: {})", .valid.join(", ")) })]
    Unknown {
        what: &'static str,
        value: String,
        valid: Vec<String>,
    },
    /// The tokenizer or the model has no token for a role a baseline needs (pad, mask, ...).
    #[error("this {owner} has no {role} token")]
    NoToken {
        role: &'static str,
        owner: &'static str,
    },
    /// A target that this model cannot produce (a class target on a sentence-embedding model, a
    /// next-token target on an encoder, ...).
    #[error("{0}")]
    TargetMismatch(String),
    /// A parameter value outside what the method accepts (zero draws, a negative σ, ...). `name`
    /// is the parameter as the library calls it ("draws", "samples", "sigma", "stdev", "steps",
    /// "batch", "tolerance", ...), never a CLI flag.
    #[error("{name}: {detail}")]
    BadValue { name: &'static str, detail: String },
    /// A tensor given to the library does not fit the boundary or model it is meant for.
    #[error("{what}: {detail}")]
    Mismatch { what: String, detail: String },

    // === Training ===
    /// A data file that cannot be used: a malformed line, no text, a missing or unknown label
    /// (`line` from 1), or no examples at all (`line` 0).
    #[error("{file}{}: {detail}", if *.line > 0 { format!(" line {}", .line) } else { String::new() })]
    Data {
        file: String,
        line: usize,
        detail: String,
    },
    /// A base encoder (no classification head) and no class names to build one with.
    #[error("{model} has no classification head and no class names were given")]
    NoLabels { model: String },
    /// An output folder that already exists (training does not replace it unless asked to).
    #[error("{path} already exists")]
    OutputExists { path: String },
    /// A training checkpoint that cannot be resumed from.
    #[error("{path}: {detail}")]
    Checkpoint { path: String, detail: String },

    /// An output path that would clobber an input of the run or another output of the same run.
    #[error("{path}: {detail}")]
    OutputPath { path: String, detail: String },
    /// A result that is not a finite number (NaN or ±∞): `place` is where it sits in the report
    /// (a JSON pointer such as `/layers/3/attributions/5`, which names the layer and the token).
    #[error("the result is not finite: {value} at {place}")]
    NonFinite { place: String, value: String },
    /// An adaptive rule that did not reach its tolerance within its point budget.
    #[error("{0}")]
    NotConverged(String),

    /// A request larger than the memory budget ([`crate::memory`]).
    #[error("{what} would need {size}, more than the memory budget of {budget}")]
    TooLarge {
        what: String,
        size: String,
        budget: String,
        hint: String,
    },

    // === Data sets (gradpath::batch) ===
    /// One example of a data set that cannot be run: a line that is not a JSON object with a
    /// text, a repeated id, or an example the method refuses (`cause`, the method's error).
    /// `line` counts from 1; 0 means the file as a whole (no examples at all).
    #[error("{file}{}{}: {detail}", if *.line > 0 { format!(" line {}", .line) } else { String::new() }, .id.as_ref().map(|i| format!(" (id {i:?})")).unwrap_or_default())]
    BadExample {
        file: String,
        line: usize,
        id: Option<String>,
        detail: String,
        cause: Option<Box<Error>>,
    },
    /// Shard outputs that do not hold every id exactly once.
    #[error("{}", incomplete_text(.missing, .duplicated, .unexpected))]
    Incomplete {
        /// Ids of the input that no shard output holds.
        missing: Vec<String>,
        /// Ids held more than once.
        duplicated: Vec<String>,
        /// Ids that are not in the input.
        unexpected: Vec<String>,
    },

    // === Everything else ===
    /// Invalid argument value (an axis out of range, an empty list, ...).
    #[error("{op}: {detail}")]
    Invalid { op: &'static str, detail: String },
    /// I/O error with the path involved.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A broken invariant inside gradpath: a bug, never the caller's input.
    #[error("internal error: {0}")]
    Internal(String),
}

/// "3 classes (0..2)" for [`Error::OutOfRange`]: the count with the plural of `what`, and the
/// valid indices.
fn range_text(what: &str, len: usize) -> String {
    let plural = if len == 1 {
        what.to_string()
    } else if what.ends_with('s')
        || what.ends_with('x')
        || what.ends_with("sh")
        || what.ends_with("ch")
    {
        format!("{what}es")
    } else {
        format!("{what}s")
    };
    match len {
        0 => format!("there are no {plural}"),
        _ => format!("{len} {plural} (0..{})", len - 1),
    }
}

/// "3 ids missing (a, b, c); 1 id more than once (x)" for [`Error::Incomplete`] (at most 10
/// ids of each kind are named).
fn incomplete_text(missing: &[String], duplicated: &[String], unexpected: &[String]) -> String {
    let part = |v: &[String], what: &str| {
        if v.is_empty() {
            return None;
        }
        let mut names: Vec<String> = v.iter().take(10).map(|i| format!("{i:?}")).collect();
        if v.len() > 10 {
            names.push(format!("and {} more", v.len() - 10));
        }
        let ids = if v.len() == 1 { "id" } else { "ids" };
        Some(format!("{} {ids} {what} ({})", v.len(), names.join(", ")))
    };
    let parts: Vec<String> = [
        part(missing, "missing"),
        part(duplicated, "more than once"),
        part(unexpected, "not in the input"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "complete".into()
    } else {
        format!("the shard outputs are incomplete: {}", parts.join("; "))
    }
}

/// Crate-wide result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Return early with an [`Error::Shape`] for `op`.
#[macro_export]
macro_rules! shape_bail {
    ($op:expr, $($arg:tt)*) => {
        return Err($crate::Error::Shape { op: $op, detail: format!($($arg)*) })
    };
}

/// Return early with an [`Error::Invalid`] for `op`.
#[macro_export]
macro_rules! invalid_bail {
    ($op:expr, $($arg:tt)*) => {
        return Err($crate::Error::Invalid { op: $op, detail: format!($($arg)*) })
    };
}

#[cfg(test)]
mod tests {
    use super::Error;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn model_file_messages() {
        let e = Error::NotFound {
            path: "models/m".into(),
            what: "config.json".into(),
        };
        assert_eq!(e.to_string(), "models/m: config.json not found");
        let e = Error::AmbiguousModel {
            dir: "d".into(),
            candidates: s(&["a.gguf", "b.gguf"]),
        };
        assert_eq!(
            e.to_string(),
            "d: 2 .gguf files (a.gguf, b.gguf); pass the path of the one to use"
        );
        let e = Error::Config {
            file: "m/config.json".into(),
            key: "hidden_size".into(),
            detail: "is missing or not a number".into(),
        };
        assert_eq!(
            e.to_string(),
            "m/config.json: `hidden_size` is missing or not a number"
        );
        let e = Error::Config {
            file: "m/config.json".into(),
            key: String::new(),
            detail: "malformed JSON (EOF)".into(),
        };
        assert_eq!(e.to_string(), "m/config.json: malformed JSON (EOF)");
        let e = Error::UnsupportedArchitecture {
            found: "gpt2".into(),
            supported: s(&["llama", "qwen2"]),
        };
        assert_eq!(
            e.to_string(),
            "unsupported architecture `gpt2`; supported: llama, qwen2"
        );
        let mut e = Error::MissingTensor {
            file: "w.safetensors".into(),
            name: "lm_head.weight".into(),
            detail: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "w.safetensors: missing tensor `lm_head.weight`"
        );
        if let Error::MissingTensor { detail, .. } = &mut e {
            *detail = "the embeddings are not tied".into();
        }
        assert_eq!(
            e.to_string(),
            "w.safetensors: missing tensor `lm_head.weight` (the embeddings are not tied)"
        );
    }

    #[test]
    fn input_messages() {
        assert_eq!(Error::Empty("the text").to_string(), "the text is empty");
        assert_eq!(
            Error::TooLong {
                tokens: 100,
                max: 64
            }
            .to_string(),
            "the input has 100 tokens but the model takes at most 64"
        );
        let oor = |what, index, len| Error::OutOfRange { what, index, len }.to_string();
        assert_eq!(
            oor("class", 7, 3),
            "class 7 is out of range: 3 classes (0..2)"
        );
        assert_eq!(
            oor("layer", 2, 2),
            "layer 2 is out of range: 2 layers (0..1)"
        );
        assert_eq!(oor("head", 4, 1), "head 4 is out of range: 1 head (0..0)");
        assert_eq!(
            oor("neuron", 0, 0),
            "neuron 0 is out of range: there are no neurons"
        );
        let e = Error::Unknown {
            what: "class label",
            value: "POSITIVE".into(),
            valid: s(&["LABEL_0", "LABEL_1"]),
        };
        assert_eq!(
            e.to_string(),
            "unknown class label `POSITIVE` (expected one of: LABEL_0, LABEL_1)"
        );
        let e = Error::UnknownBoundary {
            name: "blocks.0.hook_nope".into(),
            valid: s(&["hook_embed", "blocks.0.hook_resid_post"]),
        };
        assert_eq!(
            e.to_string(),
            "unknown boundary `blocks.0.hook_nope`; this model has: hook_embed, blocks.0.hook_resid_post"
        );
        let e = Error::BadValue {
            name: "draws",
            detail: "must be at least 1".into(),
        };
        assert_eq!(e.to_string(), "draws: must be at least 1");
        assert_eq!(
            Error::Internal("no target".into()).to_string(),
            "internal error: no target"
        );
    }

    /// Library messages do not name CLI flags.
    #[test]
    fn library_messages_name_no_flags() {
        let all = [
            Error::NotFound {
                path: "p".into(),
                what: "model folder".into(),
            },
            Error::TooLong { tokens: 9, max: 8 },
            Error::Empty("the text"),
            Error::OutOfRange {
                what: "token",
                index: 9,
                len: 3,
            },
        ];
        for e in all {
            assert!(!e.to_string().contains("--"), "{e}");
        }
    }
}
