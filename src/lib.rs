//! # gradpath
//!
//! Transformer attribution with gradients computed on our own tape. This crate is layered
//! (each layer depends only on the ones above it):
//!
//! - [`tensor`]: `Tensor` (f32/f64, shape, device, storage) and `Device`;
//! - [`ops`]: op families, forward and backward side by side (CPU kernels on ndarray + gemm);
//! - [`autodiff`]: the tape, the closed `Op` enum, the reverse sweep `grad(outputs, seeds, wrt)`.
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
