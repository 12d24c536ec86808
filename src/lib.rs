//! # gradpath
//!
//! Transformer attribution with gradients computed on our own tape. The crate is layered; each
//! layer depends only on the ones above it:
//!
//! | module | what it owns |
//! |---|---|
//! | [`tensor`] | `Tensor` (f32/f64, shape, storage) on a [`Device`]; constructors take a device |
//! | [`ops`] | op families, forward and backward side by side, dispatched on the device |
//! | [`autodiff`] | the tape, the closed `Op` enum, the reverse sweep `grad(outputs, seeds, wrt)` |
//! | [`models`] | encoders and decoders from HF folders / GGUF, typed boundaries ([`models::HookName`], [`models::Model::hook_points`]), named parameters |
//! | [`io`], [`integrate`] | safetensors, GGUF, tokenizers; quadrature rules and adaptive refinement |
//! | [`attribution`] | [`attribution::probe`], the one batched pass, and every method built on it |
//! | [`explain`] | the front door: load, encode, resolve a target, run a method, get a serialisable report |
//! | [`batch`] | a method over a JSONL data set: resumable append-only output, shards, merge, data-set summary |
//! | [`report`] | tables, HTML |
//! | [`train`] | fine-tuning encoder classifiers: cross-entropy, dropout, AdamW and its schedule, the epoch loop, checkpoints (needs nothing from attribution) |
//! | `cli` | (feature `cli`, default) the `gradpath` binary: parse flags, call [`explain`], print |
//!
//! **Where to start reading:** [`explain`] for using a method, [`attribution::probe`] for writing
//! one (a new method is a function over [`attribution::probe::run`]; see
//! `examples/grad_x_activation.rs`), then [`attribution::layer`] for methods built that way.
//!
//! The front door in three lines: [`Explainer::load`] a model folder or GGUF file, describe the
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
//! See `docs/ARCHITECTURE.md` for the whole picture.

pub mod attribution;
pub mod autodiff;
pub mod batch;
#[cfg(feature = "cli")]
pub mod cli;
mod error;
pub mod explain;
pub mod integrate;
pub mod io;
pub mod memory;
pub mod models;
pub mod ops;
pub mod report;
pub mod tensor;
pub mod train;

pub use autodiff::{Tape, Var};
pub use error::{Error, Result};
pub use explain::{Explainer, Input, Options};
pub use tensor::{DType, Device, Tensor};
