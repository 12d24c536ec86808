//! Fine-tuning encoder classifiers (BERT, RoBERTa, DistilBERT) on our own tape. Training needs
//! nothing from attribution: it stands on [`crate::models`] (named parameters as tape leaves,
//! [`crate::models::Model::forward_with_params`], [`crate::models::Model::set_parameters`]) and
//! [`crate::autodiff`].
//!
//! | module | owns |
//! |---|---|
//! | [`rng`] | the seeded generator behind dropout masks, shuffles and head initialisation |
//! | [`loss`] | mean cross-entropy with integer labels, argmax |
//! | [`dropout`] | training-mode dropout at HF's places, as patches on the boundaries |
//! | [`optim`] | AdamW as `torch.optim.AdamW`, the linear warm-up/decay schedule, global norm clipping, the no-decay group |
//! | [`classifier`] | a classifier to train: a checkpoint with its head, or a base encoder with a fresh, seeded head |
//! | [`data`] | JSONL examples, labels by index or name, truncation, padded batches |
//! | [`eval`] | accuracy, per-class precision / recall / F1, confusion matrix |
//! | [`save`] | Hugging Face folders and checkpoints, written atomically |
//! | [`trainer`] | one step ([`Trainer`]) and the epoch loop with evaluation, checkpoints and resume ([`fit`]) |
//! | [`rules`] | the rule-reasoning data generator |
//!
//! One step by hand (what [`Trainer::step`] does):
//!
//! ```
//! # use gradpath::train::{classifier, optim::{AdamWConfig, LinearSchedule}, Trainer};
//! # use gradpath::models::Batch;
//! # fn main() -> gradpath::Result<()> {
//! # let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/tiny-bert");
//! let clf = classifier::load(&dir, None, 0, gradpath::DType::F64)?;
//! let mut tr = Trainer::new(clf, AdamWConfig::default(), LinearSchedule { warmup: 0, total: 10 }, 0);
//! tr.dropout = false; // on by default (the config's rates, seeded)
//! let x = Batch::repeat(&[2, 63, 3], &[0, 0, 0], 2);
//! let first = tr.step(&x, &[1, 1])?;
//! let second = tr.step(&x, &[1, 1])?;
//! assert!(second.loss < first.loss);
//! # Ok(()) }
//! ```

pub mod classifier;
pub mod data;
pub mod dropout;
pub mod eval;
pub mod loss;
pub mod optim;
pub mod rng;
pub mod rules;
pub mod save;
pub mod trainer;

pub use trainer::{evaluate_file, fit, Event, Existing, FitReport, TrainOptions, Trainer};
