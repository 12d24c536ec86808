//! Typed boundary names. Every boundary of every model has a [`HookName`]; it parses from and
//! displays as the TransformerLens-style spelling of `docs/HOOKS.md` (`hook_embed`,
//! `blocks.3.attn.hook_pattern`, ...), so strings and typed names convert both ways losslessly.
//!
//! ```
//! use gradpath::models::{HookName, Site};
//! let h: HookName = "blocks.3.attn.hook_pattern".parse().unwrap();
//! assert_eq!(h, HookName::Block { layer: 3, site: Site::Pattern });
//! assert_eq!(h.to_string(), "blocks.3.attn.hook_pattern");
//! assert_eq!(h.layer(), Some(3));
//! assert!("blocks.x.hook_resid_post".parse::<HookName>().is_err());
//! ```

use crate::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// A site inside block `l` (`blocks.{l}.<suffix>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Site {
    /// `hook_resid_pre`: the residual stream entering the block (z).
    ResidPre,
    /// `ln1.hook_normalized` (pre-LN decoders): the attention input.
    Ln1Normalized,
    /// `attn.hook_q`.
    Q,
    /// `attn.hook_k`.
    K,
    /// `attn.hook_v`.
    V,
    /// `attn.hook_rot_q` (rotary models).
    RotQ,
    /// `attn.hook_rot_k` (rotary models).
    RotK,
    /// `attn.hook_attn_scores`: q·kᵀ/√d_head before the mask.
    AttnScores,
    /// `attn.hook_pattern`: the attention probabilities A.
    Pattern,
    /// `attn.hook_z`: A·v per head.
    Z,
    /// `hook_attn_out`: the attention output projection.
    AttnOut,
    /// `hook_resid_mid` (u).
    ResidMid,
    /// `ln2.hook_normalized` (pre-LN decoders): the MLP input.
    Ln2Normalized,
    /// `mlp.hook_pre`.
    MlpPre,
    /// `mlp.hook_pre_linear` (gated MLPs: the up projection).
    MlpPreLinear,
    /// `mlp.hook_post`.
    MlpPost,
    /// `hook_mlp_out`.
    MlpOut,
    /// `hook_resid_post`: the block's output.
    ResidPost,
}

impl Site {
    /// Every site, in forward order.
    pub const ALL: [Site; 18] = [
        Site::ResidPre,
        Site::Ln1Normalized,
        Site::Q,
        Site::K,
        Site::V,
        Site::RotQ,
        Site::RotK,
        Site::AttnScores,
        Site::Pattern,
        Site::Z,
        Site::AttnOut,
        Site::ResidMid,
        Site::Ln2Normalized,
        Site::MlpPre,
        Site::MlpPreLinear,
        Site::MlpPost,
        Site::MlpOut,
        Site::ResidPost,
    ];

    /// The spelling after `blocks.{l}.`.
    pub fn suffix(self) -> &'static str {
        match self {
            Site::ResidPre => "hook_resid_pre",
            Site::Ln1Normalized => "ln1.hook_normalized",
            Site::Q => "attn.hook_q",
            Site::K => "attn.hook_k",
            Site::V => "attn.hook_v",
            Site::RotQ => "attn.hook_rot_q",
            Site::RotK => "attn.hook_rot_k",
            Site::AttnScores => "attn.hook_attn_scores",
            Site::Pattern => "attn.hook_pattern",
            Site::Z => "attn.hook_z",
            Site::AttnOut => "hook_attn_out",
            Site::ResidMid => "hook_resid_mid",
            Site::Ln2Normalized => "ln2.hook_normalized",
            Site::MlpPre => "mlp.hook_pre",
            Site::MlpPreLinear => "mlp.hook_pre_linear",
            Site::MlpPost => "mlp.hook_post",
            Site::MlpOut => "hook_mlp_out",
            Site::ResidPost => "hook_resid_post",
        }
    }

    /// The site spelled `suffix`, if any.
    pub fn from_suffix(suffix: &str) -> Option<Site> {
        Site::ALL.into_iter().find(|s| s.suffix() == suffix)
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix())
    }
}

