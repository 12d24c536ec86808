//! Attribution methods. They see models only through [`crate::models::Model`] and its named
//! boundaries; every path method reports its completeness delta.

pub mod baseline;
pub mod generate;
pub mod ig;
pub mod target;

pub use baseline::Baseline;
pub use generate::{generation_attribution, greedy, Generation, GenerationSpec, GenerationStep};
pub use ig::{
    integrated_gradients, integrated_gradients_adaptive, Adaptive, IgResult, PathProblem,
};
pub use target::{Target, TargetKind};
