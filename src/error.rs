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

    // === Model and input errors ===
    /// A model folder or file that cannot be used: missing or malformed files, missing tensors,
    /// unsupported architecture, non-finite weights.
    #[error("{0}")]
    Model(String),
    /// User input that the model cannot take: empty text, too many tokens, a class out of range.
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
    /// Free-form message.
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