/// A boundary (hook point) of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookName {
    /// `hook_embed`: the word-embedding lookup (token IG interpolates here).
    Embed,
    /// `hook_pos_embed`: learned position embeddings.
    PosEmbed,
    /// `hook_type_embed`: token-type embeddings.
    TypeEmbed,
    /// `embed.hook_out`: the embedding output, input of block 0.
    EmbedOut,
    /// `blocks.{layer}.{site}`.
    Block { layer: usize, site: Site },
    /// `ln_final.hook_normalized` (decoders): what the unembedding reads.
    FinalNorm,
    /// `pooler.hook_out` (classifiers): what the last linear layer reads.
    PoolerOut,
    /// `hook_pooled` (sentence-embedding encoders): the mean-pooled embedding.
    Pooled,
    /// `hook_logits`.
    Logits,
}

impl HookName {
    /// `blocks.{layer}.{site}`.
    pub fn block(layer: usize, site: Site) -> HookName {
        HookName::Block { layer, site }
    }

    /// The block a name belongs to.
    pub fn layer(&self) -> Option<usize> {
        match self {
            HookName::Block { layer, .. } => Some(*layer),
            _ => None,
        }
    }

    /// The site of a block name.
    pub fn site(&self) -> Option<Site> {
        match self {
            HookName::Block { site, .. } => Some(*site),
            _ => None,
        }
    }

    /// Parses a spelling of `docs/HOOKS.md`; `None` if it is not one.
    pub fn parse_opt(s: &str) -> Option<HookName> {
        Some(match s {
            "hook_embed" => HookName::Embed,
            "hook_pos_embed" => HookName::PosEmbed,
            "hook_type_embed" => HookName::TypeEmbed,
            "embed.hook_out" => HookName::EmbedOut,
            "ln_final.hook_normalized" => HookName::FinalNorm,
            "pooler.hook_out" => HookName::PoolerOut,
            "hook_pooled" => HookName::Pooled,
            "hook_logits" => HookName::Logits,
            _ => {
                let rest = s.strip_prefix("blocks.")?;
                let (l, suffix) = rest.split_once('.')?;
                if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                HookName::Block {
                    layer: l.parse().ok()?,
                    site: Site::from_suffix(suffix)?,
                }
            }
        })
    }
}

impl fmt::Display for HookName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookName::Embed => f.write_str("hook_embed"),
            HookName::PosEmbed => f.write_str("hook_pos_embed"),
            HookName::TypeEmbed => f.write_str("hook_type_embed"),
            HookName::EmbedOut => f.write_str("embed.hook_out"),
            HookName::Block { layer, site } => write!(f, "blocks.{layer}.{}", site.suffix()),
            HookName::FinalNorm => f.write_str("ln_final.hook_normalized"),
            HookName::PoolerOut => f.write_str("pooler.hook_out"),
            HookName::Pooled => f.write_str("hook_pooled"),
            HookName::Logits => f.write_str("hook_logits"),
        }
    }
}

impl FromStr for HookName {
    type Err = Error;
    fn from_str(s: &str) -> Result<HookName> {
        HookName::parse_opt(s).ok_or_else(|| Error::UnknownBoundary {
            name: s.to_string(),
            valid: Vec::new(),
        })
    }
}

impl serde::Serialize for HookName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One boundary of a model for a given input length: its name and per-row shape (batch axis
/// dropped), as listed by [`crate::models::Model::hook_points`] in forward order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HookPoint {
    pub name: HookName,
    pub shape: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_round_trips() {
        let mut names = vec![
            HookName::Embed,
            HookName::PosEmbed,
            HookName::TypeEmbed,
            HookName::EmbedOut,
            HookName::FinalNorm,
            HookName::PoolerOut,
            HookName::Pooled,
            HookName::Logits,
        ];
        for l in [0, 7, 123] {
            names.extend(Site::ALL.iter().map(|&s| HookName::block(l, s)));
        }
        for n in names {
            assert_eq!(HookName::parse_opt(&n.to_string()), Some(n));
        }
        for bad in [
            "",
            "blocks.",
            "blocks..hook_resid_post",
            "blocks.-1.hook_resid_post",
            "blocks.+1.hook_resid_post",
            "blocks.1.hook_nothing",
            "hook_embed ",
        ] {
            assert!(HookName::parse_opt(bad).is_none(), "{bad}");
        }
    }
}
