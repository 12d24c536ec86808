//! # gradpath
//!
//! Transformer attribution with gradients computed on our own tape. This crate is layered
//! (each layer depends only on the ones above it):
//!
//! - [`tensor`]: `Tensor` (f32/f64, shape, device, storage) and `Device`;
//! - [`ops`]: op families, forward and backward side by side (CPU kernels on ndarray + gemm);
//! - [`autodiff`]: the tape, the closed `Op` enum, the reverse sweep `grad(outputs, seeds, wrt)`.
//!
//! The front door is [`explain`]: [`Explainer::load`] a model folder or GGUF file, describe the
//! [`Input`] (text and target), run a method, serialise its report (the CLI's `--json`):
//!
//! ```no_run
//! use gradpath::explain::{Explainer, IgOptions, Input, Options};
//! let ex = Explainer::load("models/all-MiniLM-L6-v2", Options::default())?;
//! let r = ex.ig(&Input::text("A man plays guitar.").similar_to("Someone makes music."), &IgOptions::default())?;
//! println!("relative completeness delta {:.1e}", r.relative_delta);
//! # Ok::<(), gradpath::Error>(())
//! ```
//!
//! The `gradpath` binary and `gradpath::cli` (when built with the default `cli` feature) only parse
//! flags, call [`explain`] and print.
//!
//! See `docs/ARCHITECTURE.md` for the whole picture.

pub mod attribution;
pub mod autodiff;
#[cfg(feature = "cli")]
pub mod cli;
mod error;
pub mod explain;
pub mod integrate;
pub mod io;
pub mod models;
pub mod ops;
pub mod report;
pub mod tensor;

pub use autodiff::{Tape, Var};
pub use error::{Error, Result};
pub use explain::{Explainer, Input, Options};
pub use tensor::{DType, Device, Tensor};
