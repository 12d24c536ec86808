//! What a LIG pass is asked for and what it returns: the baselines of the three maps (by the
//! LIG package's names), the quadrature and batching ([`LigConfig`]), and the maps
//! ([`TokenMap`], [`MlpMap`]).

use crate::attribution::probe::Chunking;
use crate::integrate::{captum_exact, Rule};
use crate::{Error, Result};

/// Baselines of the layer map (z → z), by the package's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerBaseline {
    /// `zero`: Z′ = 0.
    Zero,
    /// `self_input_token` (ITB): Z′ = (z_j, …, z_j) for target j.
    Itb,
    /// `itb_zero_ratio`: the ITB column with its self term set from the zero-baseline column
    /// ([`itb_zero_ratio`](super::itb_zero_ratio)).
    ItbZeroRatio,
}

/// Baselines of the attention map (z → u), by the package's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttBaseline {
    Zero,
    Itb,
    ItbZeroRatio,
    /// `itb_map_ratio`: the ITB column with its self share set to the attention weight α_jj
    /// ([`itb_map_ratio`](super::itb_map_ratio)).
    ItbMapRatio,
}

/// Baselines of the MLP map (u → z), by the package's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlpBaseline {
    /// `zero`: u′_j = 0.
    Zero,
    /// `att_itb_a0`: u′_j = the attention sub-block on (z_j, …, z_j), at position j (the ITB
    /// path's start).
    AttItbA0,
}

pub(super) fn unknown<T>(what: &'static str, value: &str, valid: &[&str]) -> Result<T> {
    Err(Error::Unknown {
        what,
        value: value.to_string(),
        valid: valid.iter().map(|s| s.to_string()).collect(),
    })
}

