//! Attribution methods. They see models only through [`crate::models::Model`] and its named
//! boundaries; every path method reports its completeness delta.

pub mod attattr;
pub mod attention;
pub mod baseline;
pub mod boundary;
pub mod converge;
pub mod generate;
pub mod gradients;
pub mod ig;
pub mod layer;
pub mod lig;
pub mod perturb;
pub mod probe;
pub mod target;

pub use attention::{attention_maps, AttentionMaps};
pub use baseline::Baseline;
pub use generate::{generation_attribution, greedy, Generation, GenerationSpec, GenerationStep};
pub use gradients::{gradient_attribution, noise_tunnel, GradMethod, NoiseKind};
pub use ig::{
    integrated_gradients, integrated_gradients_adaptive, Adaptive, IgResult, PathProblem,
};
pub use layer::{
    internal_influence, layer_conductance, layer_integrated_gradients, neuron_conductance,
    LayerAttribution, LayerResult,
};
pub use perturb::{
    ablation, noise_sensitivity, noise_sensitivity_on, AblationResult, SensitivityResult,
};
pub use target::{Target, TargetKind, TokenTerm};
