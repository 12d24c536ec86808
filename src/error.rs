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
    /// A file or folder a model needs is not there.
    #[error("{path}: {what} not found")]
    NotFound { path: String, what: String },
    /// A config value is missing, of the wrong type or out of its valid range.
    #[error("{file}: `{key}` {detail}")]
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
    /// A weight the architecture needs is not in the checkpoint.
    #[error("{file}: tensor `{name}` missing{}", if .detail.is_empty() { String::new() } else { format!(" ({})", .detail) })]
    MissingTensor {
        file: String,
        name: String,
        detail: String,
    },
    /// A weight file that cannot be read: malformed header, wrong shape or dtype, non-finite
    /// values, an unsupported quantisation.
    #[error("{file}: {detail}")]
    BadWeights { file: String, detail: String },
    /// The tokenizer could not be loaded or failed on the text.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    // === Inputs and requests ===
    /// An input that is empty where something is needed (a text, a list of layers, ...).
    #[error("{0} is empty")]
    Empty(&'static str),
    /// The text has more tokens than the model takes.
    #[error("{tokens} tokens exceed the model's {max} positions")]
    TooLong { tokens: usize, max: usize },
    /// A boundary name the model does not have.
    #[error("unknown boundary `{name}`{}", if .valid.is_empty() { String::new() } else { format!("; this model has: {}", .valid.join(", ")) })]
    UnknownBoundary { name: String, valid: Vec<String> },
    /// An index outside its range: a layer, head, class, token id, position, neuron axis.
    #[error("{what} {index} is out of range: {len} {what}s (0..{})", .len.saturating_sub(1))]
    OutOfRange {
        what: &'static str,
        index: usize,
        len: usize,
    },
    /// A name that does not resolve: a class label, a token string, a baseline or rule name.
    #[error("unknown {what} `{value}`{}", if .valid.is_empty() { String::new() } else { format!(" (expected one of: {})", .valid.join(", ")) })]
    Unknown {
        what: &'static str,
        value: String,
        valid: Vec<String>,
    },
    /// A target that this model cannot produce (a class target on a sentence-embedding model, a
    /// next-token target on an encoder, ...).
    #[error("{0}")]
    TargetMismatch(String),
    /// A parameter value outside what the method accepts (zero draws, a negative σ, ...).
    #[error("{name}: {detail}")]
    BadValue { name: &'static str, detail: String },
    /// A tensor given to the library does not fit the boundary or model it is meant for.
    #[error("{what}: {detail}")]
    Mismatch { what: String, detail: String },

    // === Transitional catch-alls (being replaced by the variants above) ===
    /// A model folder or file that cannot be used (prefer a specific variant).
    #[error("{0}")]
    Model(String),
    /// User input that the model cannot take (prefer a specific variant).
    #[error("{0}")]
    Input(String),

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
    /// Free-form message (transitional).
    #[error("{0}")]
    Msg(String),
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