impl LayerBaseline {
    pub const NAMES: [&'static str; 3] = ["zero", "self_input_token", "itb_zero_ratio"];
    pub fn parse(s: &str) -> Result<LayerBaseline> {
        match s {
            "zero" => Ok(LayerBaseline::Zero),
            "self_input_token" => Ok(LayerBaseline::Itb),
            "itb_zero_ratio" => Ok(LayerBaseline::ItbZeroRatio),
            _ => unknown("layer baseline", s, &Self::NAMES),
        }
    }
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl AttBaseline {
    pub const NAMES: [&'static str; 4] = [
        "zero",
        "self_input_token",
        "itb_zero_ratio",
        "itb_map_ratio",
    ];
    pub fn parse(s: &str) -> Result<AttBaseline> {
        match s {
            "zero" => Ok(AttBaseline::Zero),
            "self_input_token" => Ok(AttBaseline::Itb),
            "itb_zero_ratio" => Ok(AttBaseline::ItbZeroRatio),
            "itb_map_ratio" => Ok(AttBaseline::ItbMapRatio),
            _ => unknown("attention baseline", s, &Self::NAMES),
        }
    }
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl MlpBaseline {
    pub const NAMES: [&'static str; 2] = ["zero", "att_itb_a0"];
    pub fn parse(s: &str) -> Result<MlpBaseline> {
        match s {
            "zero" => Ok(MlpBaseline::Zero),
            "att_itb_a0" => Ok(MlpBaseline::AttItbA0),
            _ => unknown("MLP baseline", s, &Self::NAMES),
        }
    }
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// The quadrature and batching of every LIG pass.
#[derive(Debug, Clone)]
pub struct LigConfig {
    pub rule: Rule,
    pub alphas: Vec<f64>,
    pub weights: Vec<f64>,
    pub chunking: Chunking,
    /// Run the zero-baseline z → z map and the z → u maps unit by unit (T × n rows of the block
    /// per layer map, T · heads × n per attention map, a backward each) even where forwards of
    /// the block alone serve every unit (every model that reports its blocks' attention
    /// structure, [`crate::models::Model::block_attention`]: all built-in families; ITB
    /// attention maps where q/k/v read the residual stream directly; see `shared.rs`). The two
    /// give the same maps to rounding; this is the reference the tests compare with. Default
    /// `false`.
    pub per_target: bool,
}

impl LigConfig {
    /// `steps` points of `rule`; `captum-trapezoid` uses Captum's own f32-rounded nodes and
    /// weights ([`captum_exact`]), so results match the package number for number.
    pub fn new(rule: Rule, steps: usize) -> Result<LigConfig> {
        let (alphas, weights) = match rule {
            Rule::CaptumTrapezoid => captum_exact(rule, steps)?,
            _ => rule.nodes_weights(steps)?,
        };
        Ok(LigConfig {
            rule,
            alphas,
            weights,
            chunking: Chunking::Budget(LIG_BUDGET),
            per_target: false,
        })
    }
    /// The nodes and weights Captum itself multiplies with for `rule` ([`captum_exact`]: f32
    /// weights, f32 linspace alphas), for parity with Captum-based implementations.
    pub fn captum(rule: Rule, steps: usize) -> Result<LigConfig> {
        let (alphas, weights) = captum_exact(rule, steps)?;
        LigConfig::with_nodes(rule, alphas, weights)
    }
    /// Explicit nodes and weights (e.g. composite panels from a refinement).
    pub fn with_nodes(rule: Rule, alphas: Vec<f64>, weights: Vec<f64>) -> Result<LigConfig> {
        if alphas.is_empty() || alphas.len() != weights.len() {
            return Err(Error::Invalid {
                op: "lig",
                detail: format!("{} alphas and {} weights", alphas.len(), weights.len()),
            });
        }
        Ok(LigConfig {
            rule,
            alphas,
            weights,
            chunking: Chunking::Budget(LIG_BUDGET),
            per_target: false,
        })
    }
}

/// The default activation budget of a LIG chunk: 64 MiB of one block's saved activations (the
/// probe's whole-model estimate scaled to one block; measured on MiniLM, 41 tokens, layer 0:
/// 512 MiB gave a 1.34 GB peak RSS, 64 rows 0.34 GB at the same speed).
pub const LIG_BUDGET: usize = 64 << 20;

/// A token-to-token map: `matrix[i][j]` = source i → target j, for the target columns
/// `targets` (other columns are 0 and not computed).
#[derive(Debug, Clone)]
pub struct TokenMap {
    pub matrix: Vec<Vec<f64>>,
    pub targets: Vec<usize>,
    /// `g_j(X) = ‖F_j(X) − F_j(X′)‖₂` per target of `targets` (the exact column sum).
    pub target_norm: Vec<f64>,
    /// Model rows (target × path point) this map ran.
    pub rows: usize,
}

impl TokenMap {
    /// `Σ_i matrix[i][j]` per target of `targets`.
    pub fn column_sums(&self) -> Vec<f64> {
        self.targets
            .iter()
            .map(|&j| self.matrix.iter().map(|r| r[j]).sum())
            .collect()
    }
    /// Column sum − g_j(X), per target.
    pub fn delta(&self) -> Vec<f64> {
        deltas(&self.column_sums(), &self.target_norm)
    }
    /// |delta| / |g_j(X)| per target (|delta| where g_j(X) = 0).
    pub fn relative_delta(&self) -> Vec<f64> {
        relative(&self.delta(), &self.target_norm)
    }
    /// The largest relative delta over the columns.
    pub fn max_relative_delta(&self) -> f64 {
        self.relative_delta().into_iter().fold(0.0, f64::max)
    }
}

/// The MLP map (u → z): per-dimension contributions of `u_j` to `z_next_j`, per target.
#[derive(Debug, Clone)]
pub struct MlpMap {
    /// `contributions[t][k]` for target `targets[t]`, k over the d dims of u_j.
    pub contributions: Vec<Vec<f64>>,
    pub targets: Vec<usize>,
    pub target_norm: Vec<f64>,
    /// Heads for [`MlpMap::per_head`] (contiguous blocks of d / n_heads dims).
    pub n_heads: usize,
    pub rows: usize,
}

impl MlpMap {
    /// `MLP[j][h] = Σ_{k ∈ [h·w, (h+1)·w)} a_k` with w = d / n_heads, for target `targets[t]`.
    pub fn per_head(&self, t: usize) -> Vec<f64> {
        let c = &self.contributions[t];
        let w = c.len() / self.n_heads.max(1);
        (0..self.n_heads)
            .map(|h| c[h * w..(h + 1) * w].iter().sum())
            .collect()
    }
    /// Σ_k a_k per target.
    pub fn sums(&self) -> Vec<f64> {
        self.contributions.iter().map(|c| c.iter().sum()).collect()
    }
    /// Sum − g_j(X), per target.
    pub fn delta(&self) -> Vec<f64> {
        deltas(&self.sums(), &self.target_norm)
    }
    /// |delta| / |g_j(X)| per target (|delta| where g_j(X) = 0).
    pub fn relative_delta(&self) -> Vec<f64> {
        relative(&self.delta(), &self.target_norm)
    }
}

/// `sum − g` per target: the completeness delta of a map's columns.
fn deltas(sums: &[f64], target_norm: &[f64]) -> Vec<f64> {
    sums.iter().zip(target_norm).map(|(s, g)| s - g).collect()
}

/// `|delta| / |g|` per target (`|delta|` where g = 0).
fn relative(delta: &[f64], target_norm: &[f64]) -> Vec<f64> {
    delta
        .iter()
        .zip(target_norm)
        .map(|(d, g)| {
            if *g != 0.0 {
                d.abs() / g.abs()
            } else {
                d.abs()
            }
        })
        .collect()
}
